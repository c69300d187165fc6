"""What the pages show, read through the same analytics functions the API endpoints call, with
the same arguments they pass (so a page's number is the API's number: tests/test_web.py checks).

A page only reads, so its widgets share the employee items they read (`share_reads`): a page
that asks about the same weeks several times reads them once.

Nothing here decides who may see what: the pages check the visitor's audience with the API's
`Principal`, and every employee number goes through the analytics' privacy rules
(feedback/privacy, feedback/analytics/tables.py), exactly as /v1 does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.routers.journey import journey_steps
from feedback.analytics.cells import Slice
from feedback.analytics.compare import CompareQuery, compare
from feedback.analytics.drivers import DriverQuery, key_drivers
from feedback.analytics.journey import journey
from feedback.analytics.quotes import QuoteQuery, representative_quotes
from feedback.analytics.shares import configured_estimator
from feedback.analytics.tables import share_reads
from feedback.analytics.trends import TrendQuery, table_rows, trend_table
from feedback.config import Settings
from feedback.insights.digest import DigestOptions
from feedback.insights.standing import LOOKBACK_WEEKS, MIN_WEEKS, find_standing
from feedback.models import FeedbackItem
from feedback.privacy.groups import min_sizes

BASELINE_WEEKS = 8
PERIODS = {"4w": 4, "8w": 8, "12w": 12, "26w": 26, "52w": 52}
METRICS = {
    "net_sentiment": "Net sentiment",
    "mean_sentiment": "Mean sentiment",
    "share_negative": "Share negative",
    "nps": "NPS",
    "csat": "CSAT",
    "mean_rating": "Mean rating",
}


def monday(day: date) -> datetime:
    start = day - timedelta(days=day.weekday())
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def latest_week(session: Session, audience: str) -> datetime | None:
    """The Monday of the newest item's week (the pages open on the data's latest week, not today's,
    so a deployment whose sources lag still shows a full week)."""
    # the newest by the (audience, created_at) index, whatever the planner thinks of the others
    newest = session.scalar(select(FeedbackItem.created_at).where(FeedbackItem.audience == audience)
                            .order_by(FeedbackItem.created_at.desc()).limit(1))
    return monday(newest.date()) if newest is not None else None


@dataclass(frozen=True)
class Period:
    """A date range chosen with the period picker: the last N weeks up to the data's latest week."""

    key: str
    start: datetime | None
    end: datetime | None

    @property
    def label(self) -> str:
        if self.start is None or self.end is None:
            return "all time"
        last = (self.end - timedelta(days=1)).date()
        return f"{self.start.date().isoformat()} to {last.isoformat()}"

    def previous(self) -> Period | None:
        if self.start is None or self.end is None:
            return None
        return Period("previous", self.start - (self.end - self.start), self.start)


def pick_period(session: Session, audience: str, key: str | None, start: date | None = None,
                end: date | None = None) -> Period:
    """The period of `key` (4w, 8w, 12w, 26w, 52w, all, or custom with start/end dates)."""
    if key == "custom" and start and end and start < end:
        return Period("custom", monday(start) if audience == "employee" else _day(start), _day(end))
    if key == "all":
        return Period("all", None, None)
    key = key if key in PERIODS else "8w"
    week = latest_week(session, audience)
    if week is None:
        return Period(key, None, None)
    end_at = week + timedelta(days=7)
    return Period(key, end_at - timedelta(weeks=PERIODS[key]), end_at)


def _day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def sizes(settings: Settings) -> tuple[int, int]:
    return min_sizes(settings.privacy)


def journey_view(session: Session, settings: Settings, *, audience: str, period: Period,
                 metric: str = "net_sentiment") -> dict[str, Any]:
    """/v1/journey's answer for the period."""
    share_reads(session)
    where = Slice.make(audience, period.start, period.end, {})
    return journey(session, where, steps=journey_steps(settings, audience), min_group_size=sizes(settings)[0],
                   metric=metric, estimator=configured_estimator(settings))


def trends_view(session: Session, settings: Settings, *, audience: str, by: str, interval: str = "week",
                start: datetime | None = None, end: datetime | None = None, filters: dict[str, str] | None = None,
                mixes: bool = False) -> dict[str, Any]:
    """/v1/trends's answer (rows and where they came from)."""
    share_reads(session)
    query = TrendQuery(by=by, interval=interval, audience=audience, start=start, end=end,
                       filters=dict(filters or {}), mixes=mixes)
    table = trend_table(session, query, min_group_size=sizes(settings)[0])
    rows = table_rows(session, table, mixes=mixes, min_group_size=sizes(settings)[0],
                      estimator=configured_estimator(settings))
    return {"rows": rows, "source": table.source, "start": table.start, "end": table.end}


def compare_view(session: Session, settings: Settings, *, audience: str, current: tuple[datetime, datetime],
                 baseline: tuple[datetime, datetime], by: str = "touchpoint",
                 metric: str = "net_sentiment", drivers: bool = True) -> dict[str, Any]:
    """/v1/compare's answer for two explicit ranges (without each row's drivers if `drivers` is False)."""
    share_reads(session)
    query = CompareQuery(current_start=current[0], current_end=current[1], baseline_start=baseline[0],
                         baseline_end=baseline[1], by=by, metric=metric, audience=audience, filters={},
                         drivers_by=None, alpha=0.05, drivers=drivers)
    return compare(session, query, min_group_size=sizes(settings)[0], estimator=configured_estimator(settings))


def drivers_view(session: Session, settings: Settings, *, audience: str, period: Period,
                 dimensions: tuple[str, ...], filters: dict[str, str] | None = None,
                 outcome: str = "nps") -> dict[str, Any]:
    """/v1/drivers's answer without the adjusted coefficients, which no page shows (the fit needs
    every item's features; without it the customer drivers are read from the rollups)."""
    share_reads(session)
    query = DriverQuery(outcome=outcome, audience=audience, start=period.start, end=period.end,
                        dimensions=dimensions, filters=dict(filters or {}), regression=False)
    return key_drivers(session, query, min_group_size=sizes(settings)[0])


def quotes_view(session: Session, settings: Settings, redact: Any, *, audience: str,
                start: datetime | None, end: datetime | None, filters: dict[str, str],
                sentiment: str | None, limit: int = 8) -> dict[str, Any]:
    """/v1/quotes's answer."""
    query = QuoteQuery(audience=audience, start=start, end=end, filters=dict(filters), sentiment=sentiment,
                       limit=limit)
    return representative_quotes(session, query, min_group_size_comments=sizes(settings)[1], redact=redact)


def overview_view(session: Session, settings: Settings, *, audience: str, metric: str,
                  week: datetime) -> dict[str, Any]:
    """The week against the week before and against the `BASELINE_WEEKS` weeks before it, per
    touchpoint (employee: per team), each a /v1/compare answer with explicit ranges; the page shows
    no drivers, so none are computed (they are the compare's costly part: reads of the items)."""
    by = "touchpoint" if audience == "customer" else "org_unit"
    current = (week, week + timedelta(days=7))
    last = compare_view(session, settings, audience=audience, current=current,
                        baseline=(week - timedelta(days=7), week), by=by, metric=metric, drivers=False)
    base = compare_view(session, settings, audience=audience, current=current,
                        baseline=(week - timedelta(weeks=BASELINE_WEEKS), week), by=by, metric=metric,
                        drivers=False)
    baseline_rows = {row.get("value_code"): row for row in base["rows"]}
    rows = []
    for row in last["rows"]:
        rows.append({"name": row[by], "code": row.get("value_code"), "current": row["current"],
                     "last": row["baseline"], "change_last": row, "baseline": baseline_rows.get(row.get("value_code"))})
    return {"by": by, "rows": rows, "current": last["current"], "last": last["baseline"],
            "baseline": base["baseline"]}


# What the overview's "Still going" section looks at: the overview's own grouping. Topics would
# cost the customer overview another 6 ms (a second weekly rollup read, 30 topics x 20 weeks:
# a quarter of the page), employee themes a second privacy pass over 20 weeks of items. The
# section names and links touchpoints and teams only (by their codes, overview.html).
STANDING_DIMENSIONS = {"customer": ("touchpoint",), "employee": ("org_unit",)}


def standing_view(session: Session, settings: Settings, *, audience: str, week: datetime) -> dict[str, Any]:
    """Problems still going in the week starting at `week`: cells whose share negative has stayed
    up since it rose, tested with the digest's alert test against the weeks before the rise
    (feedback.insights.standing); employee cells through the same privacy-checked tables. With
    the rule's numbers, for the page to say what it checked."""
    share_reads(session)
    options = DigestOptions.from_settings(settings)
    min_n = options.cell_min_n(audience)
    problems = find_standing(session, audience=audience, week=week, dimensions=STANDING_DIMENSIONS[audience],
                             policy=options.policy, min_n=min_n, min_group_size=sizes(settings)[0],
                             estimator=options.share_estimator or configured_estimator(settings))
    rule = {"min_weeks": MIN_WEEKS, "lookback": LOOKBACK_WEEKS, "baseline_weeks": options.policy.baseline_weeks,
            "min_increase": options.policy.min_share_increase, "fdr": options.policy.fdr, "min_n": min_n}
    return {"problems": problems, "rule": rule}
