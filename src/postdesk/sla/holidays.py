"""Holidays from an iCalendar (RFC 5545) feed, such as a public-holiday calendar, for a business calendar.

Every VEVENT that is not cancelled closes each local date it touches: all-day events from DTSTART up to the
exclusive DTEND (one day without DTEND), timed events on their local dates (in `time_zone` when given, else as
written). RRULE (yearly, monthly, weekly, daily), RDATE and EXDATE are expanded within [start, end].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr  # type: ignore[import-untyped]
from icalendar import Calendar, Event, vRecur

from postdesk.sla.business_hours import zone_named
from postdesk.sla.errors import CalendarError

# Holidays recur by the day at most; anything finer would only be a way to make the import spin.
_FREQUENCIES = {"YEARLY", "MONTHLY", "WEEKLY", "DAILY"}
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Holiday:
    """A local date on which the business calendar is closed, with the feed's name for it."""

    date: date
    name: str


def holidays_from_ical(data: bytes, *, start: date, end: date, time_zone: str | None = None) -> list[Holiday]:
    """The holidays of an iCal feed from `start` to `end` (both included), one per date, in date order.

    When two events fall on one date, the first in the feed names it. Raises `CalendarError` for data that is not
    iCalendar or an event that cannot be read, naming the event.
    """
    if end < start:
        raise CalendarError(f"the import range ends ({end}) before it starts ({start})")
    zone = None if time_zone is None else zone_named(time_zone)
    try:
        calendar = Calendar.from_ical(data)
    except ValueError as error:
        raise CalendarError(f"not an iCalendar file: {error}") from None
    if not isinstance(calendar, Calendar):
        raise CalendarError("not an iCalendar file: it holds no VCALENDAR")
    found: dict[date, str] = {}
    for event in calendar.walk("VEVENT"):
        if not isinstance(event, Event) or str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        name = str(event.get("SUMMARY", "")).strip()
        try:
            days = list(_event_dates(event, start, end, zone))
        except (ValueError, TypeError, KeyError) as error:
            # icalendar's InvalidCalendar and IncompleteComponent are ValueErrors; dateutil raises ValueError too.
            raise CalendarError(f"event {name or str(event.get('UID', '?'))!r}: {error}") from None
        for day in days:
            found.setdefault(day, name)
    return [Holiday(day, found[day]) for day in sorted(found)]


def _event_dates(event: Event, start: date, end: date, zone: ZoneInfo | None) -> Iterator[date]:
    first = event.start
    last = event.end
    all_day = not isinstance(first, datetime)
    if all_day != (not isinstance(last, datetime)):
        raise ValueError("DTSTART and DTEND must both be dates or both be date-times")
    length = _as_datetime(last) - _as_datetime(first)
    if length < timedelta(0):
        raise ValueError("DTEND is before DTSTART")
    for occurrence in _occurrences(event, first, start, end, length):
        yield from _dates_touched(occurrence, occurrence + length, all_day, zone, start, end)


def _as_datetime(value: date) -> datetime:
    if isinstance(value, datetime):
        return value
    # An all-day event is a floating local date: naive on purpose.
    return datetime.combine(value, time())


def _occurrences(event: Event, first: date, start: date, end: date, length: timedelta) -> Iterator[datetime]:
    """Start times of the event's occurrences that may touch [start, end]."""
    dtstart = _as_datetime(first)
    excluded = {_as_datetime(value) for value in event.exdates}
    starts = {dtstart}
    # RDATE values are dates, date-times or periods (start, end); only the start matters here.
    starts.update(_as_datetime(value) for value, _ in event.rdates)
    # Occurrences that began before `start` can still run into it; a day of slack covers any time-zone shift.
    # Naive like a floating or all-day event, given the event's zone otherwise, so the two compare.
    window_from = datetime.combine(start, time()) - length - _ONE_DAY
    window_to = datetime.combine(end, time()) + 2 * _ONE_DAY
    if dtstart.tzinfo is not None:
        window_from = window_from.replace(tzinfo=dtstart.tzinfo)
        window_to = window_to.replace(tzinfo=dtstart.tzinfo)
    for rule in event.rrules:
        frequency = rule.get("FREQ", ["?"])[0]
        if str(frequency).upper() not in _FREQUENCIES:
            raise ValueError(f"a holiday cannot repeat {str(frequency).lower()}; use yearly, monthly, weekly or daily")
        starts.update(_expand(rule, dtstart, window_from, window_to))
    for occurrence in sorted(starts, key=_sort_key):
        if occurrence not in excluded and window_from <= occurrence <= window_to:
            yield occurrence


def _sort_key(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _expand(rule: vRecur, dtstart: datetime, window_from: datetime, window_to: datetime) -> list[datetime]:
    rule = rule.copy()
    until = rule.get("UNTIL")
    if until:
        # dateutil refuses an UNTIL whose kind (floating or UTC) differs from DTSTART's; feeds mix them freely.
        limit = _as_datetime(until[0])
        if dtstart.tzinfo is None and limit.tzinfo is not None:
            limit = limit.astimezone(UTC).replace(tzinfo=None)
        elif dtstart.tzinfo is not None and limit.tzinfo is None:
            limit = limit.replace(tzinfo=dtstart.tzinfo)
        rule["UNTIL"] = [limit]
    text = rule.to_ical().decode()  # type: ignore[no-untyped-call]
    expanded: list[datetime] = rrulestr(text, dtstart=dtstart).between(window_from, window_to, inc=True)
    return expanded


def _dates_touched(
    begin: datetime, finish: datetime, all_day: bool, zone: ZoneInfo | None, start: date, end: date
) -> Iterator[date]:
    """Local dates within [start, end] that [begin, finish) touches; an instant event touches its own date."""
    if zone is not None and begin.tzinfo is not None:
        begin, finish = begin.astimezone(zone), finish.astimezone(zone)
    first = begin.date()
    if all_day:
        last = finish.date() - _ONE_DAY if finish > begin else first
    else:
        # An event ending exactly at midnight does not touch the next day.
        last = (finish - timedelta(microseconds=1)).date() if finish > begin else first
    day = max(first, start)
    while day <= min(last, end):
        yield day
        day += _ONE_DAY
