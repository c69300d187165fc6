"""Custom categories over time: volume, share negative and mean sentiment per period and label of
a custom category head (`models.custom_heads`), what `GET /v1/custom/{name}` answers.

An item's label is the analyst's `custom:NAME` correction where one is active, else the head's
(`tags.custom`); its sentiment is the served one (corrections in place, `ServedTag`). Items
tagged before the head was added carry no label of it and are counted as `(untagged)`.

The labels live in the tag's JSON, not in the rollups, and a range is at most `MAX_WEEKS` weeks
so the read stays bounded. Customer cells of a single-label head are counted by the database
(`_sql_cells`: the label read out of the JSON, grouped by period and label: 0.53 s against
4.1 s read item by item for 12 weeks of 230,000 items, `bench/custom_trends.py`); a multi-label
head's, and employee cells, are counted from the items of the slice (`_item_cells`, one
streamed query). Employee cells follow
docs/privacy.md like every employee aggregate: weekly cells of distinct respondents, hidden
below the minimum group size with complementary suppression across the week's labels
(`suppressed_groups`), and a month adds up only the weekly cells that were shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal
from sqlalchemy.orm import Session, aliased

from feedback.analytics.cells import (
    Slice,
    Tag,
    apply_slice,
    as_date,
    base_select,
    floor_period,
    period_label,
    period_start,
    respondent_key,
    stats_columns,
)
from feedback.analytics.stats import wilson_ci
from feedback.corrections.service import CUSTOM_PREFIX, custom_heads
from feedback.models import Correction, FeedbackItem
from feedback.privacy.groups import PrivacyError, employee_month, snap_to_weeks, suppressed_groups

MAX_WEEKS = 53
DEFAULT_WEEKS = 12
# Buckets outside any head's labels (a label may not start with "(": classifiers.training.custom)
UNTAGGED = "(untagged)"  # items tagged before the head was added
NO_LABEL = "(no label)"  # a multi-label item with none of the head's labels


class UnknownCategory(LookupError):
    """No configured custom category of that name; the message lists those there are."""


@dataclass
class _Cell:
    n: int = 0
    negative: int = 0
    sentiment_sum: float = 0.0
    corrected: int = 0
    respondents: set[str] = field(default_factory=set)

    def add(self, sentiment: str | None, score: float | None, corrected: bool, respondent: str) -> None:
        self.n += 1
        self.negative += sentiment == "negative"
        self.sentiment_sum += float(score or 0.0)
        self.corrected += corrected
        self.respondents.add(respondent)

    def merge(self, other: _Cell) -> None:
        self.n += other.n
        self.negative += other.negative
        self.sentiment_sum += other.sentiment_sum
        self.corrected += other.corrected


def _window(where: Slice, *, employee: bool) -> tuple[datetime, datetime]:
    end = where.end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = where.start or end - timedelta(weeks=DEFAULT_WEEKS)
    if employee:
        start, end = snap_to_weeks(start, end)  # type: ignore[assignment]
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if end - start > timedelta(weeks=MAX_WEEKS):
        raise ValueError(f"a custom category table covers at most {MAX_WEEKS} weeks (asked for "
                         f"{(end - start).days} days); narrow start and end")
    return start, end  # type: ignore[return-value]


def custom_table(session: Session, settings: Any, name: str, where: Slice, *, interval: str = "week",
                 min_group_size: int = 5) -> dict[str, Any]:
    """Rows of (period, label, n, share negative with its interval, mean sentiment, corrected)."""
    heads = custom_heads(settings, session)
    meta = heads.get(name)
    if meta is None:
        raise UnknownCategory(f"no custom category {name!r}; custom categories: "
                              f"{', '.join(heads) or 'none (models.custom_heads)'}")
    employee = where.audience == "employee"
    if employee and where.filters:
        # A filtered employee table is one row of a two-way table (filter value x label), whose
        # other rows and unfiltered total can be asked for too: suppressed row by row, a hidden
        # cell is their difference (docs/privacy.md, rule 3). Refused, not half-protected.
        raise PrivacyError("employee custom category tables take no dimension filter (a filtered table could "
                           "be differenced against the unfiltered one to single one person out); ask for the "
                           "whole audience, by week or month")
    start, end = _window(where, employee=employee)
    where = Slice(audience=where.audience, start=start, end=end, filters=where.filters)
    weekly = interval if not employee else "week"  # employee cells are weekly first (privacy rule 3)
    if employee or meta.get("multi_label"):
        cells = _item_cells(session, name, where, weekly)
    else:
        cells = _sql_cells(session, name, where, weekly)
    suppressed: list[dict[str, str]] = []
    if employee:
        cells, suppressed = _suppress(cells, min_group_size, interval)
    rows = []
    for (period, label), cell in sorted(cells.items()):
        share = cell.negative / cell.n if cell.n else None
        rows.append({"period": period_label(period, interval), "period_start": period.isoformat(), "label": label,
                     "n": cell.n, "share_negative": share,
                     "share_negative_ci": list(wilson_ci(cell.negative, cell.n) or ()) or None,
                     "mean_sentiment": cell.sentiment_sum / cell.n if cell.n else None,
                     "corrected": cell.corrected})
    return {"name": name, "labels": list(meta["labels"]), "multi_label": bool(meta.get("multi_label")),
            "head_version": meta.get("version"), "audience": where.audience, "interval": interval,
            "start": start, "end": end, "rows": rows, "suppressed": suppressed,
            "corrected_labels": sum(cell.corrected for cell in cells.values())}


_CORRECTION = aliased(Correction, name="custom_correction")  # an item's active custom:NAME correction


def _join_correction(stmt: Any, name: str) -> Any:
    return stmt.outerjoin(_CORRECTION, and_(_CORRECTION.item_id == FeedbackItem.id,
                                            _CORRECTION.kind == CUSTOM_PREFIX + name,
                                            _CORRECTION.withdrawn_at.is_(None)))


def _item_cells(session: Session, name: str, where: Slice, interval: str) -> dict[tuple[date, str], _Cell]:
    """Cells from the items of the slice, with each cell's distinct respondents (what employee
    suppression needs; a multi-label item counts in each of its labels)."""
    stmt = _join_correction(apply_slice(base_select(FeedbackItem.created_at, respondent_key(), Tag.item_id,
                                                    Tag.sentiment, Tag.sentiment_score, Tag.custom, _CORRECTION.label),
                                        where), name)
    cells: dict[tuple[date, str], _Cell] = defaultdict(_Cell)
    for created, respondent, tagged, sentiment, score, custom, correction in session.execute(
            stmt.execution_options(yield_per=5000)):
        if tagged is None:
            continue  # not tagged yet: counted by the tag job's own numbers, not here
        said = ((custom or {}).get(name) or {}).get("labels")
        labels = ([p for p in correction.split("|") if p] if correction is not None
                  else (list(said) if said is not None else [UNTAGGED]))
        period = floor_period(as_date(created), interval)
        for label in labels or [NO_LABEL]:
            cells[(period, label)].add(sentiment, score, correction is not None, respondent)
    return cells


def _sql_cells(session: Session, name: str, where: Slice, interval: str) -> dict[tuple[date, str], _Cell]:
    """The same cells for a single-label head, counted by the database (no respondents: customer
    cells are not suppressed)."""
    said = Tag.custom[(name, "labels", 0)].as_string()
    label = func.coalesce(_CORRECTION.label, said, literal(UNTAGGED))
    period = period_start(session.get_bind().dialect.name, interval, FeedbackItem.created_at)
    sums = {column.name: column for column in stats_columns()}
    stmt = _join_correction(apply_slice(base_select(
        period.label("period"), label.label("label"), sums["n"], sums["n_negative"], sums["sentiment_sum"],
        func.count(_CORRECTION.id).label("corrected")), where), name)
    stmt = stmt.where(Tag.item_id.is_not(None)).group_by(period, label)
    cells: dict[tuple[date, str], _Cell] = {}
    for row in session.execute(stmt):
        cells[(as_date(row.period), row.label)] = _Cell(n=row.n, negative=int(row.n_negative),
                                                         sentiment_sum=float(row.sentiment_sum),
                                                         corrected=row.corrected)
    return cells


def _suppress(cells: dict[tuple[date, str], _Cell], min_size: int,
              interval: str) -> tuple[dict[tuple[date, str], _Cell], list[dict[str, str]]]:
    """Employee weekly cells without the hidden ones (small, and their complements within the
    week, whose total the employee pages show), then added up into months if asked."""
    weeks: dict[date, dict[str, _Cell]] = defaultdict(dict)
    for (week, label), cell in cells.items():
        weeks[week][label] = cell
    shown: dict[tuple[date, str], _Cell] = defaultdict(_Cell)
    suppressed = []
    for week, by_label in sorted(weeks.items()):
        total: set[str] = set().union(*(cell.respondents for cell in by_label.values()))
        hidden = suppressed_groups({label: cell.respondents for label, cell in by_label.items()},
                                   min_size=min_size, total=total)
        for label, cell in by_label.items():
            if label in hidden:
                suppressed.append({"period": period_label(week, "week"), "label": label,
                                   "reason": f"fewer than {min_size} respondents, or needed to hide one that is"})
                continue
            period = employee_month(week) if interval == "month" else week
            shown[(period, label)].merge(cell)
    return dict(shown), suppressed
