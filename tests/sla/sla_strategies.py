"""Hypothesis strategies for SLA tests: calendars in awkward time zones and instants near their DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from postdesk.sla.business_hours import DAY_KEYS, WHOLE_DAY, BusinessCalendar, OpenInterval

# UTC+3:30 (with midnight DST changes until 2022), a 30-minute DST, the two big DST zones, and no DST since 1991.
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tehran", "Australia/Lord_Howe", "Asia/Shanghai")
# Since 1986 every offset of these zones is a whole number of quarter hours (older LMT offsets are not).
FIRST_DAY = date(1986, 1, 1)
LAST_DAY = date(2035, 12, 31)


def _dst_change_days(zone_name: str) -> list[date]:
    """Local dates whose noon offset differs from the day before's: a DST change happened that night or day."""
    zone = ZoneInfo(zone_name)
    days = []
    day = FIRST_DAY
    previous = None
    while day <= LAST_DAY:
        offset = datetime.combine(day, time(12), zone).utcoffset()
        if previous is not None and offset != previous:
            days.append(day)
        previous = offset
        day += timedelta(days=1)
    return days


DST_CHANGE_DAYS = {name: _dst_change_days(name) for name in ZONES}
assert len(DST_CHANGE_DAYS["Europe/Berlin"]) > 80 and len(DST_CHANGE_DAYS["Asia/Tehran"]) > 50


@st.composite
def day_hours(draw: st.DrawFn, boundary_hours: tuple[int, int] = (0, 24)) -> tuple[OpenInterval, ...]:
    """One day's opening hours: closed, the whole day, or up to three intervals on a quarter-hour grid."""
    low, high = boundary_hours
    kind = draw(st.sampled_from(["closed", "whole", "intervals", "intervals"]))
    if kind == "closed":
        return ()
    if kind == "whole" and boundary_hours == (0, 24):
        return (WHOLE_DAY,)
    count = draw(st.integers(1, 3))
    quarters = sorted(draw(st.sets(st.integers(low * 4, high * 4), min_size=2 * count, max_size=2 * count)))
    intervals = []
    for start, end in zip(quarters[::2], quarters[1::2], strict=True):
        end_time = None if end == 96 else time(end // 4, end % 4 * 15)
        intervals.append(OpenInterval(time(start // 4, start % 4 * 15), end_time))
    return tuple(intervals)


@st.composite
def calendars(
    draw: st.DrawFn, zones: tuple[str, ...] = ZONES, boundary_hours: tuple[int, int] = (0, 24)
) -> BusinessCalendar:
    """A calendar in one of `zones` with random weekly hours (open at least one day) and random holidays."""
    zone = draw(st.sampled_from(zones))
    week = [draw(day_hours(boundary_hours)) for _ in DAY_KEYS]
    if not any(week):
        week[draw(st.integers(0, 6))] = draw(day_hours(boundary_hours).filter(bool))
    holidays = draw(st.frozensets(st.dates(date(2020, 1, 1), date(2028, 12, 31)), max_size=40))
    # Holidays near the instants tested, so they matter: around DST changes and in the random range.
    near_changes = draw(st.frozensets(st.sampled_from(DST_CHANGE_DAYS[zone] or [date(2026, 3, 29)]), max_size=6))
    return BusinessCalendar(zone, tuple(week), holidays | near_changes)


@st.composite
def instants(draw: st.DrawFn, calendar: BusinessCalendar) -> datetime:
    """An aware instant, often within a few days of one of the calendar zone's DST changes, else any day."""
    changes = DST_CHANGE_DAYS[calendar.time_zone]
    if draw(st.booleans()) and changes:
        day = draw(st.sampled_from(changes)) - timedelta(days=2)
    else:
        day = draw(st.dates(date(2020, 1, 1), date(2028, 12, 31)))
    base = datetime.combine(day, time(), UTC)
    return base + timedelta(seconds=draw(st.integers(0, 4 * 86_400)))


durations = st.integers(0, 40 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes)) | st.integers(
    0, 3 * 86_400
).map(lambda seconds: timedelta(seconds=seconds))
