"""`push` and `webhook`: sources whose items arrive over HTTP instead of being pulled.

`push` is `POST /v1/feedback` (a batch in the service's own format, with an optional
`Idempotency-Key`). `webhook` is `POST /v1/webhooks/{source}`: any JSON body, mapped with
JSONPath, accepted only with a valid HMAC-SHA256 signature of the raw body under the secret
named in `credentials_env.secret`:

    X-Signature-256: sha256=<hex of HMAC-SHA256(secret, body)>

With `timestamp_header` set, the signed message is `<timestamp>.<body>` and deliveries older
than `tolerance_seconds` are refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from feedback.ingest.readers import RawRecord
from feedback.sources.connectors.base import (
    Connector,
    ConnectorOptions,
    canonical_payload,
    json_record,
)
from feedback.sources.jsonpath import JsonPathText, compile_path


class SignatureError(PermissionError):
    """A webhook delivery whose signature does not check out."""


class PushConnector(Connector):
    """Items pushed to POST /v1/feedback."""

    kind = "push"
    description = "Pushed through POST /v1/feedback (Idempotency-Key supported)"
    pulls = False
    emits_channel = True


class WebhookOptions(ConnectorOptions):
    signature_header: str = "X-Signature-256"
    signature_prefix: str = Field(default="sha256=", description="Text before the hex digest")
    timestamp_header: str | None = Field(
        default=None, description="e.g. X-Timestamp (Unix seconds)"
    )
    tolerance_seconds: int = Field(default=300, ge=1)
    items_path: JsonPathText = Field(
        default="$", description="JSONPath of the item list; a lone object is one item"
    )
    fields: dict[str, JsonPathText] = Field(
        default_factory=dict, description="item field -> JSONPath inside an item"
    )


class WebhookConnector(Connector):
    """Signed JSON deliveries to POST /v1/webhooks/{source}."""

    kind = "webhook"
    description = "Webhook endpoint POST /v1/webhooks/{source} with an HMAC-SHA256 signature"
    Options = WebhookOptions
    required_credentials = ("secret",)
    pulls = False
    maps_per_item = True

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:
        """Raise `SignatureError` unless the delivery is signed with the source's secret."""
        opts: WebhookOptions = self.options
        secret = self.ctx.credentials["secret"].encode()
        given = headers.get(opts.signature_header) or ""
        if not given:
            raise SignatureError(f"missing {opts.signature_header} header")
        if opts.signature_prefix and given.startswith(opts.signature_prefix):
            given = given[len(opts.signature_prefix) :]
        message = body
        if opts.timestamp_header:
            stamp = headers.get(opts.timestamp_header) or ""
            try:
                age = abs((now if now is not None else time.time()) - float(stamp))
            except ValueError:
                raise SignatureError(f"missing or invalid {opts.timestamp_header} header") from None
            if age > opts.tolerance_seconds:
                raise SignatureError(
                    f"{opts.timestamp_header} is {age:.0f}s old (limit {opts.tolerance_seconds}s)"
                )
            message = stamp.encode() + b"." + body
        expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given.strip().lower()):
            raise SignatureError("signature does not match")

    def to_records(self, document: Any, location: str) -> list[RawRecord]:
        opts: WebhookOptions = self.options
        found = compile_path(opts.items_path).find(document)
        items = found[0] if len(found) == 1 and isinstance(found[0], list) else found
        records = []
        for index, item in enumerate(items):
            where = f"{location} item {index}"
            if not isinstance(item, dict):
                records.append(
                    RawRecord(
                        where,
                        None,
                        json.dumps(item, default=str)[:2000],
                        f"{where}: expected a JSON object",
                    )
                )
                continue
            mapped = (
                {name: compile_path(path).first(item) for name, path in opts.fields.items()}
                if opts.fields
                else item
            )
            records.append(
                json_record(where, canonical_payload(mapped, self.ctx.mapping), native=item)
            )
        return records

    def reparse(self, raw: str, location: str) -> list[RawRecord]:
        return self.to_records(json.loads(raw), location)
