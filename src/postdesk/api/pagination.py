"""Keyset pagination of conversation lists by (last_message_at DESC, id DESC) with an opaque cursor; never OFFSET.

A cursor is URL-safe base64 (no padding) of "<last_message_at ISO 8601>|<id>" of the last row of the
previous page; the next page holds the rows strictly after it in the list order. Rows that change
between pages can move, but a page walk of an unchanged list shows every row exactly once.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from postdesk.desk.errors import BadRequest
from postdesk.desk.models import Conversation

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
LIST_ORDER = ("-last_message_at", "-id")


@dataclass(frozen=True, slots=True)
class Cursor:
    last_message_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Conversation]
    next_cursor: str | None  # None on the last page


def encode_cursor(cursor: Cursor) -> str:
    text = f"{cursor.last_message_at.isoformat()}|{cursor.id}"
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(raw: str) -> Cursor:
    """The position a cursor names; anything we did not hand out is a `BadRequest`."""
    problem = BadRequest(
        _("The cursor is not valid; use the next_cursor value of a previous page, unchanged."), code="bad_cursor"
    )
    try:
        padded = raw.strip() + "=" * (-len(raw.strip()) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        when_text, _sep, id_text = text.rpartition("|")
        when = datetime.fromisoformat(when_text)
        row_id = int(id_text)
    except (ValueError, UnicodeError, binascii.Error):
        raise problem from None
    if when.tzinfo is None or row_id < 1:
        raise problem
    return Cursor(when, row_id)


def parse_limit(raw: str | None) -> int:
    """The page size from `?limit=`: a whole number from 1 to MAX_LIMIT, DEFAULT_LIMIT when absent."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(
            _("limit must be a whole number from 1 to %(max)s, got %(raw)r.") % {"max": MAX_LIMIT, "raw": raw},
            code="bad_limit",
        )
    return limit


def keyset_page(rows: QuerySet[Conversation], *, cursor: str | None, limit: int) -> Page:
    """One page of `rows` in list order, starting after `cursor` (the first page when None or empty)."""
    ordered = rows.order_by(*LIST_ORDER)
    if cursor:
        after = decode_cursor(cursor)
        ordered = ordered.filter(
            Q(last_message_at__lt=after.last_message_at) | Q(last_message_at=after.last_message_at, id__lt=after.id)
        )
    # One extra row tells whether another page exists without counting.
    found = list(ordered[: limit + 1])
    if len(found) <= limit:
        return Page(found, None)
    last = found[limit - 1]
    return Page(found[:limit], encode_cursor(Cursor(last.last_message_at, last.pk)))
