"""Throughput of PII redaction and language detection on realistic feedback comments.

    python bench/redaction.py [--comments 100000] [--language-texts 20000] [--seed 7]

Redaction runs on 100,000 generated comments (about 2% with PII) and is compared with two
baselines measured in the same run on the same texts: a bare `str.lower()` loop and a single
compiled email regex scan. Machines differ; the ratios are what carries over between them.
Language detection is measured on distinct texts (its cache of short texts is not exercised).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feedback.language import _identifier, detect_language  # noqa: E402
from feedback.privacy import Redactor  # noqa: E402

OPENINGS = [
    "I ordered the blue jacket on Monday",
    "The delivery was late again",
    "Customer support was friendly",
    "The app keeps crashing when I open my orders",
    "My manager never has time for one-to-ones",
    "Checkout was quick and painless",
    "The store in the city centre was a mess",
    "Onboarding in my first week was well organised",
    "The driver left the parcel in the rain",
    "Prices went up again this month",
]
MIDDLES = [
    "and paid ${price} for it",
    "(order {order}) and it took {days} days",
    "but I had to call {small} times",
    "and the refund of €{price} is still missing after {days} days",
    "on {date} at {time}",
    "and the 20% voucher did not work",
    "even though I have been a customer since {year}",
    "and version {version} did not fix it",
    "and I rated it {small}/10",
    "and the team of {small} people was great",
]
ENDINGS = [
    "Please fix this.",
    "Would buy again!",
    "Not impressed at all.",
    "Thanks to the staff for their patience.",
    "I expected better for the price.",
    "Overall a good experience, the fit is great though.",
    "Nobody answered my emails, so I am writing here.",
    "Keep it up!",
]
PII = [
    "Call me back on (415) 555-{four}.",
    "My email is customer{order}@example.com.",
    "I was charged twice on 4111 1111 1111 1111.",
    "Refund to GB82 WEST 1234 5698 7654 32 please.",
    "My number is +44 20 7946 0{three}.",
    "The reset link https://example.com/reset?token=t{order}x did not work.",
    "It blocked me from 192.0.2.{small}.",
    "HR put my SSN 123-45-{four} in an email.",
]
OTHER_LANGUAGES = [
    "El pedido llegó tarde y el servicio al cliente no respondió a mis correos.",
    "Der Kundenservice war sehr freundlich, aber die Lieferung kam viel zu spät an.",
    "Le colis est arrivé abîmé et personne ne répond au téléphone du service client.",
    "La consegna è stata veloce ma il prodotto non corrisponde alla descrizione.",
    "A entrega atrasou e o atendimento não resolveu o meu problema.",
]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        price=f"{rng.randint(5, 999)}.{rng.randint(0, 99):02d}",
        order=rng.randint(1000, 999_999),
        days=rng.randint(2, 30),
        small=rng.randint(1, 12),
        date=f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        time=f"{rng.randint(8, 20)}:{rng.randint(0, 59):02d}",
        year=rng.randint(2005, 2023),
        version=f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        four=f"{rng.randint(100, 199):04d}",
        three=f"{rng.randint(0, 999):03d}",
    )


def make_comments(count: int, *, seed: int, pii_share: float = 0.02) -> list[str]:
    """Realistic English comments of one to three sentences, `pii_share` of them with PII."""
    rng = random.Random(seed)
    comments = []
    for _ in range(count):
        sentences = [
            f"{rng.choice(OPENINGS)} {_fill(rng.choice(MIDDLES), rng)}.",
            _fill(rng.choice(ENDINGS), rng),
        ]
        for share in (0.8, 0.4):  # two to four sentences, about 200 characters on average
            if rng.random() < share:
                sentences.insert(1, f"{rng.choice(OPENINGS)} {_fill(rng.choice(MIDDLES), rng)}.")
        if rng.random() < pii_share:
            sentences.insert(rng.randint(0, len(sentences)), _fill(rng.choice(PII), rng))
        comments.append(" ".join(sentences))
    return comments


def _time(fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--language-texts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    comments = make_comments(args.comments, seed=args.seed)
    redactor = Redactor.default()
    naive_email = re.compile(r"[\w.+\-]+@[\w\-]+\.[\w.]+")
    with_pii = sum(1 for text in comments if redactor.redact_with_counts(text)[1])
    mean_chars = sum(map(len, comments)) / len(comments)

    redact = redactor.redact
    lower_s = _time(lambda: [text.lower() for text in comments])
    regex_s = _time(lambda: [naive_email.search(text) for text in comments])
    redact_s = _time(lambda: [redact(text) for text in comments])
    no_pii = [text for text in comments if redactor.redact(text) == text]
    clean_s = _time(lambda: [redact(text) for text in no_pii])

    n = len(comments)
    # timings on a shared machine swing with its load; say what it was
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"comments: {n:,}, mean {mean_chars:.0f} chars, {with_pii / n:.1%} with PII")
    print(
        f"  baseline str.lower()       {n / lower_s:>12,.0f} texts/s  {lower_s / n * 1e6:6.2f} µs"
    )
    print(
        f"  baseline one regex scan    {n / regex_s:>12,.0f} texts/s  {regex_s / n * 1e6:6.2f} µs"
    )
    print(
        f"  Redactor.redact            {n / redact_s:>12,.0f} texts/s  {redact_s / n * 1e6:6.2f} µs"
    )
    print(
        f"  Redactor.redact, no PII    {len(no_pii) / clean_s:>12,.0f} texts/s  "
        f"{clean_s / len(no_pii) * 1e6:6.2f} µs"
    )
    print(
        f"  redact / str.lower() = {redact_s / lower_s:.1f}x, "
        f"redact / one regex = {redact_s / regex_s:.1f}x"
    )

    start = time.perf_counter()
    _identifier()
    load_s = time.perf_counter() - start
    rng = random.Random(args.seed + 1)
    # distinct texts: every one is longer than the short-text cache, so none is served from it
    texts = [
        f"{text} ({i})" if rng.random() < 0.9 else f"{rng.choice(OTHER_LANGUAGES)} ({i})"
        for i, text in enumerate(
            make_comments(args.language_texts, seed=args.seed + 2, pii_share=0)
        )
    ]
    detect_s = _time(lambda: [detect_language(text) for text in texts])
    short = ["great service!", "thanks", "terrible", "Muy bien", "Sehr gut", "love it"]
    short_texts = [rng.choice(short) for _ in range(args.language_texts)]
    short_s = _time(lambda: [detect_language(text) for text in short_texts])
    m = len(texts)
    print(f"language detection: model load {load_s:.2f} s (once per process)")
    print(
        f"  distinct comments          {m / detect_s:>12,.0f} texts/s  {detect_s / m * 1e6:6.1f} µs"
    )
    print(
        f"  repeated short texts       {m / short_s:>12,.0f} texts/s  {short_s / m * 1e6:6.1f} µs"
    )


if __name__ == "__main__":
    main()
