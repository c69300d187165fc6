"""Emerging phrases: the model-free way to see new themes in a week's feedback.

A phrase is a run of 1-3 words of one clause with stop words removed ("My wishlist disappeared
after the update" gives "wishlist", "wishlist disappeared", "wishlist disappeared update", ...).
Each is counted once per item. A phrase is emerging when its count this week is significantly
above its weekly rate over the baseline weeks (the exact conditional Poisson test, with
Benjamini-Hochberg across every phrase tested), at least `min_count` items use it, and it is at
least `min_ratio` times its baseline rate. Significant phrases that mostly occur in the same
items are grouped into one theme, named by its most specific common phrase.

Single words are kept on purpose: a new product name or a new courier ("SwiftShip") is one word,
and the 2-3 word phrases around it then say what is said about it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from feedback.insights.significance import bh_adjust, rate_increase_p

# Common English function words; negations stay in ("doesn't work" is a finding, "work" is not).
# Dates are out too: "since Oct" rises every time the month changes.
STOP_WORDS = frozenset(
    """
a about above after again all also am an and any are as at be because been before being below
between both but by could did do does doing down during each even ever every few for from
further get gets got had has have having he her here hers herself him himself his how i i'd i'll
i'm i've if in into is it it's its itself just let's me more most my myself now of off on once
only or other our ours ourselves out over own really same she should so some still such than
that that's the their theirs them themselves then there there's these they they're this those
through to too under until up us very was we we're we've were what when where which while who
whom why will with would you you're you've your yours yourself yourselves one two three also
im ive ill id thats theres
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec today yesterday tomorrow
monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat
week weeks weekend month months day days
""".split()
)

_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
_CLAUSE = re.compile(r"[.!?;:,()\[\]{}\"\n\r\t|/]+|\s[-–—]\s")
_TOKEN = re.compile(r"[a-z][a-z0-9]*(?:['’][a-z]+)?")


def phrases_of(text: str, *, max_words: int = 3) -> set[str]:
    """The distinct 1..max_words-word phrases of a text (stop words out, within clauses)."""
    found: set[str] = set()
    for clause in _CLAUSE.split(_PLACEHOLDER.sub(" . ", text).lower()):
        words = [w.replace("’", "'") for w in _TOKEN.findall(clause)]
        words = [w for w in words if w not in STOP_WORDS and len(w) > 1]
        for size in range(1, max_words + 1):
            for start in range(len(words) - size + 1):
                found.add(" ".join(words[start : start + size]))
    return found


@dataclass(frozen=True)
class PhraseDoc:
    """One item of the digest's week, as the phrase finder sees it."""

    item_id: int
    text: str
    author: str
    touchpoint: str


@dataclass
class PhraseTheme:
    """A group of significant phrases that occur in the same items."""

    label: str
    phrases: list[str]
    count: int  # items this week with any of the phrases
    authors: int
    lead_count: int
    baseline_weekly: float  # the lead phrase's mean count per baseline week
    baseline_weeks: int
    ratio: float | None  # None: never seen in the baseline
    p_value: float
    q_value: float
    item_ids: list[int] = field(default_factory=list)
    touchpoints: dict[str, int] = field(default_factory=dict)
    baseline_counts: list[int] = field(default_factory=list)  # the lead phrase's, per week


def candidate_phrases(docs: Sequence[PhraseDoc], *, min_count: int) -> dict[str, list[int]]:
    """{phrase: indexes of the docs using it} for phrases in at least `min_count` docs."""
    where: dict[str, list[int]] = {}
    for index, doc in enumerate(docs):
        for phrase in phrases_of(doc.text):
            where.setdefault(phrase, []).append(index)
    return {p: idx for p, idx in where.items() if len(idx) >= min_count}


def count_in_weeks(
    texts: Iterable[tuple[str, str]], phrases: Iterable[str], weeks: Sequence[str]
) -> dict[str, list[int]]:
    """{phrase: [items using it in each week]} over (week, text) pairs, for the given phrases."""
    wanted = set(phrases)
    position = {w: i for i, w in enumerate(weeks)}
    counts: dict[str, list[int]] = {p: [0] * len(weeks) for p in wanted}
    for week, text in texts:
        i = position.get(week)
        if i is None:
            continue
        for phrase in phrases_of(text) & wanted:
            counts[phrase][i] += 1
    return counts


def emerging_themes(
    docs: Sequence[PhraseDoc],
    baseline: dict[str, list[int]],
    *,
    candidates: dict[str, list[int]],
    min_count: int = 5,
    min_ratio: float = 3.0,
    fdr: float = 0.01,
    max_themes: int = 5,
    overlap: float = 0.6,
) -> list[PhraseTheme]:
    """Significant emerging phrases grouped into themes, most significant first.

    `baseline[phrase]` holds the phrase's count in each baseline week (weeks with feedback only).
    """
    tested: list[tuple[str, float]] = []
    for phrase, idx in candidates.items():
        counts = baseline.get(phrase)
        if counts is None or len(idx) < min_count:
            continue
        tested.append((phrase, rate_increase_p(len(idx), counts)))
    qvalues = bh_adjust([p for _, p in tested])
    significant = []
    for (phrase, p), q in zip(tested, qvalues, strict=True):
        count = len(candidates[phrase])
        weekly = sum(baseline[phrase]) / len(baseline[phrase])
        if q <= fdr and count >= min_ratio * weekly:
            significant.append((phrase, p, q, count, weekly))
    # Most significant first; among equals the more frequent, then the shorter phrase leads.
    significant.sort(key=lambda s: (s[2], s[1], -s[3], len(s[0].split()), s[0]))
    taken: set[str] = set()
    themes: list[PhraseTheme] = []
    for phrase, p, q, count, weekly in significant:
        if phrase in taken:
            continue
        docs_lead = set(candidates[phrase])
        members = [phrase]
        union = set(docs_lead)
        for other, *_ in significant:
            if other in taken or other == phrase:
                continue
            other_docs = set(candidates[other])
            if len(other_docs & docs_lead) >= overlap * len(other_docs):
                members.append(other)
                union |= other_docs
        taken.update(members)
        label = _label(members, candidates, lead_count=count, overlap=overlap)
        ordered = sorted(members, key=lambda m: (-len(candidates[m]), m))
        weeks = len(baseline[phrase])
        themes.append(
            PhraseTheme(
                label=label,
                phrases=[label, *[m for m in ordered if m != label]][:8],
                count=len(union),
                authors=len({docs[i].author for i in union}),
                lead_count=count,
                baseline_weekly=round(weekly, 2),
                baseline_weeks=weeks,
                ratio=None if weekly == 0 else round(count / weekly, 2),
                p_value=p,
                q_value=q,
                item_ids=sorted(docs[i].item_id for i in union),
                touchpoints=dict(Counter(docs[i].touchpoint for i in union).most_common()),
                baseline_counts=list(baseline[phrase]),
            )
        )
        if len(themes) >= max_themes:
            break
    return themes


def _label(
    members: list[str], candidates: dict[str, list[int]], *, lead_count: int, overlap: float
) -> str:
    """The most specific member phrase that still covers most of the lead phrase's items."""
    common = [m for m in members if len(candidates[m]) >= overlap * lead_count]
    return max(common, key=lambda m: (len(m.split()), len(candidates[m]), m))
