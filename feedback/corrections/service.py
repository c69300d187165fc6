"""Add, withdraw, list and import corrections; every function flushes only (the caller commits).

A correction says what one item's sentiment, emotions, needs, touchpoint, topic or custom
category (`custom:NAME`, one of `models.custom_heads`) really is. It
is stored beside the model's tag (`corrections`), never over it: analytics read the corrected
label in its place (`feedback.analytics.served`) while it is active, and `voc adapt` learns
from it. Emotion and need corrections give the item's whole set of labels for that kind (an
empty need set says "no need"); the other kinds one label.

Every batch is checked whole before anything is written, so bad input (an unknown item, a label
that is not one of the kind's, a duplicate, an item of an audience the caller cannot read)
changes nothing. A correction of an item and kind that already has a different active one
replaces it: the earlier one is withdrawn (by the same caller), not deleted.

A fixed one in five items, chosen by a keyed hash of the item id (`is_held_out`), is the
deployment's evaluation slice: their corrections are never trained on, so they judge every
adapted model against the live one, and the slice grows as corrections come in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classifiers.config import DEFAULT_TOUCHPOINTS
from classifiers.labels import GOEMOTIONS_LABELS, NEED_LABELS, SENTIMENT_LABELS, cx_emotions
from feedback.corrections import repository
from feedback.db import utcnow
from feedback.models import Correction, CorrectionLabel, FeedbackItem, Source, Tag, Topic

KINDS = ("sentiment", "emotion", "need", "touchpoint", "topic")
MULTI_LABEL = ("emotion", "need")
CUSTOM_PREFIX = "custom:"  # custom category kinds: custom:NAME
HELD_OUT_ONE_IN = 5
MAX_BATCH = 1000


class CorrectionError(ValueError):
    """A correction that cannot be stored; `status` is the HTTP status that answers it."""

    def __init__(self, message: str, status: int = 422, index: int | None = None) -> None:
        super().__init__(message if index is None else f"correction {index}: {message}")
        self.status = status
        self.index = index


class UnknownCustomKind(CorrectionError):
    """A custom:NAME kind that names none of the deployment's custom categories; `categories`
    lists those it has."""

    def __init__(self, kind: str, heads: Iterable[str]) -> None:
        self.categories = ", ".join(CUSTOM_PREFIX + name for name in heads) or "none (models.custom_heads)"
        super().__init__(f"{kind!r} is not a custom category of this deployment; custom categories: "
                         f"{self.categories}")


@dataclass(frozen=True)
class CorrectionRequest:
    """One correction as asked: the item (by id, or by source name and external id), the kind,
    and the label (`labels` for emotion and need)."""

    kind: str
    label: str | None = None
    labels: tuple[str, ...] | None = None
    item_id: int | None = None
    source: str | None = None
    external_id: str | None = None


def is_held_out(item_id: int, secret: str) -> bool:
    """Whether the item's corrections belong to the deployment's evaluation slice (1 in 5, fixed
    by a keyed hash, so the slice never moves and grows with the corrections)."""
    digest = hashlib.sha256(f"voc-held-out:{secret}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % HELD_OUT_ONE_IN == 0


def touchpoint_names(settings: Any, audience: str) -> list[str]:
    """The configured taxonomy's touchpoints of an audience (the defaults where none is set)."""
    configured = getattr(settings.models, "touchpoints", None) or DEFAULT_TOUCHPOINTS
    return [t.name for t in configured if (t.audience or "customer") == audience]


def resolve_custom_heads(settings: Any, session: Session) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(`custom_heads`, the configured entries it skips: not trained, or a name no kind can carry)."""
    from classifiers.custom import check_name, head_meta
    from feedback.corrections.versions import live_version

    entries = list(getattr(settings.models, "custom_heads", None) or [])
    if not entries:
        return {}, []
    live = live_version(session)
    heads_dir = settings.models.heads_dir or (live.path if live is not None else None)
    out: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for entry in entries:
        try:
            meta = head_meta(entry, heads_dir)
            check_name(meta["name"])
        except (FileNotFoundError, ValueError):
            skipped.append(entry)  # the tagger refuses it too; corrections name the rest
            continue
        out[meta["name"]] = meta
    return out, skipped


def custom_heads(settings: Any, session: Session) -> dict[str, dict[str, Any]]:
    """The configured custom category heads (`models.custom_heads`): name -> its head.json
    (labels, multi_label, version), the live tagger version's adapted head where it has one."""
    return resolve_custom_heads(settings, session)[0]


def custom_head_of(kind: str, settings: Any, session: Session,
                   heads: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The head.json of the custom category `kind` (custom:NAME), among `heads` (custom_heads'
    answer, read here when not given); UnknownCustomKind (a CorrectionError) when it names none."""
    heads = custom_heads(settings, session) if heads is None else heads
    meta = heads.get(kind[len(CUSTOM_PREFIX):]) if kind.startswith(CUSTOM_PREFIX) else None
    if meta is None:
        raise UnknownCustomKind(kind, heads)
    return meta


def is_multi(kind: str, settings: Any = None, session: Session | None = None) -> bool:
    """Whether a kind's correction gives a set of labels (emotion, need, a multi-label custom head)."""
    if kind.startswith(CUSTOM_PREFIX):
        if settings is None or session is None:
            return False
        try:
            return bool(custom_head_of(kind, settings, session).get("multi_label"))
        except UnknownCustomKind:
            return False
    return kind in MULTI_LABEL


def _split_labels(request: CorrectionRequest) -> list[str]:
    if request.labels is not None:
        return [str(label).strip() for label in request.labels]
    if request.label is None:
        return []
    return [part.strip() for part in request.label.split("|") if part.strip()]


def canonical_label(kind: str, values: Sequence[str], *, audience: str, settings: Any,
                    session: Session) -> str:
    """The stored label for `values` of `kind`, or a CorrectionError naming what is allowed."""
    if kind.startswith(CUSTOM_PREFIX):
        return _custom_label(kind, values, settings=settings, session=session)
    if kind not in KINDS:
        heads = custom_heads(settings, session)
        raise CorrectionError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}"
                              + "".join(f", {CUSTOM_PREFIX}{name}" for name in heads))
    if kind in MULTI_LABEL:
        allowed = GOEMOTIONS_LABELS if kind == "emotion" else NEED_LABELS
        bad = [v for v in values if v not in allowed]
        if bad:
            raise CorrectionError(f"{bad[0]!r} is not a{'n' if kind == 'emotion' else ''} {kind} label; "
                                  f"{kind} labels: {', '.join(allowed)}")
        if kind == "emotion" and not values:
            raise CorrectionError("an emotion correction needs at least one label ('neutral' for none)")
        if len(set(values)) != len(values):
            raise CorrectionError(f"a {kind} label is given twice: {', '.join(values)}")
        return "|".join(label for label in allowed if label in values)
    if len(values) != 1:
        raise CorrectionError(f"a {kind} correction has exactly one label (got {len(values)}); "
                              "`labels` is for emotion and need")
    value = values[0]
    if kind == "sentiment":
        if value not in SENTIMENT_LABELS:
            raise CorrectionError(f"{value!r} is not a sentiment; sentiments: {', '.join(SENTIMENT_LABELS)}")
        return value
    if kind == "touchpoint":
        names = touchpoint_names(settings, audience)
        if value not in (*names, "unknown"):
            raise CorrectionError(f"{value!r} is not a touchpoint of {audience} feedback; touchpoints: "
                                  f"{', '.join(names)} (or 'unknown': none of them)")
        return value
    # topic: the stable id of an active topic of the item's audience
    topic = session.get(Topic, int(value)) if value.isdigit() else None
    if topic is None or topic.audience != audience or topic.status != "active":
        raise CorrectionError(f"{value!r} is not an active {audience} topic id; `voc topics list` "
                              "or GET /v1/topics lists them")
    return str(topic.id)


def _custom_label(kind: str, values: Sequence[str], *, settings: Any, session: Session) -> str:
    meta = custom_head_of(kind, settings, session)
    allowed = list(meta["labels"])
    bad = [v for v in values if v not in allowed]
    if bad:
        raise CorrectionError(f"{bad[0]!r} is not a label of {kind}; its labels: {', '.join(allowed)}")
    if meta.get("multi_label"):
        if len(set(values)) != len(values):
            raise CorrectionError(f"a {kind} label is given twice: {', '.join(values)}")
        return "|".join(label for label in allowed if label in values)
    if len(values) != 1:
        raise CorrectionError(f"a {kind} correction has exactly one label (got {len(values)}); {kind} is "
                              "single-label")
    return values[0]


def model_label(tag: Tag | None, kind: str) -> str | None:
    """What the model said of `kind` for an item (the corrections' audit), None if untagged."""
    if tag is None:
        return None
    if kind == "sentiment":
        return tag.sentiment
    if kind == "emotion":
        return "|".join(label for label in GOEMOTIONS_LABELS if label in (tag.emotions or []))
    if kind == "need":
        return "|".join(label for label in NEED_LABELS if label in (tag.needs or []))
    if kind == "touchpoint":
        return tag.touchpoint or "unknown"
    if kind.startswith(CUSTOM_PREFIX):
        said = (tag.custom or {}).get(kind[len(CUSTOM_PREFIX):])
        return None if said is None else "|".join(said.get("labels") or [])
    return None if tag.topic_id is None else str(tag.topic_id)


def _find_items(session: Session, requests: Sequence[CorrectionRequest]) -> dict[int, FeedbackItem]:
    """The items the requests name, by index (absent where none is found)."""
    found: dict[int, FeedbackItem] = {}
    ids = sorted({r.item_id for r in requests if r.item_id is not None})
    by_id: dict[int, FeedbackItem] = {}
    for start in range(0, len(ids), 900):
        by_id.update((item.id, item) for item in session.scalars(
            select(FeedbackItem).where(FeedbackItem.id.in_(ids[start:start + 900]))))
    keyed = {(r.source, r.external_id) for r in requests if r.item_id is None and r.source is not None}
    by_key: dict[tuple[str | None, str | None], FeedbackItem] = {}
    for source, external_id in keyed:
        item = session.scalar(select(FeedbackItem).join(Source, Source.id == FeedbackItem.source_id)
                              .where(Source.name == source, FeedbackItem.external_id == external_id))
        if item is not None:
            by_key[(source, external_id)] = item
    for index, request in enumerate(requests):
        item = (by_id.get(request.item_id) if request.item_id is not None
                else by_key.get((request.source, request.external_id)))
        if item is not None:
            found[index] = item
    return found


def _describe(request: CorrectionRequest) -> str:
    if request.item_id is not None:
        return f"no feedback item with id {request.item_id}"
    return f"no feedback item {request.external_id!r} in source {request.source!r}"


def add_corrections(session: Session, requests: Sequence[CorrectionRequest], *, by: str, settings: Any,
                    can_read: Callable[[str], bool] = lambda _audience: True) -> list[Correction]:
    """Store the corrections (all or none); returns them in order. Raises CorrectionError."""
    if not requests:
        raise CorrectionError("no corrections given", status=422)
    if len(requests) > MAX_BATCH:
        raise CorrectionError(f"{len(requests)} corrections in one batch; send at most {MAX_BATCH}",
                              status=413)
    items = _find_items(session, requests)
    was_current = _rollups_current(session)
    planned: list[tuple[FeedbackItem, str, str]] = []
    seen: dict[tuple[int, str], int] = {}
    for index, request in enumerate(requests):
        where = index if len(requests) > 1 else None
        if request.item_id is None and (request.source is None or request.external_id is None):
            raise CorrectionError("name the item by item_id, or by source and external_id", index=where)
        item = items.get(index)
        if item is None or not can_read(item.audience):
            # an item of an audience the key cannot read looks absent, as GET /v1/feedback/{id} does
            raise CorrectionError(_describe(request), status=404, index=where)
        if request.kind == "touchpoint" and item.touchpoint:
            raise CorrectionError(f"item {item.id}'s source gave its touchpoint ({item.touchpoint!r}), "
                                  "which analytics always use; correct it in the source", index=where)
        try:
            label = canonical_label(request.kind, _split_labels(request), audience=item.audience,
                                    settings=settings, session=session)
        except CorrectionError as exc:
            raise CorrectionError(str(exc), exc.status, index=where) from None
        key = (item.id, request.kind)
        if key in seen:
            raise CorrectionError(f"item {item.id} has two {request.kind} corrections in this batch "
                                  f"(also correction {seen[key]})", status=409, index=where)
        seen[key] = index
        planned.append((item, request.kind, label))
    active = repository.active_corrections_of(session, [item.id for item, _, _ in planned])
    for index, (item, kind, label) in enumerate(planned):
        current = active.get(item.id, {}).get(kind)
        if current is not None and current.label == label:
            raise CorrectionError(
                f"item {item.id} already has this {kind} correction (id {current.id}, by {current.created_by})",
                status=409, index=index if len(planned) > 1 else None)
    tags = repository.tags_of(session, [item.id for item, _, _ in planned])
    now = utcnow()
    secret = settings.privacy.pseudonym_secret
    stored: list[Correction] = []
    for item, kind, label in planned:
        current = active.get(item.id, {}).get(kind)
        if current is not None:
            _withdraw_row(session, current, by=by, now=now)
        row = Correction(item_id=item.id, kind=kind, label=label, model_label=model_label(tags.get(item.id), kind),
                         held_out=is_held_out(item.id, secret), created_by=by, created_at=now, changed_at=now)
        session.add(row)
        stored.append(row)
    session.flush()  # withdrawals first: the partial unique index allows one active row per item and kind
    for row in stored:
        session.add_all(_label_rows(row))
    session.flush()
    _refresh_rollups(session, [item.id for item, _, _ in planned], was_current)
    return stored


def _label_rows(row: Correction) -> list[CorrectionLabel]:
    """The flat label rows of an emotion or need correction (emotions with their CX groups)."""
    if row.kind not in MULTI_LABEL:
        return []
    labels = [label for label in row.label.split("|") if label]
    rows = [CorrectionLabel(correction_id=row.id, item_id=row.item_id, kind=row.kind, label=label)
            for label in labels]
    if row.kind == "emotion":
        rows += [CorrectionLabel(correction_id=row.id, item_id=row.item_id, kind="cx_emotion", label=group)
                 for group in cx_emotions(labels)]
    return rows


def _withdraw_row(session: Session, row: Correction, *, by: str, now: Any) -> None:
    row.withdrawn_at = now
    row.withdrawn_by = by
    row.changed_at = now
    session.query(CorrectionLabel).filter(CorrectionLabel.correction_id == row.id).delete(
        synchronize_session=False)


def withdraw_correction(session: Session, correction_id: int, *, by: str,
                        can_read: Callable[[str], bool] = lambda _audience: True) -> Correction:
    """Withdraw an active correction (the row stays, as the audit); analytics go back to the
    model's label. Raises CorrectionError (404 unknown, 409 already withdrawn)."""
    row = session.get(Correction, correction_id)
    audience = session.scalar(select(FeedbackItem.audience).where(FeedbackItem.id == row.item_id)) if row else None
    if row is None or audience is None or not can_read(audience):
        raise CorrectionError(f"no correction with id {correction_id}", status=404)
    if row.withdrawn_at is not None:
        raise CorrectionError(f"correction {correction_id} was already withdrawn by {row.withdrawn_by} "
                              f"at {row.withdrawn_at.isoformat()}", status=409)
    was_current = _rollups_current(session)
    _withdraw_row(session, row, by=by, now=utcnow())
    session.flush()
    _refresh_rollups(session, [row.item_id], was_current)
    return row


def list_corrections(session: Session, *, audiences: Sequence[str], item_id: int | None = None,
                     kind: str | None = None, include_withdrawn: bool = False, after_id: int = 0,
                     limit: int = 100) -> list[tuple[Correction, str]]:
    """Corrections (with their item's audience) oldest first, after `after_id`."""
    stmt = (select(Correction, FeedbackItem.audience).join(FeedbackItem, FeedbackItem.id == Correction.item_id)
            .where(FeedbackItem.audience.in_(list(audiences)), Correction.id > after_id)
            .order_by(Correction.id).limit(limit))
    if item_id is not None:
        stmt = stmt.where(Correction.item_id == item_id)
    if kind is not None:
        stmt = stmt.where(Correction.kind == kind)
    if not include_withdrawn:
        stmt = stmt.where(Correction.withdrawn_at.is_(None))
    return [(row, audience) for row, audience in session.execute(stmt).all()]


def count_active(session: Session) -> dict[str, int]:
    """Active corrections per kind."""
    return dict(session.execute(select(Correction.kind, func.count()).where(Correction.withdrawn_at.is_(None))
                                .group_by(Correction.kind)).all())


def _rollups_current(session: Session) -> bool:
    from feedback.analytics.rollups import rollups_current

    return rollups_current(session, "customer")


def _refresh_rollups(session: Session, item_ids: Sequence[int], was_current: bool) -> None:
    """Recompute the rollup days of the corrected items when the rollups were current, so trends
    show the correction at once; otherwise reads use the items until the next refresh, which
    picks the correction up (`feedback.analytics.rollups`)."""
    from feedback.analytics.rollups import refresh_rollups

    if was_current:
        refresh_rollups(session, item_ids=item_ids)
