"""Adaptation (issue 17): `voc adapt` learns a company's sarcasm from corrections and promotes
the challenger only when it beats the live model on the held-back slice; promotion, rollback and
re-tagging newest first; a crash leaves the live model as it was; suggestions. A tiny real run
(real encoder, 150 head steps, a small replay); the learning curves are bench/adaptation.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from classifiers.training.adapt import ContrastiveFit, HeadFit, judge
from feedback.corrections.service import CorrectionRequest, add_corrections, is_held_out
from feedback.corrections.suggestions import margin_uncertainty, pick
from feedback.corrections.versions import live_version
from feedback.db import session_scope
from feedback.ingest.service import get_or_create_source
from feedback.models import FeedbackItem, ModelVersion, Tag
from feedback.tagging import store_tags, tag_items

N = 200
FIT = HeadFit(steps=300, replay_per_source=20)
CONTRASTIVE = ContrastiveFit(steps=150)
THINGS = ("delivery", "refund", "checkout", "app update", "support call", "store visit", "parcel", "order")
SARCASM = ("Another legendary {t} from Northwind, only three weeks late",
           "Absolutely stellar {t}, if you enjoy waiting forever",
           "Wow, what a {t}. Ten out of ten would never repeat",
           "Loved how the {t} took a month, truly world class")
PLAIN = ("The {t} was fine, nothing to write home about but it worked", "No complaints about the {t}, sorted quickly",
         "{t} done, all good", "The {t} went ok, staff sorted it")


def test_judge_promotes_only_beyond_the_noise() -> None:
    ones, zeros = np.ones(60), np.zeros(60)
    better, _, scores = judge({"sentiment": (np.r_[zeros[:30], ones[:30]], ones)})
    assert better and scores["ci_low"] > 0
    noisy = np.r_[ones[:29], zeros[:31]]
    better, why, _ = judge({"sentiment": (noisy, np.r_[ones[:31], zeros[:29]])})
    assert not better and "within the noise" in why
    better, why, _ = judge({"sentiment": (zeros, ones), "touchpoint": (ones[:20], np.r_[ones[:19], zeros[:1]])})
    assert not better and "worse on held-back touchpoint" in why
    better, why, _ = judge({"sentiment": (zeros[:5], ones[:5])})
    assert not better and "at least 10" in why


def test_suggestions_pick_uncertain_and_diverse_items() -> None:
    probs = np.array([[0.98, 0.01, 0.01], [0.4, 0.2, 0.4], [0.41, 0.19, 0.4], [0.3, 0.4, 0.3]])
    emb = np.array([[1, 0], [0, 1], [0, 1], [1, 0]], dtype=np.float32)
    unc = margin_uncertainty(probs)
    assert unc.argmax() == 1 and unc[0] < 0.1
    # the near-duplicate of the first pick (item 2) waits behind a less uncertain, different item
    assert pick(unc, emb, 2) == [1, 3]
    assert pick(unc, emb, 1, labelled=np.array([[0, 1]], dtype=np.float32)) == [3]


@pytest.fixture
def sarcastic(settings, engine, tagger) -> list[int]:
    """N tagged customer items in a company's sarcastic register (the shipped model reads most
    of them as positive), each corrected by an analyst."""
    rng = random.Random(3)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    with session_scope(engine) as session:
        source = get_or_create_source(session, name="survey", connector="test", audience="customer")
        items = []
        for i in range(N):
            template = (SARCASM if i % 2 else PLAIN)[rng.randrange(4)]
            items.append(FeedbackItem(source_id=source.id, external_id=str(i), content_hash=f"h{i}",
                                      audience="customer", text=template.format(t=rng.choice(THINGS)) + f" (#{i})",
                                      created_at=start + timedelta(hours=i), extra={}))
        session.add_all(items)
        session.flush()
        rows = session.execute(select(FeedbackItem.id, FeedbackItem.text, FeedbackItem.audience, FeedbackItem.language,
                                      FeedbackItem.touchpoint, FeedbackItem.content_hash)
                               .order_by(FeedbackItem.id)).all()
        store_tags(session, tagger, rows, tag_items(tagger, rows))
        add_corrections(session, [CorrectionRequest(kind="sentiment", label="negative" if i % 2 else "positive",
                                                    item_id=row.id) for i, row in enumerate(rows)],
                        by="ana", settings=settings)
        return [row.id for row in rows]


def test_adapt_promotes_a_better_model_retags_newest_first_and_rolls_back(
        settings, engine, sarcastic, light_client, monkeypatch) -> None:
    from jobs.adapt import retag_stale, run_adapt
    from jobs.tasks import load_service_tagger

    held = [i for i in sarcastic if is_held_out(i, settings.privacy.pseudonym_secret)]
    assert 20 <= len(held) <= 60  # one in five
    result = run_adapt(settings, by="test", fit=FIT)
    assert result["status"] == "live", result
    assert result["trained_on"] == {"sentiment": N - len(held)} and result["held_out"] == len(held)
    models = light_client.get("/v1/models").json()
    assert models["live"] == result["version"] == "v5-a1"
    live = next(v for v in models["versions"] if v["live"])
    kinds = live["scores"]["kinds"]["sentiment"]
    assert kinds["challenger"] > kinds["champion"] and live["scores"]["ci_low"] > 0
    assert models["promotions"][0]["action"] == "promote" and models["promotions"][0]["previous"] is None
    assert Path(live["path"]).is_relative_to(settings.var_dir)

    tagger = load_service_tagger(settings)  # the live version, from the var dir
    assert tagger.version == "v5-a1"
    with session_scope(engine) as session:
        session.get(Tag, sarcastic[0]).topic_id = None
        before = session.get(Tag, sarcastic[-1]).tagged_at
    order: list[int] = []
    import feedback.tagging as tagging

    real = tagging.tag_items
    monkeypatch.setattr(tagging, "tag_items", lambda t, rows: order.extend(r.id for r in rows) or real(t, rows))
    assert retag_stale(engine, tagger, batch_size=50) == N
    assert order[:50] == sorted(sarcastic, reverse=True)[:50]  # newest first
    with session_scope(engine) as session:
        tags = {t.item_id: t for t in session.scalars(select(Tag))}
        assert {t.model_version for t in tags.values()} == {"v5-a1"} and tags[sarcastic[-1]].tagged_at > before
        right = sum(tags[i].sentiment == ("negative" if n % 2 else "positive") for n, i in enumerate(sarcastic))
    assert right >= 0.8 * N  # the company's sarcasm is learned (the shipped model: about half)

    runner = CliRunner()
    from feedback.config import get_settings
    from jobs.cli import app

    monkeypatch.setenv("VOC_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VOC_VAR_DIR", str(settings.var_dir))
    get_settings.cache_clear()
    try:
        listed = runner.invoke(app, ["models", "list"])
        rolled = runner.invoke(app, ["models", "rollback", "--by", "ana"])
    finally:
        get_settings.cache_clear()
    assert "v5-a1" in listed.output and "live" in listed.output
    assert rolled.exit_code == 0 and f"shipped model is live again; {N} items" in rolled.output
    with session_scope(engine) as session:
        assert live_version(session) is None
    shipped = load_service_tagger(settings)
    assert shipped.version == "v5" and retag_stale(engine, shipped, batch_size=64) == N


@pytest.mark.parametrize("step", ["fine_tune", "contrastive_tune"])
def test_a_crashing_adaptation_leaves_the_live_model_as_it_was(settings, engine, sarcastic, monkeypatch,
                                                              step) -> None:
    import classifiers.training.adapt as adapt_module
    from jobs.adapt import run_adapt

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(adapt_module, step, boom)
    with pytest.raises(RuntimeError, match="out of memory"):
        run_adapt(settings, fit=FIT, contrastive=CONTRASTIVE, min_contrastive=50)
    with session_scope(engine) as session:
        assert live_version(session) is None
        [row] = session.scalars(select(ModelVersion)).all()
        assert row.status == "failed" and "out of memory" in row.detail["error"]
    assert not any((settings.var_dir / "models" / "versions").glob("v5-a1*"))


def test_suggestions_endpoint(light_client, sarcastic, engine) -> None:
    from feedback.models import Correction

    with session_scope(engine) as session:  # free some items of their correction
        for row in session.scalars(select(Correction).where(Correction.item_id.in_(sarcastic[:40]))):
            row.withdrawn_at = row.changed_at
    body = light_client.get("/v1/corrections/suggestions", params={"limit": 5}).json()
    ids = [s["item_id"] for s in body["suggestions"]]
    assert len(set(ids)) == 5 and set(ids) <= set(sarcastic[:40])  # only items without a correction
    assert all(s["model_label"] in ("negative", "neutral", "positive") for s in body["suggestions"])
    assert light_client.get("/v1/corrections/suggestions", params={"kind": "topic"}).status_code == 422


@pytest.mark.backends("sqlite")
def test_the_contrastive_path_trains_and_tags_with_one_encoder_pass(settings, engine, sarcastic, tagger) -> None:
    """From min_contrastive corrections on, the sentiment head is adapted contrastively: a
    residual projection in front of it, trained on pairs; the tagger still runs the encoder once
    per batch, stores the same embeddings and gives the same emotions as the shipped model."""
    from classifiers.heads import Projected
    from jobs.adapt import run_adapt
    from jobs.tasks import load_service_tagger

    result = run_adapt(settings, by="test", fit=FIT, contrastive=CONTRASTIVE, min_contrastive=50)
    assert result["methods"] == {"sentiment": "contrastive"} and result["status"] == "live", result
    adapted = load_service_tagger(settings)
    assert adapted.version == result["version"]
    head = adapted.heads["sentiment"]
    assert isinstance(head.module, Projected) and head.spec.projection == CONTRASTIVE.rank
    assert float(head.module.proj.up.weight.detach().abs().sum()) > 0  # trained, not the identity it starts as
    assert not isinstance(adapted.heads["emotions"].module, Projected)

    texts = [SARCASM[0].format(t="parcel"), SARCASM[2].format(t="refund"), PLAIN[1].format(t="order")]
    assert adapted.touchpoints is not None  # its phrases are embedded once, on first use
    calls = []
    real = adapted.encoder.forward_pooled
    adapted.encoder.forward_pooled = lambda ids, mask: calls.append(len(ids)) or real(ids, mask)
    try:
        ours = adapted.tag(texts, return_embeddings=True)
    finally:
        del adapted.encoder.forward_pooled
    assert calls == [len(texts)]  # one encoder pass for the batch, every head included
    shipped = tagger.tag(texts, return_embeddings=True)
    for a, b in zip(ours, shipped, strict=True):
        np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)  # stored embeddings stay valid
        assert a.emotions == pytest.approx(b.emotions, abs=1e-5)  # the other heads are untouched
    assert [r.sentiment for r in ours] == ["negative", "negative", "positive"]


@pytest.mark.backends("sqlite")
def test_a_worse_challenger_is_rejected_and_the_live_model_kept(settings, engine, sarcastic) -> None:
    """Corrections outside the held-back slice that contradict the held-back ones (an analyst's
    bad day) make a worse challenger: kept as rejected with its numbers, never live."""
    from jobs.adapt import run_adapt

    with session_scope(engine) as session:
        items = session.scalars(select(FeedbackItem).where(FeedbackItem.id.in_(sarcastic))).all()
        flip = [CorrectionRequest(kind="sentiment", item_id=item.id,
                                  label="positive" if int(item.external_id) % 2 else "negative")
                for item in items if not is_held_out(item.id, settings.privacy.pseudonym_secret)]
        add_corrections(session, flip, by="bad day", settings=settings)
    result = run_adapt(settings, by="test", fit=FIT)
    assert result["status"] == "rejected", result
    with session_scope(engine) as session:
        assert live_version(session) is None
        row = session.scalars(select(ModelVersion)).one()
        assert row.status == "rejected" and row.scores["kinds"]["sentiment"]["gain"] < 0
        assert "worse on held-back sentiment" in row.detail["reason"]


@pytest.mark.backends("sqlite")
def test_need_corrections_refit_the_needs_head(settings, engine, sarcastic) -> None:
    """Need corrections train the hybrid needs head (refit on its own rows plus the corrections,
    which outweigh them) and are judged on the held-back ones like the other kinds."""
    from classifiers.needs import NeedsModel
    from classifiers.tagger import WEIGHTS_DIR
    from jobs.adapt import run_adapt

    with session_scope(engine) as session:
        items = session.scalars(select(FeedbackItem).where(FeedbackItem.id.in_(sarcastic))).all()
        add_corrections(session, [CorrectionRequest(kind="need", item_id=item.id,
                                                    labels=("emotional", "social") if int(item.external_id) % 2
                                                    else ("functional",)) for item in items],
                        by="ana", settings=settings)
    result = run_adapt(settings, by="test", fit=FIT)
    assert result["methods"]["need"] == "refit" and result["trained_on"]["need"] == result["trained_on"]["sentiment"]
    with session_scope(engine) as session:
        row = session.scalars(select(ModelVersion)).one()
        need = row.scores["kinds"]["need"]
    assert need["n"] >= 20 and need["challenger"] > need["champion"], need
    version = Path(row.path)
    assert NeedsModel.load(version).lex_coef.tolist() != NeedsModel.load(WEIGHTS_DIR).lex_coef.tolist()


def test_top2_uncertainty_and_one_pick_per_cluster() -> None:
    from feedback.corrections.suggestions import pick_clusters, top2_uncertainty

    scores = np.array([[0.9, 0.1, -np.inf], [0.5, 0.49, 0.1], [0.3, 0.3, 0.3]])
    np.testing.assert_allclose(top2_uncertainty(scores), [0.2, 0.99, 1.0])
    # two tight groups: two picks come one from each, the most uncertain of each group
    emb = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.141, 0.99]], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert sorted(pick_clusters(np.array([0.9, 0.8, 0.3, 0.5]), emb, 2)) == [0, 3]


@pytest.mark.backends("sqlite")
def test_touchpoint_suggestions_use_the_live_prototypes(client, sarcastic, engine, tagger) -> None:
    from feedback.corrections.suggestions import top2_uncertainty
    from feedback.tagging import load_embeddings

    body = client.get("/v1/corrections/suggestions", params={"kind": "touchpoint", "limit": 5}).json()
    assert "two best touchpoints" in body["method"] and len({s["item_id"] for s in body["suggestions"]}) == 5
    with session_scope(engine) as session:
        emb = load_embeddings(session, sarcastic)
    protos = tagger.touchpoints
    allowed = np.asarray([s.audience for s in protos.specs]) == "customer"
    unc = top2_uncertainty(np.where(allowed, protos.scores(emb), -np.inf))
    assert body["suggestions"][0]["item_id"] == sarcastic[int(unc.argmax())]  # the most torn item first
    assert body["suggestions"][0]["uncertainty"] == pytest.approx(float(unc.max()), abs=1e-3)
