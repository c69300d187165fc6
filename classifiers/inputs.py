"""Turning whatever a source handed us into text the encoder can take, with flags.

Policy (never a crash, never a lost item):
- bytes are decoded as UTF-8 with replacement characters and flagged "invalid_utf8" when that
  was needed; None becomes "" ;
- empty or whitespace-only text is flagged "empty" and gets neutral, no-need, "unknown" tags
  without an encoder pass;
- text with no letters or digits but with emoji is flagged "emoji_only" (and still tagged:
  the encoder's vocabulary maps most emoji to [UNK], so its tags are weak);
- a language hint other than English, or a confident cheap check (script, then py3langid on
  longer texts) gives "non_english:<code>"; the item is still tagged, with an English model.
"""

from __future__ import annotations

import re
import unicodedata

_LETTER_OR_DIGIT = re.compile(r"[^\W_]", re.UNICODE)
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F]")
_LANGID_MIN_CHARS = 25

_SCRIPT_LANG = (  # Unicode name prefix -> ISO 639-1 guess for texts in that script
    ("CJK", "zh"), ("HIRAGANA", "ja"), ("KATAKANA", "ja"), ("HANGUL", "ko"),
    ("CYRILLIC", "ru"), ("ARABIC", "ar"), ("HEBREW", "he"), ("GREEK", "el"),
    ("DEVANAGARI", "hi"), ("THAI", "th"),
)  # fmt: skip


def decode(raw: str | bytes | None) -> tuple[str, list[str]]:
    """Text and flags for one raw input (str, bytes or None)."""
    flags: list[str] = []
    if raw is None:
        return "", flags
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            text = bytes(raw).decode("utf-8", errors="replace")
            flags.append("invalid_utf8")
    else:
        text = str(raw)
        if "\ufffd" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            # lone surrogates come from a lossy upstream decode: make them encodable
            text = text.encode("utf-8", errors="replace").decode("utf-8", errors="replace")
            flags.append("invalid_utf8")
    text = text.replace("\x00", " ")
    return text, flags


def is_emoji_only(text: str) -> bool:
    """True when the text has symbols (emoji, pictographs) but no letter or digit."""
    stripped = text.strip()
    if not stripped or _LETTER_OR_DIGIT.search(stripped):
        return False
    return any(unicodedata.category(c) in ("So", "Sk", "Cs") or ord(c) > 0x2000 for c in stripped)


def _script_language(text: str) -> str | None:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    latin = sum(1 for c in letters if _LATIN.match(c))
    if latin / len(letters) > 0.5:
        return None
    counts: dict[str, int] = {}
    for c in letters:
        name = unicodedata.name(c, "")
        for prefix, lang in _SCRIPT_LANG:
            if name.startswith(prefix):
                counts[lang] = counts.get(lang, 0) + 1
                break
    return max(counts, key=counts.__getitem__) if counts else "und"


def detect_language(text: str) -> str | None:
    """A cheap language guess: 'en', another ISO code, or None when unsure.

    Non-Latin scripts are named from their letters; anything else goes to the service's own
    detector (`feedback.language`: the same answer ingestion stores, with its fast rules for
    short and plainly English text, so most English costs no n-gram model at all), and only a
    reliable guess counts."""
    script = _script_language(text)
    if script:
        return script
    if len(text) < _LANGID_MIN_CHARS:
        return None
    from feedback.language import UNDETERMINED
    from feedback.language import detect_language as detect

    guess = detect(text)
    return guess.code if guess.reliable and guess.code != UNDETERMINED else None


def language_flag(text: str, hint: str | None) -> str | None:
    """'non_english:<code>' when the hint or the cheap check says the text is not English."""
    if hint:
        code = hint.strip().lower().replace("_", "-").split("-")[0]
        return None if code in ("en", "") else f"non_english:{code}"
    lang = detect_language(text)
    return f"non_english:{lang}" if lang and lang != "en" else None
