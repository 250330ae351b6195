"""Tests of `postdesk.triage.language`: lingua restricted to the configured languages, None when unsure."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest

from postdesk.triage.language import Detection, LanguageDetector, supported_languages

pytestmark = pytest.mark.pure

CONFIGURED = ["en", "de", "ru", "uk", "fa", "zh"]


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    # Building one per module: loading lingua's models takes seconds.
    return LanguageDetector(CONFIGURED)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("My card payment failed twice today, please help.", "en"),
        ("Meine Karte funktioniert seit gestern nicht mehr.", "de"),
        ("Здравствуйте, у меня не проходит оплата картой.", "ru"),
        ("Доброго дня, у мене не працює оплата карткою.", "uk"),
        ("سلام، پرداخت من ناموفق بود. لطفا کمک کنید.", "fa"),
        ("你好，我的支付失败了，请帮忙看一下。", "zh"),
    ],
)
def test_short_mails_in_each_configured_language(detector: LanguageDetector, text: str, language: str) -> None:
    detected = detector.detect(text)
    assert detected.language == language
    assert 0.5 <= detected.confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "Merci beaucoup pour votre aide, je vous souhaite une bonne journée.",
        "Muchas gracias por su ayuda, que tenga un buen día.",
    ],
)
def test_a_language_not_configured_is_never_returned(detector: LanguageDetector, text: str) -> None:
    assert detector.detect(text).language in {*CONFIGURED, None}
    assert LanguageDetector(["en", "fr"]).detect(text).language in {"en", "fr", None}


@pytest.mark.parametrize("text", ["", "ok", "Hi", "  12345 !!! ", "👍"])
def test_tiny_text_has_no_language(detector: LanguageDetector, text: str) -> None:
    assert detector.detect(text) == Detection(language=None, confidence=0.0)


def test_ambiguous_text_below_the_minimum_confidence_has_no_language(detector: LanguageDetector) -> None:
    # "hola" is in no configured language; lingua spreads its confidence thin among them.
    detected = LanguageDetector(["en", "de", "es", "fr"]).detect("hola")
    assert detected.language is None and detected.confidence < 0.5
    assert LanguageDetector(["en", "de"], min_confidence=0.0).detect("hallo").language in {"en", "de"}


def test_one_configured_language_needs_no_model() -> None:
    only = LanguageDetector(["ru"])
    assert only.detect("Здравствуйте, всё сломалось") == Detection(language="ru", confidence=1.0)
    assert only.detect("да").language is None


def test_codes_are_case_insensitive_and_unknown_ones_are_refused_with_the_list() -> None:
    assert LanguageDetector(["EN", " ru "]).languages == ("en", "ru")
    with pytest.raises(ValueError, match=r"unknown language code\(s\) 'xx'.*supported ISO 639-1 codes: af, ") as error:
        LanguageDetector(["en", "xx"])
    assert "zh" in str(error.value)
    with pytest.raises(ValueError, match="at least one language"):
        LanguageDetector([])
    assert {"en", "ru", "uk", "fa", "zh"} <= set(supported_languages())
