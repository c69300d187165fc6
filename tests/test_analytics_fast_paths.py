"""The web app's fast paths give the answers of the slow ones (issue 18): the cross rollups (a
touchpoint's topics, needs and emotions) against the items, key drivers from the rollups against
drivers from the items, the employee tables of every team from one read against one query per
team, and reads shared within a page against reads of their own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from analytics_data import MONDAY, add_topics, customer_rows, team_rows, write_rows
from employee_tables_reference import employee_item_reads

from feedback.analytics import compare as compare_module
from feedback.analytics.cells import SUM_FIELDS, CellStats, Slice
from feedback.analytics.compare import CompareQuery, compare
from feedback.analytics.drivers import DriverQuery, key_drivers
from feedback.analytics.rollups import rebuild_rollups
from feedback.analytics.tables import (
    RANGE,
    cell_table,
    employee_table,
    employee_tables_by,
    share_reads,
)
from feedback.db import session_scope

EIGHT_WEEKS = {"start": MONDAY.isoformat(), "end": (MONDAY + timedelta(weeks=8)).isoformat()}


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 2e-4 + 1e-3 * abs(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.fixture
def shop(engine) -> list[int]:
    topics = add_topics(engine, ["late delivery", "great prices", "app bugs"])
    write_rows(engine, customer_rows(1500, seed=11, weeks=8, topics=topics))
    return topics


# Filtered trends the rollups now answer: a touchpoint's own trend (with its mixes), its topics,
# needs and emotions, and the other way round (a need's touchpoints).
FILTERED = [
    {"by": "touchpoint", "interval": "week", "touchpoint": "delivery", "mixes": "true"},
    {"by": "topic", "interval": "week", "touchpoint": "delivery", **EIGHT_WEEKS},
    {"by": "need", "interval": "month", "touchpoint": "support"},
    {"by": "emotion", "interval": "week", "touchpoint": "delivery",
     "start": (MONDAY + timedelta(days=9)).isoformat(), "end": (MONDAY + timedelta(days=40)).isoformat()},
    {"by": "touchpoint", "interval": "week", "need": "speed"},
    {"by": "touchpoint", "interval": "month", "topic": "none"},
]


def test_cross_rollups_answer_what_the_items_answer(light_client, engine, shop) -> None:
    before = [light_client.get("/v1/trends", params=q).json() for q in FILTERED]
    assert {b["source"] for b in before} == {"items"}
    compares = [{"period": "week", "at": (MONDAY + timedelta(weeks=5)).isoformat(), "metric": "net_sentiment"},
                {"period": "week", "at": (MONDAY + timedelta(weeks=6)).isoformat(), "by": "topic",
                 "metric": "mean_sentiment"}]
    compared = [light_client.get("/v1/compare", params=q).json() for q in compares]
    with session_scope(engine) as session:
        rebuild_rollups(session)
    after = [light_client.get("/v1/trends", params=q).json() for q in FILTERED]
    assert {a["source"] for a in after} == {"rollups"}
    for b, a in zip(before, after, strict=True):
        assert len(b["rows"]) == len(a["rows"]) > 0
        for x, y in zip(b["rows"], a["rows"], strict=True):
            assert _close(x, y), (x, y)
    for b, q in zip(compared, compares, strict=True):
        a = light_client.get("/v1/compare", params=q).json()
        assert any(row["drivers"] for row in a["rows"])
        for x, y in zip(b["rows"], a["rows"], strict=True):
            assert _close(x, y), (x, y)
    # a filter on a dimension the rollups do not cross stays on the items
    assert light_client.get("/v1/trends", params={"by": "topic", "channel": "chat"}).json()["source"] == "items"


@pytest.mark.parametrize("query", [
    DriverQuery(outcome="nps", dimensions=("touchpoint",)),  # the journey's moments of truth (with the fit)
    DriverQuery(outcome="csat", dimensions=("topic",), start=MONDAY + timedelta(weeks=2)),
    DriverQuery(outcome="nps", dimensions=("topic", "need", "emotion"), filters={"touchpoint": "delivery"},
                regression=False),  # a touchpoint page's drivers
    DriverQuery(outcome="rating", dimensions=("need", "touchpoint"), regression=False, min_support=10),
    # the newest 400 answers: the limit falls inside a day, whose newest answers are read from the items
    DriverQuery(outcome="nps", dimensions=("touchpoint",), max_items=400),
    DriverQuery(outcome="nps", dimensions=("topic", "need"), filters={"touchpoint": "website"}, max_items=150,
                regression=False, min_support=10),
], ids=["touchpoint-fit", "topic-csat", "touchpoint-page", "rating-two", "limit-fit", "limit-filtered"])
def test_key_drivers_from_the_rollups_are_those_from_the_items(engine, shop, query) -> None:
    with session_scope(engine) as session:
        from_items = key_drivers(session, query, min_group_size=5)
        rebuild_rollups(session)
    with session_scope(engine) as session:
        from_rollups = key_drivers(session, query, min_group_size=5)
    assert from_items["drivers"] and from_items["n"] == from_rollups["n"]
    assert from_rollups == from_items
    if query.regression:
        assert from_items["regression"]["r_squared"] is not None


def test_drivers_read_from_the_rollups_only_where_they_answer(engine, shop, monkeypatch) -> None:
    from feedback.analytics import drivers

    with session_scope(engine) as session:
        rebuild_rollups(session)
    calls: list[str] = []
    monkeypatch.setattr(drivers, "_regression", lambda *a, **k: calls.append("fit") or {"coefficients": {}})
    with session_scope(engine) as session:
        key_drivers(session, DriverQuery(dimensions=("touchpoint",)), min_group_size=5)
        assert calls == []  # one dimension: the fit from the rollups' sums
        key_drivers(session, DriverQuery(dimensions=("topic", "need")), min_group_size=5)
        assert calls == ["fit"]  # several with the fit: every item's features, from the items
        answer = key_drivers(session, DriverQuery(dimensions=("topic", "need"), regression=False), min_group_size=5)
        assert calls == ["fit"] and answer["regression"] is None and answer["drivers"]


def _teams(engine) -> None:
    rows = []
    for i, (team, people) in enumerate((("warehouse", 12), ("stores", 9), ("office", 6), ("drivers", 4))):
        rows += team_rows(team, people, weeks=6, seed=i, touchpoints=("manager", "tools"),
                          score=0.3 - 0.2 * i, needs=("help",) if i % 2 else (), emotions=("joy",))
    write_rows(engine, rows)


def test_employee_tables_of_every_team_from_one_read_are_the_single_queries(engine, monkeypatch) -> None:
    _teams(engine)
    where = Slice.make("employee", MONDAY, MONDAY + timedelta(weeks=6))
    with session_scope(engine) as session:
        teams = ["warehouse", "stores", "office", "drivers", "nobody"]
        for by in ("touchpoint", "need"):
            together = employee_tables_by(session, where, "org_unit", teams, by, RANGE, min_group_size=5)
            for team in teams:
                alone = employee_table(session, Slice.make("employee", where.start, where.end, {"org_unit": team}),
                                       by, RANGE, min_group_size=5)
                assert together[team].cells == alone.cells and together[team].totals == alone.totals, (by, team)
        assert any(stats is None for stats in together["drivers"].cells.values())  # suppression kept
        # the employee compare reads them so: its drivers per team are the ones of a query per team
        query = CompareQuery(current_start=MONDAY + timedelta(weeks=5), current_end=MONDAY + timedelta(weeks=6),
                             baseline_start=MONDAY, baseline_end=MONDAY + timedelta(weeks=5), by="org_unit",
                             audience="employee", drivers_by="touchpoint", metric="mean_sentiment")
        together = compare(session, query, min_group_size=5)
        assert any(row["drivers"] for row in together["rows"] if row["value_code"])

        def one_by_one(session, where, row_dim, values, by, interval, **kwargs):
            return {v: cell_table(session, Slice.make(where.audience, where.start, where.end, {row_dim: v}), by,
                                  interval, **kwargs) for v in values}

        monkeypatch.setattr(compare_module, "employee_tables_by", one_by_one)
        assert compare(session, query, min_group_size=5) == together


def test_shared_reads_give_the_tables_of_reads_of_their_own(engine) -> None:
    _teams(engine)
    where = Slice.make("employee", MONDAY, MONDAY + timedelta(weeks=6))
    asks = [("touchpoint", "week", {}, False), ("touchpoint", RANGE, {}, True), ("org_unit", "week", {}, True),
            ("need", RANGE, {"org_unit": "stores"}, False), ("touchpoint", "month", {"org_unit": "warehouse"}, True)]
    with session_scope(engine) as session:
        own = [cell_table(session, Slice.make("employee", where.start, where.end, f), by, interval,
                          min_group_size=5, mixes=mixes) for by, interval, f, mixes in asks]
    with session_scope(engine) as session:
        share_reads(session)
        shared = [cell_table(session, Slice.make("employee", where.start, where.end, f), by, interval,
                             min_group_size=5, mixes=mixes) for by, interval, f, mixes in asks * 2]
    for a, b in zip(own * 2, shared, strict=True):
        assert a.cells == b.cells and a.totals == b.totals


def _same_table(a, b) -> bool:
    """The same cells (hidden ones None) and totals, sums equal up to the order they were added in."""
    def sums(cells):
        return {k: None if v is None else ([getattr(v, f) for f in SUM_FIELDS], dict(v.labels))
                for k, v in cells.items()}
    return _close(sums(a.cells), sums(b.cells)) and _close(sums(a.totals), sums(b.totals))


def test_a_shared_read_of_more_weeks_answers_the_weeks_within_it(engine, monkeypatch) -> None:
    """The overview reads 20 weeks for what is still going, then the last week and the 8 before
    it: those come from the rows already read, and are the tables of reads of their own."""
    _teams(engine)
    first = MONDAY - timedelta(weeks=1)  # a week before the data, so the long read holds every range
    asks = [(MONDAY + timedelta(weeks=5), MONDAY + timedelta(weeks=6), "org_unit", RANGE, {}, False),
            (MONDAY + timedelta(weeks=1), MONDAY + timedelta(weeks=5), "org_unit", RANGE, {}, False),
            (MONDAY, MONDAY + timedelta(weeks=3), "touchpoint", "week", {}, True),
            (MONDAY + timedelta(weeks=2), MONDAY + timedelta(weeks=6), "need", RANGE, {"org_unit": "stores"}, False),
            (MONDAY + timedelta(weeks=4), MONDAY + timedelta(weeks=7), "org_unit", RANGE, {}, False)]  # not within
    with session_scope(engine) as session:
        own = [cell_table(session, Slice.make("employee", s, e, f), by, interval, min_group_size=5, mixes=mixes)
               for s, e, by, interval, f, mixes in asks]
    reads = employee_item_reads(monkeypatch)
    with session_scope(engine) as session:
        share_reads(session)
        cell_table(session, Slice.make("employee", first, MONDAY + timedelta(weeks=6)), "org_unit", "week",
                   min_group_size=5)
        shared = [cell_table(session, Slice.make("employee", s, e, f), by, interval, min_group_size=5, mixes=mixes)
                  for s, e, by, interval, f, mixes in asks]
    # the long read, and one of the range that goes past it
    assert [(w.start, w.end) for w in reads] == [(first, MONDAY + timedelta(weeks=6)),
                                                 (MONDAY + timedelta(weeks=4), MONDAY + timedelta(weeks=7))]
    for a, b in zip(own, shared, strict=True):
        assert _same_table(a, b)


def test_cell_stats_add_every_sum() -> None:
    one = CellStats(**{name: i + 1 for i, name in enumerate(SUM_FIELDS)})
    one.labels["need:price"] = 2
    total = CellStats().add(one).add(one)
    assert [getattr(total, name) for name in SUM_FIELDS] == [2 * (i + 1) for i in range(len(SUM_FIELDS))]
    assert total.labels == {"need:price": 4}


def test_customer_topics_from_the_rollups_are_those_from_the_items(settings, engine, shop, monkeypatch) -> None:
    from feedback.topics import repository
    from feedback.topics.service import list_topics

    with session_scope(engine) as session:
        from_items = list_topics(session, settings=settings, audience="customer", periods=6)
        rebuild_rollups(session)
    monkeypatch.setattr(repository, "topic_numbers", lambda *a, **k: pytest.fail("read the items"))
    with session_scope(engine) as session:
        from_rollups = list_topics(session, settings=settings, audience="customer", periods=6, with_totals=False)
    assert from_rollups["items"] is None and from_items["items"]["tagged"] == 1500
    assert len(from_items["topics"]) == 3 and all(t["trend"]["periods"] for t in from_items["topics"])
    for a, b in zip(from_items["topics"], from_rollups["topics"], strict=True):
        assert _close(a, b), (a, b)


@pytest.mark.parametrize("bounds", [(None, None), (MONDAY + timedelta(days=3), None),
                                    (None, MONDAY + timedelta(days=40)),
                                    (MONDAY + timedelta(days=20), MONDAY + timedelta(days=50))])
@pytest.mark.parametrize("limit", [50, 400, 5000])
def test_quote_pools_read_by_windows_are_the_newest_items(engine, shop, bounds, limit) -> None:
    from feedback.analytics.cells import apply_slice, base_select
    from feedback.analytics.quotes import _newest
    from feedback.analytics.served import ServedTag
    from feedback.models import FeedbackItem

    where = Slice.make("customer", *bounds, {"touchpoint": "delivery"})
    stmt = apply_slice(base_select(FeedbackItem.id, FeedbackItem.created_at), where).where(
        ServedTag.sentiment == "negative")
    with session_scope(engine) as session:
        at_once = session.execute(stmt.order_by(FeedbackItem.created_at.desc()).limit(limit)).all()
        windowed = _newest(session, stmt, where, limit)
    assert [tuple(r) for r in windowed] == [tuple(r) for r in at_once] and at_once
