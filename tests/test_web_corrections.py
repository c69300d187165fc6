"""Corrections in the web app through the real ASGI app (TestClient) on the tagged demo data: the
control beside each tag of the item page, the label queue, withdrawing, refusals that change
nothing, scopes and CSRF, that analytics serve a label corrected on a page, and the digest
downloads."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from conftest import make_api_key
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import func, select
from test_web import _browser, csrf_of, sign_in
from test_web import app as app  # noqa: F401, PLC0414 (the fixture: the app on the tagged demo)

from feedback.db import session_scope
from feedback.models import Correction, FeedbackItem, Tag

KINDS = ("sentiment", "emotion", "need", "touchpoint", "topic")


def _item(engine: Any, audience: str, *, inferred_touchpoint: bool = False) -> dict[str, Any]:
    """A tagged item of `audience` (one whose touchpoint the model inferred, if asked)."""
    with session_scope(engine) as session:
        stmt = (select(FeedbackItem, Tag).join(Tag, Tag.item_id == FeedbackItem.id)
                .where(FeedbackItem.audience == audience).order_by(FeedbackItem.id))
        if inferred_touchpoint:
            stmt = stmt.where(FeedbackItem.touchpoint.is_(None), Tag.touchpoint.is_not(None))
        item, tag = session.execute(stmt.limit(1)).one()
        return {"id": item.id, "created_at": item.created_at, "touchpoint": item.touchpoint,
                "sentiment": tag.sentiment, "inferred": tag.touchpoint, "versions": dict(tag.model_versions)}


def _corrections(engine: Any) -> list[tuple[int, str, str, bool]]:
    with session_scope(engine) as session:
        return [(r.item_id, r.kind, r.label, r.withdrawn_at is None)
                for r in session.scalars(select(Correction).order_by(Correction.id))]


def _post(browser: TestClient, item_id: int, page: str, **form: Any) -> Any:
    return browser.post(f"/feedback/{item_id}/corrections", data={"csrf_token": csrf_of(page), **form})


def test_the_item_page_shows_each_tag_with_the_model_label_version_and_a_form(app, tagged_demo) -> None:
    item = _item(tagged_demo["engine"], "customer", inferred_touchpoint=True)
    browser = sign_in(app, tagged_demo["settings"], "cx")
    page = browser.get(f"/feedback/{item['id']}")
    assert page.status_code == 200
    for kind in KINDS:
        section = re.search(rf'<section class="tag-control" id="correct-{kind}".*?</section>', page.text, re.S)
        assert section, kind
        assert "none: the model's label is used" in section.group(0), kind
    sentiment = re.search(r'id="correct-sentiment".*?</section>', page.text, re.S).group(0)
    assert f">{item['sentiment']}, confidence 0." in sentiment and item["versions"]["sentiment"] in sentiment
    assert f'<option value="{item["sentiment"]}" selected>' in sentiment  # the model's label preselected
    touchpoint = re.search(r'id="correct-touchpoint".*?</section>', page.text, re.S).group(0)
    assert item["inferred"] in touchpoint and item["versions"]["touchpoint"] in touchpoint
    emotion = re.search(r'id="correct-emotion".*?</section>', page.text, re.S).group(0)
    assert emotion.count('type="checkbox" name="labels"') == 28
    # Every correction form carries the session's CSRF token.
    forms = re.findall(r'<form method="post" action="/feedback/\d+/corrections".*?</form>', page.text, re.S)
    assert len(forms) == 4  # topic: the demo has no topics fitted, so there is nothing to choose
    assert all('name="csrf_token"' in f for f in forms)
    assert "no active customer topics" in page.text
    assert 'href="/corrections?audience=customer"' in page.text  # the queue, in the nav and the hint


def test_a_correction_made_on_the_item_page_is_what_the_analytics_serve(app, tagged_demo) -> None:
    settings, engine = tagged_demo["settings"], tagged_demo["engine"]
    item = _item(engine, "customer", inferred_touchpoint=True)
    other = next(t for t in ("delivery", "billing", "website", "support") if t != item["inferred"])
    day = item["created_at"].date()
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {make_api_key(settings, 'cx')}"
    params = {"by": "touchpoint", "interval": "day", "start": f"{day}T00:00:00Z",
              "end": f"{day + timedelta(days=1)}T00:00:00Z"}

    def counts() -> tuple[dict[str, int], int]:
        body = api.get("/v1/trends", params=params).json()
        return {r["touchpoint"]: r["n"] for r in body["rows"]}, body["corrected_labels"]

    before, corrected = counts()
    assert corrected == 0 and before[item["inferred"]] >= 1
    browser = sign_in(app, settings, "cx")
    page = browser.get(f"/feedback/{item['id']}").text
    answer = _post(browser, item["id"], page, kind="touchpoint", label=other)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/feedback/{item['id']}?done=corrected&kind=touchpoint#correct-touchpoint"
    after, corrected = counts()
    assert corrected == 1
    assert after.get(item["inferred"], 0) == before[item["inferred"]] - 1
    assert after[other] == before.get(other, 0) + 1
    shown = browser.get(answer.headers["location"]).text
    assert "Touchpoint corrected" in shown and 'role="status"' in shown
    control = re.search(r'id="correct-touchpoint".*?</section>', shown, re.S).group(0)
    assert f"<strong>{other}</strong>, by cx" in control and "Withdraw" in control
    assert f'<option value="{other}" selected>' in control  # the correction, not the model, preselected
    # The touchpoint page (and its quotes) reads the same served labels.
    week = browser.get(f"/touchpoints/{other}", params={"period": "custom", "start": str(day),
                                                        "end": str(day + timedelta(days=1))})
    assert week.status_code == 200
    # Withdraw from the page: the model's label is served again, and the row stays as the audit.
    withdraw = re.search(r'action="(/corrections/\d+/withdraw)"', control).group(1)
    answer = browser.post(withdraw, data={"csrf_token": csrf_of(shown)})
    assert answer.status_code == 303 and "done=withdrawn" in answer.headers["location"]
    assert counts() == (before, 0)
    shown = browser.get(answer.headers["location"]).text
    control = re.search(r'id="correct-touchpoint".*?</section>', shown, re.S).group(0)
    assert "none: the model's label is used" in control and "withdrawn by cx" in control
    assert _corrections(engine) == [(item["id"], "touchpoint", other, False)]
    assert browser.post(withdraw, data={"csrf_token": csrf_of(shown)}).status_code == 409  # already withdrawn


def test_emotion_and_need_sets_are_corrected_whole(app, tagged_demo) -> None:
    item = _item(tagged_demo["engine"], "customer")
    browser = sign_in(app, tagged_demo["settings"], "cx")
    page = browser.get(f"/feedback/{item['id']}").text
    assert _post(browser, item["id"], page, kind="emotion", labels=["annoyance", "disappointment"]).status_code == 303
    assert _post(browser, item["id"], page, kind="need").status_code == 303  # nothing ticked: no need
    assert sorted(c[1:] for c in _corrections(tagged_demo["engine"])) == [
        ("emotion", "annoyance|disappointment", True), ("need", "", True)]
    shown = browser.get(f"/feedback/{item['id']}").text
    emotion = re.search(r'id="correct-emotion".*?</section>', shown, re.S).group(0)
    assert "<strong>annoyance, disappointment</strong>" in emotion
    assert 'value="annoyance" checked' in emotion and 'value="joy" checked' not in emotion
    need = re.search(r'id="correct-need".*?</section>', shown, re.S).group(0)
    assert "<strong>none</strong>" in need and "checked" not in need


def test_a_topic_correction_names_an_active_topic_and_moves_the_topic_trend(app, tagged_demo) -> None:
    from feedback.topics.service import refit

    settings, engine = tagged_demo["settings"], tagged_demo["engine"]
    with session_scope(engine) as session:
        refit(session, var_dir=settings.var_dir, audience="customer")
    with session_scope(engine) as session:
        item_id, topic_id = session.execute(select(Tag.item_id, Tag.topic_id).join(
            FeedbackItem, FeedbackItem.id == Tag.item_id).where(
            FeedbackItem.audience == "customer", Tag.topic_id.is_not(None)).order_by(Tag.item_id).limit(1)).one()
        created = session.get(FeedbackItem, item_id).created_at
    browser = sign_in(app, settings, "cx")
    page = browser.get(f"/feedback/{item_id}").text
    control = re.search(r'id="correct-topic".*?</section>', page, re.S).group(0)
    choices = re.findall(r'<option value="(\d+)"( selected)?>', control)
    assert len(choices) > 2 and (str(topic_id), " selected") in choices  # the model's topic preselected
    other = next(int(value) for value, _ in choices if int(value) != topic_id)
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {make_api_key(settings, 'cx')}"
    day = created.date()
    params = {"by": "topic", "interval": "day", "start": f"{day}T00:00:00Z",
              "end": f"{day + timedelta(days=1)}T00:00:00Z"}

    def counts() -> dict[str, int]:
        return {r["value_code"]: r["n"] for r in api.get("/v1/trends", params=params).json()["rows"]}

    before = counts()
    assert _post(browser, item_id, page, kind="topic", label=str(other)).status_code == 303
    after = counts()
    assert after.get(str(topic_id), 0) == before[str(topic_id)] - 1
    assert after[str(other)] == before.get(str(other), 0) + 1
    shown = browser.get(f"/feedback/{item_id}").text
    control = re.search(r'id="correct-topic".*?</section>', shown, re.S).group(0)
    assert f"(#{other})</strong>, by cx" in control
    queue = browser.get("/corrections")  # the queue lists served topics by their label
    assert queue.status_code == 200 and "Topic: " in queue.text


def test_refused_corrections_say_why_on_the_page_and_change_nothing(app, tagged_demo) -> None:
    engine = tagged_demo["engine"]
    item = _item(engine, "customer", inferred_touchpoint=True)
    with session_scope(engine) as session:
        given = session.scalar(select(FeedbackItem.id).where(FeedbackItem.audience == "customer",
                                                             FeedbackItem.touchpoint.is_not(None)))
    browser = sign_in(app, tagged_demo["settings"], "cx")
    page = browser.get(f"/feedback/{item['id']}").text
    for form, status, reason in (
        ({"kind": "sentiment", "label": "furious"}, 422, "&#39;furious&#39; is not a sentiment"),
        ({"kind": "mood", "label": "happy"}, 422, "unknown kind &#39;mood&#39;"),
        ({"kind": "emotion"}, 422, "needs at least one label"),
        ({"kind": "emotion", "labels": ["joy", "elation"]}, 422, "&#39;elation&#39; is not an emotion label"),
        ({"kind": "touchpoint", "label": "moon"}, 422, "&#39;moon&#39; is not a touchpoint of customer feedback"),
        ({"kind": "topic", "label": "99999"}, 422, "is not an active customer topic id"),
    ):
        answer = _post(browser, item["id"], page, **form)
        assert answer.status_code == status, form
        assert f"Not saved: {reason}" in answer.text or reason in answer.text, (form, answer.text[-800:])
        assert 'role="alert"' in answer.text and "Feedback item #" in answer.text
    # The source's touchpoint is the truth: no form for it, and a forged post is refused.
    shown = browser.get(f"/feedback/{given}").text
    assert "The source gave this item&#39;s touchpoint" in shown
    assert 'name="kind" value="touchpoint"' not in shown
    answer = _post(browser, given, shown, kind="touchpoint", label="delivery")
    assert answer.status_code == 422 and "correct it in the source" in answer.text
    assert _corrections(engine) == []
    # The same correction twice: 409, the first one stands.
    assert _post(browser, item["id"], page, kind="sentiment", label="negative").status_code == 303
    again = _post(browser, item["id"], page, kind="sentiment", label="negative")
    assert again.status_code == 409 and "already has this sentiment correction" in again.text
    assert _corrections(engine) == [(item["id"], "sentiment", "negative", True)]
    # A different label replaces it; the earlier one is listed as withdrawn.
    assert _post(browser, item["id"], page, kind="sentiment", label="positive").status_code == 303
    shown = browser.get(f"/feedback/{item['id']}").text
    assert "negative, by cx" in shown and "withdrawn by cx" in shown
    assert browser.get(f"/feedback/{item['id'] + 10**9}").status_code == 404
    assert _post(browser, 10**9, page, kind="sentiment", label="negative").status_code == 404


def test_scopes_and_csrf(app, tagged_demo) -> None:
    settings, engine = tagged_demo["settings"], tagged_demo["engine"]
    customer, employee = _item(engine, "customer")["id"], _item(engine, "employee")["id"]
    cx = sign_in(app, settings, "cx")
    page = cx.get(f"/feedback/{customer}").text
    # An employee item looks absent to a cx session, as in the API; nothing is stored.
    refused = _post(cx, employee, page, kind="sentiment", label="negative")
    assert refused.status_code == 404 and "no feedback item" in refused.text
    assert cx.get("/corrections?audience=employee").status_code == 403
    # CSRF: no token, a wrong token, or another session's token: 403.
    form = {"kind": "sentiment", "label": "negative"}
    assert cx.post(f"/feedback/{customer}/corrections", data=form).status_code == 403
    assert cx.post(f"/feedback/{customer}/corrections", data={**form, "csrf_token": "x"}).status_code == 403
    hr = sign_in(app, settings, "hr")
    hr_page = hr.get(f"/feedback/{employee}").text
    assert _post(cx, customer, hr_page, **form).status_code == 403
    assert _corrections(engine) == []
    # hr corrects employee items, not customer ones.
    assert _post(hr, customer, hr_page, **form).status_code == 404
    made = _post(hr, employee, hr_page, **form)
    assert made.status_code == 303
    with session_scope(engine) as session:
        row = session.scalars(select(Correction)).one()
        assert (row.item_id, row.created_by) == (employee, "hr")
        correction_id = row.id
    # cx cannot withdraw it (404, it looks absent); the withdraw form needs the token too.
    assert cx.post(f"/corrections/{correction_id}/withdraw", data={"csrf_token": csrf_of(page)}).status_code == 404
    assert hr.post(f"/corrections/{correction_id}/withdraw").status_code == 403
    assert _corrections(engine) == [(employee, "sentiment", "negative", True)]
    # bi reads no page and corrects nothing; without a session, the sign-in page.
    bi = sign_in(app, settings, "bi")
    assert bi.get("/corrections").status_code == 403
    assert bi.post(f"/feedback/{customer}/corrections", data={**form, "csrf_token": "x"}).status_code == 403
    anonymous = _browser(app)
    answer = anonymous.post(f"/feedback/{customer}/corrections", data=form)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")
    admin = sign_in(app, settings, "admin")
    admin_page = admin.get(f"/feedback/{employee}").text
    assert admin.post(f"/corrections/{correction_id}/withdraw",
                      data={"csrf_token": csrf_of(admin_page)}).status_code == 303
    assert _corrections(engine) == [(employee, "sentiment", "negative", False)]


def test_the_label_queue(app, tagged_demo) -> None:
    settings, engine = tagged_demo["settings"], tagged_demo["engine"]
    cx = sign_in(app, settings, "cx")
    home = cx.get("/").text
    assert '<a href="/corrections?audience=customer"' in home  # in the nav
    page = cx.get("/corrections")
    assert page.status_code == 200 and "Label queue: customer feedback" in page.text
    listed = [int(i) for i in re.findall(r'<li class="suggestion" id="item-\d+" data-item="(\d+)"', page.text)]
    assert len(listed) == 20 and len(set(listed)) == 20
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {make_api_key(settings, 'cx')}"
    suggested = api.get("/v1/corrections/suggestions", params={"audience": "customer", "limit": 20}).json()
    assert listed == [s["item_id"] for s in suggested["suggestions"]]  # the API's choice, in its order
    with session_scope(engine) as session:
        audiences = set(session.scalars(select(FeedbackItem.audience).where(FeedbackItem.id.in_(listed))))
        text = session.get(FeedbackItem, listed[0]).text
    assert audiences == {"customer"}
    assert str(escape(text)) in page.text  # Jinja's escaping
    first = re.search(rf'<li class="suggestion" id="item-{listed[0]}".*?</li>\n', page.text, re.S).group(0)
    assert first.count('name="label"') == 3 and "Sentiment:" in first and "Touchpoint:" in first
    # One click: stored, back to the queue, the item gone from it and listed as a recent correction.
    nxt = html.unescape(re.search(r'name="next" value="([^"]+)"', first).group(1))
    answer = cx.post(f"/feedback/{listed[0]}/corrections",
                     data={"csrf_token": csrf_of(page.text), "kind": "sentiment", "label": "negative", "next": nxt})
    assert answer.status_code == 303
    assert answer.headers["location"] == ("/corrections?audience=customer&kind=sentiment&limit=20"
                                          f"&done={listed[0]}#suggested")
    after = cx.get(answer.headers["location"]).text
    assert f"item #{listed[0]}</a> corrected" in after
    assert f'data-item="{listed[0]}"' not in after
    recent = re.search(r'<table class="items" id="recent-table">.*?</table>', after, re.S).group(0)
    assert f"#{listed[0]}</a>" in recent and "<td>sentiment</td>" in recent and "<td>cx</td>" in recent
    # Withdraw from the queue: back to the queue, the row says who withdrew it.
    withdraw = re.search(r'action="(/corrections/\d+/withdraw)"', recent).group(1)
    nxt = html.unescape(re.search(r'action="/corrections/\d+/withdraw".*?name="next" value="([^"]+)"', recent,
                                  re.S).group(1))
    answer = cx.post(withdraw, data={"csrf_token": csrf_of(after), "next": nxt})
    assert answer.status_code == 303 and "withdrawn=" in answer.headers["location"]
    after = cx.get(answer.headers["location"]).text
    assert "withdrawn by cx" in after and "withdrawn: the model's label is used again" in after
    # The touchpoint queue: a select of the audience's touchpoints, only items without a source touchpoint.
    page = cx.get("/corrections", params={"kind": "touchpoint", "limit": 10}).text
    items = [int(i) for i in re.findall(r'data-item="(\d+)"', page)]
    assert len(items) == 10 and page.count('<option value="unknown"') == 10
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(FeedbackItem).where(
            FeedbackItem.id.in_(items), FeedbackItem.touchpoint.is_not(None))) == 0
    # An open redirect is not possible through `next`.
    answer = cx.post(f"/feedback/{items[0]}/corrections", data={"csrf_token": csrf_of(page), "kind": "touchpoint",
                                                                "label": "unknown", "next": "//evil.example/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    hr = sign_in(app, settings, "hr")
    page = hr.get("/corrections").text
    assert "Label queue: employee feedback" in page and 'href="/corrections?audience=employee"' in page
    assert hr.get("/corrections?audience=customer").status_code == 403
    admin = sign_in(app, settings, "admin")
    assert admin.get("/corrections?audience=employee&kind=touchpoint&limit=50").status_code == 200


def test_names_and_texts_are_escaped_and_nothing_is_inline(app, tagged_demo) -> None:
    settings, engine = tagged_demo["settings"], tagged_demo["engine"]
    item = _item(engine, "customer")
    browser = _browser(app)
    key = make_api_key(settings, "cx", name='<img src=x onerror=alert(1)>')
    token = csrf_of(browser.get("/signin").text)
    assert browser.post("/signin", data={"csrf_token": token, "api_key": key}).status_code == 303
    page = browser.get(f"/feedback/{item['id']}").text
    assert _post(browser, item["id"], page, kind="sentiment", label="neutral").status_code in (303, 409)
    for path in (f"/feedback/{item['id']}", "/corrections"):
        answer = browser.get(path)
        assert "<img src=x" not in answer.text and "&lt;img src=x onerror=alert(1)&gt;" in answer.text, path
        assert "<script>" not in answer.text and " style=" not in answer.text, path
        assert "unsafe-inline" not in answer.headers["content-security-policy"]


@pytest.fixture
def digests(tagged_demo) -> dict[str, Any]:
    from jobs.digests import run_digests

    run_digests(tagged_demo["settings"], week="2026-W39", audiences=("customer", "employee"), send=False)
    return tagged_demo


def test_digests_read_and_download_as_html_and_markdown(app, digests) -> None:
    cx = sign_in(app, digests["settings"], "cx")
    page = cx.get("/digests/2026-W39").text
    links = {html.unescape(text): html.unescape(href)
             for href, text in re.findall(r'<li><a href="([^"]+)"[^>]*>([^<]+)</a></li>', page)}
    assert links["Read it as sent (HTML)"] == "/digests/2026-W39/digest.html?audience=customer"
    assert links["Download HTML"] == "/digests/2026-W39/digest.html?audience=customer&download=1"
    assert links["Read the Markdown"] == "/digests/2026-W39/digest.md?audience=customer&view=1"
    assert links["Download Markdown"] == "/digests/2026-W39/digest.md?audience=customer"
    shown = cx.get(links["Read it as sent (HTML)"])
    assert shown.status_code == 200 and "content-disposition" not in shown.headers
    assert "script-src" not in shown.headers["content-security-policy"]  # the digest's own policy: no script
    saved = cx.get(links["Download HTML"])
    assert saved.text == shown.text
    assert saved.headers["content-disposition"] == 'attachment; filename="voc-digest-customer-2026-W39.html"'
    markdown = cx.get(links["Download Markdown"])
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.headers["content-disposition"] == 'attachment; filename="voc-digest-customer-2026-W39.md"'
    read = cx.get(links["Read the Markdown"])
    assert read.headers["content-type"].startswith("text/plain") and "content-disposition" not in read.headers
    assert read.text == markdown.text and read.text.startswith("#")
    listing = cx.get("/digests").text
    assert listing.count("download=1") == 1 and listing.count("view=1") == 1
    assert cx.get("/digests/2026-W39/digest.md?audience=employee").status_code == 403
    hr = sign_in(app, digests["settings"], "hr")
    assert hr.get("/digests/2026-W39/digest.html?audience=employee&download=1").status_code == 200


def test_the_explorer_shows_the_corrected_labels(app, tagged_demo) -> None:
    """The explorer lists what every page serves: after a correction, the analyst's label (marked),
    not the model's."""
    item = _item(tagged_demo["engine"], "customer", inferred_touchpoint=True)
    browser = sign_in(app, tagged_demo["settings"], "cx")
    sentiment = next(s for s in ("negative", "positive", "neutral") if s != item["sentiment"])
    touchpoint = next(t for t in ("delivery", "billing", "website", "support") if t != item["inferred"])
    page = browser.get(f"/feedback/{item['id']}").text
    for kind, label in (("sentiment", sentiment), ("touchpoint", touchpoint)):
        assert _post(browser, item["id"], page, kind=kind, label=label).status_code == 303
    assert _post(browser, item["id"], page, kind="need", labels=["social"]).status_code == 303
    listing = browser.get("/feedback", params={"cursor": item["id"] - 1, "order": "oldest"}).text
    row = re.search(rf'<tr>\s*<td><a href="/feedback/{item["id"]}">.*?</tr>', listing, re.S).group(0)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    from api.web.names import readable

    assert cells[3] == f"{readable(touchpoint)} corrected" and cells[4] == f"{sentiment} corrected", cells
    assert cells[6] == f"{readable('social')} corrected", cells


def test_the_digest_headline_reads_like_the_other_pages(app, digests) -> None:
    """The headline's caption counts the baseline's weeks (not a Python list of them), shares are
    percentages and NPS a whole number, as on every other page."""
    browser = sign_in(app, digests["settings"], "cx")
    page = browser.get("/digests/2026-W39").text
    caption = re.search(r'<table class="numbers" id="headline-table"><caption>(.*?)</caption>', page, re.S).group(1)
    assert re.search(r"last week and the \d+-week baseline", caption) and "[" not in caption, caption
    rows = {re.sub(r"<[^>]+>", "", head).strip(): [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(
        r"<td>(.*?)</td>", cells, re.S)] for head, cells in re.findall(r'<th scope="row">(.*?)</th>(.*?)</tr>',
                                                                      page.split('id="headline-table"')[1].split(
                                                                          "</table>")[0], re.S)}
    share = next(cells for name, cells in rows.items() if name.startswith("Share negative"))
    assert re.fullmatch(r"\d+% \[\d+%, \d+%\]", share[0]) and share[1].endswith("%"), share
    assert re.fullmatch(r"-?\d+ \[-?\d+, -?\d+\]", rows["NPS"][0]), rows["NPS"]
