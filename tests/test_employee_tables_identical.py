"""Employee tables counted column-wise (feedback/analytics/employee_cells.py) are exactly the tables
of the item-by-item computation they replaced (tests/employee_tables_reference.py): every cell,
every total, hidden ones hidden, floats to the last bit. On the tagged demo and on awkward data
(people in several teams, anonymous and untagged items, corrections, nested groupings), by every
grouping, week, month and range, with and without a filter, the mixes, several minimum sizes;
read on their own, shared within a page, and kept for the next page while nothing is written
(new items, tags and corrections are read at once)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from analytics_data import MONDAY, Row, write_rows
from conftest import bench_module
from employee_tables_reference import (
    employee_item_reads,
    reference_employee_table,
    reference_employee_tables_by,
    reference_share_reads,
)
from sqlalchemy import func, select, update

from feedback.analytics.cells import SUM_FIELDS, Slice
from feedback.analytics.employee_cells import RECENT_READS, EmployeeItems, RecentReads
from feedback.analytics.tables import RANGE, CellTable, cell_table, employee_tables_by, share_reads
from feedback.db import session_scope
from feedback.models import Correction, FeedbackItem, Tag, TagLabel

GROUPINGS = ("org_unit", "segment", "journey_stage", "touchpoint", "need", "emotion", "topic", "channel")
table_key = bench_module("employee_tables_identical").table_key


def exact(table: CellTable) -> dict:
    """Every number of the table, floats by their bits, hidden cells as None (sorted: the order
    in which the old code set its hidden cells followed a set's), with its bounds, source and
    audience: the bench's `table_key`, which compares the same way at 1,000,000 items."""
    return {**table_key(table), "audience": table.audience}


def asks(session, *, end: datetime, weeks=(4, 52, None), sizes=(5,)) -> list[tuple[Slice, str, str, bool, int]]:
    """(slice, by, interval, mixes, min size) of the tables compared."""
    def first(column):
        return session.scalar(select(column).where(FeedbackItem.audience == "employee", column.is_not(None))
                              .order_by(column).limit(1))

    team, theme = first(FeedbackItem.org_unit), first(FeedbackItem.touchpoint)
    need = session.scalar(select(TagLabel.label).join(FeedbackItem, FeedbackItem.id == TagLabel.item_id).where(
        FeedbackItem.audience == "employee", TagLabel.kind == "need").order_by(TagLabel.label).limit(1))
    filters = [{}, {"org_unit": team}, {"touchpoint": theme}, {"need": need or "help"},
               {"org_unit": "nobody"}]  # a value no item holds: nothing shown, by that dimension too
    out = []
    for span in weeks:
        start = end - timedelta(weeks=span) if span else None
        stop = end if span else None
        for by in GROUPINGS:
            for interval in ("week", "month", RANGE):
                for wanted in (filters if span == 52 else filters[:2]):
                    out.append((Slice.make("employee", start, stop, wanted), by, interval))
    # with and without the mixes, each minimum size, in turn
    return [(*case, i % 2 == 1, sizes[i // 2 % len(sizes)]) for i, case in enumerate(out)]


def compare_all(engine, cases, *, shared: bool) -> tuple[int, int]:
    """Each case's table from the current code against the reference's; (cells, hidden) compared."""
    cells = hidden = 0
    with session_scope(engine) as session, session_scope(engine) as reference:
        if shared:
            share_reads(session)
            reference_share_reads(reference)
        for where, by, interval, mixes, size in cases:
            new = cell_table(session, where, by, interval, min_group_size=size, mixes=mixes)
            old = reference_employee_table(reference, where, by, interval, min_group_size=size, mixes=mixes)
            assert exact(new) == exact(old), (where, by, interval, mixes, size)
            cells += len(old.cells)
            hidden += sum(1 for s in old.cells.values() if s is None)
    return cells, hidden


def latest_end(session) -> datetime:
    newest = session.scalar(select(func.max(FeedbackItem.created_at)).where(FeedbackItem.audience == "employee"))
    day = newest.date()
    monday = day - timedelta(days=day.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC) + timedelta(days=7)


def test_the_demo_tables_are_the_item_by_item_ones(tagged_demo) -> None:
    engine = tagged_demo["engine"]
    RECENT_READS.clear()
    with session_scope(engine) as session:
        end = latest_end(session)
        cases = asks(session, end=end)
        teams = sorted(session.scalars(select(FeedbackItem.org_unit).where(
            FeedbackItem.audience == "employee").distinct()).all(), key=str)
    cells, hidden = compare_all(engine, cases, shared=False)
    assert cells > 1000 and 50 < hidden < cells  # both shown and hidden cells were compared
    compare_all(engine, cases[::3] + cases[::3], shared=True)  # shared reads, asked twice
    compare_all(engine, cases[1::5], shared=True)  # kept from the page before
    with session_scope(engine) as session:
        where = Slice.make("employee", end - timedelta(weeks=8), end)
        for by in ("touchpoint", "need", "segment"):
            new = employee_tables_by(session, where, "org_unit", [*teams, "nobody"], by, RANGE, min_group_size=5)
            old = reference_employee_tables_by(session, where, "org_unit", [*teams, "nobody"], by, RANGE,
                                               min_group_size=5)
            assert {k: exact(t) for k, t in new.items()} == {k: exact(t) for k, t in old.items()}


def awkward_rows(seed: int) -> list[tuple[Row, str]]:
    """Employee items that stress the rules: people answering in several teams and themes and
    several times a week, anonymous and untagged items, items without scores, themes nested in
    journey stages (each row's stage is its theme's), small teams, a week of two people; with the
    row's stage."""
    rng = random.Random(seed)
    stages = {"manager": "day_to_day", "tools": "day_to_day", "pay": "pay_benefits", "onboarding": "joining"}
    people = [f"p{i}" for i in range(40)]
    rows = []
    for week in range(9):
        for _ in range(rng.randrange(30, 70)):
            theme = rng.choice(list(stages))
            score = None if rng.random() < 0.1 else round(rng.uniform(-1, 1), 3)
            rows.append((Row("employee", MONDAY + timedelta(days=7 * week, seconds=rng.randrange(7 * 86400)),
                             touchpoint=theme if rng.random() < 0.9 else None,
                             org_unit=rng.choice(("big", "big", "mid", "small", None)),
                             segment=rng.choice(("day", "night")), channel=rng.choice(("survey", "chat")),
                             author=None if rng.random() < 0.1 else rng.choice(people), score=score,
                             p_negative=None if rng.random() < 0.3 else round(rng.random(), 4),
                             nps=rng.choice((None, *range(11))), csat=rng.choice((None, 1, 3, 4, 5)),
                             stars=rng.choice((None, 1.5, 3.0, 4.0, 5.0)),
                             needs=rng.sample(("help", "pay", "growth"), rng.randrange(3)) if score is not None else (),
                             emotions=rng.sample(("joy", "anger", "gratitude"), rng.randrange(3))
                             if score is not None else ()), stages[theme]))
    for person in ("p1", "p2"):  # a last week of two people: too few for anything of it to be shown
        rows.append((Row("employee", MONDAY + timedelta(weeks=9, days=1), touchpoint="manager", org_unit="big",
                         author=person, score=0.5, nps=9), "day_to_day"))
    return rows


def test_awkward_tables_are_the_item_by_item_ones(engine) -> None:
    rows = awkward_rows(0)
    ids = write_rows(engine, [row for row, _ in rows])
    with session_scope(engine) as session:
        for item_id, (_, stage) in zip(ids, rows, strict=True):
            session.execute(update(FeedbackItem).where(FeedbackItem.id == item_id).values(journey_stage=stage))
        tagged = [i for i, (row, _) in zip(ids, rows, strict=True) if row.score is not None]
        for item_id in tagged[:40:3]:  # an analyst's corrections, served in the model's place
            session.add(Correction(item_id=item_id, kind="sentiment", label="negative", created_by="test"))
        for item_id in tagged[1:40:4]:
            session.add(Correction(item_id=item_id, kind="touchpoint", label="tools", created_by="test"))
    end = MONDAY + timedelta(weeks=10)
    with session_scope(engine) as session:
        cases = asks(session, end=end, weeks=(4, 52), sizes=(3, 5, 10))
    cases += [(Slice.make("employee", MONDAY + timedelta(days=3), MONDAY + timedelta(days=40), f), by, i, m, 3)
              for f in ({}, {"segment": "night"}) for by in ("touchpoint", "journey_stage", "emotion")
              for i in ("week", RANGE) for m in (False, True)]
    cases += [(Slice.make("employee", MONDAY, end), by, interval, False, size)  # the nested groupings' rule
              for by in ("journey_stage", "touchpoint", "org_unit", "segment") for interval in ("week", RANGE)
              for size in (3, 5, 10)]
    cells, hidden = compare_all(engine, cases, shared=False)
    assert hidden and cells > hidden
    compare_all(engine, cases, shared=True)


def test_no_employee_items_give_empty_tables_like_the_item_by_item_ones(engine) -> None:
    """An empty database, and a range holding no employee item, answer empty tables (a fresh
    install's employee pages once failed on this with a 400)."""
    cases = [(Slice.make("employee", start, stop, wanted), by, interval, mixes, 5)
             for start, stop in ((None, None), (MONDAY, MONDAY + timedelta(weeks=4)))
             for wanted in ({}, {"org_unit": "warehouse"}) for by in GROUPINGS
             for interval in ("week", "month", RANGE) for mixes in (False, True)]
    assert compare_all(engine, cases, shared=False) == (0, 0)
    write_rows(engine, [row for row, _ in awkward_rows(1)])  # items, but none in the asked range
    later = MONDAY + timedelta(weeks=200)
    assert compare_all(engine, [(Slice.make("employee", later, later + timedelta(weeks=4)), by, "week", True, 5)
                                for by in GROUPINGS], shared=True) == (0, 0)


def _table(engine, where, by="touchpoint", *, shared=True) -> tuple[dict, dict]:
    """(current code's table, reference's) of one page's worth of session."""
    with session_scope(engine) as session:
        if shared:
            share_reads(session)
        new = cell_table(session, where, by, "week", min_group_size=3, mixes=True)
        old = reference_employee_table(session, where, by, "week", min_group_size=3, mixes=True)
    return exact(new), exact(old)


@pytest.mark.backends("sqlite")
def test_a_page_reuses_the_items_the_page_before_read_until_something_is_written(engine, monkeypatch) -> None:
    RECENT_READS.clear()
    rows = awkward_rows(3)
    ids = write_rows(engine, [row for row, _ in rows])
    where = Slice.make("employee", MONDAY, MONDAY + timedelta(weeks=10))
    reads = employee_item_reads(monkeypatch)
    first, _ = _table(engine, where)
    assert _table(engine, where) == (first, first) and len(reads) == 1  # kept: read once
    _table(engine, where, shared=False)  # the API's reads (no shared reads) never keep nor reuse
    assert len(reads) == 2
    # a new item: read again at once, and counted
    write_rows(engine, [Row("employee", MONDAY + timedelta(days=2), touchpoint="manager", org_unit="big",
                            author="p1", score=-0.9)])
    after_item, reference = _table(engine, where)
    assert after_item == reference != first and len(reads) == 3
    # a correction, then its withdrawal
    with session_scope(engine) as session:
        session.add(Correction(item_id=ids[5], kind="sentiment", label="positive", created_by="test"))
    corrected, reference = _table(engine, where)
    assert corrected == reference != after_item and len(reads) == 4
    with session_scope(engine) as session:
        now = datetime.now(UTC)
        session.execute(update(Correction).values(withdrawn_at=now, changed_at=now))
    assert _table(engine, where) == (after_item, after_item) and len(reads) == 5
    # a tag changed (the tagging job retags an item)
    with session_scope(engine) as session:
        item = session.scalar(select(Tag.item_id).where(Tag.item_id.in_(ids), Tag.sentiment != "negative"))
        session.execute(update(Tag).where(Tag.item_id == item).values(
            sentiment="negative", sentiment_score=-1.0, tagged_at=datetime.now(UTC) + timedelta(seconds=1)))
    retagged, reference = _table(engine, where)
    assert retagged == reference != after_item and len(reads) == 6
    assert _table(engine, where) == (retagged, retagged) and len(reads) == 6


def _items(n: int) -> EmployeeItems:
    return EmployeeItems(ids=np.arange(n), week=np.zeros(n, dtype=np.int64), respondent=np.arange(n), people=n,
                         sums=np.zeros((n, len(SUM_FIELDS))), codes={})


def test_kept_reads_expire_and_stay_within_their_bound(monkeypatch) -> None:
    class Engine:  # anything weakly referenced
        pass

    one, two = Engine(), Engine()
    clock = [100.0]
    monkeypatch.setattr("feedback.analytics.employee_cells.time.monotonic", lambda: clock[0])
    kept = RecentReads(max_items=100, ttl_s=30)
    small, other = _items(40), _items(50)
    kept.put(one, "a", "stamp", small, taken_at=100.0)
    assert kept.get(one, "a", "stamp") is small
    assert kept.get(one, "a", "newer stamp") is None  # something was written since
    assert kept.get(two, "a", "stamp") is None  # another database
    kept.put(two, "b", "stamp", other, taken_at=100.0)
    kept.put(one, "c", "stamp", _items(30), taken_at=100.0)  # 120 items: the least recently used goes
    assert kept.get(one, "a", "stamp") is None and kept.get(two, "b", "stamp") is other
    kept.put(one, "d", "stamp", _items(101), taken_at=100.0)  # larger than the bound: not kept
    assert kept.get(one, "d", "stamp") is None and kept.get(two, "b", "stamp") is other
    clock[0] = 131.0
    assert kept.get(two, "b", "stamp") is None  # older than ttl_s
