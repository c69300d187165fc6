"""A tagging worker (`voc worker`): claim a batch, tag it outside any transaction, store, repeat.

Run as many as you like, in processes on any machines pointed at one database: each batch is
claimed atomically (`feedback.claims`), so no item is tagged by two workers at once, and a
killed worker's claims are taken by the others once its lease expires. A background heartbeat
renews the worker's claims and its row in `tag_workers` (what `/health` lists) every quarter
lease, so a batch may take longer than the lease while its worker lives.

The worker outlives its database: a lost connection or a restarting server (and SQLite's
"database is locked") is logged and retried with a growing pause, and the batch in flight is
stored once the database is back (its claims are still this worker's, or were taken by another
worker, which then stores them). SIGTERM or SIGINT finishes the batch in flight and exits; a
second one gives the batch up (its claims are released) and exits at once.

`voc tag` and the scheduler's tag job are one worker run to completion (`jobs.tasks.tag_pending`);
they also assign topics and refresh the rollups, which stay with the scheduler's leader:
`voc worker` only tags.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from feedback import claims
from feedback.db import is_locked, retry_locked, session_scope
from feedback.tagging import TaggerLike, store_tags, tag_items

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE_SECONDS = 60.0
POLL_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class WorkerOptions:
    """How a worker runs; the `voc worker` options."""

    batch_size: int = 256
    lease_seconds: float = LEASE_SECONDS
    poll_seconds: float = POLL_SECONDS  # pause when nothing is left to claim
    until_empty: bool = False  # exit when nothing is left to claim instead of waiting
    limit: int | None = None  # tag at most this many items, then exit
    name: str | None = None  # shown on /health (default: host:pid)
    # How long to keep retrying a lost database before giving up (None: for ever).
    outage_seconds: float | None = None
    # How often to ask `reload` whether the live tagger version changed (a promotion or rollback).
    reload_seconds: float = 30.0


@dataclass
class WorkerResult:
    """What one worker run did."""

    worker_id: str
    tagged: int = 0  # items whose tags this worker stored
    claimed: int = 0  # items it claimed and ran the models on
    batches: int = 0
    claim_seconds: float = 0.0  # in claim transactions (the queue's own cost)
    tag_seconds: float = 0.0  # in the models
    store_seconds: float = 0.0  # in store transactions: the tags, and releasing the claims
    reconnects: int = 0
    reloads: int = 0  # times the live tagger version changed and the worker loaded it
    stopped: bool = False  # stopped by a signal or `stop` before the queue was empty


def transient(exc: BaseException) -> bool:
    """Whether a database error is worth waiting out: a lost or refused connection (a server
    restarting), or SQLite's lock; not a missing table or a constraint violation."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or is_locked(exc):
        return True
    # On SQLite only the lock is transient; its other OperationalErrors ("no such table") are not.
    return isinstance(exc, OperationalError | InterfaceError) and not isinstance(exc.orig, sqlite3.Error)


def new_worker_id() -> str:
    """A worker id unique to this process and run: host, pid and a random suffix."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """One tagging worker on `engine` (see the module docstring); `run()` until stopped or empty."""

    def __init__(self, engine: Engine, tagger: TaggerLike, options: WorkerOptions | None = None, *,
                 stop: threading.Event | None = None,
                 after_store: Callable[[Session], Any] | None = None,
                 progress: Callable[[int], None] | None = None,
                 reload: Callable[[], TaggerLike | None] | None = None) -> None:
        self.engine = engine
        self.tagger = tagger
        self.options = options or WorkerOptions()
        self.stop = stop or threading.Event()
        self.after_store = after_store  # more work in each batch's store transaction
        self.progress = progress
        # Between batches, every `reload_seconds`: a new tagger when the live version changed
        # (`voc models promote|rollback`, an adaptation), else None. Items it tagged with the old
        # version are re-tagged by the scheduler's tag job, newest first.
        self.reload = reload
        self._reload_checked = time.monotonic()
        self.id = new_worker_id()
        self.name = self.options.name or f"{socket.gethostname()}:{os.getpid()}"
        self.result = WorkerResult(worker_id=self.id)
        self.state = "idle"
        self._beat_stop = threading.Event()

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> WorkerResult:
        """Tag until stopped, until `limit` items, or (with `until_empty`) until nothing is left."""
        options = self.options
        self._db("registering the worker", lambda s: claims.register_worker(
            s, worker_id=self.id, name=self.name, host=socket.gethostname(), pid=os.getpid(),
            lease_seconds=options.lease_seconds))
        log.info("worker %s (%s) started: batches of %d, lease %.0f s", self.name, self.id,
                 options.batch_size, options.lease_seconds)
        beat = threading.Thread(target=self._heartbeat, name=f"heartbeat {self.id}", daemon=True)
        beat.start()
        try:
            self._db("forgetting dead workers", lambda s: claims.forget_dead_workers(s))
            after_id, full_scan_at = 0, time.monotonic()
            while not self.stop.is_set():
                want = options.batch_size
                if options.limit is not None:
                    want = min(want, options.limit - self.result.claimed)
                    if want <= 0:
                        break
                # Scan from the start now and then: items edited or released behind `after_id`.
                if after_id and time.monotonic() - full_scan_at > options.lease_seconds:
                    after_id = 0
                if after_id == 0:
                    full_scan_at = time.monotonic()
                rows = self._claim(want, after_id)
                if rows is None:  # stopped while the database was away
                    break
                if not rows:
                    if after_id:  # nothing after the last scan: look from the start before waiting
                        after_id = 0
                        continue
                    if options.until_empty:
                        break
                    self.state = "idle"
                    self.stop.wait(options.poll_seconds)
                    continue
                after_id = rows[-1].id
                self._maybe_reload()
                self._tag_and_store(rows)
            self.result.stopped = self.stop.is_set()
        finally:
            self._beat_stop.set()
            beat.join(timeout=5)
            self._retire()
        log.info("worker %s stopped: %d tagged in %d batches", self.name, self.result.tagged,
                 self.result.batches)
        return self.result

    def _maybe_reload(self) -> None:
        if self.reload is None or time.monotonic() - self._reload_checked < self.options.reload_seconds:
            return
        self._reload_checked = time.monotonic()
        try:
            fresh = self.reload()
        except Exception as exc:  # the database away, or the new version unreadable: keep the old one
            log.warning("worker %s: could not check the live tagger version (%s); keeping %s", self.name,
                        _first_line(exc), getattr(self.tagger, "version", "the loaded one"))
            return
        if fresh is not None:
            log.info("worker %s: the live tagger version changed; now tagging with %s", self.name,
                     getattr(fresh, "version", "the new one"))
            self.tagger = fresh
            self.result.reloads += 1

    def _claim(self, want: int, after_id: int) -> list[Any] | None:
        started = time.perf_counter()
        rows = self._db("claiming a batch", lambda s: self._claim_in(s, want, after_id), give_up_on_stop=True)
        if rows:  # the claims that found nothing are the idle worker's polls
            self.result.claim_seconds += time.perf_counter() - started
        return rows

    def _claim_in(self, session: Session, want: int, after_id: int) -> list[Any]:
        rows = claims.claim_batch(session, worker_id=self.id, batch_size=want,
                                  lease_seconds=self.options.lease_seconds, after_id=after_id)
        if rows:  # /health shows it busy from now on
            claims.heartbeat(session, worker_id=self.id, lease_seconds=self.options.lease_seconds,
                             state="tagging")
        return rows

    def _tag_and_store(self, rows: list[Any]) -> None:
        self.state = "tagging"
        started = time.perf_counter()
        try:
            results = tag_items(self.tagger, rows)
        except BaseException:  # a tagger failure or a second signal: the batch goes back at once
            self._release([r.id for r in rows])
            raise
        self.result.tag_seconds += time.perf_counter() - started
        started = time.perf_counter()
        stored = self._db("storing a batch", lambda s: self._store(s, rows, results), give_up_on_stop=False)
        self.result.store_seconds += time.perf_counter() - started
        self.result.claimed += len(rows)
        self.result.tagged += stored or 0
        self.result.batches += 1
        self.state = "idle"
        if self.progress:
            self.progress(self.result.claimed)

    def _store(self, session: Session, rows: list[Any], results: list[Any]) -> int:
        held = claims.take_claims(session, worker_id=self.id, item_ids=[r.id for r in rows])
        if len(held) < len(rows):
            log.warning("worker %s: %d of %d items of its batch were taken by another worker after "
                        "its lease expired; it leaves them to that worker", self.name,
                        len(rows) - len(held), len(rows))
        kept = [(row, result) for row, result in zip(rows, results, strict=True) if row.id in held]
        stored = store_tags(session, self.tagger, [r for r, _ in kept], [x for _, x in kept])
        if self.after_store is not None:
            self.after_store(session)
        claims.heartbeat(session, worker_id=self.id, lease_seconds=self.options.lease_seconds,
                         state="idle", items_tagged=self.result.tagged + stored,
                         batches=self.result.batches + 1)
        return stored

    def _release(self, item_ids: list[int]) -> None:
        try:
            retry_locked(lambda: self._in_session(lambda s: claims.release_claims(
                s, worker_id=self.id, item_ids=item_ids)), what="tagging: releasing a batch")
        except DBAPIError as exc:  # they expire with the lease
            log.warning("worker %s could not release its batch (%s); it frees itself when the lease "
                        "expires", self.name, exc)

    def _retire(self) -> None:
        try:
            released = retry_locked(lambda: self._in_session(lambda s: claims.retire_worker(
                s, worker_id=self.id)), what="tagging: retiring the worker")
            if released:
                log.info("worker %s released %d claimed items", self.name, released)
        except DBAPIError as exc:
            log.warning("worker %s could not say goodbye (%s); its claims expire with the lease",
                        self.name, exc)

    # -- the database, waited for ------------------------------------------------------------------------
    def _in_session(self, work: Callable[[Session], T]) -> T:
        with session_scope(self.engine) as session:
            return work(session)

    def _db(self, what: str, work: Callable[[Session], T], *, give_up_on_stop: bool = False) -> T | None:
        """Run `work` in its own transaction until it succeeds, waiting out lost connections and
        locks; None if stopped meanwhile (`give_up_on_stop`), or after `outage_seconds`."""
        wait, first_failure = 0.5, None
        while True:
            try:
                return retry_locked(lambda: self._in_session(work), what=f"tagging: {what}")
            except DBAPIError as exc:
                if not transient(exc):
                    raise
                now = time.monotonic()
                first_failure = first_failure or now
                limit = self.options.outage_seconds
                if limit is not None and now - first_failure > limit:
                    raise
                self.result.reconnects += 1
                log.warning("worker %s: %s failed (%s); retrying in %.1f s", self.name, what,
                            _first_line(exc), wait)
                if give_up_on_stop and self.stop.is_set():
                    return None
                if give_up_on_stop:
                    self.stop.wait(wait)
                else:  # the batch in flight is stored once the database is back
                    time.sleep(wait)
                wait = min(wait * 2, MAX_BACKOFF_SECONDS)

    def _heartbeat(self) -> None:
        interval = max(0.2, self.options.lease_seconds / 4)
        while not self._beat_stop.wait(interval):
            try:
                with session_scope(self.engine) as session:
                    claims.heartbeat(session, worker_id=self.id, lease_seconds=self.options.lease_seconds,
                                     state="stopping" if self.stop.is_set() else self.state,
                                     items_tagged=self.result.tagged, batches=self.result.batches)
            except DBAPIError as exc:  # the next beat tries again; the lease covers a few misses
                log.warning("worker %s: heartbeat failed (%s)", self.name, _first_line(exc))
            except Exception:  # never let the heartbeat thread die silently
                log.exception("worker %s: heartbeat failed", self.name)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def stop_on_signals(worker: Worker) -> Iterator[None]:
    """SIGTERM / SIGINT: the first finishes the batch in flight, the second gives it up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: Any) -> None:
        if worker.stop.is_set():
            log.warning("worker %s: second signal, giving up the batch in flight", worker.name)
            raise KeyboardInterrupt  # unwinds through Worker.run, which releases the claims
        log.info("worker %s: %s, finishing the batch in flight", worker.name, signal.Signals(signum).name)
        worker.stop.set()

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
