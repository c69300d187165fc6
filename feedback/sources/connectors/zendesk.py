"""`zendesk`: tickets (and chats) from the Zendesk incremental export API, cursor-based.

    GET /api/v2/incremental/tickets/cursor.json?start_time=<unix>     (first run)
    GET /api/v2/incremental/tickets/cursor.json?cursor=<after_cursor> (every page after)
    {"tickets": [...], "after_cursor": "...", "end_of_stream": false}

Each page is stored with its `after_cursor`, so a crashed run resumes at the next page and the
next scheduled run picks up exactly the tickets created or changed since. Zendesk limits these
exports to 10 requests a minute and answers 429 with `Retry-After`, which the client obeys.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator

from feedback.ingest.mapping import parse_timestamp
from feedback.ingest.readers import RawRecord
from feedback.sources.connectors.base import Batch, Connector, ConnectorOptions, json_record

CHAT_CHANNELS = frozenset(
    {"chat", "chat_transcript", "native_messaging", "messaging", "sms", "whatsapp"}
)
KEYS = (
    "external_id",
    "text",
    "created_at",
    "channel",
    "author",
    "status",
    "priority",
    "type",
    "tags",
    "satisfaction_rating",
    "updated_at",
    "via",
)


class ZendeskOptions(ConnectorOptions):
    subdomain: str | None = Field(default=None, description="<subdomain>.zendesk.com")
    base_url: str | None = Field(default=None, description="Instead of subdomain (tests, proxies)")
    start_time: str | int | None = Field(
        default=None, description="First run: ISO date or Unix time"
    )
    days_back: int = Field(
        default=30, ge=0, description="First run without start_time: this many days"
    )
    per_page: int = Field(default=1000, ge=1, le=1000)
    include_deleted: bool = False
    max_pages: int | None = Field(
        default=None, ge=1, description="Pages per run; the next run goes on"
    )

    @field_validator("start_time")
    @classmethod
    def _readable_start(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            try:
                parse_timestamp(value)
            except (ValueError, OverflowError, OSError):
                raise ValueError(
                    f"start_time {value!r} is neither an ISO date (2026-01-31, "
                    "2026-01-31T08:00:00Z) nor Unix seconds"
                ) from None
        return value

    @model_validator(mode="after")
    def _where(self) -> ZendeskOptions:
        if not (self.subdomain or self.base_url):
            raise ValueError(
                "set subdomain (e.g. 'northwind' for northwind.zendesk.com) or base_url"
            )
        return self

    def root(self) -> str:
        return (self.base_url or f"https://{self.subdomain}.zendesk.com").rstrip("/")


class ZendeskConnector(Connector):
    """Zendesk tickets; a ticket's subject and description are the item's text."""

    kind = "zendesk"
    description = "Zendesk incremental ticket export (cursor pagination, 429 Retry-After)"
    Options = ZendeskOptions
    channel = "ticket"
    emits_channel = True

    @classmethod
    def check_config(cls, config: Any) -> None:
        names = set(config.credentials_env)
        if "oauth_token" not in names and not {"email", "token"} <= names:
            raise ValueError(
                f'source {config.name!r} (zendesk) needs credentials_env = {{email = '
                '"ZENDESK_EMAIL", '
                'token = "ZENDESK_API_TOKEN"} (an API token) or {oauth_token = '
                '"ZENDESK_OAUTH_TOKEN"}'
            )

    def auth_header(self) -> dict[str, str]:
        creds = self.ctx.credentials
        if "oauth_token" in creds:
            return {"Authorization": f"Bearer {creds['oauth_token']}"}
        if "email" in creds and "token" in creds:
            pair = f"{creds['email']}/token:{creds['token']}"
            return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        return {}

    def pull(self, cursor: dict[str, Any] | None) -> Iterator[Batch]:
        opts: ZendeskOptions = self.options
        url = f"{opts.root()}/api/v2/incremental/tickets/cursor.json"
        after = (cursor or {}).get("after_cursor")
        pages = 0
        with self.ctx.http(headers=self.auth_header()) as client:
            while True:
                params: dict[str, Any] = {"per_page": opts.per_page}
                if after:
                    params["cursor"] = after
                else:
                    params["start_time"] = self._start_time()
                document, _ = client.get_json(url, params=params)
                tickets = document.get("tickets") or [] if isinstance(document, dict) else []
                following = document.get("after_cursor") if isinstance(document, dict) else None
                records = self.to_records(tickets, f"{self.ctx.source_name}:page {pages + 1}")
                after = following or after
                pages += 1
                yield Batch(records, {"after_cursor": after})
                end = (
                    not isinstance(document, dict)
                    or document.get("end_of_stream", True)
                    or not following
                )
                if end or (opts.max_pages and pages >= opts.max_pages):
                    return

    def _start_time(self) -> int:
        opts: ZendeskOptions = self.options
        if opts.start_time is not None:
            return int(parse_timestamp(opts.start_time).timestamp())
        # Zendesk refuses start times less than a minute old.
        return int((self.ctx.now - timedelta(days=opts.days_back, minutes=1)).timestamp())

    def to_records(self, tickets: list[Any], location: str) -> list[RawRecord]:
        records = []
        for index, ticket in enumerate(tickets):
            where = f"{location} ticket {index}"
            if not isinstance(ticket, dict):
                records.append(
                    RawRecord(where, None, str(ticket)[:2000], f"{where}: expected a ticket object")
                )
                continue
            if ticket.get("status") == "deleted" and not self.options.include_deleted:
                continue
            records.append(
                json_record(
                    f"{location} ticket {ticket.get('id')}", ticket_payload(ticket), native=ticket
                )
            )
        return records

    def reparse(self, raw: str, location: str) -> list[RawRecord]:
        import json

        return self.to_records([json.loads(raw)], location)


def ticket_payload(ticket: dict[str, Any]) -> dict[str, Any]:
    """A ticket as item fields; the requester id (pseudonymised on ingest) is the author."""
    subject = (ticket.get("subject") or ticket.get("raw_subject") or "").strip()
    description = (ticket.get("description") or "").strip()
    text = (
        f"{subject}\n{description}"
        if subject and description and not description.startswith(subject)
        else description or subject
    )
    via = (ticket.get("via") or {}).get("channel")
    rating = ticket.get("satisfaction_rating") or {}
    payload: dict[str, Any] = dict.fromkeys(KEYS)
    payload.update(
        external_id=str(ticket.get("id")) if ticket.get("id") is not None else None,
        text=text,
        created_at=ticket.get("created_at"),
        channel="chat" if via in CHAT_CHANNELS else "ticket",
        author=str(ticket["requester_id"]) if ticket.get("requester_id") is not None else None,
        status=ticket.get("status"),
        priority=ticket.get("priority"),
        type=ticket.get("type"),
        tags=",".join(ticket.get("tags") or []) or None,
        satisfaction_rating=rating.get("score")
        if isinstance(rating, dict) and rating.get("score") not in (None, "unoffered", "offered")
        else None,
        updated_at=ticket.get("updated_at"),
        via=via,
    )
    return payload
