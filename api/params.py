"""Query parameters shared by the analytics endpoints: audience, date range, dimension filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Path, Query
from pydantic import AfterValidator

from api.deps import SettingsDep
from feedback.analytics.cells import Slice
from feedback.privacy.groups import min_sizes

# Ids and keyset cursors are SQLite INTEGER / PostgreSQL BIGINT: a bigger number cannot name a row,
# and handed to the driver it fails the request (500) instead of answering it.
DB_INT_MAX = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="the row's id")]
IdCursor = Annotated[int | None, Query(ge=0, le=DB_INT_MAX, description="next_cursor of the previous page")]



def _storable_moment(value: datetime) -> datetime:
    """A moment the database can compare with: one that exists in UTC (not 0001-01-01T00:00-05:00,
    which is in year 0 there), as PostgreSQL's timestamps and Python's datetimes both need."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("this moment is outside the years 1 to 9999 in UTC") from None
    return value


Moment = Annotated[datetime, AfterValidator(_storable_moment)]

Audience = Literal["customer", "employee"]
GroupBy = Literal["touchpoint", "journey_stage", "channel", "source", "segment", "org_unit", "language",
                  "topic", "need", "emotion", "cx_emotion"]
_F = "filter: only items with this value"


def dimension_filters(
    touchpoint: Annotated[str | None, Query(description=_F)] = None,
    journey_stage: Annotated[str | None, Query(description=_F)] = None,
    channel: Annotated[str | None, Query(description=_F)] = None,
    source: Annotated[str | None, Query(description=_F + " (source name or id)")] = None,
    segment: Annotated[str | None, Query(description=_F)] = None,
    org_unit: Annotated[str | None, Query(description=_F)] = None,
    language: Annotated[str | None, Query(description=_F + " (ISO 639-1)")] = None,
    topic: Annotated[str | None, Query(description=_F + " (topic id)")] = None,
    need: Annotated[str | None, Query(description=_F + " (items with this need)")] = None,
    emotion: Annotated[str | None, Query(description=_F + " (items with this emotion)")] = None,
    cx_emotion: Annotated[str | None, Query(description=_F + " (items with this CX emotion)")] = None,
) -> dict[str, str]:
    """Every dimension filter given, as {dimension: value}."""
    given = {"touchpoint": touchpoint, "journey_stage": journey_stage, "channel": channel, "source": source,
             "segment": segment, "org_unit": org_unit, "language": language, "topic": topic, "need": need,
             "emotion": emotion, "cx_emotion": cx_emotion}
    return {k: v for k, v in given.items() if v not in (None, "")}


FiltersDep = Annotated[dict[str, str], Depends(dimension_filters)]


def slice_params(
    filters: FiltersDep,
    audience: Audience = "customer",
    start: Annotated[Moment | None, Query(description="from this moment (inclusive, ISO 8601)")] = None,
    end: Annotated[Moment | None, Query(description="until this moment (exclusive, ISO 8601)")] = None,
) -> Slice:
    """The slice a request covers."""
    return Slice.make(audience, start, end, filters)


SliceDep = Annotated[Slice, Depends(slice_params)]


def group_sizes(settings: SettingsDep) -> tuple[int, int]:
    """(scores, comments) minimum group sizes for employee data."""
    return min_sizes(settings.privacy)


GroupSizesDep = Annotated[tuple[int, int], Depends(group_sizes)]
