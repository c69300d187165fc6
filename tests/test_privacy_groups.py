"""Employee privacy: the suppression rules, and attacks on them through the real API.

The attacks the issue names: filters narrowing to one person, overlapping date ranges, totals
minus parts; plus the two-way one (an unfiltered table minus the same table per team) and
months minus weeks. Each attack computes what it could learn and checks it is either nothing
or a group of at least the minimum size.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from analytics_data import MONDAY, Row, team_rows, write_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.privacy.groups import (
    PrivacyError,
    check_employee_query,
    employee_month,
    employee_month_bounds,
    linked_hidden,
    snap_to_weeks,
    suppressed_cells,
    suppressed_groups,
)

K = 5  # the default minimum group size for scores


# --- the rules on their own -------------------------------------------------------------------


def test_small_group_and_its_complement_are_hidden() -> None:
    assert suppressed_groups({"a": 20, "b": 9, "c": 3}, min_size=K) == {"b", "c"}
    assert suppressed_groups({"a": 20, "b": 9, "c": 3, "d": 4}, min_size=K) == {"c", "d"}  # 3+4 >= 5
    assert suppressed_groups({"a": 20, "b": 9}, min_size=K) == set()
    assert suppressed_groups({"a": 4}, min_size=K) == {"a"}
    assert suppressed_groups({"a": 6, "b": 6}, min_size=K, total=4) == {"a", "b"}


def test_respondent_sets_count_people_once() -> None:
    # Two hidden groups of the same three people hold three people, not six: hide a third group.
    sizes = {"pay": {"p1", "p2", "p3"}, "tools": {"p1", "p2", "p3"}, "manager": {f"m{i}" for i in range(8)}}
    assert suppressed_groups(sizes, min_size=K) == {"pay", "tools", "manager"}


def test_a_coarse_group_holding_a_hidden_fine_group_is_hidden() -> None:
    # themes within stages: tools (4) hidden with onboarding (1) in the theme table
    pairs = [("join", "onboarding"), ("grow", "career"), ("work", "tools"), ("work", "manager")]
    sizes = {"onboarding": 1, "career": 10, "tools": 4, "manager": 70}
    assert linked_hidden(pairs, sizes, min_size=K) == {"join", "work"}
    # crossing groupings (a theme in two stages) are each suppressed on their own
    assert linked_hidden([*pairs, ("grow", "tools")], sizes, min_size=K) == set()
    # then the coarse table completes as usual
    stages = {"join": 1, "grow": 10, "work": 74}
    assert suppressed_groups(stages, min_size=K, total=85, also={"join", "work"}) == {"join", "work"}


def test_the_floor_cannot_be_configured_away() -> None:
    with pytest.raises(PrivacyError):
        suppressed_groups({"a": 1}, min_size=2)
    from feedback.config import PrivacySettings

    with pytest.raises(ValueError, match="floor"):
        PrivacySettings(min_group_size_scores=2)


def test_two_way_table_protects_rows_and_columns() -> None:
    # rows: teams, columns: touchpoints; people are disjoint per cell.
    cells = {("ops", "manager"): 10, ("ops", "tools"): 8, ("legal", "manager"): 2, ("legal", "tools"): 6,
             ("sales", "manager"): 9, ("sales", "tools"): 7}
    rows = {"ops": 18, "legal": 8, "sales": 16}
    cols = {"manager": 21, "tools": 21}
    hidden = suppressed_cells(cells, min_size=K, row_totals=rows, col_totals=cols, grand_total=42)
    assert ("legal", "manager") in hidden
    # legal's row shows its total: a second legal cell must go, so legal minus parts is >= 5
    assert ("legal", "tools") in hidden
    # manager's column total is public too: a second manager cell must go
    assert ("sales", "manager") in hidden or ("ops", "manager") in hidden


def test_time_rules() -> None:
    start, end = snap_to_weeks(MONDAY + timedelta(days=2, hours=5), MONDAY + timedelta(days=9))
    assert start == MONDAY and end == MONDAY + timedelta(days=14)
    assert snap_to_weeks(MONDAY, MONDAY + timedelta(days=7)) == (MONDAY, MONDAY + timedelta(days=7))
    with pytest.raises(PrivacyError, match="by week or month"):
        check_employee_query({}, interval="day")
    with pytest.raises(PrivacyError, match="at most 1"):
        check_employee_query({"org_unit": "a", "segment": "b"}, interval="week")
    for week in range(60):  # every week lies in its employee month
        monday = MONDAY.date() + timedelta(days=7 * week)
        first, after = employee_month_bounds(employee_month(monday))
        assert first <= monday < after and first.weekday() == 0 and (after - first).days in (28, 35)


people = st.integers(min_value=0, max_value=30)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdefgh"), st.integers(min_value=1, max_value=30), min_size=1),
       st.integers(min_value=3, max_value=10))
def test_one_way_property(sizes: dict[str, int], k: int) -> None:
    hidden = suppressed_groups(sizes, min_size=k)
    assert all(sizes[g] >= k for g in sizes if g not in hidden)  # every shown group is big enough
    # total minus the shown groups is nothing or a group of at least k
    rest = sum(sizes[g] for g in hidden)
    assert rest == 0 or rest >= k or hidden == set(sizes)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from("rstu"), st.sampled_from("xyz")),
                       st.integers(min_value=1, max_value=25), min_size=1),
       st.integers(min_value=3, max_value=8))
def test_two_way_property(cells: dict[tuple[str, str], int], k: int) -> None:
    rows: dict[str, int] = {}
    cols: dict[str, int] = {}
    for (r, c), n in cells.items():
        rows[r] = rows.get(r, 0) + n
        cols[c] = cols.get(c, 0) + n
    grand = sum(cells.values())
    hidden = suppressed_cells(cells, min_size=k, row_totals=rows, col_totals=cols, grand_total=grand)
    hidden_rows = suppressed_groups(rows, min_size=k, total=grand)
    hidden_cols = suppressed_groups(cols, min_size=k, total=grand)
    assert all(n >= k for key, n in cells.items() if key not in hidden)
    for axis, margins, margin_hidden in ((0, rows, hidden_rows), (1, cols, hidden_cols)):
        for value in margins:
            line = [key for key in cells if key[axis] == value]
            gone = [key for key in line if key in hidden]
            if value not in margin_hidden:
                # a shown total minus its shown cells: nothing, or >= k people
                rest = sum(cells[key] for key in gone)
                assert rest == 0 or rest >= k
            elif len(line) > 1 and margins[value] >= k:
                # a hidden total whose cells were all shown would be their sum
                assert gone


# --- attacks through the API ------------------------------------------------------------------


def _rows(body: dict) -> list[dict]:
    return body["rows"]


def _shown(rows: list[dict], key: str) -> dict[str, dict]:
    return {r[key]: r for r in rows if not r["suppressed"]}


@pytest.fixture
def company(engine) -> None:
    """Three weeks of a company: ops 12 people, sales 9, legal 6 (but only 2 answer in week 3),
    and one night-shift person in sales (the 'one person' the attacker is after)."""
    rows: list[Row] = []
    rows += team_rows("ops", 12, weeks=3, touchpoints=("manager", "tools", "pay_benefits"), score=0.4)
    rows += team_rows("sales", 8, weeks=3, touchpoints=("manager", "tools"), score=0.2, segment="day")
    rows += team_rows("sales-night", 1, weeks=3, touchpoints=("manager",), score=-0.9, segment="night")
    for r in rows:  # the night-shift person belongs to sales
        if r.org_unit == "sales-night":
            r.org_unit = "sales"
    rows += team_rows("legal", 6, weeks=2, touchpoints=("manager", "tools"), score=-0.5)
    rows += team_rows("legal", 2, weeks=1, start=MONDAY + timedelta(days=14), seed=3,
                      touchpoints=("manager",), score=-0.8)
    write_rows(engine, rows)


def test_filters_narrowing_to_one_person_are_suppressed_or_refused(light_client, company) -> None:
    # The night-shift person alone: every way to single them out comes back suppressed.
    body = light_client.get("/v1/trends", params={"audience": "employee", "by": "segment",
                                                  "org_unit": "sales"}).json()
    assert all(r["suppressed"] for r in _rows(body) if r["segment"] == "night")
    # ... and sales' day shift is hidden with it, or sales minus day shift would be that person
    assert all(r["suppressed"] for r in _rows(body))
    body = light_client.get("/v1/trends", params={"audience": "employee", "by": "org_unit",
                                                  "segment": "night"}).json()
    assert all(r["suppressed"] for r in _rows(body))
    # two filters at once are refused, with the reason
    response = light_client.get("/v1/trends", params={"audience": "employee", "by": "touchpoint",
                                                      "org_unit": "sales", "segment": "night"})
    assert response.status_code == 400 and "at most 1" in response.json()["detail"]
    # daily numbers are refused
    response = light_client.get("/v1/trends", params={"audience": "employee", "interval": "day"})
    assert response.status_code == 400 and "by week" in response.json()["detail"]
    # quotes for the slice of one person are refused
    response = light_client.get("/v1/quotes", params={"audience": "employee", "segment": "night"})
    assert response.status_code == 400 and "fewer than 10" in response.json()["detail"]
    # drivers and comparisons of that slice show nothing either
    body = light_client.get("/v1/drivers", params={"audience": "employee", "segment": "night"}).json()
    assert body["drivers"] == [] and body["n"] == 0
    body = light_client.get("/v1/journey", params={"audience": "employee", "segment": "night"}).json()
    assert body["total"] is None and all(s["n"] is None for s in body["steps"])


def test_every_shown_employee_number_covers_enough_people(light_client, company) -> None:
    for by in ("org_unit", "touchpoint", "segment"):
        for extra in ({}, {"org_unit": "ops"}, {"org_unit": "sales"}, {"touchpoint": "manager"}):
            for interval in ("week", "month"):
                body = light_client.get("/v1/trends", params={"audience": "employee", "by": by,
                                                              "interval": interval, **extra}).json()
                for r in _rows(body):
                    assert r["suppressed"] or r["n"] >= K, (by, extra, r)


def test_overlapping_date_ranges_do_not_isolate_a_week(light_client, company) -> None:
    # legal: 6 people in weeks 1-2, only 2 in week 3. Week 3's legal cell is hidden ...
    weekly = _rows(light_client.get("/v1/trends", params={"audience": "employee", "by": "org_unit"}).json())
    third_monday = (MONDAY + timedelta(days=14)).date().isoformat()
    week3 = [r for r in weekly if r["org_unit"] == "legal" and r["period"] == third_monday]
    assert week3 and week3[0]["suppressed"]
    # ... so the range weeks 1-3 minus the range weeks 1-2 must not give it away.
    def legal_n(days: int) -> int | None:
        body = light_client.get("/v1/compare", params={
            "audience": "employee", "by": "org_unit", "metric": "mean_sentiment",
            "baseline_start": MONDAY.isoformat(), "baseline_end": (MONDAY + timedelta(days=days)).isoformat(),
            "current_start": MONDAY.isoformat(), "current_end": (MONDAY + timedelta(days=days)).isoformat()}).json()
        row = next(r for r in body["rows"] if r["value_code"] == "legal")
        return row["current"]["n"]

    assert legal_n(14) == legal_n(21) == 12  # weeks 1-2 only: week 3 is dropped, not hidden
    # A range ending inside week 3 is widened to the whole week, the same cells again.
    assert legal_n(17) == legal_n(21)
    # months are whole weeks and add up only shown weekly cells
    monthly = _rows(light_client.get("/v1/trends", params={"audience": "employee", "by": "org_unit",
                                                           "interval": "month"}).json())
    for team, month in _shown(monthly, "org_unit").items():
        weeks = sum(r["n"] for r in weekly if r["org_unit"] == team and not r["suppressed"])
        assert month["n"] == weeks


def test_totals_minus_parts_never_give_a_small_group(light_client, company) -> None:
    # The total per week (the 'all' rows of the export) minus the shown teams ...
    export = light_client.get("/v1/aggregates", params={"audience": "employee", "interval": "week"}).json()["rows"]
    totals = {r["period_start"]: r["n"] for r in export if r["dimension"] == "all" and not r["suppressed"]}
    teams = [r for r in export if r["dimension"] == "org_unit"]
    assert totals
    for period, total in totals.items():
        shown = sum(r["n"] for r in teams if r["period_start"] == period and not r["suppressed"])
        rest = total - shown
        assert rest == 0 or rest >= K, (period, rest)  # ... is nothing or >= 5 people
    # the same through trends and the journey total
    weekly = _rows(light_client.get("/v1/trends", params={"audience": "employee", "by": "touchpoint"}).json())
    for period, total in totals.items():
        shown = sum(r["n"] for r in weekly if r["period"] == period and not r["suppressed"])
        assert total - shown == 0 or total - shown >= K


def test_unfiltered_table_minus_each_team_does_not_reveal_a_team(light_client, company) -> None:
    # For each touchpoint and week: (all teams) minus (each team's own table) = the hidden parts.
    overall = _rows(light_client.get("/v1/trends", params={"audience": "employee", "by": "touchpoint"}).json())
    per_team: dict[str, list[dict]] = {}
    for team in ("ops", "sales", "legal"):
        per_team[team] = _rows(light_client.get("/v1/trends", params={
            "audience": "employee", "by": "touchpoint", "org_unit": team}).json())
    for row in overall:
        if row["suppressed"]:
            continue
        parts = [r["n"] for rows in per_team.values() for r in rows
                 if r["period"] == row["period"] and r["touchpoint"] == row["touchpoint"] and not r["suppressed"]]
        rest = row["n"] - sum(parts)
        assert rest == 0 or rest >= K, (row["period"], row["touchpoint"], rest)


def test_employee_quotes_carry_nothing_that_identifies(light_client, company) -> None:
    body = light_client.get("/v1/quotes", params={"audience": "employee", "org_unit": "ops"}).json()
    assert body["quotes"]
    for quote in body["quotes"]:
        assert set(quote) == {"text", "sentiment", "sentiment_score", "needs", "emotions"}
    # a team of 8 (below 10 for comments) cannot be quoted
    response = light_client.get("/v1/quotes", params={"audience": "employee", "org_unit": "legal"})
    assert response.status_code == 400


def test_journey_stages_and_their_themes_cannot_be_combined(light_client, engine) -> None:
    """The review's attack: by journey stage, "grow" was hidden as the complement of a one-person
    "join" stage while its only theme, career, was shown by theme; total - work - career gave the
    new joiner's answer away. Now every stage holding a hidden theme is hidden, so each shown
    stage is a sum of shown themes and hidden stages add up to the hidden themes only."""
    from feedback.db import session_scope
    from feedback.models import FeedbackItem

    stage_of = {"onboarding": "join", "career": "grow", "tools": "work", "manager": "work", "pay": "work"}
    rows = (team_rows("new", 1, touchpoints=("onboarding",), score=0.9)
            + team_rows("growers", 10, touchpoints=("career",))
            + team_rows("kit", 4, touchpoints=("tools",), score=0.8)
            + team_rows("leads", 40, touchpoints=("manager",)) + team_rows("payroll", 30, touchpoints=("pay",)))
    ids = write_rows(engine, rows)
    with session_scope(engine) as session:
        for item_id in ids:
            item = session.get(FeedbackItem, item_id)
            item.journey_stage = stage_of[item.touchpoint]
    themes = {r["touchpoint"]: r for r in _rows(light_client.get(
        "/v1/trends", params={"audience": "employee", "by": "touchpoint"}).json())}
    stages = {r["journey_stage"]: r for r in _rows(light_client.get(
        "/v1/trends", params={"audience": "employee", "by": "journey_stage"}).json())}
    hidden_themes = {t for t, r in themes.items() if r["suppressed"]}
    assert hidden_themes == {"onboarding", "tools"}
    for stage, row in stages.items():
        mine = [t for t, s in stage_of.items() if s == stage]
        if any(t in hidden_themes for t in mine):
            assert row["suppressed"], stage
        else:  # shown: the sum of its shown themes, nothing new
            assert not row["suppressed"] and row["n"] == sum(themes[t]["n"] for t in mine), stage
    assert {s for s, r in stages.items() if r["suppressed"]} == {"join", "work"}
