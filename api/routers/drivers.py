"""Key drivers of NPS, rating, CSAT or sentiment: topics, needs, emotions and touchpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import SessionDep
from api.params import GroupSizesDep, SliceDep
from feedback.analytics.drivers import DEFAULT_DIMENSIONS, DriverQuery, key_drivers
from feedback.analytics.served import corrected_labels, model_versions

router = APIRouter(prefix="/v1", tags=["analytics"])


@router.get("/drivers")
def get_drivers(
    session: SessionDep,
    where: SliceDep,
    sizes: GroupSizesDep,
    outcome: Literal["nps", "rating", "csat", "sentiment"] = "nps",
    dimensions: Annotated[list[Literal["topic", "need", "emotion", "cx_emotion", "touchpoint", "journey_stage",
                                       "channel", "segment"]] | None,
                          Query(description="repeat to pick several (default: topic, need, emotion, touchpoint)")
                          ] = None,
    min_support: Annotated[int, Query(ge=5, description="fewest items with a feature to report it")] = 30,
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
) -> dict[str, Any]:
    """Each feature's score with and without it, the difference (95% interval, Welch p, BH q),
    its impact on the overall score, and (customer data) its OLS coefficient holding the others
    fixed. Uses the newest 200,000 items with the outcome in the range."""
    query = DriverQuery(outcome=outcome, audience=where.audience, start=where.start, end=where.end,
                        dimensions=tuple(dimensions or DEFAULT_DIMENSIONS), filters=dict(where.filters),
                        min_support=min_support, alpha=alpha)
    answer = key_drivers(session, query, min_group_size=sizes[0])
    return {**answer, "corrected_labels": corrected_labels(session, where),
            "model_versions": model_versions(session, where)}
