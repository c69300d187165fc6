"""Trends by touchpoint (or another dimension) per period."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import SessionDep, SettingsDep
from feedback.analytics.trends import TrendQuery, trends
from feedback.schemas import TrendsOut

router = APIRouter(prefix="/v1", tags=["analytics"])


@router.get("/trends", response_model=TrendsOut)
def get_trends(
    session: SessionDep,
    settings: SettingsDep,
    by: Literal["touchpoint", "journey_stage", "channel", "segment", "org_unit", "language"] = "touchpoint",
    interval: Literal["day", "week", "month"] = "week",
    audience: Literal["customer", "employee"] = "customer",
    start: datetime | None = None,
    end: datetime | None = None,
    touchpoint: Annotated[str | None, Query(description="filter")] = None,
    channel: Annotated[str | None, Query(description="filter")] = None,
    segment: Annotated[str | None, Query(description="filter")] = None,
    org_unit: Annotated[str | None, Query(description="filter")] = None,
) -> TrendsOut:
    """Volume, mean sentiment and share negative per value of `by` per period.

    Employee groups smaller than the minimum group size come back with `suppressed: true`.
    """
    filters = {k: v for k, v in {"touchpoint": touchpoint, "channel": channel, "segment": segment,
                                 "org_unit": org_unit}.items() if v}
    query = TrendQuery(by=by, interval=interval, audience=audience, start=start, end=end, filters=filters)
    rows = trends(session, query, min_group_size=settings.privacy.min_group_size_scores)
    return TrendsOut(by=by, interval=interval, audience=audience, rows=rows)
