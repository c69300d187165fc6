"""`voc adapt` and the scheduled adapt job: learn from corrections, promote only what is better.

One run: read the active corrections (with their items' text), train a challenger from the live
version on those outside the held-back slice (`classifiers.training.adapt`), judge it against
the live one on the held-back slice, record it (`model_versions`: rejected, with its numbers,
or live), and when it is promoted, let the tag job re-tag stored items newest first
(`retag_stale`), serving their old tags until the new ones are stored.

Training runs outside any transaction and writes only under `<var_dir>/models/versions/`; the
live version changes in one transaction at the end, so a run that crashes leaves the live model
as it was (and a `failed` row saying why).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from feedback.config import Settings
from feedback.corrections.versions import live_version, promote, tag_version, versions_dir
from feedback.db import get_engine, session_scope
from feedback.models import Correction, FeedbackItem, ItemEmbedding, ModelVersion, Tag, TagLabel

log = logging.getLogger(__name__)
TRAINED = ("sentiment", "emotion", "need", "touchpoint")  # and custom:NAME, for models.custom_heads


def _examples(session: Session) -> tuple[list[Any], list[Any]]:
    from classifiers.training.adapt import Example

    rows = session.execute(
        select(FeedbackItem.text, FeedbackItem.audience, Correction.kind, Correction.label, Correction.held_out)
        .join(FeedbackItem, FeedbackItem.id == Correction.item_id)
        .where(Correction.withdrawn_at.is_(None), or_(Correction.kind.in_(TRAINED), Correction.kind.like("custom:%")))
        .order_by(Correction.id)).all()
    train, held = [], []
    for text, audience, kind, label, held_out in rows:
        (held if held_out else train).append(Example(text=text, kind=kind, label=label, audience=audience))
    return train, held


def _touchpoints(settings: Settings) -> tuple | None:
    from classifiers import TouchpointSpec

    if not settings.models.touchpoints:
        return None
    return tuple(TouchpointSpec(name=t.name, description=t.description, examples=tuple(t.examples),
                                audience=t.audience) for t in settings.models.touchpoints)


def run_adapt(settings: Settings, *, by: str = "voc adapt", auto_promote: bool = True,
              min_held_out: int | None = None, fit: Any = None, contrastive: Any = None,
              min_contrastive: Any = None) -> dict[str, Any]:
    """One adaptation (see the module docstring); returns what happened."""
    from classifiers.tagger import WEIGHTS_DIR, read_heads_meta
    from classifiers.training.adapt import MIN_HELD_OUT, adapt

    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        live = live_version(session)
        base = Path(live.path) if live is not None and live.path else Path(settings.models.heads_dir or WEIGHTS_DIR)
        base_name = live.name if live is not None else "shipped"
        train, held = _examples(session)
        number = (session.scalar(select(func.count()).select_from(ModelVersion)) or 0) + 1
    if not train:
        return {"skipped": "no active sentiment, emotion, need, touchpoint or custom:NAME corrections outside the "
                           "held-back slice"}
    shipped = read_heads_meta(WEIGHTS_DIR)["version"]
    name = f"{shipped}-a{number}"
    out_dir = versions_dir(settings.var_dir) / name
    try:
        report = adapt(base, out_dir, version=name, train=train, held_out=held, touchpoints=_touchpoints(settings),
                       device=settings.models.device, cache_dir=versions_dir(settings.var_dir).parent / "cache",
                       min_held_out=min_held_out if min_held_out is not None else MIN_HELD_OUT, fit=fit,
                       contrastive=contrastive, min_contrastive=min_contrastive,
                       custom_heads=tuple(settings.models.custom_heads))
    except Exception as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        with session_scope(engine) as session:
            session.add(ModelVersion(name=name, base=base_name, status="failed", path=None, created_by=by,
                                     n_train=len(train), n_held_out=len(held),
                                     detail={"error": f"{type(exc).__name__}: {exc}"}))
        log.exception("adaptation %s failed; the live model is unchanged", name)
        raise
    with session_scope(engine) as session:
        row = ModelVersion(name=name, base=base_name, status="candidate" if report.better else "rejected",
                           path=report.out_dir, created_by=by, n_train=sum(report.n_train.values()),
                           n_held_out=report.n_held_out, scores=report.scores,
                           detail={"reason": report.reason, "corrections": report.n_train, "tag_version": name,
                                   "methods": report.scores.get("methods", {}),
                                   "seconds": round(report.seconds, 1)})
        session.add(row)
        session.flush()
        queued = 0
        if report.better and auto_promote:
            queued = promote(session, name, by=by, reason=report.reason)
    return {"version": name, "status": "live" if report.better and auto_promote else row.status,
            "reason": report.reason, "trained_on": report.n_train, "held_out": report.n_held_out,
            "methods": report.scores.get("methods", {}),
            "seconds": round(report.seconds, 1), "retag_queued": queued}


def retag_stale(engine: Engine, tagger: Any, *, batch_size: int = 256, limit: int | None = None) -> int:
    """Re-tag items whose tags another version made, newest first, a batch per transaction: the
    models run outside it, and an item's old tag is replaced by its new one in the transaction
    that stores it (until then analytics serve the old). Topic assignments are kept (the encoder,
    which topics read, is not retrained). Returns how many items were re-tagged."""
    from sqlalchemy import delete, update

    from feedback.analytics.rollups import refresh_rollups
    from feedback.tagging import store_tags, tag_items

    done = 0
    while limit is None or done < limit:
        with session_scope(engine) as session:
            rows = session.execute(
                select(FeedbackItem.id, FeedbackItem.text, FeedbackItem.audience, FeedbackItem.language,
                       FeedbackItem.touchpoint, FeedbackItem.content_hash, Tag.model_version)
                .join(Tag, Tag.item_id == FeedbackItem.id).where(Tag.model_version != tagger.version)
                .order_by(FeedbackItem.created_at.desc(), FeedbackItem.id.desc()).limit(batch_size)).all()
        if not rows:
            break
        results = tag_items(tagger, rows)
        with session_scope(engine) as session:
            ids = [r.id for r in rows]
            # only items still tagged by the old version with the text the models read
            current = {i: (v, h) for i, v, h in session.execute(
                select(Tag.item_id, Tag.model_version, FeedbackItem.content_hash)
                .join(FeedbackItem, FeedbackItem.id == Tag.item_id).where(Tag.item_id.in_(ids)))}
            keep = [(r, res) for r, res in zip(rows, results, strict=True)
                    if current.get(r.id) == (r.model_version, r.content_hash)]
            if not keep:
                continue
            kept = [r.id for r, _ in keep]
            topics = dict(session.execute(select(Tag.item_id, Tag.topic_id).where(Tag.item_id.in_(kept))).all())
            topic_versions = dict(session.execute(
                select(Tag.item_id, Tag.topic_version).where(Tag.item_id.in_(kept))).all())
            for table in (TagLabel, ItemEmbedding, Tag):
                session.execute(delete(table).where(table.item_id.in_(kept)))
            store_tags(session, tagger, [r for r, _ in keep], [res for _, res in keep])
            for item_id in kept:
                session.execute(update(Tag).where(Tag.item_id == item_id).values(
                    topic_id=topics.get(item_id), topic_version=topic_versions.get(item_id)))
            refresh_rollups(session, max_days=7)
            done += len(kept)
    with session_scope(engine) as session:
        refresh_rollups(session)
    return done


def live_tag_version(settings: Settings) -> str | None:
    """What a live adapted version's tags carry (None: the shipped model is live)."""
    with session_scope(get_engine(settings.database_url)) as session:
        return tag_version(live_version(session))
