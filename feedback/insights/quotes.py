"""Representative quotes: customers' (or staff's) own words for each finding.

A quote is representative when it says what the finding says: it comes from the finding's
slice of the week, has the finding's sentiment (confidently), uses the finding's words where
there are some, and is of readable length. Quotes in one finding differ from each other, and a
digest avoids repeating a quote across findings. Texts were redacted at ingestion; they are
redacted again here (cheap, idempotent) so a quote never carries PII even from old rows. A text
that held contact details (it shows a redaction placeholder) is never quoted at all: the name
written beside an email address ("This is Jane Doe, my email is ...") is not something a
pattern can catch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from feedback.insights.phrases import phrases_of
from feedback.insights.repository import WeekItem

MAX_CHARS = 280
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*\]")
_WORDS = re.compile(r"[a-z0-9']+")
_SPACE = re.compile(r"\s+")


def _trim(text: str, limit: int = MAX_CHARS) -> str:
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return f"{cut}…"


def _length_penalty(text: str) -> float:
    size = len(text)
    if 50 <= size <= 240:
        return 0.0
    return min(1.0, abs(size - (50 if size < 50 else 240)) / 200)


class QuotePicker:
    """Picks quotes for the findings of one digest, never the same item twice if avoidable."""

    def __init__(
        self,
        items: Sequence[WeekItem],
        *,
        redact: Callable[[str], str],
        per_finding: int = 3,
        show_item_ids: bool = True,
        eligible: Callable[[WeekItem], bool] | None = None,
    ) -> None:
        self.items = [
            i
            for i in items
            if (eligible is None or eligible(i)) and not _PLACEHOLDER.search(redact(i.text))
        ]
        self.redact = redact
        self.per_finding = per_finding
        self.show_item_ids = show_item_ids
        self.used: set[int] = set()

    def pick(
        self,
        *,
        where: Callable[[WeekItem], bool],
        direction: str | None = None,
        terms: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """Up to `per_finding` quotes from the items `where` selects.

        `direction` ("negative" or "positive") prefers items of that sentiment, most confident
        first; `terms` (phrases) prefer items that use them.
        """
        wanted = {t.lower() for t in terms}
        pool = [i for i in self.items if where(i)]

        def rank(item: WeekItem) -> tuple[float, ...]:
            matches = len(phrases_of(item.text) & wanted) if wanted else 0
            if direction == "negative":
                agree, confidence = item.sentiment == "negative", item.negative_prob
            elif direction == "positive":
                agree, confidence = item.sentiment == "positive", item.positive_prob
            else:
                agree, confidence = True, 0.5
            return (
                item.id in self.used,
                not agree,
                -min(matches, 2),
                round(_length_penalty(item.text) - confidence, 2),
                item.id,
            )

        chosen: list[WeekItem] = []
        seen_words: list[set[str]] = []
        for item in sorted(pool, key=rank):
            words = set(_WORDS.findall(item.text.lower()))
            if any(len(words & other) > 0.5 * len(words | other) for other in seen_words):
                continue  # near-duplicate of a quote already chosen
            if direction and chosen and item.sentiment != direction:
                break  # do not pad a finding with quotes that say the opposite
            chosen.append(item)
            seen_words.append(words)
            if len(chosen) >= self.per_finding:
                break
        self.used.update(i.id for i in chosen)
        return [self._quote(i) for i in chosen]

    def _quote(self, item: WeekItem) -> dict[str, Any]:
        quote: dict[str, Any] = {
            "text": _trim(self.redact(item.text)),
            "sentiment": item.sentiment,
            "touchpoint": item.touchpoint,
        }
        if self.show_item_ids:
            quote["item_id"] = item.id
        return quote
