"""The job scheduler (APScheduler): named jobs on intervals or cron, one active scheduler per DB."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from feedback.config import Settings
from feedback.db import get_engine
from jobs import lease
from jobs.digests import digest_job_spec
from jobs.tasks import record_job

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"


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
        from jobs.tasks import load_service_tagger, tag_pending

        if "tagger" not in tagger_holder:
            tagger_holder["tagger"] = load_service_tagger(settings)
        result = tag_pending(engine, tagger_holder["tagger"], batch_size=max(settings.models.batch_size, 256))
        return {"tagged": result.tagged, "remaining": result.remaining}

    return [
        JobSpec("tag", "tag new items in batches", IntervalTrigger(seconds=settings.scheduler.tag_interval_seconds),
                tag_new),
        digest_job_spec(settings),
    ]


def run_job(settings: Settings, name: str) -> dict[str, Any]:
    """Run one named job now (`voc jobs run NAME`)."""
    specs = {spec.name: spec for spec in job_specs(settings)}
    if name not in specs:
        raise KeyError(f"no job named {name!r}; jobs: {', '.join(sorted(specs))}")
    return record_job(get_engine(settings.database_url), name, specs[name].run)


def run_scheduler(settings: Settings, *, stop: threading.Event | None = None) -> None:
    """Run scheduled jobs while this process holds the lease; heartbeat every few seconds."""
    engine = get_engine(settings.database_url)
    holder = f"{socket.gethostname()}:{os.getpid()}"
    seconds = settings.scheduler.lease_seconds
    scheduler = BlockingScheduler(timezone=settings.scheduler.timezone)

    def guarded(spec: JobSpec) -> Callable[[], None]:
        def _run() -> None:
            if not lease.acquire_or_renew(engine, name=LEASE_NAME, holder=holder, seconds=seconds):
                return  # another process is the active scheduler
            record_job(engine, spec.name, spec.run)
        return _run

    for spec in job_specs(settings):
        scheduler.add_job(guarded(spec), spec.trigger, id=spec.name, name=spec.description,
                          max_instances=1, coalesce=True, replace_existing=True)
    scheduler.add_job(lambda: lease.acquire_or_renew(engine, name=LEASE_NAME, holder=holder, seconds=seconds),
                      IntervalTrigger(seconds=max(1, seconds // 3)), id="heartbeat", name="lease heartbeat")
    lease.acquire_or_renew(engine, name=LEASE_NAME, holder=holder, seconds=seconds)
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), scheduler.shutdown(wait=False)), daemon=True).start()
    log.info("scheduler %s started with jobs: %s", holder, ", ".join(j.id for j in scheduler.get_jobs()))
    try:
        scheduler.start()
    finally:
        lease.release(engine, name=LEASE_NAME, holder=holder)
