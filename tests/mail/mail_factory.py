"""Builders for test mails: raw RFC 5322 bytes assembled in code, so each test shows its quirk."""

from __future__ import annotations

import base64

from corpora_path import CORPORA

__all__ = ["CORPORA", "make_mail", "multipart", "part"]


def make_mail(
    body: bytes | str = "Hello\n",
    *,
    subject: str | bytes = "Test",
    sender: str = "Alice <alice@example.com>",
    to: str = "support@example.com",
    content_type: str = "text/plain; charset=utf-8",
    extra: tuple[tuple[str, str | bytes], ...] = (),
    message_id: str | None = "<m1@example.com>",
    date: str | None = "Mon, 01 Jan 2024 10:00:00 +0200",
    cte: str | None = None,
) -> bytes:
    """One complete mail; pass bytes for raw 8-bit header values or bodies."""
    headers: list[tuple[str, str | bytes]] = [("From", sender), ("To", to), ("Subject", subject)]
    if date is not None:
        headers.append(("Date", date))
    if message_id is not None:
        headers.append(("Message-ID", message_id))
    headers.append(("MIME-Version", "1.0"))
    headers.append(("Content-Type", content_type))
    if cte is not None:
        headers.append(("Content-Transfer-Encoding", cte))
    headers.extend(extra)
    out = b""
    for name, value in headers:
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        out += name.encode() + b": " + raw + b"\r\n"
    body_bytes = body if isinstance(body, bytes) else body.encode("utf-8")
    return out + b"\r\n" + body_bytes


def multipart(subtype: str, *parts: bytes, boundary: str = "BOUNDARY") -> tuple[str, bytes]:
    """(content type, body) of a multipart made of complete part byte strings (headers + body)."""
    body = b""
    for part in parts:
        body += b"--" + boundary.encode() + b"\r\n" + part + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    return f'multipart/{subtype}; boundary="{boundary}"', body


def part(content_type: str, body: bytes | str, *headers: str, b64: bool = False) -> bytes:
    """One MIME part; `b64` base64-encodes the body."""
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    lines = [f"Content-Type: {content_type}", *headers]
    if b64:
        lines.append("Content-Transfer-Encoding: base64")
        data = base64.encodebytes(data)
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + data
