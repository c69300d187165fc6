"""The BI export: a flat, documented, stable table as JSON, CSV or Parquet, paged, incremental."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.concurrency import cached_answer
from api.deps import SessionDep, SettingsDep, ShareEstimatorDep
from api.params import Audience, GroupSizesDep
from feedback.analytics.aggregates import (
    AGGREGATE_COLUMNS,
    COLUMN_NAMES,
    EXPORT_DIMENSIONS,
    AggregatePage,
    AggregateQuery,
    aggregates_page,
)
from feedback.analytics.cells import Slice, day_start
from feedback.analytics.served import corrected_labels, model_versions

router = APIRouter(prefix="/v1", tags=["bi"])


def _next_url(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return str(request.url.include_query_params(cursor=cursor))


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def to_csv(page: AggregatePage) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMN_NAMES)
    for row in page.rows:
        writer.writerow([_csv_value(row[c]) for c in COLUMN_NAMES])
    return out.getvalue().encode()


def to_parquet(page: AggregatePage) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"date": pa.date32(), "string": pa.string(), "bool": pa.bool_(), "int64": pa.int64(),
             "float64": pa.float64(), "timestamp": pa.timestamp("us", tz="UTC")}
    schema = pa.schema([pa.field(name, types[kind]) for name, kind, _ in AGGREGATE_COLUMNS])
    columns = {name: [row[name] for row in page.rows] for name in COLUMN_NAMES}
    table = pa.Table.from_pydict(columns, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


@router.get("/aggregates")
def get_aggregates(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    sizes: GroupSizesDep,
    estimator: ShareEstimatorDep,
    audience: Audience = "customer",
    interval: Literal["day", "week", "month"] = "week",
    dimension: Annotated[list[str] | None, Query(description=f"repeat to pick several; default all: "
                                                             f"{', '.join(EXPORT_DIMENSIONS)}")] = None,
    start: Annotated[date | None, Query(description="periods starting on or after this day")] = None,
    end: Annotated[date | None, Query(description="periods starting before this day")] = None,
    updated_since: Annotated[datetime | None, Query(description="only rows changed after this moment")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int | None, Query(ge=1, description="rows per page (at most api.page_size_max)")] = None,
    format: Annotated[Literal["json", "csv", "parquet"], Query(description="response format")] = "json",
) -> Response:
    """One row per (period, dimension, value) with every metric, its n and 95% interval; the columns
    are documented in docs/api.md#bi-export and at /v1/aggregates/schema and never change order.
    Page with `cursor` (the next one is in `next_cursor`, or the `X-Next-Cursor` and `Link`
    headers for CSV and Parquet); pull changes with `updated_since`. share_negative is estimated
    (`share_method` in the body, `X-Share-Method` header); share_negative_cc is the count."""
    def build() -> Response:
        size = min(limit or settings.api.page_size_max, settings.api.page_size_max)
        query = AggregateQuery(audience=audience, interval=interval, dimensions=tuple(dimension or ()), start=start,
                               end=end, updated_since=updated_since, cursor=cursor, limit=size)
        page = aggregates_page(session, query, min_group_size=sizes[0], estimator=estimator)
        next_url = _next_url(request, page.next_cursor)
        where = Slice.make(audience, day_start(start) if start else None, day_start(end) if end else None)
        corrected = corrected_labels(session, where)
        versions = model_versions(session, where)
        headers = {"X-Rows": str(len(page.rows)), "X-Source": page.source, "X-Share-Method": page.share_method,
                   "X-Corrected-Labels": str(corrected),
                   "X-Model-Versions": ",".join(v["version"] for v in versions)}
        if page.next_cursor:
            headers["X-Next-Cursor"] = page.next_cursor
            headers["Link"] = f'<{next_url}>; rel="next"'
        if format == "csv":
            return Response(to_csv(page), media_type="text/csv; charset=utf-8", headers=headers)
        if format == "parquet":
            return Response(to_parquet(page), media_type="application/vnd.apache.parquet", headers=headers)
        rows = [{k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in row.items()}
                for row in page.rows]
        body = {"columns": list(COLUMN_NAMES), "rows": rows, "next_cursor": page.next_cursor,
                "next_url": next_url, "source": page.source, "share_method": page.share_method,
                "corrected_labels": corrected, "model_versions": versions}
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json", headers=headers)

    # A page is built once while the data behind it is unchanged (api.cache_seconds at most).
    return cached_answer(request, session, build, audience=audience)


@router.get("/aggregates/schema")
def aggregates_schema(estimator: ShareEstimatorDep) -> dict[str, Any]:
    """The export's columns in order, with types and meanings."""
    return {"columns": [{"name": n, "type": t, "description": d} for n, t, d in AGGREGATE_COLUMNS],
            "key": ["period_start", "audience", "dimension", "value_code"],
            "dimensions": list(EXPORT_DIMENSIONS), "share_method": estimator.method}
