"""Topic corrections feed the next topic refit (issue 17): the corrected topic's seed moves
towards the items analysts put in it and the topic is kept; the other seeds are as they were."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA_DIR
from sqlalchemy import select
from topics_data import banking_docs, embed, store_items

from feedback.corrections.service import CorrectionRequest, add_corrections
from feedback.corrections.topic_seeds import seeded_anchors
from feedback.db import session_scope
from feedback.models import Tag, Topic, TopicModelVersion
from feedback.topics import service

pytestmark = pytest.mark.slow


def test_seeded_anchors_move_a_corrected_topic_and_add_one_without_an_anchor() -> None:
    anchors = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    moved, added = seeded_anchors(anchors, {0: 11, 1: 12}, {12: np.array([0, 0, 1], np.float32),
                                                           13: np.array([1, 0, 0], np.float32)})
    np.testing.assert_allclose(moved[0], [1, 0, 0])  # not corrected: as it was
    np.testing.assert_allclose(moved[1], [0, 2 ** -0.5, 2 ** -0.5], atol=1e-6)  # halfway to its items
    assert added == {2: 13} and moved.shape == (3, 3)
    assert seeded_anchors(anchors, {0: 11}, {}) == (anchors, {})


@pytest.mark.backends("sqlite")
def test_topic_corrections_seed_the_next_refit(settings, engine, monkeypatch) -> None:
    import feedback.topics.model as topic_model

    texts, intents = banking_docs(DATA_DIR)
    vectors = embed(texts)
    with session_scope(engine) as session:
        ids = store_items(session, texts, vectors)
    with session_scope(engine) as session:
        service.refit(session, var_dir=settings.var_dir, audience="customer")
        topic_of = dict(session.execute(select(Tag.item_id, Tag.topic_id).where(Tag.item_id.in_(ids))).all())
    # an analyst moves 15 exchange-rate queries into the topic of cash-withdrawal charges
    atm = max(set(ts := [topic_of[i] for i, t in zip(ids, intents, strict=True)
                         if t == "cash_withdrawal_charge"]), key=ts.count)
    moved = [i for i, t in zip(ids, intents, strict=True) if t == "exchange_rate" and topic_of[i] != atm][:15]
    with session_scope(engine) as session:
        add_corrections(session, [CorrectionRequest(kind="topic", label=str(atm), item_id=i) for i in moved],
                        by="ana", settings=settings)
        previous, prev_map = service.load_version(
            session.scalars(select(TopicModelVersion.path).order_by(TopicModelVersion.version.desc())).first())
    seen: list[np.ndarray] = []
    real = topic_model.fit
    monkeypatch.setattr(topic_model, "fit", lambda *a, **k: seen.append(k["anchors"]) or real(*a, **k))
    with session_scope(engine) as session:
        second = service.refit(session, var_dir=settings.var_dir, audience="customer")
        assert session.get(Topic, atm).status == "active"  # the corrected topic is kept
    assert second.version == 2
    row = {t: m for m, t in prev_map.items()}[atm]
    mean = vectors[[ids.index(i) for i in moved]].mean(0)
    before, seeded = previous.centroids[row], seen[0][row]
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert cos(seeded, mean) > cos(before, mean) + 0.05  # the seed moved towards the corrected items
    others = [r for r in range(len(previous.centroids)) if r != row]
    np.testing.assert_allclose(seen[0][others], previous.centroids[others], atol=1e-6)
