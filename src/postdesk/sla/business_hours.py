"""Business calendars (weekly local opening hours, a time zone, holidays) and business-time arithmetic over them.

Business time is real elapsed time while the calendar is open. Opening hours are local wall-clock times, and an
opening or closing happens at the first moment the local clock shows that time:

- in a spring-forward gap (Europe/Berlin, last Sunday of March, 02:00 -> 03:00) a time the clock skips happens when
  the clock jumps, so 01:00-03:00 that night is open one real hour, and 09:00-17:00 is still eight hours;
- in a fall-back overlap (02:00-03:00 shown twice in October) a time is its first pass, so 01:00-04:00 that night is
  open four real hours, and an interval ending at 02:30 closes on the first pass of 02:30;
- a whole day (00:00-24:00) lasts 23 or 25 real hours on those dates, and a day's end is the next day's start, so
  a 24x7 calendar has no holes and no double counting.

A holiday is a local date on which the calendar is closed all day. All functions take timezone-aware datetimes and
return aware datetimes in UTC; they walk the calendar a local day at a time, so long spans stay cheap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from postdesk.sla.errors import CalendarError

__all__ = [
    "ALWAYS_OPEN",
    "DAY_KEYS",
    "WHOLE_DAY",
    "BusinessCalendar",
    "CalendarError",
    "OpenInterval",
    "WeeklyHours",
    "format_weekly_hours",
    "parse_weekly_hours",
    "zone_named",
]

# Monday first, as date.weekday() counts; these are the keys of the admin's JSON ({"mon": ["09:00-17:00"], ...}).
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_SECONDS = 86_400
_ONE_DAY = timedelta(days=1)
_INTERVAL_TEXT = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-\u2013\u2014]\s*(\d{1,2}):(\d{2})\s*$")


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def _seconds_of(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


@dataclass(frozen=True, slots=True)
class OpenInterval:
    """Open from `start` until `end` (local wall clock, end excluded) on one weekday; `end=None` means until 24:00."""

    start: time
    end: time | None = None

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if value is None:
                continue
            if value.tzinfo is not None:
                raise CalendarError(f"{value}: opening hours are local wall-clock times without a time zone")
            if value.microsecond:
                raise CalendarError(f"{value}: opening hours are whole seconds")
        if self.end is not None and self.end <= self.start:
            # Hours past midnight belong to the next day: "22:00-06:00" is 22:00-24:00 plus next day's 00:00-06:00.
            raise CalendarError(
                f"{_clock(self.start_second)}-{_clock(self.end_second)}: the end is not after the start "
                "(split hours past midnight over two days, and write 24:00 for midnight at the end)"
            )

    @property
    def start_second(self) -> int:
        return _seconds_of(self.start)

    @property
    def end_second(self) -> int:
        return _DAY_SECONDS if self.end is None else _seconds_of(self.end)

    def __str__(self) -> str:
        return f"{_clock(self.start_second)}-{_clock(self.end_second)}"


WHOLE_DAY = OpenInterval(time(0))

# Seven days, Monday first; each day's intervals in any order, non-overlapping.
WeeklyHours = tuple[tuple[OpenInterval, ...], ...]


def _day_seconds(day_name: str, intervals: Iterable[OpenInterval]) -> tuple[tuple[int, int], ...]:
    """One day's intervals as sorted (start, end) seconds since local midnight, touching ones joined."""
    ordered = sorted(intervals, key=lambda interval: (interval.start_second, interval.end_second))
    joined: list[tuple[int, int]] = []
    previous: OpenInterval | None = None
    for interval in ordered:
        if previous is not None and interval.start_second < previous.end_second:
            raise CalendarError(f"{day_name}: {previous} overlaps {interval}")
        if joined and joined[-1][1] == interval.start_second:
            # 09:00-12:00 and 12:00-17:00 are one stretch of open time.
            joined[-1] = (joined[-1][0], interval.end_second)
        else:
            joined.append((interval.start_second, interval.end_second))
        previous = interval
    return tuple(joined)


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or `CalendarError` saying it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        # ValueError: keys such as "../etc/passwd" or "" that zoneinfo refuses to look up at all.
        raise CalendarError(f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin") from None


def _check_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """When a team works: an IANA time zone, weekly opening hours (Monday first) and holidays (local dates).

    Construction validates everything and raises `CalendarError` with a message for the administrator.
    """

    time_zone: str
    weekly_hours: WeeklyHours
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _seconds: tuple[tuple[tuple[int, int], ...], ...] = field(init=False, repr=False, compare=False)
    _always_open: bool = field(init=False, repr=False, compare=False)
    _closed_day_limit: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone = zone_named(self.time_zone)
        days = tuple(tuple(day) for day in self.weekly_hours)
        if len(days) != len(DAY_KEYS):
            raise CalendarError(f"weekly hours need seven days, Monday first; got {len(days)}")
        holidays = frozenset(self.holidays)
        for holiday in holidays:
            # A datetime never equals a date, so it would silently never close the calendar.
            if isinstance(holiday, datetime) or not isinstance(holiday, date):
                raise CalendarError(f"holiday {holiday!r} is not a date")
        seconds = tuple(_day_seconds(name, day) for name, day in zip(_DAY_NAMES, days, strict=True))
        if not any(seconds):
            raise CalendarError("the calendar is never open: give at least one day some opening hours")
        object.__setattr__(self, "weekly_hours", days)
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_seconds", seconds)
        object.__setattr__(self, "_always_open", not holidays and all(day == ((0, _DAY_SECONDS),) for day in seconds))
        # Each holiday can close at most one open weekday, which at worst costs a week; a calendar still closed
        # after this many days in a row is broken, and saying so beats looping until the year 9999.
        object.__setattr__(self, "_closed_day_limit", 7 * (len(holidays) + 3))

    @classmethod
    def from_hours(
        cls, time_zone: str, weekly_hours: Mapping[str, Sequence[str] | str], holidays: Iterable[date] = ()
    ) -> BusinessCalendar:
        """A calendar from the admin's stored form: `{"mon": ["09:00-17:00"], "sat": []}` (see `parse_weekly_hours`)."""
        return cls(time_zone, parse_weekly_hours(weekly_hours), frozenset(holidays))

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    # -- the calendar, one local day at a time

    def periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open periods of local date `day` as [start, end) pairs in UTC, in order (none on a holiday)."""
        if day in self.holidays:
            return []
        periods = []
        for start_second, end_second in self._seconds[day.weekday()]:
            start = self._first_instant(day, start_second)
            end = self._first_instant(day, end_second)
            # An interval that lies wholly in a spring-forward gap never happens.
            if end > start:
                periods.append((start, end))
        return periods

    def _first_instant(self, day: date, second: int) -> datetime:
        """The first moment (UTC) the local clock shows `second` seconds after midnight of `day`."""
        if second == _DAY_SECONDS:
            day, second = day + _ONE_DAY, 0
        # Adding a timedelta to an aware datetime is wall-clock arithmetic; fold=0 picks the first pass of a repeat.
        local = datetime.combine(day, time(), self._zone) + timedelta(seconds=second)
        instant = local.astimezone(UTC)
        wall = local.replace(tzinfo=None)
        if instant.astimezone(self._zone).replace(tzinfo=None) == wall:
            return instant
        # The clock skips `wall` (spring forward): it first shows a later time at the jump, which lies between
        # reading the wall time with the offset after the jump (fold=1) and with the one before it (fold=0).
        low = int(local.replace(fold=1).astimezone(UTC).timestamp())
        high = int(instant.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            if datetime.fromtimestamp(middle, self._zone).replace(tzinfo=None) >= wall:
                high = middle
            else:
                low = middle
        return datetime.fromtimestamp(high, UTC)

    def _periods_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open periods that end after `at`, in order, without end."""
        # The first moment the clock shows at's local date is not after `at`, so no earlier day can still be open.
        day = at.astimezone(self._zone).date()
        closed_days = 0
        while True:
            periods = self.periods_on(day)
            for period in periods:
                if period[1] > at:
                    yield period
            closed_days = 0 if periods else closed_days + 1
            if closed_days > self._closed_day_limit:
                raise CalendarError(f"the calendar is closed for more than {self._closed_day_limit} days after {day}")
            try:
                day += _ONE_DAY
            except OverflowError:
                raise CalendarError("business time runs past the year 9999") from None

    # -- questions and arithmetic

    def is_open(self, at: datetime) -> bool:
        """Whether the calendar is open at `at` (an opening time is open, a closing time is closed)."""
        _check_aware(at, "at")
        if self._always_open:
            return True
        start, _ = next(self._periods_from(at))
        return start <= at

    def next_open(self, at: datetime) -> datetime:
        """`at` itself (in UTC) if the calendar is open then, else the next opening."""
        _check_aware(at, "at")
        at = at.astimezone(UTC)
        if self._always_open:
            return at
        start, _ = next(self._periods_from(at))
        return max(start, at)

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest moment (UTC) at which `duration` of business time has passed since `start`.

        Zero gives `start` itself, even when closed. Otherwise the result lies in open time or is exactly the end of
        an open period (Friday 15:00 + 2 h with 09-17 hours is Friday 17:00, not Monday 09:00).
        """
        _check_aware(start, "start")
        if duration < timedelta(0):
            raise ValueError(f"a business duration cannot be negative, got {duration}")
        start = start.astimezone(UTC)
        if self._always_open or not duration:
            return start + duration
        remaining = duration
        for period_start, period_end in self._periods_from(start):
            begin = max(period_start, start)
            available = period_end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("_periods_from never ends")  # pragma: no cover

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Business time in [a, b); when b is before a, minus the business time in [b, a) (zero when equal)."""
        _check_aware(a, "a")
        _check_aware(b, "b")
        # Subtracting two datetimes of one zone gives wall-clock time, not real time: work in UTC.
        a, b = a.astimezone(UTC), b.astimezone(UTC)
        if b < a:
            return -self.business_time_between(b, a)
        if self._always_open:
            return b - a
        total = timedelta(0)
        for period_start, period_end in self._periods_from(a):
            if period_start >= b:
                break
            total += min(period_end, b) - max(period_start, a)
            if period_end >= b:
                break
        return total


# Real time: the calendar of policies without business hours.
ALWAYS_OPEN = BusinessCalendar("UTC", tuple((WHOLE_DAY,) for _ in DAY_KEYS))


def _day_index(key: str) -> int:
    name = key.strip().lower()
    if name in DAY_KEYS:
        return DAY_KEYS.index(name)
    if name in _DAY_NAMES:
        return _DAY_NAMES.index(name)
    raise CalendarError(f"unknown day {key!r}: use {', '.join(DAY_KEYS)}")


def _parse_interval(day_name: str, text: str) -> OpenInterval:
    match = _INTERVAL_TEXT.match(text)
    if match is None:
        raise CalendarError(f"{day_name}: {text!r} is not a time range like 09:00-17:00")
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    if start_hour > 23 or start_minute > 59 or end_minute > 59 or end_hour > 24 or (end_hour == 24 and end_minute):
        raise CalendarError(f"{day_name}: {text!r} is not a time of day (00:00 to 24:00)")
    end = None if end_hour == 24 else time(end_hour, end_minute)
    if end == time(0):
        raise CalendarError(f"{day_name}: {text!r} ends at 00:00; write 24:00 for midnight at the end of the day")
    try:
        return OpenInterval(time(start_hour, start_minute), end)
    except CalendarError as error:
        raise CalendarError(f"{day_name}: {error}") from None


def parse_weekly_hours(hours: Mapping[str, Sequence[str] | str]) -> WeeklyHours:
    """Weekly hours from the admin's form: `{"mon": ["09:00-12:00", "13:00-17:00"], "sat": []}`.

    Keys are `mon` … `sun` (or full English day names, any case); a missing day or an empty list is closed; a value
    may be one string instead of a list; "00:00-24:00" is the whole day. Raises `CalendarError` naming the day.
    """
    days: list[list[OpenInterval]] = [[] for _ in DAY_KEYS]
    seen: set[int] = set()
    for key, value in hours.items():
        index = _day_index(key)
        if index in seen:
            raise CalendarError(f"{_DAY_NAMES[index]} is given twice")
        seen.add(index)
        texts = [value] if isinstance(value, str) else list(value)
        for text in texts:
            if not isinstance(text, str):
                raise CalendarError(f"{_DAY_NAMES[index]}: {text!r} is not a time range like 09:00-17:00")
            days[index].append(_parse_interval(_DAY_NAMES[index], text))
        _day_seconds(_DAY_NAMES[index], days[index])
    return tuple(tuple(sorted(day, key=lambda interval: interval.start_second)) for day in days)


def format_weekly_hours(weekly_hours: WeeklyHours) -> dict[str, list[str]]:
    """The admin's form of weekly hours, all seven days: `{"mon": ["09:00-17:00"], ..., "sun": []}`."""
    return {
        key: [str(interval) for interval in sorted(day, key=lambda interval: interval.start_second)]
        for key, day in zip(DAY_KEYS, weekly_hours, strict=True)
    }
