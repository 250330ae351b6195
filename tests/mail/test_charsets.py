"""Targeted tests of `postdesk.mail.charsets`: the charsets senders declare versus the ones they use."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest

from postdesk.mail.charsets import codec_name, decode_bytes, decode_utf7_runs

pytestmark = pytest.mark.pure


@pytest.mark.parametrize(
    ("label", "text", "really", "used"),
    [
        # 朱镕基: 镕 is GBK, outside GB2312, and Chinese mail labelled gb2312 carries it.
        ("gb2312", "朱镕基总理", "gb18030", "gb18030"),
        # Cantonese characters exist only in Big5-HKSCS; the euro sign only in cp950.
        ("big5", "我哋冇嘅啲嘢", "big5hkscs", "big5hkscs"),
        ("big5", "價格 €5", "cp950", "cp950"),
        # Circled digits and ㈱ are NEC extensions: cp932, not JIS Shift_JIS.
        ("shift_jis", "①番 ㈱山田商事", "cp932", "cp932"),
        # 똠 is a UHC (cp949) syllable outside KS X 1001.
        ("euc-kr", "똠방각하", "cp949", "cp949"),
    ],
)
def test_mislabelled_cjk_decodes_with_the_wider_charset(label: str, text: str, really: str, used: str) -> None:
    decoded = decode_bytes(text.encode(really), label)
    assert decoded.text == text
    assert decoded.how == "superset"
    assert decoded.codec == used


def test_text_that_fits_the_declared_cjk_charset_is_declared() -> None:
    decoded = decode_bytes("你好，我的订单有问题".encode("gb2312"), "gb2312")
    assert decoded == ("你好，我的订单有问题", "declared", "gb2312")


def test_ks_c_5601_is_microsofts_name_for_cp949() -> None:
    decoded = decode_bytes("똠방각하".encode("cp949"), "ks_c_5601-1987")
    assert decoded == ("똠방각하", "declared", "cp949")


@pytest.mark.parametrize(
    ("data", "text"),
    [
        # ESC $ B, JIS row 13 (NEC): circled one and ㈱ followed by 株式会社.
        (b"\x1b$B-!\x1b(B", "①"),
        (b"\x1b$B-j3t<02q<R\x1b(B", "㈱株式会社"),
        # ESC ( I: JIS X 0201 half-width katakana.
        (b"\x1b(I6@6E\x1b(B", "ｶﾀｶﾅ"),
        # A line that never switches back to ASCII before its end.
        (b"abc \x1b$B-!\n", "abc ①\n"),
    ],
)
def test_iso_2022_jp_with_microsoft_extensions(data: bytes, text: str) -> None:
    decoded = decode_bytes(data, "ISO-2022-JP")
    assert decoded.text == text
    assert decoded.how == "superset"
    assert decoded.codec == "cp50220"


def test_plain_iso_2022_jp_is_declared() -> None:
    decoded = decode_bytes("こんにちは".encode("iso2022_jp"), "iso-2022-jp")
    assert decoded == ("こんにちは", "declared", "iso2022_jp")


def test_latin1_label_with_curly_quotes_is_windows_1252() -> None:
    decoded = decode_bytes(b"He said \x93hi\x94 \x96 ok", "iso-8859-1")
    assert decoded.text == "He said “hi” – ok"
    assert decoded.how == "superset"


def test_latin1_label_without_c1_bytes_stays_latin1() -> None:
    assert decode_bytes("Grüße".encode("latin-1"), "ISO-8859-1") == ("Grüße", "declared", "iso8859-1")


def test_us_ascii_label_with_an_apostrophe_byte_is_a_windows_1252_guess() -> None:
    assert decode_bytes(b"It\x92s fine", "us-ascii") == ("It’s fine", "guessed", "cp1252")


def test_windows_1252_undefined_bytes_do_not_fail() -> None:
    assert decode_bytes(b"\x81 ok \x93x\x94", "windows-1252").text == "\x81 ok “x”"


def test_utf8_with_one_broken_byte_stays_utf8() -> None:
    data = "Grüße, schöne Grüße aus Köln".encode() + b"\xff" + " und mehr Grüße".encode()
    decoded = decode_bytes(data, "utf-8")
    assert decoded.text == "Grüße, schöne Grüße aus Köln\ufffd und mehr Grüße"
    assert decoded.how == "utf-8-repaired"


def test_latin1_bytes_labelled_utf8_are_guessed() -> None:
    assert decode_bytes("Grüße".encode("latin-1"), "utf-8") == ("Grüße", "guessed", "cp1252")


def test_utf8_labelled_latin1_is_utf8() -> None:
    assert decode_bytes("Grüße".encode(), "iso-8859-1") == ("Grüße", "utf-8", "utf-8")


def test_hint_is_used_for_undeclared_bytes() -> None:
    decoded = decode_bytes("Привет мир".encode("koi8-r"), None, hint="koi8-r")
    assert decoded == ("Привет мир", "hint", "koi8-r")


def test_long_undeclared_text_is_detected() -> None:
    text = "Здравствуйте, у меня не работает принтер, помогите пожалуйста разобраться с настройками."
    decoded = decode_bytes(text.encode("windows-1251"))
    assert decoded.text == text
    assert decoded.how == "detected"


def test_utf8_byte_order_mark_is_not_text() -> None:
    assert decode_bytes(b"\xef\xbb\xbfhello", "utf-8").text == "hello"


def test_empty_and_unknown_labels() -> None:
    assert decode_bytes(b"") == ("", "declared", "ascii")
    assert codec_name("x-no-such-charset") is None
    assert codec_name("unknown-8bit") is None
    assert codec_name('"UTF-8*en"') == "utf-8"
    assert codec_name("windows-31j") == "cp932"
    assert decode_bytes(b"plain", "x-no-such-charset") == ("plain", "utf-8", "utf-8")


def test_utf7_runs() -> None:
    assert decode_utf7_runs("Die Hasen und die Fr+APY-sche") == "Die Hasen und die Frösche"
    assert decode_utf7_runs("Heinz M+APw-ller") == "Heinz Müller"
    # Plus signs that cannot be UTF-7 stay. ("CA+abc" can, which is why only the subject and display
    # names of UTF-7 mail go through this: see test_parse.test_undeclared_utf7_headers.)
    for text in ("C++ question", "a+b@example.com", "1+1=2", "+49 30 1234567"):
        assert decode_utf7_runs(text) == text
