"""Lease locks in the service database (table scheduler_leases), one row per lease name.

- `scheduler`: only the holder runs scheduled jobs. Several processes may start a scheduler;
  each tries to take or renew the lease every few seconds, and only the one holding an unexpired
  lease runs jobs. A crashed holder's lease expires and another process takes over. Its
  heartbeat is what `/health` shows.
- `pull:<source>`: held for the length of one pull of that source, so a second pull started at
  the same moment (CLI, API and scheduler alike) is refused with a clear message instead of
  racing the first. It is renewed after every stored batch and expires if its holder crashed.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from feedback.db import session_scope, utcnow
from feedback.models import SchedulerLease


def acquire_or_renew(engine: Engine, *, name: str, holder: str, seconds: int) -> bool:
    """Take the lease if it is free or expired, or renew it if `holder` has it; True if held."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    with session_scope(engine) as session:
        # One conditional UPDATE: atomic on SQLite and PostgreSQL alike.
        result = session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name)
            .where((SchedulerLease.holder == holder) | (SchedulerLease.expires_at < now))
            .values(holder=holder, heartbeat_at=now, expires_at=expires)
        )
        if result.rowcount:  # type: ignore[attr-defined]  # an UPDATE's CursorResult
            return True
    try:
        with session_scope(engine) as session:
            session.execute(insert(SchedulerLease).values(name=name, holder=holder, acquired_at=now,
                                                          heartbeat_at=now, expires_at=expires))
        return True
    except IntegrityError:
        return False  # another process holds an unexpired lease


def release(engine: Engine, *, name: str, holder: str) -> None:
    """Give the lease up (on clean shutdown) so another process can take over at once."""
    with session_scope(engine) as session:
        session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
            .values(expires_at=utcnow())
        )


def new_holder() -> str:
    """A holder id unique to this process and call: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_of(engine: Engine, name: str) -> tuple[str, datetime] | None:
    """Who holds lease `name` and until when, if it is held and unexpired."""
    with session_scope(engine) as session:
        row = session.execute(
            select(SchedulerLease.holder, SchedulerLease.expires_at).where(
                SchedulerLease.name == name, SchedulerLease.expires_at >= utcnow()
            )
        ).first()
    return (row[0], row[1]) if row else None


def _dead_here(holder: str) -> bool:
    """True if `holder` (from `new_holder`) was a process on this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def acquire_unless_alive(engine: Engine, *, name: str, holder: str, seconds: int) -> bool:
    """`acquire_or_renew`, and also take over a lease whose holder was a process on this host
    that has died (a killed pull must not block the next one until its lease lapses)."""
    if acquire_or_renew(engine, name=name, holder=holder, seconds=seconds):
        return True
    held = holder_of(engine, name)
    if held is None or not _dead_here(held[0]):
        return False
    now = utcnow()
    with session_scope(engine) as session:
        result = session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.holder == held[0])
            .values(holder=holder, acquired_at=now, heartbeat_at=now,
                    expires_at=now + timedelta(seconds=seconds))
        )  # fmt: skip
        return bool(result.rowcount)  # type: ignore[attr-defined]


@contextmanager
def held(engine: Engine, name: str, seconds: int) -> Iterator[Callable[[], bool] | None]:
    """Hold lease `name` for the block: yields a `renew()` callable, or None when another live
    process holds it (`acquire_unless_alive`). The lease is released when the block ends."""
    holder = new_holder()
    if not acquire_unless_alive(engine, name=name, holder=holder, seconds=seconds):
        yield None
        return
    try:
        yield lambda: acquire_or_renew(engine, name=name, holder=holder, seconds=seconds)
    finally:
        release(engine, name=name, holder=holder)
