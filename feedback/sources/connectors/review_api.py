"""`review_api`: a paginated JSON review API (the shape of most review platforms' APIs).

    GET {url}?page=1&per_page=100&updated_since=2026-01-01T00:00:00Z
    {"reviews": [{"id": "r1", "title": "...", "body": "...", "rating": 4, "created_at": "...",
                  "updated_at": "...", "author": {"name": "..."}, "product": "..."}], "page": 1}

It is `http_json` with these defaults; any of them can be overridden in the options.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from feedback.sources.connectors.http_json import (
    HttpJsonConnector,
    HttpJsonOptions,
    IncrementalOptions,
    PaginationOptions,
)

REVIEW_FIELDS = {
    "external_id": "$.id",
    "title": "$.title",
    "body": "$.body",
    "stars": "$.rating",
    "created_at": "$.created_at",
    "updated_at": "$.updated_at",
    "author": "$.author.name",
    "language": "$.language",
    "product": "$.product",
}


class ReviewApiOptions(HttpJsonOptions):
    items_path: str = "$.reviews"
    fields: dict[str, str] = Field(default_factory=lambda: dict(REVIEW_FIELDS))
    pagination: PaginationOptions = Field(
        default_factory=lambda: PaginationOptions(type="page", size_param="per_page", page_size=100)
    )
    incremental: IncrementalOptions | None = Field(
        default_factory=lambda: IncrementalOptions(param="updated_since", field="$.updated_at")
    )


class ReviewApiConnector(HttpJsonConnector):
    """Reviews from a paginated JSON API; the title and body together are the item's text."""

    kind = "review_api"
    description = "Paginated JSON review API (page / per_page / updated_since)"
    Options = ReviewApiOptions
    channel = "review"

    def extract(self, item: dict[str, Any]) -> dict[str, Any]:
        payload = super().extract(item)
        if payload.get("text") is None and ("title" in payload or "body" in payload):
            title = str(payload.pop("title", None) or "").strip()
            body = str(payload.pop("body", None) or "").strip()
            payload["text"] = f"{title}\n{body}" if title and body else title or body
        return payload
