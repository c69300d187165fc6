"""A lease lock in the service database: only the holder of the lease runs scheduled jobs.

Several processes may start a scheduler; each tries to take or renew the lease every few
seconds, and only the one holding an unexpired lease runs jobs. A crashed holder's lease expires
and another process takes over. The lease's heartbeat is what `/health` shows.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, insert, update
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
        if result.rowcount:
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
