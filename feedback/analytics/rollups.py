"""Rollups: customer cell statistics per day, week and month for every dimension, kept current.

The tagging job calls `refresh_rollups(session)` after it tags: the days of every item tagged
since the last refresh (the watermark) are recomputed from the items, then their weeks and
months are re-summed from the days. Reads check `rollups_current()` (two index lookups) and use
the rollups only when every tag is in them; otherwise they compute from the items (slower,
always right). `refresh_rollups(session, item_ids=...)` recomputes the days of given items, and
`rebuild_rollups` redoes it all; a topic refit or merge (which moves items between topics
without new tags) changes the topics stamp, which makes reads fall back to the items and the
next refresh rebuild.

Employee feedback is never rolled up: its numbers need distinct respondents per week for the
privacy rules, which sums cannot give (`feedback.analytics.tables` computes them from items).

A row whose value disappears from a period is kept with zero counts (a tombstone) and a new
`updated_at`, so BI tools that pull `updated_since` learn about it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from feedback.analytics.cells import (
    DIMENSIONS,
    SUM_FIELDS,
    CellStats,
    Slice,
    as_date,
    day_start,
    floor_period,
    next_period,
    period_start,
)
from feedback.db import utcnow
from feedback.models import (
    AnalyticsRollup,
    Correction,
    FeedbackItem,
    RollupState,
    Tag,
    Topic,
    TopicModelVersion,
)

ROLLED_UP_AUDIENCES = ("customer",)
GRAINS = ("day", "week", "month")
# Dimensions whose rows carry need/emotion mixes (journeys, trends with mixes); the others
# (multi-label ones, whose mix is co-occurrence) are computed from the items when asked.
MIX_DIMENSIONS = ("all", "touchpoint", "journey_stage", "channel", "segment", "topic", "source")
# Pairs of dimensions also rolled up together, as dimension 'first*second' with value
# 'first code<US>second code': a touchpoint's topics, needs and emotions (the web app's
# touchpoint page: its topic trend and key drivers; /v1/compare's drivers by topic per touchpoint).
# Like the multi-label dimensions they carry no mixes. /v1/aggregates does not export them.
CROSS_DIMENSIONS = (("touchpoint", "topic"), ("touchpoint", "need"), ("touchpoint", "emotion"))
CROSS_SEPARATOR = "\x1f"


def cross_dimension(first: str, second: str) -> str:
    """The rollup dimension of the pair (first, second), e.g. 'touchpoint*topic'."""
    return f"{first}*{second}"


def cross_value(first_code: str, second_code: str) -> str:
    return f"{first_code}{CROSS_SEPARATOR}{second_code}"


def split_cross_value(value: str) -> tuple[str, str]:
    """(first code, second code) of a cross row's value (the second is a topic id or a label, never
    holding the separator; a first code that held it stays whole)."""
    first, _, second = value.rpartition(CROSS_SEPARATOR)
    return first, second


# Tags stamped just before a refresh may commit just after it (another tagger process);
# each refresh looks this far behind its watermark so none is missed.
WATERMARK_OVERLAP = timedelta(minutes=5)


@dataclass
class RefreshResult:
    days: int
    rows_written: int
    watermark: datetime | None


def topics_stamp(session: Session) -> str:
    """What topic assignments depend on: the newest topic model version and topic change."""
    row = session.execute(select(
        select(func.max(TopicModelVersion.id)).scalar_subquery(),
        select(func.max(Topic.updated_at)).scalar_subquery(),
        select(func.count(Topic.id)).scalar_subquery())).one()
    return f"{row[0]}|{row[1]}|{row[2]}"


def newest_change(session: Session) -> datetime | None:
    """The newest tag or correction (a correction added or withdrawn changes an item's served
    labels as a new tag does): what the watermark covers."""
    tagged, corrected = session.execute(select(select(func.max(Tag.tagged_at)).scalar_subquery(),
                                               select(func.max(Correction.changed_at)).scalar_subquery())).one()
    return max((t for t in (tagged, corrected) if t is not None), default=None)


def rollups_current(session: Session, audience: str = "customer") -> bool:
    """Whether the rollups of `audience` include every tag and topic change (so reads may use them)."""
    if audience not in ROLLED_UP_AUDIENCES:
        return False
    state = session.get(RollupState, audience)
    if state is None or state.topics_stamp != topics_stamp(session):
        return False
    newest = newest_change(session)
    if newest is None:
        return True
    return state.tags_watermark is not None and newest <= state.tags_watermark


def refresh_rollups(session: Session, item_ids: Iterable[int] | None = None, *,
                    audience: str = "customer", max_days: int | None = None) -> RefreshResult:
    """Recompute the days touched by tags newer than the watermark (or by `item_ids`); flushes only.

    With `max_days`, do nothing when more days than that wait (a backfill of old feedback): the
    tagging job refreshes cheaply after each batch of recent feedback and once at its end.
    """
    if audience not in ROLLED_UP_AUDIENCES:
        return RefreshResult(0, 0, None)
    state = session.get(RollupState, audience)
    newest = newest_change(session)
    if item_ids is not None:
        days = _days_of_items(session, list(item_ids), audience)
    elif state is None or state.tags_watermark is None or state.topics_stamp != topics_stamp(session):
        # first build, or a topic refit / merge moved items between topics: everything again
        if max_days is not None:
            return RefreshResult(0, 0, None)
        return rebuild_rollups(session, audience=audience)
    else:
        since = state.tags_watermark - WATERMARK_OVERLAP
        day = period_start(session.get_bind().dialect.name, "day", FeedbackItem.created_at)
        days = {as_date(d) for (d,) in session.execute(
            select(day).distinct().join(Tag, Tag.item_id == FeedbackItem.id)
            .where(Tag.tagged_at > since, FeedbackItem.audience == audience))}
        days |= {as_date(d) for (d,) in session.execute(  # items corrected (or withdrawn) since
            select(day).distinct().join(Correction, Correction.item_id == FeedbackItem.id)
            .where(Correction.changed_at > since, FeedbackItem.audience == audience))}
    if max_days is not None and len(days) > max_days:
        return RefreshResult(0, 0, state.tags_watermark if state else None)
    written = _recompute(session, sorted(days), audience)
    _set_state(session, audience, newest, state, rebuilt=False)
    return RefreshResult(len(days), written, newest)


def rebuild_rollups(session: Session, *, audience: str = "customer") -> RefreshResult:
    """Recompute every rollup row of `audience` from the items; flushes only."""
    state = session.get(RollupState, audience)
    newest = newest_change(session)
    first, last = session.execute(
        select(func.min(FeedbackItem.created_at), func.max(FeedbackItem.created_at))
        .where(FeedbackItem.audience == audience)).one()
    days: list[date] = []
    if first is not None:
        day, end = first.date(), last.date()
        while day <= end:
            days.append(day)
            day += timedelta(days=1)
    stale = session.execute(select(AnalyticsRollup.grain, AnalyticsRollup.period_start)
                            .where(AnalyticsRollup.audience == audience).distinct()).all()
    written = _recompute(session, days, audience, extra_periods=stale)
    _set_state(session, audience, newest, state, rebuilt=True)
    return RefreshResult(len(days), written, newest)


def _set_state(session: Session, audience: str, newest: datetime | None, state: RollupState | None,
               *, rebuilt: bool) -> None:
    now = utcnow()
    if state is None:
        state = RollupState(audience=audience)
        session.add(state)
    if newest is not None and (state.tags_watermark is None or newest > state.tags_watermark):
        state.tags_watermark = newest
    if rebuilt:
        state.topics_stamp = topics_stamp(session)
    state.refreshed_at = now
    if rebuilt:
        state.rebuilt_at = now
    session.flush()


def _days_of_items(session: Session, item_ids: Sequence[int], audience: str) -> set[date]:
    days: set[date] = set()
    for start in range(0, len(item_ids), 900):
        for (created,) in session.execute(
            select(FeedbackItem.created_at).where(FeedbackItem.id.in_(item_ids[start:start + 900]),
                                                  FeedbackItem.audience == audience)
        ):
            days.add(created.date())
    return days


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Sorted days as [first, last] runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


ROLLUP = cast(Table, AnalyticsRollup.__table__)
STAT_COLUMNS = [ROLLUP.c[name] for name in SUM_FIELDS]


def rollup_stats(row: Any, offset: int, labels: Any = None) -> CellStats:
    """CellStats from a Core row holding the SUM_FIELDS from position `offset` on."""
    values = row[offset:offset + len(SUM_FIELDS)]
    return CellStats(*values, labels=Counter(labels or {}))  # type: ignore[misc]  # the SUM_FIELDS, in order


def _recompute(session: Session, days: Sequence[date], audience: str,
               extra_periods: Iterable[tuple[str, Any]] = ()) -> int:
    """Recompute day rows for `days`, then their weeks and months; returns rows written."""
    from feedback.analytics.tables import raw_cells, raw_pair_cells  # the one SQL definition of cell sums

    if not days and not extra_periods:
        return 0
    computed: dict[tuple[str, date], dict[tuple[str, str], CellStats]] = defaultdict(dict)
    for first, last in _runs(days):
        where = Slice(audience=audience, start=day_start(first), end=day_start(last + timedelta(days=1)))
        for name in DIMENSIONS:
            mixes = name in MIX_DIMENSIONS
            for (period, code), stats in raw_cells(session, where, name, "day", mixes=mixes).items():
                assert period is not None
                computed[("day", period)][(name, code)] = stats
        for first_name, second_name in CROSS_DIMENSIONS:
            cross = cross_dimension(first_name, second_name)
            for (period, first_code, second_code), stats in raw_pair_cells(
                    session, where, first_name, second_name, "day").items():
                assert period is not None
                computed[("day", period)][(cross, cross_value(first_code, second_code))] = stats
    for day in days:
        computed.setdefault(("day", day), {})
    written = _write(session, audience, computed, extra_periods)
    # Weeks and months are sums of their days: the ones just computed, the others read back.
    coarse: dict[tuple[str, date], dict[tuple[str, str], CellStats]] = {}
    periods = {(grain, floor_period(day, grain)) for grain in ("week", "month") for day in days}
    if periods:
        first = min(start for _, start in periods)
        last = max(next_period(start, grain) for grain, start in periods)
        stored: dict[date, dict[tuple[str, str], CellStats]] = defaultdict(dict)
        for row in session.execute(select(ROLLUP.c.period_start, ROLLUP.c.dimension, ROLLUP.c.value,
                                          ROLLUP.c.labels, *STAT_COLUMNS).where(
                ROLLUP.c.audience == audience, ROLLUP.c.grain == "day", ROLLUP.c.period_start >= first,
                ROLLUP.c.period_start < last, ROLLUP.c.n > 0)):
            day = as_date(row[0])
            if ("day", day) not in computed:
                stored[day][(row[1], row[2])] = rollup_stats(row, 4, row[3])
        for grain, start in sorted(periods):
            sums: dict[tuple[str, str], CellStats] = {}
            day = start
            while day < next_period(start, grain):
                for key, stats in (computed.get(("day", day)) or stored.get(day) or {}).items():
                    if key in sums:
                        sums[key].add(stats)
                    else:
                        sums[key] = CellStats().add(stats)
                day += timedelta(days=1)
            coarse[(grain, start)] = sums
    return written + _write(session, audience, coarse, ())


def _values(stats: CellStats) -> tuple[Any, ...]:
    return (*(round(float(getattr(stats, f)), 9) for f in SUM_FIELDS),
            tuple(sorted((k, v) for k, v in stats.labels.items() if v)))


def _write(session: Session, audience: str, computed: dict[tuple[str, date], dict[tuple[str, str], CellStats]],
           extra_periods: Iterable[tuple[str, Any]]) -> int:
    """Replace the rows of the given (grain, period)s; unchanged rows keep their updated_at."""
    periods = set(computed) | {(g, as_date(p)) for g, p in extra_periods}
    if not periods:
        return 0
    now = utcnow()
    existing: dict[tuple[str, date, str, str], tuple[CellStats, datetime]] = {}
    keys = sorted(periods)
    for grain in {g for g, _ in keys}:
        starts = [p for g, p in keys if g == grain]
        for row in session.execute(select(ROLLUP.c.period_start, ROLLUP.c.dimension, ROLLUP.c.value,
                                          ROLLUP.c.updated_at, ROLLUP.c.labels, *STAT_COLUMNS).where(
                ROLLUP.c.audience == audience, ROLLUP.c.grain == grain,
                ROLLUP.c.period_start >= min(starts), ROLLUP.c.period_start <= max(starts))):
            key = (grain, as_date(row[0]), row[1], row[2])
            if (grain, key[1]) in periods:
                existing[key] = (rollup_stats(row, 5, row[4]), row[3])
    # Rows of one period change together: a share is a row over its period's total, so when
    # any row of a period changes, every row of it gets the new updated_at.
    rows: dict[tuple[str, date], list[tuple[str, str, CellStats]]] = defaultdict(list)
    seen: set[tuple[str, date, str, str]] = set()
    for (grain, start), cells in computed.items():
        for (name, code), stats in cells.items():
            seen.add((grain, start, name, code))
            rows[(grain, start)].append((name, code, stats))
    for key, (old_stats, _) in existing.items():
        if key not in seen and old_stats.n:
            # A value gone from its period: a zero row (tombstone) tells incremental BI pulls.
            rows[(key[0], key[1])].append((key[2], key[3], CellStats()))
        elif key not in seen:
            rows[(key[0], key[1])].append((key[2], key[3], old_stats))  # an old tombstone stays
    records: list[dict[str, Any]] = []
    for (grain, start), period_rows in rows.items():
        olds = [existing.get((grain, start, name, code)) for name, code, _ in period_rows]
        unchanged = all(old is not None and _values(old[0]) == _values(stats)
                        for old, (_, _, stats) in zip(olds, period_rows, strict=True))
        stamp = max(old[1] for old in olds if old is not None) if unchanged and olds else now
        for old, (name, code, stats) in zip(olds, period_rows, strict=True):
            # An unchanged period keeps its stored sums too, not only its stamp: sums recomputed in
            # another order (a plan the database chose differently) can differ in the last bits,
            # enough to move a rounded mean, and a BI copy that saw no new updated_at keeps the old.
            kept = old[0] if unchanged and old is not None else stats
            records.append(_record(audience, grain, start, name, code, kept, stamp))
    for grain in {g for g, _ in keys}:
        starts = sorted(p for g, p in keys if g == grain)
        for i in range(0, len(starts), 400):
            session.execute(delete(ROLLUP).where(ROLLUP.c.audience == audience, ROLLUP.c.grain == grain,
                                                 ROLLUP.c.period_start.in_(starts[i:i + 400])))
    for i in range(0, len(records), 5000):
        session.execute(insert(ROLLUP), records[i:i + 5000])
    return len(records)


def _record(audience: str, grain: str, start: date, name: str, code: str, stats: CellStats,
            updated_at: datetime) -> dict[str, Any]:
    record: dict[str, Any] = {f: getattr(stats, f) for f in SUM_FIELDS}
    record.update(audience=audience, grain=grain, period_start=start, dimension=name, value=code,
                  labels={k: v for k, v in stats.labels.items() if v}, updated_at=updated_at)
    return record
