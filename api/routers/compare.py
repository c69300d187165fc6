"""Period comparison: this period against the previous one, or any two ranges, per dimension value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import SessionDep, ShareEstimatorDep
from api.params import Audience, FiltersDep, GroupBy, GroupSizesDep, Moment
from feedback.analytics.cells import Slice
from feedback.analytics.compare import CompareQuery, compare, previous_periods
from feedback.analytics.served import corrected_labels, model_versions

router = APIRouter(prefix="/v1", tags=["analytics"])


@router.get("/compare")
def get_compare(
    session: SessionDep,
    filters: FiltersDep,
    sizes: GroupSizesDep,
    estimator: ShareEstimatorDep,
    audience: Audience = "customer",
    by: GroupBy = "touchpoint",
    metric: Literal["net_sentiment", "mean_sentiment", "share_negative", "nps", "csat", "mean_rating",
                    "volume"] = "net_sentiment",
    period: Annotated[Literal["week", "month"] | None,
                      Query(description="compare the period containing `at` with the one before")] = None,
    at: Annotated[date | None, Query(description="a day in the current period (default: today)")] = None,
    current_start: Moment | None = None,
    current_end: Moment | None = None,
    baseline_start: Moment | None = None,
    baseline_end: Moment | None = None,
    drivers_by: Annotated[Literal["topic", "touchpoint", "journey_stage", "channel", "segment", "source",
                                  "language", "org_unit"] | None,
                          Query(description="what the change is split by (default: topic, or touchpoint "
                                            "when by=topic)")] = None,
    alpha: Annotated[float, Query(gt=0, lt=1, description="false discovery rate")] = 0.05,
) -> dict[str, Any]:
    """Per value of `by` (and overall): the metric in the baseline and current range, the change with
    its 95% interval, p-value, Benjamini-Hochberg q-value, `significant`, and the topics or
    touchpoints that drove it. Give `period` (+ `at`) or all four range bounds."""
    explicit = (current_start, current_end, baseline_start, baseline_end)
    if period is not None:
        current_start, current_end, baseline_start, baseline_end = previous_periods(
            period, at or datetime.now(UTC).date())
    elif any(v is None for v in explicit):
        raise ValueError("give period=week|month (optionally with at=YYYY-MM-DD), or all of current_start, "
                         "current_end, baseline_start and baseline_end")
    query = CompareQuery(current_start=current_start, current_end=current_end,  # type: ignore[arg-type]
                         baseline_start=baseline_start, baseline_end=baseline_end,  # type: ignore[arg-type]
                         by=by, metric=metric, audience=audience, filters=filters, drivers_by=drivers_by,
                         alpha=alpha)
    answer = compare(session, query, min_group_size=sizes[0], estimator=estimator)
    corrected = sum(corrected_labels(session, Slice.make(audience, start, end, filters))
                    for start, end in ((baseline_start, baseline_end), (current_start, current_end)))
    versions = model_versions(session, Slice.make(audience, min(baseline_start, current_start),  # type: ignore[type-var]
                                                  max(baseline_end, current_end), filters))  # type: ignore[type-var]
    return {**answer, "corrected_labels": corrected, "model_versions": versions}
