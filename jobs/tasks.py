"""The service's units of work, each owning its transaction; the CLI and the scheduler call these."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from feedback.analytics.rollups import refresh_rollups
from feedback.config import Settings
from feedback.db import retry_locked, session_factory, session_scope, utcnow
from feedback.models import JobRun
from feedback.tagging import count_untagged
from feedback.topics.service import assign_pending_topics, load_current_topic_models

log = logging.getLogger(__name__)
ROLLUP_DAYS_PER_BATCH = 7
TAG_OUTAGE_SECONDS = 120.0  # a `voc tag` run waits this long for a lost database, then fails


def load_service_tagger(settings: Settings) -> Any:
    """The tagger configured by `settings.models` (loads the encoder: seconds, not at import)."""
    from classifiers import TaggerConfig, TouchpointSpec, load_tagger
    from feedback.corrections.versions import live_heads_dir

    models = settings.models
    kwargs: dict[str, Any] = {
        "encoder": models.encoder,
        # the version promoted from corrections (`voc models list`), unless heads are configured
        "heads_dir": models.heads_dir or live_heads_dir(settings),
        "device": models.device,
        "batch_size": models.batch_size,
        "max_length": models.max_length,
        "custom_heads": tuple(models.custom_heads),
    }
    if models.touchpoints:
        kwargs["touchpoints"] = tuple(
            TouchpointSpec(name=t.name, description=t.description, examples=tuple(t.examples),
                           audience=t.audience)
            for t in models.touchpoints
        )
    if models.touchpoint_threshold is not None:
        kwargs["touchpoint_threshold"] = models.touchpoint_threshold
    return load_tagger(TaggerConfig(**kwargs))


def live_version_reloader(settings: Settings) -> Callable[[], Any]:
    """For a long-running worker: a function that returns a freshly loaded service tagger when the
    live version (`voc models list`) is no longer the one loaded, else None. A database error is
    raised, not read as "the shipped model" (the worker keeps its tagger and asks again later)."""
    from feedback.corrections.versions import live_version
    from feedback.db import get_engine

    if settings.models.heads_dir:  # heads fixed by configuration: promotions do not apply
        return lambda: None
    engine = get_engine(settings.database_url)

    def live_path() -> str | None:
        with Session(engine) as session:
            row = live_version(session)
            return row.path if row is not None else None

    loaded = {"path": live_path()}

    def reload() -> Any:
        path = live_path()
        if path == loaded["path"]:
            return None
        tagger = load_service_tagger(settings)
        loaded["path"] = path
        return tagger

    return reload


@dataclass
class TagRunResult:
    tagged: int
    remaining: int


def tag_pending(engine: Engine, tagger: Any, *, batch_size: int = 256, limit: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> TagRunResult:
    """Tag every untagged item in batches, committing each batch (a crash loses one batch at most).

    One tagging worker run to completion (`jobs.worker`): batches are claimed, so this runs
    safely beside `voc worker` processes and other runs. The models run between two short
    transactions (claim a batch; store its tags), never inside one, so pushes and other jobs
    wait for the tagger's writes only briefly; a write that finds the database locked is retried
    (`retry_locked`), not fatal. Each batch also gives its items a topic and refreshes recent
    rollups; at the end, items tagged by workers get their topics and the rollups catch up.
    """
    from jobs.worker import Worker, WorkerOptions

    factory = session_factory(engine)
    with factory() as session:
        total = count_untagged(session)
        load_current_topic_models(session)
    if limit is not None:
        total = min(total, limit)
    options = WorkerOptions(batch_size=batch_size, until_empty=True, limit=limit, name="voc tag",
                            outage_seconds=TAG_OUTAGE_SECONDS)
    report = (lambda done: progress(done, max(total, done))) if progress else None
    result = Worker(engine, tagger, options, after_store=_topics_and_recent_rollups, progress=report).run()
    retry_locked(lambda: _assign_all_topics(engine), what="tagging: topics")
    retry_locked(lambda: _refresh_all_rollups(engine), what="tagging: rollups")
    with factory() as session:
        remaining = count_untagged(session)
    return TagRunResult(tagged=result.tagged, remaining=remaining)


def _topics_and_recent_rollups(session: Session) -> None:
    """In each batch's store transaction: topics for new items, and rollups when the batch is
    recent feedback (a few days)."""
    assign_pending_topics(session)  # new items get a topic from the current version
    refresh_rollups(session, max_days=ROLLUP_DAYS_PER_BATCH)


def _assign_all_topics(engine: Engine) -> None:
    while True:  # items tagged by `voc worker` processes (which leave topics to this job)
        with session_scope(engine) as session:
            if not assign_pending_topics(session):
                return


def _refresh_all_rollups(engine: Engine) -> None:
    with session_scope(engine) as session:  # what the batches left (a backfill: its days, once)
        refresh_rollups(session)


def record_job(engine: Engine, job: str, fn: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """Run `fn` as the named job and keep a `job_runs` row of how it went."""
    def start() -> int:
        with session_scope(engine) as session:
            run = JobRun(job=job, status="running")
            session.add(run)
            session.flush()
            return run.id

    def finish(run_id: int, **values: Any) -> None:
        with session_scope(engine) as session:
            row = session.get(JobRun, run_id)
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value)

    run_id = retry_locked(start, what=f"job {job}: recording its start")
    try:
        detail = fn() or {}
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        retry_locked(lambda: finish(run_id, status="failed", finished_at=utcnow(), error=error),
                     what=f"job {job}: recording its failure")
        log.exception("job %s failed", job)
        raise
    retry_locked(lambda: finish(run_id, status="succeeded", finished_at=utcnow(), detail=detail),
                 what=f"job {job}: recording its end")
    return detail


def demo_csv_path(settings: Settings) -> Path:
    """Where `voc demo` writes the generated demo data."""
    return settings.var_dir / "demo" / "northwind_feedback.csv"
