"""Ingest one file as one run, committing batch by batch so a crash loses at most one batch.

Re-running after a crash is safe: items already stored are recognised by their keys.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from feedback.config import Settings
from feedback.db import session_factory
from feedback.ingest.mapping import FieldMapping
from feedback.ingest.readers import IngestError, RawRecord, read_records
from feedback.ingest.service import Ingestor, IngestStats, finish_run, get_or_create_source, start_run


def ingest_file(engine: Engine, path: Path, *, settings: Settings, source_name: str | None = None,
                audience: str = "customer", mapping: FieldMapping | None = None,
                fmt: str | None = None, encoding: str | None = None, header_rows: int = 1,
                progress: callable | None = None) -> tuple[IngestStats, int]:  # type: ignore[valid-type]
    """Ingest `path` into source `source_name` (default `file:<name>`); returns (stats, run id).

    A problem with the whole file raises `IngestError` after recording the failed run and a
    dead letter, so the failure is visible in the database too.
    """
    path = Path(path)
    name = source_name or f"file:{path.name}"
    session = session_factory(engine)()
    try:
        source = get_or_create_source(session, name=name, connector="file", audience=audience,
                                      config={"path": str(path)})
        run = start_run(session, source, str(path))
        session.commit()
        ingestor = Ingestor(session, source=source, settings=settings, mapping=mapping, run=run)

        def _commit(stats: IngestStats) -> None:
            session.commit()
            if progress is not None:
                progress(stats)

        try:
            records = read_records(path, fmt=fmt, encoding=encoding, header_rows=header_rows,
                                   on_decoded=lambda used: setattr(run, "encoding", used))
            stats = ingestor.ingest(records, on_batch=_commit)
        except IngestError as exc:
            session.rollback()
            ingestor.dead_letter(RawRecord(path.name, None, _head(path)), str(exc))
            finish_run(session, run, ingestor.stats, error=str(exc))
            session.commit()
            raise
        finish_run(session, run, stats)
        session.commit()
        return stats, run.id
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _head(path: Path, limit: int = 2000) -> str:
    """The start of a file, for a dead letter about the whole file."""
    try:
        return path.read_bytes()[:limit].decode("utf-8", errors="replace")
    except OSError:
        return ""
