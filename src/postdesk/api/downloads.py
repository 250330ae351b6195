"""Serving raw mail and attachments safely: always as a download, never sniffed, never as active content.

Used by the API and, through its links, by the agent pages. A file from a customer is hostile: it
is never sent as text/html or image/svg+xml, its name loses any path, control and bidi characters
and quotes, and it travels as `Content-Disposition: attachment` with an RFC 6266 `filename*`.
"""

from __future__ import annotations

import logging
import unicodedata
from pathlib import PurePosixPath
from urllib.parse import quote

from django.http import FileResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status

from postdesk.desk.blobs import default_store
from postdesk.desk.errors import NotFound
from postdesk.desk.models import Attachment, Message

log = logging.getLogger(__name__)

# Types a browser shows without running anything; everything else is served as opaque bytes.
# SVG is deliberately absent: it is a document that can carry script.
SAFE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
OPAQUE_TYPE = "application/octet-stream"
MAX_FILENAME_LENGTH = 180
FALLBACK_NAME = "attachment"


class StoredFileMissing(exceptions.APIException):
    """Our fault: the database names a file the blob store does not have."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_code = "file_missing"
    default_detail = "The stored file is missing; the administrator has been told in the log."


def served_content_type(declared: str) -> str:
    """The Content-Type we send for a file that declared `declared`."""
    kind = declared.split(";", 1)[0].strip().lower()
    return kind if kind in SAFE_TYPES else OPAQUE_TYPE


def safe_filename(name: str) -> str:
    """`name` without any path, control, format (bidi override) or quote characters, of bounded length."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        " " if ch.isspace() else ch
        for ch in base
        if unicodedata.category(ch)[0] not in {"C"} and ch not in {'"', "'", "`"}
    )
    # Leading dots would make a hidden file; surrounding spaces and dots confuse some systems.
    cleaned = " ".join(cleaned.split()).strip(" .")
    if len(cleaned) > MAX_FILENAME_LENGTH:
        suffix = PurePosixPath(cleaned).suffix[:20]
        cleaned = cleaned[: MAX_FILENAME_LENGTH - len(suffix)].rstrip(" .") + suffix
    return cleaned or FALLBACK_NAME


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII `filename` for old clients and the exact UTF-8 `filename*` (RFC 6266 §4.3)."""
    clean = safe_filename(name)
    ascii_name = unicodedata.normalize("NFKD", clean).encode("ascii", "ignore").decode("ascii")
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '\\";' else "_" for ch in ascii_name).strip()
    if not ascii_name.strip("_ ."):
        ascii_name = FALLBACK_NAME + PurePosixPath(ascii_name).suffix
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(clean, safe='')}"


def _file_response(sha256: str, content_type: str, filename: str) -> FileResponse:
    path = default_store().path_for(sha256)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        log.error("blob %s is missing from %s", sha256, default_store().root)
        raise StoredFileMissing() from None
    response = FileResponse(handle, content_type=content_type)
    # FileResponse guessed a disposition from the blob's name; ours replaces it.
    response["Content-Disposition"] = content_disposition(filename)
    response["X-Content-Type-Options"] = "nosniff"
    # Even if opened in a tab, the file may run nothing and load nothing.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


def raw_mail_response(message: Message) -> FileResponse:
    """The original bytes of an inbound mail as `message-<id>.eml`; `NotFound` for replies and notes."""
    if message.received_mail is None:
        raise NotFound(
            _("Message %(id)s has no raw mail: only received mail keeps its original bytes.") % {"id": message.pk},
            code="no_raw_mail",
        )
    return _file_response(message.received_mail.raw_sha256, "message/rfc822", f"message-{message.pk}.eml")


def attachment_response(attachment: Attachment) -> FileResponse:
    return _file_response(attachment.sha256, served_content_type(attachment.content_type), attachment.filename)
