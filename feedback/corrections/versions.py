"""Tagger versions adapted from corrections: which is live, promotions, rollbacks, re-tagging.

The shipped model (classifiers/weights) is live until a version is promoted. A version's files
live under `<var_dir>/models/versions/<name>/` (never in the repository); its row in
`model_versions` says whether it is live, a candidate, rejected (with the numbers that rejected
it) or retired. Every change of the live version is a `model_promotions` row. After a change,
the tag job re-tags stored items newest first (`jobs.retag`); until an item's new tags are
stored, the API serves its old ones.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.models import ModelPromotion, ModelVersion, Tag

log = logging.getLogger(__name__)
SHIPPED = "shipped"


class VersionError(ValueError):
    """A promotion or rollback that cannot be done; the message says why."""


def versions_dir(var_dir: Path) -> Path:
    return Path(var_dir) / "models" / "versions"


def live_version(session: Session) -> ModelVersion | None:
    """The promoted version that is live, or None for the shipped model."""
    return session.scalar(select(ModelVersion).where(ModelVersion.status == "live"))


def live_heads_dir(settings: Any) -> str | None:
    """The heads folder of the live version for `settings`' database, None for the shipped model
    (or a database without the tables yet). What the service's tagger loads."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from feedback.db import get_engine

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).exists():
        return None  # no database yet (before `voc init`): the shipped model, and no file made
    try:
        with Session(get_engine(settings.database_url)) as session:
            row = live_version(session)
    except DBAPIError as exc:  # no database or no table yet (before `voc init`): the shipped model
        log.warning("could not read the live tagger version (%s); using the shipped model", exc.__class__.__name__)
        return None
    if row is None or not row.path:
        return None
    if not (Path(row.path) / "heads.json").exists():
        log.error("live tagger version %s has no files at %s; using the shipped model", row.name, row.path)
        return None
    return row.path


def _set_live(session: Session, row: ModelVersion | None, *, by: str, action: str, reason: str) -> str | None:
    current = live_version(session)
    if current is not None and row is not None and current.id == row.id:
        raise VersionError(f"{row.name} is already live")
    previous = current.name if current is not None else None
    if current is not None:
        current.status = "retired"
    if row is not None:
        row.status = "live"
        row.promoted_at = utcnow()
    session.flush()
    session.add(ModelPromotion(version=row.name if row is not None else None, previous=previous, action=action,
                               by=by, reason=reason))
    session.flush()
    return previous


def promote(session: Session, name: str, *, by: str, reason: str, action: str = "promote") -> int:
    """Make version `name` live (or the shipped model, with `name` 'shipped'); returns how many
    tagged items now wait for re-tagging."""
    if name == SHIPPED:
        if live_version(session) is None:
            raise VersionError("the shipped model is already live")
        _set_live(session, None, by=by, action=action, reason=reason)
        return stale_count(session, None)
    row = session.scalar(select(ModelVersion).where(ModelVersion.name == name))
    if row is None:
        known = ", ".join(session.scalars(select(ModelVersion.name).order_by(ModelVersion.id))) or "none"
        raise VersionError(f"no model version {name!r} (versions: {known}; `voc models list`)")
    if row.status == "failed" or not row.path or not (Path(row.path) / "heads.json").exists():
        raise VersionError(f"{name} has no usable files ({row.status}); it cannot go live")
    _set_live(session, row, by=by, action=action, reason=reason)
    return stale_count(session, row)


def rollback(session: Session, *, by: str, reason: str) -> tuple[str | None, int]:
    """Make the version that was live before the current one live again (the shipped model when
    none was); returns (its name or None, items waiting for re-tagging)."""
    current = live_version(session)
    if current is None:
        raise VersionError("the shipped model is live: nothing to roll back")
    last = session.scalar(select(ModelPromotion).where(ModelPromotion.version == current.name)
                          .order_by(ModelPromotion.id.desc()).limit(1))
    target_name = last.previous if last is not None else None
    target = (session.scalar(select(ModelVersion).where(ModelVersion.name == target_name))
              if target_name else None)
    _set_live(session, target, by=by, action="rollback", reason=reason)
    return (target.name if target is not None else None), stale_count(session, target)


def tag_version(row: ModelVersion | None) -> str | None:
    """The `Tag.model_version` the tags of a live version carry (None: the shipped model's)."""
    return row.detail.get("tag_version", row.name) if row is not None else None


def stale_count(session: Session, row: ModelVersion | None) -> int:
    """Tagged items whose tags another version made than `row` (None: the shipped model)."""
    from classifiers.tagger import WEIGHTS_DIR, read_heads_meta

    wanted = tag_version(row) or read_heads_meta(WEIGHTS_DIR)["version"]
    return session.scalar(select(func.count()).select_from(Tag).where(Tag.model_version != wanted)) or 0


def describe_versions(session: Session) -> dict[str, Any]:
    """Every version (shipped first), the live one, and the promotions: what `voc models list`
    and GET /v1/models show."""
    from classifiers.tagger import WEIGHTS_DIR, read_heads_meta

    live = live_version(session)
    shipped = read_heads_meta(WEIGHTS_DIR)["version"]
    versions: list[dict[str, Any]] = [{"name": SHIPPED, "status": "live" if live is None else "shipped",
                                       "live": live is None, "base": None, "tag_version": shipped,
                                       "path": str(WEIGHTS_DIR)}]
    for row in session.scalars(select(ModelVersion).order_by(ModelVersion.id)):
        versions.append({"name": row.name, "status": row.status, "live": row.status == "live", "base": row.base,
                         "created_at": row.created_at, "promoted_at": row.promoted_at, "n_train": row.n_train,
                         "n_held_out": row.n_held_out, "scores": row.scores, "path": row.path,
                         "error": row.detail.get("error")})
    promotions = [{"at": p.at, "action": p.action, "version": p.version, "previous": p.previous, "by": p.by,
                   "reason": p.reason} for p in session.scalars(select(ModelPromotion).order_by(ModelPromotion.id))]
    return {"live": live.name if live is not None else SHIPPED, "versions": versions, "promotions": promotions}
