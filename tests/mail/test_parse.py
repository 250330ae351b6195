"""Targeted tests of `postdesk.mail.parse`: hostile input, charsets, encoded words, parts, TNEF."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import binascii
import struct
import time
from datetime import UTC, datetime

import pytest
from mail_factory import CORPORA, make_mail, multipart, part

from postdesk.mail.automated import detect_automated
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


def test_an_address_as_display_name_never_becomes_the_sender() -> None:
    msg = parse(
        make_mail(
            sender="support@yourbank.test <attacker@evil.test>",
            to='help@example.com <real@example.com>, "Carol" <carol@example.com>',
        )
    )
    assert msg.from_ is not None
    assert (msg.from_.address, msg.from_.name) == ("attacker@evil.test", "support@yourbank.test")
    assert [a.address for a in msg.to] == ["real@example.com", "carol@example.com"]
    details = [p.detail for p in msg.problems if p.code == "address-like-display-name"]
    assert any("attacker@evil.test" in d for d in details)


def test_a_line_break_encoded_in_a_display_name_never_makes_an_address() -> None:
    msg = parse(make_mail(sender="=?utf-8?q?Eve=0D=0ABcc:_evil@attacker.test?= <eve@customer.test>"))
    assert msg.from_ is not None
    assert msg.from_.address == "eve@customer.test"
    assert "\n" not in msg.from_.name


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


# --- charsets in real mail -------------------------------------------------------------------


def problems(raw: bytes) -> list[tuple[str, str]]:
    return [(p.code, p.detail) for p in parse(raw).problems]


def test_undeclared_utf7_headers() -> None:
    # zbateson m1011 / stalwart legacy/034: Netscape wrote the headers of a UTF-7 mail in raw UTF-7.
    raw = make_mail(
        "Die Hasen und die Fr+APY-sche",
        subject="Die Hasen und die Fr+APY-sche",
        to='"Heinz M+APw-ller" <mueller+hasen@example.com>',
        message_id="<CA+abcdef@mail.example.com>",
        content_type="text/plain; charset=UTF-7",
    )
    msg = parse(raw)
    assert msg.subject == "Die Hasen und die Frösche"
    assert msg.header("Subject") == "Die Hasen und die Frösche"
    assert msg.to == (Address("mueller+hasen@example.com", "Heinz Müller"),)
    assert msg.message_id == "CA+abcdef@mail.example.com"
    assert msg.text == "Die Hasen und die Frösche"
    assert ("raw-utf7-header", "decoded as utf-7, the body's charset") in problems(raw)


def test_plus_signs_in_a_utf8_mail_are_not_utf7() -> None:
    msg = parse(make_mail(subject="Fr+APY-sche C++"))
    assert msg.subject == "Fr+APY-sche C++"
    assert "raw-utf7-header" not in {p.code for p in msg.problems}


@pytest.mark.parametrize(
    ("label", "text", "really"),
    [
        ("gb2312", "朱镕基总理的讲话", "gb18030"),
        ("big5", "我哋冇嘅啲嘢", "big5hkscs"),
        ("shift_jis", "①番 ㈱山田商事", "cp932"),
        ("euc-kr", "똠방각하", "cp949"),
    ],
)
def test_mislabelled_cjk_body(label: str, text: str, really: str) -> None:
    raw = make_mail(text.encode(really), content_type=f"text/plain; charset={label}", cte="8bit")
    msg = parse(raw)
    assert msg.text == text
    assert ("charset-fallback", f"body: declared {label!r}, decoded as {really} (superset)") in problems(raw)


def test_iso_2022_jp_subject_with_nec_characters() -> None:
    # Japanese phones and Outlook put NEC row 13 (①, ㈱) into "ISO-2022-JP" (Microsoft's cp50220).
    word = base64.b64encode(b"\x1b$B-j3t<02q<R\x1b(B").decode()
    raw = make_mail(subject=f"=?ISO-2022-JP?B?{word}?=")
    assert parse(raw).subject == "㈱株式会社"
    assert (
        "charset-fallback",
        "encoded word: declared 'ISO-2022-JP', decoded as cp50220 (superset)",
    ) in problems(raw)


def test_latin1_body_with_curly_quotes() -> None:
    raw = make_mail(b"He said \x93hi\x94", content_type="text/plain; charset=iso-8859-1", cte="8bit")
    assert parse(raw).text == "He said “hi”"
    assert ("charset-fallback", "body: declared 'iso-8859-1', decoded as cp1252 (superset)") in problems(raw)


def test_encoded_word_in_the_wrong_charset() -> None:
    raw = make_mail(subject="=?iso-8859-1?Q?Gr=C3=BC=C3=9Fe?= und =?utf-8?Q?Gr=FC=DFe?=")
    assert parse(raw).subject == "Grüße und Grüße"
    found = problems(raw)
    assert ("charset-fallback", "encoded word: declared 'iso-8859-1', decoded as utf-8 (utf-8)") in found
    assert ("bad-encoded-word", "charset 'utf-8' decoded as cp1252 (guessed)") in found


def test_base64_encoded_words_split_inside_a_character() -> None:
    data = "订单问题".encode()
    first = base64.b64encode(data[:5]).decode()
    second = base64.b64encode(data[5:]).decode()
    msg = parse(make_mail(subject=f"=?UTF-8?B?{first}?=\r\n =?utf-8?B?{second}?="))
    assert msg.subject == "订单问题"
    assert msg.problems == ()


def test_raw_8bit_subject_takes_the_charset_of_a_later_text_part() -> None:
    ctype, body = multipart(
        "mixed",
        part("text/plain; charset=koi8-r", "Добрый день".encode("koi8-r")),
        part("application/pdf", b"%PDF", 'Content-Disposition: attachment; filename="a.pdf"', b64=True),
    )
    raw = make_mail(body, subject="Счёт на оплату".encode("koi8-r"), content_type=ctype)
    msg = parse(raw)
    assert msg.subject == "Счёт на оплату"
    assert msg.text == "Добрый день"
    assert ("raw-8bit-header", "decoded as koi8-r (hint)") in problems(raw)


def test_raw_8bit_name_without_any_charset_is_a_windows_1252_guess() -> None:
    raw = make_mail("Hallo", sender=b"J\xfcrgen <j@example.de>")
    assert parse(raw).from_ == Address("j@example.de", "Jürgen")
    assert ("raw-8bit-header", "decoded as cp1252 (guessed)") in problems(raw)


def test_rfc2231_filename_continuations_with_charset_and_language() -> None:
    ctype, body = multipart(
        "mixed",
        part("text/plain", "see attached"),
        part(
            "application/pdf",
            b"%PDF",
            "Content-Disposition: attachment;\r\n filename*0*=utf-8'de'Gr%C3%BC%C3%9Fe%20;"
            "\r\n filename*1*=aus%20K%C3%B6ln.pdf",
            b64=True,
        ),
        part(
            "application/pdf",
            b"%PDF",
            "Content-Disposition: attachment; filename*=gb2312''%D6%EC%E9F%BB%F9.pdf",
            b64=True,
        ),
    )
    raw = make_mail(body, content_type=ctype)
    assert [a.filename for a in parse(raw).attachments] == ["Grüße aus Köln.pdf", "朱镕基.pdf"]
    assert (
        "charset-fallback",
        "content-disposition filename: declared 'gb2312', decoded as gb18030 (superset)",
    ) in problems(raw)


# --- structure -------------------------------------------------------------------------------


def test_obsolete_space_before_the_colon_keeps_the_headers() -> None:
    # RFC 5322 §4.5.1 obs-optional; stalwart malformed/019 begins "Fro :…".
    raw = b"From : Alice <alice@example.com>\r\nSubject: hello\r\nTo: b@example.com\r\n\r\nbody\r\n"
    msg = parse(raw)
    assert msg.from_ == Address("alice@example.com", "Alice")
    assert msg.subject == "hello"
    assert msg.text == "body\n"
    assert ("obsolete-header-syntax", "1 field name(s) with space before the colon") in problems(raw)


def test_broken_date_is_read_leniently() -> None:
    msg = parse(make_mail(date="Tue, 7 Apr 2026 10:00:t <junk@example.test>"))
    assert msg.date == datetime(2026, 4, 7, 10, 0, tzinfo=UTC)
    assert "bad-date" in {p.code for p in msg.problems}


def test_named_inline_text_after_the_body_is_an_attachment() -> None:
    # Netscape 4 attached text files inline (stalwart legacy/042): a file, not more body text.
    ctype, body = multipart(
        "mixed",
        part("text/plain; charset=us-ascii", "The body."),
        part(
            'text/plain; charset=us-ascii; name="fable.txt"',
            "A fable.",
            'Content-Disposition: inline; filename="fable.txt"',
        ),
    )
    msg = parse(make_mail(body, content_type=ctype))
    assert msg.text == "The body."
    assert [(a.filename, a.content) for a in msg.attachments] == [("fable.txt", b"A fable.")]


def test_named_inline_text_that_comes_first_is_the_body() -> None:
    raw = make_mail("The body.", content_type='text/plain; name="body.txt"', extra=(("Content-Disposition", "inline"),))
    msg = parse(raw)
    assert msg.text == "The body."
    assert msg.attachments == ()


def test_detached_signature_is_not_an_attachment() -> None:
    ctype, body = multipart(
        "signed",
        part("text/plain", "Signed words."),
        part("application/pgp-signature; name=signature.asc", "-----BEGIN PGP SIGNATURE-----"),
    )
    msg = parse(make_mail(body, content_type=ctype + '; protocol="application/pgp-signature"; micalg=pgp-sha256'))
    assert msg.text == "Signed words."
    assert msg.attachments == ()


def test_external_body_is_named_after_the_file() -> None:
    ctype, body = multipart(
        "mixed",
        part("text/plain", "Where to find it."),
        part(
            'message/external-body; access-type=anon-ftp; site="ftp.example.com"; name="RFC-MIME.ps"',
            "Content-Type: application/postscript\r\n\r\n",
        ),
    )
    msg = parse(make_mail(body, content_type=ctype))
    assert [(a.filename, a.content_type) for a in msg.attachments] == [("RFC-MIME.ps", "message/external-body")]


# --- uuencode, TNEF, forwarded mail --------------------------------------------------------


def uuencode(name: str, data: bytes) -> str:
    lines = [f"begin 644 {name}"]
    lines += [binascii.b2a_uu(data[i : i + 45], backtick=True).decode().rstrip("\n") for i in range(0, len(data), 45)]
    return "\n".join([*lines, "`", "end"])


def test_uuencoded_files_in_a_text_body_become_attachments() -> None:
    # Old gateways, Outlook 2000 and Lotus Notes (zbateson m0018, stalwart legacy/049).
    logo = bytes(range(256)) * 3
    body = f"Hello,\n\nthe files:\n\n{uuencode('logo.png', logo)}\n\n{uuencode('notes.txt', b'just notes')}\n\nBye\n"
    raw = make_mail(body, content_type="text/plain; charset=us-ascii", extra=(("X-Mailer", "Lotus Notes Release 6.5"),))
    msg = parse(raw)
    assert [(a.filename, a.content_type, a.content) for a in msg.attachments] == [
        ("logo.png", "image/png", logo),
        ("notes.txt", "text/plain", b"just notes"),
    ]
    assert "begin 644" not in msg.text
    assert msg.text.startswith("Hello,\n\nthe files:")
    assert msg.text.rstrip().endswith("Bye")
    assert ("uuencoded-attachment", "logo.png, notes.txt") in problems(raw)


def test_prose_that_looks_like_uuencode_stays_text() -> None:
    body = "begin 644 things to do\nwash the car\nend\n"
    msg = parse(make_mail(body))
    assert msg.text == body
    assert msg.attachments == ()
    assert ("bad-uuencode", "things to do") in problems(make_mail(body))


def make_tnef(filename: str, data: bytes) -> bytes:
    """A minimal winmail.dat (MS-OXTNEF) whose one file is stored as PR_ATTACH_DATA_OBJ, as some Outlooks do."""

    def attribute(level: int, name: int, kind: int, payload: bytes) -> bytes:
        return (
            struct.pack("<BHHI", level, name, kind, len(payload)) + payload + struct.pack("<H", sum(payload) & 0xFFFF)
        )

    properties = struct.pack("<IHHII", 1, 0x0102, 0x3701, 1, len(data)) + data + b"\x00" * (-len(data) % 4)
    return (
        struct.pack("<IH", 0x223E9F78, 1)
        + attribute(1, 0x9006, 0x0008, struct.pack("<I", 0x10000))
        + attribute(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))
        + attribute(2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00")
        + attribute(2, 0x8010, 0x0001, filename.encode() + b"\x00")
        + attribute(2, 0x9005, 0x0006, properties)
    )


def test_tnef_file_ending_in_zero_bytes_keeps_them() -> None:
    # Word documents and OLE storages end in zero-filled sectors (mimekit-tnef MAPI_ATTACH_DATA_OBJ).
    document = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"content" + b"\x00" * 513
    ctype, body = multipart(
        "mixed",
        part("text/plain", "see attached"),
        part(
            "application/ms-tnef",
            make_tnef("report.doc", document),
            'Content-Disposition: attachment; filename="winmail.dat"',
            b64=True,
        ),
    )
    msg = parse(make_mail(body, content_type=ctype))
    assert [(a.filename, a.content_type) for a in msg.attachments] == [("report.doc", "application/msword")]
    assert msg.attachments[0].content == document


def test_tnef_with_only_an_rtf_body_shows_its_text_and_hands_the_rtf_over() -> None:
    tnef_path = CORPORA / "mimekit-tnef" / "rtf.tnef"
    if not tnef_path.exists():
        pytest.skip(f"LOUD: corpus file {tnef_path} is missing")
    ctype, body = multipart(
        "mixed",
        part(
            "application/ms-tnef",
            tnef_path.read_bytes(),
            'Content-Disposition: attachment; filename="winmail.dat"',
            b64=True,
        ),
    )
    raw = make_mail(body, content_type=ctype)
    msg = parse(raw)
    assert [a.filename for a in msg.attachments] == ["message.rtf"]
    assert msg.attachments[0].content.startswith(b"{\\rtf1")
    assert "-- Greg Greg Allen Senior Engineer" in " ".join(msg.text.split())
    assert "\\rtf1" not in msg.text and "\\par" not in msg.text
    assert (
        "tnef-rtf-body",
        "the body is RTF only; shown as text, the original attached as message.rtf",
    ) in problems(raw)


def test_files_inside_a_forwarded_message_are_attachments_too() -> None:
    inner_related, related_body = multipart(
        "related",
        part("text/html", '<p>Invoice attached <img src="cid:logo@x"></p>'),
        part("image/png", b"\x89PNG logo", "Content-ID: <logo@x>", "Content-Disposition: inline", b64=True),
        boundary="INNER-REL",
    )
    inner_type, inner_body = multipart(
        "mixed",
        f"Content-Type: {inner_related}\r\n\r\n".encode() + related_body,
        part("application/pdf", b"%PDF invoice", 'Content-Disposition: attachment; filename="invoice.pdf"', b64=True),
        boundary="INNER",
    )
    inner = make_mail(inner_body, subject="Invoice 42", content_type=inner_type, message_id="<inner@example.com>")
    ctype, body = multipart(
        "mixed",
        part("text/html", '<p>See the forwarded mail <img src="cid:logo@x"></p>'),
        part("message/rfc822", inner, "Content-Disposition: attachment"),
    )
    msg = parse(make_mail(body, content_type=ctype))
    assert "Invoice attached" not in msg.text
    assert [(a.filename, a.enclosed_in, a.inline, a.content_id) for a in msg.attachments] == [
        ("Invoice 42.eml", "", False, None),
        ("attachment-1.png", "Invoice 42.eml", True, None),
        ("invoice.pdf", "Invoice 42.eml", False, None),
    ]
    assert msg.attachments[2].content == b"%PDF invoice"
    assert ("enclosed-message", "Invoice 42") in [(p.code, p.detail) for p in msg.problems]


def test_enclosed_message_uses_the_senders_file_name() -> None:
    inner = make_mail("inner", subject="Original")
    ctype, body = multipart(
        "mixed",
        part("text/plain", "fyi"),
        part("message/rfc822", inner, 'Content-Disposition: attachment; filename="case-1234.eml"'),
    )
    msg = parse(make_mail(body, content_type=ctype))
    assert [a.filename for a in msg.attachments] == ["case-1234.eml"]


def test_base64_encoded_enclosed_message_is_read() -> None:
    # RFC 2046 §5.2.1 forbids it; stalwart rfc/008 shows it happens.
    inner = make_mail("inner body", subject="Encoded inside")
    ctype, body = multipart("mixed", part("text/plain", "fyi"), part("message/rfc822", inner, b64=True))
    msg = parse(make_mail(body, content_type=ctype))
    assert [a.filename for a in msg.attachments] == ["Encoded inside.eml"]
    assert b"inner body" in msg.attachments[0].content


def test_a_forwarded_bounce_does_not_make_the_forward_a_bounce() -> None:
    report_type, report = multipart(
        "report",
        part("text/plain", "Delivery failed."),
        part(
            "message/delivery-status",
            "Reporting-MTA: dns; mx.example.com\r\n\r\n"
            "Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1",
        ),
        boundary="REPORT",
    )
    bounce = make_mail(report, subject="Undelivered Mail", content_type=report_type + "; report-type=delivery-status")
    ctype, body = multipart("mixed", part("text/plain", "Why did this bounce?"), part("message/rfc822", bounce))
    msg = parse(make_mail(body, content_type=ctype))
    assert [a.content_type for a in msg.attachments] == ["message/rfc822"]
    assert detect_automated(msg).kind is None


def test_content_type_folded_without_semicolon_is_repaired() -> None:
    body = "こんにちは、注文が届きません。".encode("iso-2022-jp")
    raw = (
        b"From: a@example.com\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
        b'--B\nContent-Type: text/plain\n    charset="iso-2022-jp"\n\n' + body + b"\n--B--\n"
    )
    msg = parse(raw)
    assert msg.text.strip() == "こんにちは、注文が届きません。"
    assert msg.attachments == ()
    assert "bad-content-type" in {p.code for p in msg.problems}
