"""What the pages show of corrections: the control beside each tag of the item page and the
label queue (docs/web.md, "Corrections").

Corrections are made by the page routes (api/web/pages.py) through
`feedback.corrections.service.add_corrections` and `withdraw_correction`, the functions the
/v1 corrections endpoints call, so a page refuses what the API refuses, with the same words.
This module only reads: the model's label, confidence and version beside the active
correction (who, when) and the earlier, withdrawn ones; the suggestions of
`GET /v1/corrections/suggestions` with each item's text and tags; the newest corrections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from classifiers.labels import GOEMOTIONS_LABELS, NEED_LABELS, SENTIMENT_LABELS
from feedback.corrections import repository
from feedback.corrections.service import (
    CUSTOM_PREFIX,
    KINDS,
    MULTI_LABEL,
    custom_head_of,
    custom_heads,
    model_label,
    touchpoint_names,
)
from feedback.corrections.suggestions import suggestions
from feedback.models import Correction, FeedbackItem, Tag

KIND_TITLES = {"sentiment": "Sentiment", "emotion": "Emotions", "need": "Needs", "touchpoint": "Touchpoint",
               "topic": "Topic"}
# The key of each kind's model in a tag's `model_versions` (the tagger's task names).
VERSION_KEYS = {"sentiment": "sentiment", "emotion": "emotions", "need": "needs", "touchpoint": "touchpoint"}
QUEUE_KINDS = ("sentiment", "touchpoint")  # the kinds suggestions are made for
QUEUE_SIZES = (10, 20, 50)
RECENT = 30


@dataclass(frozen=True)
class Choice:
    value: str
    text: str
    selected: bool = False


@dataclass
class TagControl:
    """One kind of an item's tags: what the model said, the correction in force, and the form."""

    kind: str
    title: str
    multi: bool
    model_text: str
    confidence: float | None
    version: str | None
    choices: list[Choice]
    active: Correction | None = None
    active_text: str | None = None
    earlier: list[tuple[Correction, str]] = field(default_factory=list)
    locked: str | None = None  # why this kind cannot be corrected here

    @property
    def anchor(self) -> str:
        """The kind as an HTML id part (custom:NAME -> custom-NAME)."""
        return anchor(self.kind)


def anchor(kind: str) -> str:
    """custom:NAME -> custom-NAME (one ':' only, so two kinds never share an id; '.' and '-' are
    valid in an HTML id)."""
    return kind.replace(":", "-", 1)


def kind_title(kind: str) -> str:
    """A kind's heading: the built-in titles, a custom category by its name."""
    if kind.startswith(CUSTOM_PREFIX):
        return f"{kind[len(CUSTOM_PREFIX):].replace('_', ' ').capitalize()} (custom)"
    return KIND_TITLES.get(kind, kind)


def queue_kinds(heads: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    """The kinds the label queue suggests items for: sentiment, touchpoint and the single-label
    custom categories among `heads` (`custom_heads`; a multi-label set is corrected on the item page)."""
    return QUEUE_KINDS + tuple(CUSTOM_PREFIX + name for name, meta in heads.items() if not meta.get("multi_label"))


def label_text(kind: str, label: str | None, topics: dict[int, str]) -> str:
    """A stored label as a reader wants it: sets comma-separated, topics by their label."""
    if label is None:
        return "–"
    if kind in MULTI_LABEL or kind.startswith(CUSTOM_PREFIX):
        return ", ".join(part for part in label.split("|") if part) or "none"
    if kind == "topic" and label.isdigit():
        return f"{topics.get(int(label), 'topic')} (#{label})"
    return label


def _scored(labels: list[Any], scores: dict[str, Any]) -> str:
    parts = []
    for label in labels:
        score = scores.get(label)
        parts.append(f"{label} ({score:.2f})" if isinstance(score, int | float) else str(label))
    return ", ".join(parts) or "none"


def _choices(kind: str, *, audience: str, settings: Any, topics: list[tuple[int, str]],
             chosen: set[str]) -> list[Choice]:
    if kind == "sentiment":
        values = [(label, label) for label in SENTIMENT_LABELS]
    elif kind == "emotion":
        values = [(label, label) for label in GOEMOTIONS_LABELS]
    elif kind == "need":
        values = [(label, label) for label in NEED_LABELS]
    elif kind == "touchpoint":
        values = [(name, name) for name in touchpoint_names(settings, audience)]
        values.append(("unknown", "unknown (none of them)"))
    else:
        values = [(str(topic_id), f"{label} (#{topic_id})") for topic_id, label in topics]
    return [Choice(value, text, value in chosen) for value, text in values]


def _custom_controls(settings: Any, session: Session, item: FeedbackItem, tag: Tag | None,
                     history: list[Correction]) -> list[TagControl]:
    """The controls of the configured custom categories (`models.custom_heads`)."""
    controls = []
    for name, meta in custom_heads(settings, session).items():
        kind = CUSTOM_PREFIX + name
        said = ((tag.custom or {}).get(name) if tag is not None else None) or {}
        current = next((row for row in history if row.kind == kind and row.withdrawn_at is None), None)
        chosen = set((current.label if current else "|".join(said.get("labels") or [])).split("|"))
        scores = said.get("scores") or {}
        labels = list(said.get("labels") or [])
        multi = bool(meta.get("multi_label"))
        confidence = scores.get(labels[0]) if labels and not multi else None
        controls.append(TagControl(
            kind=kind, title=kind_title(kind), multi=multi,
            model_text=(_scored(labels, scores) if multi else (labels[0] if labels else "none")) if said
            else "not tagged by this head yet (the item was tagged before it was added)",
            confidence=float(confidence) if isinstance(confidence, int | float) else None,
            version=((tag.model_versions or {}).get(kind) if tag is not None else None),
            choices=[Choice(label, label, label in chosen) for label in meta["labels"]],
            active=current, active_text=label_text(kind, current.label, {}) if current else None,
            earlier=[(row, label_text(kind, row.label, {})) for row in history
                     if row.kind == kind and row.withdrawn_at is not None]))
    return controls


def item_controls(session: Session, settings: Any, item: FeedbackItem, tag: Tag | None) -> list[TagControl]:
    """The correction control of each kind of the item's tags, in KINDS order, then the custom
    categories."""
    history = repository.item_corrections(session, item.id)
    active = {row.kind: row for row in history if row.withdrawn_at is None}
    active_topics = [(t.id, t.label) for t in repository.active_topics(session, item.audience)]
    topic_ids = {int(row.label) for row in history if row.kind == "topic" and row.label.isdigit()}
    topic_ids |= {int(row.model_label) for row in history
                  if row.kind == "topic" and row.model_label and row.model_label.isdigit()}
    if tag is not None and tag.topic_id is not None:
        topic_ids.add(tag.topic_id)
    topics = {**repository.topic_labels(session, topic_ids), **dict(active_topics)}
    versions = (tag.model_versions or {}) if tag is not None else {}
    controls = []
    for kind in KINDS:
        said = model_label(tag, kind)
        current = active.get(kind)
        chosen = set((current.label if current else said or "").split("|"))
        confidence: float | None = None
        if tag is None:
            model_text = "not tagged yet"
        elif kind == "sentiment":
            model_text = tag.sentiment
            confidence = (tag.sentiment_probs or {}).get(tag.sentiment)
        elif kind == "emotion":
            model_text = _scored(list(tag.emotions or []), tag.emotion_scores or {})
        elif kind == "need":
            model_text = _scored(list(tag.needs or []), tag.need_scores or {})
        elif kind == "touchpoint":
            model_text = tag.touchpoint or "unknown (no touchpoint above the threshold)"
            confidence = tag.touchpoint_confidence
        else:
            model_text = label_text("topic", said, topics) if said else "no topic"
        if kind == "topic":
            version = f"topic model {tag.topic_version}" if tag is not None and tag.topic_version else None
        else:
            version = versions.get(VERSION_KEYS[kind]) or (tag.model_version if tag is not None else None)
        control = TagControl(
            kind=kind, title=KIND_TITLES[kind], multi=kind in MULTI_LABEL, model_text=model_text,
            confidence=float(confidence) if isinstance(confidence, int | float) else None, version=version,
            choices=_choices(kind, audience=item.audience, settings=settings, topics=active_topics, chosen=chosen),
            active=current, active_text=label_text(kind, current.label, topics) if current else None,
            earlier=[(row, label_text(kind, row.label, topics)) for row in history
                     if row.kind == kind and row.withdrawn_at is not None])
        if kind == "touchpoint" and item.touchpoint:
            control.locked = (f"The source gave this item's touchpoint ({item.touchpoint}), which analytics always "
                              "use: correct it in the source.")
        elif kind == "topic" and not active_topics:
            control.locked = f"There are no active {item.audience} topics to choose from (voc topics refit)."
        controls.append(control)
    return controls + _custom_controls(settings, session, item, tag, history)


def _served_tags(item: FeedbackItem, tag: Tag | None, corrections: dict[str, Correction],
                 topics: dict[int, str]) -> list[tuple[str, str, bool]]:
    """(title, label, corrected) of each kind as analytics serve it: the correction, else the model."""
    out = []
    for kind in KINDS:
        if kind == "touchpoint" and item.touchpoint:
            out.append((KIND_TITLES[kind], f"{item.touchpoint} (from the source)", False))
            continue
        row = corrections.get(kind)
        label = row.label if row else model_label(tag, kind)
        if kind == "topic" and label is None:
            text = "none"
        else:
            text = label_text(kind, label, topics) if label is not None else "not tagged"
        out.append((KIND_TITLES[kind], text, row is not None))
    return out


def queue_view(session: Session, settings: Any, *, audience: str, kind: str, limit: int,
               heads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The label queue: the suggested items (GET /v1/corrections/suggestions' choice) with their
    text, served tags and choices, and the newest corrections of the audience; `heads`: the
    custom categories (`custom_heads`), `kind` one of `queue_kinds(heads)`."""
    head = custom_head_of(kind, settings, session, heads) if kind.startswith(CUSTOM_PREFIX) else None
    suggested = suggestions(session, kind=kind, audiences=[audience], limit=limit, custom_head=head)
    ids = [row["item_id"] for row in suggested]
    items = repository.items_of(session, ids)
    tags = repository.tags_of(session, ids)
    corrections = repository.active_corrections_of(session, ids)
    recent = repository.recent_corrections(session, audiences=[audience], limit=RECENT)
    topic_ids = {tag.topic_id for tag in tags.values() if tag.topic_id is not None}
    for rows in corrections.values():
        topic_ids |= {int(row.label) for row in rows.values() if row.kind == "topic" and row.label.isdigit()}
    topic_ids |= {int(label) for r in recent if r.correction.kind == "topic"
                  for label in (r.correction.label, r.correction.model_label or "") if label.isdigit()}
    topics = repository.topic_labels(session, topic_ids)
    if head is not None:
        choices = list(head["labels"])
    else:
        choices = list(SENTIMENT_LABELS) if kind == "sentiment" else [*touchpoint_names(settings, audience), "unknown"]
    rows = []
    for row in suggested:
        item = items[row["item_id"]]
        rows.append({**row, "item": item,
                     "tags": _served_tags(item, tags.get(item.id), corrections.get(item.id, {}), topics),
                     "choices": choices})
    return {"suggestions": rows,
            "recent": [(r, label_text(r.correction.kind, r.correction.label, topics),
                        label_text(r.correction.kind, r.correction.model_label, topics)) for r in recent]}


@dataclass(frozen=True)
class Served:
    """An explorer row's labels as analytics serve them (the correction in force, else the model's)
    and the kinds an analyst corrected."""

    touchpoint: str | None
    sentiment: str | None
    emotions: list[str]
    needs: list[str]
    corrected: frozenset[str]


def served_labels(session: Session, items: list[FeedbackItem]) -> dict[int, Served]:
    """Item id -> its served labels (one query for the page's corrections)."""
    corrections = repository.active_corrections_of(session, [item.id for item in items])
    out = {}
    for item in items:
        active = corrections.get(item.id, {})

        def label(kind: str, item: FeedbackItem = item, active: dict[str, Correction] = active) -> str | None:
            row = active.get(kind)
            return row.label if row is not None else model_label(item.tag, kind)

        touchpoint = item.touchpoint or label("touchpoint")
        out[item.id] = Served(
            touchpoint=touchpoint, sentiment=label("sentiment"),
            emotions=[part for part in (label("emotion") or "").split("|") if part],
            needs=[part for part in (label("need") or "").split("|") if part],
            corrected=frozenset(kind for kind in active if not (kind == "touchpoint" and item.touchpoint)))
    return out
