"""Keyset pagination of conversation lists in three orders, with an opaque cursor; never OFFSET (DESIGN.md §11).

Orders (`Sort`), each ending in the id so that every row has one place:
    newest    last_message_at DESC, id DESC
    waiting   waiting_since ASC NULLS LAST, id ASC   (oldest waiting first; not waiting at the end)
    priority  priority_rank ASC, last_message_at DESC, id DESC
    due       sla_due_at ASC NULLS LAST, id ASC          (the nearest SLA deadline first; none at the end)

A cursor is URL-safe base64 (no padding) of the last row's sort key and id, e.g. "<ISO 8601>|<id>" for
newest (the original format, kept for API clients), "waiting|<ISO 8601 or empty>|<id>",
"priority|<rank>|<ISO 8601>|<id>" and "due|<ISO 8601 or empty>|<id>". The next page holds the rows strictly
after it in the list order.
Rows that change between pages can move, but a page walk of an unchanged list shows every row exactly once.

Each page is one range scan of an index ending in the sort key and the id: the conditions are written
as "key <= x AND (key < x OR id < y)" (which a planner turns into an index range), and the sort's
natural breaks (nulls after dates, one priority after the next) are separate queries, run only when
a page crosses them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext as _

from postdesk.desk.errors import BadRequest
from postdesk.desk.models import Conversation

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
LIST_ORDER = ("-last_message_at", "-id")


class Sort(StrEnum):
    NEWEST = "newest"
    WAITING = "waiting"
    PRIORITY = "priority"
    DUE = "due"


# Orders by a date that may be missing, ascending, the rows without one last; their cursors name the order.
_NULLS_LAST = frozenset({Sort.WAITING, Sort.DUE})


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page ended: its last row's sort key and id."""

    # last_message_at (newest, priority), waiting_since (waiting) or sla_due_at (due); None: not waiting / no deadline
    when: datetime | None
    id: int
    rank: int = 0  # priority_rank, for the priority order


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Conversation]
    next_cursor: str | None  # None on the last page


def parse_sort(raw: str | None) -> Sort:
    """The order from `?sort=`; newest when absent, a `BadRequest` naming the valid ones when unknown."""
    if not raw:
        return Sort.NEWEST
    try:
        return Sort(raw.strip().lower())
    except ValueError:
        raise BadRequest(
            _("Unknown sort order %(sort)r; use one of: %(valid)s.")
            % {"sort": raw[:50], "valid": ", ".join(s.value for s in Sort)},
            code="bad_sort",
        ) from None


def encode_cursor(cursor: Cursor, sort: Sort = Sort.NEWEST) -> str:
    when = cursor.when.isoformat() if cursor.when is not None else ""
    if sort in _NULLS_LAST:
        text = f"{sort.value}|{when}|{cursor.id}"
    elif sort == Sort.PRIORITY:
        text = f"priority|{cursor.rank}|{when}|{cursor.id}"
    else:
        text = f"{when}|{cursor.id}"
    return base64.urlsafe_b64encode(text.encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(raw: str, sort: Sort = Sort.NEWEST) -> Cursor:
    """The position a cursor names in `sort` order; anything we did not hand out for that order is a `BadRequest`."""
    problem = BadRequest(
        _("The cursor is not valid; use the next_cursor value of a previous page, unchanged."), code="bad_cursor"
    )
    try:
        padded = raw.strip() + "=" * (-len(raw.strip()) % 4)
        parts = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii").split("|")
        rank = 0
        if sort in _NULLS_LAST:
            label, when_text, id_text = parts
            if label != sort.value:
                raise ValueError(label)
        elif sort == Sort.PRIORITY:
            label, rank_text, when_text, id_text = parts
            if label != "priority":
                raise ValueError(label)
            rank = int(rank_text)
        else:
            when_text, id_text = parts
        when = datetime.fromisoformat(when_text) if when_text or sort not in _NULLS_LAST else None
        row_id = int(id_text)
    except (ValueError, UnicodeError, binascii.Error):
        raise problem from None
    if (when is not None and when.tzinfo is None) or row_id < 1 or rank < 0:
        raise problem
    return Cursor(when, row_id, rank)


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


def _newest_after(rows: QuerySet[Conversation], after: Cursor | None) -> list[QuerySet[Conversation]]:
    if after is None:
        return [rows.order_by(*LIST_ORDER)]
    when = after.when
    return [
        rows.filter(Q(last_message_at__lt=when) | Q(id__lt=after.id), last_message_at__lte=when).order_by(*LIST_ORDER)
    ]


def _ascending_nulls_last_after(
    rows: QuerySet[Conversation], after: Cursor | None, key: str
) -> list[QuerySet[Conversation]]:
    """`key` ASC then id ASC, rows without a `key` at the end (by id): two index range scans."""
    without = rows.filter(**{f"{key}__isnull": True}).order_by("id")
    if after is not None and after.when is None:
        return [without.filter(id__gt=after.id)]
    having = rows.filter(**{f"{key}__isnull": False}).order_by(F(key).asc(), "id")
    if after is not None:
        having = having.filter(Q(**{f"{key}__gt": after.when}) | Q(id__gt=after.id), **{f"{key}__gte": after.when})
    return [having, without]


def _priority_after(rows: QuerySet[Conversation], after: Cursor | None) -> list[QuerySet[Conversation]]:
    if after is None:
        return [rows.order_by("priority_rank", *LIST_ORDER)]
    when = after.when
    same_rank = rows.filter(
        Q(last_message_at__lt=when) | Q(id__lt=after.id), priority_rank=after.rank, last_message_at__lte=when
    ).order_by(*LIST_ORDER)
    return [same_rank, rows.filter(priority_rank__gt=after.rank).order_by("priority_rank", *LIST_ORDER)]


def _position(row: Conversation, sort: Sort) -> Cursor:
    if sort == Sort.WAITING:
        return Cursor(row.waiting_since, row.pk)
    if sort == Sort.DUE:
        return Cursor(row.sla_due_at, row.pk)
    return Cursor(row.last_message_at, row.pk, row.priority_rank if sort == Sort.PRIORITY else 0)


def keyset_page(rows: QuerySet[Conversation], *, cursor: str | None, limit: int, sort: Sort = Sort.NEWEST) -> Page:
    """One page of `rows` in `sort` order, starting after `cursor` (the first page when None or empty)."""
    after = decode_cursor(cursor, sort) if cursor else None
    if sort == Sort.WAITING:
        parts = _ascending_nulls_last_after(rows, after, "waiting_since")
    elif sort == Sort.DUE:
        parts = _ascending_nulls_last_after(rows, after, "sla_due_at")
    elif sort == Sort.PRIORITY:
        parts = _priority_after(rows, after)
    else:
        parts = _newest_after(rows, after)
    # One extra row tells whether another page exists without counting.
    found: list[Conversation] = []
    for part in parts:
        found += part[: limit + 1 - len(found)]
        if len(found) > limit:
            break
    if len(found) <= limit:
        return Page(found, None)
    return Page(found[:limit], encode_cursor(_position(found[limit - 1], sort), sort))
