"""Representative quotes for any slice, PII-redacted."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from api.deps import SessionDep
from api.params import GroupSizesDep, SliceDep
from feedback.analytics.quotes import QuoteQuery, representative_quotes
from feedback.analytics.served import corrected_labels, model_versions

router = APIRouter(prefix="/v1", tags=["analytics"])


def _redactor(request: Request) -> Any:
    redactor = getattr(request.app.state, "redactor", None)
    if redactor is None:
        from feedback.privacy.redaction import Redactor

        redactor = Redactor.default(request.app.state.settings.privacy.extra_patterns)
        request.app.state.redactor = redactor
    return redactor


@router.get("/quotes")
def get_quotes(
    request: Request,
    session: SessionDep,
    where: SliceDep,
    sizes: GroupSizesDep,
    sentiment: Literal["positive", "neutral", "negative"] | None = None,
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> dict[str, Any]:
    """Typical items of the slice (nearest its centroid, kept diverse), redacted again on output.
    Employee quotes need at least `min_group_size_comments` people in the slice and carry no id,
    date or author."""
    query = QuoteQuery(audience=where.audience, start=where.start, end=where.end, filters=dict(where.filters),
                       sentiment=sentiment, limit=limit)
    answer = representative_quotes(session, query, min_group_size_comments=sizes[1], redact=_redactor(request).redact)
    return {**answer, "corrected_labels": corrected_labels(session, where),
            "model_versions": model_versions(session, where)}
