"""The web app through the real ASGI app (TestClient) on the tagged demo data: sign-in, sessions,
scopes, CSRF, headers, escaping, and that its numbers (and hidden employee groups) are the API's."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import make_api_key
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api.main import create_app
from feedback.accounts import create_user
from feedback.db import session_scope, utcnow
from feedback.models import FeedbackItem, WebSession

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HIDDEN = "fewer than 5 responses"


@pytest.fixture
def app(tagged_demo: dict[str, Any]) -> Iterator[Any]:
    app = create_app(tagged_demo["settings"])

    def _no_model() -> None:
        raise AssertionError("the web app must not load a model")

    app.state.tagger_provider = _no_model
    yield app


def _browser(app: Any) -> TestClient:
    return TestClient(app, follow_redirects=False)


def sign_in(app: Any, settings: Any, *scopes: str) -> TestClient:
    """A browser signed in with a fresh key of `scopes`."""
    browser = _browser(app)
    key = make_api_key(settings, *scopes, name="+".join(scopes))
    token = CSRF.search(browser.get("/signin").text).group(1)
    answer = browser.post("/signin", data={"csrf_token": token, "api_key": key, "next": "/"})
    assert answer.status_code == 303, answer.text
    return browser


def csrf_of(page: str) -> str:
    return CSRF.search(page).group(1)


def test_sign_in_with_a_key_sets_a_safe_cookie_and_sign_out_ends_the_session(app, tagged_demo) -> None:
    browser = _browser(app)
    answer = browser.get("/journey?audience=customer")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin?next=%2Fjourney")
    page = browser.get("/signin")
    assert page.status_code == 200 and "voc_csrf" in page.headers["set-cookie"]
    key = make_api_key(tagged_demo["settings"], "cx", name="cx lead")
    answer = browser.post("/signin", data={"csrf_token": csrf_of(page.text), "api_key": key,
                                           "next": "/journey?audience=customer"})
    assert answer.status_code == 303 and answer.headers["location"] == "/journey?audience=customer"
    cookie = answer.headers["set-cookie"].lower()
    assert "voc_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie and "max-age=43200" in cookie
    stolen = browser.cookies.get("voc_session")
    with session_scope(tagged_demo["engine"]) as session:  # only a hash of the token is stored
        stored = session.scalars(select(WebSession.token_hash)).all()
    assert stolen not in stored and len(stored) == 1
    page = browser.get("/journey?audience=customer")
    assert page.status_code == 200 and "cx lead" in page.text
    # Sign out needs the form's token; then the old cookie opens nothing.
    assert browser.post("/signout", data={"csrf_token": "forged"}).status_code == 403
    answer = browser.post("/signout", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303
    replay = _browser(app)
    replay.cookies.set("voc_session", stolen)
    assert replay.get("/").status_code == 303


def test_no_open_redirect_after_sign_in(app, tagged_demo) -> None:
    browser = _browser(app)
    page = browser.get("/signin")
    key = make_api_key(tagged_demo["settings"], "cx")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        answer = browser.post("/signin", data={"csrf_token": csrf_of(page.text), "api_key": key, "next": target})
        assert answer.headers["location"] == "/"


def test_sign_in_needs_the_csrf_token_and_is_rate_limited(app, tagged_demo) -> None:
    browser = _browser(app)
    key = make_api_key(tagged_demo["settings"], "cx")
    browser.get("/signin")
    assert browser.post("/signin", data={"api_key": key}).status_code == 403  # no token
    token = csrf_of(browser.get("/signin").text)
    limit = tagged_demo["settings"].web.sign_in_attempts
    for _ in range(limit):
        answer = browser.post("/signin", data={"csrf_token": token, "api_key": "voc_abcdefgh_" + "x" * 30})
        assert answer.status_code == 401 and "not valid" in answer.text
    answer = browser.post("/signin", data={"csrf_token": token, "api_key": key})  # even the right key waits
    assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0


def test_sign_in_with_a_password(app, tagged_demo) -> None:
    with session_scope(tagged_demo["engine"]) as session:
        create_user(session, username="Hanna.HR", password="long enough password", scopes=["hr"])
    browser = _browser(app)
    token = csrf_of(browser.get("/signin").text)
    wrong = browser.post("/signin", data={"csrf_token": token, "username": "hanna.hr", "password": "nope nope nope"})
    assert wrong.status_code == 401
    answer = browser.post("/signin", data={"csrf_token": token, "username": "hanna.hr",
                                           "password": "long enough password"})
    assert answer.status_code == 303
    assert browser.get("/employee").status_code == 200
    assert browser.get("/?audience=customer").status_code == 403


def test_sessions_expire(app, tagged_demo) -> None:
    browser = sign_in(app, tagged_demo["settings"], "cx")
    assert browser.get("/").status_code == 200
    with session_scope(tagged_demo["engine"]) as session:
        session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert browser.get("/").status_code == 303


def test_revoking_the_key_ends_its_sessions(app, tagged_demo) -> None:
    from feedback.apikeys import revoke_key
    from feedback.models import ApiKey

    browser = sign_in(app, tagged_demo["settings"], "admin")
    with session_scope(tagged_demo["engine"]) as session:
        prefix = session.scalars(select(ApiKey.prefix).order_by(ApiKey.id.desc())).first()
        revoke_key(session, prefix)
    assert browser.get("/").status_code == 303


PAGES = ["/", "/journey", "/touchpoints/delivery", "/topics", "/feedback", "/feedback?q=swiftship", "/digests",
         "/quotes?touchpoint=delivery"]


def test_scopes_decide_what_a_session_sees(app, tagged_demo) -> None:
    settings = tagged_demo["settings"]
    with session_scope(tagged_demo["engine"]) as session:
        employee_item = session.scalar(select(FeedbackItem.id).where(FeedbackItem.audience == "employee"))
        customer_item = session.scalar(select(FeedbackItem.id).where(FeedbackItem.audience == "customer"))
    cx = sign_in(app, settings, "cx")
    for page in PAGES:
        assert cx.get(page).status_code == 200, page
    assert cx.get(f"/feedback/{customer_item}").status_code == 200
    assert cx.get(f"/feedback/{employee_item}").status_code == 404  # looks absent, as in the API
    for page in ("/employee", "/?audience=employee", "/journey?audience=employee", "/topics?audience=employee",
                 "/feedback?audience=employee", "/digests?audience=employee", "/sources"):
        assert cx.get(page).status_code == 403, page
    hr = sign_in(app, settings, "hr")
    for page in ("/", "/employee", "/journey", "/feedback", "/quotes?org_unit=warehouse"):
        answer = hr.get(page)
        assert answer.status_code == 200, page
    assert 'href="/employee"' in hr.get("/").text
    assert hr.get("/?audience=customer").status_code == 403
    assert hr.get(f"/feedback/{customer_item}").status_code == 404
    assert hr.get("/sources").status_code == 403
    bi = sign_in(app, settings, "bi")
    answer = bi.get("/")
    assert answer.status_code == 403 and "may read no pages" in answer.text
    admin = sign_in(app, settings, "admin")
    for page in [*PAGES, "/employee", "/sources", f"/feedback/{employee_item}", "/?audience=employee"]:
        assert admin.get(page).status_code == 200, page


def test_every_page_sends_a_strict_content_security_policy(app, tagged_demo) -> None:
    browser = sign_in(app, tagged_demo["settings"], "admin")
    for page in [*PAGES, "/employee", "/sources", "/signin", "/static/app.css"]:
        answer = browser.get(page)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in answer.text and " style=" not in answer.text, page  # nothing inline
    assert "content-security-policy" not in TestClient(app).get("/health").headers  # the API is left alone


def test_forms_without_the_csrf_token_are_refused(app, tagged_demo) -> None:
    browser = sign_in(app, tagged_demo["settings"], "admin")
    for path, form in (("/topics/1/rename", {"label": "x"}), ("/topics/1/pin", {"pinned": "true"}),
                       ("/topics/1/merge", {"into": "2"}), ("/sources/dead-letters/retry", {}),
                       ("/signout", {})):
        assert browser.post(path, data=form).status_code == 403, path
        assert browser.post(path, data={**form, "csrf_token": "not the token"}).status_code == 403, path


def test_feedback_text_is_escaped(app, tagged_demo) -> None:
    settings = tagged_demo["settings"]
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {make_api_key(settings, 'admin')}"
    hostile = '<script>alert("pwned")</script><img src=x onerror=alert(1)> "quoted" & more'
    answer = api.post("/v1/feedback", json={"source": "web-test", "audience": "customer",
                                            "items": [{"id": "x1", "text": hostile, "touchpoint": "<b>bold</b>"}]})
    assert answer.status_code == 200, answer.text
    browser = sign_in(app, settings, "cx")
    listing = browser.get("/feedback", params={"q": "pwned"}).text
    assert "<script>alert" not in listing and "<img src=x" not in listing
    assert html.escape(hostile, quote=False) in listing or "&lt;script&gt;alert(" in listing
    item_id = re.search(r'href="/feedback/(\d+)"', listing).group(1)
    page = browser.get(f"/feedback/{item_id}").text
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "<b>bold</b>" not in page


def _page_cells(page: str) -> dict[str, list[str]]:
    """The employee table: group code -> its cells' text."""
    out = {}
    for code, row in re.findall(r'<tr data-group="([^"]+)">(.*?)</tr>', page, re.S):
        cells = re.findall(r"<td>(.*?)</td>", row, re.S)
        out[html.unescape(code)] = [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]
    return out


def test_employee_view_hides_exactly_what_the_api_hides(app, tagged_demo) -> None:
    settings = tagged_demo["settings"]
    browser = sign_in(app, settings, "hr")
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {make_api_key(settings, 'hr')}"
    checked_hidden = 0
    for params in ({"by": "org_unit"}, {"by": "segment"},
                   {"by": "touchpoint", "filter_by": "org_unit", "filter_value": "warehouse"},
                   {"by": "touchpoint", "filter_by": "org_unit", "filter_value": "marketing"}):
        page = browser.get("/employee", params={**params, "period": "all"})
        assert page.status_code == 200
        cells = _page_cells(page.text)
        query = {"audience": "employee", "by": params["by"], "interval": "week"}
        if "filter_by" in params:
            query[params["filter_by"]] = params["filter_value"]
        rows = api.get("/v1/trends", params=query).json()["rows"]
        labels = sorted({r["period_label"] for r in rows})
        for row in rows:
            shown = cells.get(row["value_code"])
            if shown is None:  # a group hidden in every week has no numbers to show
                assert row["suppressed"]
                continue
            cell = shown[labels.index(row["period_label"])]
            if row["suppressed"]:
                assert cell == HIDDEN, (params, row["period_label"], row["value_code"])
                checked_hidden += 1
            else:  # the same number as the API, and its n
                shown_value = f"{row['mean_sentiment']:.2f}".replace("-0.00", "0.00")  # never "-0.00"
                assert cell.startswith(shown_value) and f"({row['n']})" in cell
    assert checked_hidden > 0  # marketing (about 6 a week) is hidden somewhere
    # Combining filters is refused, as the API refuses it, rather than narrowing the group.
    page = browser.get("/quotes", params={"audience": "employee", "org_unit": "warehouse", "segment": "<1y"})
    assert "one" in page.text.lower() and "<blockquote>" not in page.text


def test_journey_and_overview_numbers_are_the_apis(app, tagged_demo) -> None:
    settings = tagged_demo["settings"]
    browser = sign_in(app, settings, "cx")
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {make_api_key(settings, 'cx')}"
    page = browser.get("/journey", params={"period": "custom", "start": "2026-09-21", "end": "2026-11-16"}).text
    body = api.get("/v1/journey", params={"start": "2026-09-21T00:00:00Z", "end": "2026-11-16T00:00:00Z"}).json()
    for step in body["steps"]:
        row = re.search(rf'<tr class="[^"]*" data-touchpoint="{re.escape(step["touchpoint"])}">(.*?)</tr>',
                        page, re.S)
        assert row, step["touchpoint"]
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row.group(1), re.S)]
        assert cells[0].startswith(f"{step['net_sentiment']:.2f}"), (step["touchpoint"], cells[0])
    assert body["worst"]["touchpoint"] == "delivery" and 'id="worst"' in page and ">Delivery</a>" in page
    overview = browser.get("/", params={"week": "2026-09-21", "metric": "nps"}).text
    compare = api.get("/v1/compare", params={"current_start": "2026-09-21T00:00:00Z",
                                             "current_end": "2026-09-28T00:00:00Z",
                                             "baseline_start": "2026-09-14T00:00:00Z",
                                             "baseline_end": "2026-09-21T00:00:00Z", "metric": "nps"}).json()
    delivery = next(r for r in compare["rows"] if r["touchpoint"] == "delivery")
    assert f">{delivery['current']['value']:.0f}</a>" in overview
    assert f"{delivery['change']:+.0f}" in overview


def test_empty_form_fields_are_no_filter(app, tagged_demo) -> None:
    browser = sign_in(app, tagged_demo["settings"], "admin")
    for page in ("/journey?period=8w&start=&end=&metric=nps", "/feedback?q=&since=&until=&touchpoint=",
                 "/touchpoints/delivery?period=12w&start=&end=&sentiment=&quotes_since=&quotes_until=",
                 "/employee?period=12w&start=&end=", "/?week="):
        assert browser.get(page).status_code == 200, page


ITEM_LINK = re.compile(r'href="/feedback/\d+"')


def test_hr_explorer_singles_no_one_out(app, tagged_demo) -> None:
    """hr reads employee comments by /v1/quotes' rules: a narrow slice (one week of onboarding,
    one day of a team) shows nothing, a wide one shows quotes without ids, dates or teams, and an
    item's page leaves out what identifies its author (docs/privacy.md rule 5)."""
    settings = tagged_demo["settings"]
    hr = sign_in(app, settings, "hr")
    for narrow in ({"touchpoint": "onboarding", "since": "2026-10-26", "until": "2026-11-01"},
                   {"org_unit": "marketing", "since": "2026-11-10", "until": "2026-11-10"}):
        page = hr.get("/feedback", params={"audience": "employee", **narrow})
        assert page.status_code == 200
        assert "<blockquote>" not in page.text and not ITEM_LINK.search(page.text), narrow
        assert "at least 10 people" in page.text
    wide = hr.get("/feedback", params={"audience": "employee"}).text
    comments = re.search(r'<ul class="quotes" id="employee-comments">(.*?)</ul>', wide, re.S).group(1)
    assert comments.count("<blockquote>") >= 5 and not ITEM_LINK.search(comments)
    assert not re.search(r"\d{4}-\d{2}-\d{2}|(?<!&)#\d+|Team|Tenure", comments)
    assert "one" in hr.get("/feedback", params={"audience": "employee", "org_unit": "warehouse",
                                                "segment": "<1y"}).text.lower()
    searched = hr.get("/feedback", params={"audience": "employee", "q": "manager"}).text
    assert "not offered" in searched
    with session_scope(tagged_demo["engine"]) as session:
        item = session.scalars(select(FeedbackItem).where(FeedbackItem.audience == "employee",
                                                          FeedbackItem.org_unit.is_not(None),
                                                          FeedbackItem.nps.is_not(None))).first()
        item_id, when = item.id, item.created_at
    page = hr.get(f"/feedback/{item_id}").text
    for shown in ("<dt>Team</dt>", "<dt>Segment</dt>", "<dt>Created</dt>", "<dt>NPS / CSAT / stars</dt>",
                  when.date().isoformat()):
        assert shown not in page, shown
    assert 'name="kind" value="sentiment"' in page  # hr still corrects its labels
    queue = hr.get("/corrections", params={"audience": "employee"}).text
    assert not re.search(r"Item #\d+</a>, \d{4}-", queue)
    admin = sign_in(app, settings, "admin")  # admin reads the items themselves
    assert ITEM_LINK.search(admin.get("/feedback", params={"audience": "employee"}).text)
    assert "<dt>Team</dt>" in admin.get(f"/feedback/{item_id}").text


def test_typed_dates_out_of_range_or_backwards_are_a_422_page(app, tagged_demo) -> None:
    """Dates that used to overflow the week arithmetic (500) or fall back to 8 weeks without a
    word: a 422 page that says why."""
    browser = sign_in(app, tagged_demo["settings"], "admin")
    for page, said in (("/?week=9999-12-31", "1900-01-01 to 2999-12-31"),
                       ("/journey?period=custom&start=0001-01-01&end=0001-02-01", "1900-01-01 to 2999-12-31"),
                       ("/touchpoints/delivery?quotes_since=0001-01-01", "1900-01-01 to 2999-12-31"),
                       ("/journey?period=custom&start=2026-10-01&end=2026-09-01", "must come after"),
                       ("/employee?period=custom&start=2026-10-01", "needs both dates")):
        answer = browser.get(page)
        assert answer.status_code == 422 and said in answer.text and "<h1" in answer.text, (page, answer.text[-400:])
    # A week without feedback says so (not "fewer than 5 responses").
    empty = browser.get("/?week=1900-01-01").text
    assert "No customer feedback in week 1900-W01" in empty
    assert "No customer feedback in week" not in browser.get("/?week=2026-09-21").text


def test_overview_volume_is_per_week(app, tagged_demo) -> None:
    """Volume on the overview: this week's count against last week's (change in items a week) and
    against the 8-week baseline's weekly mean, not its sum."""
    settings = tagged_demo["settings"]
    browser = sign_in(app, settings, "cx")
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {make_api_key(settings, 'cx')}"
    page = browser.get("/", params={"week": "2026-10-05", "metric": "volume"}).text
    ranges = {"current_start": "2026-10-05T00:00:00Z", "current_end": "2026-10-12T00:00:00Z", "metric": "volume"}
    last = api.get("/v1/compare", params={**ranges, "baseline_start": "2026-09-28T00:00:00Z",
                                          "baseline_end": "2026-10-05T00:00:00Z"}).json()
    base = api.get("/v1/compare", params={**ranges, "baseline_start": "2026-08-10T00:00:00Z",
                                          "baseline_end": "2026-10-05T00:00:00Z"}).json()
    row = re.search(r'<tr class="total">(.*?)</tr>', page, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    now, before = last["rows"][0]["current"]["n"], last["rows"][0]["baseline"]["n"]
    weeks8 = base["rows"][0]["baseline"]["n"]
    assert cells[0] == str(now) and "[" not in cells[0]  # a count has no interval here
    assert cells[2] == str(before) and cells[3] == f"{now - before:+.0f}"
    assert cells[4] == f"{weeks8 / 8:.1f} a week" and cells[5] == f"{now - weeks8 / 8:+.1f}", cells


def test_numbers_print_the_same_way_everywhere(app, tagged_demo) -> None:
    """No "-0.00", p-values as "p < 0.001" or two significant digits, NPS whole, times in minutes."""
    from api.web.pages import _num, _p_value, _pct

    assert _num(-0.001) == "0.00" and _num(-0.004, signed=True) == "+0.00" and _pct(-0.001) == "0%"
    assert _p_value(0.0) == "p < 0.001" and _p_value(4e-05) == "p < 0.001" and _p_value(0.01234) == "p = 0.012"
    browser = sign_in(app, tagged_demo["settings"], "admin")
    pages = ["/", "/journey", "/journey?period=all", "/touchpoints/delivery", "/employee", "/topics",
             "/?audience=employee", "/journey?audience=employee"]
    for page in pages:
        text = browser.get(page).text
        assert not re.search(r"(?<![\w.])-0\.0+(?!\d*[1-9])\b", text), page
        assert not re.search(r"p = \d(\.\d+)?e-?\d+|p = 0\.0(?!\d)", text), page
    journey = browser.get("/journey").text
    assert not re.search(r"NPS -?\d+\.\d", journey)  # moments of truth: whole, as the table
    with session_scope(tagged_demo["engine"]) as session:
        item_id = session.scalar(select(FeedbackItem.id).where(FeedbackItem.audience == "customer"))
    item = browser.get(f"/feedback/{item_id}").text
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d+", item) and " UTC" in item


def test_filters_offer_the_known_values_and_refuse_unknown_ones(app, tagged_demo) -> None:
    """Quote filters are menus of known emotions, needs and topics; a typed value matching none
    says so (it used to show "No quotes"); the explorer's touchpoint is a menu and its search hint
    describes the engine's search."""
    browser = sign_in(app, tagged_demo["settings"], "cx")
    page = browser.get("/touchpoints/delivery").text
    assert '<select id="f-emotion" name="emotion">' in page and '<option value="joy">Joy</option>' in page
    assert '<select id="f-need" name="need">' in page and '<select id="f-topic" name="topic">' in page
    for typo, said in (({"emotion": "joyy"}, "no emotion is called &#39;joyy&#39;"),
                       ({"topic": "Ripped Open"}, "no topic is called")):
        answer = browser.get("/touchpoints/delivery", params=typo).text
        assert said in answer and 'role="alert"' in answer, typo
    assert "<blockquote>" in browser.get("/touchpoints/delivery", params={"emotion": "Annoyance"}).text
    explorer = browser.get("/feedback").text
    assert '<select id="ft" name="touchpoint">' in explorer and '<option value="delivery">' in explorer
    assert "parts of words (substrings)" in explorer  # the demo runs on SQLite


def test_the_explorer_filters_on_the_served_tags_newest_first(app, tagged_demo) -> None:
    """Sentiment, emotion, need and topic filters read the tags every page serves; the list is
    newest first (or oldest), pages by its order; an unknown value is a 422 page that says why."""
    from sqlalchemy import select

    from feedback.analytics.served import ServedTag
    from feedback.db import make_engine, session_scope
    from feedback.models import FeedbackItem

    browser = sign_in(app, tagged_demo["settings"], "cx")
    ids = lambda page: [int(i) for i in re.findall(r'href="/feedback/(\d+)"', page)]  # noqa: E731
    newest = ids(browser.get("/feedback").text)
    assert newest == sorted(newest, reverse=True) and len(newest) > 10
    oldest = ids(browser.get("/feedback", params={"order": "oldest"}).text)
    assert oldest == sorted(oldest) and oldest[0] < newest[-1]
    following = ids(browser.get("/feedback", params={"cursor": newest[-1]}).text)
    assert following and max(following) < newest[-1]

    engine = make_engine(tagged_demo["settings"].database_url)
    with session_scope(engine) as session:
        negative = set(session.scalars(select(ServedTag.item_id).join(
            FeedbackItem, FeedbackItem.id == ServedTag.item_id).where(
            ServedTag.sentiment == "negative", FeedbackItem.audience == "customer")))
    engine.dispose()
    shown = ids(browser.get("/feedback", params={"sentiment": "negative"}).text)
    assert shown and set(shown) <= negative
    angry = browser.get("/feedback", params={"emotion": "annoyance", "need": "functional"})
    assert angry.status_code == 200 and ids(angry.text)
    assert '<option value="annoyance" selected>' in angry.text
    for bad in ({"emotion": "joyy"}, {"need": "love"}, {"topic": "no such topic"}):
        answer = browser.get("/feedback", params=bad)
        assert answer.status_code == 422 and "pick one from the menus" in answer.text, bad
