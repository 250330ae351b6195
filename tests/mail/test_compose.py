"""Tests of `postdesk.mail.compose`: threading headers, encodings, IDN, and header injection through every field."""

# Multilingual names are the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postdesk.mail import compose
from postdesk.mail.automated import detect_automated
from postdesk.mail.compose import ComposeError, FileToSend, ForwardedMail, OutgoingMail, Party
from postdesk.mail.model import AutomatedKind
from postdesk.mail.parse import parse
from postdesk.mail.thread_keys import reply_token_from_address, reply_token_from_message_id

pytestmark = pytest.mark.pure

TOKEN = "k3j5h2g8f7d6s5a4"
DATE = datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
OUR_HEADERS = ["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References"]


def reply(**changes: object) -> OutgoingMail:
    mail = OutgoingMail(
        sender=Party("support@example.com", "Acme Support"),
        reply_to=compose.reply_address("support@example.com", TOKEN),
        to=(Party("alice@customer.test", "Alice Customer"),),
        cc=(Party("bob@customer.test"),),
        bcc=(Party("boss@example.com", "The Boss"),),
        subject="Re: Help with my order",
        date=DATE,
        message_id=f"pd.{TOKEN}.0123456789abcdef@example.com",
        in_reply_to=("first@customer.test",),
        references=("first@customer.test",),
        text="Your parcel left today.\n\n-- \nAcme Support\nhttps://acme.test",
    )
    return dataclasses.replace(mail, **changes)  # type: ignore[arg-type]


def headers_of(raw: bytes) -> Message:
    """The header block exactly as written (no decoding), to see what a relay and a client see."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def unfolded(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value)


def decoded(value: str) -> str:
    """An unstructured header value as a client shows it (RFC 2047 decoding, once)."""
    return str(make_header(decode_header(unfolded(value))))


def display_name(value: str) -> str:
    """The display name of a one-address header as a client shows it."""
    name, _address = email.utils.parseaddr(unfolded(value))
    return str(make_header(decode_header(name))) if "=?" in name else name


def plain_text(parsed: email.message.EmailMessage) -> str:
    body = parsed.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def test_a_reply_carries_threading_headers_the_reply_address_and_no_bcc() -> None:
    composed = compose.compose(reply())
    raw = composed.raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)

    assert [name for name in parsed if name in OUR_HEADERS] == OUR_HEADERS
    assert parsed["From"].addresses[0].display_name == "Acme Support"
    assert parsed["From"].addresses[0].addr_spec == "support@example.com"
    assert str(parsed["To"]) == "Alice Customer <alice@customer.test>"
    assert str(parsed["Cc"]) == "bob@customer.test"
    assert str(parsed["Reply-To"]) == f"support+{TOKEN}@example.com"
    assert reply_token_from_address(str(parsed["Reply-To"])) == TOKEN
    assert parsed["Message-ID"] == f"<pd.{TOKEN}.0123456789abcdef@example.com>"
    assert reply_token_from_message_id(parsed["Message-ID"]) == TOKEN
    assert parsed["In-Reply-To"] == "<first@customer.test>"
    assert parsed["References"] == "<first@customer.test>"
    assert parsed["Subject"] == "Re: Help with my order"
    assert parsed["Date"].datetime == DATE
    assert plain_text(parsed) == "Your parcel left today.\n\n-- \nAcme Support\nhttps://acme.test\n"
    # Bcc is envelope only: no header, not even the address, anywhere in the bytes.
    assert b"bcc" not in raw.lower()
    assert b"boss@example.com" not in raw
    assert composed.recipients == ("alice@customer.test", "bob@customer.test", "boss@example.com")
    assert composed.envelope_from == "support@example.com"


def test_automatic_mail_says_so_and_our_own_detector_agrees() -> None:
    agent_reply = headers_of(compose.compose(reply()).raw)
    assert agent_reply["Auto-Submitted"] is None
    automatic = compose.compose(reply(auto_submitted="auto-replied")).raw
    assert headers_of(automatic)["Auto-Submitted"] == "auto-replied"
    verdict = detect_automated(parse(automatic))
    assert verdict.kind == AutomatedKind.AUTO_REPLY  # so two Postdesks never answer each other
    with pytest.raises(ComposeError):
        compose.compose(reply(auto_submitted="no\r\nBcc: x@evil.test"))


def test_postdesk_reads_its_own_mail_back() -> None:
    parsed = parse(compose.compose(reply()).raw)
    assert parsed.message_id == f"pd.{TOKEN}.0123456789abcdef@example.com"
    assert parsed.in_reply_to == ("first@customer.test",)
    assert [a.address for a in parsed.to] == ["alice@customer.test"]
    assert [a.address for a in parsed.reply_to] == [f"support+{TOKEN}@example.com"]
    assert parsed.text.startswith("Your parcel left today.")


def test_the_mail_is_seven_bit_with_crlf_lines_of_at_most_78_characters() -> None:
    text = "Grüße aus Köln — 你好，世界。\n" + "ein sehr langer Satz " * 30 + "\n.\n.hidden dot line\n"
    raw = compose.compose(reply(text=text, subject="Re: Größe " + "und Farbe " * 20)).raw
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert plain_text(parsed) == text
    assert parsed.get_content_charset() == "utf-8"
    assert parsed["Subject"] == "Re: Größe " + " ".join(["und Farbe"] * 20)


def test_non_ascii_names_are_encoded_words_and_read_back_exactly() -> None:
    for name in ["Zoë Müller", "王小明", "Ōtsuka, Sōta", "Анна Каренина"]:
        raw = compose.compose(reply(to=(Party("x@customer.test", name),))).raw
        value = headers_of(raw)["To"]
        assert value.isascii()
        assert "=?utf-8?" in value
        assert display_name(value) == name


def test_names_with_specials_are_quoted() -> None:
    raw = compose.compose(reply(to=(Party("x@customer.test", 'Smith, John "JJ" \\ Jr.'),))).raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == 'Smith, John "JJ" \\ Jr.'
    assert parsed["To"].addresses[0].addr_spec == "x@customer.test"


def test_idn_domains_are_sent_in_ascii() -> None:
    composed = compose.compose(
        reply(
            sender=Party("hilfe@bücher.de", "Bücher Hilfe"),
            reply_to=compose.reply_address("hilfe@bücher.de", TOKEN),
            to=(Party("kunde@müller.example", "Kunde"),),
            cc=(),
            bcc=(),
        )
    )
    top = headers_of(composed.raw)
    assert top["To"] == "Kunde <kunde@xn--mller-kva.example>"
    assert top["Reply-To"] == f"hilfe+{TOKEN}@xn--bcher-kva.de"
    assert composed.envelope_from == "hilfe@xn--bcher-kva.de"
    assert composed.recipients == ("kunde@xn--mller-kva.example",)


HOSTILE_TEXT = [
    "x\r\nBcc: evil@attacker.test",
    "x\nBcc: evil@attacker.test",
    "x\rBcc: evil@attacker.test",
    "x\r\n\r\nbody injected",
    "x\x00\x0bBcc: evil@attacker.test",
    "x\u2028Bcc: evil@attacker.test",
    "x\x85Bcc: evil@attacker.test",
    # Encoded-words that decode to a line break, or to an address: Python's own header parser would
    # decode these and write a real "Bcc:" line.
    "=?utf-8?q?x=0D=0ABcc:_evil@attacker.test?=",
    "=?us-ascii?Q?x?=\r\n =?us-ascii?Q?=0D=0ABcc:_evil@attacker.test?=",
    "=?utf-8?b?PGV2aWxAYXR0YWNrZXIudGVzdD4=?=",
    '"=?utf-8?q?x=0D=0ABcc:_evil@attacker.test?="',
    "Alice <evil@attacker.test>, Bob",
]


def assert_no_injection(raw: bytes, expected: list[str]) -> None:
    names = [name for name, _value in headers_of(raw).items()]
    assert names[: len(expected)] == expected
    assert set(names[len(expected) :]) <= {"MIME-Version", "Content-Type", "Content-Transfer-Encoding"}
    assert not re.search(rb"(?im)^bcc:", raw)
    assert b"\r\nbody injected" not in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["alice@customer.test"]


@pytest.mark.parametrize("hostile", HOSTILE_TEXT)
def test_no_header_injection_through_a_display_name(hostile: str) -> None:
    mail = reply(
        sender=Party("support@example.com", hostile),
        to=(Party("alice@customer.test", hostile),),
        cc=(),
        bcc=(),
    )
    raw = compose.compose(mail).raw
    expected = ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References"]
    assert_no_injection(raw, expected)
    # The reader sees the very text given (control characters as spaces), never a second decoding of it.
    shown = display_name(headers_of(raw)["To"])
    assert shown == compose.neutralise(hostile)


@pytest.mark.parametrize("hostile", HOSTILE_TEXT)
def test_no_header_injection_through_the_subject(hostile: str) -> None:
    raw = compose.compose(reply(subject=hostile, cc=(), bcc=())).raw
    assert_no_injection(raw, ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References"])
    assert decoded(headers_of(raw)["Subject"]) == compose.neutralise(hostile)


@pytest.mark.parametrize(
    "address",
    [
        "alice@customer.test\r\nBcc: evil@attacker.test",
        "alice@customer.test\nBcc: evil@attacker.test",
        "alice@customer.test>\r\nBcc: <evil@attacker.test",
        "alice@customer.test, evil@attacker.test",
        "Alice <alice@customer.test>",
        "alice@customer.test\x00",
        '"alice smith"@customer.test',
        "alïce@customer.test",
        "alice@",
        "@customer.test",
        "alice",
        "alice@customer..test",
        "alice@-customer.test",
        "=?utf-8?q?evil=0D=0A?=@customer.test",
    ],
)
def test_an_address_that_is_not_a_plain_address_is_refused(address: str) -> None:
    for field in ("to", "cc", "bcc"):
        with pytest.raises(ComposeError):
            compose.compose(reply(**{field: (Party(address, "Alice"),)}))
    with pytest.raises(ComposeError):
        compose.compose(reply(sender=Party(address)))
    with pytest.raises(ComposeError):
        compose.compose(reply(reply_to=address))


def test_message_ids_from_a_customer_mail_that_are_not_plain_are_dropped() -> None:
    raw = compose.compose(
        reply(
            in_reply_to=("good@customer.test",),
            references=(
                "<old@customer.test>",
                "with space@customer.test",
                "x@y>\r\nBcc: evil@attacker.test",
                "ünïcode@customer.test",
                "x" * 400 + "@customer.test",
                "good@customer.test",
            ),
        )
    ).raw
    top = headers_of(raw)
    assert unfolded(top["References"]) == "<old@customer.test> <good@customer.test>"
    assert not re.search(rb"(?im)^bcc:", raw)


def test_our_own_message_id_must_be_plain() -> None:
    for bad in ["", "no-at-sign", "a b@c", "x@y>\r\nBcc: evil@attacker.test"]:
        with pytest.raises(ComposeError):
            compose.compose(reply(message_id=bad))


def test_long_references_are_folded_and_read_back_complete() -> None:
    ids = tuple(f"message-{n:03}.{'x' * 30}@customer.test" for n in range(40))
    raw = compose.compose(reply(references=ids)).raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert parse(raw).references == ids


def test_a_forward_quotes_the_original_and_carries_its_files() -> None:
    original = ForwardedMail(
        sender=Party("alice@customer.test", "Alice Customer"),
        date=datetime(2026, 11, 19, 8, 0, tzinfo=UTC),
        subject="Invoice 4711 is wrong",
        to=(Party("support@example.com", "Acme Support"),),
        cc=(),
        text="The total should be 40 €, not 400 €.\n",
    )
    files = (
        FileToSend("invoice-4711.pdf", "application/pdf", b"%PDF-1.4 invoice"),
        FileToSend("Rechnung\r\nX-Evil: 1 /../../ü.png", "image/png", b"\x89PNG\r\n\x1a\n\x00binary"),
        FileToSend("mail.eml", "message/rfc822", b"From: x\r\n\r\nnot parsed again"),
        FileToSend("odd", "text/plain\r\nX-Evil: 1", b"plain"),
    )
    mail = reply(
        subject="Fwd: Invoice 4711 is wrong",
        text="Finance, please check this one.",
        to=(Party("finance@example.com", "Finance"),),
        cc=(),
        bcc=(),
        forwarded=original,
        attachments=files,
    )
    raw = compose.compose(mail).raw
    assert not re.search(rb"(?im)^x-evil:", raw)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    text = plain_text(parsed)
    assert text.startswith("Finance, please check this one.\n\n---------- Forwarded message ----------\n")
    assert "From: Alice Customer <alice@customer.test>\n" in text
    assert "Subject: Invoice 4711 is wrong\n" in text
    assert text.endswith("The total should be 40 €, not 400 €.\n")
    sent = [(part.get_filename(), part.get_content_type(), part.get_content()) for part in parsed.iter_attachments()]
    assert sent[0] == ("invoice-4711.pdf", "application/pdf", b"%PDF-1.4 invoice")
    assert sent[1][0] == "Rechnung X-Evil: 1 _.._.._ü.png"
    assert sent[1][2] == b"\x89PNG\r\n\x1a\n\x00binary"
    assert sent[2][1:] == ("application/octet-stream", b"From: x\r\n\r\nnot parsed again")
    assert sent[3][1] == "application/octet-stream"


def test_the_reply_address_is_the_mailbox_with_the_token_as_subaddress() -> None:
    assert compose.reply_address("Support@Example.COM", TOKEN) == f"Support+{TOKEN}@example.com"
    with pytest.raises(ComposeError):
        compose.reply_address("support@example.com", "NOT A TOKEN")


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=120), subject=st.text(max_size=300))
def test_any_name_or_subject_reads_back_as_given_and_adds_no_header(name: str, subject: str) -> None:
    raw = compose.compose(reply(to=(Party("alice@customer.test", name),), subject=subject, cc=(), bcc=())).raw
    assert_no_injection(raw, ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References"])
    top = headers_of(raw)
    assert display_name(top["To"]) == compose.neutralise(name)
    assert decoded(top["Subject"]) == compose.neutralise(subject)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
