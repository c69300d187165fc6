"""Custom categories over time (`models.custom_heads`): what each label's volume and sentiment did."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from api.concurrency import cached_answer
from api.deps import SessionDep, SettingsDep
from api.params import GroupSizesDep, SliceDep
from feedback.analytics.custom import UnknownCategory, custom_table
from feedback.privacy.groups import check_employee_query

router = APIRouter(prefix="/v1", tags=["analytics"])


class CustomRow(BaseModel):
    period: str
    period_start: str
    label: str = Field(description="a label of the head; '(untagged)' for items tagged before the head was added, "
                       "'(no label)' for a multi-label item with none")
    n: int
    share_negative: float | None
    share_negative_ci: list[float] | None = Field(description="95% Wilson interval")
    mean_sentiment: float | None = Field(description="mean sentiment score, -1 to 1")
    corrected: int = Field(description="items of the cell whose label an analyst corrected")


class CustomOut(BaseModel):
    name: str
    labels: list[str]
    multi_label: bool
    head_version: str | None
    audience: str
    interval: str
    start: datetime
    end: datetime
    rows: list[CustomRow]
    suppressed: list[dict[str, Any]] = Field(default_factory=list, description="employee cells hidden by the "
                                             "minimum group size (docs/privacy.md)")
    corrected_labels: int = Field(description="labels in this answer that analysts corrected (custom:NAME)")


@router.get("/custom/{name}", response_model=CustomOut)
def get_custom(request: Request, name: str, session: SessionDep, settings: SettingsDep, where: SliceDep,
               sizes: GroupSizesDep, interval: Literal["week", "month"] = "week") -> Response:
    """Volume, share negative (with its 95% interval) and mean sentiment per period and label of the
    custom category `name` (`voc train custom`, `models.custom_heads`), the analysts' `custom:NAME`
    corrections in place of the head's labels. Default range: the last 12 weeks; at most
    53 weeks (MAX_WEEKS). Employee cells below the minimum group size are hidden (`suppressed`),
    and employee tables take no dimension filter."""
    if where.audience == "employee":
        check_employee_query(where.filters, interval=interval)

    def build() -> dict[str, Any]:
        try:
            return custom_table(session, settings, name, where, interval=interval, min_group_size=sizes[0])
        except UnknownCategory as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    return cached_answer(request, session, build, audience=where.audience, depends_on="items")
