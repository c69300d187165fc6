"""Retries with exponential backoff and full jitter, for HTTP requests and for whole pulls.

Full jitter (a uniform wait between 0 and the exponential ceiling) spreads retries of many
clients apart, so a recovering API is not hit by all of them at the same instant. A server's
own `Retry-After` wins over the computed wait, capped so that a hostile value cannot stall a
pull for hours.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class TransientError(Exception):
    """A failure worth retrying (a timeout, a 5xx, a 429), with the server's wait if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Backoff:
    """How often and how long to wait between attempts."""

    attempts: int = 5
    base_seconds: float = 0.5
    cap_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry `attempt` (1-based): base * 2^(attempt-1), capped."""
        return min(self.cap_seconds, self.base_seconds * (2 ** max(0, attempt - 1)))

    def delay(
        self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry `attempt`: the server's Retry-After, else full jitter."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after_seconds))
        return (rng or random).uniform(0.0, self.ceiling(attempt))


def retry(
    fn: Callable[[], T],
    *,
    backoff: Backoff,
    retry_on: tuple[type[BaseException], ...] = (TransientError,),
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Call `fn` until it succeeds or `backoff.attempts` are used; re-raises the last error."""
    attempt = 1
    while True:
        try:
            return fn()
        except retry_on as exc:
            if attempt >= backoff.attempts:
                raise
            wait = backoff.delay(attempt, retry_after=getattr(exc, "retry_after", None))
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            sleep(wait)
            attempt += 1
