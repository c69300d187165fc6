"""Pull sources: one run each, batches committed together with the cursor that covers them.

`pull_source` owns its transactions (it is a unit of work, like a job): each batch of items,
its dead letters, the run's counters and the source's new cursor are committed at once. A
crash (even SIGKILL) therefore loses at most the batch in flight, and the next pull starts
exactly after the last stored batch. Transient failures are retried with backoff and jitter
from the last committed cursor; any other failure ends this source's run as failed without
touching the others (`pull_all`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from feedback import leases
from feedback.config import Settings
from feedback.db import session_factory, utcnow
from feedback.ingest.mapping import FieldMapping, RowError, normalize
from feedback.ingest.readers import IngestError, RawRecord
from feedback.ingest.service import Ingestor, IngestStats, build_redactor, finish_run, ingest_run, start_run
from feedback.models import DeadLetter, IngestionRun, Source
from feedback.privacy.redaction import Redactor
from feedback.sources import repository
from feedback.sources.backoff import Backoff, TransientError, retry
from feedback.sources.config import CredentialsError, SourceConfig, declaration_errors
from feedback.sources.connectors import CONNECTORS, Batch, Connector, PullContext
from feedback.sources.connectors.base import identity_mapping

PULL_LEASE_SECONDS = 300  # renewed after every batch; a crashed puller's lease lapses

log = logging.getLogger(__name__)


class SourceNotFound(LookupError):
    """No source by that name."""


@dataclass
class PullResult:
    """How one pull of one source went."""

    source: str
    status: str  # succeeded | failed
    run_id: int | None = None
    stats: IngestStats = field(default_factory=IngestStats)
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "run_id": self.run_id,
            "seen": self.stats.seen,
            "new": self.stats.new,
            "updated": self.stats.updated,
            "unchanged": self.stats.unchanged,
            "dead_lettered": self.stats.dead,
            "error": self.error,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
        }


# -- declaring sources ---------------------------------------------------------------------------
def source_config(source: Source) -> SourceConfig:
    """The declaration behind a stored source."""
    return SourceConfig.from_row(
        name=source.name,
        connector=source.connector,
        audience=source.audience,
        schedule=source.schedule,
        enabled=source.enabled,
        config=source.config,
    )


def save_source(session: Session, config: SourceConfig, *, origin: str) -> Source:
    """Create or update the stored source from a declaration; its cursor and items stay."""
    source = repository.get_source(session, config.name)
    stored = config.stored_config(origin=origin)
    if source is None:
        source = Source(
            name=config.name,
            connector=config.connector,
            audience=config.audience,
            schedule=config.schedule,
            enabled=config.enabled,
            config=stored,
        )
        session.add(source)
    else:
        if source.connector != config.connector:
            source.cursor = None  # another connector's cursor means nothing to this one
        source.connector, source.audience = config.connector, config.audience
        source.schedule, source.enabled = config.schedule, config.enabled
        if source.config != stored:
            source.config = stored
    session.flush()
    return source


class SourceSettingsError(ValueError):
    """Sources declared in the config file are invalid (raised at `voc init` and start-up)."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__(
            f"{len(self.errors)} source(s) in the config file are invalid:\n"
            + "\n".join(f"- {error}" for error in self.errors)
            + "\nFix them in the [[sources]] entries of the config file (VOC_CONFIG, default "
            "./voc.toml; docs/sources.md) and start again."
        )


def declared_configs(settings: Settings) -> tuple[list[SourceConfig], list[str]]:
    """Sources declared in the settings, and an error line for each declaration that is invalid."""
    configs, errors = [], []
    for index, entry in enumerate(settings.sources):
        try:
            configs.append(SourceConfig.model_validate(entry))
        except ValueError as exc:
            name = (
                entry.get("name", f"#{index + 1}")
                if isinstance(entry, Mapping)
                else f"#{index + 1}"
            )
            reason = declaration_errors(exc) if isinstance(exc, ValidationError) else str(exc)
            # Most reasons start "source 'x' (connector): ..."; say once where it was declared.
            head = re.match(rf"source {re.escape(repr(name))}(?: \([\w]+\))?:? ", reason)
            subject = head.group(0).rstrip(": ") if head else f"source {name!r}"
            errors.append(
                f"{subject} in the config file is invalid: {reason[head.end():] if head else reason}"
            )
    return configs, errors


def check_declared_sources(settings: Settings) -> None:
    """Raise `SourceSettingsError` naming every invalid source of the config file.

    While it runs, the service skips an invalid declaration and logs it (one bad source never
    stops the others); at `voc init` and start-up the operator hears of it at once instead of
    at the first pull.
    """
    _, errors = declared_configs(settings)
    if errors:
        raise SourceSettingsError(errors)


def invalid_stored_sources(session: Session) -> list[str]:
    """An error line for each source declared through the API or `voc sources add` whose stored
    declaration no longer passes the checks (say, after an upgrade that checks more)."""
    errors = []
    for source in repository.list_sources(session):
        if (source.config or {}).get("origin") != "api":
            continue  # the config file's are checked by check_declared_sources
        try:
            source_config(source)
        except ValueError as exc:
            reason = declaration_errors(exc) if isinstance(exc, ValidationError) else str(exc)
            errors.append(
                f"{reason}; declare it again with `voc sources add {source.name} --replace ...` "
                f"or PATCH /v1/sources/{source.name}"
            )
    return errors


def sync_declared_sources(session: Session, settings: Settings) -> list[str]:
    """Store the config file's sources (the file wins for them); returns invalid ones' errors.

    A source that was declared in the file and no longer is gets disabled, not deleted: its
    items stay.
    """
    configs, errors = declared_configs(settings)
    for error in errors:
        log.error(error)
    names = set()
    for config in configs:
        save_source(session, config, origin="config")
        names.add(config.name)
    for source in repository.list_sources(session):
        if (
            (source.config or {}).get("origin") == "config"
            and source.name not in names
            and source.enabled
        ):
            source.enabled = False
    session.flush()
    return errors


def connector_for(
    config: SourceConfig,
    *,
    settings: Settings,
    credentials: dict[str, str] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Connector:
    """An instance of the source's connector."""
    retry_cfg = config.retry
    ctx = PullContext(
        config=config,
        options=config.parsed_options(),
        credentials=credentials or {},
        mapping=config.field_mapping(),
        batch_size=config.batch_size or settings.ingest.batch_size,
        backoff=Backoff(
            attempts=retry_cfg.attempts,
            base_seconds=retry_cfg.base_seconds,
            cap_seconds=retry_cfg.cap_seconds,
        ),
        sleep=sleep,
    )
    return CONNECTORS[config.connector](ctx)


def ingest_mapping(connector: Connector) -> FieldMapping:
    """The mapping the ingest applies to this connector's payloads."""
    mapping = connector.ctx.mapping
    return identity_mapping(mapping) if connector.maps_per_item else mapping


# -- pulling -------------------------------------------------------------------------------------
def pull_source(
    engine: Engine,
    name: str,
    *,
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    redactor: Redactor | None = None,
) -> PullResult:
    """Pull one source now (see the module docstring); never raises for a failing source."""
    started = time.perf_counter()
    session = session_factory(engine)()
    try:
        sync_declared_sources(session, settings)
        source = repository.get_source(session, name)
        if source is None:
            session.commit()
            known = ", ".join(s.name for s in repository.list_sources(session)) or "none"
            raise SourceNotFound(
                f"no source named {name!r} (sources: {known}); declare it in voc.toml "
                f"[[sources]], or `voc sources add`"
            )
        config = source_config(source)
        if not CONNECTORS[config.connector].pulls:
            session.commit()
            raise ValueError(
                f"source {name!r} ({config.connector}) is not pulled: its items arrive through "
                f"the API ({CONNECTORS[config.connector].description})"
            )
        session.commit()
        with leases.held(engine, f"pull:{name}", PULL_LEASE_SECONDS) as renew:
            if renew is None:
                holder = leases.holder_of(engine, f"pull:{name}")
                by = f" by {holder[0]} (lease until {holder[1]:%H:%M:%S} UTC)" if holder else ""
                return PullResult(source=name, status="busy",
                                  error=f"source {name!r} is being pulled now{by}; try again when "
                                        "that pull ends",
                                  seconds=time.perf_counter() - started)  # fmt: skip
            try:
                result = _pull_held(session, source, config, settings, environ, sleep, redactor,
                                    renew)  # fmt: skip
            finally:
                session.rollback()  # no-op after the run's last commit; frees SQLite's write lock
        result.seconds = time.perf_counter() - started
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _pull_held(session: Session, source: Source, config: SourceConfig, settings: Settings,
               environ: Mapping[str, str] | None, sleep: Callable[[float], None],
               redactor: Redactor | None, heartbeat: Callable[[], bool]) -> PullResult:  # fmt: skip
    """The pull itself, with the source's pull lease held (renewed by `heartbeat`)."""
    name = source.name
    # Only now, with the lease held, is a run still marked running really an interrupted one.
    repository.mark_interrupted(session, source.id)
    run = start_run(session, source, _describe(config))
    session.commit()
    result = PullResult(source=name, status="running", run_id=run.id)
    connector: Connector | None = None
    try:
        connector = connector_for(
            config, settings=settings, credentials=config.credentials(environ), sleep=sleep
        )
        shared_redactor = redactor or build_redactor(settings)

        def attempt() -> None:
            result.attempts += 1
            _store_batches(
                session, source, run, connector, result.stats, settings, shared_redactor,
                heartbeat,
            )

        def on_retry(number: int, exc: BaseException, wait: float) -> None:
            session.rollback()  # the batch in flight; everything before it is committed
            log.warning(
                "source %s: %s; pull attempt %d again in %.1fs from the last cursor",
                name,
                exc,
                number + 1,
                wait,
            )

        pull_backoff = Backoff(
            attempts=config.retry.pull_attempts,
            base_seconds=max(config.retry.base_seconds, 0.0) * 4,
            cap_seconds=config.retry.cap_seconds,
        )
        retry(attempt, backoff=pull_backoff, sleep=sleep, on_retry=on_retry)
    except Exception as exc:  # one failing source never stops the others
        session.rollback()
        result.error = _explain(exc)
        log.error("source %s: pull failed: %s", name, result.error)
    run.encoding = _encodings(connector)
    finish_run(session, run, result.stats, error=result.error)
    session.commit()
    result.status = run.status
    return result


def _encodings(connector: Connector | None) -> str | None:
    """What the run's files were read in: one encoding, or each file's where they differ."""
    found: dict[str, str] = getattr(connector, "encodings", None) or {}
    if len(set(found.values())) > 1:
        return ", ".join(f"{name}: {encoding}" for name, encoding in sorted(found.items()))[:200]
    return next(iter(found.values()), None)


def pull_all(
    engine: Engine,
    *,
    settings: Settings,
    names: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PullResult]:
    """Pull every enabled pulled source (or those named), each on its own."""
    with session_factory(engine)() as session:
        sync_declared_sources(session, settings)
        session.commit()
        sources = [
            s.name
            for s in repository.list_sources(session)
            if (
                names is None
                and s.enabled
                and CONNECTORS.get(s.connector)
                and CONNECTORS[s.connector].pulls
            )
            or (names is not None and s.name in names)
        ]
    results = []
    for name in sources:
        try:
            results.append(
                pull_source(engine, name, settings=settings, environ=environ, sleep=sleep)
            )
        except Exception as exc:  # e.g. the database went away for this one
            results.append(PullResult(source=name, status="failed", error=_explain(exc)))
    return results


def _store_batches(
    session: Session,
    source: Source,
    run: IngestionRun,
    connector: Connector,
    stats: IngestStats,
    settings: Settings,
    redactor: Redactor,
    heartbeat: Callable[[], bool] | None = None,
) -> None:
    mapping = ingest_mapping(connector)
    ingestor: Ingestor | None = None
    stream: object = object()
    cursor = dict(source.cursor) if source.cursor else None
    for batch in connector.pull(cursor):
        if ingestor is None or batch.stream != stream:
            # A new stream (another file) may have other columns: map them afresh.
            ingestor = Ingestor(
                session,
                source=source,
                settings=settings,
                mapping=mapping,
                run=run,
                redactor=redactor,
            )
            ingestor.stats = stats
            stream = batch.stream
        _store(session, source, run, ingestor, batch, stats)
        if heartbeat is not None:
            heartbeat()  # keep the pull lease while batches keep coming


def _store(
    session: Session,
    source: Source,
    run: IngestionRun,
    ingestor: Ingestor,
    batch: Batch,
    stats: IngestStats,
) -> None:
    """One batch, its dead letters, the run's counters and the cursor: one transaction."""
    for record, reason in batch.dead:
        ingestor.dead_letter(record, reason)
    if batch.records:
        ingestor.ingest(batch.records)
    if batch.resolves:
        repository.resolve_file_letters(session, source.id, batch.resolves)
    if batch.cursor is not None:
        source.cursor = json.loads(
            json.dumps(batch.cursor, default=str)
        )  # a new object: JSON change tracking
    run.items_seen, run.items_new, run.items_updated = stats.seen, stats.new, stats.updated
    run.items_unchanged, run.items_dead = stats.unchanged, stats.dead
    session.commit()
    if batch.after_commit is not None:
        try:
            batch.after_commit()
        except OSError as exc:  # e.g. the archive folder is read-only: the cursor already covers it
            log.warning("source %s: after storing a batch: %s", source.name, exc)


def _describe(config: SourceConfig) -> str:
    options = config.options
    where = (
        options.get("path")
        or options.get("url")
        or options.get("base_url")
        or options.get("subdomain")
        or options.get("app_id")
    )
    return f"{config.connector}:{where}" if where else config.connector


def _explain(exc: BaseException) -> str:
    if isinstance(exc, IngestError | CredentialsError | TransientError | SourceNotFound):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# -- dead letters --------------------------------------------------------------------------------
@dataclass
class RetryOutcome:
    """What `retry_dead_letters` did."""

    resolved: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    stats: IngestStats = field(default_factory=IngestStats)


def retry_dead_letters(
    engine: Engine,
    *,
    settings: Settings,
    ids: Sequence[int] | None = None,
    source_name: str | None = None,
    mapping: FieldMapping | None = None,
    limit: int | None = None,
) -> RetryOutcome:
    """Re-parse dead letters with their source's current mapping (or `mapping`); store the ones
    that now pass and mark them resolved; the others keep their row with the new reason."""
    outcome = RetryOutcome()
    factory = session_factory(engine)
    with factory() as session:
        sync_declared_sources(session, settings)
        source_id = None
        if source_name is not None:
            found = repository.get_source(session, source_name)
            if found is None:
                raise SourceNotFound(f"no source named {source_name!r}")
            source_id = found.id
        letters = repository.unresolved_dead_letters(
            session, ids=ids, source_id=source_id, limit=limit
        )
        redactor = build_redactor(settings)
        runs: dict[int, IngestionRun] = {}
        now = utcnow()
        for letter in letters:
            source = session.get(Source, letter.source_id) if letter.source_id is not None else None
            if source is None:
                _still_dead(letter, "its source no longer exists")
                outcome.failed[letter.id] = letter.reason
                continue
            try:
                records, use_mapping = _reparse(letter, source, settings, mapping)
                _check(records, use_mapping, source, settings, now)
            except WholeInputLetter as exc:
                # Not a row to re-parse: the letter keeps the file's own reason, and the answer
                # says how it is retried (it is resolved when a pull reads the file).
                outcome.failed[letter.id] = str(exc)
                continue
            except (RowError, IngestError, ValueError) as exc:
                _still_dead(letter, f"retry {letter.retries + 1}: {exc}")
                outcome.failed[letter.id] = letter.reason
                session.commit()
                continue
            if source.id not in runs:
                runs[source.id] = start_run(session, source, "deadletters retry")
            ingestor = Ingestor(
                session,
                source=source,
                settings=settings,
                mapping=use_mapping,
                run=runs[source.id],
                redactor=redactor,
            )
            ingestor.stats = outcome.stats
            ingestor.ingest(records)
            letter.retries += 1
            letter.resolved_at = utcnow()
            outcome.resolved.append(letter.id)
            session.commit()  # each letter with its items
        for run in runs.values():
            finish_run(session, run, outcome.stats)
        session.commit()
    return outcome


class WholeInputLetter(IngestError):
    """A dead letter about a whole file: retried by pulling the source, not by re-parsing."""


def _still_dead(letter: DeadLetter, reason: str) -> None:
    letter.retries += 1
    letter.reason = reason[:4000]


def _reparse(
    letter: DeadLetter, source: Source, settings: Settings, override: FieldMapping | None
) -> tuple[list[RawRecord], FieldMapping]:
    location = letter.location or f"dead letter {letter.id}"
    if (
        ":" not in location
        and letter.raw_payload
        and not letter.raw_payload.lstrip().startswith(("{", "["))
    ):
        raise WholeInputLetter(
            f"{location} is a whole file, not a row ({letter.reason}); fix the cause (the "
            f"source's mapping or options, or the file) and pull the source again: a single file "
            f"is read again at every pull, a watched folder's once moved back from failed/ (a "
            f"file from `voc ingest FILE`: ingest it again). The letter is resolved when it is read"
        )
    try:
        config = source_config(source)
    except ValueError:
        config = None
    if config is not None:
        connector = connector_for(config, settings=settings)
        if override is not None:
            connector.ctx.mapping = override
        try:
            return connector.reparse(letter.raw_payload, location), ingest_mapping(connector)
        except json.JSONDecodeError:
            pass  # a delimited line from `voc ingest FILE`: read it with the file's header
        return [_delimited_record(letter, source, location)], connector.ctx.mapping
    return [_delimited_record(letter, source, location)], override or FieldMapping()


def _delimited_record(letter: DeadLetter, source: Source, location: str) -> RawRecord:
    path_text = (source.config or {}).get("path") or (
        (source.config or {}).get("options") or {}
    ).get("path")
    path = Path(path_text) if path_text else None
    if path is None or not path.is_file():
        raise IngestError(
            f"dead letter {letter.id}: the raw row has no column names and the source file "
            f"({path_text or 'unknown'}) is gone; ingest the corrected file again"
        )
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        first = handle.readline()
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    header = next(csv.reader([first], delimiter=delimiter))
    cells = next(csv.reader(io.StringIO(letter.raw_payload), delimiter=delimiter), [])
    if len(cells) != len(header):
        raise IngestError(
            f"{location}: {len(cells)} fields where the header of {path.name} has "
            f"{len(header)}; fix the row in the file and ingest it again"
        )
    return RawRecord(
        location, dict(zip([h.strip() for h in header], cells, strict=True)), letter.raw_payload
    )


def _check(
    records: list[RawRecord], mapping: FieldMapping, source: Source, settings: Settings, now: Any
) -> None:
    """Raise the first reason a record would be dead-lettered again (nothing is stored)."""
    if not records:
        raise IngestError("the raw payload holds no record")
    for record in records:
        if record.payload is None:
            raise IngestError(record.error or "unreadable record")
        columns = mapping.resolve(record.payload.keys(), where=record.location.split(":")[0])
        normalize(
            record.payload,
            columns,
            mapping,
            default_audience=source.audience,
            now=now,
            max_text_chars=settings.ingest.max_text_chars,
        )


# -- webhooks ------------------------------------------------------------------------------------
def webhook_connector(
    source: Source, *, settings: Settings, environ: Mapping[str, str] | None = None
) -> Connector:
    """The webhook connector of `source`, with its secret read from the environment."""
    config = source_config(source)
    return connector_for(config, settings=settings, credentials=config.credentials(environ))


def ingest_webhook(
    session: Session, *, source: Source, connector: Connector, document: Any, settings: Settings
) -> IngestStats:
    """Store one verified delivery as a run (the request commits it)."""
    from feedback.sources.connectors.push import WebhookConnector

    assert isinstance(connector, WebhookConnector)
    location = f"webhook:{source.name}"
    return ingest_run(session, source=source, records=connector.to_records(document, location),
                      settings=settings, mapping=ingest_mapping(connector), location=location)


def push_mapping(source: Source) -> FieldMapping | None:
    """The declared mapping of a push source (constants such as a touchpoint), if it has one."""
    if source.connector != "push" or not source.config:
        return None
    try:
        return source_config(source).field_mapping()
    except ValueError:
        return None
