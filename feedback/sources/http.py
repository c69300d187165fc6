"""An HTTP client for connectors: JSON in, retries with backoff and jitter, `Retry-After` obeyed.

Timeouts, connection errors, 408/425/429 and 5xx answers are retried; other 4xx answers are
not (retrying a 401 only locks an account) and raise `HttpError` with the likely fix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from feedback.sources.backoff import Backoff, TransientError, retry

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "voc-service/0.1 (+feedback connector)"


class BodyNotJson(TransientError):
    """A 2xx answer whose body is not JSON (often a proxy's error page): worth one more try."""


class HttpError(Exception):
    """A request that failed for good (a 4xx other than 408/425/429, or a body that is not JSON)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpClient:
    """A small synchronous client; one per pull, closed when the pull ends."""

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout: float = 30.0,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        credential_hint: str = "",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.credential_hint = credential_hint
        self.requests = 0
        self._client = httpx.Client(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **dict(headers or {})},
            auth=auth,
            timeout=timeout,
            follow_redirects=True,
            transport=transport,
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, *, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """GET with retries; returns a 2xx response or raises `HttpError` / `TransientError`."""
        return self.request("GET", url, params=params)

    def request(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> httpx.Response:
        """Send with retries on transient failures."""

        def attempt() -> httpx.Response:
            self.requests += 1
            try:
                response = self._client.request(method, url, params=params, json=json)
            except httpx.TransportError as exc:
                raise TransientError(
                    f"{method} {_short(url)}: {type(exc).__name__}: {exc}"
                ) from exc
            if response.status_code in RETRYABLE_STATUS:
                raise TransientError(
                    f"{method} {_short(str(response.url))}: HTTP {response.status_code}",
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            if response.status_code >= 400:
                raise HttpError(self._explain(method, response), status=response.status_code)
            return response

        def on_retry(number: int, exc: BaseException, wait: float) -> None:
            log.warning("%s; retry %d in %.1fs", exc, number, wait)

        return retry(attempt, backoff=self.backoff, sleep=self.sleep, on_retry=on_retry)

    def get_json(
        self, url: str, *, params: Mapping[str, Any] | None = None
    ) -> tuple[Any, httpx.Response]:
        """GET and decode JSON; a body that is not JSON is transient (a proxy's error page)."""

        def attempt() -> tuple[Any, httpx.Response]:
            response = self.get(url, params=params)
            try:
                return response.json(), response
            except ValueError as exc:
                raise BodyNotJson(
                    f"GET {_short(str(response.url))}: the body is not JSON "
                    f"({response.headers.get('content-type', 'no content type')}): "
                    f"{response.text[:120]!r}"
                ) from exc

        return retry(
            attempt,
            backoff=Backoff(attempts=2, base_seconds=self.backoff.base_seconds),
            retry_on=(BodyNotJson,),
            sleep=self.sleep,
        )

    def _explain(self, method: str, response: httpx.Response) -> str:
        where = f"{method} {_short(str(response.url))}: HTTP {response.status_code}"
        body = response.text[:200].strip()
        if response.status_code in (401, 403):
            hint = self.credential_hint or "the credentials named in credentials_env"
            return f"{where} ({body}); check {hint} and the token's permissions"
        if response.status_code == 404:
            return f"{where}; check the URL and ids in the source options ({body})"
        return f"{where} ({body})"


def _short(url: str, limit: int = 160) -> str:
    return url if len(url) <= limit else url[: limit - 3] + "..."
