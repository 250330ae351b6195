"""Fixtures for transport tests: real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dovecot import INSTALL_HINT, Dovecot, DovecotMissing


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A fresh Dovecot IMAP server on a free loopback port, stopped and removed after the test."""
    try:
        server = Dovecot()
    except DovecotMissing as exc:
        pytest.fail(f"{exc}. The IMAP tests need a real Dovecot: run `{INSTALL_HINT}`.", pytrace=False)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
