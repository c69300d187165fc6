"""Employee privacy for aggregates: minimum group sizes and complementary suppression.

Every aggregate over employee feedback (trends, the BI export, journeys, comparisons, drivers,
quotes, digests) decides what it may show with the functions here; the rules, and why they
are these, are in docs/privacy.md. In short:

1. **Minimum group size.** A group (cell) is shown only if it holds at least `min_size`
   distinct respondents (5 for scores, 10 for comments by default; never below 3).
2. **Complementary suppression.** Within a table whose total can be known (from this query or
   another), the hidden groups must together hold at least `min_size` respondents; otherwise the
   next smallest groups are hidden too. So 'total minus the visible groups' only ever gives an
   aggregate of `min_size` or more people. `suppressed_cells` does the same on every row and
   column of a two-way table (a filter dimension by the grouping dimension), margins included.
3. **Whole weeks, and dropped, not hidden.** Employee numbers are computed per ISO week, and a
   longer period or date range adds up only the weekly cells that were shown. A hidden weekly
   cell never enters any number, so overlapping date ranges differ only by shown cells.
4. **Narrow slices are refused.** At most one dimension filter; a slice below the minimum comes
   back suppressed, whatever its filters.

Sizes may be given as counts or as sets of respondent ids. Give sets where one person can be
in several groups (multi-label needs and emotions, channels): the union of hidden groups is
then counted exactly rather than bounded by a sum.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from feedback.config import ABSOLUTE_MIN_GROUP_SIZE, PrivacySettings

K = TypeVar("K", bound=Hashable)
R = TypeVar("R", bound=Hashable)
C = TypeVar("C", bound=Hashable)
F = TypeVar("F", bound=Hashable)

Size = int | Collection[Hashable]

# Employee queries may filter on at most this many dimensions (besides audience and dates).
MAX_EMPLOYEE_FILTERS = 1


class PrivacyError(ValueError):
    """A query over employee data that the privacy rules refuse; the message says what is allowed."""


def min_sizes(settings: PrivacySettings) -> tuple[int, int]:
    """(scores, comments) minimum group sizes, never below the absolute floor."""
    return (max(ABSOLUTE_MIN_GROUP_SIZE, settings.min_group_size_scores),
            max(ABSOLUTE_MIN_GROUP_SIZE, settings.min_group_size_comments))


def _count(size: Size) -> int:
    return size if isinstance(size, int) else len(size)


def _union_count(sizes: Iterable[Size]) -> int:
    """Distinct respondents over groups given as sets; a sum where any is a bare count."""
    sizes = list(sizes)
    if all(not isinstance(s, int) for s in sizes):
        union: set[Hashable] = set()
        for s in sizes:
            union.update(s)  # type: ignore[arg-type]
        return len(union)
    return sum(_count(s) for s in sizes)


def _order(key: Hashable) -> str:
    return repr(key)


def suppressed_groups(sizes: Mapping[K, Size], *, min_size: int,
                      total: Size | None = None, also: Iterable[K] = ()) -> set[K]:
    """Groups of one table to hide: the small ones (and `also`), plus complements until hidden
    ones hold >= min_size.

    `total` is the whole table's size when it is shown somewhere; if it is below `min_size`,
    every group is hidden. `also`: groups hidden for another reason (`linked_hidden`).
    """
    if min_size < ABSOLUTE_MIN_GROUP_SIZE:
        raise PrivacyError(f"min_size {min_size} is below the floor of {ABSOLUTE_MIN_GROUP_SIZE}")
    if total is not None and _count(total) < min_size:
        return set(sizes)
    hidden = {g for g, s in sizes.items() if _count(s) < min_size} | (set(also) & set(sizes))
    return _complete(hidden, sizes, min_size)


def linked_hidden(pairs: Iterable[tuple[K, F]], fine_sizes: Mapping[F, Size], *, min_size: int,
                  total: Size | None = None) -> set[K]:
    """The groups of a coarse table (K) to hide because another table of the same people, by a
    finer grouping nested in it (F: each fine group's items all in one coarse group, as themes
    within journey stages), hides one of their fine groups.

    Both tables are published (they are two groupings of one page or API), so a coarse group
    shown whole is the sum of its fine groups: shown beside a hidden fine group it gives that
    group away (the coarse group minus its shown fine groups), and a coarse group hidden as a
    complement is given away by its shown fine groups. Hiding every coarse group that holds a
    hidden fine group makes each shown coarse group a sum of shown fine groups (nothing new),
    and the hidden coarse groups already hold >= min_size people together. `pairs` are the
    (coarse, fine) values of each item; without nesting there is nothing to do (empty set).
    """
    coarse_of: dict[F, set[K]] = {}
    for coarse, fine in pairs:
        coarse_of.setdefault(fine, set()).add(coarse)
    if not coarse_of or any(len(c) != 1 for c in coarse_of.values()):
        return set()  # not nested: two crossing partitions, each suppressed on its own
    hidden_fine = suppressed_groups(fine_sizes, min_size=min_size, total=total)
    return {next(iter(coarse_of[f])) for f in hidden_fine if f in coarse_of}


def _complete(hidden: set[K], sizes: Mapping[K, Size], min_size: int) -> set[K]:
    """Add the smallest shown groups until the hidden ones together hold >= min_size."""
    hidden = set(hidden)
    while hidden and _union_count(sizes[g] for g in hidden) < min_size:
        shown = sorted((g for g in sizes if g not in hidden), key=lambda g: (_count(sizes[g]), _order(g)))
        if not shown:
            break
        hidden.add(shown[0])
    return hidden


def suppressed_cells(cells: Mapping[tuple[R, C], Size], *, min_size: int,
                     row_totals: Mapping[R, Size], col_totals: Mapping[C, Size],
                     grand_total: Size) -> set[tuple[R, C]]:
    """Cells of a two-way table (rows: a filter dimension, columns: the grouping) to hide.

    The table is seen with its margins: each row and column is a line of its cells plus its
    total. Margins get exactly the one-way rule against the grand total (what the one-way
    queries show), cells below `min_size` are hidden, then until nothing changes: every line
    with a hidden entry must have at least two, holding `min_size` respondents together, else
    its smallest shown cell is hidden too. So no hidden cell or margin is the difference of a
    shown total and shown cells. Lines are visited in sorted order, so the same table always
    gets the same pattern whichever row or column a query asks for.
    """
    hidden_rows = suppressed_groups(row_totals, min_size=min_size, total=grand_total)
    hidden_cols = suppressed_groups(col_totals, min_size=min_size, total=grand_total)
    hidden = {key for key, size in cells.items() if _count(size) < min_size}
    rows: dict[R, list[tuple[R, C]]] = {}
    cols: dict[C, list[tuple[R, C]]] = {}
    for key in sorted(cells, key=_order):
        rows.setdefault(key[0], []).append(key)
        cols.setdefault(key[1], []).append(key)
    lines = ([(line, row_totals.get(r, ()), r in hidden_rows) for r, line in sorted(rows.items(), key=_order)]
             + [(line, col_totals.get(c, ()), c in hidden_cols) for c, line in sorted(cols.items(), key=_order)])
    changed = True
    while changed:
        changed = False
        for line, margin, margin_hidden in lines:
            while True:
                line_hidden = [key for key in line if key in hidden]
                count = len(line_hidden) + margin_hidden
                if count == 0:
                    break
                parts = [cells[key] for key in line_hidden] + ([margin] if margin_hidden else [])
                if count >= 2 and _union_count(parts) >= min_size:
                    break
                shown = [key for key in line if key not in hidden and _count(cells[key])]
                if not shown:
                    break
                hidden.add(min(shown, key=lambda k: (_count(cells[k]), _order(k))))
                changed = True
    return hidden


def releasable(size: Size, *, min_size: int) -> bool:
    """Whether a single group may be shown on its own."""
    return _count(size) >= min_size


# ---------------------------------------------------------------------------------------------
# Time: employee numbers are computed on whole ISO weeks.


def week_floor(moment: datetime | date) -> date:
    """Monday of the week containing `moment` (UTC)."""
    day = moment.astimezone(UTC).date() if isinstance(moment, datetime) and moment.tzinfo else (
        moment.date() if isinstance(moment, datetime) else moment)
    return day - timedelta(days=day.weekday())


def snap_to_weeks(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """[start, end) widened to whole ISO weeks: Monday 00:00 UTC before start, after end."""
    def monday(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    snapped_start = monday(week_floor(start)) if start is not None else None
    snapped_end = None
    if end is not None:
        floor = monday(week_floor(end))
        end_utc = end.astimezone(UTC) if end.tzinfo else end.replace(tzinfo=UTC)
        snapped_end = floor if floor == end_utc else floor + timedelta(days=7)
    return snapped_start, snapped_end


def employee_month(week_start: date) -> date:
    """The month an ISO week belongs to for employee reports: the month of its Thursday.

    Employee months are whole weeks (4 or 5 of them), so every employee period is a sum of
    weekly cells and no month can be split against the weeks to isolate a few days.
    """
    thursday = week_start + timedelta(days=3)
    return thursday.replace(day=1)


def employee_month_bounds(month: date) -> tuple[date, date]:
    """[first Monday, Monday after the last week) of an employee month (see `employee_month`)."""
    def first_monday(first: date) -> date:
        thursday = first + timedelta(days=(3 - first.weekday()) % 7)
        return thursday - timedelta(days=3)

    following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return first_monday(month.replace(day=1)), first_monday(following)


def check_employee_query(filters: Mapping[str, str] | Iterable[tuple[str, str]], *, interval: str | None) -> None:
    """Refuse employee queries the rules do not allow (daily numbers, several filters at once)."""
    pairs = list(filters.items()) if isinstance(filters, Mapping) else list(filters)
    if interval == "day":
        raise PrivacyError("employee feedback is reported by week or month, not by day "
                           "(days are too small to protect people); use interval=week")
    if len(pairs) > MAX_EMPLOYEE_FILTERS:
        names = ", ".join(name for name, _ in pairs)
        raise PrivacyError(f"employee queries take at most {MAX_EMPLOYEE_FILTERS} dimension filter "
                           f"(got {names}); combining filters can narrow a group to one person. "
                           f"Group by one dimension and filter on one other instead")
