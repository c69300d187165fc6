"""Storage model of the service (SQLAlchemy 2.x, typed). Migrations live in `feedback/migrations`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, utcnow

AUDIENCES = ("customer", "employee")
CHANNELS = ("survey", "review", "app_review", "ticket", "chat", "social", "pulse", "email", "other")


class Source(Base):
    """Where feedback comes from: a file, an export, an API, or pushes through the API."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    connector: Mapped[str] = mapped_column(String(50))
    audience: Mapped[str] = mapped_column(String(20), default="customer")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    schedule: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Watermark / cursor for incremental pulls, committed with the items it covers.
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    runs: Mapped[list[IngestionRun]] = relationship(back_populates="source", lazy="raise")


class IngestionRun(Base):
    """One pull of one source: what it found and how it ended."""

    __tablename__ = "ingestion_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|succeeded|failed
    location: Mapped[str | None] = mapped_column(Text)
    items_seen: Mapped[int] = mapped_column(Integer, default=0)
    items_new: Mapped[int] = mapped_column(Integer, default=0)
    items_updated: Mapped[int] = mapped_column(Integer, default=0)
    items_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    items_dead: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # The encoding its file(s) were read in, given or detected ("cp1252"; "a.csv: utf-8, b.csv: cp1252").
    encoding: Mapped[str | None] = mapped_column(String(200))

    source: Mapped[Source] = relationship(back_populates="runs", lazy="raise")


class FeedbackItem(Base):
    """One piece of feedback, PII-redacted, with what the source said about it."""

    __tablename__ = "feedback_items"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_feedback_items_audience_created", "audience", "created_at"),
        # the feedback explorer's pages: an audience's items by id (keyset), not a scan of the other's
        Index("ix_feedback_items_audience_id", "audience", "id"),
        Index("ix_feedback_items_touchpoint_created", "touchpoint", "created_at"),
        Index("ix_feedback_items_org_unit", "org_unit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(40))
    audience: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str | None] = mapped_column(String(30))
    touchpoint: Mapped[str | None] = mapped_column(String(100))
    journey_stage: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    org_unit: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    nps: Mapped[int | None] = mapped_column(SmallInteger)
    csat: Mapped[int | None] = mapped_column(SmallInteger)
    stars: Mapped[float | None] = mapped_column(Float)
    author: Mapped[str | None] = mapped_column(String(64))  # keyed pseudonym, never the raw author
    created_at: Mapped[datetime] = mapped_column(index=True)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingestion_runs.id", ondelete="SET NULL"))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    tag: Mapped[Tag | None] = relationship(back_populates="item", lazy="raise", uselist=False)


class Tag(Base):
    """What the models said about an item; one current row per item, naming the models that made it."""

    __tablename__ = "tags"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("feedback_items.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(100))
    # indexed: which versions tagged what is read by seeking it (feedback.analytics.served.tag_versions)
    model_version: Mapped[str] = mapped_column(String(50), index=True)
    model_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sentiment: Mapped[str] = mapped_column(String(10))
    sentiment_score: Mapped[float] = mapped_column(Float)
    sentiment_probs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The calibrated p(negative), as a column so shares can be estimated from SQL sums
    # (feedback.analytics.shares); None on tags made before it was stored.
    p_negative: Mapped[float | None] = mapped_column(Float)
    emotions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    emotion_scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cx_emotions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    needs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    need_scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    touchpoint: Mapped[str | None] = mapped_column(String(100))
    touchpoint_confidence: Mapped[float | None] = mapped_column(Float)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="SET NULL"), index=True)
    topic_version: Mapped[int | None] = mapped_column(Integer, index=True)  # stale ones re-assigned
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Custom category heads (`models.custom_heads`): name -> {"labels": [...], "scores": {label: p}}
    custom: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tagged_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    item: Mapped[FeedbackItem] = relationship(back_populates="tag", lazy="raise")


class TagLabel(Base):
    """One label of a multi-label tag (need, emotion, CX emotion), flat for fast group-by."""

    __tablename__ = "tag_labels"
    __table_args__ = (Index("ix_tag_labels_kind_label", "kind", "label"),)

    item_id: Mapped[int] = mapped_column(
        ForeignKey("feedback_items.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # need|emotion|cx_emotion
    label: Mapped[str] = mapped_column(String(50), primary_key=True)
    score: Mapped[float] = mapped_column(Float)


class ItemEmbedding(Base):
    """The shared encoder's sentence embedding of an item, kept so topic refits never re-encode."""

    __tablename__ = "item_embeddings"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("feedback_items.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float16, little-endian


class TopicModelVersion(Base):
    """One fitted topic model for an audience; every version is kept."""

    __tablename__ = "topic_model_versions"
    __table_args__ = (UniqueConstraint("audience", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    audience: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    n_documents: Mapped[int] = mapped_column(Integer, default=0)
    n_topics: Mapped[int] = mapped_column(Integer, default=0)
    outlier_share: Mapped[float | None] = mapped_column(Float)
    path: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)


class Topic(Base):
    """A topic with a stable id across refits; user edits (rename, pin, merge) survive refits."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    audience: Mapped[str] = mapped_column(String(20), index=True)
    label: Mapped[str] = mapped_column(String(200))
    keywords: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|retired|merged
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id", ondelete="SET NULL"))
    created_version: Mapped[int | None] = mapped_column(Integer)
    retired_version: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer, default=0)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeadLetter(Base):
    """A row that could not be ingested, with its raw payload and the reason; retryable."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingestion_runs.id", ondelete="SET NULL"))
    location: Mapped[str | None] = mapped_column(Text)  # e.g. "survey.csv:row 17"
    raw_payload: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None]


class ApiKey(Base):
    """An API key: only its hash is stored, with its scopes."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WebUser(Base):
    """A person who signs in to the web app with a password (`voc users create`); the password
    is stored only as an Argon2id hash. Scopes mean what an API key's do."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the row its SHA-256. It belongs to
    the API key or the user that signed in, whose scopes (and revocation) are read on every page."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SchedulerLease(Base):
    """A lease lock so that only one scheduler process runs jobs; its heartbeat shows on /health."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class JobRun(Base):
    """One run of a named job (tagging, a source pull, a refit, a digest)."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(200), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class Digest(Base):
    """A stored weekly digest for one audience."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("audience", "week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    audience: Mapped[str] = mapped_column(String(20))
    week: Mapped[str] = mapped_column(String(10))  # ISO week, e.g. 2026-W47
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    markdown: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")


class IdempotencyKey(Base):
    """A pushed batch's idempotency key and the response it got, replayed on retries."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnalyticsRollup(Base):
    """Sufficient statistics of customer feedback per period and dimension value (kept by the tagging job).

    Every column but `labels` and `updated_at` is a sum, so weeks and months are sums of days and
    trends, journeys and the BI export read a few hundred rows instead of scanning items.
    `value` is the stable code: the topic id or source id for those dimensions, else the value.
    """

    __tablename__ = "analytics_rollups"
    __table_args__ = (
        Index("ix_analytics_rollups_dimension", "audience", "grain", "dimension", "period_start"),
    )

    audience: Mapped[str] = mapped_column(String(20), primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)  # day|week|month
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    n_tagged: Mapped[int] = mapped_column(Integer, default=0)
    n_positive: Mapped[int] = mapped_column(Integer, default=0)
    n_negative: Mapped[int] = mapped_column(Integer, default=0)
    sentiment_sum: Mapped[float] = mapped_column(Float, default=0.0)
    sentiment_sumsq: Mapped[float] = mapped_column(Float, default=0.0)
    nps_n: Mapped[int] = mapped_column(Integer, default=0)
    nps_promoters: Mapped[int] = mapped_column(Integer, default=0)
    nps_detractors: Mapped[int] = mapped_column(Integer, default=0)
    csat_n: Mapped[int] = mapped_column(Integer, default=0)
    csat_satisfied: Mapped[int] = mapped_column(Integer, default=0)
    rating_n: Mapped[int] = mapped_column(Integer, default=0)
    rating_sum: Mapped[float] = mapped_column(Float, default=0.0)
    rating_sumsq: Mapped[float] = mapped_column(Float, default=0.0)
    p_negative_sum: Mapped[float] = mapped_column(Float, default=0.0)
    p_negative_sumsq: Mapped[float] = mapped_column(Float, default=0.0)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # "need:price" -> items
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class RollupState(Base):
    """How far the rollups of one audience are current: every tag up to `tags_watermark` is in."""

    __tablename__ = "analytics_rollup_state"

    audience: Mapped[str] = mapped_column(String(20), primary_key=True)
    tags_watermark: Mapped[datetime | None]
    # The topic models and topics the rollups were built with: a refit or a merge moves items
    # between topics without new tags, so a different stamp means the rollups must be rebuilt.
    topics_stamp: Mapped[str | None] = mapped_column(String(100))
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)
    rebuilt_at: Mapped[datetime | None]


class TagWorker(Base):
    """A running tagging worker (`voc worker`, `voc tag`), kept alive by its heartbeat; what
    `/health` lists. A row whose `expires_at` passed belongs to a worker that stopped or died."""

    __tablename__ = "tag_workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default="idle")  # idle|tagging|stopping
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    items_tagged: Mapped[int] = mapped_column(Integer, default=0)
    batches: Mapped[int] = mapped_column(Integer, default=0)


class TagClaim(Base):
    """An item a tagging worker has taken, until it stores the item's tags or `expires_at` passes
    (`feedback.claims`). No row, or an expired one: the item is free to claim."""

    __tablename__ = "tag_claims"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("feedback_items.id", ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[str] = mapped_column(String(64), index=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Correction(Base):
    """An analyst's label for one item and one kind of tag (sentiment, emotion, need, touchpoint,
    topic), beside the model's tag, never over it. Analytics serve it in place of the model's
    label while it is active; withdrawing keeps the row (the audit) and ends that. `held_out`
    puts the item in the deployment's evaluation slice (`feedback.corrections.service`), which
    adaptation never trains on. One active correction per item and kind."""

    __tablename__ = "corrections"
    __table_args__ = (
        Index("ix_corrections_active_item_kind", "item_id", "kind", unique=True,
              sqlite_where=text("withdrawn_at IS NULL"), postgresql_where=text("withdrawn_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_items.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(100))  # sentiment|emotion|need|touchpoint|topic|custom:NAME
    # One label; emotion and need corrections give the whole set, '|'-joined ('' = none).
    label: Mapped[str] = mapped_column(String(1000))
    model_label: Mapped[str | None] = mapped_column(String(1000))  # what the model said, when corrected
    held_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[str | None] = mapped_column(String(200))
    # The latest of created_at and withdrawn_at: what cached answers and rollups check.
    changed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CorrectionLabel(Base):
    """The labels of an active emotion or need correction, flat like `TagLabel` (the emotion
    ones with their CX groups), so analytics group them the same way; deleted on withdrawal."""

    __tablename__ = "correction_labels"
    __table_args__ = (
        Index("ix_correction_labels_item_kind", "item_id", "kind"),
        Index("ix_correction_labels_kind_label", "kind", "label"),
    )

    correction_id: Mapped[int] = mapped_column(
        ForeignKey("corrections.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # need|emotion|cx_emotion
    label: Mapped[str] = mapped_column(String(50), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("feedback_items.id", ondelete="CASCADE"))


class ModelVersion(Base):
    """A tagger version adapted from corrections (`voc adapt`): its files under the var dir, its
    scores against the champion on the held-back corrections, and whether it went live."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    base: Mapped[str] = mapped_column(String(100))  # the version it was trained from (the champion)
    status: Mapped[str] = mapped_column(String(20))  # live|candidate|rejected|retired|failed
    path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="voc adapt")
    n_train: Mapped[int] = mapped_column(Integer, default=0)  # corrections trained on
    n_held_out: Mapped[int] = mapped_column(Integer, default=0)  # corrections it was judged on
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    promoted_at: Mapped[datetime | None]


class ModelPromotion(Base):
    """Every change of the live tagger version: a promotion (by adaptation or by hand) or a
    rollback; `version` None means the shipped model."""

    __tablename__ = "model_promotions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str | None] = mapped_column(String(100))
    previous: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))  # promote|rollback
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
