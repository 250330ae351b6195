"""Tests of `postdesk.sla.promise`: the reply time an acknowledgement promises, and its rounding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sla_strategies import ZONES

from postdesk.sla.business_hours import DAY_KEYS, BusinessCalendar
from postdesk.sla.promise import HOUR, QUARTER_HOUR, promised_reply_time, readable_promise, round_up

pytestmark = pytest.mark.pure

BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = timedelta(minutes=1)
OFFICE = BusinessCalendar.from_hours("Europe/Berlin", {key: ["09:00-17:00"] for key in DAY_KEYS[:5]})


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def test_a_short_queue_promises_the_sla_deadline() -> None:
    now = berlin(2026, 11, 25, 10)
    promised = promised_reply_time(OFFICE, now, 4 * HOUR, backlog=3, agents_on_shift=2, median_handle=20 * MINUTE)
    assert promised == berlin(2026, 11, 25, 14)


def test_a_long_queue_pushes_the_promise_later_in_business_hours() -> None:
    # 30 waiting, 2 agents, 20 minutes each: 5 business hours, past the 4-hour SLA and past closing time.
    now = berlin(2026, 11, 25, 15)
    promised = promised_reply_time(OFFICE, now, 4 * HOUR, backlog=30, agents_on_shift=2, median_handle=20 * MINUTE)
    assert promised == berlin(2026, 11, 26, 12)


def test_nobody_on_shift_counts_as_one_agent_when_the_calendar_opens() -> None:
    saturday = berlin(2026, 11, 28, 10)
    promised = promised_reply_time(OFFICE, saturday, HOUR, backlog=6, agents_on_shift=0, median_handle=30 * MINUTE)
    assert promised == berlin(2026, 11, 30, 12)


def test_bad_queue_figures_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        promised_reply_time(OFFICE, berlin(2026, 11, 25, 10), HOUR, -1, 1, MINUTE)


@given(
    st.datetimes(datetime(2020, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.integers(1, 24 * 60),
    st.integers(0, 200),
    st.integers(0, 20),
    st.integers(0, 120),
)
@settings(deadline=None)
def test_the_promise_is_never_earlier_than_the_sla_or_the_queue(
    now: datetime, target_minutes: int, backlog: int, agents: int, handle_minutes: int
) -> None:
    target, handle = target_minutes * MINUTE, handle_minutes * MINUTE
    promised = promised_reply_time(OFFICE, now, target, backlog, agents, handle)
    assert promised >= OFFICE.add_business_time(now, target)
    assert OFFICE.business_time_between(now, promised) >= handle * backlog / max(agents, 1)


def test_rounding_up_to_the_quarter_hour_and_the_hour_on_the_local_clock() -> None:
    at = berlin(2026, 11, 25, 14, 1)
    assert round_up(at, QUARTER_HOUR, BERLIN) == berlin(2026, 11, 25, 14, 15)
    assert round_up(at, HOUR, BERLIN) == berlin(2026, 11, 25, 15)
    assert round_up(berlin(2026, 11, 25, 14), HOUR, BERLIN) == berlin(2026, 11, 25, 14)
    tehran = ZoneInfo("Asia/Tehran")
    assert round_up(datetime(2026, 11, 25, 10, 40, tzinfo=tehran), HOUR, tehran) == datetime(
        2026, 11, 25, 11, tzinfo=tehran
    )


def test_readable_promises_use_quarter_hours_when_near_and_hours_when_far() -> None:
    now = berlin(2026, 11, 25, 10)
    assert readable_promise(now, berlin(2026, 11, 25, 11, 2), BERLIN) == berlin(2026, 11, 25, 11, 15)
    assert readable_promise(now, berlin(2026, 11, 25, 15, 2), BERLIN) == berlin(2026, 11, 25, 16)


@given(
    st.datetimes(datetime(1990, 1, 1), datetime(2035, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(ZONES),
    st.sampled_from([QUARTER_HOUR, HOUR]),
)
def test_rounded_times_are_never_earlier_and_read_round_on_the_local_clock(
    at: datetime, zone_name: str, step: timedelta
) -> None:
    zone = ZoneInfo(zone_name)
    rounded = round_up(at, step, zone)
    assert at <= rounded < at + step
    local = rounded.astimezone(zone)
    if local.utcoffset() == at.astimezone(zone).utcoffset():  # no DST change in between
        assert (local.minute % (step // MINUTE), local.second, local.microsecond) == (0, 0, 0)
