"""`voc backfill`: ingest and tag large files in one pass, on Ray Data or in this process.

The stages are `feedback.ingest.backfill`'s, the same on both engines:

- `local`: one process reads, prepares, tags and stores, chunk after chunk (the baseline).
- `ray`: Ray Data reads each file on the machine that runs `voc backfill` (so the files need
  not be on the other nodes), prepares chunks in tasks across the cluster, and tags them in a
  pool of actors, one loaded model each (a GPU each where the cluster has GPUs); this process
  stores what comes back, in large transactions, while the cluster works on the next chunks.
  Ray retries a task whose worker died and restarts a lost actor; whatever a retry delivers
  twice is stored once (see `feedback.ingest.backfill`). Only this process connects to the
  database: the workers never get its URL.
"""

from __future__ import annotations

import glob
import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from feedback.config import Settings
from feedback.db import session_factory, utcnow
from feedback.ingest.backfill import (
    BackfillFile,
    BackfillResult,
    BackfillStore,
    Chunk,
    PrepareContext,
    plan_files,
    prepare_chunk,
    read_chunks,
    stored_keys,
    tag_chunk,
)
from feedback.ingest.mapping import FieldMapping
from feedback.ingest.readers import SUPPORTED_SUFFIXES
from feedback.tagging import TaggerLike

log = logging.getLogger(__name__)
ENGINES = ("local", "ray")
RAY_MISSING = ("--engine ray needs Ray Data, which is not installed: pip install '.[ray]' "
               "(in a checkout of the service; or pip install 'ray[data]'), or use --engine local")
TaggerFactory = Callable[[], TaggerLike]
PREPARE_CPUS = 0.5  # mapping, redaction, languages: light next to tagging


class BackfillError(ValueError):
    """A backfill that cannot start, with the fix in the message."""


def expand_files(pattern: str) -> list[Path]:
    """The files a FILE_OR_GLOB names: the file itself, or the glob's matches in sorted order
    (`**` recurses); a folder stands for the supported files in it."""
    path = Path(pattern)
    if path.is_file():
        return [path]
    if path.is_dir():
        pattern = str(path / "*")
    found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if path.is_dir():
        found = [p for p in found if p.suffix.lower() in SUPPORTED_SUFFIXES]
    if not found:
        raise BackfillError(f"no file matches {pattern!r}; give a file, a folder or a quoted glob "
                            f"such as 'exports/*.csv'")
    return found


def run_backfill(engine: Engine, files: Sequence[Path], *, settings: Settings, runner: str = "local",
                 address: str | None = None, source_name: str | None = None, audience: str = "customer",
                 mapping: FieldMapping | None = None, fmt: str | None = None, encoding: str | None = None,
                 batch_size: int | None = None, actors: int | None = None,
                 tagger_factory: TaggerFactory | None = None,
                 on_batch: Callable[[BackfillStore], None] | None = None) -> BackfillResult:
    """Ingest and tag `files` on `runner` ("local" or "ray"); returns what was stored.

    `batch_size` items are read, prepared and tagged together (default: `models.batch_size`,
    at least 256, as `voc tag`); `settings.ingest.batch_size` items are stored per transaction.
    `tagger_factory` makes the tagger (default: the service's, `jobs.tasks.load_service_tagger`);
    on Ray it runs once in each actor, so it must pickle. `on_batch` runs after each stored
    transaction. A file refused whole is recorded (failed run, dead letter) and named in
    `result.failed`; the others go on.
    """
    if runner not in ENGINES:
        raise BackfillError(f"unknown engine {runner!r}; use local or ray")
    if runner == "ray":
        _import_ray()  # before anything is recorded: a missing Ray is the user's to fix first
    mapping = mapping or FieldMapping()
    chunk_size = batch_size or max(settings.models.batch_size, 256)
    plans, failed = plan_files(engine, files, settings=settings, source_name=source_name, audience=audience,
                               mapping=mapping, fmt=fmt, encoding=encoding)
    if not plans:
        return BackfillResult(files=[], stats={}, failed=failed)
    with session_factory(engine)() as session:
        done = stored_keys(session, {plan.source_id for plan in plans})
    context = PrepareContext(settings=_worker_settings(settings), mapping=mapping, files=tuple(plans),
                             now=utcnow(), done=done)
    factory = tagger_factory or partial(_service_tagger, _worker_settings(settings))
    store = BackfillStore(engine, settings=settings, files=plans, mapping=mapping)
    if runner == "ray":
        chunks = _ray_chunks(plans, context, chunk_size=chunk_size, actors=actors, address=address,
                             tagger_factory=factory)
    else:
        chunks = _local_chunks(plans, context, chunk_size=chunk_size, tagger_factory=factory)
    try:
        _store_all(store, chunks, rows_per_write=settings.ingest.batch_size, on_batch=on_batch)
    except Exception as exc:
        try:
            store.finish(error=f"{type(exc).__name__}: {exc}")
        except Exception:  # the database may be what failed: the first error is the one to see
            log.exception("backfill: could not record the failed runs")
        raise
    result = store.finish()
    result.failed = failed
    return result


def _store_all(store: BackfillStore, chunks: Iterator[Chunk], *, rows_per_write: int,
               on_batch: Callable[[BackfillStore], None] | None) -> None:
    pending: list[Chunk] = []
    size = 0
    try:
        for chunk in chunks:
            pending.append(chunk)
            size += chunk.seen
            if size >= rows_per_write:
                store.store(pending)
                pending, size = [], 0
                if on_batch is not None:
                    on_batch(store)
        if pending:
            store.store(pending)
            if on_batch is not None:
                on_batch(store)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a generator's cleanup (Ray's shutdown) runs now, also on an error


def _worker_settings(settings: Settings) -> Settings:
    """The settings shipped to workers: everything but the database URL, which they never use."""
    return settings.model_copy(update={"database_url": "sqlite://"})


def _service_tagger(settings: Settings) -> TaggerLike:
    from jobs.tasks import load_service_tagger  # loads torch and the encoder: in the worker only

    return load_service_tagger(settings)  # type: ignore[no-any-return]


# -- local: one process ----------------------------------------------------------------------
def _local_chunks(files: Sequence[BackfillFile], context: PrepareContext, *, chunk_size: int,
                  tagger_factory: TaggerFactory) -> Iterator[Chunk]:
    tagger = tagger_factory()
    for file in files:
        for chunk in read_chunks(file, chunk_size):
            yield tag_chunk(tagger, prepare_chunk(context, chunk))


# -- ray: Ray Data across a cluster ----------------------------------------------------------
def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (the extra installs Ray Data, not only Ray core)
    except ImportError as exc:
        raise BackfillError(RAY_MISSING) from exc
    return ray


def _ray_chunks(files: Sequence[BackfillFile], context: PrepareContext, *, chunk_size: int,
                actors: int | None, address: str | None, tagger_factory: TaggerFactory) -> Iterator[Chunk]:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():  # a caller (a test, a notebook) may have connected already
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
        started = True
    try:
        yield from _ray_pipeline(ray, files, context, chunk_size=chunk_size, actors=actors,
                                 tagger_factory=tagger_factory)
    finally:
        if started:
            ray.shutdown()


def _ray_pipeline(ray: Any, files: Sequence[BackfillFile], context: PrepareContext, *, chunk_size: int,
                  actors: int | None, tagger_factory: TaggerFactory) -> Iterator[Chunk]:
    from ray.data import ActorPoolStrategy

    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 1))
    size = actors or gpus or max(1, int(cpus))
    here = ray.get_runtime_context().get_node_id()
    ds = ray.data.from_items([{"file": file.index} for file in files], override_num_blocks=len(files))
    # Read on this process's node, where the files are (Ray Data pins its own local:// reads by
    # the same node label); zero CPUs, so a read never waits for the tagging to free one.
    ds = ds.flat_map(partial(_read_stage, tuple(files), chunk_size), num_cpus=0,
                     label_selector={"ray.io/node-id": here})
    ds = ds.map(partial(_prepare_stage, context), num_cpus=PREPARE_CPUS)
    ds = ds.map(_TagStage, fn_constructor_kwargs={"tagger_factory": tagger_factory},
                compute=ActorPoolStrategy(size=size), num_cpus=_actor_cpus(cpus, size),
                num_gpus=1 if gpus else None)
    ds.context.target_max_block_size = 1  # a block per chunk: chunks are prepared in parallel
    ds.context.execution_options.preserve_order = True  # stored in file order, as `voc ingest`
    ds.context.enable_progress_bars = False
    log.info("backfill on Ray: %d tagging actor(s)%s", size, " with a GPU each" if gpus else "")
    for row in ds.iter_rows():
        yield pickle.loads(row["chunk"])


def _actor_cpus(cpus: float, actors: int) -> float:
    """CPUs each tagging actor asks for: one, or less where that would leave the prepare stage
    none (it would wait forever for a CPU the actors hold)."""
    share = round(min(1.0, max(0.1, (cpus - PREPARE_CPUS) / actors)), 2)
    # Equal resources would let Ray Data fuse the prepare stage into the actors (serial work there).
    return share - 0.01 if share == PREPARE_CPUS else share


def _read_stage(files: tuple[BackfillFile, ...], chunk_size: int, row: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for chunk in read_chunks(files[row["file"]], chunk_size):
        yield {"chunk": pickle.dumps(chunk, protocol=5)}


def _prepare_stage(context: PrepareContext, row: dict[str, Any]) -> dict[str, Any]:
    return {"chunk": pickle.dumps(prepare_chunk(context, pickle.loads(row["chunk"])), protocol=5)}


class _TagStage:
    """A Ray actor: loads the tagger once, tags chunk after chunk."""

    def __init__(self, tagger_factory: TaggerFactory) -> None:
        self.tagger = tagger_factory()
        log.info("tagging actor ready in process %d", os.getpid())

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"chunk": pickle.dumps(tag_chunk(self.tagger, pickle.loads(row["chunk"])), protocol=5)}


def summary(result: BackfillResult, elapsed: float) -> str:
    """One line: what was read, stored, tagged, skipped, and how fast."""
    total = result.total
    rate = total.seen / elapsed if elapsed > 0 else 0.0
    return (f"{total.summary()}; {result.tagged} tagged, {result.skipped} already stored with tags; "
            f"{result.untagged} untagged left; {elapsed:.1f}s ({rate:.0f} items/s)")

