"""Tests of `postdesk.sla.holidays`: holidays read from iCalendar feeds."""

from __future__ import annotations

from datetime import date

import pytest

from postdesk.sla.errors import CalendarError
from postdesk.sla.holidays import Holiday, holidays_from_ical

pytestmark = pytest.mark.pure


def ical(*events: str) -> bytes:
    """A VCALENDAR of `events` (property lines, indentation ignored) with CRLF line ends."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Postdesk tests//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", *(line.strip() for line in event.strip().splitlines()), "END:VEVENT"]
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


# Shaped like a public-holiday feed: yearly rules, fixed and by-weekday dates, an EXDATE, one-off and cancelled days.
PUBLIC_HOLIDAYS = ical(
    """UID:new-year@example.org
    DTSTART;VALUE=DATE:20200101
    DTEND;VALUE=DATE:20200102
    RRULE:FREQ=YEARLY
    EXDATE;VALUE=DATE:20270101
    SUMMARY:New Year's Day
    TRANSP:TRANSPARENT""",
    """UID:labour@example.org
    DTSTART;VALUE=DATE:20210501
    RRULE:FREQ=YEARLY;UNTIL=20260101T000000Z
    SUMMARY:Labour Day""",
    """UID:thanksgiving@example.org
    DTSTART;VALUE=DATE:20201126
    RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH
    SUMMARY:Thanksgiving""",
    """UID:christmas@example.org
    DTSTART;VALUE=DATE:20261224
    DTEND;VALUE=DATE:20261227
    SUMMARY:Christmas""",
    """UID:strike@example.org
    DTSTART;VALUE=DATE:20261202
    STATUS:CANCELLED
    SUMMARY:Cancelled closure""",
)


def test_a_public_holiday_feed_within_a_range() -> None:
    assert holidays_from_ical(PUBLIC_HOLIDAYS, start=date(2025, 12, 1), end=date(2027, 1, 31)) == [
        Holiday(date(2026, 1, 1), "New Year's Day"),
        Holiday(date(2026, 11, 26), "Thanksgiving"),
        Holiday(date(2026, 12, 24), "Christmas"),
        Holiday(date(2026, 12, 25), "Christmas"),
        Holiday(date(2026, 12, 26), "Christmas"),
    ]  # Labour Day stopped after 2025, New Year 2027 is excluded, the cancelled closure does not count


def test_yearly_rules_expand_over_several_years_with_their_weekdays() -> None:
    found = holidays_from_ical(PUBLIC_HOLIDAYS, start=date(2021, 1, 1), end=date(2024, 12, 31))
    thanksgivings = [holiday.date for holiday in found if holiday.name == "Thanksgiving"]
    assert thanksgivings == [date(2021, 11, 25), date(2022, 11, 24), date(2023, 11, 23), date(2024, 11, 28)]
    assert [holiday.date for holiday in found if holiday.name == "Labour Day"] == [
        date(2021, 5, 1),
        date(2022, 5, 1),
        date(2023, 5, 1),
        date(2024, 5, 1),
    ]


def test_a_range_cuts_multi_day_events_and_includes_both_ends() -> None:
    found = holidays_from_ical(PUBLIC_HOLIDAYS, start=date(2026, 12, 25), end=date(2026, 12, 25))
    assert found == [Holiday(date(2026, 12, 25), "Christmas")]


def test_timed_events_close_their_local_date() -> None:
    feed = ical(
        """UID:eve@example.org
        DTSTART;TZID=Europe/Berlin:20261231T140000
        DTEND;TZID=Europe/Berlin:20261231T180000
        SUMMARY:New Year's Eve afternoon""",
        """UID:party@example.org
        DTSTART:20260630T220000Z
        DTEND:20260701T000000Z
        SUMMARY:Summer party""",
    )
    assert holidays_from_ical(feed, start=date(2026, 1, 1), end=date(2026, 12, 31)) == [
        Holiday(date(2026, 6, 30), "Summer party"),  # ends exactly at midnight: July 1st stays open
        Holiday(date(2026, 12, 31), "New Year's Eve afternoon"),
    ]
    # In Shanghai the afternoon in Berlin runs past midnight, and the party falls on July 1st.
    assert holidays_from_ical(feed, start=date(2026, 1, 1), end=date(2027, 12, 31), time_zone="Asia/Shanghai") == [
        Holiday(date(2026, 7, 1), "Summer party"),
        Holiday(date(2026, 12, 31), "New Year's Eve afternoon"),
        Holiday(date(2027, 1, 1), "New Year's Eve afternoon"),
    ]


def test_extra_dates_of_a_recurring_event_are_added() -> None:
    feed = ical(
        """UID:bridge@example.org
        DTSTART;VALUE=DATE:20250502
        RDATE;VALUE=DATE:20261228,20261229
        SUMMARY:Bridge day"""
    )
    assert holidays_from_ical(feed, start=date(2025, 1, 1), end=date(2026, 12, 28)) == [
        Holiday(date(2025, 5, 2), "Bridge day"),
        Holiday(date(2026, 12, 28), "Bridge day"),
    ]


def test_the_first_event_of_a_date_names_it() -> None:
    feed = ical(
        "UID:a\nDTSTART;VALUE=DATE:20261225\nSUMMARY:Christmas Day",
        "UID:b\nDTSTART;VALUE=DATE:20261225\nSUMMARY:Office closed",
    )
    assert holidays_from_ical(feed, start=date(2026, 1, 1), end=date(2026, 12, 31)) == [
        Holiday(date(2026, 12, 25), "Christmas Day")
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not a calendar", "not an iCalendar file"),
        (ical("UID:x\nSUMMARY:No start"), "event 'No start': .*DTSTART"),
        (ical("UID:x\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=MINUTELY\nSUMMARY:Spin"), "cannot repeat minutely"),
        (ical("UID:x\nDTSTART;VALUE=DATE:20260105\nDTEND;VALUE=DATE:20260101\nSUMMARY:Backwards"), "Backwards"),
    ],
)
def test_bad_feeds_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        holidays_from_ical(data, start=date(2026, 1, 1), end=date(2026, 12, 31))


def test_an_unknown_zone_or_a_backwards_range_is_refused() -> None:
    with pytest.raises(CalendarError, match="unknown time zone"):
        holidays_from_ical(PUBLIC_HOLIDAYS, start=date(2026, 1, 1), end=date(2026, 12, 31), time_zone="Nowhere/City")
    with pytest.raises(CalendarError, match="ends"):
        holidays_from_ical(PUBLIC_HOLIDAYS, start=date(2026, 12, 31), end=date(2026, 1, 1))
