"""The service's units of work, each owning its transaction; the CLI and the scheduler call these."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from feedback.analytics.rollups import refresh_rollups
from feedback.config import Settings
from feedback.db import session_factory, session_scope, utcnow
from feedback.models import JobRun
from feedback.tagging import count_untagged, tag_batch
from feedback.topics.service import assign_pending_topics

log = logging.getLogger(__name__)
ROLLUP_DAYS_PER_BATCH = 7


def load_service_tagger(settings: Settings) -> Any:
    """The tagger configured by `settings.models` (loads the encoder: seconds, not at import)."""
    from classifiers import TaggerConfig, TouchpointSpec, load_tagger

    models = settings.models
    kwargs: dict[str, Any] = {
        "encoder": models.encoder,
        "heads_dir": models.heads_dir,
        "device": models.device,
        "batch_size": models.batch_size,
        "max_length": models.max_length,
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


@dataclass
class TagRunResult:
    tagged: int
    remaining: int


def tag_pending(engine: Engine, tagger: Any, *, batch_size: int = 256, limit: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> TagRunResult:
    """Tag every untagged item in batches, committing each batch (a crash loses one batch at most)."""
    factory = session_factory(engine)
    with factory() as session:
        total = count_untagged(session)
    if limit is not None:
        total = min(total, limit)
    done = 0
    while done < total:
        with session_scope(engine) as session:
            n = tag_batch(session, tagger, batch_size=min(batch_size, total - done))
            assign_pending_topics(session)  # new items get a topic from the current version
            # Rollups follow in the same transaction when the batch is recent feedback (a few days).
            refresh_rollups(session, max_days=ROLLUP_DAYS_PER_BATCH)
        if n == 0:
            break
        done += n
        if progress:
            progress(done, total)
    with session_scope(engine) as session:  # what the batches left (a backfill: its days, once)
        refresh_rollups(session)
    with factory() as session:
        remaining = count_untagged(session)
    return TagRunResult(tagged=done, remaining=remaining)


def record_job(engine: Engine, job: str, fn: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """Run `fn` as the named job and keep a `job_runs` row of how it went."""
    with session_scope(engine) as session:
        run = JobRun(job=job, status="running")
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        detail = fn() or {}
    except Exception as exc:
        with session_scope(engine) as session:
            failed = session.get(JobRun, run_id)
            assert failed is not None
            failed.status, failed.finished_at, failed.error = "failed", utcnow(), f"{type(exc).__name__}: {exc}"
        log.exception("job %s failed", job)
        raise
    with session_scope(engine) as session:
        done = session.get(JobRun, run_id)
        assert done is not None
        done.status, done.finished_at, done.detail = "succeeded", utcnow(), detail
    return detail


def demo_csv_path(settings: Settings) -> Path:
    """Where `voc demo` writes the generated demo data."""
    return settings.var_dir / "demo" / "northwind_feedback.csv"
