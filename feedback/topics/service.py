"""Topic use cases: refit a version, assign new items (transform), read topics with their numbers.

Each function takes the caller's session and flushes; the request, job run or command commits.
Model files live under `<var_dir>/topics/<audience>/v<N>/` (see `feedback.topics.model`), next
to `taxonomy.json` (model topic -> stable topic id, and the taxonomy at that version) and
`assignments.safetensors` (each fitted item's model topic, read by the next refit's alignment).
Models load on first use and stay cached per version directory.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback.analytics.shares import configured_estimator
from feedback.config import Settings
from feedback.models import Topic, TopicModelVersion
from feedback.privacy.groups import suppressed_groups
from feedback.tagging import load_embeddings
from feedback.topics import over_time, repository, taxonomy
from feedback.topics.clustering import ClusteringParams

log = logging.getLogger(__name__)
QUOTES = 3
_PLACEHOLDER_CHARS = ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[SSN]", "[IP]", "[URL_SECRET]")


def version_dir(var_dir: Path, audience: str, version: int) -> Path:
    return Path(var_dir) / "topics" / audience / f"v{version}"


# --- loading versions (lazily, cached) -----------------------------------------------------

_cache: dict[str, tuple[Any, dict[int, int]]] = {}
_cache_lock = threading.Lock()


def load_version(path: str | Path) -> tuple[Any, dict[int, int]]:
    """The topic model of a version directory and its model topic -> topic id map (cached)."""
    key = str(path)
    with _cache_lock:
        if key not in _cache:
            from feedback.topics.model import TopicModel

            model = TopicModel.load(Path(path))
            tax = json.loads((Path(path) / "taxonomy.json").read_text())
            _cache[key] = (model, {int(k): int(v) for k, v in tax["model_topics"].items()})
        return _cache[key]


def _save_assignments(path: Path, item_ids: np.ndarray, model_topics: np.ndarray) -> None:
    from safetensors.numpy import save_file

    save_file(
        {"item_id": item_ids.astype(np.int64), "model_topic": model_topics.astype(np.int64)},
        str(path / "assignments.safetensors"),
    )


def _load_assignments(path: Path) -> dict[int, int]:
    from safetensors.numpy import load_file

    file = path / "assignments.safetensors"
    if not file.exists():
        return {}
    data = load_file(str(file))
    return dict(zip(data["item_id"].tolist(), data["model_topic"].tolist(), strict=True))


# --- refit ---------------------------------------------------------------------------------


@dataclass
class RefitReport:
    """What a refit did."""

    audience: str
    version: int
    n_documents: int
    n_topics: int
    outlier_share: float
    kept: int
    created: int
    retired: int
    seconds: float
    path: str
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def refit(
    session: Session,
    *,
    var_dir: Path,
    audience: str,
    max_documents: int | None = None,
    params: ClusteringParams | None = None,
    phrase_embedder: Callable[[str], Callable[[list[str]], np.ndarray] | None] | None = None,
) -> RefitReport:
    """Fit a new version on the audience's items (their stored embeddings), aligned to the last.

    `phrase_embedder(encoder_name)` may return the encoder that made the stored embeddings
    (a texts -> vectors function); labels are then re-ranked against topic centroids. The
    domain does not load models itself: the job or command passes it in.
    """
    from feedback.topics.alignment import align, overlap_matrix
    from feedback.topics.model import fit

    started = time.perf_counter()
    found = repository.encoders(session, audience)
    if not found:
        raise ValueError(f"no {audience} items have embeddings yet; run `voc tag` first")
    encoder = found[0][0]
    if len(found) > 1:
        log.warning(
            "%s items were embedded by several encoders %s; fitting on %s", audience, found, encoder
        )
    rows = repository.fit_items(session, audience=audience, encoder=encoder, limit=max_documents)
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    texts = [r[1] for r in rows]
    loaded = time.perf_counter()
    embeddings = load_embeddings(session, ids.tolist())
    load_s = time.perf_counter() - loaded

    previous = taxonomy.current_version(session, audience)
    prev_model: Any = None
    prev_map: dict[int, int] = {}
    prev_path: Path | None = None
    if previous is not None and previous.path and Path(previous.path, "topic_model.json").exists():
        prev_path = Path(previous.path)
        prev_model, prev_map = load_version(prev_path)
        if prev_model.embedding_model != encoder:
            log.warning(
                "previous topics were fitted on %s, items now on %s: refitting without anchors",
                prev_model.embedding_model,
                encoder,
            )
            prev_model = None
    # analysts' topic corrections pull their topics' seeds towards the items they put there
    from feedback.corrections.topic_seeds import corrected_topics, seeded_anchors

    anchors, added = seeded_anchors(
        prev_model.centroids if prev_model is not None else None,
        dict(prev_map) if prev_model is not None else {},
        corrected_topics(session, audience=audience, encoder=encoder),
    )
    result = fit(
        texts,
        embeddings,
        embedding_model=encoder,
        params=params,
        anchors=anchors,
        phrase_embedder=phrase_embedder(encoder) if phrase_embedder is not None else None,
    )

    matched: dict[int, int] = {}
    if prev_model is not None and prev_path is not None:
        before = _load_assignments(prev_path)
        old_labels = np.array([before.get(int(i), -1) for i in ids], dtype=np.int64)
        overlap = overlap_matrix(
            old_labels, result.labels, prev_model.n_topics, result.model.n_topics
        )
        for m in align(prev_model.centroids, result.model.centroids, overlap=overlap):
            if m.old in prev_map:
                matched[m.new] = prev_map[m.old]

    for model_topic, row in result.anchor_of_topic.items():  # a corrected topic's own seed
        if row in added and added[row] not in matched.values() and model_topic not in matched:
            matched[model_topic] = added[row]

    version = taxonomy.next_version(session, audience)
    path = version_dir(var_dir, audience, version)
    result.model.save(path)
    _save_assignments(path, ids, result.labels)
    fitted = [
        taxonomy.FittedTopic(
            model_topic=t,
            label=s.label,
            keywords=s.keywords,
            size=s.size,
            matched_id=matched.get(t),
            quote_item_ids=[int(ids[i]) for i in s.quote_candidates],
        )
        for t, s in result.summaries.items()
    ]
    fitted = taxonomy.join_empty_answers(fitted)
    change = taxonomy.apply_refit(session, audience=audience, version=version, fitted=fitted)
    (path / "taxonomy.json").write_text(
        json.dumps(
            taxonomy.taxonomy_json(
                session, audience=audience, version=version, model_to_topic=change.model_to_topic
            ),
            indent=1,
        )
    )
    outlier_share = float((result.labels < 0).mean())
    taxonomy.record_version(
        session,
        audience=audience,
        version=version,
        path=str(path.resolve()),
        n_documents=len(ids),
        n_topics=result.model.n_topics,
        outlier_share=round(outlier_share, 6),
        params={
            **result.model.meta["params"],
            "embedding_model": encoder,
            "outlier_threshold": result.model.outlier_threshold,
            "anchored": prev_model is not None,
        },
    )
    topic_of = np.array(
        [change.model_to_topic.get(int(t), -1) if t >= 0 else -1 for t in result.labels]
    )
    repository.set_item_topics(
        session,
        [
            {"item_id": int(i), "topic_id": int(t) if t >= 0 else None, "topic_version": version}
            for i, t in zip(ids, topic_of, strict=True)
        ],
    )
    timings = {
        "load_embeddings_s": round(load_s, 2),
        **{k: round(v, 2) for k, v in result.timings.items()},
    }
    return RefitReport(
        audience=audience,
        version=version,
        n_documents=len(ids),
        n_topics=result.model.n_topics,
        outlier_share=round(outlier_share, 4),
        kept=len(change.kept),
        created=len(change.created),
        retired=len(change.retired),
        seconds=round(time.perf_counter() - started, 1),
        path=str(path),
        timings=timings,
    )


# --- assigning new items between refits ------------------------------------------------------


def load_current_topic_models(session: Session) -> int:
    """Load (and cache) the current topic models, so the first `assign_pending_topics` of a
    tagging run does not load one inside its write transaction; returns how many loaded."""
    loaded = 0
    for path in session.scalars(select(TopicModelVersion.path).where(TopicModelVersion.is_current.is_(True))):
        if path and Path(path, "topic_model.json").exists():
            try:
                load_version(path)
            except Exception:  # assign_pending_topics logs it; tagging goes on without topics
                continue
            loaded += 1
    return loaded


def assign_pending_topics(session: Session, *, limit: int = 5000) -> int:
    """Give a topic (BERTopic `transform` of the current version) to tagged items that have none,
    then, within `limit`, to items an earlier version assigned (newest first): a refit on the
    newest items only leaves the rest with their old topic until they are reached here.

    Cheap when no topic model exists yet: one query. Returns how many items were assigned.
    """
    current = session.scalars(
        select(TopicModelVersion).where(TopicModelVersion.is_current.is_(True))
    ).all()
    done = 0
    for version in current:
        if not version.path or not Path(version.path, "topic_model.json").exists():
            continue
        try:
            model, mapping = load_version(version.path)
        except Exception:  # a broken model file must not stop tagging; the next refit replaces it
            log.exception("cannot load the %s topic model at %s", version.audience, version.path)
            continue
        rows = repository.pending_items(
            session, audience=version.audience, encoder=model.embedding_model, limit=limit
        )
        if len(rows) < limit:
            rows += repository.stale_items(session, audience=version.audience, encoder=model.embedding_model,
                                           version=version.version, limit=limit - len(rows))
        if not rows:
            continue
        ids = [r[0] for r in rows]
        predictions, _ = model.transform([r[1] for r in rows], load_embeddings(session, ids))
        resolved: dict[int, int | None] = {}
        updates = []
        for item_id, t in zip(ids, predictions.tolist(), strict=True):
            topic_id = None
            if t >= 0 and t in mapping:
                if mapping[t] not in resolved:
                    resolved[mapping[t]] = taxonomy.resolve(session, mapping[t])
                topic_id = resolved[mapping[t]]
            updates.append(
                {"item_id": item_id, "topic_id": topic_id, "topic_version": version.version}
            )
        repository.set_item_topics(session, updates)
        done += len(updates)
    return done


# --- reading ---------------------------------------------------------------------------------


def _redactor(settings: Settings) -> Any:
    from feedback.privacy import Redactor

    return Redactor.default(settings.privacy.extra_patterns).redact


def _quotes(
    session: Session, topic: Topic, *, settings: Settings, redact: Any, respondents: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    employee = topic.audience == "employee"
    if employee and respondents < settings.privacy.min_group_size_comments:
        return [], (
            f"fewer than {settings.privacy.min_group_size_comments} people in this topic "
            f"(the minimum for employee comments)"
        )
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in repository.quote_rows(session, topic.extra.get("quote_item_ids", [])):
        if row.topic_id != topic.id:
            continue
        text = redact(row.text)
        key = text.strip().lower()[:80]
        # A text that held contact details is never quoted (the placeholder shows there was one).
        if key in seen or any(p in text for p in _PLACEHOLDER_CHARS):
            continue
        seen.add(key)
        quote: dict[str, Any] = {"text": text, "sentiment": row.sentiment}
        if not employee:
            quote.update(item_id=row.id, created_at=row.created_at.isoformat())
        out.append(quote)
        if len(out) >= QUOTES:
            break
    return out, None


def _trend_rows(
    series: over_time.Series,
    topic_id: int,
    interval: str,
    periods: int | None,
    hidden: dict[Any, set[int]],
) -> list[dict[str, Any]]:
    chosen = series.periods if periods is None else series.periods[-periods:]
    out = []
    for p in chosen:
        cell = series.cells.get(
            (topic_id, p),
            {"n": 0, "mean_sentiment": None, "share_negative": None, "share_negative_cc": None},
        )
        if topic_id in hidden.get(p, set()):
            out.append(
                {
                    "period": p.isoformat(),
                    "label": over_time.period_label(p, interval),
                    "n": None,
                    "mean_sentiment": None,
                    "share_negative": None,
                    "share_negative_cc": None,
                    "suppressed": True,
                }
            )
        else:
            out.append(
                {
                    "period": p.isoformat(),
                    "label": over_time.period_label(p, interval),
                    "n": cell["n"],
                    "mean_sentiment": cell["mean_sentiment"],
                    "share_negative": cell["share_negative"],
                    "share_negative_cc": cell["share_negative_cc"],
                    "suppressed": False,
                }
            )
    return out


def _hidden_cells(series: over_time.Series, audience: str, min_size: int) -> dict[Any, set[int]]:
    """Employee (topic, period) cells to hide: small ones and their complements, per period."""
    if audience != "employee":
        return {}
    hidden: dict[Any, set[int]] = {}
    for p in series.periods:
        sizes = {t: c["respondents"] for (t, q), c in series.cells.items() if q == p}
        hidden[p] = suppressed_groups(sizes, min_size=min_size)
    return hidden


def list_topics(
    session: Session,
    *,
    settings: Settings,
    audience: str,
    interval: str = "week",
    periods: int = 8,
    include_inactive: bool = False,
    topic_ids: list[int] | None = None,
    full_series: bool = False,
    with_totals: bool = True,
    quotes_for: Callable[[list[dict[str, Any]]], Collection[int]] | None = None,
) -> dict[str, Any]:
    """Topics of an audience with size, sentiment, trend, emerging flag and 3 quotes; the
    audience's item counts unless `with_totals` is False (they read every item).

    `quotes_for`, given the listed topics (numbered, no quotes yet), names the ids whose quotes
    are read (a page that shows 25 of them); the others list none. Default: every topic's.
    """
    current = taxonomy.current_version(session, audience)
    rows = repository.topics(session, audience=audience, include_inactive=include_inactive)
    if topic_ids is not None:
        rows = [t for t in rows if t.id in topic_ids]
    estimator = configured_estimator(settings)
    # Customer numbers from the rollups while they are current (sums per topic and period);
    # employee ones from the items, which the privacy rules need (distinct respondents).
    from_rollups = over_time.rollup_numbers(
        session, audience=audience, interval=interval, estimator=estimator
    ) if rows else None
    if not rows:  # nothing to number
        numbers, series = {}, over_time.Series(periods=[], totals={}, cells={})
    elif from_rollups is not None:
        series, numbers = from_rollups
    else:
        numbers = repository.topic_numbers(session, audience=audience)
        series = over_time.topic_series(
            session, audience=audience, interval=interval, estimator=estimator
        )
    min_scores = settings.privacy.min_group_size_scores
    hidden_topics: set[int] = set()
    if audience == "employee":
        hidden_topics = suppressed_groups(
            {
                t.id: numbers.get(t.id, {}).get("respondents", 0)
                for t in rows
                if t.status == "active"
            },
            min_size=min_scores,
        )
    hidden_cells = _hidden_cells(series, audience, min_scores)
    # The digest's rule, on the same counts: "emerging" is about the feedback, so a topic that a
    # refit created out of older items is not news by itself (its `created_version` says it is
    # new to the model).
    flags = over_time.emerging(series, [t.id for t in rows if t.status == "active"])
    redact = _redactor(settings)
    out = []
    quoted: dict[int, tuple[Topic, int]] = {}  # topics whose quotes may be read, with their people
    for topic in rows:
        n = numbers.get(
            topic.id,
            {"n": 0, "respondents": 0, "mean_sentiment": None, "n_negative": 0, "p_negative_sum": 0.0},
        )
        share = estimator.estimate(n=n["n"], count=n["n_negative"], prob_sum=n["p_negative_sum"])
        suppressed = topic.id in hidden_topics
        entry: dict[str, Any] = {
            "id": topic.id,
            "label": topic.label,
            "keywords": list(topic.keywords or []),
            "status": topic.status,
            "pinned": topic.pinned,
            "label_source": topic.extra.get("label_source", "model"),
            "merged_into": topic.merged_into_id,
            "created_version": topic.created_version,
            "retired_version": topic.retired_version,
            "suppressed": suppressed,
        }
        if suppressed:
            entry.update(
                size=None,
                sentiment=None,
                trend=None,
                quotes=[],
                quotes_withheld=f"fewer than {min_scores} people in this topic",
            )
        else:
            quoted[topic.id] = (topic, n["respondents"])
            flag = flags.get(topic.id, {"emerging": False, "reason": None})
            if (
                audience == "employee"
                and series.periods
                and topic.id in hidden_cells.get(series.periods[-1], set())
            ):
                flag = {"emerging": False, "reason": None, "suppressed": True}
            entry.update(
                size=n["n"],
                sentiment={
                    "mean": None
                    if n["mean_sentiment"] is None
                    else round(float(n["mean_sentiment"]), 4),
                    "share_negative": None if share is None else round(share, 4),
                    "share_negative_cc": round(n["n_negative"] / n["n"], 4) if n["n"] else None,
                    "share_method": estimator.method,
                },
                trend={
                    "interval": interval,
                    **flag,
                    "periods": _trend_rows(
                        series, topic.id, interval, None if full_series else periods, hidden_cells
                    ),
                },
                quotes=[],  # read below, for the topics asked for
            )
        out.append(entry)
    out.sort(key=lambda e: (e["status"] != "active", -(e["size"] or 0), e["id"]))
    wanted = set(quoted) if quotes_for is None else set(quotes_for(out)) & set(quoted)
    for entry in out:
        if entry["id"] in wanted:
            topic, respondents = quoted[entry["id"]]
            entry["quotes"], withheld = _quotes(
                session, topic, settings=settings, redact=redact, respondents=respondents
            )
            if withheld:
                entry["quotes_withheld"] = withheld
    totals = repository.audience_totals(session, audience=audience) if with_totals else None
    return {
        "audience": audience,
        "version": current.version if current else None,
        "fitted_at": current.created_at.isoformat() if current else None,
        "n_documents": current.n_documents if current else 0,
        "outlier_share": current.outlier_share if current else None,
        "items": totals,
        "topics": out,
    }


def topic_detail(
    session: Session, *, settings: Settings, topic_id: int, interval: str = "week"
) -> dict[str, Any]:
    """One topic with its whole series, history of edits and the versions that had it."""
    topic = taxonomy.get_topic(session, topic_id)
    listing = list_topics(
        session,
        settings=settings,
        audience=topic.audience,
        interval=interval,
        include_inactive=True,
        topic_ids=[topic.id],
        full_series=True,
    )
    entry = listing["topics"][0]
    merged_from = session.scalars(select(Topic.id).where(Topic.merged_into_id == topic.id)).all()
    entry.update(
        audience=topic.audience,
        history=list(topic.extra.get("edits", [])),
        merged_from=list(merged_from),
        model_label=topic.extra.get("model_label"),
        current_version=listing["version"],
    )
    return entry


def version_rows(session: Session, *, audience: str) -> list[dict[str, Any]]:
    return [
        {
            "version": v.version,
            "created_at": v.created_at.isoformat(),
            "n_documents": v.n_documents,
            "n_topics": v.n_topics,
            "outlier_share": v.outlier_share,
            "is_current": v.is_current,
            "params": v.params,
        }
        for v in taxonomy.versions(session, audience)
    ]
