"""Tests of `postdesk.sla.clock`: deadlines, pausing and resuming them, warning and breach states, list texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sla_strategies import calendars, durations, instants

from postdesk.sla.business_hours import DAY_KEYS, BusinessCalendar
from postdesk.sla.clock import (
    DueText,
    SlaState,
    TargetKind,
    Targets,
    TimeUnit,
    describe,
    next_check,
    pause,
    resume,
    start_due,
    state,
)
from postdesk.sla.errors import PolicyError

pytestmark = pytest.mark.pure

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
OFFICE = BusinessCalendar.from_hours("Europe/Berlin", {key: ["09:00-17:00"] for key in DAY_KEYS[:5]})
PROPERTY = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def test_a_clock_paused_on_friday_resumes_with_the_business_time_it_had_left() -> None:
    due = start_due(OFFICE, berlin(2026, 11, 27, 14), 3 * HOUR)
    assert due == berlin(2026, 11, 27, 17)
    remaining = pause(OFFICE, berlin(2026, 11, 27, 16), due)  # waiting on the customer from Friday 16:00
    assert remaining == HOUR
    # The customer answers on Tuesday at 11:00; the weekend and Monday do not count against the team.
    assert resume(OFFICE, berlin(2026, 12, 1, 11), remaining) == berlin(2026, 12, 1, 12)


def test_a_breached_clock_stays_breached_by_the_same_real_time_after_a_pause() -> None:
    due = berlin(2026, 11, 27, 15)
    paused_at = berlin(2026, 11, 27, 17)
    remaining = pause(OFFICE, paused_at, due)
    assert remaining == -2 * HOUR
    resumed_at = berlin(2026, 12, 1, 11)
    new_due = resume(OFFICE, resumed_at, remaining)
    assert new_due == berlin(2026, 12, 1, 9)
    assert state(resumed_at, new_due, 30 * MINUTE) is SlaState.BREACHED
    assert str(describe(resumed_at, new_due)) == "breached 2 h ago"


def test_a_clock_paused_at_its_deadline_is_breached_and_resumes_breached() -> None:
    due = berlin(2026, 11, 27, 15)
    assert pause(OFFICE, due, due) == timedelta(0)
    resumed_at = berlin(2026, 11, 30, 10)
    assert resume(OFFICE, resumed_at, timedelta(0)) == resumed_at
    assert state(resumed_at, resumed_at, timedelta(0)) is SlaState.BREACHED


def test_states_before_and_after_the_deadline() -> None:
    due = NOW + HOUR
    assert state(NOW, due, 30 * MINUTE) is SlaState.OK
    assert state(due - 30 * MINUTE, due, 30 * MINUTE) is SlaState.WARNING
    assert state(due - MINUTE, due, 30 * MINUTE) is SlaState.WARNING
    assert state(due, due, 30 * MINUTE) is SlaState.BREACHED
    assert state(due + HOUR, due, 30 * MINUTE) is SlaState.BREACHED
    # Same instants in another zone give the same answer (real time, not the wall clock).
    assert state(NOW.astimezone(BERLIN), due.astimezone(BERLIN), 30 * MINUTE) is SlaState.OK


def test_the_sweeper_looks_again_at_the_warning_then_at_the_breach() -> None:
    due = NOW + HOUR
    assert next_check(NOW, due, 30 * MINUTE) == NOW + 30 * MINUTE
    assert next_check(NOW + 40 * MINUTE, due, 30 * MINUTE) == due
    assert next_check(due, due, 30 * MINUTE) is None


@pytest.mark.parametrize(
    ("delta", "text", "unit", "amount"),
    [
        (23 * MINUTE, "due in 23 min", TimeUnit.MINUTE, 23),
        (timedelta(seconds=20), "due in 1 min", TimeUnit.MINUTE, 1),
        (timedelta(minutes=22, seconds=1), "due in 23 min", TimeUnit.MINUTE, 23),
        (89 * MINUTE, "due in 1 h", TimeUnit.HOUR, 1),
        (90 * MINUTE, "due in 2 h", TimeUnit.HOUR, 2),
        (47 * HOUR, "due in 47 h", TimeUnit.HOUR, 47),
        (3 * 24 * HOUR + 13 * HOUR, "due in 4 d", TimeUnit.DAY, 4),
        (-2 * HOUR, "breached 2 h ago", TimeUnit.HOUR, 2),
        (-timedelta(minutes=59, seconds=59), "breached 59 min ago", TimeUnit.MINUTE, 59),
        (-timedelta(seconds=30), "breached just now", TimeUnit.MINUTE, 0),
        (timedelta(0), "breached just now", TimeUnit.MINUTE, 0),
        (-10 * 24 * HOUR, "breached 10 d ago", TimeUnit.DAY, 10),
    ],
)
def test_list_texts(delta: timedelta, text: str, unit: TimeUnit, amount: int) -> None:
    due_text = describe(NOW, NOW + delta)
    assert str(due_text) == text
    assert (due_text.unit, due_text.amount) == (unit, amount)


def test_list_texts_carry_exact_minutes_and_the_warning_state() -> None:
    assert describe(NOW, NOW + 23 * MINUTE, warn_before=30 * MINUTE) == DueText(
        SlaState.WARNING, 23, TimeUnit.MINUTE, 23
    )
    assert describe(NOW, NOW + 150 * MINUTE) == DueText(SlaState.OK, 150, TimeUnit.HOUR, 3)


def test_targets_from_minutes_and_by_kind() -> None:
    targets = Targets.from_minutes(first_response=60, resolution=8 * 60)
    assert targets.get(TargetKind.FIRST_RESPONSE) == HOUR
    assert targets.get(TargetKind.NEXT_RESPONSE) is None
    assert targets.get(TargetKind.RESOLUTION) == 8 * HOUR
    assert TargetKind.RESOLUTION.value == "resolution"  # the key the app stores paused clocks under


def test_a_zero_target_is_refused() -> None:
    with pytest.raises(PolicyError, match="first response target must be longer than zero"):
        Targets.from_minutes(first_response=0)


# -- properties


@given(st.data(), calendars(), durations.filter(bool), st.integers(-5 * 86_400, 60 * 86_400))
@PROPERTY
def test_pausing_and_resuming_at_the_same_instant_changes_nothing(
    data: st.DataObject, calendar: BusinessCalendar, target: timedelta, seconds: int
) -> None:
    started = data.draw(instants(calendar))
    due = start_due(calendar, started, target)
    now = started + timedelta(seconds=seconds)
    assert resume(calendar, now, pause(calendar, now, due)) == due


@given(st.data(), calendars(), durations.filter(bool), st.lists(st.integers(1, 10 * 86_400), min_size=2, max_size=8))
@PROPERTY
def test_time_spent_paused_never_counts(
    data: st.DataObject, calendar: BusinessCalendar, target: timedelta, gaps: list[int]
) -> None:
    # Alternate running and paused stretches; the business time the clock ran is the target when it comes due.
    started = data.draw(instants(calendar))
    now, due, remaining = started, start_due(calendar, started, target), None
    ran = timedelta(0)
    for index, gap in enumerate(gaps):
        later = now + timedelta(seconds=gap)
        if index % 2 == 0:  # running until `later`, then paused
            if due <= later:
                break
            ran += calendar.business_time_between(now, later)
            remaining = pause(calendar, later, due)
        else:  # paused until `later`, then resumed
            assert remaining is not None
            due = resume(calendar, later, remaining)
        now = later
    else:
        if len(gaps) % 2:
            return  # ended paused
    ran += calendar.business_time_between(now, due)
    assert ran == target
