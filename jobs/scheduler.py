"""The job scheduler (APScheduler): named jobs on intervals or cron, one active scheduler per DB.

`job_specs()` is the registry of jobs: `voc jobs list|run` and the scheduler read it. Append a
`JobSpec` to the list it returns to add a job (tagging, a pull per scheduled source, topic
refits, digests).

Every process may start a scheduler, but only the holder of the lease in the database
(`jobs.lease`) runs one: the others wait and take over when the holder's lease expires. The
holder keeps its jobs in APScheduler's `SQLAlchemyJobStore` in the service database (table
`apscheduler_jobs`), so next run times survive restarts: a job due while the service was down
runs once when it is back. The lease heartbeat every few seconds is what `/health` shows.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from feedback.config import Settings
from feedback.db import get_engine, session_factory
from jobs import lease
from jobs.digests import digest_job_spec
from jobs.tasks import record_job

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"
JOBSTORE_TABLE = "apscheduler_jobs"
SOURCE_JOB_PREFIX = "source:"
RECONCILE_SECONDS = 30  # how soon a source added through the API gets its job
ADAPT_CRON = "30 3 * * *"  # learn from the day's corrections at night (jobs.adapt)
RETAG_PER_RUN = 5000  # items re-tagged per tag run after a promotion (newest first)


@dataclass
class JobSpec:
    """A named job: what it runs and when."""

    name: str
    description: str
    trigger: Any
    run: Callable[[], dict[str, Any] | None]


def job_specs(settings: Settings) -> list[JobSpec]:
    """Every scheduled job of the service."""
    engine = get_engine(settings.database_url)
    tagger_holder: dict[str, Any] = {}

    def tag_new() -> dict[str, Any]:
        from feedback.corrections.versions import live_heads_dir
        from jobs.adapt import retag_stale
        from jobs.tasks import load_service_tagger, tag_pending

        live = live_heads_dir(settings)  # a promotion or rollback: load the live version
        if "tagger" not in tagger_holder or tagger_holder.get("live") != live:
            tagger_holder.update(tagger=load_service_tagger(settings), live=live)
        result = tag_pending(
            engine, tagger_holder["tagger"], batch_size=max(settings.models.batch_size, 256)
        )
        # then items another version tagged, newest first, a bounded share per run
        retagged = retag_stale(engine, tagger_holder["tagger"], batch_size=256, limit=RETAG_PER_RUN)
        return {"tagged": result.tagged, "remaining": result.remaining, "retagged": retagged}

    def adapt_job() -> dict[str, Any]:
        from jobs.adapt import run_adapt

        return run_adapt(settings, by="scheduler")

    return [
        JobSpec(
            "tag",
            "tag new items in batches",
            IntervalTrigger(seconds=settings.scheduler.tag_interval_seconds),
            tag_new,
        ),
        digest_job_spec(settings),
        JobSpec("adapt", "learn from corrections: train a challenger, promote it only if it beats the "
                "live model on the held-back corrections", CronTrigger.from_crontab(ADAPT_CRON), adapt_job),
        *source_job_specs(settings),
        *topic_job_specs(settings),
    ]


def topic_job_specs(settings: Settings) -> list[JobSpec]:
    """A topic refit per audience, on `scheduler.topic_refit_cron` (weekly by default)."""

    def refit_job(audience: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            from feedback.db import retry_locked, session_scope
            from feedback.topics.service import refit
            from jobs.cli_topics import phrase_embedder_for

            def fit() -> dict[str, Any]:
                with session_scope(get_engine(settings.database_url)) as session:
                    return refit(session, var_dir=settings.var_dir, audience=audience,
                                 max_documents=settings.scheduler.topic_refit_max_documents,
                                 phrase_embedder=phrase_embedder_for).to_json()

            try:
                return retry_locked(fit, what=f"topic refit ({audience})")
            except ValueError as exc:  # nothing to fit yet: not a failure
                return {"skipped": str(exc)}

        return run

    trigger = CronTrigger.from_crontab(
        settings.scheduler.topic_refit_cron, timezone=settings.scheduler.timezone
    )
    return [
        JobSpec(
            f"topics:refit:{audience}",
            f"refit the {audience} topics (aligned to the last version)",
            trigger,
            refit_job(audience),
        )
        for audience in ("customer", "employee")
    ]


# -- sources ---------------------------------------------------------------------------------------
def schedule_trigger(schedule: str, *, timezone: str) -> Any:
    """The APScheduler trigger of a source's schedule ('every 15m' or a crontab line)."""
    from feedback.sources.config import parse_schedule

    spec = parse_schedule(schedule)
    if spec.kind == "interval":
        return IntervalTrigger(seconds=spec.seconds, timezone=timezone)
    return CronTrigger.from_crontab(spec.cron, timezone=timezone)


def pull_job(settings: Settings, name: str) -> Callable[[], dict[str, Any]]:
    """The job that pulls source `name`; a failed pull fails the job run (kept in job_runs)."""

    def run() -> dict[str, Any]:
        from feedback.sources.service import pull_source

        result = pull_source(get_engine(settings.database_url), name, settings=settings)
        if result.status == "busy":  # another process is pulling it right now: not a failure
            return result.as_dict()
        if result.status != "succeeded":
            raise RuntimeError(f"source {name}: {result.error}")
        return result.as_dict()

    return run


def source_job_specs(settings: Settings) -> list[JobSpec]:
    """A pull job per enabled, scheduled source (config file and API), named `source:<name>`."""
    from feedback.sources.connectors import CONNECTORS
    from feedback.sources.service import declared_configs, sync_declared_sources

    entries: list[tuple[str, str, str]] = []  # (name, connector, schedule)
    try:
        with session_factory(get_engine(settings.database_url))() as session:
            sync_declared_sources(session, settings)
            session.commit()
            from feedback.sources.repository import list_sources

            entries = [
                (s.name, s.connector, s.schedule)
                for s in list_sources(session)
                if s.enabled and s.schedule
            ]
    except SQLAlchemyError as exc:  # no database yet (before `voc init`): the file's sources only
        log.warning("sources from the database unavailable (%s); listing the config file's", exc)
        configs, _ = declared_configs(settings)
        entries = [(c.name, c.connector, c.schedule) for c in configs if c.enabled and c.schedule]
    specs = []
    for name, connector, schedule in entries:
        kind = CONNECTORS.get(connector)
        if kind is None or not kind.pulls:
            continue
        try:
            trigger = schedule_trigger(schedule, timezone=settings.scheduler.timezone)
        except ValueError as exc:
            log.error("source %s: %s", name, exc)
            continue
        specs.append(
            JobSpec(
                f"{SOURCE_JOB_PREFIX}{name}",
                f"pull source {name} ({connector}, {schedule})",
                trigger,
                pull_job(settings, name),
            )
        )
    return specs


def run_job(settings: Settings, name: str) -> dict[str, Any]:
    """Run one named job now (`voc jobs run NAME`); `source:NAME` works for any pulled source."""
    specs = {spec.name: spec for spec in job_specs(settings)}
    engine = get_engine(settings.database_url)
    if name not in specs and name.startswith(SOURCE_JOB_PREFIX):
        from feedback.sources.repository import get_source

        with session_factory(engine)() as session:
            if get_source(session, name[len(SOURCE_JOB_PREFIX) :]) is not None:
                return record_job(engine, name, pull_job(settings, name[len(SOURCE_JOB_PREFIX) :]))
    if name not in specs:
        raise KeyError(f"no job named {name!r}; jobs: {', '.join(sorted(specs))}")
    return record_job(engine, name, specs[name].run)


# -- the scheduler process -------------------------------------------------------------------------
@dataclass
class _Active:
    """The scheduler of this process (jobs in the store name `run_scheduled` by reference)."""

    settings: Settings
    holder: str
    specs: dict[str, JobSpec] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_ACTIVE: _Active | None = None


def run_scheduled(name: str) -> None:
    """Entry point of every stored job: run the named spec if this process still holds the lease."""
    active = _ACTIVE
    if active is None:
        log.warning("job %s fired outside a running scheduler; ignored", name)
        return
    settings = active.settings
    engine = get_engine(settings.database_url)
    if not lease.acquire_or_renew(
        engine, name=LEASE_NAME, holder=active.holder, seconds=settings.scheduler.lease_seconds
    ):
        return  # another process is the active scheduler
    spec = active.specs.get(name)
    if spec is None:
        log.warning("job %s is no longer defined; skipped", name)
        return
    try:
        record_job(engine, name, spec.run)
    except Exception:  # recorded in job_runs; the scheduler keeps going
        pass


def build_scheduler(settings: Settings) -> BackgroundScheduler:
    """A scheduler whose jobs live in the service database."""
    engine = get_engine(settings.database_url)
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=settings.scheduler.timezone,
    )


def reconcile(scheduler: BackgroundScheduler, specs: list[JobSpec]) -> None:
    """Make the stored jobs match `specs`; an unchanged trigger keeps its next run time."""
    wanted = {spec.name: spec for spec in specs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            scheduler.remove_job(job.id)
    for spec in specs:
        job = scheduler.get_job(spec.name)
        if job is not None and str(job.trigger) == str(spec.trigger):
            continue
        scheduler.add_job(
            run_scheduled,
            trigger=spec.trigger,
            args=[spec.name],
            id=spec.name,
            name=spec.description,
            replace_existing=True,
        )


def _refresh(active: _Active, specs: list[JobSpec]) -> list[JobSpec]:
    """Take new and changed specs; keep unchanged ones (the tag job keeps its loaded model)."""
    with active.lock:
        fresh = {}
        for spec in specs:
            old = active.specs.get(spec.name)
            fresh[spec.name] = (
                old if old is not None and str(old.trigger) == str(spec.trigger) else spec
            )
        active.specs = fresh
        return list(fresh.values())


def run_scheduler(
    settings: Settings, *, stop: threading.Event | None = None, poll_seconds: float | None = None
) -> None:
    """Hold (or wait for) the lease and run the scheduled jobs until `stop` or SIGTERM/SIGINT."""
    global _ACTIVE
    engine = get_engine(settings.database_url)
    holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    seconds = settings.scheduler.lease_seconds
    poll = poll_seconds if poll_seconds is not None else max(1.0, seconds / 3)
    if stop is None:
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
    active = _Active(settings=settings, holder=holder)
    scheduler: BackgroundScheduler | None = None
    reconciled_at = 0.0
    log.info("scheduler %s waiting for the lease", holder)
    try:
        while not stop.is_set():
            held = lease.acquire_or_renew(engine, name=LEASE_NAME, holder=holder, seconds=seconds)
            if held and (scheduler is None or time.monotonic() - reconciled_at > RECONCILE_SECONDS):
                specs = _refresh(active, job_specs(settings))
                _ACTIVE = active
                if scheduler is None:
                    scheduler = build_scheduler(settings)
                    scheduler.start(paused=True)
                    reconcile(scheduler, specs)
                    scheduler.resume()
                    log.info(
                        "scheduler %s holds the lease; jobs: %s",
                        holder,
                        ", ".join(j.id for j in scheduler.get_jobs()),
                    )
                else:
                    reconcile(scheduler, specs)
                reconciled_at = time.monotonic()
            elif not held and scheduler is not None:
                log.warning("scheduler %s lost the lease; standing by", holder)
                scheduler.shutdown(wait=False)
                scheduler = None
            stop.wait(poll)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        if _ACTIVE is active:
            _ACTIVE = None
        lease.release(engine, name=LEASE_NAME, holder=holder)
