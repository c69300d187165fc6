"""Language detection with the real py3langid model on real sentences."""

from __future__ import annotations

import pytest

from feedback.language import (
    CANDIDATE_LANGUAGES,
    LanguageGuess,
    _identifier,
    detect_language,
    detect_many,
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The delivery was late and the driver was rude to my mother.", "en"),
        ("I love the new app, but it crashes every time I open my orders.", "en"),
        ("El servicio fue excelente y el pedido llegó muy rápido.", "es"),
        ("No funciona la aplicación desde la última actualización.", "es"),
        ("Der Kundenservice war sehr freundlich, aber die Lieferung kam zu spät.", "de"),
        ("Meine Vorgesetzte nimmt sich nie Zeit für Feedbackgespräche.", "de"),
        ("Le service client était vraiment nul, personne ne répond au téléphone.", "fr"),
        ("Livraison rapide et produit conforme, je recommande.", "fr"),
        ("Ottimo servizio, grazie mille per la disponibilità.", "it"),
        ("Obrigado pela ajuda, o atendimento foi excelente.", "pt"),
        ("Bedankt voor de snelle levering, alles was in orde.", "nl"),
        ("素晴らしいサービスでした。また利用します。", "ja"),
        ("Очень плохой сервис, никто не отвечает.", "ru"),
    ],
)
def test_sentences_are_detected(text: str, code: str) -> None:
    guess = detect_language(text)
    assert guess.code == code, guess
    assert guess.reliable
    assert 0.8 <= guess.confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\n\t", "😀👍🔥", "👍", "12345", "4.5/5 !!!", "ok", "??", "—", ":-)"],
)
def test_texts_without_enough_letters_are_undetermined(text: str) -> None:
    guess = detect_language(text)
    assert guess == LanguageGuess("und", 0.0, False)


@pytest.mark.parametrize(
    "text",
    [
        "great service!",
        "Great service",
        "thanks",
        "terrible",
        "perfect",
        "love it",
        "nice app",
        "not bad",
        "fast shipping",
        "worst experience ever",
        "app keeps crashing",
        "Thank you so much!!",
        "too expensive",
        "GREAT SERVICE 👍",
    ],
)
def test_short_english_texts_are_english(text: str) -> None:
    assert detect_language(text).code == "en"


@pytest.mark.parametrize(
    ("text", "code"),
    [("Muy bien", "es"), ("Sehr gut", "de"), ("Très bien", "fr"), ("das war so gut", "de")],
)
def test_short_texts_in_other_languages_are_not_forced_to_english(text: str, code: str) -> None:
    assert detect_language(text).code == code


def test_confidence_is_a_probability_and_codes_are_candidates() -> None:
    texts = [
        "great service!",
        "La commande est arrivée cassée.",
        "hmm",
        "xqzt vbnm",
        "Die App stürzt ständig ab.",
    ]
    for guess in detect_many(texts):
        assert 0.0 <= guess.confidence <= 1.0
        assert guess.code == "und" or guess.code in CANDIDATE_LANGUAGES


def test_detect_many_keeps_order_and_length() -> None:
    texts = ["Der Kundenservice war sehr freundlich.", "", "great service!"]
    assert [guess.code for guess in detect_many(texts)] == ["de", "und", "en"]


def test_long_text_is_detected_from_its_beginning() -> None:
    text = "Le service client était vraiment nul, personne ne répond. " * 200
    assert detect_language(text).code == "fr"


def test_vectorised_scoring_gives_py3langid_answers() -> None:
    identifier = _identifier()
    if not hasattr(identifier, "reference"):
        pytest.skip("this py3langid layout runs its own classify")
    assert identifier.depth >= 4
    texts = [
        "",
        "a",
        "😀👍",
        "The delivery was late and the driver was rude to my mother.",
        "Der Kundenservice war sehr freundlich, aber die Lieferung kam zu spät.",
        "Le service client était vraiment nul, personne ne répond au téléphone.",
        "素晴らしいサービスでした。また利用します。",
        "Очень плохой сервис, никто не отвечает.",
        "I HAVE BEEN WITH AMAZON PRIME FOR 2 YEARS",
        "mixed English y español en la misma frase, pretty common",
        "x" * 3000,
    ]
    for text in texts:
        code, confidence = identifier.classify(text)
        expected_code, expected_confidence = identifier.reference.classify(text)
        assert code == expected_code, text
        assert confidence == pytest.approx(expected_confidence, abs=1e-5), text


def test_plainly_english_long_texts_skip_the_model_and_other_languages_never_do() -> None:
    from feedback.demo.generator import generate
    from feedback.language import _plain_english

    english = ("The courier left the parcel at the wrong door and it was soaked, and when I called "
               "they said there was nothing they could do about it.")
    assert _plain_english(english) is not None and detect_language(english).code == "en"
    foreign = [row["text"] for row in generate() if row["language"] == ""]
    assert len(foreign) >= 50
    assert not [text for text in foreign if _plain_english(text)]
    for text in ("La entrega llegó tarde y la caja estaba dañada, nadie contestó mis correos.",
                 "Die Lieferung kam zu spät und das Paket war beschädigt, niemand hat geantwortet.",
                 "La livraison est arrivée en retard et le colis était abîmé, personne n'a répondu.",
                 "De levering was te laat en de doos was beschadigd, niemand heeft gereageerd."):
        assert _plain_english(text) is None
