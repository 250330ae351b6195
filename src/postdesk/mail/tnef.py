"""The files and bodies inside an Outlook winmail.dat (TNEF, MS-OXTNEF), read with tnefparse but with exact bytes.

tnefparse reads attachment data stored as a MAPI property (PR_ATTACH_DATA_OBJ, used for
OLE objects and by some Outlook versions for every file) with its 4-byte padding and then
strips every trailing NUL byte, which corrupts Word documents and OLE storages (they end in
zero-filled sectors; mimekit-tnef MAPI_ATTACH_DATA_OBJ and MAPI_OBJECT). We take the value
again from the raw attribute, cut to the length the stream declares.
"""

from __future__ import annotations

import mimetypes
import struct
from dataclasses import dataclass

from tnefparse import TNEF

_ATT_ATTACH_REND_DATA = 0x9002  # starts a new attachment (tnefparse counts attachments by it)
_ATT_ATTACHMENT = 0x9005  # the attachment's MAPI properties
_ATT_ATTACH_DATA = 0x800F  # the attachment's bytes as a TNEF attribute
_LEVEL_ATTACHMENT = 0x02
_ATT_MAPI_PROPS = 0x9003  # the message's MAPI properties
_LEVEL_MESSAGE = 0x01
_PR_RTF_COMPRESSED = 0x1009
_PR_ATTACH_DATA_OBJ = 0x3701
_PR_ATTACH_METHOD = 0x3705
_ATTACH_EMBEDDED_MSG = 5
_PT_OBJECT = 0x000D
# MS-OXTNEF §2.1.3.4.1: an embedded message's PR_ATTACH_DATA_OBJ starts with IID_IMessage.
_IID_IMESSAGE = bytes.fromhex("0703020000000000c000000000000046")

_VARIABLE_TYPES = {0x001E, 0x001F, _PT_OBJECT, 0x0102}
# Fixed-size MAPI types and their size on the wire (16-bit values are padded to 4 bytes).
_FIXED_SIZES = {
    0x0001: 4,
    0x0002: 4,
    0x0003: 4,
    0x0004: 4,
    0x0005: 8,
    0x0006: 8,
    0x0007: 8,
    0x000A: 4,
    0x000B: 4,
    0x0014: 8,
    0x0040: 8,
    0x0048: 16,
}


class TnefError(ValueError):
    """The stream is not TNEF or is too broken to read."""


@dataclass(frozen=True, slots=True)
class TnefFile:
    filename: str
    content_type: str
    content: bytes
    embedded_message: bool = False  # an Outlook item (mail, task, appointment) kept as its own TNEF stream


@dataclass(frozen=True, slots=True)
class TnefContent:
    files: tuple[TnefFile, ...]
    text: str | None  # PR_BODY, decoded
    html: str | bytes | None  # PR_BODY_HTML; bytes when no code page said how to decode it
    rtf: bytes | None  # PR_RTF_COMPRESSED, decompressed (None when absent or broken)


def unpack(data: bytes) -> TnefContent:
    """Read a TNEF stream; raises `TnefError` when it cannot."""
    try:
        tnef = TNEF(data, do_checksum=False)
    except Exception as exc:  # tnefparse raises many kinds of errors on broken streams
        raise TnefError(f"{type(exc).__name__}: {exc}") from exc
    exact = _exact_attachment_data(tnef)
    files: list[TnefFile] = []
    for index, item in enumerate(tnef.attachments):
        try:
            name = item.long_filename() or item.name
        except Exception:  # tnefparse decodes 8-bit short names as UTF-8 and may fail
            name = ""
        if isinstance(name, bytes):
            name = name.decode("cp1252", "replace")
        name = str(name).strip("\x00").strip() or f"Untitled Attachment {index + 1}"
        payload = exact.get(index)
        if payload is None:
            payload = item.data if isinstance(item.data, bytes) else b""
        embedded = payload.startswith(_IID_IMESSAGE)
        if embedded:
            payload = payload[len(_IID_IMESSAGE) :]
        guessed = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
        files.append(TnefFile(name, "application/ms-tnef" if embedded else guessed, payload, embedded))
    body = tnef.body
    text = body if isinstance(body, str) or body is None else body.decode("cp1252", "replace")
    return TnefContent(
        files=tuple(files),
        text=text.rstrip("\x00") if text else None,
        html=tnef.htmlbody or None,
        rtf=_rtf_body(_exact_message_property(tnef, _PR_RTF_COMPRESSED) or getattr(tnef, "_rtfbody", None)),
    )


def _rtf_body(compressed: object) -> bytes | None:
    if not isinstance(compressed, bytes) or not compressed:
        return None
    try:
        return decompress_rtf(compressed)
    except TnefError:
        return None


# MS-OXRTFCP §3.1.3.1: the dictionary starts out holding these 207 bytes.
_RTF_PREBUFFER = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript "
    b"\\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par "
    b"\\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
_LZFU = 0x75465A4C
_MELA = 0x414C454D


def decompress_rtf(data: bytes) -> bytes:
    """Outlook's compressed RTF (MS-OXRTFCP, "LZFu"): a 4 KiB sliding dictionary; raises `TnefError`."""
    if len(data) < 16:
        raise TnefError("compressed RTF shorter than its header")
    compressed_size, raw_size, kind, _crc = struct.unpack_from("<IIII", data, 0)
    body = data[16 : 4 + compressed_size]
    if kind == _MELA:
        return body[:raw_size]
    if kind != _LZFU:
        raise TnefError(f"unknown compressed RTF type {kind:#x}")
    dictionary = bytearray(4096)
    dictionary[: len(_RTF_PREBUFFER)] = _RTF_PREBUFFER
    write = len(_RTF_PREBUFFER)
    out = bytearray()
    position = 0
    while position < len(body):
        control = body[position]
        position += 1
        for bit in range(8):
            if position >= len(body):
                break
            if not control & (1 << bit):
                byte = body[position]
                position += 1
                out.append(byte)
                dictionary[write] = byte
                write = (write + 1) % 4096
                continue
            if position + 1 >= len(body):
                break  # cut inside the end marker: everything before it is there
            reference = (body[position] << 8) | body[position + 1]
            position += 2
            offset, length = reference >> 4, (reference & 0x0F) + 2
            if offset == write:
                return bytes(out[:raw_size])
            for step in range(length):
                byte = dictionary[(offset + step) % 4096]
                out.append(byte)
                dictionary[write] = byte
                write = (write + 1) % 4096
    return bytes(out[:raw_size])


def _exact_attachment_data(tnef: TNEF) -> dict[int, bytes]:
    """Attachment index -> exact bytes, taken from the raw attributes in the order tnefparse applies them."""
    found: dict[int, bytes] = {}
    index = -1
    for obj in tnef.objects:
        if obj.name == _ATT_ATTACH_REND_DATA:
            index += 1
        if obj.level != _LEVEL_ATTACHMENT or index < 0:
            continue
        if obj.name == _ATT_ATTACH_DATA:
            found[index] = bytes(obj.data)
        elif obj.name == _ATT_ATTACHMENT:
            value = _property_value(bytes(obj.data), _PR_ATTACH_DATA_OBJ)
            if value is not None:
                found[index] = value
    return found


def _exact_message_property(tnef: TNEF, wanted: int) -> bytes | None:
    """A message-level variable-size MAPI property, exact (tnefparse strips trailing NULs from it too)."""
    for obj in tnef.objects:
        if obj.level == _LEVEL_MESSAGE and obj.name == _ATT_MAPI_PROPS:
            value = _property_value(bytes(obj.data), wanted)
            if value is not None:
                return value
    return None


def _property_value(data: bytes, wanted: int) -> bytes | None:
    """The exact bytes of the first variable-size MAPI property `wanted` in a property list (MS-OXTNEF §2.1.3.4)."""
    try:
        (count,) = struct.unpack_from("<I", data, 0)
        offset = 4
        for _ in range(count):
            prop_type, prop_id = struct.unpack_from("<HH", data, offset)
            offset += 4
            if prop_id >= 0x8000:  # named property: GUID, then a numeric id or a UTF-16 name
                offset += 16
                (kind,) = struct.unpack_from("<I", data, offset)
                offset += 4
                if kind == 0:
                    offset += 4
                else:
                    (name_length,) = struct.unpack_from("<I", data, offset)
                    offset += 4 + _padded(name_length)
            multi = bool(prop_type & 0x1000)
            base_type = prop_type & 0x0FFF
            if base_type in _VARIABLE_TYPES:
                (values,) = struct.unpack_from("<I", data, offset)
                offset += 4
                for value_index in range(values):
                    (length,) = struct.unpack_from("<I", data, offset)
                    offset += 4
                    if prop_id == wanted and value_index == 0:
                        if offset + length > len(data):
                            return None
                        return data[offset : offset + length]
                    offset += _padded(length)
            elif base_type in _FIXED_SIZES:
                values = 1
                if multi:
                    (values,) = struct.unpack_from("<I", data, offset)
                    offset += 4
                offset += _FIXED_SIZES[base_type] * values
            else:
                return None  # an unknown type: its size is unknown, so nothing after it can be read
    except struct.error:
        return None
    return None


def _padded(length: int) -> int:
    return length + (-length % 4)
