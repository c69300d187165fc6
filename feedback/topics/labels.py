"""Readable topic labels: a 2-4 word phrase a CX lead would accept, from words already counted.

Keywords are BERTopic's c-TF-IDF words (stop words removed). The label is the phrase of two or
three words that the topic's most central documents (nearest its centroid, by the cached
embeddings) use most, among phrases that contain one of the top keywords: "Card Arrival",
"Work Life Balance", "Upper Management". When the shared encoder is at hand, the best-counted
candidates are re-ranked by their cosine to the topic's centroid (KeyBERT-inspired; only a dozen
short phrases per topic are encoded, never the documents). When no phrase is common enough,
the two best keywords joined ("Pay & Benefits").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# Words that carry no topic in feedback, on top of the English stop words.
FEEDBACK_STOP_WORDS = frozenset(
    {
        "just",
        "really",
        "lot",
        "lots",
        "like",
        "dont",
        "don",
        "didn",
        "doesn",
        "isn",
        "wasn",
        "im",
        "ive",
        "thing",
        "things",
        "way",
        "make",
        "makes",
        "got",
        "get",
        "gets",
        "did",
        "does",
        "ll",
        "ve",
        "re",
        "want",
        "need",
        "know",
        "think",
        "say",
        "said",
        "use",
        "used",
        "new",
        "time",
        "good",
        "great",
        "bad",
        "better",
        "best",
        "pretty",
        "quite",
        "bit",
        "sure",
        "able",
        "going",
        "cons",
        "pros",
        "con",
        "pro",
        "company",
        "none",
        "nothing",
        "n",
        "s",
        "t",
        "d",
        "m",
        "amp",
        "isnt",
        "doesnt",
        "didnt",
        "cant",
        "wont",
        "wasnt",
        "arent",
        "havent",
        "says",
        "tell",
        "wanted",
        "saw",
        "tried",
        "trying",
        "help",
        "please",
        "thanks",
        "thank",
        "hi",
        "hello",
        "thats",
        "whats",
        "theres",
        "youre",
        "theyre",
        "weve",
        "couldnt",
        "wouldnt",
        "shouldnt",
    }
)
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | FEEDBACK_STOP_WORDS
PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*\]")
WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
MIN_PHRASE_DOCS = 3
RERANK = 12  # candidate phrases per topic scored against the centroid when an encoder is given
ACRONYMS = frozenset(
    {
        "hr",
        "rto",
        "pto",
        "pm",
        "ceo",
        "cto",
        "cfo",
        "vp",
        "ui",
        "ux",
        "atm",
        "pin",
        "id",
        "api",
        "kpi",
        "qa",
        "wfh",
        "nps",
        "sms",
        "eu",
        "uk",
        "us",
        "tv",
        "gps",
        "ai",
        "it",
        "dei",
        "ot",
        "401k",
        "sla",
        "faq",
        "usb",
        "pc",
    }
)
# Verbs that end feedback phrases ("app took", "driver left"): a label should name a thing.
IRREGULAR_VERBS = frozenset(
    {
        "took",
        "came",
        "went",
        "left",
        "got",
        "gave",
        "told",
        "tells",
        "knew",
        "showed",
        "shows",
        "made",
        "kept",
        "felt",
        "found",
        "sent",
        "said",
        "says",
        "seems",
        "broke",
        "froze",
        "paid",
        "bought",
        "brought",
        "let",
        "put",
        "ran",
        "saw",
        "thought",
        "works",
        "worked",
        "takes",
    }
)


def verb_like(word: str) -> bool:
    """Whether a word reads as a verb or adverb form ("took", "marked", "quickly")."""
    return (
        word in IRREGULAR_VERBS
        or (len(word) > 4 and word.endswith("ed") and not word.endswith("eed"))
        or (len(word) > 5 and word.endswith("ly") and word not in ("family", "supply", "monthly"))
    )


SMALL_WORDS = frozenset(
    {"and", "of", "to", "in", "on", "for", "the", "a", "an", "or", "with", "at", "by"}
)


def clean(text: str) -> str:
    """Text with redaction placeholders removed, so `[CARD]` never becomes the word 'card'."""
    return PLACEHOLDER.sub(" ", text)


def _words(text: str) -> list[str]:
    # "can't" -> "cant", "it's" -> "its": so the stop-word lists catch contractions too.
    return [
        w.strip("'-").replace("'", "")
        for w in WORD.findall(clean(text).lower().replace("\u2019", "'"))
    ]


def phrases(text: str, sizes: Sequence[int] = (2, 3)) -> set[str]:
    """The n-grams of `text` that neither start nor end with a stop word (each counted once)."""
    words = _words(text)
    out: set[str] = set()
    for n in sizes:
        for i in range(len(words) - n + 1):
            gram = words[i : i + n]
            if (
                gram[0] in STOP_WORDS
                or gram[-1] in STOP_WORDS
                or len(gram[0]) < 2
                or len(gram[-1]) < 2
            ):
                continue
            if any(len(w) < 2 for w in gram) or len(set(gram)) < n:
                continue
            if any(w in STOP_WORDS and w not in SMALL_WORDS for w in gram[1:-1]):
                continue
            out.add(" ".join(gram))
    return out


def title(phrase: str) -> str:
    """'work life balance' -> 'Work Life Balance' (small words stay lower case inside)."""
    words = phrase.split()
    return " ".join(
        w.upper() if w in ACRONYMS else w if (i and w in SMALL_WORDS) else (w[:1].upper() + w[1:])
        for i, w in enumerate(words)
    )


def distinct_keywords(keywords: Sequence[str], limit: int = 10) -> list[str]:
    """Keywords without the single words already inside a higher-ranked phrase."""
    out: list[str] = []
    covered: set[str] = set()
    for word in keywords:
        if not word or word in out:
            continue
        parts = set(word.split())
        if len(parts) < len(word.split()):  # "pay pay": stop words removed between two mentions
            continue
        if len(parts) == 1 and word in covered:
            continue
        out.append(word)
        covered |= parts
        if len(out) >= limit:
            break
    return out


def phrase_scores(keywords: Sequence[str], central_docs: Sequence[str]) -> dict[str, float]:
    """Candidate label phrases of a topic and their count-based scores (higher is better)."""
    top_words = {w for k in keywords[:5] for w in k.split()}
    counts: Counter[str] = Counter()
    for doc in central_docs:
        counts.update(phrases(doc))
    min_docs = max(2, min(MIN_PHRASE_DOCS, len(central_docs) // 15))
    rank = {k: i for i, k in enumerate(keywords)}
    scores: dict[str, float] = {}
    for phrase, df in counts.items():
        if df < min_docs:
            continue
        words = phrase.split()
        hits = sum(1 for w in words if w in top_words)
        if not hits:
            continue
        # Frequency among central documents, boosted by keywords it contains and when the phrase
        # is itself a ranked keyword; a third word must earn its place; a label names a thing.
        score = df * (1 + 0.5 * hits) * (1.5 if phrase in rank else 1.0)
        if verb_like(words[-1]):
            score *= 0.3
        scores[phrase] = score * (0.8 if len(words) == 3 else 1.0)
    # A phrase that nearly always comes inside a longer one yields to it: "work life" and
    # "life balance" to "work life balance".
    for phrase in [p for p in scores if len(p.split()) == 3]:
        words = phrase.split()
        for part in (" ".join(words[:2]), " ".join(words[1:])):
            if part in scores and counts[phrase] >= 0.8 * counts[part]:
                scores[phrase] = max(scores[phrase], scores[part] * 1.01)
    return scores


def rerank_candidates(scores: dict[str, float]) -> list[str]:
    """The phrases worth scoring against the centroid (the best-counted few)."""
    return sorted(scores, key=lambda p: -scores[p])[:RERANK]


# "None that I can think of", "No cons come to mind", "N/A at this time": answers that say there
# is nothing to say. Their topic's keywords are what is left after the stop words ("moment",
# "come mind"), which makes labels like "Come to Mind: Moment"; such a topic is named for what
# its answers say instead. An answer is empty when it holds a refusal word and nothing beyond
# stop words and these words.
EMPTY_ANSWER_LABEL = "Nothing Specific"
REFUSALS = frozenset({"none", "nothing", "no", "not", "nope", "na", "nada", "nil", "cant", "n/a"})
EMPTY_ANSWER_WORDS = REFUSALS | frozenset(
    {
        "applicable", "comment", "comments", "mind", "moment", "currently", "present", "far",
        "now", "right", "time", "honestly", "come", "comes", "noted", "report", "add", "mention",
        "specific", "particular", "complaint", "complaints", "issue", "issues", "problem",
        "problems", "negative", "negatives", "downside", "downsides", "really", "think", "recall",
        "point", "yet", "whatsoever", "aware", "say", "speak", "share", "honest",
        "real", "truly", "bad", "major", "big", "particularly", "encountered", "face", "faced",
        "top", "head", "anything", "list", "worth", "note", "mentioning", "even", "today",
    }
)  # fmt: skip
EMPTY_TOPIC_SHARE = 0.5  # of a topic's central documents: at least half say "nothing"


def is_empty_answer(text: str) -> bool:
    """Whether an answer says only that there is nothing to say ("None that I can think of")."""
    raw = clean(text).lower().replace("\u2019", "'")
    words = _words(raw) + (["n/a"] if re.search(r"\bn/?a\b", raw) else [])
    return bool(words) and bool(set(words) & REFUSALS) and all(
        w in STOP_WORDS or w in EMPTY_ANSWER_WORDS or w in ("n", "a") for w in words
    )


def label_for(
    keywords: Sequence[str],
    central_docs: Sequence[str],
    *,
    centroid: np.ndarray | None = None,
    phrase_vectors: Mapping[str, np.ndarray] | None = None,
) -> str:
    """A 2-4 word title-cased label from the keywords and the topic's most central documents.

    With `phrase_vectors` (candidate phrases embedded by the shared encoder) and the topic's
    `centroid`, the best-counted candidates are re-ranked by their cosine to the centroid,
    KeyBERT-style: the phrase that says what the documents mean, not only the most frequent.
    """
    keywords = [k for k in keywords if k]
    if central_docs and sum(map(is_empty_answer, central_docs)) >= EMPTY_TOPIC_SHARE * len(
        central_docs
    ):
        return EMPTY_ANSWER_LABEL
    if not keywords:
        return "Miscellaneous"
    scores = phrase_scores(keywords, central_docs)
    if phrase_vectors is not None and centroid is not None and len(scores) > 1:
        top = [p for p in rerank_candidates(scores) if p in phrase_vectors]
        if top:
            vectors = np.stack([phrase_vectors[p] for p in top]).astype(np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            closeness = vectors @ (centroid / max(float(np.linalg.norm(centroid)), 1e-12))
            strongest = max(scores[p] for p in top)
            scores = {
                p: float(c) + 0.15 * scores[p] / strongest
                for p, c in zip(top, closeness, strict=True)
            }
    best = max(((score, phrase) for phrase, score in scores.items()), default=None)
    if best is not None:
        return title(best[1])
    first = keywords[0]
    if len(first.split()) >= 2:
        return title(first)
    # The second keyword must be another word, not a form of the first ("downside", "downsides").
    second = next(
        (k for k in keywords[1:] if not set(k.split()) & set(first.split()) and k[:4] != first[:4]),
        None,
    )
    return title(f"{first} & {second}") if second else title(first)


def is_empty_answer_label(label: str) -> bool:
    """Whether a fitted topic's label says it holds empty answers: `EMPTY_ANSWER_LABEL`, or the
    numbered copy `deduplicate` gives a second such topic ("Nothing Specific (2)")."""
    return label == EMPTY_ANSWER_LABEL or label.startswith(f"{EMPTY_ANSWER_LABEL} (")


def deduplicate(labels: dict[int, str], keywords: Mapping[int, Sequence[str]]) -> dict[int, str]:
    """Make labels unique: a repeated label gets its topic's best keyword not already in it."""
    groups: dict[str, list[int]] = {}
    for topic, label in labels.items():
        groups.setdefault(label, []).append(topic)
    out = dict(labels)
    taken = set(labels.values())
    for label, topics in groups.items():
        if len(topics) < 2:
            continue
        if label == EMPTY_ANSWER_LABEL:  # their keywords are leftovers: number them instead
            for n, topic in enumerate(sorted(topics)[1:], start=2):
                out[topic] = f"{label} ({n})"
                taken.add(out[topic])
            continue
        inside = set(label.lower().replace("&", " ").split())
        for topic in topics:
            single_words_first = sorted(keywords.get(topic, []), key=lambda k: len(k.split()))
            # a keyword sharing no word with the label; else the new words of one that shares
            # some ("pay horrible" -> "Low Pay: Horrible"); the topic id only as a last resort
            fresh = [k for k in single_words_first if not set(k.split()) & inside]
            partial = [" ".join(w for w in k.split() if w not in inside) for k in single_words_first]
            candidate = f"{label} ({topic})"
            for extra in [*fresh, *(k for k in partial if k)]:
                if f"{label}: {title(extra)}" not in taken:
                    candidate = f"{label}: {title(extra)}"
                    break
            out[topic] = candidate
            taken.add(candidate)
    return out
