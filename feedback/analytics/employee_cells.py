"""Employee weekly cells, column by column: one read of a range's items, then numpy per table.

`feedback.analytics.tables.employee_table` is the entry point; this module does its counting.
An employee table needs, per ISO week, the distinct respondents of every cell (the privacy rules
of `feedback.privacy.groups` decide on them) and the sums of the cells that are shown. Done item
by item in Python that was most of an employee page's time (20,000 items for 52 weeks), so here
the items of a range are read once into arrays (`EmployeeItems`: each item's week, respondent,
sums and dimension codes), and a table groups them with numpy: its cells, the respondents of
each (as sets, what the rules take), the sums of the shown ones.

Nothing about what is shown changes: the same rules are called with the same groups of the same
people (respondents are numbered instead of named: the same sets), hidden weekly cells never
enter a sum, and every sum adds the same numbers in the same order as before (a cell's items in
the order they were read, a period's weeks in the order they came), so the floats are the same
to the last bit. tests/test_employee_tables_identical.py compares each table with the item by
item computation it replaced; bench/employee_tables_identical.py does so at 1,000,000 items.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from feedback.analytics.cells import (
    SUM_FIELDS,
    CellStats,
    Slice,
    apply_slice,
    as_date,
    base_select,
    dimension,
    period_start,
    respondent_key,
)
from feedback.analytics.metrics import MIX_KINDS
from feedback.analytics.served import ServedTag as Tag  # the model's tags, corrections in their place
from feedback.models import FeedbackItem
from feedback.privacy.groups import linked_hidden, suppressed_cells, suppressed_groups

ALL = "*"  # the one row of a table without a row dimension
MIX = "mix"  # EmployeeItems.label_entries: the need/emotion mix labels
_INTS = tuple(isinstance(getattr(CellStats(), name), int) for name in SUM_FIELDS)
assert _INTS == (True,) * 4 + (False,) * 2 + (True,) * 6 + (False,) * 4, "CellStats' sums changed: see _stats"
_WIDTH = len(SUM_FIELDS)


@dataclass
class EmployeeItems:
    """The employee items of a range, as arrays in the order they were read.

    `week`: the Monday's ordinal (date.toordinal), `respondent`: a number per distinct respondent,
    `sums`: each item's CellStats sums (SUM_FIELDS order), `codes`: per single-valued dimension
    read, each item's value as an index into its list of values. `labels`: the served
    (item id, kind, label) rows of these items (`served.item_labels`, in the order read), once
    a table needs them.
    """

    ids: np.ndarray
    week: np.ndarray
    respondent: np.ndarray
    people: int  # how many distinct respondents (respondent numbers are below it)
    sums: np.ndarray
    codes: dict[str, tuple[np.ndarray, list[str]]]
    labels: list[tuple[int, str, str]] | None = None
    _by_kind: dict[str, tuple[np.ndarray, np.ndarray, list[str]]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def within(self, first: date | None, after: date | None) -> EmployeeItems:
        """The items of the weeks [first, after) (dates; None: unbounded), in the same order."""
        keep = np.ones(len(self.ids), dtype=bool)
        if first is not None:
            keep &= self.week >= first.toordinal()
        if after is not None:
            keep &= self.week < after.toordinal()
        part = EmployeeItems(self.ids[keep], self.week[keep], self.respondent[keep], self.people, self.sums[keep],
                             {name: (codes[keep], values) for name, (codes, values) in self.codes.items()})
        if self.labels is not None:
            wanted = set(part.ids.tolist())
            part.labels = [row for row in self.labels if row[0] in wanted]
        return part

    def label_entries(self, kind: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(item position, label index, labels) of the `kind` rows (MIX: the need/emotion mix
        labels, as 'kind:label'), by item, each item's in the order read."""
        if self._by_kind is None:
            assert self.labels is not None, "the labels are read before a table asks for them"
            position = dict(zip(self.ids.tolist(), range(len(self.ids)), strict=True))
            found: dict[str, tuple[list[int], list[int], dict[str, int]]] = {}
            for item_id, row_kind, label in self.labels:
                at = position.get(item_id)
                if at is None:
                    continue
                for key, name in ((row_kind, label), (MIX, f"{row_kind}:{label}")) if row_kind in MIX_KINDS \
                        else ((row_kind, label),):
                    items, labels, names = found.setdefault(key, ([], [], {}))
                    items.append(at)
                    labels.append(names.setdefault(name, len(names)))
            by_kind = {}
            for key, (items, labels, names) in found.items():
                item_array = np.array(items, dtype=np.int64)
                order = np.argsort(item_array, kind="stable")
                by_kind[key] = (item_array[order], np.array(labels, dtype=np.int64)[order], list(names))
            self._by_kind = by_kind  # whole, at once: a kept read may be used by two requests
        empty = np.zeros(0, dtype=np.int64)
        return self._by_kind.get(kind, (empty, empty, []))


def employee_items_select(session: Session, where: Slice, names: Sequence[str]) -> Any:
    """The query of every item of the (week-snapped, unfiltered) slice: (item id, week, respondent,
    tagged, sentiment, score, p_negative, nps, csat, stars, then the code of each of the
    single-valued dimensions `names`)."""
    single = [dimension(name).value().label(f"v_{name}") for name in names]  # type: ignore[misc]
    # The week's Monday from SQL (what week_floor gives: the UTC week), not each moment parsed
    week_of = period_start(session.get_bind().dialect.name, "week", FeedbackItem.created_at)
    columns: list[Any] = [
        FeedbackItem.id, week_of.label("week"), respondent_key().label("respondent"),
        Tag.item_id.label("tagged"), Tag.sentiment, Tag.sentiment_score, Tag.p_negative,
        FeedbackItem.nps, FeedbackItem.csat, FeedbackItem.stars,
    ]
    # By id: the sums are added in item order, and a plan the database changes between two reads
    # (statistics refreshed after a write) must not change their last bits
    return apply_slice(base_select(*columns, *single), where).order_by(FeedbackItem.id)


def read_employee_items(session: Session, where: Slice, names: Sequence[str]) -> EmployeeItems:
    """Every item of the (week-snapped, unfiltered) slice, with the codes of the single-valued
    dimensions `names`, as arrays, in item id order."""
    stmt = employee_items_select(session, where, names)
    if session.autoflush:
        session.flush()  # as session.execute would: pending writes of this session are read too
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # An index scan of a range's items: PostgreSQL's estimate puts it over jit_above_cost,
        # and compiling it took 40 of its 120 ms at 20,000 items. Off for this statement only.
        was = connection.scalar(text("SELECT current_setting('jit')"))
        connection.execute(text("SELECT set_config('jit', 'off', true)"))
        try:
            rows = connection.execute(stmt).all()
        finally:
            connection.execute(text("SELECT set_config('jit', :was, true)"), {"was": was})
    else:
        rows = connection.execute(stmt).all()  # plain rows: no ORM loading per row
    n = len(rows)
    read = list(zip(*rows, strict=True)) if rows else [()] * (10 + len(names))
    ids, weeks, respondents, tagged, sentiment, score, p_negative, nps, csat, stars = read[:10]
    # Each item's sums as the item by item computation made them: the same values (float() of
    # each), the same arithmetic (score ** 2 is Python's pow, not a product, so it stays Python's).
    sums = np.zeros((n, _WIDTH), dtype=np.float64)
    sums[:, 0] = 1
    is_tagged = _given(tagged)
    label = np.array(sentiment, dtype=object)
    negative = is_tagged & np.equal(label, "negative")
    sums[:, 1], sums[:, 2], sums[:, 3] = is_tagged, is_tagged & np.equal(label, "positive"), negative
    scores = [float(v) if t else 0.0 for v, t in zip(score, is_tagged.tolist(), strict=True)]
    sums[:, 4], sums[:, 5] = scores, [v ** 2 for v in scores]
    has, value = _given(nps), _numbers(nps)
    sums[:, 6], sums[:, 7], sums[:, 8] = has, has & (value >= 9), has & (value <= 6)
    has, value = _given(csat), _numbers(csat)
    sums[:, 9], sums[:, 10] = has, has & (value >= 4)
    rating = [float(v) if v is not None else 0.0 for v in stars]
    sums[:, 11], sums[:, 12], sums[:, 13] = _given(stars), rating, [v ** 2 for v in rating]
    # as cells.item_p_negative: the calibrated p(negative), else the label as 0/1
    p_neg = np.where(is_tagged, np.where(_given(p_negative), _numbers(p_negative), negative), 0.0)
    sums[:, 14], sums[:, 15] = p_neg, p_neg * p_neg
    week_ordinal = {value: as_date(value).toordinal() for value in set(weeks)}
    week = np.array(list(map(week_ordinal.__getitem__, weeks)), dtype=np.int64)
    who, people = _factorized(respondents)
    return EmployeeItems(ids=np.array(ids, dtype=np.int64), week=week, respondent=who, people=len(people), sums=sums,
                         codes={name: _factorized(column) for name, column in zip(names, read[10:], strict=True)})


def _given(column: Sequence[Any]) -> np.ndarray:
    """Whether each value is not None."""
    return np.array([value is not None for value in column], dtype=bool)


def _numbers(column: Sequence[Any]) -> np.ndarray:
    """Each value as a float (float() of it), 0.0 for None."""
    return np.array([float(value) if value is not None else 0.0 for value in column], dtype=np.float64)


def _factorized(column: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """Each value as an index into the distinct values (as text), numbered as they first appear."""
    text = list(map(str, column))
    values = list(dict.fromkeys(text))
    index = {value: i for i, value in enumerate(values)}
    return np.array(list(map(index.__getitem__, text)), dtype=np.int64), values


# ---------------------------------------------------------------------------------------------
# Reads kept between requests


class RecentReads:
    """The latest reads of employee items, per database and range, for the next page to reuse.

    A read is reused only while the data stamp it was taken under holds (`repository.data_stamp`:
    no item, edit, tag, correction, topic, rollup, source or digest written since, what the API's
    cached answers check) and for `ttl_s` at most (as long as the API reuses an answer). Only the
    items are kept: every table, and every privacy decision, is computed again from them on every
    request. At most `max_items` items are held in all (a larger read is not kept), the least
    recently used going first, so the memory stays bounded whatever the data's size.
    """

    def __init__(self, *, max_items: int = 250_000, ttl_s: float = 30.0) -> None:
        self.max_items, self.ttl_s = max_items, ttl_s
        self._lock = threading.Lock()
        # (id of the engine, range) -> (the engine, weakly: an id can be reused), stamp, when, items
        self._reads: OrderedDict[Any, tuple[weakref.ref[Any], Any, float, EmployeeItems]] = OrderedDict()
        self._held = 0

    def get(self, engine: Any, key: Any, stamp: Any) -> EmployeeItems | None:
        """The items read for `key` on `engine` under `stamp`, if kept and not older than ttl_s."""
        with self._lock:
            found = self._reads.get((id(engine), key))
            if found is None or found[0]() is not engine or found[1] != stamp or \
                    time.monotonic() - found[2] > self.ttl_s:
                return None
            self._reads.move_to_end((id(engine), key))
            return found[3]

    def put(self, engine: Any, key: Any, stamp: Any, items: EmployeeItems, taken_at: float) -> None:
        """Keep `items`, read under `stamp` (taken before the read began, at `taken_at`)."""
        with self._lock:
            old = self._reads.pop((id(engine), key), None)
            self._held -= len(old[3]) if old is not None else 0
            if len(items) > self.max_items:
                return
            self._reads[(id(engine), key)] = (weakref.ref(engine), stamp, taken_at, items)
            self._held += len(items)
            while self._held > self.max_items:
                self._held -= len(self._reads.popitem(last=False)[1][3])

    def clear(self) -> None:
        with self._lock:
            self._reads.clear()
            self._held = 0


RECENT_READS = RecentReads()


# ---------------------------------------------------------------------------------------------
# Grouping


def _numbered(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each key's group, groups numbered in the order they first appear; and the position of each
    group's first key (as many as there are groups)."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)], np.sort(first)


def _people(groups: np.ndarray, respondents: np.ndarray, count: int, people: int) -> list[set[int]]:
    """The distinct respondents of each group 0..count-1."""
    pairs = np.unique(groups * max(people, 1) + respondents)
    owner = pairs // max(people, 1)
    bounds = np.searchsorted(owner, np.arange(count + 1)).tolist()
    who = (pairs % max(people, 1)).tolist()
    return [set(who[bounds[g]:bounds[g + 1]]) for g in range(count)]


def _sums(groups: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
    """Per group, the sums of its rows of `weights`, added in the order of the rows (from zero, as
    CellStats.add does), column by column."""
    out = np.zeros((count, _WIDTH), dtype=np.float64)
    if count and len(groups):
        for column in range(_WIDTH):
            out[:, column] = np.bincount(groups, weights=weights[:, column], minlength=count)
    return out


def _stats(sums: np.ndarray) -> list[CellStats]:
    """A CellStats per row of sums: the counts as ints, the rest as floats (as CellStats adds them)."""
    counts = sums[:, [i for i, is_int in enumerate(_INTS) if is_int]].astype(np.int64).tolist()
    floats = sums[:, [i for i, is_int in enumerate(_INTS) if not is_int]].tolist()
    return [CellStats(*c[:4], *f[:2], *c[4:], *f[2:]) for c, f in zip(counts, floats, strict=True)]


def _product(first: np.ndarray, second: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices into `first` and `second` (entries sorted by item) of every pair of entries of the
    same item: by item, then `first`'s order, then `second`'s, as two nested loops give them."""
    per_item = np.bincount(second, minlength=n)
    starts = np.concatenate(([0], np.cumsum(per_item)[:-1]))
    repeats = per_item[first]
    left = np.repeat(np.arange(len(first)), repeats)
    offsets = np.arange(int(repeats.sum())) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    return left, np.repeat(starts[first], repeats) + offsets


@dataclass
class _Entries:
    """The values of one dimension per item: (item position, value index) in item order, and the values."""

    item: np.ndarray
    value: np.ndarray
    values: list[str]
    one_each: bool  # exactly one entry per item, entry i is item i


def _entries(items: EmployeeItems, name: str | None) -> _Entries:
    n = len(items)
    if name is None:
        return _Entries(np.arange(n), np.zeros(n, dtype=np.int64), [ALL], True)
    if not dimension(name).multi:
        codes, values = items.codes[name]
        return _Entries(np.arange(n), codes, values, True)
    kind = dimension(name).label_kind
    assert kind is not None
    item, value, values = items.label_entries(kind)
    return _Entries(item, value, values, False)


# ---------------------------------------------------------------------------------------------
# Tables


@dataclass
class EmployeeCells:
    """One table's result: cells and totals by (period, value) / period; None where hidden."""

    cells: dict[tuple[date | None, str], CellStats | None]
    totals: dict[date | None, CellStats | None]


def employee_cells(items: EmployeeItems, by: str, row_dim: str | None, wanted_rows: list[str],
                   wanted_col: str | None, *, bucket: Callable[[date], date | None], min_group_size: int,
                   mixes: bool, linked: Sequence[str]) -> dict[str, EmployeeCells]:
    """The cells of `wanted_rows` (ALL without a row dimension) by `by`, in periods of `bucket`.

    Per week (docs/privacy.md): a one-way table (rows ALL) is suppressed against the week's total
    with the `linked` groupings nested in it in mind; a two-way table (row_dim x by) as a whole.
    `wanted_col` keeps one column of a one-way table, its total the column's margin. A period adds
    up only the weekly cells that were shown; its total the weeks whose slice was shown.
    """
    n = len(items)
    rows, cols = _entries(items, row_dim), _entries(items, by)
    if rows.one_each and cols.one_each:
        pair_row, pair_col = np.arange(n), np.arange(n)
    else:
        pair_col, pair_row = _product(cols.item, rows.item, n)
    pair_item = cols.item[pair_col]
    week, who = items.week, items.respondent
    # Weekly cells (week, row value, column value), numbered as they first appear in the items.
    width_r, width_c = len(rows.values), len(cols.values)
    pair_cell, first_pair = _numbered((week[pair_item] * width_r + rows.value[pair_row]) * width_c
                                      + cols.value[pair_col])
    n_cells = len(first_pair)
    cell_week = week[pair_item[first_pair]].tolist()
    cell_row = rows.value[pair_row[first_pair]].tolist()
    cell_col = cols.value[pair_col[first_pair]].tolist()
    cell_people = _people(pair_cell, who[pair_item], n_cells, items.people)
    week_cells: dict[int, list[int]] = {}
    for cell, day in enumerate(cell_week):
        week_cells.setdefault(day, []).append(cell)
    # The week's respondents, and the margins' people and sums (the slices' totals)
    week_of_item, first_item = _numbered(week)
    n_weeks, week_day = len(first_item), week[first_item]
    grand_people = dict(zip(week_day.tolist(), _people(week_of_item, who, n_weeks, items.people), strict=True))

    def margin(entries: _Entries) -> tuple[dict[int, dict[str, int]], list[set[int]], np.ndarray]:
        """Per week {value: group}, each group's people, each entry's group."""
        group, first = _numbered(week[entries.item] * len(entries.values) + entries.value)
        index: dict[int, dict[str, int]] = {}
        for g, (day, value) in enumerate(zip(week[entries.item[first]].tolist(),
                                             entries.value[first].tolist(), strict=True)):
            index.setdefault(day, {})[entries.values[value]] = g
        return index, _people(group, who[entries.item], len(first), items.people), group

    kept: dict[str, list[int]] = {row: [] for row in wanted_rows}  # shown weekly cells, in order
    hidden: dict[str, list[int]] = {row: [] for row in wanted_rows}
    kept_totals: dict[str, list[tuple[int, Any]]] = {row: [] for row in wanted_rows}  # (week, sums row)
    row_index = {value: i for i, value in enumerate(rows.values)}
    wanted_codes = {row_index[r] for r in wanted_rows if r in row_index}
    col_code = cols.values.index(wanted_col) if wanted_col in cols.values else -1  # -1: a value none holds
    weeks_in_order = list(week_cells)
    if row_dim is None:
        links = {other: _links(items, other, cols, week) for other in linked}
        if wanted_col is None:
            grand_sums = _sums(week_of_item, items.sums, n_weeks)
            grand_row = dict(zip(week_day.tolist(), range(n_weeks), strict=True))
        else:
            col_index, col_people, col_group = margin(cols)
            col_sums = _sums(col_group, items.sums[cols.item], len(col_people))
        for day in weeks_in_order:
            cells = week_cells[day]
            total = grand_people[day]
            sizes = {cols.values[cell_col[c]]: cell_people[c] for c in cells}
            # A grouping nested in this one (themes within journey stages) is a table of the
            # same people too: hide the groups holding one of its hidden groups.
            also: set[str] = set()
            for other in linked:
                pairs, people = links[other]
                also |= linked_hidden(pairs.get(day, []), people.get(day, {}), min_size=min_group_size,
                                      total=total)
            hidden_cols = suppressed_groups(sizes, min_size=min_group_size, total=total, also=also)
            if wanted_col is None:
                if len(total) >= min_group_size:
                    kept_totals[ALL].append((day, grand_sums[grand_row[day]]))
            else:
                g = col_index.get(day, {}).get(wanted_col)
                if g is not None and wanted_col not in hidden_cols and col_people[g]:
                    kept_totals[ALL].append((day, col_sums[g]))
            for c in cells:
                if wanted_col is not None and cell_col[c] != col_code:
                    continue
                (hidden if cols.values[cell_col[c]] in hidden_cols else kept)[ALL].append(c)
    else:
        flip = row_dim > by
        row_idx, row_people, row_group = margin(rows)
        row_sums = _sums(row_group, items.sums[rows.item], len(row_people))
        col_idx, col_people, _ = margin(cols)
        for day in weeks_in_order:
            cells = week_cells[day]
            total = grand_people[day]
            # One orientation per pair of dimensions, so that 'org_unit=x by touchpoint' and
            # 'touchpoint=y by org_unit' read the same suppression pattern.
            rows_sizes = {r: row_people[g] for r, g in row_idx.get(day, {}).items()}
            cols_sizes = {c: col_people[g] for c, g in col_idx.get(day, {}).items()}
            keys = {c: (rows.values[cell_row[c]], cols.values[cell_col[c]]) for c in cells}
            hidden_keys = suppressed_cells(
                {((k[1], k[0]) if flip else k): cell_people[c] for c, k in keys.items()},
                min_size=min_group_size, row_totals=cols_sizes if flip else rows_sizes,
                col_totals=rows_sizes if flip else cols_sizes, grand_total=total)
            if flip:
                hidden_keys = {(k[1], k[0]) for k in hidden_keys}
            row_hidden = suppressed_groups(rows_sizes, min_size=min_group_size, total=total)
            for wanted_row in wanted_rows:
                g = row_idx.get(day, {}).get(wanted_row)
                if g is not None and wanted_row not in row_hidden and row_people[g]:
                    kept_totals[wanted_row].append((day, row_sums[g]))
            for c in cells:
                if cell_row[c] in wanted_codes:
                    (hidden if keys[c] in hidden_keys else kept)[rows.values[cell_row[c]]].append(c)

    shown = sorted({c for row in wanted_rows for c in kept[row]})
    cell_sums = np.zeros((n_cells, _WIDTH), dtype=np.float64)
    mix_counts: dict[int, list[tuple[str, int]]] = {}
    if shown:
        wanted_pairs = np.isin(pair_cell, np.array(shown, dtype=np.int64))
        shown_cell, shown_item = pair_cell[wanted_pairs], pair_item[wanted_pairs]  # by item, as the pairs are
        cell_sums = _sums(shown_cell, items.sums[shown_item], n_cells)
        if mixes:
            mix_counts = _mix_counts(items, shown_cell, shown_item, min_group_size)
    bucket_of = {day: bucket(date.fromordinal(day)) for day in weeks_in_order}

    out: dict[str, EmployeeCells] = {}
    for wanted_row in wanted_rows:
        table = EmployeeCells({}, {})
        # Longer periods add up only the weekly cells that were shown (dropped, not hidden).
        groups: dict[tuple[date | None, str], int] = {}
        parts = [groups.setdefault((bucket_of[cell_week[c]], cols.values[cell_col[c]]), len(groups))
                 for c in kept[wanted_row]]
        if parts:
            made = _stats(_sums(np.array(parts, dtype=np.int64), cell_sums[kept[wanted_row]], len(groups)))
            for key, g in groups.items():
                table.cells[key] = made[g]
            for c, g in zip(kept[wanted_row], parts, strict=True):  # a mix label where enough people hold it
                for label, count in mix_counts.get(c, ()):
                    made[g].labels[label] += count
        for c in hidden[wanted_row]:
            table.cells.setdefault((bucket_of[cell_week[c]], cols.values[cell_col[c]]), None)
        totals: dict[date | None, int] = {}
        parts = [totals.setdefault(bucket_of[day], len(totals)) for day, _ in kept_totals[wanted_row]]
        if parts:
            merged = _stats(_sums(np.array(parts, dtype=np.int64), np.array([s for _, s in kept_totals[wanted_row]]),
                                  len(totals)))
            for period, g in totals.items():
                table.totals[period] = merged[g]
        for day in weeks_in_order:
            table.totals.setdefault(bucket_of[day], None)
        out[wanted_row] = table
    return out


def _links(items: EmployeeItems, other: str, cols: _Entries, week: np.ndarray
           ) -> tuple[dict[int, list[tuple[str, str]]], dict[int, Mapping[str, set[int]]]]:
    """Per week, the distinct (column value, `other` value) pairs of the items and the people of
    each `other` value (what `linked_hidden` takes); the columns are single-valued here."""
    codes, values = items.codes[other]
    width, n_cols = len(values), len(cols.values)
    found = np.unique((week * n_cols + cols.value) * width + codes)  # by week
    days, starts = np.unique(found // width // n_cols, return_index=True)
    col_names = np.array(cols.values, dtype=object)[found // width % n_cols].tolist()
    other_names = np.array(values, dtype=object)[found % width].tolist()
    ends = [*starts[1:].tolist(), len(found)] if len(found) else []  # no items: no weeks
    pairs = {day: list(zip(col_names[a:b], other_names[a:b], strict=True))
             for day, a, b in zip(days.tolist(), starts.tolist(), ends, strict=True)}
    group, first = _numbered(week * width + codes)
    groups: dict[int, dict[str, int]] = {}
    for g, (day, value) in enumerate(zip(week[first].tolist(), codes[first].tolist(), strict=True)):
        groups.setdefault(day, {})[values[value]] = g
    members = functools.cache(lambda: _people(group, items.respondent, len(first), items.people))
    return pairs, {day: _GroupPeople(index, members) for day, index in groups.items()}


class _GroupPeople(Mapping[str, set[int]]):
    """The people of a week's groups of a linked dimension ({value: respondents}), counted only
    if asked for: `linked_hidden` reads them only when the groupings nest, most of the time not."""

    def __init__(self, index: dict[str, int], members: Callable[[], list[set[int]]]) -> None:
        self._index, self._members = index, members  # members(): every group's people, counted once

    def __getitem__(self, value: str) -> set[int]:
        return self._members()[self._index[value]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def _mix_counts(items: EmployeeItems, cells: np.ndarray, pair_items: np.ndarray,
                min_group_size: int) -> dict[int, list[tuple[str, int]]]:
    """Per shown weekly cell, its mix labels ('kind:label') held by >= min_group_size people
    there, with how many times its items carry them (a label counts in a week only then);
    `cells` and `pair_items`: the shown cells' (cell, item) pairs, by item."""
    mix_item, mix_label, names = items.label_entries(MIX)
    if not len(mix_item):
        return {}
    a, b = _product(pair_items, mix_item, len(items))  # every (pair, mix label of its item)
    cell, label, person = cells[a], mix_label[b], items.respondent[pair_items[a]]
    width = len(names)
    key = cell * width + label
    counted, counts = np.unique(key, return_counts=True)
    people = np.unique(key * max(items.people, 1) + person) // max(items.people, 1)
    held, held_by = np.unique(people, return_counts=True)
    enough = set(held[held_by >= min_group_size].tolist())
    out: dict[int, list[tuple[str, int]]] = {}
    for k, count in zip(counted.tolist(), counts.tolist(), strict=True):
        if k in enough:
            c, lab = divmod(k, width)
            out.setdefault(c, []).append((names[lab], count))
    return out
