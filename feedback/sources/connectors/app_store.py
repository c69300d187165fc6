"""`app_store`: Apple App Store customer reviews from the iTunes RSS feed (JSON).

    GET https://itunes.apple.com/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json
    {"feed": {"entry": [{"id": {"label": "1093..."}, "title": {"label": "..."},
              "content": {"label": "...", "attributes": {"type": "text"}}, "im:rating": "
              "{"label": "4"},
              "im:version": {"label": "5.2"}, "updated": {"label": "2026-09-01T10:00:00-07:00"},
              "author": {"name": {"label": "..."}}}, ...], "link": [..., {"attributes": {"rel": "
              ""last", ...}}]}}

The feed lists the newest reviews first, at most 10 pages of 50. The watermark is the newest
`updated` of the last completed run; a run reads pages until it reaches reviews older than
that. While a run is under way the cursor keeps the old watermark and the next page, so a
crash never moves the watermark past reviews that were not stored yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import Field

from feedback.ingest.mapping import parse_timestamp
from feedback.ingest.readers import RawRecord
from feedback.sources.connectors.base import Batch, Connector, ConnectorOptions, json_record

FEED_URL = "{base_url}/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json"
KEYS = (
    "external_id",
    "text",
    "created_at",
    "stars",
    "author",
    "app_version",
    "vote_sum",
    "vote_count",
    "country",
)
_LAST_PAGE = re.compile(r"/page=(\d+)/")


class AppStoreOptions(ConnectorOptions):
    app_id: str = Field(description="The numeric App Store id (apps.apple.com/.../id<app_id>)")
    country: str = Field(default="us", min_length=2, max_length=2)
    base_url: str = Field(
        default="https://itunes.apple.com", description="Overridable for tests and proxies"
    )
    max_pages: int = Field(default=10, ge=1, le=10, description="Apple serves at most 10 pages")


class AppStoreConnector(Connector):
    """App Store reviews; the title and the review together are the item's text."""

    kind = "app_store"
    description = "Apple App Store customer reviews (iTunes RSS JSON feed)"
    Options = AppStoreOptions
    channel = "app_review"

    def pull(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        opts: AppStoreOptions = self.options
        state = dict(cursor or {})
        since = state.get("since")
        if state.get("next_page"):  # an unfinished run
            page, high = int(state["next_page"]), state.get("high")
        else:
            page, high = 1, since
        floor = _when(since)
        last_page = opts.max_pages
        with self.ctx.http() as client:
            while page <= last_page:
                url = FEED_URL.format(
                    base_url=opts.base_url.rstrip("/"),
                    country=opts.country,
                    page=page,
                    app_id=opts.app_id,
                )
                document, _ = client.get_json(url)
                feed = document.get("feed", {}) if isinstance(document, dict) else {}
                last_page = min(last_page, _last_page(feed) or last_page)
                entries = feed.get("entry") or []
                if isinstance(entries, dict):  # a feed with one entry has no list
                    entries = [entries]
                reviews = [e for e in entries if isinstance(e, dict) and "im:rating" in e]
                fresh = [e for e in reviews if _on_or_after(_when(_label(e, "updated")), floor)]
                for entry in fresh:
                    updated = _label(entry, "updated")
                    when, newest = _when(updated), _when(high)
                    if when is not None and (newest is None or when > newest):
                        high = updated
                records = self.to_records(fresh, f"{self.ctx.source_name}:page {page}")
                reached_old = len(fresh) < len(reviews)
                page += 1
                if not reviews or reached_old or page > last_page:
                    yield Batch(records, {"since": high, "next_page": None})
                    return
                yield Batch(records, {"since": since, "next_page": page, "high": high})
            yield Batch([], {"since": high, "next_page": None})

    def to_records(self, entries: list[dict[str, Any]], location: str) -> list[RawRecord]:
        return [
            json_record(
                f"{location} review {_label(e, 'id')}",
                review_payload(e, self.options.country),
                native=e,
            )
            for e in entries
        ]

    def reparse(self, raw: str, location: str) -> list[RawRecord]:
        import json

        return self.to_records([json.loads(raw)], location)


def review_payload(entry: dict[str, Any], country: str) -> dict[str, Any]:
    title, body = _label(entry, "title").strip(), _label(entry, "content").strip()
    payload: dict[str, Any] = dict.fromkeys(KEYS)
    payload.update(
        external_id=_label(entry, "id") or None,
        text=f"{title}\n{body}" if title and body else body or title,
        created_at=_label(entry, "updated") or None,
        stars=_label(entry, "im:rating") or None,
        author=((entry.get("author") or {}).get("name") or {}).get("label"),
        app_version=_label(entry, "im:version") or None,
        vote_sum=_label(entry, "im:voteSum") or None,
        vote_count=_label(entry, "im:voteCount") or None,
        country=country,
    )
    return payload


def _label(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if isinstance(value, dict):
        return str(value.get("label") or "")
    return "" if value is None else str(value)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, OSError):
        return None


def _on_or_after(when: datetime | None, floor: datetime | None) -> bool:
    """Whether a review is not older than the watermark (an undated review counts as new)."""
    return floor is None or when is None or when >= floor


def _last_page(feed: dict[str, Any]) -> int | None:
    for link in feed.get("link") or []:
        attributes = link.get("attributes", {}) if isinstance(link, dict) else {}
        if attributes.get("rel") == "last":
            match = _LAST_PAGE.search(attributes.get("href", ""))
            if match:
                return int(match.group(1))
    return None
