"""`http_json`: any JSON API: a URL, an auth header, pagination and a JSONPath field mapping.

    [sources.options]
    url = "https://api.example.com/v2/feedback"
    items_path = "$.data[*]"
    fields = { external_id = "$.id", text = "$.attributes.body",
               created_at = "$.attributes.created", stars = "$.attributes.rating.value" }
    auth = { type = "bearer", credential = "token" }   # credentials_env = { token = "API_TOKEN" }
    pagination = { type = "cursor", cursor_param = "page[cursor]",
                   cursor_path = "$.meta.next_cursor" }
    incremental = { param = "updated_since", field = "$.attributes.updated" }

The cursor committed with each page says where the run stands (page, offset, cursor or next
URL) and the watermark the run started from, so a crashed run resumes at the next page; when a
run completes, the newest `incremental.field` seen becomes the next run's watermark.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from feedback.ingest.mapping import parse_timestamp
from feedback.ingest.readers import RawRecord
from feedback.sources.connectors.base import (
    Batch,
    Connector,
    ConnectorOptions,
    canonical_payload,
    json_record,
)
from feedback.sources.jsonpath import JsonPathText, compile_path, valid_path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthOptions(_Strict):
    """How the credential is sent; the values come from credentials_env."""

    type: Literal["bearer", "header", "basic"] = "bearer"
    header: str = Field(default="Authorization", description="For type 'header': e.g. X-Api-Key")
    scheme: str | None = Field(
        default=None, description="For type 'header': a prefix such as 'Token'"
    )
    credential: str = Field(default="token", description="Name in credentials_env")
    username_credential: str = "username"
    password_credential: str = "password"


class PaginationOptions(_Strict):
    """How to get the next page."""

    type: Literal["none", "page", "offset", "cursor", "link", "next_url"] = "none"
    page_param: str = "page"
    start_page: int = 1
    size_param: str | None = Field(default=None, description="e.g. per_page or limit")
    page_size: int = Field(default=100, ge=1, le=10_000)
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    cursor_path: str = Field(
        default="$.next_cursor", description="JSONPath of the next cursor in a page"
    )
    end_path: str | None = Field(default=None, description="JSONPath of an end-of-stream flag")
    next_url_path: str = Field(
        default="$.next", description="For type next_url: JSONPath of the next URL"
    )
    max_pages: int | None = Field(
        default=None, ge=1, description="Pages per run; the next run goes on"
    )
    keep_cursor: bool = Field(
        default=False, description="Cursor streams: start the next run from the last cursor"
    )

    @field_validator("cursor_path", "end_path", "next_url_path")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return None if value is None else valid_path(value)


class IncrementalOptions(_Strict):
    """A watermark: only ask for items changed since the newest one seen."""

    param: str = Field(description="Query parameter that takes the watermark, e.g. updated_since")
    field: str = Field(description="JSONPath in an item of its change time, e.g. $.updated_at")
    initial: str | None = Field(default=None, description="Watermark of the first run")

    @field_validator("field")
    @classmethod
    def _path(cls, value: str) -> str:
        return valid_path(value)


class HttpJsonOptions(ConnectorOptions):
    url: str
    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    auth: AuthOptions | None = None
    items_path: JsonPathText = Field(default="$", description="JSONPath of the list of items in a page")
    fields: dict[str, JsonPathText] = Field(
        default_factory=dict, description="item field (or extra name) -> JSONPath inside an item"
    )
    pagination: PaginationOptions = Field(default_factory=PaginationOptions)
    incremental: IncrementalOptions | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"url {value!r} must start with http:// or https://")
        return value


class HttpJsonConnector(Connector):
    """Pages of JSON items from an HTTP API."""

    kind = "http_json"
    description = "Generic HTTP JSON API (page, offset, cursor or Link-header pagination)"
    Options = HttpJsonOptions
    maps_per_item = True

    @classmethod
    def check_config(cls, config: Any) -> None:
        auth = config.parsed_options().auth
        if auth is None:
            return
        wanted = (
            [auth.username_credential, auth.password_credential]
            if auth.type == "basic"
            else [auth.credential]
        )
        missing = [name for name in wanted if name not in config.credentials_env]
        if missing:
            raise ValueError(
                f"source {config.name!r} ({config.connector}): auth sends the credential(s) "
                f"{missing}, which credentials_env does not name; add e.g. credentials_env = "
                f'{{{missing[0]} = "{config.name.upper().replace("-", "_")}_{missing[0].upper()}"}}'
            )

    # -- mapping ----------------------------------------------------------------------------
    def items(self, document: Any) -> list[Any]:
        found = compile_path(self.options.items_path).find(document)
        if len(found) == 1 and isinstance(found[0], list):
            return found[0]
        return found

    def extract(self, item: dict[str, Any]) -> dict[str, Any]:
        """The item's fields by JSONPath (`fields`), else the item itself."""
        if not self.options.fields:
            return item
        return {name: compile_path(path).first(item) for name, path in self.options.fields.items()}

    def to_payload(self, item: dict[str, Any]) -> dict[str, Any]:
        return canonical_payload(self.extract(item), self.ctx.mapping)

    def to_records(self, items: list[Any], location: str) -> list[RawRecord]:
        records = []
        for index, item in enumerate(items):
            where = f"{location} item {index}"
            if not isinstance(item, dict):
                records.append(
                    RawRecord(where, None, str(item)[:2000], f"{where}: expected a JSON object")
                )
                continue
            records.append(json_record(where, self.to_payload(item), native=item))
        return records

    def reparse(self, raw: str, location: str) -> list[RawRecord]:
        import json

        return self.to_records([json.loads(raw)], location)

    # -- requests ---------------------------------------------------------------------------
    def client_kwargs(self) -> dict[str, Any]:
        headers = dict(self.options.headers)
        auth = self.options.auth
        creds = self.ctx.credentials
        if auth is not None:
            if auth.type == "bearer":
                headers["Authorization"] = f"Bearer {creds[auth.credential]}"
            elif auth.type == "header":
                value = creds[auth.credential]
                headers[auth.header] = f"{auth.scheme} {value}" if auth.scheme else value
            else:
                pair = f"{creds[auth.username_credential]}:{creds[auth.password_credential]}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return {"headers": headers, "timeout": self.options.timeout_seconds}

    def pull(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        opts: HttpJsonOptions = self.options
        paging = opts.pagination
        state = dict(cursor or {})
        since = (
            state.get("since")
            if state.get("since") is not None
            else (opts.incremental.initial if opts.incremental else None)
        )
        position = state.get("position")
        if position is not None:  # an unfinished run: go on from its last committed page
            run_since, high = state.get("run_since"), state.get("high")
        else:
            run_since, high = since, since
            position = self._start(state)
        pages = 0
        with self.ctx.http(**self.client_kwargs()) as client:
            while position is not None:
                url, params = self._request(position, run_since)
                # No params for a next URL: httpx would replace the query it carries.
                document, response = client.get_json(url, params=params or None)
                items = self.items(document)
                records = self.to_records(items, f"{self.ctx.source_name}:{_describe(position)}")
                high = self._newest(items, high)
                position = self._next(position, document, response, items)
                pages += 1
                if position is not None and paging.max_pages and pages >= paging.max_pages:
                    # Stop here; the next run continues from this page.
                    yield Batch(
                        records,
                        {
                            "since": since,
                            "run_since": run_since,
                            "high": high,
                            "position": position,
                        },
                    )
                    return
                if position is None:
                    break
                yield Batch(
                    records,
                    {"since": since, "run_since": run_since, "high": high, "position": position},
                )
            final: dict[str, Any] = {"since": high, "position": None}
            if paging.type == "cursor" and paging.keep_cursor and self._last_cursor is not None:
                final["resume_cursor"] = self._last_cursor
            yield Batch(records if pages else [], final)

    _last_cursor: Any = None

    def _start(self, state: dict[str, Any]) -> dict[str, Any]:
        paging = self.options.pagination
        if paging.type == "page":
            return {"page": paging.start_page}
        if paging.type == "offset":
            return {"offset": 0}
        if paging.type == "cursor":
            return {"cursor": state.get("resume_cursor")}
        return {"url": None}

    def _request(self, position: dict[str, Any], since: Any) -> tuple[str, dict[str, Any]]:
        opts: HttpJsonOptions = self.options
        paging = opts.pagination
        if position.get("url"):
            return position["url"], {}  # a next URL carries its own query
        params = dict(opts.params)
        if opts.incremental and since is not None:
            params[opts.incremental.param] = since
        if paging.size_param:
            params[paging.size_param] = paging.page_size
        if paging.type == "page":
            params[paging.page_param] = position["page"]
        elif paging.type == "offset":
            params[paging.offset_param] = position["offset"]
        elif paging.type == "cursor" and position.get("cursor"):
            params[paging.cursor_param] = position["cursor"]
        return opts.url, params

    def _next(
        self, position: dict[str, Any], document: Any, response: httpx.Response, items: list[Any]
    ) -> dict[str, Any] | None:
        paging = self.options.pagination
        short = bool(paging.size_param) and len(items) < paging.page_size
        if paging.end_path and compile_path(paging.end_path).first(document):
            if paging.type == "cursor":
                self._last_cursor = compile_path(paging.cursor_path).first(
                    document
                ) or position.get("cursor")
            return None
        if paging.type == "page":
            return None if not items or short else {"page": position["page"] + 1}
        if paging.type == "offset":
            return None if not items or short else {"offset": position["offset"] + len(items)}
        if paging.type == "cursor":
            following = compile_path(paging.cursor_path).first(document)
            self._last_cursor = following or position.get("cursor")
            if not following or not items or following == position.get("cursor"):
                return None
            return {"cursor": following}
        if paging.type == "link":
            link = response.links.get("next", {}).get("url")
            return {"url": urljoin(str(response.url), link)} if link and items else None
        if paging.type == "next_url":
            link = compile_path(paging.next_url_path).first(document)
            return {"url": urljoin(str(response.url), str(link))} if link and items else None
        return None

    def _newest(self, items: list[Any], high: Any) -> Any:
        incremental = self.options.incremental
        if incremental is None:
            return high
        path = compile_path(incremental.field)
        best, best_key = high, _sort_key(high)
        for item in items:
            value = path.first(item) if isinstance(item, dict) else None
            key = _sort_key(value)
            if key is not None and (best_key is None or key > best_key):
                best, best_key = value, key
        return best


def _sort_key(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, OSError, TypeError):
        return None


def _describe(position: dict[str, Any]) -> str:
    if "page" in position:
        return f"page {position['page']}"
    if "offset" in position:
        return f"offset {position['offset']}"
    if position.get("cursor"):
        return f"cursor {str(position['cursor'])[:40]}"
    if position.get("url"):
        return str(position["url"])[-60:]
    return "first page"
