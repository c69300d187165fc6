"""Field mapping: which input column feeds which item field, and row normalisation.

Columns named like the item fields map themselves (`text`, `created_at`, `nps`, ...); a few
common synonyms too (`comment`, `review`, `date`, `team`). Anything else is mapped by a mapping
file (TOML or JSON) or by CLI options (`--map text=comment --set audience=employee`).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from feedback.ingest.readers import IngestError
from feedback.models import AUDIENCES

ITEM_FIELDS = (
    "external_id", "text", "created_at", "audience", "channel", "touchpoint", "journey_stage",
    "segment", "org_unit", "language", "nps", "csat", "stars", "author",
)
# Synonyms seen in real exports, tried only when no column carries the field's own name.
ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("id", "response_id", "responseid", "review_id", "feedback_id", "ticket_id"),
    "text": ("comment", "comments", "feedback", "review", "body", "content", "message",
             "verbatim", "response", "review_text", "text_response"),
    "created_at": ("date", "timestamp", "created", "submitted_at", "time", "datetime",
                   "review_date", "recorded_date"),
    "org_unit": ("team", "department", "org", "business_unit"),
    "touchpoint": ("touch_point",),
    "journey_stage": ("stage",),
    "author": ("author_name", "user", "username", "respondent", "customer_id", "employee_id"),
    "stars": ("rating", "star_rating", "score_stars"),
    "csat": ("satisfaction",),
    "nps": ("likelihood_to_recommend", "nps_score"),
    "language": ("lang", "locale"),
}
RATING_RANGES: dict[str, tuple[float, float]] = {"nps": (0, 10), "csat": (1, 5), "stars": (1, 5)}


class RowError(ValueError):
    """A row that cannot become an item; the message says why and how to fix it."""


@dataclass
class FieldMapping:
    """How input columns map to item fields, with constant defaults for fields a file lacks."""

    columns: dict[str, str] = field(default_factory=dict)  # item field -> input column (dotted path ok)
    defaults: dict[str, Any] = field(default_factory=dict)  # item field -> constant
    date_format: str | None = None  # strptime format when dates are not ISO 8601

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(ITEM_FIELDS))
        if unknown:
            raise IngestError(
                f"mapping names unknown item field(s) {unknown}; item fields are: {', '.join(ITEM_FIELDS)}"
            )

    @classmethod
    def from_file(cls, path: Path) -> FieldMapping:
        """Load `[columns]`, `[defaults]` and `date_format` from a TOML or JSON mapping file."""
        raw = path.read_bytes()
        try:
            doc = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise IngestError(f"{path.name}: mapping file is not valid TOML/JSON ({exc})") from exc
        return cls(columns=dict(doc.get("columns", {})), defaults=dict(doc.get("defaults", {})),
                   date_format=doc.get("date_format"))

    @classmethod
    def from_options(cls, maps: Iterable[str] = (), sets: Iterable[str] = (),
                     base: FieldMapping | None = None) -> FieldMapping:
        """Build from CLI options `field=column` (--map) and `field=value` (--set)."""
        columns = dict(base.columns) if base else {}
        defaults = dict(base.defaults) if base else {}
        for option, target in ((maps, columns), (sets, defaults)):
            for item in option:
                name, sep, value = item.partition("=")
                if not sep or not name.strip():
                    raise IngestError(f"option {item!r} must look like field=value, e.g. text=comment")
                target[name.strip()] = value.strip()
        return cls(columns=columns, defaults=defaults, date_format=base.date_format if base else None)

    def resolve(self, keys: Iterable[str], *, where: str) -> dict[str, str]:
        """Map each item field to a concrete input key; raises if there is no text column."""
        keys = list(keys)
        lowered = {k.lower().strip().replace(" ", "_"): k for k in keys}
        resolved: dict[str, str] = {}
        for item_field in ITEM_FIELDS:
            if item_field in self.columns:
                wanted = self.columns[item_field]
                if "." not in wanted and wanted not in keys:
                    raise IngestError(
                        f"{where}: mapped column {wanted!r} for {item_field!r} not found "
                        f"(columns: {', '.join(keys)}); fix the mapping"
                    )
                resolved[item_field] = wanted
                continue
            if item_field in self.defaults:
                continue
            for candidate in (item_field, *ALIASES.get(item_field, ())):
                if candidate in lowered:
                    resolved[item_field] = lowered[candidate]
                    break
        if "text" not in resolved:
            raise IngestError(
                f"{where}: column 'text' not found (columns: {', '.join(keys) or 'none'}); "
                f"name the feedback column 'text', or map it: `voc ingest FILE --map text=<column>` "
                f"or a mapping file with [columns] text = \"<column>\""
            )
        return resolved


def _get(payload: Mapping[str, Any], key: str) -> Any:
    if key in payload:
        return payload[key]
    if "." in key:
        value: Any = payload
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# ISO 8601 but for a leading zero, as some tools write it: 2015-02-19T4:30:00, 2015-2-9 4:30.
_LOOSE_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:([T ])(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?(.*)")


def parse_iso(text: str) -> datetime:
    """`datetime.fromisoformat`, also for a trailing Z and for fields missing their leading zero."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        match = _LOOSE_ISO.fullmatch(text)
        if match is None:
            raise
    year, month, day, sep, hour, minute, second, rest = match.groups()
    padded = f"{year}-{int(month):02d}-{int(day):02d}"
    if sep:
        padded += f"{sep}{int(hour):02d}:{int(minute):02d}" + (f":{int(second):02d}" if second else "")
    return datetime.fromisoformat(padded + rest)


def parse_timestamp(value: Any, date_format: str | None = None) -> datetime:
    """Parse ISO 8601, a date, epoch seconds/milliseconds, or `date_format`, into aware UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10_000_000_000 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    text = str(value).strip()
    if date_format:
        parsed = datetime.strptime(text, date_format)
    else:
        if text.isdigit():
            return parse_timestamp(int(text))
        parsed = parse_iso(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _rating(name: str, value: Any) -> float | None:
    if _blank(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(f"{name} {value!r} is not a number") from None
    low, high = RATING_RANGES[name]
    if not low <= number <= high:
        raise RowError(f"{name} {value!r} is outside {low:g}-{high:g}")
    return number


def content_hash(parts: Iterable[Any]) -> str:
    """A stable SHA-1 over the item's content, to spot changed items and items without ids.

    The bytes hashed are each part as UTF-8 after a 0x1F separator; stored hashes depend on
    exactly that, so it must not change (one update of the joined text is the same digest as
    one update per part, and faster).
    """
    joined = "".join(["\x1f" + (str(part) if part is not None else "") for part in parts])
    return hashlib.sha1(joined.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


# Text fields of an item and their stored lengths, in the order of the item's keys.
_TEXT_FIELDS = (("channel", 30), ("touchpoint", 100), ("journey_stage", 100), ("segment", 100),
                ("org_unit", 200), ("language", 10), ("author", 500))


def _clip(value: Any, limit: int) -> str | None:
    """A text field: None when blank, else its string form cut to `limit`."""
    if value is None:
        return None
    if isinstance(value, str):
        return value[:limit] if value.strip() else None
    return str(value)[:limit]


def normalize(payload: Mapping[str, Any], columns: Mapping[str, str], mapping: FieldMapping, *,
              default_audience: str, now: datetime, max_text_chars: int) -> dict[str, Any]:
    """Turn one input row into item fields (text not yet redacted); raises `RowError`."""
    # The hot path of every ingest: plain loops, no per-row closures (see bench/ingest.py).
    values: dict[str, Any] = dict(mapping.defaults)
    for item_field, key in columns.items():
        value = payload[key] if key in payload else _get(payload, key)
        if value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
        values[item_field] = value

    text = values.get("text")
    if _blank(text):
        raise RowError("the text is empty; every item needs feedback text")
    text = str(text)
    extra: dict[str, Any] = {}
    if len(text) > max_text_chars:
        extra["truncated_from_chars"] = len(text)
        text = text[:max_text_chars]

    created_raw = values.get("created_at")
    if _blank(created_raw):
        created_at = now
        extra["created_at_missing"] = True
    else:
        try:
            created_at = parse_timestamp(created_raw, mapping.date_format)
        except (ValueError, OverflowError, OSError):
            hint = f"the format {mapping.date_format!r}" if mapping.date_format else "ISO 8601 (2026-11-23T10:00:00Z)"
            raise RowError(
                f"created_at {created_raw!r} is not a date in {hint}; set `date_format` in the mapping"
            ) from None

    audience = str(values.get("audience") or default_audience).lower()
    if audience not in AUDIENCES:
        raise RowError(f"audience {audience!r} must be 'customer' or 'employee'")

    ratings = {name: _rating(name, values[name]) if name in values else None
               for name in RATING_RANGES}
    for name in ("nps", "csat"):
        number = ratings[name]
        if number is not None:
            if not number.is_integer():
                raise RowError(f"{name} {values.get(name)!r} must be a whole number")
            ratings[name] = int(number)

    mapped_keys = set(columns.values())
    for key, value in payload.items():
        if value is None or key in mapped_keys:
            continue
        if isinstance(value, str):
            if value.strip():
                extra[key] = value
        elif isinstance(value, int | float | bool):
            extra[key] = value
        else:
            extra[key] = str(value)

    item: dict[str, Any] = {"text": text, "created_at": created_at, "audience": audience}
    for name, limit in _TEXT_FIELDS:
        value = values.get(name)
        item[name] = None if value is None else _clip(value, limit)
    if item["channel"] is not None:
        item["channel"] = item["channel"].lower() or None
    if item["language"] is not None:
        item["language"] = item["language"].lower() or None
    item["nps"], item["csat"], item["stars"] = ratings["nps"], ratings["csat"], ratings["stars"]
    item["extra"] = extra
    # A missing date is "now", which differs on every run: it must not count as a change (nor
    # give an id-less item a new identity), or re-sending an item would re-date it.
    dated = "" if extra.get("created_at_missing") else item["created_at"].isoformat()
    item["content_hash"] = content_hash(
        (item["text"], dated, item["audience"], item["channel"],
         item["touchpoint"], item["journey_stage"], item["segment"], item["org_unit"],
         item["author"], item["nps"], item["csat"], item["stars"])
    )
    external_id = values.get("external_id")
    item["external_id"] = str(external_id)[:255] if not _blank(external_id) else "h:" + item["content_hash"]
    return item
