"""Trends by touchpoint (or any dimension) per period, every metric with its n and 95% interval."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from api.concurrency import cached_answer
from api.deps import SessionDep, ShareEstimatorDep
from api.params import GroupBy, GroupSizesDep, SliceDep
from feedback.analytics.served import corrected_labels, model_versions
from feedback.analytics.shares import describe
from feedback.analytics.trends import TrendQuery, table_rows, trend_table
from feedback.schemas import TrendsOut

router = APIRouter(prefix="/v1", tags=["analytics"])


@router.get("/trends", response_model=TrendsOut)
def get_trends(
    request: Request,
    session: SessionDep,
    where: SliceDep,
    sizes: GroupSizesDep,
    estimator: ShareEstimatorDep,
    by: GroupBy = "touchpoint",
    interval: Literal["day", "week", "month"] = "week",
    mixes: Annotated[bool, Query(description="add need, emotion and CX emotion mixes per row")] = False,
) -> Response:
    """Volume, share, mean and net sentiment, share negative, NPS, CSAT and mean rating per value of
    `by` per period, each with its n and 95% interval (docs/api.md#metrics). share_negative is
    estimated (`share_method` says how; share_negative_cc is the count), docs/api.md#shares.

    Filters: audience, start/end and any dimension (`touchpoint=delivery&channel=survey`). Employee
    rows below the minimum group size come back with `suppressed: true` and no numbers; employee
    data is reported by whole ISO weeks (months are whole weeks too) and takes one filter at most.
    """
    def build() -> TrendsOut:
        query = TrendQuery(by=by, interval=interval, audience=where.audience, start=where.start, end=where.end,
                           filters=dict(where.filters), mixes=mixes)
        table = trend_table(session, query, min_group_size=sizes[0])
        rows = table_rows(session, table, mixes=mixes, min_group_size=sizes[0], estimator=estimator)
        return TrendsOut(by=by, interval=interval, audience=where.audience, rows=rows, source=table.source,
                         start=table.start, end=table.end, filters=dict(where.filters), **describe(estimator),
                         corrected_labels=corrected_labels(session, where),
                         model_versions=model_versions(session, where))

    return cached_answer(request, session, build, audience=where.audience)
