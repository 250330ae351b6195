"""Tests of `postdesk.mail.thread_keys`: subject normalisation in many languages, tokens, Thread-Index."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import json

import pytest
from mail_factory import CORPORA

from postdesk.mail.thread_keys import (
    is_forward_subject,
    make_message_id,
    normalize_subject,
    reply_token_from_address,
    reply_token_from_message_id,
    thread_index_root,
    ticket_number,
)

pytestmark = pytest.mark.pure


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Fwd: Printer broken", "printer broken"),
        ("RE: RE: re: Printer", "printer"),
        ("AW: WG: Rechnung 2024", "rechnung 2024"),
        ("SV: VS: Faktura", "faktura"),
        ("Antw: Odp: RIF: R: Ordine", "ordine"),
        ("Re[2]: Re(3): Re^4: Counter", "counter"),
        ("Ответ: Отв: Не работает", "не работает"),
        ("回复：答复: 转发: 订单问题", "订单问题"),
        ("回覆: 問題", "問題"),
        ("پاسخ: مشکل ورود", "مشکل ورود"),
        ("[support-list] Re: [#1234] Login fails", "login fails"),
        ("Re:   lots   of    space ", "lots of space"),
        ("TR: Réf : Facture", "facture"),
        ("Request for quote", "request for quote"),
        ("Reply needed", "reply needed"),
        ("", ""),
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


def test_zulip_subject_corpus() -> None:
    path = CORPORA / "zulip-subject-normalization" / "subjects.json"
    if not path.exists():
        pytest.skip(f"LOUD: corpus {path} is missing; subject corpus not checked")
    cases = json.loads(path.read_text(encoding="utf-8"))
    failures = [
        (c["original_subject"], normalize_subject(c["original_subject"]))
        for c in cases
        if normalize_subject(c["original_subject"]) != c["stripped_subject"].casefold()
    ]
    assert failures == []


def test_ticket_number() -> None:
    assert ticket_number("Re: [#1234] Printer") == 1234
    assert ticket_number("Printer #1234") is None


def test_reply_tokens() -> None:
    assert reply_token_from_address("support+abcd1234efgh@example.com") == "abcd1234efgh"
    assert reply_token_from_address("Support+ABCD1234@example.com") == "abcd1234"
    assert reply_token_from_address("support@example.com") is None
    assert reply_token_from_address("support+short@example.com") is None
    message_id = make_message_id("abcd1234efgh", "example.com")
    assert message_id.startswith("pd.abcd1234efgh.")
    assert message_id.endswith("@example.com")
    assert reply_token_from_message_id(message_id) == "abcd1234efgh"
    assert reply_token_from_message_id(f"<{message_id}>") == "abcd1234efgh"
    assert reply_token_from_message_id("CAF12345@mail.gmail.com") is None
    assert make_message_id("abcd1234efgh", "example.com") != message_id
    with pytest.raises(ValueError):
        make_message_id("BAD TOKEN", "example.com")


def test_thread_index_root() -> None:
    root = bytes(range(22))
    first = base64.b64encode(root).decode()
    reply = base64.b64encode(root + b"\x01\x02\x03\x04\x05").decode()
    assert thread_index_root(first) == root.hex()
    assert thread_index_root(reply) == root.hex()
    assert thread_index_root("not base64 !!") is None
    assert thread_index_root(base64.b64encode(b"short").decode()) is None
    assert thread_index_root("") is None


@pytest.mark.parametrize(
    ("subject", "forward"),
    [
        ("FW: Invoice 42", True),
        ("Fwd: Invoice 42", True),
        ("WG: Rechnung", True),
        ("TR: Facture", True),
        ("RV: Factura", True),
        ("Пересл: Счёт", True),
        ("转发：发票", True),
        ("[billing] Fwd: Invoice", True),
        ("Invoice (fwd)", True),
        ("RE: FW: Invoice 42", False),
        ("Re: Invoice 42", False),
        ("AW: Rechnung", False),
        ("Forward planning for Q3", False),
        ("Fwd", False),
    ],
)
def test_is_forward_subject(subject: str, forward: bool) -> None:
    assert is_forward_subject(subject) is forward
