"""Byte-to-text decoding for mail: the declared charset or the wider one senders meant, UTF-8, a hint, then detection.

`decode_bytes` says how it decoded (`Decoded.how`) so callers can record every guess:

- ``declared``: the declared charset decoded the bytes as they are.
- ``superset``: the declared charset failed, or the bytes use a range it leaves to control
  characters, and a wider charset senders routinely mean by that label decoded them
  (GB2312 → GB18030, Big5 → cp950/Big5-HKSCS, Shift_JIS → cp932, ISO-2022-JP → cp50220,
  EUC-KR → cp949, ISO-8859-1 with 0x80-0x9F bytes → windows-1252).
- ``utf-8``: valid UTF-8 (no label, a wrong label, or a single-byte Latin label on bytes that
  form UTF-8 multi-byte sequences).
- ``utf-8-repaired``: UTF-8 with a few broken bytes, which became U+FFFD.
- ``hint``: the caller's hint (for a header, the body's charset).
- ``guessed``: windows-1252 for a handful of 8-bit bytes: too few for a detector to judge, and
  the likeliest legacy charset by far.
- ``detected``: charset-normalizer's best match.
- ``fallback``: nothing fitted; windows-1252 as the WHATWG reads it (every byte maps).
"""

from __future__ import annotations

import codecs
import functools
import re
from typing import Literal, NamedTuple

from charset_normalizer import from_bytes

How = Literal["declared", "superset", "utf-8", "utf-8-repaired", "hint", "guessed", "detected", "fallback"]

# Our name for ISO-2022-JP as Microsoft writes it: JIS X 0208 plus half-width katakana and the
# NEC/IBM extension rows (circled digits, roman numerals, ㈱), which Python's iso2022_jp codecs
# reject. Decoded by `_decode_cp50220`.
CP50220 = "cp50220"
# Our name for windows-1252 as the WHATWG Encoding Standard reads it: the five bytes
# Microsoft leaves undefined map to the C1 controls instead of failing.
WINDOWS_1252 = "cp1252"

# Labels seen in real mail that Python's codec registry does not know, or that always mean a
# Microsoft charset (ks_c_5601-1987 is Microsoft's name for cp949; iso-8859-8-i is RFC 1556's
# "logical order" label for the same bytes as iso-8859-8).
_ALIASES: dict[str, str] = {
    "x-gbk": "gbk",
    "euc-cn": "gb2312",
    "x-euc-cn": "gb2312",
    "cn-gb": "gb2312",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "x-windows-949": "cp949",
    "windows-949": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-8-e": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode20utf8": "utf-8",
    "x-unknown": "",
    "unknown-8bit": "",
    "unknown": "",
    "default": "",
    "x-user-defined": "",
    "shift-jis": "shift_jis",
    "x-sjis": "shift_jis",
    "windows-31j": "cp932",
    "csWindows31J": "cp932",
    "x-ms-cp932": "cp932",
    "iso-2022-jp-ms": CP50220,
    "cp50220": CP50220,
    "cp50221": CP50220,
    "cp50222": CP50220,
    "x-euc-jp": "euc-jp",
    "big5-hkscs": "big5hkscs",
    "x-x-big5": "big5",
    "windows-874": "cp874",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "ansi_x3.4-1968": "ascii",
}

# The wider charsets tried, in order, when the declared one cannot decode the bytes.
_SUPERSETS: dict[str, tuple[str, ...]] = {
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "big5": ("cp950", "big5hkscs"),
    "cp950": ("big5hkscs",),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "cp932": ("shift_jis_2004",),
    "euc_jp": ("euc_jis_2004",),
    "iso2022_jp": (CP50220, "iso2022_jp_2", "iso2022_jp_2004"),
    "iso2022_jp_1": (CP50220, "iso2022_jp_2", "iso2022_jp_2004"),
    "iso2022_jp_ext": (CP50220, "iso2022_jp_2004"),
    "euc_kr": ("cp949",),
}

# Single-byte charsets whose 0x80-0x9F range is C1 controls, which nobody types; the windows
# charset with the same printable range puts curly quotes, dashes and the euro sign there.
_C1_SUPERSETS: dict[str, str] = {
    "iso8859-1": WINDOWS_1252,
    "iso8859-9": "cp1254",
    "iso8859-8": "cp1255",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
}

_SINGLE_BYTE_LATIN = {"ascii", WINDOWS_1252, "iso8859-1", "iso8859-15"}
_C1_BYTES = re.compile(rb"[\x80-\x9f]")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
# Below this many 8-bit bytes charset-normalizer's statistics say little (it reads
# "J\xfcrgen M\xfcller" as cp1006), so a guess of windows-1252 is more often right.
FEW_HIGH_BYTES = 8


class Decoded(NamedTuple):
    text: str
    how: How
    codec: str  # the Python codec (or CP50220 / WINDOWS_1252) that produced `text`


def codec_name(label: str | None) -> str | None:
    """The codec for a MIME charset label (a Python codec name, CP50220), or None when missing or unknown."""
    if not label:
        return None
    cleaned = label.strip().strip("\"'").lower()
    # RFC 2231 §5 allows a language suffix after "*" in encoded words ("utf-8*en").
    cleaned = cleaned.split("*", 1)[0]
    cleaned = _ALIASES.get(cleaned, cleaned)
    if not cleaned:
        return None
    if cleaned == CP50220:
        return CP50220
    try:
        return codecs.lookup(cleaned).name
    except LookupError:
        return None


def decode_bytes(data: bytes, declared: str | None = None, hint: str | None = None) -> Decoded:
    """Decode `data`; never raises. See the module docstring for the order and what `how` means."""
    if not data:
        return Decoded("", "declared", codec_name(declared) or "ascii")
    codec = codec_name(declared)
    if codec is not None:
        found = _decode_declared(data, codec)
        if found is not None:
            return found
    try:
        return Decoded(data.decode("utf-8"), "utf-8", "utf-8")
    except UnicodeDecodeError:
        pass
    repaired = _mostly_utf8(data)
    if repaired is not None:
        return Decoded(repaired, "utf-8-repaired", "utf-8")
    hint_codec = codec_name(hint)
    if hint_codec is not None and hint_codec not in (codec, "ascii", "utf-8"):
        hinted = _decode_declared(data, hint_codec)
        if hinted is not None:
            return Decoded(hinted.text, "hint", hinted.codec)
    if len(_HIGH_BYTE.findall(data)) < FEW_HIGH_BYTES:
        return Decoded(_decode_windows_1252(data), "guessed", WINDOWS_1252)
    detected = detect(data)
    if detected is not None:
        return detected
    return Decoded(_decode_windows_1252(data), "fallback", WINDOWS_1252)


def detect(data: bytes) -> Decoded | None:
    """charset-normalizer's best reading of `data`, or None."""
    try:
        best = from_bytes(data).best()
    except Exception:  # charset-normalizer is heuristic code; never let it break parsing
        return None
    if best is None:
        return None
    return Decoded(str(best), "detected", str(best.encoding))


def _decode_declared(data: bytes, codec: str) -> Decoded | None:
    """The declared codec, or the wider one senders mean by its label; None when neither decodes."""
    text = _strict(data, codec)
    if text is not None:
        if codec in _SINGLE_BYTE_LATIN and _UTF8_MULTIBYTE.search(data):
            # Labelled as a single-byte Latin charset but valid UTF-8 with multi-byte
            # sequences: real Latin-1 text almost never forms them, so it was mislabelled.
            try:
                return Decoded(data.decode("utf-8"), "utf-8", "utf-8")
            except UnicodeDecodeError:
                pass
        wider = _C1_SUPERSETS.get(codec)
        if wider is not None and _C1_BYTES.search(data):
            wide_text = _strict(data, wider)
            if wide_text is not None:
                return Decoded(wide_text, "superset", wider)
        return Decoded(text, "declared", codec)
    for wider in _SUPERSETS.get(codec, ()):
        wide_text = _strict(data, wider)
        if wide_text is not None:
            return Decoded(wide_text, "superset", wider)
    return None


def _strict(data: bytes, codec: str) -> str | None:
    try:
        if codec == CP50220:
            return _decode_cp50220(data)
        if codec == WINDOWS_1252:
            return _decode_windows_1252(data)
        if codec == "utf-8":
            return data.decode("utf-8-sig")  # a byte-order mark is not text
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 text with a few broken bytes (a cut or corrupted sequence), or None when it is not UTF-8 at all."""
    good = len(_UTF8_MULTIBYTE.findall(data))
    if good < 2:
        return None
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    return text if bad * 4 <= good else None


@functools.cache
def _windows_1252_table() -> str:
    return "".join(bytes([byte]).decode("cp1252", "ignore") or chr(byte) for byte in range(256))


def _decode_windows_1252(data: bytes) -> str:
    """windows-1252 as browsers read it (WHATWG): 0x81, 0x8D, 0x8F, 0x90 and 0x9D map to C1 controls."""
    return codecs.charmap_decode(data, "strict", _windows_1252_table())[0]


# ISO-2022-JP escape sequences (RFC 1468, plus JIS X 0201 katakana and the JIS C 6226 alias).
_ISO2022JP_ESCAPE = re.compile(rb"(\x1b(?:\(B|\(J|\(H|\(I|\$@|\$B|\$\(B|&@))")
_ESCAPE_MODES = {
    b"\x1b(B": "ascii",
    b"\x1b(J": "ascii",
    b"\x1b(H": "ascii",
    b"\x1b(I": "kana",
    b"\x1b$@": "jis",
    b"\x1b$B": "jis",
    b"\x1b$(B": "jis",
}


def _decode_cp50220(data: bytes) -> str:
    """ISO-2022-JP read as Microsoft's cp50220: each JIS pair becomes its Shift_JIS pair, decoded as cp932.

    JIS X 0208 maps onto Shift_JIS arithmetically, and cp932 adds the NEC row 13 and IBM
    rows 89-92 that Outlook and Japanese phones send inside "ISO-2022-JP"; half-width
    katakana (ESC ( I or SO/SI) become single bytes 0xA1-0xDF.
    """
    out = bytearray()
    mode = "ascii"
    for chunk in _ISO2022JP_ESCAPE.split(data):
        if chunk in _ESCAPE_MODES:
            mode = _ESCAPE_MODES[chunk]
            continue
        if chunk == b"\x1b&@":  # JIS X 0208-1990 announcer; the designation follows
            continue
        index = 0
        while index < len(chunk):
            byte = chunk[index]
            if byte in (0x0A, 0x0D):
                out.append(byte)
                index += 1
            elif byte == 0x0E or byte == 0x0F:  # SO / SI: half-width katakana in and out
                mode = "kana" if byte == 0x0E else "ascii"
                index += 1
            elif mode == "jis":
                if index + 1 >= len(chunk):
                    raise UnicodeDecodeError(CP50220, data, index, index + 1, "truncated JIS pair")
                out += _jis_to_shift_jis(byte, chunk[index + 1], data)
                index += 2
            elif mode == "kana":
                if not 0x21 <= byte <= 0x5F:
                    raise UnicodeDecodeError(CP50220, data, index, index + 1, "not a katakana byte")
                out.append(byte + 0x80)
                index += 1
            else:
                if byte > 0x7F or byte == 0x1B:
                    raise UnicodeDecodeError(CP50220, data, index, index + 1, "8-bit byte in ISO-2022-JP")
                out.append(byte)
                index += 1
    return out.decode("cp932")


def _jis_to_shift_jis(first: int, second: int, data: bytes) -> bytes:
    if not (0x21 <= first <= 0x7E and 0x21 <= second <= 0x7E):
        raise UnicodeDecodeError(CP50220, data, 0, 1, "not a JIS X 0208 pair")
    # JIS X 0208 rows pair up into one Shift_JIS lead byte; odd rows take the low trail half.
    low = second + 0x1F + (second >= 0x60) if first % 2 else second + 0x7E
    high = (first + 1) // 2 + 0x70
    if high >= 0xA0:
        high += 0x40
    return bytes((high, low))


# RFC 2152: "+" starts a modified-base64 run of UTF-16, "-" (optional) ends it. At least three
# base64 characters are needed for one UTF-16 unit; "+-" is a literal plus.
_UTF7_RUN = re.compile(r"\+[A-Za-z0-9+/]{3,}-?")


def decode_utf7_runs(text: str) -> str:
    """Decode the UTF-7 runs in ASCII text that is known to be UTF-7 (for example a header of a UTF-7 mail).

    Runs that do not decode to printable non-ASCII text stay as they are, so "C++" and
    "a+b@example.com" survive.
    """
    if "+" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        try:
            decoded = match.group().encode("ascii").decode("utf-7")
        except UnicodeError:
            return match.group()
        if decoded.isascii() or not decoded.isprintable():
            return match.group()
        return decoded

    return _UTF7_RUN.sub(one, text)
