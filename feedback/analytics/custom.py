"""Custom categories over time: volume, share negative and mean sentiment per period and label of
a custom category head (`models.custom_heads`), what `GET /v1/custom/{name}` answers.

An item's label is the analyst's `custom:NAME` correction where one is active, else the head's
(`tags.custom`); its sentiment is the served one (corrections in place, `ServedTag`). Items
tagged before the head was added carry no label of it and are counted as `untagged`.

The labels live in the tag's JSON, so this reads the items of the slice (one query, streamed)
rather than the rollups; a period range is required to be at most `MAX_WEEKS` weeks so the read
stays bounded. Employee cells follow docs/privacy.md like every employee aggregate: weekly
cells of distinct respondents, hidden below the minimum group size with complementary
suppression across the week's labels (`suppressed_groups`), and a month adds up only the
weekly cells that were shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_
from sqlalchemy.orm import Session, aliased

from feedback.analytics.cells import (
    Slice,
    Tag,
    apply_slice,
    as_date,
    base_select,
    floor_period,
    period_label,
    respondent_key,
)
from feedback.analytics.stats import wilson_ci
from feedback.corrections.service import CUSTOM_PREFIX, custom_heads
from feedback.models import Correction, FeedbackItem
from feedback.privacy.groups import employee_month, snap_to_weeks, suppressed_groups

MAX_WEEKS = 53
DEFAULT_WEEKS = 12
UNTAGGED = "untagged"


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
    start, end = _window(where, employee=employee)
    where = Slice(audience=where.audience, start=start, end=end, filters=where.filters)
    corrected = aliased(Correction)
    stmt = apply_slice(base_select(FeedbackItem.created_at, respondent_key(), Tag.item_id, Tag.sentiment,
                                   Tag.sentiment_score, Tag.custom, corrected.label), where)
    stmt = stmt.outerjoin(corrected, and_(corrected.item_id == FeedbackItem.id, corrected.kind == CUSTOM_PREFIX + name,
                                          corrected.withdrawn_at.is_(None)))
    weekly = interval if not employee else "week"  # employee cells are weekly first (privacy rule 3)
    cells: dict[tuple[date, str], _Cell] = defaultdict(_Cell)
    for created, respondent, tagged, sentiment, score, custom, correction in session.execute(
            stmt.execution_options(yield_per=5000)):
        if tagged is None:
            continue  # not tagged yet: counted by the tag job's own numbers, not here
        said = ((custom or {}).get(name) or {}).get("labels")
        labels = ([p for p in correction.split("|") if p] if correction is not None
                  else (list(said) if said is not None else [UNTAGGED]))
        period = floor_period(as_date(created), weekly)
        for label in labels or ["none"]:
            cells[(period, label)].add(sentiment, score, correction is not None, respondent)
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
