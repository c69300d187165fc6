"""`pulse`: an employee pulse-survey export (CSV, one row per response).

Typical columns: `Response ID, Submitted At, Team, Org Unit, Tenure, eNPS, <scores>,
Comment: <question>...`. Each comment column gives one item (audience employee), linked by
response id; the eNPS score is its `nps`; the org unit (else the team) is its `org_unit`, the
tenure band its `segment`. Exports are anonymous: there is no author, and none is invented.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from feedback.ingest.readers import IngestError, RawRecord
from feedback.sources.connectors.filesource import FileSourceConnector
from feedback.sources.connectors.survey import (
    SurveyOptions,
    find_column,
    local_time,
    rating,
    response_records,
)

TEXT_HINTS = ("comment", "feedback", "suggestion", "what could", "what should", "anything else")


class PulseOptions(SurveyOptions):
    response_id_column: str = "Response ID"
    date_column: str = "Submitted At"
    team_column: str | None = "Team"
    org_unit_column: str | None = "Org Unit"
    tenure_column: str | None = "Tenure"
    score_column: str | None = Field(default="eNPS", description="The score column; None: no score")
    score_kind: Literal["nps", "csat"] = Field(
        default="nps", description="nps (0-10) or csat (1-5)"
    )
    date_formats: list[str] = Field(
        default_factory=lambda: ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%d/%m/%Y"]
    )


class PulseConnector(FileSourceConnector):
    """Employee pulse surveys with team, org unit and tenure."""

    kind = "pulse"
    description = "Employee pulse-survey CSV with team / org unit / tenure columns"
    Options = PulseOptions
    channel = "pulse"

    def records(self, path: Path) -> Iterator[RawRecord]:
        opts: PulseOptions = self.options
        table = self.table(path, header_rows=1)
        columns = table.headers[0]
        where = path.name
        explicit = opts.model_fields_set

        def column(option: str, wanted: str | None) -> str | None:
            if wanted is None:
                return None
            found = find_column(wanted, columns) if option in explicit else _exact(wanted, columns)
            if found is None and option in explicit:
                raise IngestError(
                    f"{where}: {option} {wanted!r} matches no column (columns: "
                    f"{', '.join(columns)}); fix the source options"
                )
            return found

        response_col = column("response_id_column", opts.response_id_column)
        date_col = column("date_column", opts.date_column)
        team_col = column("team_column", opts.team_column)
        org_col = column("org_unit_column", opts.org_unit_column)
        tenure_col = column("tenure_column", opts.tenure_column)
        score_col = column("score_column", opts.score_column)
        if opts.text_questions:
            text_cols = [column("text_questions", q) for q in opts.text_questions]
        else:
            text_cols = [c for c in columns if any(h in c.lower() for h in TEXT_HINTS)]
        if not text_cols:
            raise IngestError(
                f"{where}: no comment column found (columns: {', '.join(columns)}); name them "
                f"in options.text_questions"
            )
        extra_cols = [column("extra_columns", c) for c in opts.extra_columns]
        position = {c: i for i, c in enumerate(columns)}
        zone = opts.zone()

        for line, cells, error in table.rows():
            location = f"{path.name}:line {line}"
            if error is None and len(cells) < len(columns):
                error = (f"{location}: {len(cells)} fields where the header has {len(columns)}; "
                         f"the row looks truncated")
            if error is not None:
                yield RawRecord(
                    location, None, json.dumps(dict(zip(columns, cells, strict=False))), error
                )
                continue

            def cell(col: str | None, _cells: list[str] = cells) -> str:
                return _cells[position[col]].strip() if col is not None else ""

            team, org = cell(team_col), cell(org_col)
            common: dict[str, Any] = {
                "created_at": local_time(cell(date_col), zone, opts.date_formats)
                if date_col
                else None,
                "nps": rating(cell(score_col)) if score_col and opts.score_kind == "nps" else None,
                "csat": rating(cell(score_col))
                if score_col and opts.score_kind == "csat"
                else None,
                "org_unit": org or team or None,
                "segment": cell(tenure_col) or None,
            }
            common.update(
                {f: cell(find_column(c, columns)) or None for f, c in opts.fields.items()}
            )
            extras: dict[str, Any] = {
                "team": team or None,
                "tenure": cell(tenure_col) or None,
                "audience": "employee",
            }
            extras.update({c: cell(c) or None for c in extra_cols if c})
            response_id = cell(response_col) or f"{path.stem}:{line}"
            answers = ((c, c, cell(c)) for c in text_cols if c)
            yield from response_records(
                location=location,
                response_id=response_id,
                answers=answers,
                common=common,
                extras=extras,
            )


def _exact(wanted: str, columns: list[str]) -> str | None:
    lowered = wanted.lower()
    return next((c for c in columns if c.lower() == lowered), None)
