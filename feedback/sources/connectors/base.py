"""What every connector is: options, a `pull` that yields batches with the cursor that covers them.

A connector never touches the database. It turns its input into `RawRecord`s (a payload of
item fields plus whatever else the source says, which lands in `extra`) and yields them in
`Batch`es; the pull service stores each batch and commits it together with the batch's cursor,
so a crash between batches loses nothing and repeats nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from feedback.db import utcnow
from feedback.ingest.mapping import ALIASES, ITEM_FIELDS, FieldMapping
from feedback.ingest.readers import RawRecord
from feedback.sources.backoff import Backoff

if TYPE_CHECKING:
    from feedback.sources.config import SourceConfig
    from feedback.sources.http import HttpClient


class ConnectorOptions(BaseModel):
    """Base of every connector's options: unknown keys are an error (a typo is not ignored)."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Batch:
    """Records to store, and the cursor to commit with them (None: leave the cursor as it is)."""

    records: list[RawRecord]
    cursor: dict[str, Any] | None
    stream: str | None = None  # records of one stream (one file) share a column layout
    dead: list[tuple[RawRecord, str]] = field(default_factory=list)  # whole-input problems
    after_commit: Callable[[], None] | None = None  # e.g. archive the file this batch finished
    # Whole inputs (file names) this batch finishes reading: their dead letters are resolved.
    resolves: list[str] = field(default_factory=list)


@dataclass
class PullContext:
    """What a connector gets for one pull."""

    config: SourceConfig
    options: Any
    credentials: dict[str, str]
    mapping: FieldMapping
    batch_size: int
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], None] | None = None
    now: datetime = field(default_factory=utcnow)

    @property
    def source_name(self) -> str:
        return self.config.name

    def http(self, **kwargs: Any) -> HttpClient:
        """An HTTP client with this source's retry policy."""
        import time

        from feedback.sources.http import HttpClient

        hint = ", ".join(f"${v}" for v in self.config.credentials_env.values())
        kwargs.setdefault("credential_hint", f"the credentials in {hint}" if hint else "")
        return HttpClient(backoff=self.backoff, sleep=self.sleep or time.sleep, **kwargs)


class Connector:
    """A connector type; subclasses set the class attributes and implement `pull`."""

    kind: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = ConnectorOptions
    channel: ClassVar[str | None] = None
    emits_channel: ClassVar[bool] = (
        False  # payloads carry their own channel (the default is not forced)
    )
    required_credentials: ClassVar[tuple[str, ...]] = ()
    pulls: ClassVar[bool] = True  # False for push and webhook sources: items arrive by HTTP
    # JSON items differ in which keys they carry, so these connectors map each item themselves
    # (`canonical_payload`) and the ingest gets every item field under its own name.
    maps_per_item: ClassVar[bool] = False

    def __init__(self, ctx: PullContext) -> None:
        self.ctx = ctx
        self.options = ctx.options

    @classmethod
    def check_config(cls, config: SourceConfig) -> None:
        """Raise ValueError for a declaration this connector cannot work with."""

    def pull(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        """Yield batches from where `cursor` (the last committed one) left off."""
        raise NotImplementedError(
            f"source {self.ctx.source_name!r} ({self.kind}) is not pulled: items arrive through "
            "the API"
        )

    def reparse(self, raw: str, location: str) -> list[RawRecord]:
        """Records from a dead letter's raw payload (a JSON object), for `voc deadletters retry`."""
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("the raw payload is not a JSON object")
        return [RawRecord(location, payload, raw)]


def json_record(location: str, payload: dict[str, Any], native: Any = None) -> RawRecord:
    """A record whose raw form is JSON (of `native` if given, else of the payload)."""
    raw = json.dumps(payload if native is None else native, default=str, ensure_ascii=False)
    return RawRecord(location, payload, raw)


def canonical_payload(item: dict[str, Any], mapping: FieldMapping) -> dict[str, Any]:
    """Every item field under its own name, resolved for this item; the item's other keys kept.

    The file ingest resolves columns once per file; JSON items are not that regular (an
    optional key absent from the first item must still map in the second), so each is
    resolved on its own: a mapped column (dotted paths reach into objects), else the field's
    name, else a known synonym; a missing key is simply None.
    """
    lowered = {str(k).lower().strip().replace(" ", "_"): k for k in item}
    fields: dict[str, Any] = dict.fromkeys(ITEM_FIELDS)
    used: set[str] = set()
    for name in ITEM_FIELDS:
        if name in mapping.defaults and name not in mapping.columns:
            continue
        wanted = mapping.columns.get(name)
        if wanted is not None:
            fields[name] = _dotted(item, wanted)
            used.add(wanted.split(".")[0])
            continue
        for candidate in (name, *ALIASES.get(name, ())):
            if candidate in lowered:
                fields[name] = item[lowered[candidate]]
                used.add(lowered[candidate])
                break
    payload = {k: v for k, v in item.items() if k not in used and k not in fields}
    payload.update(fields)
    return payload


def identity_mapping(mapping: FieldMapping) -> FieldMapping:
    """The mapping for payloads made by `canonical_payload`: only the constants and date format."""
    defaults = {k: v for k, v in mapping.defaults.items() if k not in mapping.columns}
    return FieldMapping(columns={}, defaults=defaults, date_format=mapping.date_format)


def _dotted(item: dict[str, Any], path: str) -> Any:
    if path in item:
        return item[path]
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
