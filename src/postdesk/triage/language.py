"""Language detection of a mail's own text with lingua, restricted to the installation's languages.

Building lingua's detector is cheap, but its language models load on the first text of each script:
for en, de, fr, es, ru, uk, fa, zh about 1 s on an idle 2-core machine (4-5 s on a busy one) and
200 MB resident (bench/triage.py); preloading at build time costs the same, only up front. Models
are therefore not preloaded: an installation whose mail is all Latin script never pays for the
Cyrillic ones (`preload()` is there for a worker that wants the cost at start). The detector is
built once per `LanguageDetector`, on first use, and shared by a worker's threads. Removing quoted
history is the caller's job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder
from lingua import LanguageDetector as LinguaDetector

__all__ = ["DEFAULT_MIN_CONFIDENCE", "DEFAULT_MIN_LETTERS", "Detection", "LanguageDetector", "supported_languages"]

# Below these, lingua still answers, but it guesses: "ok" is 45 % English and 42 % German among our
# eight languages, "hola" 49 % Spanish. Callers then keep the mailbox's default language.
DEFAULT_MIN_CONFIDENCE = 0.5
DEFAULT_MIN_LETTERS = 3


@dataclass(frozen=True, slots=True)
class Detection:
    """The detected ISO 639-1 code, or None when the text is too short or too ambiguous to tell.

    `confidence` is lingua's relative confidence among the configured languages (0..1), also
    given when `language` is None so that the reason can be shown.
    """

    language: str | None
    confidence: float


def supported_languages() -> list[str]:
    """Every ISO 639-1 code lingua can detect, sorted."""
    return sorted(language.iso_code_639_1.name.lower() for language in Language.all())


class LanguageDetector:
    """Detects which of the configured languages a text is written in."""

    def __init__(
        self,
        languages: Iterable[str],
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        min_letters: int = DEFAULT_MIN_LETTERS,
    ) -> None:
        codes = sorted({code.strip().lower() for code in languages})
        supported = set(supported_languages())
        unknown = [code for code in codes if code not in supported]
        if unknown:
            raise ValueError(
                f"unknown language code(s) {', '.join(map(repr, unknown))}; "
                f"supported ISO 639-1 codes: {', '.join(sorted(supported))}"
            )
        if not codes:
            raise ValueError("configure at least one language to detect")
        self.languages: tuple[str, ...] = tuple(codes)
        self.min_confidence = min_confidence
        self.min_letters = min_letters
        self._lock = threading.Lock()
        self._detector: LinguaDetector | None = None

    def _lingua(self) -> LinguaDetector:
        with self._lock:
            if self._detector is None:
                iso_codes = [IsoCode639_1.from_str(code) for code in self.languages]
                self._detector = LanguageDetectorBuilder.from_iso_codes_639_1(*iso_codes).build()
            return self._detector

    def preload(self) -> None:
        """Load every configured language's models now (a worker's start), not on the first mail."""
        if len(self.languages) > 1:
            detector = self._lingua()
            # One text per script is enough: lingua loads the models of all candidates for a script.
            for sample in ("support", "поддержка", "پشتیبانی", "支持", "サポート", "지원"):
                detector.compute_language_confidence_values(sample)

    def detect(self, text: str) -> Detection:
        """The language of `text`, or `Detection(None, ...)` when it is too short or ambiguous."""
        if sum(1 for char in text if char.isalpha()) < self.min_letters:
            return Detection(language=None, confidence=0.0)
        if len(self.languages) == 1:
            # lingua needs two languages to compare; with one configured, any real text is in it.
            return Detection(language=self.languages[0], confidence=1.0)
        values = self._lingua().compute_language_confidence_values(text)
        best = values[0] if values else None
        if best is None or best.value < self.min_confidence:
            return Detection(language=None, confidence=best.value if best else 0.0)
        return Detection(language=best.language.iso_code_639_1.name.lower(), confidence=best.value)
