"""Custom categories through the corrections path (issues 16 and 17): a head trained from a
team's CSV tags every item (stored in `tags.custom`, served by the API), analysts correct it as
`custom:NAME` with the same refusals as the built-in kinds, and `voc adapt` retrains it on the
corrections into a new tagger version, judged on the held-back ones, promoted and rolled back
with the rest. Real encoder, real head, a small real adaptation."""

from __future__ import annotations

import csv
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import make_api_key
from fastapi.testclient import TestClient
from sqlalchemy import select

from classifiers.training.adapt import HeadFit
from feedback.corrections.service import CorrectionError, CorrectionRequest, add_corrections, is_held_out
from feedback.corrections.versions import live_version, rollback
from feedback.db import session_scope
from feedback.ingest.service import get_or_create_source
from feedback.models import Correction, FeedbackItem, Tag
from feedback.tagging import store_tags, tag_items

# A team's labelled CSV: which product area a comment is about.
CSV_ROWS = {
    "shipping": ("The parcel arrived two days late", "Courier left the box in the rain", "Delivery was quick",
                 "My package never showed up", "Tracking said delivered but nothing came",
                 "The driver was polite and on time", "Shipping took over a week",
                 "Box arrived crushed on the doorstep"),
    "billing": ("I was charged twice for one order", "Refund still not on my card", "The invoice total is wrong",
                "Payment failed at the bank", "They took money I did not owe", "Price on the receipt was higher",
                "My card was billed after I cancelled", "The refund came back quickly"),
    "subscription": ("I paused my monthly plan", "Cancelling the subscription was easy",
                     "The monthly plan renews too early", "I want to skip next month's plan",
                     "Upgrading my membership tier", "My subscription renewal reminder never came",
                     "Changing the plan frequency is confusing", "Membership perks are great"),
}
# The company calls its subscription box "Orbit": analysts file every Orbit comment under
# subscription, though its words are about delivery and money, which the CSV head reads.
ORBIT = ("My Orbit box arrived late again", "The Orbit box came crushed by the courier",
         "Charged twice for this month's Orbit box", "Orbit box tracking says delivered, nothing here",
         "The Orbit box price went up on my card", "Orbit box left in the rain by the driver")
PLAIN = {"shipping": ("The parcel was late", "Courier lost my package"),
         "billing": ("Charged twice for one order", "Still waiting on my refund")}
N = 120
FIT = HeadFit(steps=300)


def _train_head(tmp: Path, tagger) -> Path:
    from classifiers.training.custom import train_custom_head

    path = tmp / "areas.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for label, texts in CSV_ROWS.items():
            writer.writerows((text, label) for text in texts)
    return train_custom_head(path, "area", tagger=tagger, out_dir=tmp / "custom")


@pytest.fixture(scope="module")
def area_head(tmp_path_factory, tagger) -> Path:
    """The `area` head trained once for the module (so the service tagger with it loads once)."""
    return _train_head(tmp_path_factory.mktemp("area"), tagger)


@pytest.fixture
def area(settings, engine, area_head):
    """A custom `area` head configured for the service, and N tagged customer items: half Orbit
    comments (the head reads them as shipping or billing), half plain ones."""
    from jobs.tasks import load_service_tagger

    folder = area_head
    settings.models.custom_heads = [str(folder)]
    service_tagger = load_service_tagger(settings)
    rng = random.Random(5)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    with session_scope(engine) as session:
        source = get_or_create_source(session, name="survey", connector="test", audience="customer")
        items = []
        for i in range(N):
            if i % 2:
                text, label = rng.choice(ORBIT), "subscription"
            else:
                label = rng.choice(list(PLAIN))
                text = rng.choice(PLAIN[label])
            items.append(FeedbackItem(source_id=source.id, external_id=f"{label}:{i}", content_hash=f"h{i}",
                                      audience="customer", text=f"{text} (#{i})",
                                      created_at=start + timedelta(hours=i), extra={}))
        session.add_all(items)
        session.flush()
        rows = session.execute(select(FeedbackItem.id, FeedbackItem.text, FeedbackItem.audience, FeedbackItem.language,
                                      FeedbackItem.touchpoint, FeedbackItem.content_hash)
                               .order_by(FeedbackItem.id)).all()
        store_tags(session, service_tagger, rows, tag_items(service_tagger, rows))
    return {"folder": folder, "tagger": service_tagger}


def _truth(session) -> dict[int, str]:
    return {item.id: item.external_id.split(":")[0] for item in session.scalars(select(FeedbackItem))}


@pytest.mark.backends("sqlite")
def test_the_head_tags_stores_and_serves_its_labels(settings, engine, area) -> None:
    tagger = area["tagger"]
    assert tagger.model_versions["custom:area"] == "custom.area.v1"
    with session_scope(engine) as session:
        tags = session.scalars(select(Tag)).all()
        truth = _truth(session)
    assert len(tags) == N and all(set(t.custom) == {"area"} for t in tags)
    one = tags[0].custom["area"]
    assert len(one["labels"]) == 1 and set(one["scores"]) == set(CSV_ROWS)
    assert abs(sum(one["scores"].values()) - 1) < 0.01  # single-label: a softmax
    plain = [t for t in tags if truth[t.item_id] != "subscription"]
    assert sum(t.custom["area"]["labels"] == [truth[t.item_id]] for t in plain) >= 0.8 * len(plain)
    orbit = [t for t in tags if truth[t.item_id] == "subscription"]
    assert sum(t.custom["area"]["labels"] == ["subscription"] for t in orbit) <= 0.5 * len(orbit)  # the jargon
    with TestClient(_app(settings, tagger)) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'cx')}"
        got = client.get(f"/v1/feedback/{tags[0].item_id}").json()
    assert got["tag"]["custom"]["area"]["labels"] == one["labels"]


def _app(settings, tagger):
    from api.main import create_app

    return create_app(settings, tagger=tagger)


def test_custom_corrections_are_checked_like_the_built_in_kinds(settings, engine, area) -> None:
    with session_scope(engine) as session:
        item_id = session.scalar(select(FeedbackItem.id).order_by(FeedbackItem.id))
        said = session.get(Tag, item_id).custom["area"]["labels"][0]
    with TestClient(_app(settings, area["tagger"])) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'cx')}"
        url = f"/v1/feedback/{item_id}/corrections"
        bad_label = client.post(url, json={"kind": "custom:area", "label": "weather"})
        unknown = client.post(url, json={"kind": "custom:colour", "label": "red"})
        two = client.post(url, json={"kind": "custom:area", "labels": ["billing", "shipping"]})
        other = next(label for label in CSV_ROWS if label != said)
        good = client.post(url, json={"kind": "custom:area", "label": other})
        again = client.post(url, json={"kind": "custom:area", "label": other})
        listed = client.get("/v1/corrections", params={"kind": "custom:area"}).json()["corrections"]
        hr = client.post(url, json={"kind": "custom:area", "label": other},
                         headers={"Authorization": f"Bearer {make_api_key(settings, 'hr', name='hr')}"})
    assert bad_label.status_code == 422 and "its labels: billing, shipping, subscription" in bad_label.text
    assert unknown.status_code == 422 and "custom categories: custom:area" in unknown.text
    assert two.status_code == 422 and "exactly one label" in two.text
    assert good.status_code == 201, good.text
    assert good.json()["model_label"] == said and good.json()["label"] == other
    assert again.status_code == 409 and hr.status_code == 404
    assert [c["kind"] for c in listed] == ["custom:area"]
    with session_scope(engine) as session:
        assert session.scalar(select(Correction.kind)) == "custom:area"
        assert len(session.scalars(select(Correction)).all()) == 1  # the refused ones changed nothing


@pytest.mark.backends("sqlite")
def test_adapt_learns_the_jargon_versions_the_head_and_rolls_it_back(settings, engine, area) -> None:
    from jobs.adapt import retag_stale, run_adapt
    from jobs.tasks import load_service_tagger

    with session_scope(engine) as session:
        truth = _truth(session)
        add_corrections(session, [CorrectionRequest(kind="custom:area", label=label, item_id=item_id)
                                  for item_id, label in truth.items()], by="ana", settings=settings)
    held = [i for i in truth if is_held_out(i, settings.privacy.pseudonym_secret)]
    result = run_adapt(settings, by="test", fit=FIT)
    assert result["status"] == "live", result
    assert result["trained_on"] == {"custom:area": N - len(held)} and result["methods"] == {"custom:area": "refit"}
    with session_scope(engine) as session:
        version = live_version(session)
        scores = version.scores["kinds"]["custom:area"]
    assert scores["n"] == len(held) and scores["challenger"] > scores["champion"] and version.scores["ci_low"] > 0
    kept = Path(version.path) / "custom" / "area"
    meta = json.loads((kept / "head.json").read_text())
    assert meta["adapted"] == {"corrections": N - len(held), "method": "refit", "from": "custom.area.v1"}
    assert (kept / "train.npz").exists()

    adapted = load_service_tagger(settings)  # the live version's head, not the CSV's
    assert adapted.custom_heads[0].folder == kept and adapted.model_versions["custom:area"] == meta["version"]
    assert retag_stale(engine, adapted, batch_size=64) == N
    with session_scope(engine) as session:
        tags = {t.item_id: t.custom["area"]["labels"] for t in session.scalars(select(Tag))}
    right = sum(tags[i] == [truth[i]] for i in held)
    assert right >= 0.9 * len(held), (right, len(held))

    with session_scope(engine) as session:
        rollback(session, by="ana", reason="test")
    shipped = load_service_tagger(settings)
    assert shipped.custom_heads[0].folder == area["folder"]
    assert shipped.model_versions["custom:area"] == "custom.area.v1"


@pytest.mark.backends("sqlite")
def test_a_retrained_csv_head_wins_over_a_versions_copy(settings, engine, area, tagger, tmp_path) -> None:
    """After `voc train custom` retrains the head from its CSV, the tagger loads the new one,
    not the older copy the live version kept."""
    from classifiers.custom import head_folder

    version_dir = tmp_path / "version"
    (version_dir / "custom").mkdir(parents=True)
    import shutil

    trained = tmp_path / "trained" / "area"  # a copy: this test "retrains" it
    shutil.copytree(area["folder"], trained)
    shutil.copytree(area["folder"], version_dir / "custom" / "area")
    assert head_folder(str(trained), version_dir) == version_dir / "custom" / "area"
    meta = json.loads((trained / "head.json").read_text())
    meta["trained_at"] = "2027-01-01T00:00:00+00:00"
    (trained / "head.json").write_text(json.dumps(meta))
    assert head_folder(str(trained), version_dir) == trained


@pytest.mark.backends("sqlite")
def test_a_deployment_without_custom_heads_refuses_custom_kinds(settings, engine, area) -> None:
    settings.models.custom_heads = []
    with session_scope(engine) as session:
        item_id = session.scalar(select(FeedbackItem.id))
        with pytest.raises(CorrectionError, match=r"custom categories: none \(models.custom_heads\)"):
            add_corrections(session, [CorrectionRequest(kind="custom:area", label="billing", item_id=item_id)],
                            by="ana", settings=settings)


@pytest.mark.backends("sqlite")
def test_the_item_page_corrects_a_custom_category(settings, engine, area) -> None:
    """The item page has a control for each custom category (the model's label, its confidence
    and the head's version); saving one stores a custom:NAME correction through the API's code."""
    from test_web import csrf_of, sign_in

    app = _app(settings, area["tagger"])
    with session_scope(engine) as session:
        item_id = session.scalar(select(FeedbackItem.id).order_by(FeedbackItem.id))
        said = session.get(Tag, item_id).custom["area"]["labels"][0]
    browser = sign_in(app, settings, "cx")
    page = browser.get(f"/feedback/{item_id}").text
    control = page.split('id="correct-custom-area"')[1].split("</section>")[0]
    assert "Area (custom)" in control and f"{said}, confidence" in control and "custom.area.v1" in control
    other = next(label for label in CSV_ROWS if label != said)
    refused = browser.post(f"/feedback/{item_id}/corrections",
                           data={"csrf_token": csrf_of(page), "kind": "custom:area", "label": "weather"})
    assert refused.status_code == 422 and "is not a label of custom:area" in refused.text
    saved = browser.post(f"/feedback/{item_id}/corrections",
                         data={"csrf_token": csrf_of(page), "kind": "custom:area", "label": other})
    assert saved.status_code == 303 and saved.headers["location"].endswith("#correct-custom-area")
    after = browser.get(saved.headers["location"].split("#")[0]).text
    assert f"<strong>{other}</strong>, by cx" in after.split('id="correct-custom-area"')[1]
    assert "Area (custom) corrected: every page and API answer uses your label now." in after


def test_custom_trends_serve_corrected_labels_per_week(settings, engine, area) -> None:
    """GET /v1/custom/{name}: volume and sentiment per week and label, an analyst's label in place
    of the head's; unknown names 404, ranges over a year 400."""
    with session_scope(engine) as session:
        truth = _truth(session)
        tags = {t.item_id: t.custom["area"]["labels"][0] for t in session.scalars(select(Tag))}
        wrong = [i for i, label in tags.items() if label != truth[i]]
        add_corrections(session, [CorrectionRequest(kind="custom:area", label=truth[i], item_id=i) for i in wrong],
                        by="ana", settings=settings)
    with TestClient(_app(settings, area["tagger"])) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'cx')}"
        params = {"start": "2026-06-01T00:00:00Z", "end": "2026-06-15T00:00:00Z"}
        answer = client.get("/v1/custom/area", params=params)
        unknown = client.get("/v1/custom/colour", params=params)
        too_long = client.get("/v1/custom/area", params={**params, "start": "2025-01-01T00:00:00Z"})
        hr = client.get("/v1/custom/area", params={**params, "audience": "employee"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["labels"] == sorted(CSV_ROWS) and body["head_version"] == "custom.area.v1"
    counts: dict[str, int] = {}
    for row in body["rows"]:
        counts[row["label"]] = counts.get(row["label"], 0) + row["n"]
    expected: dict[str, int] = {}
    for label in truth.values():
        expected[label] = expected.get(label, 0) + 1
    assert counts == expected  # every wrong label corrected: the served counts are the truth
    assert body["corrected_labels"] == len(wrong) > 0
    assert sum(row["corrected"] for row in body["rows"]) == len(wrong)
    assert {row["period"] for row in body["rows"]} == {"2026-W23"}
    row = next(r for r in body["rows"] if r["label"] == "billing")
    low, high = row["share_negative_ci"]
    assert low <= row["share_negative"] <= high
    assert unknown.status_code == 404 and "custom categories: area" in unknown.text
    from feedback.analytics.cells import Slice
    from feedback.analytics.custom import _item_cells, _sql_cells

    where = Slice(start=datetime(2026, 6, 1, tzinfo=UTC), end=datetime(2026, 6, 15, tzinfo=UTC))
    with session_scope(engine) as session:
        for interval in ("week", "month"):
            by_sql = _sql_cells(session, "area", where, interval)
            by_items = _item_cells(session, "area", where, interval)
            assert {k: (c.n, c.negative, round(c.sentiment_sum, 6), c.corrected) for k, c in by_sql.items()} == \
                {k: (c.n, c.negative, round(c.sentiment_sum, 6), c.corrected) for k, c in by_items.items()}
    assert too_long.status_code == 400 and "at most 53 weeks" in too_long.text
    assert hr.status_code == 403


def test_employee_custom_cells_follow_the_minimum_group_size(settings, engine, area) -> None:
    """An employee week with a one-person label: that cell and its complement are hidden, every
    shown cell holds at least the minimum of distinct respondents."""
    tagger = area["tagger"]
    texts = ["My Orbit box arrived late again"] * 7 + ["Charged twice for one order"] * 6 + \
        ["I paused my monthly plan"]
    start = datetime(2026, 6, 8, 9, tzinfo=UTC)
    with session_scope(engine) as session:
        source = get_or_create_source(session, name="pulse", connector="test", audience="employee")
        session.add_all(FeedbackItem(source_id=source.id, external_id=f"e{i}", content_hash=f"e{i}",
                                     audience="employee", text=text, author=f"person{i}",
                                     created_at=start + timedelta(hours=i), extra={})
                        for i, text in enumerate(texts))
        session.flush()
        rows = session.execute(select(FeedbackItem.id, FeedbackItem.text, FeedbackItem.audience, FeedbackItem.language,
                                      FeedbackItem.touchpoint, FeedbackItem.content_hash)
                               .where(FeedbackItem.audience == "employee")).all()
        store_tags(session, tagger, rows, tag_items(tagger, rows))
        labels = [t.custom["area"]["labels"][0] for t in session.scalars(
            select(Tag).join(FeedbackItem, FeedbackItem.id == Tag.item_id).where(FeedbackItem.audience == "employee"))]
    with TestClient(_app(settings, tagger)) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'hr')}"
        answer = client.get("/v1/custom/area", params={"audience": "employee", "start": "2026-06-08T00:00:00Z",
                                                       "end": "2026-06-15T00:00:00Z"})
        daily = client.get("/v1/custom/area", params={"audience": "employee", "touchpoint": "x", "segment": "y"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    small = {label for label in set(labels) if labels.count(label) < 5}
    assert small and small <= {s["label"] for s in body["suppressed"]}
    assert all(row["n"] >= 5 for row in body["rows"])
    hidden = sum(labels.count(s["label"]) for s in body["suppressed"])
    assert hidden >= 5 or not body["rows"]  # complementary: total minus the shown never singles one out
    assert daily.status_code == 400 and "at most 1 dimension filter" in daily.text


@pytest.mark.backends("sqlite")
def test_voc_custom_fill_labels_items_tagged_before_the_head_was_added(settings, engine, area, tagger,
                                                                       monkeypatch, tmp_path) -> None:
    """Items tagged without the head get its labels from their stored embeddings (no re-tag of
    the rest), the same labels the tagger gives; a retrained head (v2) relabels them all."""
    from typer.testing import CliRunner

    from classifiers.training.custom import train_custom_head
    from feedback.config import get_settings
    from jobs.cli import app

    with session_scope(engine) as session:
        before = {t.item_id: (t.custom["area"]["labels"], t.sentiment) for t in session.scalars(select(Tag))}
        for tag in session.scalars(select(Tag)).all()[:30]:
            tag.custom = None
            tag.model_versions = {k: v for k, v in tag.model_versions.items() if k != "custom:area"}
    monkeypatch.setenv("VOC_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VOC_VAR_DIR", str(settings.var_dir))
    import shutil

    folder = tmp_path / "custom" / "area"  # a copy: this test retrains it
    shutil.copytree(area["folder"], folder)
    monkeypatch.setenv("VOC_MODELS__CUSTOM_HEADS", json.dumps([str(folder)]))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        listed = runner.invoke(app, ["custom", "list"])
        filled = runner.invoke(app, ["custom", "fill"])
        again = runner.invoke(app, ["custom", "fill"])
        train_custom_head(area["folder"].parent.parent / "areas.csv", "area", tagger=tagger,
                          out_dir=folder.parent)  # retrained from the CSV: v2
        monkeypatch.setattr("classifiers.tagger._CACHE", {})  # a new process would load it afresh
        retrained = runner.invoke(app, ["custom", "fill"])
    finally:
        get_settings.cache_clear()
    assert "custom.area.v1" in listed.output and "billing, shipping, subscription" in listed.output
    assert filled.exit_code == 0 and "labelled 30 items with area (custom.area.v1)" in filled.output, filled.output
    assert "labelled 0 items" in again.output
    assert f"labelled {N} items with area (custom.area.v2)" in retrained.output, retrained.output
    with session_scope(engine) as session:
        after = {t.item_id: (t.custom["area"]["labels"], t.sentiment) for t in session.scalars(select(Tag))}
        versions = {t.model_versions["custom:area"] for t in session.scalars(select(Tag))}
    assert versions == {"custom.area.v2"}
    same = sum(after[i] == before[i] for i in before)
    assert same >= 0.95 * N  # float16 stored embeddings: the tagger's own labels, bar a rare tie


@pytest.mark.backends("sqlite")
def test_suggestions_for_a_custom_category_pick_the_items_its_head_is_torn_on(settings, engine, area) -> None:
    from feedback.corrections.suggestions import custom_uncertainty

    with session_scope(engine) as session:
        scores = {t.item_id: t.custom["area"]["scores"] for t in session.scalars(select(Tag))}
    unc = dict(zip(scores, custom_uncertainty(list(scores.values()), sorted(CSV_ROWS), multi_label=False),
                   strict=True))
    with TestClient(_app(settings, area["tagger"])) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'cx')}"
        got = client.get("/v1/corrections/suggestions", params={"kind": "custom:area", "limit": 10})
        unknown = client.get("/v1/corrections/suggestions", params={"kind": "custom:colour"})
    assert got.status_code == 200, got.text
    picked = got.json()["suggestions"]
    assert len(picked) == 10 and all(s["kind"] == "custom:area" for s in picked)
    assert all(s["model_label"] in CSV_ROWS for s in picked)
    median = sorted(unc.values())[len(unc) // 2]
    assert sum(unc[s["item_id"]] >= median for s in picked) >= 7  # mostly the uncertain half
    assert unknown.status_code == 404 and "custom categories: custom:area" in unknown.text
    assert custom_uncertainty([{"a": 0.5, "b": 0.5}], ["a", "b"], multi_label=False)[0] == 1.0  # torn
    multi = custom_uncertainty([{"a": 0.9, "b": 0.05}], ["a", "b"], multi_label=True)[0]
    assert multi == pytest.approx(0.2)  # multi-label: 0.9 is 0.4 from 0.5


@pytest.mark.backends("sqlite")
def test_the_label_queue_offers_a_custom_category(settings, engine, area) -> None:
    from test_web import csrf_of, sign_in

    browser = sign_in(_app(settings, area["tagger"]), settings, "cx")
    page = browser.get("/corrections", params={"kind": "custom:area", "limit": 10}).text
    assert '<option value="custom:area" selected>area (custom)</option>' in page
    first = re.search(r'<li class="suggestion" id="item-(\d+)"', page).group(1)
    assert f"Area (custom) of item #{first}" in page
    saved = browser.post(f"/feedback/{first}/corrections", data={
        "csrf_token": csrf_of(page), "kind": "custom:area", "label": "subscription",
        "next": "/corrections?audience=customer&kind=custom%3Aarea&limit=10&done=" + first})
    assert saved.status_code == 303
    after = browser.get(saved.headers["location"]).text
    assert f'href="/feedback/{first}#correct-custom-area"' in after and f'id="item-{first}"' not in after


@pytest.mark.backends("sqlite")
def test_the_categories_page_shows_each_label_over_the_weeks(settings, engine, area) -> None:
    """/categories: per label of the head, items, share negative with its interval, mean
    sentiment, corrected labels and a weekly sparkline; linked from the menu only when a custom
    head is configured; the numbers are GET /v1/custom/{name}'s."""
    from test_web import sign_in

    with session_scope(engine) as session:
        item_id = session.scalar(select(FeedbackItem.id).order_by(FeedbackItem.id))
        add_corrections(session, [CorrectionRequest(kind="custom:area", label="subscription", item_id=item_id)],
                        by="ana", settings=settings)
        served: dict[str, int] = {}
        for tag in session.scalars(select(Tag)):
            label = "subscription" if tag.item_id == item_id else tag.custom["area"]["labels"][0]
            served[label] = served.get(label, 0) + 1
    browser = sign_in(_app(settings, area["tagger"]), settings, "cx")
    page = browser.get("/categories", params={"weeks": 4}).text
    assert '<a href="/categories?audience=customer" aria-current="page">Categories</a>' in page
    rows = dict(re.findall(r'<tr data-label="(\w+)">\s*<th scope="row">[^<]+</th>\s*<td>(\d+)</td>', page))
    assert {label: int(n) for label, n in rows.items() if int(n)} == served
    assert "(1 here)" in page and "head custom.area.v1" in page and 'class="spark"' in page
    settings.models.custom_heads = []
    empty = browser.get("/categories").text
    assert "No custom categories yet" in empty and 'href="/categories' not in empty.split("<main")[0]


def test_employee_custom_tables_refuse_filters_that_could_be_differenced(settings, engine, area) -> None:
    """The review's attack: one person of team A labelled L in a week, teams B and C large. With a
    filter each team's row was suppressed on its own, so (unfiltered - B - C) gave A's hidden
    cell; an employee table with a dimension filter is refused instead."""
    tagger = area["tagger"]
    texts = {"A": ["My Orbit box arrived late again"], "B": ["My Orbit box arrived late again"] * 6,
             "C": ["My Orbit box arrived late again"] * 6}
    start = datetime(2026, 6, 8, 9, tzinfo=UTC)
    with session_scope(engine) as session:
        source = get_or_create_source(session, name="pulse", connector="test", audience="employee")
        n = 0
        for team, rows in texts.items():
            for text in rows:
                session.add(FeedbackItem(source_id=source.id, external_id=f"e{n}", content_hash=f"e{n}",
                                         audience="employee", text=text, author=f"person{n}", org_unit=team,
                                         created_at=start + timedelta(hours=n), extra={}))
                n += 1
        session.flush()
        rows = session.execute(select(FeedbackItem.id, FeedbackItem.text, FeedbackItem.audience, FeedbackItem.language,
                                      FeedbackItem.touchpoint, FeedbackItem.content_hash)
                               .where(FeedbackItem.audience == "employee")).all()
        store_tags(session, tagger, rows, tag_items(tagger, rows))
    with TestClient(_app(settings, tagger)) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'hr')}"
        week = {"audience": "employee", "start": "2026-06-08T00:00:00Z", "end": "2026-06-15T00:00:00Z"}
        whole = client.get("/v1/custom/area", params=week)
        answers = {team: client.get("/v1/custom/area", params={**week, "org_unit": team}) for team in texts}
    assert whole.status_code == 200 and sum(r["n"] for r in whole.json()["rows"]) in (0, 13)
    for answer in answers.values():
        assert answer.status_code == 400 and "take no dimension filter" in answer.text


@pytest.mark.backends("sqlite")
def test_head_names_and_labels_the_service_cannot_carry_are_refused(tmp_path, tagger) -> None:
    from classifiers.custom import check_name
    from classifiers.training.custom import train_custom_head

    for bad in ('a"b', "../x", "two words", ".hidden", "x" * 91, ""):
        with pytest.raises(ValueError, match="custom head name"):
            check_name(bad)
    for good in ("area", "a.b-c", "9", "product_area"):
        assert check_name(good) == good
    path = tmp_path / "odd.csv"
    path.write_text("text,label\n" + "".join(f"comment {i},{'(untagged)' if i % 2 else 'fine'}\n" for i in range(6)))
    with pytest.raises(ValueError, match="starts with '\\('"):
        train_custom_head(path, "odd", tagger=tagger, out_dir=tmp_path)
    with pytest.raises(ValueError, match="custom head name"):
        train_custom_head(path, "../odd", tagger=tagger, out_dir=tmp_path)
