"""Alembic environment: the URL comes from the caller's config or from the service settings."""

from __future__ import annotations

from alembic import context

from feedback import models  # noqa: F401  (registers every table on Base.metadata)
from feedback.config import get_settings
from feedback.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


# Tables that belong to something else: APScheduler's job store creates and manages its own
# (jobs.scheduler), so autogenerate must neither drop nor create it.
EXTERNAL_TABLES = frozenset({"apscheduler_jobs"})
# Indexes the migrations create on one engine only, over expressions autogenerate cannot compare
# (PostgreSQL's full-text index on item text): not in the models, so not "removed" by a check.
MIGRATION_ONLY_INDEXES = frozenset({"ix_feedback_items_text_search"})


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object) -> bool:
    if type_ == "table" and name in EXTERNAL_TABLES:
        return False
    if type_ == "index" and reflected and name in MIGRATION_ONLY_INDEXES:
        return False
    if type_ in ("index", "column", "unique_constraint", "foreign_key_constraint"):
        table = getattr(getattr(obj, "table", None), "name", None)
        if table in EXTERNAL_TABLES:
            return False
    return True


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
