"""Uuencoded files inside plain text (``begin 644 name`` … ``end``), as old gateways and Lotus Notes send them."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

# POSIX uuencode: "begin <octal mode> <name>", encoded lines, a line holding only "`" or a
# space (length zero), then "end". Some encoders leave out the zero-length line.
_BEGIN = re.compile(r"^begin(?:-base64)? +([0-7]{3,4}) +(\S[^\r\n]*?)[ \t]*\r?$", re.MULTILINE)
_END = re.compile(r"^end[ \t]*\r?$", re.MULTILINE)
_UU_LINE = re.compile(r"[\x20-\x60]+")


@dataclass(frozen=True, slots=True)
class UuencodedFile:
    filename: str
    content: bytes


@dataclass(frozen=True, slots=True)
class UuSplit:
    text: str  # the text with the encoded blocks taken out
    files: tuple[UuencodedFile, ...]
    broken: tuple[str, ...]  # names of blocks that looked uuencoded but did not decode (left in the text)


def split_uuencoded(text: str) -> UuSplit:
    """Take the uuencoded files out of `text`; text without a ``begin`` line comes back unchanged, cheaply."""
    if "begin " not in text and "begin-" not in text:
        return UuSplit(text, (), ())
    kept: list[str] = []
    files: list[UuencodedFile] = []
    broken: list[str] = []
    position = 0
    while True:
        begin = _BEGIN.search(text, position)
        if begin is None:
            break
        end = _END.search(text, begin.end())
        if end is None:
            break
        name = begin.group(2).strip().strip('"')
        body = text[begin.end() : end.start()]
        data = _decode_block(body) if "begin-base64" not in begin.group(0) else _decode_base64_block(body)
        if data is None:
            broken.append(name)
            kept.append(text[position : end.end()])
        else:
            kept.append(text[position : begin.start()])
            files.append(UuencodedFile(name, data))
        position = end.end()
    kept.append(text[position:])
    return UuSplit("".join(kept), tuple(files), tuple(broken))


def _decode_block(body: str) -> bytes | None:
    out = bytearray()
    for raw_line in body.splitlines():
        line = raw_line.rstrip("\r")
        if not line.strip():
            continue
        if not _UU_LINE.fullmatch(line):
            return None  # lower-case letters or 8-bit text: prose, not uuencode
        count = (ord(line[0]) - 32) & 63
        if count == 0:
            continue
        # The first character announces the byte count. Mail systems strip trailing spaces
        # (zero bits in old encoders) and some encoders add padding: decode exactly the
        # announced length, padded with spaces (the workaround the removed `uu` module used).
        wanted = (count * 4 + 5) // 3
        if len(line) > wanted + 2:
            return None
        try:
            out += binascii.a2b_uu(line[:wanted].ljust(wanted))[:count]
        except binascii.Error:
            return None
    return bytes(out)


def _decode_base64_block(body: str) -> bytes | None:
    lines = [line.strip() for line in body.splitlines() if line.strip() and line.strip() != "===="]
    try:
        return binascii.a2b_base64("".join(lines))
    except binascii.Error:
        return None
