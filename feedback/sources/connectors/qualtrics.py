"""`qualtrics`: a Qualtrics response export (CSV, three header rows).

Row 1 holds the column ids (`ResponseId`, `Q1`, `Q2_TEXT`), row 2 the question text, row 3
the import ids as JSON (`{"ImportId":"QID2_TEXT"}`, dates with their `timeZone`); the legacy
exporter writes them as Python dicts with a dash (`{'ImportId': 'QID6-TEXT'}`). Open-ended
answers are the columns whose import id ends in `_TEXT` (or `-TEXT`), except text-entry fields
that hold numbers (a ZIP code, a count: no answer in the column has a letter); the NPS question
is the one with an `_NPS_GROUP` sibling. A response is dated when it was given (`EndDate`, else
`StartDate`; `RecordedDate` is the import date of imported responses). Previews, tests and spam
(by `Status`, written as text or as Qualtrics' number, or `DistributionChannel`) are skipped.
Respondent contact and location columns are never stored.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from feedback.ingest.readers import IngestError, RawRecord
from feedback.sources.connectors.filesource import FileSourceConnector
from feedback.sources.connectors.survey import (
    SurveyOptions,
    local_time,
    option_columns,
    rating,
    require_column,
    response_records,
)

# Personal data in every export: dropped before anything is stored (dead letters included).
PERSONAL_COLUMNS = frozenset(
    {
        "IPAddress",
        "RecipientLastName",
        "RecipientFirstName",
        "RecipientEmail",
        "LocationLatitude",
        "LocationLongitude",
    }
)
# Qualtrics' response types, as text or as the number the legacy exporter writes: 0 IP Address,
# 4 Imported and 16 Offline (the offline app) are real responses; these are not.
PREVIEW_STATUSES = frozenset({
    "survey preview", "1", "survey test", "2", "spam", "8", "survey preview spam", "9", "imported spam", "12",
})
PREVIEW_CHANNELS = frozenset({"preview", "test"})  # DistributionChannel of the preview and test links
TEXT_SUFFIX = re.compile(r"[_-]TEXT$")
NPS_GROUP_SUFFIX = re.compile(r"[_-]NPS_GROUP$")
QUALTRICS_FORMAT = "%Y-%m-%d %H:%M:%S"


class QualtricsOptions(SurveyOptions):
    include_previews: bool = Field(default=False, description="Keep 'Survey Preview' responses")
    author_column: str | None = Field(
        default="ExternalReference",
        description="Column that identifies the respondent (pseudonymised)",
    )


class QualtricsConnector(FileSourceConnector):
    """Qualtrics survey responses: each open-ended answer is an item, scores are its ratings."""

    kind = "qualtrics"
    description = "Qualtrics response export CSV (3 header rows)"
    Options = QualtricsOptions
    channel = "survey"

    def records(self, path: Path) -> Iterator[RawRecord]:
        opts: QualtricsOptions = self.options
        table = self.table(path, header_rows=3, delimiter=None if path.suffix != ".tsv" else "\t")
        ids, questions, import_row = table.headers
        imports = [_import_id(cell) for cell in import_row]
        if not any(imp.get("ImportId") for imp in imports):
            raise IngestError(
                f'{path.name}: row 3 holds no Qualtrics import ids ({{"ImportId": ...}}); '
                'export the '
                "responses as CSV with the default (non-legacy) format, or use the 'file' "
                "connector"
            )
        by_import = {imp.get("ImportId", ""): col for col, imp in zip(ids, imports, strict=False)}
        labels = dict(zip(ids, questions, strict=False))
        where = path.name
        response_col = _first(ids, "ResponseId", "ResponseID") or by_import.get("_recordId")
        if response_col is None:
            raise IngestError(f"{where}: no ResponseId column; include it in the export")
        date_col = _first(ids, "EndDate", "StartDate", "RecordedDate")
        zone = opts.zone()
        if date_col is not None:
            zone = _zone(imports[ids.index(date_col)].get("timeZone"), zone)

        if opts.text_questions:
            text_cols = [
                require_column(q, ids, labels, option="text_questions", where=where)
                for q in opts.text_questions
            ]
        else:
            text_cols = [
                col
                for index, (col, imp) in enumerate(zip(ids, imports, strict=False))
                if TEXT_SUFFIX.search(str(imp.get("ImportId", "")))
                and col not in PERSONAL_COLUMNS
                and not _holds_numbers(table.column_values(index))
            ]
        if opts.nps_question:
            nps_col: str | None = require_column(
                opts.nps_question, ids, labels, option="nps_question", where=where
            )
        else:
            group = next(
                (
                    str(imp["ImportId"])
                    for imp in imports
                    if NPS_GROUP_SUFFIX.search(str(imp.get("ImportId", "")))
                ),
                None,
            )
            nps_col = by_import.get(NPS_GROUP_SUFFIX.sub("", group)) if group else None
        csat_col, field_cols, extra_cols = option_columns(opts, ids, labels, where=where)
        author_col = opts.author_column if opts.author_column in ids else None
        position = {col: i for i, col in enumerate(ids)}
        status_col = position.get("Status")
        channel_col = position.get("DistributionChannel")
        nps_group_col = (
            next((position[c] for c in (f"{nps_col}_NPS_GROUP", f"{nps_col}-NPS_GROUP") if c in position), None)
            if nps_col
            else None
        )

        for line, cells, error in table.rows():
            location = f"{path.name}:line {line}"
            if error is None and len(cells) < len(ids):
                error = (
                    f"{location}: {len(cells)} fields where the header has {len(ids)}; the row "
                    f"looks truncated (check quoting and line breaks inside answers)"
                )
            if error is not None:
                yield RawRecord(location, None, _raw(ids, cells), error)
                continue
            if not opts.include_previews and (
                (status_col is not None and cells[status_col].strip().lower() in PREVIEW_STATUSES)
                or (channel_col is not None and cells[channel_col].strip().lower() in PREVIEW_CHANNELS)
            ):
                continue

            def cell(col: str | None, _cells: list[str] = cells) -> str:
                return _cells[position[col]].strip() if col is not None else ""

            common: dict[str, Any] = {
                "created_at": local_time(cell(date_col), zone, (QUALTRICS_FORMAT,))
                if date_col
                else None,
                "nps": rating(cell(nps_col)) if nps_col else None,
                "csat": rating(cell(csat_col)) if csat_col else None,
                "language": (cell("UserLanguage") or "").lower() or None
                if "UserLanguage" in position
                else None,
                "author": cell(author_col) or None,
            }
            common.update({f: cell(c) or None for f, c in field_cols.items()})
            extras: dict[str, Any] = {c: cell(c) or None for c in extra_cols}
            if nps_group_col is not None:
                extras["nps_group"] = cells[nps_group_col].strip() or None
            if "Finished" in position:
                extras["finished"] = cell("Finished").lower() in ("true", "1")
            answers = ((col, labels.get(col, ""), cell(col)) for col in text_cols)
            yield from response_records(
                location=location,
                response_id=cell(response_col),
                answers=answers,
                common=common,
                extras=extras,
            )


def _raw(ids: list[str], cells: list[str]) -> str:
    """A row for a dead letter, without the respondent's personal columns."""
    return json.dumps(
        {col: value for col, value in zip(ids, cells, strict=False) if col not in PERSONAL_COLUMNS},
        ensure_ascii=False,
    )


def _import_id(cell: str) -> dict[str, Any]:
    """Row 3's cell: JSON, or the legacy exporter's Python dict (`{'ImportId': 'QID6-TEXT'}`)."""
    try:
        value = json.loads(cell)
    except (TypeError, ValueError):
        try:
            value = ast.literal_eval(cell.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return {}
    return value if isinstance(value, dict) else {}


def _holds_numbers(answers: Iterable[str]) -> bool:
    """Whether a text-entry column holds numbers (ZIP codes, counts), not comments: it has
    answers and none of them has a letter."""
    given = [answer for answer in answers if answer.strip()]
    return bool(given) and not any(char.isalpha() for answer in given for char in answer)


def _first(columns: list[str], *names: str) -> str | None:
    return next((n for n in names if n in columns), None)


def _zone(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    if not name:
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback
