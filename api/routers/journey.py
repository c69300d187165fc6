"""The journey view: touchpoints in journey order with scores, emotions and needs; the worst flagged."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response

from api.concurrency import cached_answer
from api.deps import SessionDep, SettingsDep, ShareEstimatorDep
from api.params import GroupSizesDep, SliceDep
from feedback.analytics.journey import journey
from feedback.analytics.journey import journey_steps as stage_steps
from feedback.analytics.served import corrected_labels, model_versions
from feedback.config import Settings

router = APIRouter(prefix="/v1", tags=["analytics"])


def journey_steps(settings: Settings, audience: str) -> list[tuple[str, str | None]]:
    """(touchpoint, journey stage) in journey order: the configured taxonomy (`models.touchpoints`),
    else the built-in one with its stages; a stage's touchpoints together."""
    from classifiers.config import DEFAULT_TOUCHPOINTS  # plain data, no model code

    return stage_steps(settings.models.touchpoints or DEFAULT_TOUCHPOINTS, audience)


@router.get("/journey", response_model=dict[str, Any])
def get_journey(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    where: SliceDep,
    sizes: GroupSizesDep,
    estimator: ShareEstimatorDep,
    metric: Literal["net_sentiment", "mean_sentiment", "share_negative", "nps", "csat",
                    "mean_rating"] = "net_sentiment",
) -> Response:
    """Touchpoints in journey order (configured in `models.touchpoints`), each with its metrics
    (n and 95% intervals), top emotions, CX emotions and needs; `worst` names the touchpoint with
    the lowest `metric` among those with enough answers, tested against all other items."""
    def build() -> dict[str, Any]:
        answer = journey(session, where, steps=journey_steps(settings, where.audience),
                         min_group_size=sizes[0], metric=metric, estimator=estimator)
        return {**answer, "corrected_labels": corrected_labels(session, where),
            "model_versions": model_versions(session, where)}

    return cached_answer(request, session, build, audience=where.audience)
