"""Topics: the taxonomy with sizes, sentiment, trends and quotes; rename, merge and pin.

Auth: a key reads (and edits) the topics of the audiences it may read: cx for customer, hr for
employee, admin all. A topic of another audience looks absent (404), as items do.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, model_validator

from api.auth import Principal, PrincipalDep, get_principal
from api.concurrency import cached_answer
from api.deps import SessionDep, SettingsDep
from api.params import DB_INT_MAX, RowId
from feedback.topics import service, taxonomy
from feedback.topics.taxonomy import TopicEditError

router = APIRouter(prefix="/v1/topics", tags=["topics"], dependencies=[Depends(get_principal)])

Audience = Literal["customer", "employee"]
Interval = Literal["day", "week", "month"]


class TopicEdit(BaseModel):
    """Rename and/or pin a topic; a user label and a pinned label survive refits."""

    label: str | None = Field(default=None, min_length=1, max_length=200)
    pinned: bool | None = None

    @model_validator(mode="after")
    def _an_edit(self) -> TopicEdit:
        if self.label is None and self.pinned is None:
            raise ValueError("give `label` to rename and/or `pinned` to pin")
        return self


class TopicMerge(BaseModel):
    """Merge this topic into `into`: its items move now, and after every refit."""

    into: int = Field(ge=1, le=DB_INT_MAX)


def _readable(principal: Principal, audience: str) -> None:
    if not principal.can_read(audience):
        raise HTTPException(
            status_code=403,
            detail=f"{audience} topics need a key with scope "
            f"{'cx' if audience == 'customer' else 'hr'} or admin",
        )


def _topic_audience(session: Any, principal: Principal, topic_id: int) -> str:
    try:
        topic = taxonomy.get_topic(session, topic_id)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    if not principal.can_read(topic.audience):
        raise HTTPException(status_code=404, detail=f"no topic with id {topic_id}")
    return topic.audience


@router.get("", response_model=dict[str, Any])
def list_topics(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    audience: Audience = "customer",
    interval: Interval = "week",
    periods: Annotated[int, Query(ge=1, le=104, description="periods of trend per topic")] = 8,
    include_inactive: Annotated[bool, Query(description="also retired and merged topics")] = False,
) -> Response:
    """Topics of an audience: id, label, keywords, size, sentiment, trend (emerging flag), 3 quotes.

    Employee topics with fewer people than the minimum group size come back `suppressed`, and
    quote nothing below the minimum for comments.
    """
    _readable(principal, audience)

    def build() -> dict[str, Any]:
        return service.list_topics(session, settings=settings, audience=audience, interval=interval,
                                   periods=periods, include_inactive=include_inactive)

    return cached_answer(request, session, build, depends_on="tags")


@router.get("/versions")
def list_versions(
    session: SessionDep, principal: PrincipalDep, audience: Audience = "customer"
) -> dict[str, Any]:
    """Every fitted version of the audience's topic model, oldest first."""
    _readable(principal, audience)
    return {"audience": audience, "versions": service.version_rows(session, audience=audience)}


@router.get("/{topic_id}")
def get_topic(
    topic_id: RowId,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    interval: Interval = "week",
) -> dict[str, Any]:
    """One topic with its whole series, its edits and what was merged into it."""
    _topic_audience(session, principal, topic_id)
    return service.topic_detail(session, settings=settings, topic_id=topic_id, interval=interval)


@router.patch("/{topic_id}")
def edit_topic(
    topic_id: RowId,
    edit: TopicEdit,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Rename (`label`) and/or pin (`pinned`) a topic."""
    _topic_audience(session, principal, topic_id)
    try:
        if edit.label is not None:
            taxonomy.rename(session, topic_id=topic_id, label=edit.label)
        if edit.pinned is not None:
            taxonomy.pin(session, topic_id=topic_id, pinned=edit.pinned)
    except TopicEditError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return service.topic_detail(session, settings=settings, topic_id=topic_id)


@router.post("/{topic_id}/merge")
def merge_topic(
    topic_id: RowId,
    merge: TopicMerge,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Merge a topic into another of the same audience; returns the topic merged into."""
    _topic_audience(session, principal, topic_id)
    _topic_audience(session, principal, merge.into)
    try:
        target = taxonomy.merge(session, topic_id=topic_id, into_id=merge.into)
    except TopicEditError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return service.topic_detail(session, settings=settings, topic_id=target.id)
