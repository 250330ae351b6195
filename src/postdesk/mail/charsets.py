"""Byte-to-text decoding for mail: declared charset first, then UTF-8, then charset-normalizer."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

# Labels seen in real mail that Python's codec registry does not know, or knows as a
# narrower charset than the senders actually used (gb2312 mail routinely carries GBK/GB18030
# characters; ks_c_5601-1987 is Microsoft's name for cp949; iso-8859-8-i is RFC 1556's
# "logical order" label for the same bytes as iso-8859-8).
_ALIASES: dict[str, str] = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "",
    "unknown-8bit": "",
    "unknown": "",
    "default": "",
    "x-user-defined": "",
    "shift-jis": "shift_jis",
    "x-sjis": "shift_jis",
    "windows-874": "cp874",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "ansi_x3.4-1968": "ascii",
    "us-ascii": "ascii",
    # Most "latin-1" mail is really windows-1252 (curly quotes in 0x80-0x9F); WHATWG does the same.
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
}

_SINGLE_BYTE_LATIN = {"ascii", "cp1252", "iso8859-15", "latin-1"}


def codec_name(label: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None when it is missing or unknown."""
    if not label:
        return None
    cleaned = label.strip().strip("\"'").lower()
    # RFC 2231 allows a language suffix after "*" in encoded words ("utf-8*en").
    cleaned = cleaned.split("*", 1)[0]
    cleaned = _ALIASES.get(cleaned, cleaned)
    if not cleaned:
        return None
    try:
        return codecs.lookup(cleaned).name
    except LookupError:
        return None


_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")


def decode_bytes(data: bytes, declared: str | None = None, hint: str | None = None) -> tuple[str, str]:
    """Decode `data`, returning (text, how) where `how` is "declared", "utf-8", "hint", "detected" or "fallback".

    Never raises. The order is the declared charset, UTF-8, the caller's hint (for example
    the body charset when a header carries raw 8-bit bytes, RFC 6532 notwithstanding), then
    charset-normalizer, and cp1252 as the last resort (every byte maps, so nothing is lost
    silently: the caller records a problem for "fallback").
    """
    if not data:
        return "", "declared"
    codec = codec_name(declared)
    text: str | None = None
    if codec is not None:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError, ValueError):
            # cp1252 leaves five bytes undefined; a mail labelled iso-8859-1 may use them.
            text = data.decode("latin-1") if codec == "cp1252" else None
        if text is not None:
            # A mail labelled as a single-byte Latin charset whose bytes are valid UTF-8 with
            # multi-byte sequences was mislabelled: real Latin-1 text almost never forms them.
            if codec in _SINGLE_BYTE_LATIN and _UTF8_MULTIBYTE.search(data):
                try:
                    return data.decode("utf-8"), "utf-8"
                except UnicodeDecodeError:
                    pass
            return text, "declared"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    hint_codec = codec_name(hint)
    if hint_codec is not None and hint_codec != codec:
        try:
            return data.decode(hint_codec), "hint"
        except (UnicodeDecodeError, LookupError, ValueError):
            pass
    try:
        best = from_bytes(data).best()
    except Exception:  # charset-normalizer is heuristic code; never let it break parsing
        best = None
    if best is not None:
        return str(best), "detected"
    return data.decode("cp1252", errors="replace"), "fallback"
