"""Cell tables: statistics per (period, dimension value) for a slice, the core of every analytics read.

`cell_table()` is the one entry point. Customer tables come from the rollups when they are
current and the slice allows it (no dimension filter, whole-day bounds), else from one grouped
SQL query over the items (`raw_cells`, which also builds the rollups, so both paths agree).

Employee tables are always computed from the items, in Python, with the privacy rules of
`feedback.privacy.groups` applied per ISO week (see docs/privacy.md): per week, a one-way table
(grouping values, against the week's total) or, with a filter on another dimension, the two-way
table (filter values x grouping values) is suppressed; then longer periods add up only the
weekly cells that were shown. A cell is `None` in the result when it is suppressed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, func, literal, select
from sqlalchemy.orm import Session, aliased

from feedback.analytics.cells import (
    CellStats,
    Slice,
    apply_slice,
    as_date,
    base_select,
    dimension,
    floor_period,
    is_midnight,
    join_labels,
    next_period,
    period_start,
    respondent_key,
    stats_columns,
    value_expression,
)
from feedback.analytics.metrics import MIX_KINDS
from feedback.analytics.rollups import (
    MIX_DIMENSIONS,
    ROLLUP,
    STAT_COLUMNS,
    rollup_stats,
    rollups_current,
)
from feedback.analytics.served import ServedTag as Tag  # the model's tags, corrections in their place
from feedback.analytics.served import item_labels, label_tables, model_labels_live
from feedback.models import FeedbackItem, TagLabel
from feedback.privacy.groups import (
    check_employee_query,
    employee_month,
    snap_to_weeks,
    suppressed_cells,
    suppressed_groups,
    week_floor,
)

RANGE = "range"  # one period covering the whole slice
ALL = "*"


@dataclass
class CellTable:
    """Cells per (period, value code); `None` marks a suppressed cell. Periods are period starts."""

    by: str
    interval: str
    audience: str
    cells: dict[tuple[date | None, str], CellStats | None] = field(default_factory=dict)
    totals: dict[date | None, CellStats | None] = field(default_factory=dict)  # the slice per period
    source: str = "items"  # rollups | items | items+privacy
    start: datetime | None = None  # the bounds actually used (employee: snapped to weeks)
    end: datetime | None = None

    def periods(self) -> list[date | None]:
        keys = {p for p, _ in self.cells} | set(self.totals)
        return sorted(keys, key=lambda p: (p is not None, p or date.min))

    def values(self) -> list[str]:
        return sorted({v for _, v in self.cells})


def cell_table(session: Session, where: Slice, by: str, interval: str, *, min_group_size: int,
               mixes: bool = False) -> CellTable:
    """Statistics of `where` per period of `interval` (day|week|month|range) and value of `by`."""
    dimension(by)
    if where.audience == "employee":
        return employee_table(session, where, by, interval, min_group_size=min_group_size, mixes=mixes)
    return customer_table(session, where, by, interval, mixes=mixes)


# ---------------------------------------------------------------------------------------------
# SQL over the items


def raw_cells(session: Session, where: Slice, by: str, interval: str, *,
              mixes: bool = False) -> dict[tuple[date | None, str], CellStats]:
    """Grouped queries: CellStats per (period start, value code) of `by` over the items. A label
    dimension adds up one query per label table (the model's, the corrections': served.py)."""
    dialect = session.get_bind().dialect.name
    period = (period_start(dialect, interval, FeedbackItem.created_at) if interval != RANGE else None)
    labelled = dimension(by).multi
    tables = label_tables(session) if labelled or mixes else [(TagLabel, None)]
    out: dict[tuple[date | None, str], CellStats] = {}
    for labels, live in (tables if labelled else [(TagLabel, None)]):
        value, _ = value_expression(by, labels)
        group = [value.label("value")] if period is None else [period.label("period"), value.label("value")]
        stmt = base_select(*group, *stats_columns())
        if labelled:
            stmt = join_labels(stmt, by, labels, live)
        stmt = apply_slice(stmt, where).group_by(*[g for g in (period, value) if g is not None])
        offset = len(group)
        for row in session.execute(stmt):
            key = (as_date(row[0]) if period is not None else None, str(row[offset - 1]))
            stats = CellStats(*row[offset:])  # type: ignore[arg-type]  # the SUM_FIELDS, in order
            if key in out:
                out[key].add(stats)
            else:
                out[key] = stats
    if mixes and out:
        for labels, live in (tables if labelled else [(TagLabel, None)]):
            value, _ = value_expression(by, labels)
            group = [value.label("value")] if period is None else [period.label("period"), value.label("value")]
            for mix_table, mix_live in tables:
                mix = aliased(mix_table)
                mstmt = base_select(*group, mix.kind, mix.label, func.count().label("items"))
                if labelled:
                    mstmt = join_labels(mstmt, by, labels, live)
                on = and_(mix.item_id == FeedbackItem.id, mix.kind.in_(MIX_KINDS))
                if mix_live is not None:
                    on = and_(on, model_labels_live(mix))
                mstmt = mstmt.join(mix, on)
                mstmt = apply_slice(mstmt, where).group_by(
                    *[g for g in (period, value) if g is not None], mix.kind, mix.label)
                for row in session.execute(mstmt):
                    key = (as_date(row.period) if period is not None else None, str(row.value))
                    if key in out:
                        out[key].labels[f"{row.kind}:{row.label}"] += int(row.items)
    return out


def raw_cross_cells(session: Session, where: Slice, by: str, other: str) -> dict[tuple[str, str], CellStats]:
    """CellStats per (value of `by`, value of `other`) over the whole slice; `other` single-valued."""
    second, second_labelled = value_expression(other)
    if second_labelled:
        raise ValueError(f"{other!r} is multi-valued; cross it as `by` instead")
    labelled = dimension(by).multi
    out: dict[tuple[str, str], CellStats] = {}
    for labels, live in (label_tables(session) if labelled else [(TagLabel, None)]):
        value, _ = value_expression(by, labels)
        stmt = base_select(value.label("value"), second.label("other"), *stats_columns())
        if labelled:
            stmt = join_labels(stmt, by, labels, live)
        stmt = apply_slice(stmt, where).group_by(value, second)
        for row in session.execute(stmt):
            key = (str(row.value), str(row.other))
            if key in out:
                out[key].add(CellStats.from_row(row))
            else:
                out[key] = CellStats.from_row(row)
    return out


# ---------------------------------------------------------------------------------------------
# Customer


def _bucket(day: date, interval: str) -> date | None:
    return None if interval == RANGE else floor_period(day, interval)


def customer_table(session: Session, where: Slice, by: str, interval: str, *, mixes: bool = False) -> CellTable:
    """Customer cells from the rollups when possible, else from the items."""
    table = CellTable(by=by, interval=interval, audience=where.audience, start=where.start, end=where.end)
    reads = _rollup_reads(where, interval, by, mixes)
    if reads is not None and rollups_current(session, where.audience):
        table.source = "rollups"
        for grain, first, after in reads:
            columns = [ROLLUP.c.period_start, ROLLUP.c.dimension, ROLLUP.c.value,
                       ROLLUP.c.labels if mixes else literal(None), *STAT_COLUMNS]
            stmt = select(*columns).where(ROLLUP.c.audience == where.audience, ROLLUP.c.grain == grain,
                                          ROLLUP.c.dimension.in_({by, "all"}), ROLLUP.c.n > 0)
            if first is not None:
                stmt = stmt.where(ROLLUP.c.period_start >= first)
            if after is not None:
                stmt = stmt.where(ROLLUP.c.period_start < after)
            same = interval == grain
            for row in session.execute(stmt):
                day = as_date(row[0])
                period = None if interval == RANGE else (day if same else floor_period(day, interval))
                stats = rollup_stats(row, 4, row[3])
                if row[1] == by:
                    _add(table.cells, (period, row[2]), stats)
                if row[1] == "all":
                    _add(table.totals, period, stats if row[1] != by else CellStats().add(stats))
        return table
    table.cells = dict(raw_cells(session, where, by, interval, mixes=mixes))
    for (period, _), stats in raw_cells(session, where, "all", interval).items():
        table.totals[period] = stats
    return table


def _add(cells: dict[Any, CellStats | None], key: Any, stats: CellStats) -> None:
    current = cells.get(key)
    cells[key] = stats if current is None else current.add(stats)


def _day(moment: datetime) -> date:
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def _rollup_reads(where: Slice, interval: str, by: str, mixes: bool
                  ) -> list[tuple[str, date | None, date | None]] | None:
    """Which rollup rows answer this slice exactly: [(grain, first period, end)], or None.

    Whole periods of the interval come from its own rows; partial periods at the edges of the
    range from day rows. None when the rollups cannot answer: dimension filters, bounds inside
    a day, or mixes for a dimension whose rows carry none.
    """
    if where.filters or where.audience != "customer" or (mixes and by not in MIX_DIMENSIONS):
        return None
    if not (is_midnight(where.start) and is_midnight(where.end)):
        return None
    start = _day(where.start) if where.start is not None else None
    end = _day(where.end) if where.end is not None else None
    coarse = "month" if interval == RANGE else interval
    if coarse == "day":
        return [("day", start, end)]
    inner_start = start if start is None or floor_period(start, coarse) == start else next_period(
        floor_period(start, coarse), coarse)
    inner_end = end if end is None else floor_period(end, coarse)
    if inner_start is not None and inner_end is not None and inner_start >= inner_end:
        return [("day", start, end)]
    reads: list[tuple[str, date | None, date | None]] = [(coarse, inner_start, inner_end)]
    if start is not None and inner_start is not None and start < inner_start:
        reads.append(("day", start, inner_start))
    if end is not None and inner_end is not None and inner_end < end:
        reads.append(("day", inner_end, end))
    return reads


# ---------------------------------------------------------------------------------------------
# Employee


@dataclass
class _Cell:
    """Sums and distinct respondents of one weekly cell, with respondents per mix label."""

    stats: CellStats = field(default_factory=CellStats)
    respondents: set[str] = field(default_factory=set)
    label_respondents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, item: CellStats, respondent: str, labels: list[str]) -> None:
        self.stats.add(item)
        self.respondents.add(respondent)
        for label in labels:
            self.label_respondents[label].add(respondent)


def employee_table(session: Session, where: Slice, by: str, interval: str, *, min_group_size: int,
                   mixes: bool = False) -> CellTable:
    """Employee cells with minimum group sizes, complementary suppression and whole weeks."""
    check_employee_query(where.filters, interval=interval)
    start, end = snap_to_weeks(where.start, where.end)
    row_dim = where.filters[0][0] if where.filters else None
    wanted = where.filters[0][1] if where.filters else None
    if wanted is not None and row_dim == "source" and not wanted.isdigit():
        wanted = _source_code(session, wanted)
    wanted_row, wanted_col = (wanted or ALL), None
    if row_dim == by:  # filtering on the grouping dimension: the one-way table, one value kept
        row_dim, wanted_row, wanted_col = None, ALL, wanted
    items = _employee_items(session, Slice(where.audience, start, end), by, row_dim, mixes=mixes)

    # Weekly cells: (week, row value, column value); row is ALL without a filter dimension.
    weekly: dict[date, dict[tuple[str, str], _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    row_margin: dict[date, dict[str, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    col_margin: dict[date, dict[str, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    grand: dict[date, _Cell] = defaultdict(_Cell)
    for item in items:
        week = item["week"]
        grand[week].add(item["stats"], item["respondent"], item["labels"])
        rows = item["rows"] if row_dim else [ALL]
        for row in rows:
            row_margin[week][row].add(item["stats"], item["respondent"], item["labels"])
        for col in item["cols"]:
            col_margin[week][col].add(item["stats"], item["respondent"], item["labels"])
            for row in rows:
                weekly[week][(row, col)].add(item["stats"], item["respondent"], item["labels"])

    kept_cells: dict[tuple[date, str], _Cell] = {}
    hidden_cells: set[tuple[date, str]] = set()
    kept_totals: dict[date, _Cell] = {}
    for week, cells in weekly.items():
        total = grand[week].respondents
        if row_dim is None:
            sizes = {col: cell.respondents for (_, col), cell in cells.items()}
            hidden_cols = suppressed_groups(sizes, min_size=min_group_size, total=total)
            hidden = {(ALL, c) for c in hidden_cols}
            slice_cell = grand[week]
            slice_hidden = len(total) < min_group_size
            if wanted_col is not None:
                slice_cell = col_margin[week].get(wanted_col, _Cell())
                slice_hidden = wanted_col in hidden_cols or not slice_cell.respondents
        else:
            # One orientation per pair of dimensions, so that 'org_unit=x by touchpoint' and
            # 'touchpoint=y by org_unit' read the same suppression pattern.
            flip = row_dim > by
            rows_sizes = {r: c.respondents for r, c in row_margin[week].items()}
            cols_sizes = {c: m.respondents for c, m in col_margin[week].items()}
            hidden = suppressed_cells(
                {((k[1], k[0]) if flip else k): cell.respondents for k, cell in cells.items()},
                min_size=min_group_size, row_totals=cols_sizes if flip else rows_sizes,
                col_totals=rows_sizes if flip else cols_sizes, grand_total=total)
            if flip:
                hidden = {(k[1], k[0]) for k in hidden}
            slice_cell = row_margin[week].get(wanted_row, _Cell())
            row_hidden = suppressed_groups({r: c.respondents for r, c in row_margin[week].items()},
                                           min_size=min_group_size, total=total)
            slice_hidden = wanted_row in row_hidden or not slice_cell.respondents
        for (row, col), cell in cells.items():
            if row != wanted_row or (wanted_col is not None and col != wanted_col):
                continue
            if (row, col) in hidden:
                hidden_cells.add((week, col))
            else:
                kept_cells[(week, col)] = cell
        if not slice_hidden and slice_cell.respondents:
            kept_totals[week] = slice_cell

    table = CellTable(by=by, interval=interval, audience=where.audience, source="items+privacy",
                      start=start, end=end)

    def bucket(week: date) -> date | None:
        if interval == RANGE:
            return None
        return employee_month(week) if interval == "month" else week

    # Longer periods add up only the weekly cells that were shown (dropped, not hidden).
    summed: dict[tuple[date | None, str], list[_Cell]] = defaultdict(list)
    for (week, col), cell in kept_cells.items():
        summed[(bucket(week), col)].append(cell)
    for key, parts in summed.items():
        table.cells[key] = _merge(parts, min_group_size, mixes)
    for week, col in hidden_cells:
        table.cells.setdefault((bucket(week), col), None)
    totals: dict[date | None, list[_Cell]] = defaultdict(list)
    for week, cell in kept_totals.items():
        totals[bucket(week)].append(cell)
    for period, parts in totals.items():
        table.totals[period] = _merge(parts, min_group_size, False)
    for week in weekly:
        table.totals.setdefault(bucket(week), None)
    return table


def _merge(parts: list[_Cell], min_group_size: int, mixes: bool) -> CellStats:
    """Sum weekly cells; a mix label counts only in weeks where it has >= min_group_size people."""
    stats = CellStats()
    for part in parts:
        stats.add(CellStats(**{k: v for k, v in part.stats.as_dict().items() if k != "labels"}))
        if mixes:
            for label, people in part.label_respondents.items():
                if len(people) >= min_group_size:
                    stats.labels[label] += part.stats.labels[label]
    return stats


def _source_code(session: Session, name: str) -> str:
    from feedback.models import Source

    found = session.scalar(select(Source.id).where(Source.name == name))
    return str(found) if found is not None else f"missing:{name}"


def _employee_items(session: Session, where: Slice, by: str, row_dim: str | None, *,
                    mixes: bool) -> list[dict[str, Any]]:
    """Every employee item of the (week-snapped) range: week, respondent, sums, values."""
    columns: list[Any] = [
        FeedbackItem.id, FeedbackItem.created_at, respondent_key().label("respondent"),
        Tag.item_id.label("tagged"), Tag.sentiment, Tag.sentiment_score, Tag.p_negative,
        FeedbackItem.nps, FeedbackItem.csat, FeedbackItem.stars,
    ]
    single: dict[str, Any] = {}
    for name in {n for n in (by, row_dim) if n is not None}:
        dim = dimension(name)
        if dim.value is not None:
            single[name] = dim.value().label(f"v_{name}")
    stmt = apply_slice(base_select(*columns, *single.values()), where)
    multi_kinds = {dimension(n).label_kind: n for n in (by, row_dim) if n is not None and dimension(n).multi}
    items: dict[int, dict[str, Any]] = {}
    for row in session.execute(stmt):
        stats = CellStats(n=1)
        if row.tagged is not None:
            stats.n_tagged = 1
            stats.n_positive = int(row.sentiment == "positive")
            stats.n_negative = int(row.sentiment == "negative")
            stats.sentiment_sum = float(row.sentiment_score)
            stats.sentiment_sumsq = float(row.sentiment_score) ** 2
            # as cells.item_p_negative: the calibrated p(negative), else the label as 0/1
            p_negative = float(row.p_negative) if row.p_negative is not None else float(stats.n_negative)
            stats.p_negative_sum, stats.p_negative_sumsq = p_negative, p_negative * p_negative
        if row.nps is not None:
            stats.nps_n, stats.nps_promoters, stats.nps_detractors = 1, int(row.nps >= 9), int(row.nps <= 6)
        if row.csat is not None:
            stats.csat_n, stats.csat_satisfied = 1, int(row.csat >= 4)
        if row.stars is not None:
            stats.rating_n, stats.rating_sum, stats.rating_sumsq = 1, float(row.stars), float(row.stars) ** 2
        values = {name: [str(getattr(row, f"v_{name}"))] for name in single}
        items[row.id] = {"week": week_floor(row.created_at), "respondent": str(row.respondent),
                         "stats": stats, "labels": [], "values": values}
    kinds = set(multi_kinds) | (set(MIX_KINDS) if mixes else set())
    if kinds and items:
        for item_id, kind, label in item_labels(session, list(items), kinds):
            item = items[item_id]
            if kind in multi_kinds:
                item["values"].setdefault(multi_kinds[kind], []).append(label)
            if mixes and kind in MIX_KINDS:
                key = f"{kind}:{label}"
                item["labels"].append(key)
                item["stats"].labels[key] += 1
    out = []
    for item in items.values():
        item["cols"] = item["values"].get(by, [])
        item["rows"] = item["values"].get(row_dim, []) if row_dim else [ALL]
        out.append(item)
    return out

