"""The custom categories page (`/categories`): each label of a custom category head
(`models.custom_heads`, docs/custom.md) over the last weeks, what `GET /v1/custom/{name}` answers.

Its numbers are `feedback.analytics.custom.custom_table`'s, privacy rules included: employee
cells below the minimum group size never enter a total, and the page says how many were hidden.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from api.deps import SessionDep, SettingsDep
from api.web import charts, data
from api.web.pages import _audience, render
from api.web.security import VisitorDep
from feedback.analytics.cells import Slice, iso_week_label
from feedback.analytics.custom import custom_table
from feedback.analytics.stats import wilson_ci
from feedback.corrections.service import custom_heads

router = APIRouter(include_in_schema=False)
WEEKS = (4, 12, 26, 52)


def _weeks_ending(session: Any, audience: str, weeks: int) -> tuple[datetime, datetime, list[str]]:
    """[start, end) of the `weeks` whole weeks up to the audience's newest item, and their labels."""
    last = data.latest_week(session, audience) or data.monday(datetime.now(UTC).date())
    start = last - timedelta(weeks=weeks - 1)
    return start, last + timedelta(weeks=1), [iso_week_label(start + timedelta(weeks=i)) for i in range(weeks)]


def category_view(session: Any, settings: Any, *, audience: str, name: str, weeks: int) -> dict[str, Any]:
    """Per label: the period's volume, share negative with its interval, mean sentiment,
    corrected labels and weekly volumes (None for a week with nothing shown)."""
    start, end, week_labels = _weeks_ending(session, audience, weeks)
    table = custom_table(session, settings, name, Slice(audience=audience, start=start, end=end),
                         interval="week", min_group_size=data.sizes(settings)[0])
    by_label: dict[str, dict[str, Any]] = {}
    for row in table["rows"]:
        cell = by_label.setdefault(row["label"], {"n": 0, "negative": 0, "sentiment_sum": 0.0, "corrected": 0,
                                                  "weekly": dict.fromkeys(week_labels)})
        cell["n"] += row["n"]
        cell["negative"] += round((row["share_negative"] or 0.0) * row["n"])
        cell["sentiment_sum"] += (row["mean_sentiment"] or 0.0) * row["n"]
        cell["corrected"] += row["corrected"]
        cell["weekly"][row["period"]] = row["n"]
    labels = [*table["labels"], *sorted(set(by_label) - set(table["labels"]))]
    rows = []
    for label in labels:
        got = by_label.get(label)
        if got is None:
            rows.append({"label": label, "n": 0})
            continue
        weekly = list(got["weekly"].values())
        rows.append({"label": label, "n": got["n"], "share_negative": got["negative"] / got["n"],
                     "ci": wilson_ci(got["negative"], got["n"]), "mean_sentiment": got["sentiment_sum"] / got["n"],
                     "corrected": got["corrected"], "spark": charts.sparkline(weekly),
                     "weekly": list(zip(week_labels, weekly, strict=True))})
    return {"table": table, "rows": rows, "weeks": week_labels, "total": sum(r["n"] for r in rows),
            "hidden": len(table["suppressed"])}


@router.get("/categories")
def categories_page(request: Request, session: SessionDep, settings: SettingsDep, visitor: VisitorDep,
                    audience: str | None = None, category: str | None = None, weeks: int = 12) -> Response:
    audience = _audience(visitor, audience)
    heads = custom_heads(settings, session)
    if category is not None and category not in heads:
        raise HTTPException(status_code=404, detail=f"no custom category {category!r}; custom categories: "
                            f"{', '.join(heads) or 'none'}")
    if weeks not in WEEKS:
        raise HTTPException(status_code=422, detail=f"weeks is one of {', '.join(map(str, WEEKS))}, not {weeks}")
    name = category or next(iter(heads), None)
    view = category_view(session, settings, audience=audience, name=name, weeks=weeks) if name else None
    return render(request, "categories.html", visitor, audience=audience, heads=heads, name=name, weeks=weeks,
                  week_choices=WEEKS, view=view)
