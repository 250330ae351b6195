"""Corpus tests: never raise on any corpus mail, and meet each corpus's expectations except listed known failures."""

from __future__ import annotations

from collections.abc import Callable

import corpus_checks
import pytest
from corpus_known_failures import KNOWN_FAILURES
from mail_factory import CORPORA

pytestmark = pytest.mark.pure

if not CORPORA.is_dir():  # pragma: no cover - depends on the machine
    pytest.skip(f"!!! CORPORA MISSING: {CORPORA} does not exist; corpus tests NOT run !!!", allow_module_level=True)

CHECKS: dict[str, Callable[[], dict[str, str]]] = {
    "never_raises": corpus_checks.never_raises,
    "stalwart": corpus_checks.stalwart,
    "zbateson": corpus_checks.zbateson,
    "tnef": corpus_checks.tnef,
    "spamscope": corpus_checks.spamscope,
    "flanker": corpus_checks.flanker,
    "flufl": corpus_checks.flufl,
    "sisimai": corpus_checks.sisimai,
    "discourse": corpus_checks.discourse,
    "talon": corpus_checks.talon,
    "talon_html": corpus_checks.talon_html,
}


@pytest.mark.parametrize("corpus", sorted(CHECKS))
def test_corpus(corpus: str) -> None:
    failures = CHECKS[corpus]()
    known = KNOWN_FAILURES.get(corpus, {})
    new = {name: why for name, why in failures.items() if name not in known}
    assert new == {}, f"new {corpus} failures (fix, or list in corpus_known_failures.py with a reason)"
    fixed = sorted(set(known) - set(failures))
    assert fixed == [], f"{corpus}: these known failures pass now; remove them from KNOWN_FAILURES"


def test_never_raises_has_no_known_failures() -> None:
    assert KNOWN_FAILURES["never_raises"] == {}
