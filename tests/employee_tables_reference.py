"""The employee tables as they were computed before the column-wise rewrite (item by item in
Python: feedback/analytics/tables.py at commit a847cfb), kept as the reference that
tests/test_employee_tables_identical.py and bench/employee_tables_identical.py hold the
current code to. Not used by the service. The code below is that commit's, unchanged except
for the names of its entry points (reference_employee_table, reference_employee_tables_by,
reference_share_reads) and of its shared-read memo, which is its own, and for what it shares
with the current code, which was the same on both sides and so is not what is compared: how a
query is checked and turned into the week-snapped slice, row and column it reads
(`tables._employee_ask`, with `_source_code`), the label kinds a shared read reads
(`tables._LABEL_KINDS`), and the query of the items' columns (`employee_cells.employee_items_select`).
`employee_item_reads` counts the current code's reads of the items, for the tests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from feedback.analytics import tables as tables_module
from feedback.analytics.cells import CellStats, Slice, as_date, dimension
from feedback.analytics.employee_cells import employee_items_select
from feedback.analytics.metrics import MIX_KINDS
from feedback.analytics.served import item_labels
from feedback.analytics.tables import _LABEL_KINDS, ALL, LINKED_DIMENSIONS, RANGE, CellTable, _employee_ask
from feedback.privacy.groups import (
    check_employee_query,
    employee_month,
    linked_hidden,
    snap_to_weeks,
    suppressed_cells,
    suppressed_groups,
)


@dataclass
class _Cell:
    """Sums and distinct respondents of one weekly cell, with respondents per mix label."""

    # The items' sums are added up when first read, in the order they came: most cells are only
    # counted (suppression needs their respondents) and never shown, so most never are.
    items: list[CellStats] = field(default_factory=list)
    respondents: set[str] = field(default_factory=set)
    label_respondents: dict[str, set[str]] | None = None  # made for the first mix label
    _sums: CellStats | None = None

    def add(self, item: CellStats, respondent: str, labels: list[str]) -> None:
        self.items.append(item)
        self._sums = None
        self.respondents.add(respondent)
        for label in labels:
            if self.label_respondents is None:
                self.label_respondents = defaultdict(set)
            self.label_respondents[label].add(respondent)

    @property
    def stats(self) -> CellStats:
        if self._sums is None:
            self._sums = CellStats()
            for item in self.items:
                self._sums.add(item)
        return self._sums


def reference_employee_table(session: Session, where: Slice, by: str, interval: str, *, min_group_size: int,
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


def reference_employee_tables_by(session: Session, where: Slice, row_dim: str, values: list[str], by: str,
                                 interval: str, *, min_group_size: int, mixes: bool = False) -> dict[str, CellTable]:
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
    """The employee tables of `wanted_rows` (ALL without a row dimension) over the week-snapped `where`."""
    start, end = where.start, where.end
    items = _employee_items(session, where, by, row_dim, mixes=mixes)
    linked = [d for d in LINKED_DIMENSIONS if d != by] if row_dim is None and by in LINKED_DIMENSIONS else []

    # Weekly cells: (week, row value, column value); row is ALL without a filter dimension.
    weekly: dict[date, dict[tuple[str, str], _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    row_margin: dict[date, dict[str, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    col_margin: dict[date, dict[str, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    grand: dict[date, _Cell] = defaultdict(_Cell)
    # Per week and linked dimension: (column value, its value) pairs and its groups' people.
    link_pairs: dict[date, dict[str, set[tuple[str, str]]]] = defaultdict(lambda: defaultdict(set))
    link_sizes: dict[date, dict[str, dict[str, set[str]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(set)))
    for week, respondent, stats, labels, rows, cols, codes in items:
        grand[week].add(stats, respondent, labels)
        if linked:  # (the week's dictionaries looked up once: this runs for every item)
            week_pairs, week_sizes = link_pairs[week], link_sizes[week]
            for other in linked:
                value = codes[other]
                pairs = week_pairs[other]
                for col in cols:
                    pairs.add((col, value))
                week_sizes[other][value].add(respondent)
        for row in rows:
            row_margin[week][row].add(stats, respondent, labels)
        for col in cols:
            col_margin[week][col].add(stats, respondent, labels)
            for row in rows:
                weekly[week][(row, col)].add(stats, respondent, labels)

    wanted_set = set(wanted_rows)
    kept_cells: dict[str, dict[tuple[date, str], _Cell]] = {row: {} for row in wanted_rows}
    hidden_cells: dict[str, set[tuple[date, str]]] = {row: set() for row in wanted_rows}
    kept_totals: dict[str, dict[date, _Cell]] = {row: {} for row in wanted_rows}
    for week, cells in weekly.items():
        total = grand[week].respondents
        slices: dict[str, tuple[_Cell, bool]] = {}
        if row_dim is None:
            sizes = {col: cell.respondents for (_, col), cell in cells.items()}
            # A grouping nested in this one (themes within journey stages) is a table of the
            # same people too: hide the groups holding one of its hidden groups.
            also: set[str] = set()
            for other in linked:
                also |= linked_hidden(link_pairs[week][other], link_sizes[week][other],
                                      min_size=min_group_size, total=total)
            hidden_cols = suppressed_groups(sizes, min_size=min_group_size, total=total, also=also)
            hidden = {(ALL, c) for c in hidden_cols}
            slice_cell = grand[week]
            slice_hidden = len(total) < min_group_size
            if wanted_col is not None:
                slice_cell = col_margin[week].get(wanted_col, _Cell())
                slice_hidden = wanted_col in hidden_cols or not slice_cell.respondents
            slices[ALL] = (slice_cell, slice_hidden)
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
            row_hidden = suppressed_groups({r: c.respondents for r, c in row_margin[week].items()},
                                           min_size=min_group_size, total=total)
            for wanted_row in wanted_rows:
                slice_cell = row_margin[week].get(wanted_row, _Cell())
                slices[wanted_row] = (slice_cell, wanted_row in row_hidden or not slice_cell.respondents)
        for (row, col), cell in cells.items():
            if row not in wanted_set or (wanted_col is not None and col != wanted_col):
                continue
            if (row, col) in hidden:
                hidden_cells[row].add((week, col))
            else:
                kept_cells[row][(week, col)] = cell
        for row, (slice_cell, slice_hidden) in slices.items():
            if not slice_hidden and slice_cell.respondents:
                kept_totals[row][week] = slice_cell

    def bucket(week: date) -> date | None:
        if interval == RANGE:
            return None
        return employee_month(week) if interval == "month" else week

    out: dict[str, CellTable] = {}
    for wanted_row in wanted_rows:
        table = CellTable(by=by, interval=interval, audience=where.audience, source="items+privacy",
                          start=start, end=end)
        # Longer periods add up only the weekly cells that were shown (dropped, not hidden).
        summed: dict[tuple[date | None, str], list[_Cell]] = defaultdict(list)
        for (week, col), cell in kept_cells[wanted_row].items():
            summed[(bucket(week), col)].append(cell)
        for key, parts in summed.items():
            table.cells[key] = _merge(parts, min_group_size, mixes)
        for week, col in hidden_cells[wanted_row]:
            table.cells.setdefault((bucket(week), col), None)
        totals: dict[date | None, list[_Cell]] = defaultdict(list)
        for week, cell in kept_totals[wanted_row].items():
            totals[bucket(week)].append(cell)
        for period, parts in totals.items():
            table.totals[period] = _merge(parts, min_group_size, False)
        for week in weekly:
            table.totals.setdefault(bucket(week), None)
        out[wanted_row] = table
    return out


def _merge(parts: list[_Cell], min_group_size: int, mixes: bool) -> CellStats:
    """Sum weekly cells; a mix label counts only in weeks where it has >= min_group_size people."""
    stats = CellStats()
    for part in parts:
        stats.add_sums(part.stats)
        if mixes and part.label_respondents:
            for label, people in part.label_respondents.items():
                if len(people) >= min_group_size:
                    stats.labels[label] += part.stats.labels[label]
    return stats


READ_MEMO = "reference.shared_reads"  # its own: never the memo of the code under test


def reference_share_reads(session: Session) -> None:
    """Let this session's analytics share what they read of the employee items (a range's items
    and their labels). For a unit of work that only reads, such
    as a web page whose widgets ask about the same weeks; never for one that writes items or
    tags and reads them back, which a shared read would not see."""
    session.info.setdefault(READ_MEMO, {})


def _employee_rows(session: Session, where: Slice, names: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """(item id, week, respondent, CellStats, {dimension: code}) of every employee item of the
    range, with the codes of the single-valued dimensions `names`."""
    stmt = employee_items_select(session, where, names)
    rows: list[tuple[Any, ...]] = []
    weeks: dict[Any, date] = {}
    # Tuples and one CellStats call per item (not attribute by attribute): this loop runs for
    # every employee item of the range, and was most of an employee page's time.
    for item_id, week_start, respondent, tagged, sentiment, score, p_negative, nps, csat, stars, *codes \
            in session.execute(stmt):
        if tagged is not None:
            n_negative = int(sentiment == "negative")
            # as cells.item_p_negative: the calibrated p(negative), else the label as 0/1
            p_neg = float(p_negative) if p_negative is not None else float(n_negative)
            tag_sums = (1, int(sentiment == "positive"), n_negative, float(score), float(score) ** 2)
        else:
            p_neg, tag_sums = 0.0, (0, 0, 0, 0.0, 0.0)
        stats = CellStats(1, *tag_sums,
                          *((1, int(nps >= 9), int(nps <= 6)) if nps is not None else (0, 0, 0)),
                          *((1, int(csat >= 4)) if csat is not None else (0, 0)),
                          *((1, float(stars), float(stars) ** 2) if stars is not None else (0, 0.0, 0.0)),
                          p_neg, p_neg * p_neg)
        week = weeks.get(week_start)
        if week is None:
            week = weeks[week_start] = as_date(week_start)
        rows.append((item_id, week, str(respondent), stats, dict(zip(names, map(str, codes), strict=True))))
    return rows


def _within_a_shared_read(memo: dict[Any, Any], key: tuple[str, datetime | None, datetime | None],
                          wanted: tuple[str, ...]) -> None:
    """Answer the (week-snapped) range `key` from a shared read of a range that holds it (a page
    that reads 20 weeks, then the last week and the 8 before it): its rows of those weeks, and
    their labels when it has them, stored for the range as its own read would be."""
    audience, start, end = key
    for entry in list(memo):
        if len(entry) != 2 or entry[0] != "rows" or entry[1][0] != audience:
            continue
        read, rows = memo[entry]
        if not set(wanted) <= set(read):
            continue
        first, after = entry[1][1], entry[1][2]
        if (first is not None and (start is None or first > start)) or (
                after is not None and (end is None or after < end)):
            continue
        low, high = (start.date() if start else date.min), (end.date() if end else date.max)
        memo[("rows", key)] = (read, [r for r in rows if low <= r[1] < high])
        labels = memo.get(("labels", entry[1]))
        if labels is not None:
            ids = {r[0] for r in memo[("rows", key)][1]}
            memo[("labels", key)] = [row for row in labels if row[0] in ids]
        return


def _employee_items(session: Session, where: Slice, by: str, row_dim: str | None, *,
                    mixes: bool) -> list[tuple[date, str, CellStats, list[str], list[str], list[str], dict[str, str]]]:
    """Every employee item of the (week-snapped) range: week, respondent, sums, mix labels, its
    values of `row_dim` ([ALL] without one) and of `by`, and its codes of the single-valued
    dimensions read (`by`'s, and the LINKED_DIMENSIONS' when `by` is one of them)."""
    linked = LINKED_DIMENSIONS if row_dim is None and by in LINKED_DIMENSIONS else ()
    wanted = tuple(sorted({n for n in (by, row_dim, *linked) if n is not None and not dimension(n).multi}))
    multi_kinds = {dimension(n).label_kind: n for n in (by, row_dim) if n is not None and dimension(n).multi}
    kinds = set(multi_kinds) | (set(MIX_KINDS) if mixes else set())
    memo = session.info.get(READ_MEMO)
    key = (where.audience, where.start, where.end)
    if memo is None:
        rows = _employee_rows(session, where, wanted)
        labels = item_labels(session, [r[0] for r in rows], kinds) if kinds and rows else []
    else:  # shared: read once for the range, again only when a dimension not yet read is asked for
        if ("rows", key) not in memo:
            _within_a_shared_read(memo, key, wanted)
        read, rows = memo.get(("rows", key), ((), []))
        if ("rows", key) not in memo or not set(wanted) <= set(read):
            read = tuple(sorted(set(read) | set(wanted)))
            rows = _employee_rows(session, where, read)
            memo[("rows", key)] = (read, rows)
        if kinds and ("labels", key) not in memo:
            memo[("labels", key)] = item_labels(session, [r[0] for r in rows], _LABEL_KINDS) if rows else []
        labels = [row for row in memo.get(("labels", key), []) if row[1] in kinds] if kinds else []
    # Per item, as _employee_tables reads them: (week, respondent, sums, mix labels, rows, columns).
    mix_labels: dict[int, list[str]] = defaultdict(list)
    multi_values: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for item_id, kind, label in labels:
        if kind in multi_kinds:
            multi_values[item_id][multi_kinds[kind]].append(label)
        if mixes and kind in MIX_KINDS:
            mix_labels[item_id].append(f"{kind}:{label}")
    by_single = not dimension(by).multi
    row_single = row_dim is not None and not dimension(row_dim).multi
    out: list[tuple[date, str, CellStats, list[str], list[str], list[str], dict[str, str]]] = []
    for item_id, week, respondent, stats, codes in rows:
        mix: list[str] = []
        if mixes:
            if memo is not None:  # the shared sums stay as read: the mix counts go on a copy
                stats = CellStats().add(stats)
            mix = mix_labels.get(item_id, mix)
            for key_ in mix:
                stats.labels[key_] += 1
        cols = [codes[by]] if by_single else multi_values[item_id][by] if item_id in multi_values else []
        if row_dim is None:
            item_rows = [ALL]
        elif row_single:
            item_rows = [codes[row_dim]]
        else:
            item_rows = multi_values[item_id][row_dim] if item_id in multi_values else []
        out.append((week, respondent, stats, mix, item_rows, cols, codes))
    return out



def employee_item_reads(monkeypatch: pytest.MonkeyPatch) -> list[Slice]:
    """The slices the current code reads employee items of (`tables.read_employee_items`), one
    entry per read, from now on in this test."""
    reads: list[Slice] = []
    real = tables_module.read_employee_items

    def counting(session, where, names):
        reads.append(where)
        return real(session, where, names)

    monkeypatch.setattr(tables_module, "read_employee_items", counting)
    return reads
