"""Journey stages come from the touchpoint taxonomy: the built-in one carries them, a configured
one may set its own, the journey groups each stage's touchpoints together, and the web app's
journey map shows them."""

from __future__ import annotations

import re

from analytics_data import customer_rows, team_rows, write_rows
from conftest import make_api_key
from fastapi.testclient import TestClient

from api.main import create_app
from api.routers.journey import journey_steps
from classifiers.config import DEFAULT_TOUCHPOINTS
from feedback.analytics.journey import journey_steps as stage_steps
from feedback.config import TouchpointConfig


def test_the_built_in_taxonomy_carries_journey_stages(settings) -> None:
    assert all(t.journey_stage for t in DEFAULT_TOUCHPOINTS)
    assert journey_steps(settings, "customer") == [
        ("website", "discover"), ("app", "discover"), ("checkout", "purchase"), ("store", "purchase"),
        ("delivery", "receive"), ("returns", "service"), ("support", "service")]
    assert journey_steps(settings, "employee") == [
        ("onboarding", "join"), ("day_to_day", "work"), ("manager", "work"), ("pay_benefits", "work"),
        ("tools", "work"), ("career", "grow")]


def test_a_stage_is_one_span_in_taxonomy_order_and_a_touchpoint_without_one_keeps_its_place() -> None:
    configured = [TouchpointConfig(name="ads", journey_stage="discover"),
                  TouchpointConfig(name="pay", journey_stage="buy"),
                  TouchpointConfig(name="hotline"),
                  TouchpointConfig(name="shop", journey_stage="discover"),
                  TouchpointConfig(name="invoice", journey_stage="buy"),
                  TouchpointConfig(name="manager", audience="employee", journey_stage="work")]
    assert stage_steps(configured, "customer") == [
        ("ads", "discover"), ("shop", "discover"), ("pay", "buy"), ("invoice", "buy"), ("hotline", None)]
    assert stage_steps(configured, "employee") == [("manager", "work")]
    assert stage_steps([TouchpointConfig(name="x"), TouchpointConfig(name="y")], "customer") == [
        ("x", None), ("y", None)]


def test_the_journey_answer_and_map_show_the_stages(settings, engine) -> None:
    write_rows(engine, customer_rows(600, seed=3)
               + team_rows("warehouse", 15, weeks=8, touchpoints=("manager", "tools", "career")))
    client = TestClient(create_app(settings))
    client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'admin')}"
    steps = client.get("/v1/journey").json()["steps"]
    assert [(s["touchpoint"], s["journey_stage"]) for s in steps if s["n"]] == [
        ("website", "discover"), ("checkout", "purchase"), ("delivery", "receive"), ("support", "service")]

    browser = TestClient(create_app(settings), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/signin").text).group(1)
    assert browser.post("/signin", data={"csrf_token": token, "api_key": make_api_key(settings, "admin")}
                        ).status_code == 303
    for audience, stages in (("customer", ["Discover", "Purchase", "Receive", "Service"]),  # readable names
                             ("employee", ["Join", "Work", "Grow"])):
        page = browser.get(f"/journey?audience={audience}&period=all").text
        table = page[page.index('id="journey-table"'):]
        assert re.findall(r'<th scope="rowgroup"[^>]*>([^<]+)</th>', table) == stages, audience
        assert "Other" not in re.findall(r'class="stage-label">([^<]*)<', page) and "<td>None</td>" not in table
        assert all(f'class="stage-label">{stage}<' in page for stage in stages)
