"""PII redaction: a labelled corpus of realistic feedback, properties, and configured rules."""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedback.privacy import PLACEHOLDERS, PatternSpec, Redactor, pseudonymize

CASES_PATH = Path(__file__).parent / "data" / "pii_cases.jsonl"
CASES = [json.loads(line) for line in CASES_PATH.read_text(encoding="utf-8").splitlines() if line]
POSITIVE = [case for case in CASES if case["expected"]]
NEGATIVE = [case for case in CASES if not case["expected"]]

redactor = Redactor.default()


def _case_id(case: dict) -> str:
    return case["text"][:40]


# --- The corpus -------------------------------------------------------------------------------


def test_corpus_is_large_and_covers_every_type() -> None:
    assert len(CASES) >= 220
    assert len(POSITIVE) >= 150
    assert len(NEGATIVE) >= 60
    covered = Counter(kind for case in POSITIVE for kind in case["expected"])
    assert set(covered) == set(PLACEHOLDERS)
    assert min(covered.values()) >= 15, covered


def test_recall_on_structured_types_is_at_least_99_percent() -> None:
    expected = found = 0
    missed = []
    for case in POSITIVE:
        redacted = redactor.redact(case["text"])
        for kind in case["expected"]:
            expected += 1
            if PLACEHOLDERS[kind] in redacted:
                found += 1
            else:
                missed.append((kind, case["text"], redacted))
    recall = found / expected
    assert recall >= 0.99, f"recall {recall:.3f}; missed: {missed}"


@pytest.mark.parametrize("case", POSITIVE, ids=_case_id)
def test_positive_case_finds_exactly_the_expected_types(case: dict) -> None:
    redacted, counts = redactor.redact_with_counts(case["text"])
    assert set(counts) == set(case["expected"]), redacted
    for kept in case["keep"]:
        assert kept in redacted, f"{kept!r} was lost: {redacted}"


@pytest.mark.parametrize("case", NEGATIVE, ids=_case_id)
def test_negative_case_is_left_alone(case: dict) -> None:
    redacted, counts = redactor.redact_with_counts(case["text"])
    assert counts == {}
    assert redacted == case["text"]
    for kept in case["keep"]:
        assert kept in redacted


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_corpus_redaction_is_idempotent(case: dict) -> None:
    once = redactor.redact(case["text"])
    assert redactor.redact(once) == once


# --- Placeholders and counts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob@example.com now", "mail [EMAIL] now"),
        ("call (415) 555-0134 now", "call [PHONE] now"),
        ("card 4111 1111 1111 1111 now", "card [CARD] now"),
        ("iban GB82 WEST 1234 5698 7654 32 now", "iban [IBAN] now"),
        ("ssn 123-45-6789 now", "ssn [SSN] now"),
        ("from 192.0.2.1 now", "from [IP] now"),
        ("from 2001:db8::1 now", "from [IP] now"),
        (
            "see https://example.com/r?token=abc123 now",
            "see https://example.com/r?token=[URL_SECRET] now",
        ),
        (
            "see https://ann:hunter2@example.com/x now",
            "see https://ann:[URL_SECRET]@example.com/x now",
        ),
    ],
)
def test_each_type_gets_its_placeholder(text: str, expected: str) -> None:
    assert redactor.redact(text) == expected


def test_counts_are_by_type() -> None:
    text = "a@example.com, b@example.org, (415) 555-0134 and 4111 1111 1111 1111"
    redacted, counts = redactor.redact_with_counts(text)
    assert counts == {"EMAIL": 2, "PHONE": 1, "CARD": 1}
    assert redacted == "[EMAIL], [EMAIL], [PHONE] and [CARD]"


def test_redact_many_keeps_order() -> None:
    texts = ["no pii here", "mail bob@example.com", ""]
    assert redactor.redact_many(texts) == ["no pii here", "mail [EMAIL]", ""]


def test_only_luhn_valid_cards_are_redacted() -> None:
    assert redactor.redact("card 4111 1111 1111 1111") == "card [CARD]"
    assert redactor.redact("card 4111 1111 1111 1112") == "card 4111 1111 1111 1112"


def test_only_mod97_valid_ibans_are_redacted() -> None:
    assert redactor.redact("DE89 3704 0044 0532 0130 00") == "[IBAN]"
    assert redactor.redact("DE88 3704 0044 0532 0130 00") == "DE88 3704 0044 0532 0130 00"


def test_invalid_ssn_areas_are_not_redacted() -> None:
    for number in ("000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000"):
        assert redactor.redact(f"id {number}") == f"id {number}"


# --- Properties -------------------------------------------------------------------------------

# Words and punctuation without digits, '@' or '=': the raw material of feedback around PII.
filler = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_characters="0123456789@=:",
        exclude_categories=("Nd", "Cs"),
    ),
    max_size=80,
)
separated_filler = filler.map(lambda s: f"{s} ")  # PII needs a boundary before it


def _luhn_complete(prefix: str) -> str:
    """Append the check digit that makes `prefix` Luhn-valid."""
    for check in "0123456789":
        digits = prefix + check
        total = 0
        for position, char in enumerate(reversed(digits)):
            value = int(char) * (2 if position % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


cards = st.tuples(
    st.sampled_from(["4", "51", "55", "34", "37", "6011"]),
    st.integers(min_value=13, max_value=16),
    st.randoms(use_true_random=False),
).map(
    lambda t: _luhn_complete(
        t[0] + "".join(str(t[2].randint(0, 9)) for _ in range(t[1] - len(t[0]) - 1))
    )
)
emails = st.from_regex(
    r"[a-z][a-z0-9._+\-]{0,15}@[a-z][a-z0-9\-]{0,10}[a-z]\.(com|org|net|io|co\.uk)", fullmatch=True
)


@settings(max_examples=300, deadline=None)
@given(before=separated_filler, email=emails, after=filler)
def test_an_injected_email_is_always_redacted(before: str, email: str, after: str) -> None:
    redacted = redactor.redact(f"{before}{email} {after}")
    assert email not in redacted
    assert "[EMAIL]" in redacted


@settings(max_examples=300, deadline=None)
@given(
    before=separated_filler,
    card=cards,
    style=st.sampled_from(["bare", "spaces", "dashes"]),
    after=filler,
)
def test_an_injected_luhn_valid_card_is_always_redacted(
    before: str, card: str, style: str, after: str
) -> None:
    if style != "bare" and len(card) == 16:
        sep = " " if style == "spaces" else "-"
        card = sep.join(card[i : i + 4] for i in range(0, 16, 4))
    redacted = redactor.redact(f"{before}{card} {after}")
    assert "[CARD]" in redacted
    assert re.sub(r"\D", "", card) not in re.sub(r"\D", "", redacted)


@settings(max_examples=500, deadline=None)
@given(text=filler)
def test_text_without_digits_at_or_equals_is_unchanged(text: str) -> None:
    assert redactor.redact(text) == text


pii_fragments = st.sampled_from(
    [
        "bob@example.com",
        "(415) 555-0134",
        "+44 20 7946 0958",
        "07700 900123",
        "4111 1111 1111 1111",
        "GB82 WEST 1234 5698 7654 32",
        "123-45-6789",
        "192.0.2.1",
        "2001:db8::1",
        "https://example.com/r?token=abc123",
        "https://ann:pw@example.com/",
        "order 5531",
        "$249",
        "2023-10-05",
        "10:30",
    ]
)
mixed_text = st.lists(st.one_of(pii_fragments, filler, st.text(max_size=12)), max_size=8).map(
    " ".join
)


@settings(max_examples=500, deadline=None)
@given(text=mixed_text)
@example(text="https://ann:pw@example.com/ bob@example.com")
def test_redaction_is_idempotent_and_never_adds_pii(text: str) -> None:
    once, counts = redactor.redact_with_counts(text)
    twice, more = redactor.redact_with_counts(once)
    assert twice == once
    assert more == {}
    # placeholders carry no digits, '@' or ':': redaction can only remove such characters
    for char in "0123456789@:":
        assert once.count(char) <= text.count(char)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_crashes_and_is_idempotent(text: str) -> None:
    once = redactor.redact(text)
    assert redactor.redact(once) == once


# --- Rules from config ------------------------------------------------------------------------


def test_extra_pattern_from_config_redacts_with_default_placeholder() -> None:
    custom = Redactor.default([PatternSpec(name="employee_id", pattern=r"EMP-\d{5}")])
    redacted, counts = custom.redact_with_counts("EMP-12345 wrote from bob@example.com")
    assert redacted == "[EMPLOYEE_ID] wrote from [EMAIL]"
    assert counts == {"EMPLOYEE_ID": 1, "EMAIL": 1}
    assert custom.redact(redacted) == redacted


def test_extra_pattern_accepts_config_mappings_and_custom_placeholder() -> None:
    custom = Redactor.default(
        [{"name": "badge", "pattern": r"\bB-\d{4}\b", "placeholder": "<badge>"}]
    )
    assert custom.redact("my badge B-1234 failed") == "my badge <badge> failed"


def test_extra_patterns_run_before_builtins() -> None:
    # a customer id shaped like a phone number is redacted as what the config says it is
    custom = Redactor.default([PatternSpec("customer_id", r"CUST-\d{3}-\d{3}-\d{4}")])
    assert custom.redact("CUST-415-555-0134") == "[CUSTOMER_ID]"


def test_invalid_extra_pattern_names_the_rule_and_the_fix() -> None:
    with pytest.raises(ValueError) as info:
        Redactor.default([PatternSpec(name="employee_id", pattern=r"EMP-(\d{5}")])
    message = str(info.value)
    assert "employee_id" in message
    assert "EMP-(\\d{5}" in message
    assert "privacy.extra_patterns" in message


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (PatternSpec("staff", r"x*"), "empty string"),
        (PatternSpec("staff", r"\[\w+\]"), "its own placeholder"),
        (PatternSpec("has space", r"EMP-\d+"), "letters, digits and underscores"),
        (PatternSpec("email", r"EMP-\d+"), "another name"),
    ],
)
def test_unsafe_extra_patterns_are_rejected(spec: PatternSpec, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        Redactor.default([spec])


def test_config_mapping_with_unknown_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="regex"):
        Redactor.default([{"name": "staff", "regex": r"EMP-\d+"}])


# --- Real feedback ------------------------------------------------------------------------------

DATA_DIR = Path(
    os.environ.get("VOC_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def _real_feedback() -> list[str]:
    texts = []
    for relative, columns in [
        ("glassdoor/reviews.csv", ("summary", "pros", "cons")),
        ("amazon_reviews/reviews.csv", ("title", "text")),
    ]:
        with (DATA_DIR / relative).open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                texts.extend(row[column] for column in columns if row.get(column))
    return texts


@pytest.mark.skipif(
    not (DATA_DIR / "glassdoor" / "reviews.csv").exists(), reason="shared data not present"
)
def test_real_reviews_are_left_alone() -> None:
    # ~28,000 public employee and product reviews full of prices, dates, versions and counts,
    # and without PII: every redaction here would be a false positive
    texts = _real_feedback()
    assert len(texts) > 20_000
    changed = [text for text in texts if redactor.redact(text) != text]
    assert changed == []


# --- Author pseudonyms -----------------------------------------------------------------------


def test_pseudonym_is_stable_keyed_and_unreadable() -> None:
    first = pseudonymize("ann@example.com", secret="s3cret")
    assert first is not None
    assert re.fullmatch(r"a_[0-9a-f]{12}", first)
    assert pseudonymize("ann@example.com", secret="s3cret") == first
    assert pseudonymize("  ANN@Example.com ", secret="s3cret") == first
    assert pseudonymize("ann@example.com", secret="other") != first
    assert pseudonymize("bob@example.com", secret="s3cret") != first
    assert "ann" not in first


@pytest.mark.parametrize("author", [None, "", "   "])
def test_missing_author_has_no_pseudonym(author: str | None) -> None:
    assert pseudonymize(author, secret="s3cret") is None


def test_empty_secret_is_refused_with_the_setting_to_fix() -> None:
    with pytest.raises(ValueError, match="pseudonym_secret"):
        pseudonymize("ann", secret="")
