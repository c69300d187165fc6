"""What analytics read: the model's tags with analysts' active corrections in their place.

`ServedTag` has every column of `Tag`; its sentiment (with sentiment_score and p_negative:
1/0/-1 and 1/0 for a corrected label), touchpoint and topic_id are the corrected ones where an
item has an active correction of that kind. It is an alias of a subquery over `tags` without
joins, so both engines fold it into the query around it, and each override is guarded by an
uncorrelated EXISTS (computed once per statement): with no corrections of a kind, reading it
costs nothing more than reading `tags`.

Multi-label kinds (need, emotion, cx_emotion) are two tables: the model's `TagLabel` rows of
items without an active correction of that kind (`model_labels_live`), and the corrected
`CorrectionLabel` rows. Grouped queries run once on each and add up (cells are sums);
`item_labels` reads both for given items.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Integer, and_, case, cast, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from feedback.models import Correction, CorrectionLabel, Tag, TagLabel

SENTIMENT_SCORE = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}


def _active(kind: str) -> ColumnElement[bool]:
    return and_(Correction.kind == kind, Correction.withdrawn_at.is_(None))


def _any_active(kind: str) -> ColumnElement[bool]:
    return exists().where(_active(kind))


def _corrected(kind: str) -> Any:
    """The item's active correction of `kind`, correlated to the `tags` row."""
    return (select(Correction.label).where(Correction.item_id == Tag.item_id, _active(kind))
            .correlate(Tag).limit(1).scalar_subquery())


def _guarded(kind: str, corrected: Any, model: Any) -> Any:
    return case((_any_active(kind), func.coalesce(corrected, model)), else_=model)


def _served_columns() -> list[Any]:
    sentiment = _corrected("sentiment")
    score = case(*((sentiment == label, literal(value)) for label, value in SENTIMENT_SCORE.items()),
                 else_=Tag.sentiment_score)
    p_negative = case((sentiment == "negative", literal(1.0)), (sentiment.is_not(None), literal(0.0)),
                      else_=Tag.p_negative)
    overrides: dict[str, Any] = {
        "sentiment": _guarded("sentiment", sentiment, Tag.sentiment),
        "sentiment_score": case((_any_active("sentiment"), score), else_=Tag.sentiment_score),
        "p_negative": case((_any_active("sentiment"), p_negative), else_=Tag.p_negative),
        "touchpoint": _guarded("touchpoint", _corrected("touchpoint"), Tag.touchpoint),
        "topic_id": _guarded("topic", cast(_corrected("topic"), Integer), Tag.topic_id),
    }
    table = Tag.__table__
    return [overrides[c.name].label(c.name) if c.name in overrides else c for c in table.c]


served_tags = select(*_served_columns()).select_from(Tag).subquery("served_tags")
ServedTag = aliased(Tag, served_tags, adapt_on_names=True)

# The kind of correction that replaces a TagLabel kind.
CORRECTED_BY = {"need": "need", "emotion": "emotion", "cx_emotion": "emotion"}


def model_labels_live(labels: Any = TagLabel) -> ColumnElement[bool]:
    """For rows of `labels` (TagLabel or an alias): the item has no active correction of the
    row's kind, so the model's label stands."""
    kind = case((labels.kind == "need", literal("need")), else_=literal("emotion"))
    replaced = exists().where(Correction.item_id == labels.item_id, Correction.kind == kind,
                              Correction.withdrawn_at.is_(None))
    anything = exists().where(Correction.kind.in_(("need", "emotion")), Correction.withdrawn_at.is_(None))
    return or_(~anything, ~replaced)


def label_corrections_exist(session: Session) -> bool:
    """Whether any emotion or need correction is active (then label queries read both tables)."""
    return session.scalar(select(exists().where(Correction.kind.in_(("need", "emotion")),
                                                Correction.withdrawn_at.is_(None)))) or False


def label_exists(item_id: Any, kind: str, label: str) -> ColumnElement[bool]:
    """SQL: the item is served `label` of `kind` (the model's, unless corrected, or the correction's)."""
    model = aliased(TagLabel)
    corrected = aliased(CorrectionLabel)
    return or_(
        exists().where(and_(model.item_id == item_id, model.kind == kind, model.label == label,
                            model_labels_live(model))),
        exists().where(and_(corrected.item_id == item_id, corrected.kind == kind, corrected.label == label)),
    )


def item_labels(session: Session, item_ids: Sequence[int], kinds: Iterable[str] | None = None,
                *, by_score: bool = False) -> list[tuple[int, str, str]]:
    """The served (item_id, kind, label) rows of `item_ids`; corrected labels come first and,
    with `by_score`, the model's by falling score."""
    kinds = list(kinds) if kinds is not None else None
    out: list[tuple[int, str, str]] = []
    ids = list(item_ids)
    check = label_corrections_exist(session)
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        if check:
            stmt = select(CorrectionLabel.item_id, CorrectionLabel.kind, CorrectionLabel.label).where(
                CorrectionLabel.item_id.in_(chunk))
            if kinds is not None:
                stmt = stmt.where(CorrectionLabel.kind.in_(kinds))
            out.extend(tuple(row) for row in session.execute(stmt))
        stmt = select(TagLabel.item_id, TagLabel.kind, TagLabel.label).where(TagLabel.item_id.in_(chunk))
        if kinds is not None:
            stmt = stmt.where(TagLabel.kind.in_(kinds))
        if check:
            stmt = stmt.where(model_labels_live())
        if by_score:
            stmt = stmt.order_by(TagLabel.score.desc())
        out.extend(tuple(row) for row in session.execute(stmt))
    return out


def label_tables(session: Session) -> list[tuple[Any, ColumnElement[bool] | None]]:
    """The tables a grouped label query runs on, each with the condition its rows need: the
    model's labels alone while no emotion or need correction is active, else both."""
    if not label_corrections_exist(session):
        return [(TagLabel, None)]
    return [(TagLabel, model_labels_live()), (CorrectionLabel, None)]


def corrected_labels(session: Session, where: Any) -> int:
    """How many labels of a result over the slice `where` are human-corrected: the active
    corrections of its items (what every analytics answer reports as `corrected_labels`)."""
    from feedback.analytics.cells import apply_slice, base_select
    from feedback.models import FeedbackItem

    if not session.scalar(select(exists().where(Correction.withdrawn_at.is_(None)))):
        return 0
    stmt = base_select(func.count(Correction.id)).join(
        Correction, and_(Correction.item_id == FeedbackItem.id, Correction.withdrawn_at.is_(None)))
    return session.scalar(apply_slice(stmt, where)) or 0


def tag_versions(session: Session, *, limit: int = 20) -> list[str]:
    """The distinct `Tag.model_version` values, read by seeking the index on it once per value
    (a skip scan by hand: each step is `min(version) > previous`), so it costs a few index
    lookups whatever the number of tags; at most `limit` of them."""
    found: list[str] = []
    while len(found) < limit:
        stmt = select(func.min(Tag.model_version))
        if found:
            stmt = stmt.where(Tag.model_version > found[-1])
        value = session.scalar(stmt)
        if value is None:
            break
        found.append(value)
    return found


def model_versions(session: Session, where: Any) -> list[dict[str, Any]]:
    """Which tagger versions the tags of a result over the slice `where` rest on, each with its
    share of the slice's tagged items, largest first (what analytics answers report as
    `model_versions`). While one version has tagged everything (the usual case) that is read from
    the index alone; during a re-tag after a promotion or rollback the slice is counted."""
    from feedback.analytics.cells import apply_slice, base_select
    from feedback.models import FeedbackItem

    versions = tag_versions(session)
    live = _live_tag_version(session)
    if len(versions) <= 1:
        return [{"version": v, "share": 1.0, "live": v == live} for v in versions]
    stmt = (base_select(ServedTag.model_version, func.count(FeedbackItem.id))
            .where(ServedTag.model_version.is_not(None)).group_by(ServedTag.model_version))
    counts = {v: n for v, n in session.execute(apply_slice(stmt, where)) if n}
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if where.audience == "employee":  # counts (or shares) of a small group would tell its size
        return [{"version": v, "live": v == live} for v, _ in ordered]
    total = sum(counts.values())
    return [{"version": v, "share": round(n / total, 4), "items": n, "live": v == live} for v, n in ordered]


def _live_tag_version(session: Session) -> str:
    """The `Tag.model_version` of the live tagger version (the one re-tagging moves towards)."""
    from feedback.corrections.versions import live_version, tag_version

    return tag_version(live_version(session)) or _shipped_version()


@functools.cache
def _shipped_version() -> str:
    from classifiers.tagger import WEIGHTS_DIR, read_heads_meta

    return str(read_heads_meta(WEIGHTS_DIR)["version"])
