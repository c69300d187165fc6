"""Cell tables: statistics per (period, dimension value) for a slice, the core of every analytics read.

`cell_table()` is the one entry point. Customer tables come from the rollups when they are
current and the slice allows it (no dimension filter, whole-day bounds), else from one grouped
SQL query over the items (`raw_cells`, which also builds the rollups, so both paths agree).

Employee tables are always computed from the items (`feedback.analytics.employee_cells` counts
them column-wise), with the privacy rules of `feedback.privacy.groups` applied per ISO week (see
docs/privacy.md): per week, a one-way table (grouping values, against the week's total) or, with
a filter on another dimension, the two-way table (filter values x grouping values) is
suppressed; then longer periods add up only the weekly cells that were shown. A cell is `None`
in the result when it is suppressed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from feedback.analytics.cells import (
    DIMENSIONS,
    SUM_FIELDS,
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
    stats_columns,
    value_expression,
)
from feedback.analytics.employee_cells import (
    ALL,
    RECENT_READS,
    EmployeeItems,
    employee_cells,
    read_employee_items,
)
from feedback.analytics.metrics import MIX_KINDS
from feedback.analytics.rollups import (
    CROSS_DIMENSIONS,
    MIX_DIMENSIONS,
    ROLLUP,
    STAT_COLUMNS,
    cross_dimension,
    cross_value,
    rollup_stats,
    rollups_current,
    split_cross_value,
)
from feedback.analytics.served import item_labels, label_tables, model_labels_live
from feedback.models import FeedbackItem, TagLabel
from feedback.privacy.groups import (
    check_employee_query,
    employee_month,
    snap_to_weeks,
)
from feedback.repository import data_stamp

RANGE = "range"  # one period covering the whole slice
# Employee groupings offered side by side (the employee view's "group by"): a one-way table by
# one of them is suppressed with any other nested in it in mind (`linked_hidden`), so that
# journey stages and the themes within them cannot be combined to give a hidden group away.
LINKED_DIMENSIONS = ("journey_stage", "org_unit", "segment", "touchpoint")
# What a shared read (a page's) reads of every employee item whatever it is first asked for: the
# groupings the pages show, so that a page reads its weeks once (a topic's column read later
# would be a second read of every item).
SHARED_DIMENSIONS = (*LINKED_DIMENSIONS, "topic")


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


def raw_pair_cells(session: Session, where: Slice, first: str, second: str, interval: str
                   ) -> dict[tuple[date | None, str, str], CellStats]:
    """CellStats per (period start, value of `first`, value of `second`) over the items; at most
    one of the two multi-valued (what the cross rollups hold: rollups.CROSS_DIMENSIONS)."""
    labelled = [name for name in (first, second) if dimension(name).multi]
    if len(labelled) > 1:
        raise ValueError(f"{first!r} and {second!r} are both multi-valued")
    dialect = session.get_bind().dialect.name
    period = period_start(dialect, interval, FeedbackItem.created_at) if interval != RANGE else None
    out: dict[tuple[date | None, str, str], CellStats] = {}
    for labels, live in (label_tables(session) if labelled else [(TagLabel, None)]):
        one, _ = value_expression(first, labels)
        two, _ = value_expression(second, labels)
        group = [g for g in (period, one, two) if g is not None]
        stmt = base_select(*[g.label(f"g{i}") for i, g in enumerate(group)], *stats_columns())
        if labelled:
            stmt = join_labels(stmt, labelled[0], labels, live)
        stmt = apply_slice(stmt, where).group_by(*group)
        for row in session.execute(stmt):
            key = (as_date(row[0]) if period is not None else None, str(row[-len(SUM_FIELDS) - 2]),
                   str(row[-len(SUM_FIELDS) - 1]))
            stats = CellStats(*row[len(group):])  # type: ignore[arg-type]  # the SUM_FIELDS, in order
            if key in out:
                out[key].add(stats)
            else:
                out[key] = stats
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


def cross_cells(session: Session, where: Slice, by: str, other: str) -> dict[tuple[str, str], CellStats]:
    """`raw_cross_cells`, read from the cross rollups when they hold the pair and answer the slice."""
    pair = next((p for p in ((by, other), (other, by)) if p in CROSS_DIMENSIONS), None)
    reads = _rollup_reads(where, RANGE, by, False) if pair is not None and not where.filters else None
    if pair is None or reads is None or not rollups_current(session, where.audience):
        return raw_cross_cells(session, where, by, other)
    out: dict[tuple[str, str], CellStats | None] = {}
    for grain, first, after in reads:
        stmt = select(ROLLUP.c.value, *STAT_COLUMNS).where(
            ROLLUP.c.audience == where.audience, ROLLUP.c.grain == grain,
            ROLLUP.c.dimension == cross_dimension(*pair), ROLLUP.c.n > 0)
        if first is not None:
            stmt = stmt.where(ROLLUP.c.period_start >= first)
        if after is not None:
            stmt = stmt.where(ROLLUP.c.period_start < after)
        for row in session.execute(stmt):
            codes = split_cross_value(row[0])
            _add(out, codes if pair == (by, other) else (codes[1], codes[0]), rollup_stats(row, 1))
    return {key: stats for key, stats in out.items() if stats is not None}


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
        _from_rollups(session, table, where, by, interval, reads, mixes)
        return table
    table.cells = dict(raw_cells(session, where, by, interval, mixes=mixes))
    for (period, _), stats in raw_cells(session, where, "all", interval).items():
        table.totals[period] = stats
    return table


def _from_rollups(session: Session, table: CellTable, where: Slice, by: str, interval: str,
                  reads: list[tuple[str, date | None, date | None]], mixes: bool) -> None:
    """Fill `table` from the rollup rows `reads` names (see `_rollup_reads` for which slices)."""
    # Unfiltered: the rows of `by`, and the 'all' rows as totals. Filtered on one value of a
    # dimension: its rows of that value are the totals (without their mixes, as the filtered
    # items give them), and the cells are those same rows when grouping by the filtered dimension
    # itself (a touchpoint's own trend), else the cross rows of the pair with that value.
    wanted = where.filters[0] if where.filters else None
    cross, cross_side = None, 0
    if wanted is not None and wanted[0] != by:
        pair = (wanted[0], by) if (wanted[0], by) in CROSS_DIMENSIONS else (by, wanted[0])
        cross, cross_side = cross_dimension(*pair), pair.index(wanted[0])
    names = {by, "all"} if wanted is None else {wanted[0]} | ({cross} if cross else set())
    for grain, first, after in reads:
        columns = [ROLLUP.c.period_start, ROLLUP.c.dimension, ROLLUP.c.value,
                   ROLLUP.c.labels if mixes else literal(None), *STAT_COLUMNS]
        stmt = select(*columns).where(ROLLUP.c.audience == where.audience, ROLLUP.c.grain == grain,
                                      ROLLUP.c.dimension.in_(names), ROLLUP.c.n > 0)
        if wanted is not None and cross is None:
            stmt = stmt.where(ROLLUP.c.value == wanted[1])
        elif cross is not None and cross_side == 0:  # only the wanted value's cross rows (by prefix,
            prefix = cross_value(wanted[1], "")  # compared as is: no collation, no LIKE case folding)
            stmt = stmt.where(or_(and_(ROLLUP.c.dimension == cross,
                                       func.substr(ROLLUP.c.value, 1, len(prefix)) == prefix),
                                  and_(ROLLUP.c.dimension == wanted[0], ROLLUP.c.value == wanted[1])))
        if first is not None:
            stmt = stmt.where(ROLLUP.c.period_start >= first)
        if after is not None:
            stmt = stmt.where(ROLLUP.c.period_start < after)
        same = interval == grain
        for row in session.execute(stmt):
            day = as_date(row[0])
            period = None if interval == RANGE else (day if same else floor_period(day, interval))
            stats = rollup_stats(row, 4, row[3])
            if wanted is None:
                if row[1] == by:
                    _add(table.cells, (period, row[2]), stats)
                if row[1] == "all":
                    _add(table.totals, period, stats if row[1] != by else CellStats().add(stats))
            elif row[1] == cross:
                codes = split_cross_value(row[2])
                if codes[cross_side] == wanted[1]:
                    _add(table.cells, (period, codes[1 - cross_side]), stats)
            elif row[2] == wanted[1]:
                _add(table.totals, period, CellStats(**{f: getattr(stats, f) for f in SUM_FIELDS}))
                if cross is None:
                    _add(table.cells, (period, row[2]), stats)


def rollup_table(session: Session, where: Slice, by: str, interval: str) -> CellTable | None:
    """The customer table of `where` read from the rollups, or None when they cannot answer it
    (then nothing is read: the caller takes its own way to the items)."""
    reads = _rollup_reads(where, interval, by, False)
    if reads is None or not rollups_current(session, where.audience):
        return None
    table = CellTable(by=by, interval=interval, audience=where.audience, start=where.start, end=where.end,
                      source="rollups")
    _from_rollups(session, table, where, by, interval, reads, False)
    return table


def _add(cells: dict[Any, CellStats | None], key: Any, stats: CellStats) -> None:
    current = cells.get(key)
    cells[key] = stats if current is None else current.add(stats)


def _day(moment: datetime) -> date:
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


def _filter_answerable(where: Slice, by: str, mixes: bool) -> bool:
    """Whether the rollups hold the slice's one filter grouped by `by`: a filter on `by` itself
    (single-valued: a touchpoint's trend by touchpoint), or on the other dimension of a rolled-up
    pair (a touchpoint's topics), whose rows carry no mixes."""
    if len(where.filters) != 1:
        return False
    name, value = where.filters[0]
    if name == "source" and not value.isdigit():  # a source filter may name it; rows hold the id
        return False
    if name == by:
        return not dimension(by).multi
    return not mixes and ((name, by) in CROSS_DIMENSIONS or (by, name) in CROSS_DIMENSIONS)


def _rollup_reads(where: Slice, interval: str, by: str, mixes: bool
                  ) -> list[tuple[str, date | None, date | None]] | None:
    """Which rollup rows answer this slice exactly: [(grain, first period, end)], or None.

    Whole periods of the interval come from its own rows; partial periods at the edges of the
    range from day rows. None when the rollups cannot answer: dimension filters, bounds inside
    a day, or mixes for a dimension whose rows carry none.
    """
    if where.audience != "customer" or (mixes and by not in MIX_DIMENSIONS):
        return None
    if where.filters and not _filter_answerable(where, by, mixes):
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


def employee_table(session: Session, where: Slice, by: str, interval: str, *, min_group_size: int,
                   mixes: bool = False) -> CellTable:
    """Employee cells with minimum group sizes, complementary suppression and whole weeks."""
    weeks, row_dim, wanted_row, wanted_col = _employee_ask(session, where, by, interval)
    memo = session.info.get(READ_MEMO)
    key = ("table", where.audience, weeks.start, weeks.end, where.filters, by, interval, min_group_size, mixes)
    if memo is not None and key in memo:  # a page's widgets may ask twice (a trend and the drivers)
        return memo[key]
    table = _employee_tables(session, weeks, by, interval, row_dim, [wanted_row], wanted_col,
                             min_group_size=min_group_size, mixes=mixes)[wanted_row]
    if memo is not None:
        memo[key] = table
    return table


def _employee_ask(session: Session, where: Slice, by: str, interval: str
                  ) -> tuple[Slice, str | None, str, str | None]:
    """What an employee table of `where` by `by` reads, the query checked: the week-snapped slice
    without its filter, the row dimension (the filter's; None without one), the row kept (ALL
    without a row dimension) and the column kept (None: every one)."""
    check_employee_query(where.filters, interval=interval)
    start, end = snap_to_weeks(where.start, where.end)
    row_dim = where.filters[0][0] if where.filters else None
    wanted = where.filters[0][1] if where.filters else None
    if wanted is not None and row_dim == "source" and not wanted.isdigit():
        wanted = _source_code(session, wanted)
    wanted_row, wanted_col = (wanted or ALL), None
    if row_dim == by:  # filtering on the grouping dimension: the one-way table, one value kept
        row_dim, wanted_row, wanted_col = None, ALL, wanted
    return Slice(where.audience, start, end), row_dim, wanted_row, wanted_col


def employee_tables_by(session: Session, where: Slice, row_dim: str, values: list[str], by: str, interval: str, *,
                       min_group_size: int, mixes: bool = False) -> dict[str, CellTable]:
    """`employee_table(where + {row_dim: value}, by, ...)` for each of `values` (value codes), from one
    read of the items: the two-way table (row_dim x by) is suppressed as a whole, whichever row is
    asked for, so each table is the one the single query gives."""
    if where.filters or row_dim == by:
        raise ValueError("employee_tables_by takes an unfiltered slice and two different dimensions")
    check_employee_query(((row_dim, v) for v in values[:1]), interval=interval)
    start, end = snap_to_weeks(where.start, where.end)
    return _employee_tables(session, Slice(where.audience, start, end), by, interval, row_dim, list(values), None,
                            min_group_size=min_group_size, mixes=mixes)


def _employee_tables(session: Session, where: Slice, by: str, interval: str, row_dim: str | None,
                     wanted_rows: list[str], wanted_col: str | None, *, min_group_size: int,
                     mixes: bool) -> dict[str, CellTable]:
    """The employee tables of `wanted_rows` (ALL without a row dimension) over the week-snapped
    `where`, counted by `feedback.analytics.employee_cells` from one read of the range's items."""
    start, end = where.start, where.end
    linked = [d for d in LINKED_DIMENSIONS if d != by] if row_dim is None and by in LINKED_DIMENSIONS else []
    items = _employee_read(session, where, by, row_dim, mixes=mixes, linked=bool(linked))

    def bucket(week: date) -> date | None:
        if interval == RANGE:
            return None
        return employee_month(week) if interval == "month" else week

    counted = employee_cells(items, by, row_dim, wanted_rows, wanted_col, bucket=bucket,
                             min_group_size=min_group_size, mixes=mixes, linked=linked)
    return {row: CellTable(by=by, interval=interval, audience=where.audience, cells=result.cells,
                           totals=result.totals, source="items+privacy", start=start, end=end)
            for row, result in counted.items()}


def _source_code(session: Session, name: str) -> str:
    from feedback.models import Source

    found = session.scalar(select(Source.id).where(Source.name == name))
    return str(found) if found is not None else f"missing:{name}"


READ_MEMO = "voc.analytics.shared_reads"
_LABEL_KINDS = tuple(sorted({dim.label_kind for dim in DIMENSIONS.values() if dim.label_kind} | set(MIX_KINDS)))


def share_reads(session: Session) -> None:
    """Let this session's analytics share what they read of the employee items (a range's items
    and their labels), and reuse a read an earlier session made while nothing has been written
    since (`employee_cells.RECENT_READS`, checked against the data stamp). For a unit of work that
    only reads, such as a web page whose widgets ask about the same weeks; never for one that
    writes items or tags and reads them back, which a shared read would not see."""
    session.info.setdefault(READ_MEMO, {})


def _employee_read(session: Session, where: Slice, by: str, row_dim: str | None, *, mixes: bool,
                   linked: bool) -> EmployeeItems:
    """The employee items of the (week-snapped) range with what a table by `by` (and `row_dim`)
    reads: the codes of its single-valued dimensions (with the LINKED_DIMENSIONS' if `linked`)
    and the labels of its multi-valued ones and of the mixes."""
    wanted = tuple(sorted({n for n in (by, row_dim, *(LINKED_DIMENSIONS if linked else ()))
                           if n is not None and not dimension(n).multi}))
    kinds = {kind for n in (by, row_dim) if n is not None and (kind := dimension(n).label_kind) is not None}
    kinds |= set(MIX_KINDS) if mixes else set()
    memo = session.info.get(READ_MEMO)
    key = (where.audience, where.start, where.end)
    if memo is None:
        items = read_employee_items(session, where, wanted)
        items.labels = item_labels(session, items.ids.tolist(), kinds) if kinds and len(items) else []
        return items
    # shared: read once for the range (or kept from an earlier page while nothing was written
    # since, or taken from a shared read of a range that holds it), again only when a dimension
    # not yet read is asked for
    engine = session.get_bind()
    reads = memo.setdefault("employee items", {})  # range -> its items
    if key not in reads:
        kept = RECENT_READS.get(engine, key, _stamp(session, memo)[0])
        if kept is not None:
            reads[key] = kept
        else:
            _within_a_shared_read(reads, key, wanted)
    items = reads.get(key)
    if items is None or not set(wanted) <= set(items.codes):
        before = items
        stamp, taken_at = _stamp(session, memo)
        names = set(wanted) | set(before.codes if before else ()) | set(SHARED_DIMENSIONS)
        items = read_employee_items(session, where, tuple(sorted(names)))
        items.labels = before.labels if before is not None else None  # the same items' labels
        reads[key] = items
        RECENT_READS.put(engine, key, stamp, items, taken_at)
    if kinds and items.labels is None:
        items.labels = item_labels(session, items.ids.tolist(), _LABEL_KINDS) if len(items) else []
    return items


def _stamp(session: Session, memo: dict[Any, Any]) -> tuple[Any, float]:
    """The data stamp of this unit of work (`repository.data_stamp`), taken once, before its first
    read of the items: a read kept for later pages is never newer than the stamp it is kept under."""
    if "data stamp" not in memo:
        memo["data stamp"] = (data_stamp(session), time.monotonic())
    return memo["data stamp"]


def _within_a_shared_read(reads: dict[tuple[str, datetime | None, datetime | None], EmployeeItems],
                          key: tuple[str, datetime | None, datetime | None], wanted: tuple[str, ...]) -> None:
    """Answer the (week-snapped) range `key` from a shared read of a range that holds it (a page
    that reads 20 weeks, then the last week and the 8 before it): its items of those weeks, with
    their labels when it has them, stored in `reads` for the range as its own read would be."""
    audience, start, end = key
    for (read_audience, first, after), items in reads.items():
        if read_audience != audience or not set(wanted) <= set(items.codes):
            continue
        if (first is not None and (start is None or first > start)) or (
                after is not None and (end is None or after < end)):
            continue
        reads[key] = items.within(start.date() if start else None, end.date() if end else None)
        return
