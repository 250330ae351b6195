"""Tests of `postdesk.sla.business_hours`: business-time arithmetic across time zones, DST changes and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sla_strategies import ZONES, calendars, durations, instants

from postdesk.sla.business_hours import (
    ALWAYS_OPEN,
    DAY_KEYS,
    WHOLE_DAY,
    BusinessCalendar,
    CalendarError,
    OpenInterval,
    format_weekly_hours,
    parse_weekly_hours,
)

pytestmark = pytest.mark.pure

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
MICROSECOND = timedelta(microseconds=1)
OFFICE = {key: ["09:00-17:00"] for key in DAY_KEYS[:5]}
PROPERTY = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


def office(zone: str = "Europe/Berlin", holidays: frozenset[date] = frozenset()) -> BusinessCalendar:
    return BusinessCalendar.from_hours(zone, OFFICE, holidays)


def every_day(zone: str, *ranges: str) -> BusinessCalendar:
    return BusinessCalendar.from_hours(zone, {key: list(ranges) for key in DAY_KEYS})


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def local(at: datetime, calendar: BusinessCalendar) -> datetime:
    return at.astimezone(calendar.zone)


# -- worked examples a user can check by hand


def test_friday_afternoon_plus_two_hours_is_monday_morning() -> None:
    due = office().add_business_time(berlin(2026, 11, 27, 16), 2 * HOUR)
    assert due == berlin(2026, 11, 30, 10)
    assert due.tzinfo is UTC


def test_a_target_that_ends_at_closing_time_is_due_at_closing_not_next_morning() -> None:
    assert office().add_business_time(berlin(2026, 11, 27, 15), 2 * HOUR) == berlin(2026, 11, 27, 17)


def test_a_holiday_is_skipped() -> None:
    calendar = office(holidays=frozenset({date(2026, 12, 25)}))  # a Friday
    assert calendar.add_business_time(berlin(2026, 12, 24, 16), 2 * HOUR) == berlin(2026, 12, 28, 10)
    assert not calendar.is_open(berlin(2026, 12, 25, 12))
    assert calendar.next_open(berlin(2026, 12, 24, 17)) == berlin(2026, 12, 28, 9)


def test_mail_arriving_at_night_starts_counting_at_opening() -> None:
    assert office().add_business_time(berlin(2026, 11, 24, 23, 30), 30 * timedelta(minutes=1)) == berlin(
        2026, 11, 25, 9, 30
    )


def test_split_hours_skip_the_lunch_break() -> None:
    calendar = BusinessCalendar.from_hours("Europe/Berlin", {"mon": ["09:00-12:00", "13:00-17:00"]})
    assert calendar.add_business_time(berlin(2026, 11, 23, 11), 2 * HOUR) == berlin(2026, 11, 23, 14)
    assert calendar.business_time_between(berlin(2026, 11, 23, 8), berlin(2026, 11, 23, 18)) == 7 * HOUR
    assert not calendar.is_open(berlin(2026, 11, 23, 12, 30))


def test_24x7_across_the_berlin_spring_forward_night_counts_real_hours() -> None:
    # Saturday 23:00 CET + 4 h: the clocks skip 02:00-03:00, so the wall clock shows 04:00 CEST.
    start = berlin(2026, 3, 28, 23)
    expected = berlin(2026, 3, 29, 4)
    assert expected.astimezone(UTC) - start.astimezone(UTC) == 4 * HOUR
    twenty_four_seven = every_day("Europe/Berlin", "00:00-24:00")
    assert twenty_four_seven.add_business_time(start, 4 * HOUR) == expected
    # The same with a holiday elsewhere, which takes the day-by-day path instead of the real-time shortcut.
    with_holiday = BusinessCalendar("Europe/Berlin", twenty_four_seven.weekly_hours, frozenset({date(2026, 12, 25)}))
    assert with_holiday.add_business_time(start, 4 * HOUR) == expected
    assert with_holiday.business_time_between(berlin(2026, 3, 29, 0), berlin(2026, 3, 30, 0)) == 23 * HOUR
    assert with_holiday.business_time_between(berlin(2026, 10, 25, 0), berlin(2026, 10, 26, 0)) == 25 * HOUR


def test_office_hours_on_dst_days_are_eight_hours() -> None:
    calendar = every_day("Europe/Berlin", "09:00-17:00")
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        (start, end), *_ = calendar.periods_on(day)
        assert end - start == 8 * HOUR


def test_hours_around_the_spring_forward_gap_last_one_hour_less() -> None:
    # 01:00-04:00 on the night the clocks go 02:00 -> 03:00: 2 real hours.
    calendar = every_day("Europe/Berlin", "01:00-04:00")
    [(start, end)] = calendar.periods_on(date(2026, 3, 29))
    assert (start, end) == (berlin(2026, 3, 29, 1), berlin(2026, 3, 29, 4))
    assert end - start == 2 * HOUR


def test_hours_around_the_fall_back_overlap_last_one_hour_more() -> None:
    calendar = every_day("Europe/Berlin", "01:00-04:00")
    [(start, end)] = calendar.periods_on(date(2026, 10, 25))
    assert end - start == 4 * HOUR


def test_an_opening_time_the_clock_skips_happens_when_the_clock_jumps() -> None:
    calendar = every_day("Europe/Berlin", "02:30-05:00")
    [(start, end)] = calendar.periods_on(date(2026, 3, 29))
    assert start == datetime(2026, 3, 29, 1, tzinfo=UTC)  # the jump: 02:00 CET becomes 03:00 CEST
    assert local(start, calendar).time() == time(3)
    assert end - start == 2 * HOUR


def test_hours_wholly_inside_the_skipped_hour_never_open() -> None:
    calendar = every_day("Europe/Berlin", "02:00-02:30", "09:00-10:00")
    assert [local(start, calendar).time() for start, _ in calendar.periods_on(date(2026, 3, 29))] == [time(9)]
    assert len(calendar.periods_on(date(2026, 3, 30))) == 2


def test_a_closing_time_the_clock_shows_twice_closes_on_the_first_pass() -> None:
    calendar = every_day("Europe/Berlin", "00:00-02:30")
    [(start, end)] = calendar.periods_on(date(2026, 10, 25))
    assert end == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert end - start == timedelta(hours=2, minutes=30)
    second_pass = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 02:15 CET
    assert local(second_pass, calendar).time() == time(2, 15)
    assert not calendar.is_open(second_pass)


def test_lord_howe_half_hour_dst_makes_a_23_and_a_half_hour_day() -> None:
    zone = ZoneInfo("Australia/Lord_Howe")
    calendar = BusinessCalendar("Australia/Lord_Howe", ((WHOLE_DAY,),) * 7, frozenset({date(2030, 1, 1)}))
    start = datetime(2026, 10, 4, tzinfo=zone)
    assert calendar.business_time_between(start, datetime(2026, 10, 5, tzinfo=zone)) == timedelta(hours=23, minutes=30)
    # 01:00-03:00 that night: the clock goes from 02:00 straight to 02:30.
    night = every_day("Australia/Lord_Howe", "01:00-03:00")
    [(open_at, close_at)] = night.periods_on(date(2026, 10, 4))
    assert close_at - open_at == timedelta(hours=1, minutes=30)


def test_tehran_office_hours_are_half_past_in_utc() -> None:
    calendar = office("Asia/Tehran")
    [(start, end)] = calendar.periods_on(date(2026, 11, 25))
    assert (start, end) == (datetime(2026, 11, 25, 5, 30, tzinfo=UTC), datetime(2026, 11, 25, 13, 30, tzinfo=UTC))


def test_tehran_skipped_midnight_leaves_no_hole_between_days() -> None:
    # On 2021-03-22 Tehran's clocks went from 00:00 to 01:00: that day starts when the previous one ends.
    calendar = BusinessCalendar("Asia/Tehran", ((WHOLE_DAY,),) * 7, frozenset({date(2030, 1, 1)}))
    [(_, day_before_ends)] = calendar.periods_on(date(2021, 3, 21))
    [(day_starts, day_ends)] = calendar.periods_on(date(2021, 3, 22))
    assert day_before_ends == day_starts
    assert day_ends - day_starts == 23 * HOUR
    start = datetime(2021, 3, 20, 12, tzinfo=UTC)
    assert calendar.business_time_between(start, start + 72 * HOUR) == 72 * HOUR


def test_is_open_at_opening_and_closed_at_closing() -> None:
    calendar = office()
    assert calendar.is_open(berlin(2026, 11, 23, 9))
    assert not calendar.is_open(berlin(2026, 11, 23, 17))
    assert not calendar.is_open(berlin(2026, 11, 28, 12))  # Saturday
    assert calendar.next_open(berlin(2026, 11, 23, 12)) == berlin(2026, 11, 23, 12)
    assert calendar.next_open(berlin(2026, 11, 27, 17)) == berlin(2026, 11, 30, 9)


def test_business_time_backwards_is_negative_and_zero_when_equal() -> None:
    calendar = office()
    friday, monday = berlin(2026, 11, 27, 16), berlin(2026, 11, 30, 10)
    assert calendar.business_time_between(friday, monday) == 2 * HOUR
    assert calendar.business_time_between(monday, friday) == -2 * HOUR
    assert calendar.business_time_between(monday, monday) == timedelta(0)


def test_adding_nothing_gives_the_start_even_when_closed() -> None:
    saturday = berlin(2026, 11, 28, 12)
    assert office().add_business_time(saturday, timedelta(0)) == saturday


def test_a_thirty_day_target_over_many_holidays_is_exact() -> None:
    # 720 business hours = 90 office days; every Wednesday is a holiday, so 90 days take 22.5 four-day weeks.
    wednesdays = frozenset(date(2026, 1, 7) + timedelta(weeks=week) for week in range(200))
    calendar = office(holidays=wednesdays)
    start = berlin(2026, 1, 5, 9)  # a Monday
    due = calendar.add_business_time(start, timedelta(days=30))
    assert due == berlin(2026, 6, 9, 17)  # 22 four-day weeks, then Monday and Tuesday: 22 * 4 + 2 = 90 days
    assert calendar.business_time_between(start, due) == timedelta(days=30)


def test_always_open_is_real_time_in_utc() -> None:
    start = berlin(2026, 3, 28, 23)
    assert ALWAYS_OPEN.add_business_time(start, 5 * HOUR) == start.astimezone(UTC) + 5 * HOUR
    assert ALWAYS_OPEN.is_open(start)
    assert ALWAYS_OPEN.time_zone == "UTC"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        office().add_business_time(datetime(2026, 11, 23, 9), HOUR)
    with pytest.raises(ValueError, match="negative"):
        office().add_business_time(berlin(2026, 11, 23, 9), -HOUR)


# -- validation and the admin's form


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"mon": ["09:00-12:00", "11:00-13:00"]}, "monday: 09:00-12:00 overlaps 11:00-13:00"),
        ({"tue": ["17:00-09:00"]}, "tuesday: 17:00-09:00: the end is not after the start"),
        ({"wed": ["09:00-09:00"]}, "the end is not after the start"),
        ({"thu": ["22:00-00:00"]}, "write 24:00 for midnight"),
        ({"fri": ["9 to 5"]}, "friday: '9 to 5' is not a time range like 09:00-17:00"),
        ({"sat": ["09:00-25:00"]}, "is not a time of day"),
        ({"sat": ["09:60-10:00"]}, "is not a time of day"),
        ({"funday": ["09:00-17:00"]}, "unknown day 'funday'"),
        ({"mon": ["09:00-17:00"], "Monday": []}, "monday is given twice"),
        ({"mon": [9]}, "monday: 9 is not a time range"),
        ({"mon": [], "sun": []}, "never open"),
    ],
)
def test_bad_weekly_hours_say_what_is_wrong(hours: dict[str, list[str]], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.from_hours("Europe/Berlin", hours)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "Europe/berlin "])
def test_unknown_time_zones_are_refused(zone: str) -> None:
    with pytest.raises(CalendarError, match="unknown time zone"):
        BusinessCalendar.from_hours(zone, OFFICE)


def test_calendars_built_in_code_are_validated_too() -> None:
    with pytest.raises(CalendarError, match="seven days"):
        BusinessCalendar("UTC", ((WHOLE_DAY,),) * 5)
    with pytest.raises(CalendarError, match="not a date"):
        BusinessCalendar("UTC", ((WHOLE_DAY,),) * 7, frozenset({datetime(2026, 1, 1, tzinfo=UTC)}))
    with pytest.raises(CalendarError, match="overlaps"):
        BusinessCalendar("UTC", ((WHOLE_DAY, OpenInterval(time(9), time(10))),) + ((),) * 6)
    with pytest.raises(CalendarError, match="without a time zone"):
        OpenInterval(time(9, tzinfo=UTC), time(10))


def test_weekly_hours_parse_leniently_and_format_back() -> None:
    # A full day name, one string instead of a list, spaces, an en dash, intervals out of order.
    weekly = parse_weekly_hours(
        {"Monday": "13:00 - 17:00", "tue": ["13:00-17:00", "09:00\u201312:00"], "sun": ["00:00-24:00"]}
    )
    assert weekly[0] == (OpenInterval(time(13), time(17)),)
    assert weekly[1] == (OpenInterval(time(9), time(12)), OpenInterval(time(13), time(17)))
    assert weekly[6] == (WHOLE_DAY,)
    assert format_weekly_hours(weekly) == {
        "mon": ["13:00-17:00"],
        "tue": ["09:00-12:00", "13:00-17:00"],
        "wed": [],
        "thu": [],
        "fri": [],
        "sat": [],
        "sun": ["00:00-24:00"],
    }


@given(calendars())
@PROPERTY
def test_formatted_weekly_hours_parse_back_to_the_same(calendar: BusinessCalendar) -> None:
    weekly = parse_weekly_hours(format_weekly_hours(calendar.weekly_hours))
    assert weekly == tuple(tuple(sorted(day, key=lambda i: i.start_second)) for day in calendar.weekly_hours)


# -- properties across zones, DST changes and holidays


@given(st.data(), calendars(), durations)
@PROPERTY
def test_the_business_time_to_a_deadline_is_its_target(
    data: st.DataObject, calendar: BusinessCalendar, d: timedelta
) -> None:
    start = data.draw(instants(calendar))
    due = calendar.add_business_time(start, d)
    assert due >= start
    assert calendar.business_time_between(start, due) == d


@given(st.data(), calendars(), durations)
@PROPERTY
def test_a_deadline_lies_in_open_time_or_exactly_at_a_closing(
    data: st.DataObject, calendar: BusinessCalendar, d: timedelta
) -> None:
    start = data.draw(instants(calendar))
    due = calendar.add_business_time(start, d)
    if d:
        # Open just before the deadline: it is inside an open period or exactly at its end.
        assert calendar.is_open(due - MICROSECOND)
        # ... and never later than needed: no open time is wasted after the target is reached.
        assert calendar.add_business_time(start, d - MICROSECOND) < due


@given(st.data(), calendars(), durations, durations)
@PROPERTY
def test_longer_targets_are_never_due_earlier(
    data: st.DataObject, calendar: BusinessCalendar, d1: timedelta, d2: timedelta
) -> None:
    start = data.draw(instants(calendar))
    shorter, longer = sorted((d1, d2))
    assert calendar.add_business_time(start, shorter) <= calendar.add_business_time(start, longer)


@given(st.data(), calendars(), durations, durations)
@PROPERTY
def test_adding_in_two_steps_equals_adding_once(
    data: st.DataObject, calendar: BusinessCalendar, d1: timedelta, d2: timedelta
) -> None:
    start = data.draw(instants(calendar))
    halfway = calendar.add_business_time(start, d1)
    assert calendar.add_business_time(halfway, d2) == calendar.add_business_time(start, d1 + d2)


@given(st.data(), calendars())
@PROPERTY
def test_business_time_adds_up_over_consecutive_ranges(data: st.DataObject, calendar: BusinessCalendar) -> None:
    start = data.draw(instants(calendar))
    offsets = data.draw(st.lists(st.integers(0, 40 * 86_400), min_size=3, max_size=3))
    a, b, c = sorted(start + timedelta(seconds=offset) for offset in offsets)
    ab, bc = calendar.business_time_between(a, b), calendar.business_time_between(b, c)
    assert ab + bc == calendar.business_time_between(a, c)
    assert timedelta(0) <= ab <= b - a
    assert calendar.business_time_between(c, a) == -(ab + bc)


@given(st.data(), calendars())
@PROPERTY
def test_next_open_is_open_with_no_business_time_before_it(data: st.DataObject, calendar: BusinessCalendar) -> None:
    at = data.draw(instants(calendar))
    opening = calendar.next_open(at)
    assert opening >= at
    assert calendar.is_open(opening)
    assert calendar.business_time_between(at, opening) == timedelta(0)
    assert calendar.is_open(at) == (opening == at)


def _open_by_the_wall_clock(calendar: BusinessCalendar, at: datetime) -> bool:
    """Independent of the module: read the local clock and look the time up in the weekly hours."""
    wall = at.astimezone(calendar.zone)
    if wall.date() in calendar.holidays:
        return False
    seconds = wall.hour * 3600 + wall.minute * 60 + wall.second
    return any(
        interval.start_second <= seconds < interval.end_second for interval in calendar.weekly_hours[wall.weekday()]
    )


@given(st.data(), calendars(boundary_hours=(4, 22)), st.integers(0, 3 * 24 * 12))
@settings(deadline=None, max_examples=60)
def test_business_time_matches_reading_the_wall_clock_every_five_minutes(
    data: st.DataObject, calendar: BusinessCalendar, slots: int
) -> None:
    # Opening hours between 04:00 and 22:00 never meet a DST change in these zones, so the wall clock is unambiguous
    # there; offsets are whole quarter hours, so five-minute slots are each wholly open or wholly closed.
    start = data.draw(instants(calendar)).replace(second=0)
    start -= timedelta(minutes=start.minute % 5)
    step = timedelta(minutes=5)
    expected = sum((step for i in range(slots) if _open_by_the_wall_clock(calendar, start + i * step)), timedelta(0))
    assert calendar.business_time_between(start, start + slots * step) == expected


@pytest.mark.parametrize("zone", ZONES)
def test_every_zone_counts_an_ordinary_office_week_as_forty_hours(zone: str) -> None:
    calendar = office(zone)
    monday = datetime.combine(date(2026, 11, 23), time(), calendar.zone)
    assert calendar.business_time_between(monday, monday + timedelta(days=7)) == 40 * HOUR
