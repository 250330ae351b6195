"""Targeted tests of `postdesk.mail.parse`: hostile input, charsets, encoded words, parts, TNEF."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from mail_factory import CORPORA, make_mail, multipart, part

from postdesk.mail.model import Address
from postdesk.mail.parse import parse

pytestmark = pytest.mark.pure


def codes(raw: bytes) -> set[str]:
    return {p.code for p in parse(raw).problems}


def test_simple_mail_fields() -> None:
    raw = make_mail(
        "Hello there\n",
        sender='"Jörg Müller" <joerg@example.de>',
        to="a@example.com, B <b@example.com>",
        extra=(
            ("Cc", "=?utf-8?q?Caf=C3=A9?= <cafe@example.com>"),
            ("Reply-To", "replies@example.com"),
            ("In-Reply-To", "<parent@example.com>"),
            ("References", "<root@example.com> (comment) junk\r\n <parent@example.com>"),
            ("Thread-Index", "AQHZabcdEFGHijklMNOPqrstUVWXyz=="),
        ),
    )
    msg = parse(raw)
    assert msg.message_id == "m1@example.com"
    assert msg.from_ == Address("joerg@example.de", "Jörg Müller")
    assert [a.address for a in msg.to] == ["a@example.com", "b@example.com"]
    assert msg.cc == (Address("cafe@example.com", "Café"),)
    assert msg.reply_to == (Address("replies@example.com"),)
    assert msg.in_reply_to == ("parent@example.com",)
    assert msg.references == ("root@example.com", "parent@example.com")
    assert msg.date == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    assert msg.text == "Hello there\n"
    assert msg.thread_index == "AQHZabcdEFGHijklMNOPqrstUVWXyz=="
    assert msg.header("subject") == "Test"
    assert msg.problems == ()


def test_empty_input() -> None:
    for raw in (b"", b"\r\n  \n"):
        msg = parse(raw)
        assert [p.code for p in msg.problems] == ["empty"]
        assert msg.text == ""


def test_binary_garbage_gives_problems_not_exceptions() -> None:
    raw = bytes(range(256)) * 40
    msg = parse(raw)
    assert msg.problems
    assert "missing-from" in {p.code for p in msg.problems}


def test_headers_only() -> None:
    msg = parse(b"From: a@example.com\r\nSubject: hi\r\nMessage-ID: <x@y>\r\n\r\n")
    assert msg.text == ""
    assert "no-body" in {p.code for p in msg.problems}
    msg = parse(b"From: a@example.com\r\nSubject: hi\r\n")
    assert msg.subject == "hi"
    assert "no-body" in {p.code for p in msg.problems}


def test_missing_message_id_is_not_invented() -> None:
    msg = parse(make_mail(message_id=None))
    assert msg.message_id is None
    assert "missing-message-id" in {p.code for p in msg.problems}


def test_bad_date() -> None:
    msg = parse(make_mail(date="the day after tomorrow"))
    assert msg.date is None
    assert "bad-date" in {p.code for p in msg.problems}


def test_date_without_zone_is_utc() -> None:
    msg = parse(make_mail(date="Mon, 01 Jan 2024 10:00:00 -0000"))
    assert msg.date == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


def test_invalid_utf8_in_headers() -> None:
    raw = make_mail(subject=b"Caf\xe9 \xff\xfe ok", sender="Bob \xe9 <bob@example.com>")
    msg = parse(raw)
    assert msg.subject.startswith("Caf")
    assert msg.subject.endswith("ok")
    assert msg.from_ is not None and msg.from_.address == "bob@example.com"
    assert "raw-8bit-header" in {p.code for p in msg.problems}


def test_raw_8bit_header_without_declaration_uses_body_charset() -> None:
    subject = "Привет мир".encode("windows-1251")
    raw = make_mail("Тест".encode("windows-1251"), subject=subject, content_type="text/plain; charset=windows-1251")
    msg = parse(raw)
    assert msg.subject == "Привет мир"
    assert msg.text == "Тест"


def test_raw_utf8_header_is_fine() -> None:
    msg = parse(make_mail(subject="Grüße 你好".encode()))
    assert msg.subject == "Grüße 你好"
    assert "raw-8bit-header" not in {p.code for p in msg.problems}


def test_ten_thousand_char_header_line() -> None:
    long_subject = "x" * 10_000
    started = time.perf_counter()
    msg = parse(make_mail(subject=long_subject, extra=(("X-Long", "y" * 10_000),)))
    assert time.perf_counter() - started < 5
    assert msg.subject == long_subject
    assert msg.header("X-Long") == "y" * 10_000


def test_deep_nesting_is_capped() -> None:
    depth = 200
    body = b""
    for level in range(depth):
        body += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (level, level + 1)
    body += b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" % depth
    for level in reversed(range(depth + 1)):
        body += b"--b%d--\r\n" % level
    msg = parse(make_mail(body, content_type="multipart/mixed; boundary=b0"))
    assert "nesting-too-deep" in {p.code for p in msg.problems}


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("iso-8859-1", "Grüße aus Köln, señor"),
        ("windows-1251", "Здравствуйте, у меня проблема"),
        ("gb2312", "你好，我的订单有问题"),
        ("koi8-r", "Добрый день"),
        ("utf-8", "Salut ça va ✓"),
    ],
)
def test_declared_charsets(charset: str, text: str) -> None:
    msg = parse(make_mail(text.encode(charset), content_type=f"text/plain; charset={charset}", cte="8bit"))
    assert msg.text == text


def test_missing_charset_is_detected() -> None:
    text = "Здравствуйте, у меня не работает принтер, помогите пожалуйста разобраться с настройками."
    msg = parse(make_mail(text.encode("windows-1251"), content_type="text/plain", cte="8bit"))
    assert msg.text == text


def test_wrong_charset_falls_back() -> None:
    text = "你好，我的订单有问题"
    msg = parse(make_mail(text.encode("utf-8"), content_type="text/plain; charset=us-ascii", cte="8bit"))
    assert msg.text == text
    assert "charset-fallback" in {p.code for p in msg.problems}


def test_utf8_labelled_latin1() -> None:
    msg = parse(make_mail("Grüße".encode(), content_type="text/plain; charset=iso-8859-1", cte="8bit"))
    assert msg.text == "Grüße"


def test_unknown_charset_label() -> None:
    msg = parse(make_mail(b"plain ascii", content_type="text/plain; charset=x-no-such-charset"))
    assert msg.text == "plain ascii"


def test_encoded_words_split_multibyte() -> None:
    # One CJK character split across two encoded words must still decode (RFC 2047 §6.2 joins them).
    encoded = "你好".encode()
    first = "=?utf-8?Q?" + "".join(f"={b:02X}" for b in encoded[:4]) + "?="
    second = "=?utf-8?Q?" + "".join(f"={b:02X}" for b in encoded[4:]) + "?="
    msg = parse(make_mail(subject=f"{first} {second} ok"))
    assert msg.subject == "你好 ok"


def test_subject_unfolded() -> None:
    msg = parse(make_mail(subject="A long\r\n\tsubject\r\n  line"))
    assert msg.subject == "A long subject line"


def test_alternative_prefers_plain_and_sanitises_html() -> None:
    html = (
        '<p onclick="x()">Hi <b>there</b><script>alert(1)</script>'
        '<img src="cid:logo@x"><a href="javascript:evil()">l</a></p>'
    )
    ctype, body = multipart(
        "alternative",
        part("text/plain; charset=utf-8", "Hi there"),
        part("text/html; charset=utf-8", html),
    )
    msg = parse(make_mail(body, content_type=ctype))
    assert msg.text == "Hi there"
    assert "<b>there</b>" in msg.html
    assert "script" not in msg.html
    assert "onclick" not in msg.html
    assert "javascript" not in msg.html
    assert 'src="cid:logo@x"' in msg.html


def test_html_only_is_rendered_to_text() -> None:
    msg = parse(make_mail("<html><body><p>Hello</p><p>World</p></body></html>", content_type="text/html"))
    assert "Hello" in msg.text
    assert "World" in msg.text
    assert "<p>" in msg.html


def test_attachments_and_inline_images() -> None:
    ctype, related = multipart(
        "related",
        part("text/html; charset=utf-8", '<p>logo: <img src="cid:logo@example"></p>'),
        part("image/png", b"\x89PNG fake", "Content-ID: <logo@example>", "Content-Disposition: inline", b64=True),
        boundary="REL",
    )
    outer_type, body = multipart(
        "mixed",
        f"Content-Type: {ctype}\r\n\r\n".encode() + related,
        part(
            "application/pdf",
            b"%PDF-1.4 fake",
            "Content-Disposition: attachment; filename*=utf-8''%D0%A1%D1%87%D0%B5%D1%82.pdf",
            b64=True,
        ),
        part(
            "application/octet-stream",
            b"data",
            'Content-Disposition: attachment; filename="=?utf-8?b?0J7RgtGH0LXRgi50eHQ=?="',
            b64=True,
        ),
    )
    msg = parse(make_mail(body, content_type=outer_type))
    names = [a.filename for a in msg.attachments]
    assert names[1:] == ["Счет.pdf", "Отчет.txt"]
    image = msg.attachments[0]
    assert image.content_id == "logo@example"
    assert image.inline is True
    assert image.content == b"\x89PNG fake"
    assert msg.attachments[1].inline is False
    assert msg.attachments[1].content == b"%PDF-1.4 fake"


def test_enclosed_message_kept_as_eml() -> None:
    inner = make_mail("inner body", subject="Original: question?")
    ctype, body = multipart("mixed", part("text/plain", "See below"), part("message/rfc822", inner))
    msg = parse(make_mail(body, content_type=ctype))
    assert msg.text == "See below"
    enclosed = [a for a in msg.attachments if a.content_type == "message/rfc822"]
    assert len(enclosed) == 1
    assert enclosed[0].filename == "Original_ question.eml"
    assert b"inner body" in enclosed[0].content
    assert "enclosed-message" in {p.code for p in msg.problems}


def test_missing_boundary_keeps_text() -> None:
    msg = parse(make_mail("just text\n", content_type="multipart/mixed"))
    assert "just text" in msg.text
    assert "broken-multipart" in {p.code for p in msg.problems}


def test_boundary_never_occurs() -> None:
    msg = parse(make_mail("just text\n", content_type='multipart/mixed; boundary="nothere"'))
    assert "just text" in msg.text


def test_invalid_address_skipped() -> None:
    msg = parse(make_mail(to="not an address, ok@example.com, undisclosed-recipients:;"))
    assert [a.address for a in msg.to] == ["ok@example.com"]
    assert "invalid-address" in {p.code for p in msg.problems}


def test_tnef_attachment_extracted() -> None:
    tnef_path = CORPORA / "mimekit-tnef" / "winmail.tnef"
    if not tnef_path.exists():
        pytest.skip(f"LOUD: corpus file {tnef_path} is missing")
    ctype, body = multipart(
        "mixed",
        part("text/plain", "see attached"),
        part(
            "application/ms-tnef",
            tnef_path.read_bytes(),
            'Content-Disposition: attachment; filename="winmail.dat"',
            b64=True,
        ),
    )
    msg = parse(make_mail(body, content_type=ctype))
    assert all(a.filename != "winmail.dat" for a in msg.attachments)
    assert msg.attachments


def test_broken_tnef_is_kept() -> None:
    ctype, body = multipart(
        "mixed",
        part("text/plain", "see attached"),
        part(
            "application/ms-tnef",
            b"not tnef at all",
            'Content-Disposition: attachment; filename="winmail.dat"',
            b64=True,
        ),
    )
    msg = parse(make_mail(body, content_type=ctype))
    assert [a.filename for a in msg.attachments] == ["winmail.dat"]
    assert "tnef-failed" in {p.code for p in msg.problems}


def test_format_flowed_is_unwrapped() -> None:
    body = "This is a long \r\nline that wraps.\r\n> quoted \r\n> too\r\n-- \r\nsig\r\n"
    msg = parse(make_mail(body, content_type="text/plain; charset=utf-8; format=flowed"))
    assert msg.text.splitlines()[:3] == ["This is a long line that wraps.", "> quoted too", "-- "]
