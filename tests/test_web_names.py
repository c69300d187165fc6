"""Readable names for the data's codes on the pages ("day_to_day" -> "Day to day"): in tables,
headings, menus' visible text, chart labels and their text alternatives, while option values,
links, data attributes, the API's JSON and the digests keep the codes (TestClient, tagged demo)."""

from __future__ import annotations

import html
import re

from conftest import make_api_key
from fastapi.testclient import TestClient
from test_web import app as app  # noqa: F401, PLC0414 (the fixture: the app on the tagged demo)
from test_web import sign_in

from api.web.names import readable


def test_readable_names_of_the_shipped_codes_and_a_generic_rule() -> None:
    assert readable("day_to_day") == "Day to day"
    assert readable("pay_benefits") == "Pay & benefits"
    assert readable("customer_service") == "Customer service"
    assert readable("loyalty_member") == "Loyalty member"
    assert readable("app_review") == "App review"
    assert readable("<1y") == "Under 1 year" and readable("3y+") == "3 years or more"
    assert readable("delivery") == "Delivery" and readable("team-05") == "Team-05"
    assert readable("night_shift_2") == "Night shift 2"  # a code the mapping does not know
    for text in ("Minutes on Hold", "late delivery", "Swiftship Depot", "12", "", None, 3):
        assert readable(text) == text  # names already, numbers and nothing stay as they are


def _texts(page: str, pattern: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", t)).strip() for t in re.findall(pattern, page, re.S)]


def test_pages_show_names_and_keep_the_codes(app, tagged_demo) -> None:
    settings = tagged_demo["settings"]
    admin = sign_in(app, settings, "admin")
    employee = admin.get("/employee", params={"by": "touchpoint", "period": "all"}).text
    groups = dict(re.findall(r'<tr data-group="([^"]+)">\s*<th scope="row">(.*?)</th>', employee, re.S))
    assert html.unescape(groups["day_to_day"]).strip() == "Day to day"
    assert html.unescape(groups["pay_benefits"]).strip() == "Pay & benefits"
    legend = _texts(employee, r'<span class="key">(.*?)</span>')
    assert "Day to day" in legend and "day_to_day" not in legend  # the chart's legend ...
    tips = _texts(employee, r"<circle [^>]*><title>(.*?)</title>")
    assert tips and any(t.startswith("Day to day, 2026-W") for t in tips)  # ... and its tooltips
    assert '<option value="touchpoint" selected>Theme</option>' in employee
    teams = admin.get("/", params={"audience": "employee"}).text
    assert re.search(r'filter_value=customer_service[^"]*">Customer service</a>', teams)

    journey = admin.get("/journey", params={"period": "all"}).text
    assert re.search(r'<a href="/touchpoints/delivery\?audience=customer">Delivery</a>', journey)
    assert 'data-touchpoint="delivery"' in journey  # the code stays where code reads it
    stages = _texts(journey, r'<th scope="rowgroup"[^>]*>(.*?)</th>')
    assert "Receive" in stages and "receive" not in stages
    ticks = _texts(journey, r'<text [^>]*class="tick[^"]*">(.*?)</text>')
    assert "Website" in ticks and not any("_" in t for t in ticks)  # the chart's labels
    assert "Receive" in _texts(journey, r'<text [^>]*class="stage-label">(.*?)</text>')

    theme = admin.get("/touchpoints/pay_benefits", params={"audience": "employee", "period": "all"}).text
    assert "<h1>Theme: Pay &amp; benefits</h1>" in theme and "<title>Pay &amp; benefits · VOC</title>" in theme
    assert 'aria-label="Mean sentiment per week at Pay &amp; benefits' in theme  # a chart's text alternative
    explorer = admin.get("/feedback").text
    assert '<option value="delivery">Delivery</option>' in explorer  # the filter still sends the code
    assert '<option value="functional">Functional</option>' in explorer
    switch = admin.get("/").text
    assert '<option value="customer" selected>Customer</option>' in switch

    # The API and the digests keep their codes.
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {make_api_key(settings, 'admin')}"
    rows = api.get("/v1/trends", params={"audience": "employee", "by": "touchpoint", "interval": "week"}).json()
    assert "day_to_day" in {r["value_code"] for r in rows["rows"]} | {r.get("touchpoint") for r in rows["rows"]}
    assert "Day to day" not in str(rows)
    steps = api.get("/v1/journey").json()["steps"]
    assert "delivery" in {s["touchpoint"] for s in steps}
