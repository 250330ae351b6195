"""Business calendars from the database as `sla.BusinessCalendar` values, cached per process while unchanged.

Every SLA computation needs the calendar of a conversation (the policy's, else the mailbox's, else the team's,
else 24x7). Reading the calendar and its holidays for each one would cost two queries per conversation in a sweep,
so parsed calendars are kept per process, keyed by id and checked against a change marker read with one cheap
query (time zone, weekly hours, and the count, highest id and date range of the holidays). An edit that moves one
holiday inside the range keeps the marker; `MAX_AGE` bounds how long another process may use the old dates.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from django.db.models import Count, Max, Min

from postdesk.desk.models import BusinessCalendar as CalendarRow
from postdesk.desk.models import Conversation, Holiday
from postdesk.sla.business_hours import ALWAYS_OPEN, BusinessCalendar
from postdesk.sla.errors import CalendarError

log = logging.getLogger(__name__)

# Seconds a parsed calendar is trusted without its holidays being read again.
MAX_AGE = 300.0
_MAX_ENTRIES = 256


@dataclass(frozen=True, slots=True)
class _Entry:
    marker: tuple[object, ...]
    calendar: BusinessCalendar
    loaded_at: float


_cache: dict[int, _Entry] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every parsed calendar (tests; the admin after a save in this process)."""
    with _lock:
        _cache.clear()


def calendar_by_id(calendar_id: int | None) -> BusinessCalendar:
    """The calendar with this id; 24x7 (UTC) for None, a deleted calendar, or one that cannot be used.

    A calendar the admin could not have saved (bad JSON written some other way) must not stop mail: it is logged
    and counted as always open, which errs on the side of early deadlines rather than none.
    """
    if calendar_id is None:
        return ALWAYS_OPEN
    row = (
        CalendarRow.objects.filter(pk=calendar_id)
        .annotate(holiday_count=Count("holidays"), last_id=Max("holidays__id"))
        .annotate(first_day=Min("holidays__date"), last_day=Max("holidays__date"))
        .values("time_zone", "weekly_hours", "holiday_count", "last_id", "first_day", "last_day")
        .first()
    )
    if row is None:
        return ALWAYS_OPEN
    marker = (
        row["time_zone"],
        json.dumps(row["weekly_hours"], sort_keys=True),
        row["holiday_count"],
        row["last_id"],
        row["first_day"],
        row["last_day"],
    )
    now = time.monotonic()
    with _lock:
        entry = _cache.get(calendar_id)
    if entry is not None and entry.marker == marker and now - entry.loaded_at < MAX_AGE:
        return entry.calendar
    holidays = Holiday.objects.filter(calendar_id=calendar_id).values_list("date", flat=True)
    try:
        calendar = BusinessCalendar.from_hours(row["time_zone"], row["weekly_hours"] or {}, holidays)
    except (CalendarError, AttributeError, TypeError) as error:
        log.warning("business calendar %s cannot be used (%s); counting it as always open", calendar_id, error)
        calendar = ALWAYS_OPEN
    with _lock:
        if len(_cache) >= _MAX_ENTRIES:
            _cache.clear()
        _cache[calendar_id] = _Entry(marker, calendar, now)
    return calendar


def calendar_id_for(conversation: Conversation, policy_calendar_id: int | None) -> int | None:
    """Which calendar counts for `conversation`: the policy's, else the mailbox's, else the team's (None = 24x7)."""
    if policy_calendar_id is not None:
        return policy_calendar_id
    mailbox = conversation.mailbox
    if mailbox.calendar_id is not None:
        return mailbox.calendar_id
    team = conversation.team if conversation.team_id is not None else mailbox.team
    return team.calendar_id if team is not None else None


def calendar_for(conversation: Conversation, policy_calendar_id: int | None) -> BusinessCalendar:
    """The business calendar that counts for `conversation`: SLA clocks, and rules' in_business_hours."""
    return calendar_by_id(calendar_id_for(conversation, policy_calendar_id))
