"""The digest job: make, store and send the weekly digests (scheduler, `voc digest`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from feedback.config import Settings
from feedback.db import get_engine, session_scope
from feedback.insights.service import deliver_digest, digest_summary, has_feedback, make_digest
from feedback.insights.weeks import last_complete_week, parse_week

AUDIENCES = ("customer", "employee")


def run_digests(
    settings: Settings,
    *,
    week: str | None = None,
    audiences: Sequence[str] = AUDIENCES,
    send: bool = True,
) -> dict[str, Any]:
    """Make each audience's digest for `week` (default: the last complete week), store it, send it.

    Each digest is committed before it is sent, so a failing webhook or mail server never loses it;
    an audience without any feedback in the week or the 8 before is skipped.
    """
    week = week or last_complete_week()
    parse_week(week)
    engine = get_engine(settings.database_url)
    detail: dict[str, Any] = {"week": week}
    for audience in audiences:
        with session_scope(engine) as session:
            if not has_feedback(session, audience=audience, week=week):
                detail[audience] = {"skipped": "no feedback in the week or the 8 before"}
                continue
            digest = make_digest(session, settings=settings, audience=audience, week=week)
        summary = digest_summary(digest)
        if send:
            summary["delivery"] = [r.to_dict() for r in deliver_digest(digest, settings=settings)]
        detail[audience] = summary
    return detail


def digest_job_spec(settings: Settings) -> Any:
    """The weekly job: both audiences' digests of the last complete week, sent where configured."""
    from apscheduler.triggers.cron import CronTrigger

    from jobs.scheduler import JobSpec  # here, not at import: the scheduler imports this module

    return JobSpec(
        "digest",
        "weekly digests (customer, employee) of the last complete week, stored and sent",
        CronTrigger.from_crontab(
            settings.scheduler.digest_cron, timezone=settings.scheduler.timezone
        ),
        lambda: run_digests(settings),
    )
