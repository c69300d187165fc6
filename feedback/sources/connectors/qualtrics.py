"""`qualtrics`: a Qualtrics response export (CSV, three header rows).

Row 1 holds the column ids (`ResponseId`, `Q1`, `Q2_TEXT`), row 2 the question text, row 3
the import ids as JSON (`{"ImportId":"QID2_TEXT"}`, dates with their `timeZone`). Open-ended
answers are the columns whose import id ends in `_TEXT`; the NPS question is the one with a
`_NPS_GROUP` sibling. Respondent contact and location columns are never stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from feedback.ingest.readers import IngestError, RawRecord
from feedback.sources.connectors.filesource import FileSourceConnector, Table
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
PREVIEW_STATUSES = frozenset({"survey preview", "1", "spam", "8", "survey test", "16"})
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
        table = Table(
            path,
            header_rows=3,
            encoding=opts.encoding,
            delimiter=None if path.suffix != ".tsv" else "\t",
        )
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
        date_col = _first(ids, "RecordedDate", "EndDate", "StartDate")
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
                for col, imp in zip(ids, imports, strict=False)
                if str(imp.get("ImportId", "")).endswith("_TEXT") and col not in PERSONAL_COLUMNS
            ]
        if opts.nps_question:
            nps_col: str | None = require_column(
                opts.nps_question, ids, labels, option="nps_question", where=where
            )
        else:
            group = next(
                (
                    imp["ImportId"]
                    for imp in imports
                    if str(imp.get("ImportId", "")).endswith("_NPS_GROUP")
                ),
                None,
            )
            nps_col = by_import.get(group[: -len("_NPS_GROUP")]) if group else None
        csat_col, field_cols, extra_cols = option_columns(opts, ids, labels, where=where)
        author_col = opts.author_column if opts.author_column in ids else None
        position = {col: i for i, col in enumerate(ids)}
        status_col = position.get("Status")
        nps_group_col = position.get(f"{nps_col}_NPS_GROUP") if nps_col else None

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
            if (
                not opts.include_previews
                and status_col is not None
                and cells[status_col].strip().lower() in PREVIEW_STATUSES
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
    try:
        value = json.loads(cell)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _first(columns: list[str], *names: str) -> str | None:
    return next((n for n in names if n in columns), None)


def _zone(name: str | None, fallback: ZoneInfo) -> ZoneInfo:
    if not name:
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback
