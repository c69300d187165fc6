"""What survey-style exports share: one response row becomes one item per open-ended answer.

NPS and CSAT answers become ratings on every item of the response; the items are linked by
`response_id` (in `extra`), and each keeps its question. Responses without any open-ended
answer give no item: an item is a piece of text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from feedback.ingest.mapping import parse_iso
from feedback.ingest.readers import IngestError, RawRecord
from feedback.sources.connectors.base import json_record
from feedback.sources.connectors.filesource import FileOptions

# The same keys on every record of a stream: the ingest maps columns once, from the first record.
ITEM_KEYS = (
    "external_id",
    "text",
    "created_at",
    "nps",
    "csat",
    "stars",
    "language",
    "author",
    "touchpoint",
    "segment",
    "org_unit",
    "response_id",
    "question_id",
    "question",
)
_LEADING_NUMBER = re.compile(r"^\s*(\d{1,2}(?:\.\d+)?)\b")
CSAT_LABELS = {
    "very dissatisfied": 1,
    "extremely dissatisfied": 1,
    "dissatisfied": 2,
    "somewhat dissatisfied": 2,
    "neither satisfied nor dissatisfied": 3,
    "neutral": 3,
    "somewhat satisfied": 4,
    "satisfied": 4,
    "very satisfied": 5,
    "extremely satisfied": 5,
    "very poor": 1,
    "poor": 2,
    "fair": 3,
    "average": 3,
    "good": 4,
    "very good": 5,
    "excellent": 5,
}


class SurveyOptions(FileOptions):
    """Options every survey export shares."""

    text_questions: list[str] | None = Field(
        default=None,
        description="Open-ended questions (column ids or heading text); default: detected",
    )
    nps_question: str | None = Field(
        default=None, description="The 0-10 recommend question; default: detected"
    )
    csat_question: str | None = Field(default=None, description="A 1-5 satisfaction question")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="item field -> column (touchpoint, segment, org_unit, ...)",
    )
    extra_columns: list[str] = Field(default_factory=list, description="Columns kept in extra")
    timezone: str = Field(default="UTC", description="Time zone of the export's dates")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {value!r} is not a time zone name; write an IANA name such as "
                "'Europe/Berlin', 'America/Denver' or 'UTC'"
            ) from None
        return value

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise IngestError(
                f"options.timezone {self.timezone!r} is not a time zone name "
                f"(e.g. Europe/Berlin, America/Denver)"
            ) from None


def rating(value: Any) -> Any:
    """A rating from an export cell: '9', '9 - Very likely', 'Very satisfied'; other text as is.

    Text that is not a rating is passed through, so the ingest dead-letters the response with
    the reason instead of silently dropping the score.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    match = _LEADING_NUMBER.match(text)
    if match:
        return match.group(1)
    return CSAT_LABELS.get(text.lower(), text)


def local_time(value: str, zone: ZoneInfo, formats: Sequence[str] = ()) -> str | None:
    """An export's local timestamp as ISO 8601 UTC; the text unchanged if no format fits."""
    text = value.strip()
    if not text:
        return None
    parsed: datetime | None = None
    for fmt in formats:
        try:
            parsed = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = parse_iso(text)
        except ValueError:
            return text  # the ingest dead-letters it with the fix (date_format)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC).isoformat()


def find_column(
    wanted: str, columns: Sequence[str], labels: Mapping[str, str] | None = None
) -> str | None:
    """A column by id, by exact heading, or by a heading that contains `wanted` (case-blind)."""
    if wanted in columns:
        return wanted
    lowered = wanted.lower().strip()
    labels = labels or {}
    for column in columns:
        if column.lower() == lowered or labels.get(column, "").lower() == lowered:
            return column
    for column in columns:
        if lowered in labels.get(column, column).lower():
            return column
    return None


def require_column(
    wanted: str, columns: Sequence[str], labels: Mapping[str, str], *, option: str, where: str
) -> str:
    found = find_column(wanted, columns, labels)
    if found is None:
        shown = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")
        raise IngestError(
            f"{where}: {option} {wanted!r} matches no column (columns: {shown}); fix the "
            f"source options"
        )
    return found


def option_columns(
    opts: SurveyOptions, columns: Sequence[str], labels: Mapping[str, str], *, where: str
) -> tuple[str | None, dict[str, str], list[str]]:
    """The CSAT question, mapped fields and extra columns an export's options name, resolved."""
    csat_col = (
        require_column(opts.csat_question, columns, labels, option="csat_question", where=where)
        if opts.csat_question
        else None
    )
    field_cols = {
        f: require_column(c, columns, labels, option=f"fields.{f}", where=where)
        for f, c in opts.fields.items()
    }
    extra_cols = [
        require_column(c, columns, labels, option="extra_columns", where=where)
        for c in opts.extra_columns
    ]
    return csat_col, field_cols, extra_cols


def response_records(
    *,
    location: str,
    response_id: str,
    answers: Iterable[tuple[str, str, str]],
    common: Mapping[str, Any],
    extras: Mapping[str, Any],
) -> list[RawRecord]:
    """One record per non-blank answer: (question id, question text, answer)."""
    records = []
    for question_id, question, answer in answers:
        if not answer or not answer.strip():
            continue
        payload: dict[str, Any] = dict.fromkeys(ITEM_KEYS)
        payload.update(common)
        payload.update(
            external_id=f"{response_id}:{question_id}",
            text=answer,
            response_id=response_id,
            question_id=question_id,
            question=question[:300] or None,
        )
        payload.update(extras)
        records.append(json_record(f"{location} ({question_id})", payload))
    return records
