"""`surveymonkey`: a SurveyMonkey response export (CSV, two header rows).

Row 1 holds the question headings (blank over the extra columns of a multi-column question),
row 2 the sub-headings: `Response`, `Open-Ended Response`, or a choice label. Open-ended
answers are the `Open-Ended Response` columns unless `text_questions` names others; the NPS
question is the one asking how likely the respondent is to recommend. Names, e-mail and IP
columns are never stored (the e-mail, pseudonymised, links a respondent's answers).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from feedback.ingest.readers import IngestError, RawRecord
from feedback.sources.connectors.filesource import FileSourceConnector
from feedback.sources.connectors.survey import (
    SurveyOptions,
    find_column,
    local_time,
    option_columns,
    rating,
    require_column,
    response_records,
)

PERSONAL_HEADINGS = frozenset({"IP Address", "Email Address", "First Name", "Last Name"})
SURVEYMONKEY_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
)
GENERIC_SUBHEADINGS = frozenset({"", "Response", "Open-Ended Response"})


class SurveyMonkeyOptions(SurveyOptions):
    date_formats: list[str] = Field(
        default_factory=lambda: list(SURVEYMONKEY_FORMATS),
        description="strptime formats of Start/End Date",
    )


class SurveyMonkeyConnector(FileSourceConnector):
    """SurveyMonkey responses: each open-ended answer is an item, scores are its ratings."""

    kind = "surveymonkey"
    description = "SurveyMonkey response export CSV (2 header rows)"
    Options = SurveyMonkeyOptions
    channel = "survey"

    def records(self, path: Path) -> Iterator[RawRecord]:
        opts: SurveyMonkeyOptions = self.options
        table = self.table(path, header_rows=2)
        headings, subs = table.headers
        if "Respondent ID" not in headings:
            raise IngestError(
                f"{path.name}: no 'Respondent ID' column in row 1; this does not look like a "
                f"SurveyMonkey export (All responses data, CSV, expanded columns)"
            )
        # Column keys: the question heading, carried over the blank headings of its other columns.
        columns: list[str] = []
        labels: dict[str, str] = {}
        question = ""
        for heading, sub in zip(headings, subs + [""] * (len(headings) - len(subs)), strict=False):
            question = heading or question
            key = question if sub in GENERIC_SUBHEADINGS else f"{question} | {sub}"
            if sub == "Open-Ended Response" and key in labels:
                key = f"{question} | Open-Ended Response"
            columns.append(key)
            labels[key] = question
        subs_by_key = dict(zip(columns, subs, strict=False))
        where = path.name
        if opts.text_questions:
            text_cols = [
                require_column(q, columns, labels, option="text_questions", where=where)
                for q in opts.text_questions
            ]
        else:
            text_cols = [c for c in columns if subs_by_key.get(c) == "Open-Ended Response"]
        nps_col = (
            require_column(opts.nps_question, columns, labels, option="nps_question", where=where)
            if opts.nps_question
            else _recommend_question(columns)
        )
        csat_col, field_cols, extra_cols = option_columns(opts, columns, labels, where=where)
        position = {col: i for i, col in reversed(list(enumerate(columns)))}
        zone = opts.zone()
        date_col = find_column("End Date", columns) or find_column("Start Date", columns)

        for line, cells, error in table.rows():
            location = f"{path.name}:line {line}"
            if error is None and len(cells) < len(columns):
                error = (
                    f"{location}: {len(cells)} fields where the header has {len(columns)}; the row "
                    f"looks truncated (check quoting and line breaks inside answers)"
                )
            if error is not None:
                yield RawRecord(location, None, _raw(columns, cells), error)
                continue

            def cell(col: str | None, _cells: list[str] = cells) -> str:
                return _cells[position[col]].strip() if col is not None else ""

            common: dict[str, Any] = {
                "created_at": local_time(cell(date_col), zone, opts.date_formats)
                if date_col
                else None,
                "nps": rating(cell(nps_col)) if nps_col else None,
                "csat": rating(cell(csat_col)) if csat_col else None,
                "author": cell("Email Address") or None if "Email Address" in position else None,
            }
            common.update({f: cell(c) or None for f, c in field_cols.items()})
            extras = {c: cell(c) or None for c in extra_cols}
            collector = cell("Collector ID") if "Collector ID" in position else ""
            extras["collector_id"] = collector or None
            answers = (
                (_question_id(col, columns), labels.get(col, col), cell(col)) for col in text_cols
            )
            yield from response_records(
                location=location,
                response_id=cell("Respondent ID"),
                answers=answers,
                common=common,
                extras=extras,
            )


def _recommend_question(columns: list[str]) -> str | None:
    for column in columns:
        lowered = column.lower()
        if "likely" in lowered and "recommend" in lowered and "|" not in column:
            return column
    return None


def _question_id(column: str, columns: list[str]) -> str:
    """A stable id for a question column (exports have no ids): a digest of its heading, so that
    adding a question to the survey does not renumber the others."""
    return "q" + hashlib.sha1(column.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]


def _raw(columns: list[str], cells: list[str]) -> str:
    return json.dumps(
        {
            col: value
            for col, value in zip(columns, cells, strict=False)
            if col not in PERSONAL_HEADINGS
        },
        ensure_ascii=False,
    )
