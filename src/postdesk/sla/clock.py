"""SLA clocks: deadlines (`due_at`) from business-time targets, pausing and resuming them, and their state for lists.

A running clock is one `due_at` instant, which the app stores and sorts by. Pausing turns it into the time that
was left, and resuming turns that back into a `due_at`:

- time left before the deadline is business time, so a clock paused at Friday 16:00 with one business hour left
  and resumed on Tuesday at 11:00 is due at 12:00;
- after the deadline the remaining time is negative and counts real time since the breach: a breach is a moment
  that has already happened, not calendar arithmetic, so resuming gives `now + remaining` and the conversation
  shows "breached 2 h ago" both before the pause and after the resume.

Pausing and resuming at the same instant gives back the same `due_at` (for any `due_at` made by `start_due` or
`resume`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from postdesk.sla.business_hours import BusinessCalendar
from postdesk.sla.errors import PolicyError


class TargetKind(StrEnum):
    """The three clocks of a conversation; the values are the keys the app stores paused clocks under."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


@dataclass(frozen=True, slots=True)
class Targets:
    """Business time allowed for each clock; None = that clock does not run."""

    first_response: timedelta | None = None
    next_response: timedelta | None = None
    resolution: timedelta | None = None

    def __post_init__(self) -> None:
        for kind in TargetKind:
            target = self.get(kind)
            if target is not None and target <= timedelta(0):
                raise PolicyError(f"the {kind.replace('_', ' ')} target must be longer than zero, got {target}")

    @classmethod
    def from_minutes(
        cls, first_response: int | None = None, next_response: int | None = None, resolution: int | None = None
    ) -> Targets:
        """Targets from whole business minutes, as the admin enters them."""

        def minutes(value: int | None) -> timedelta | None:
            return None if value is None else timedelta(minutes=value)

        return cls(minutes(first_response), minutes(next_response), minutes(resolution))

    def get(self, kind: TargetKind) -> timedelta | None:
        target: timedelta | None = getattr(self, kind.value)
        return target


class SlaState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"


class TimeUnit(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


def _utc(value: datetime) -> datetime:
    # Subtracting two datetimes of one zone gives wall-clock time, not real time.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def start_due(calendar: BusinessCalendar, started_at: datetime, target: timedelta) -> datetime:
    """The deadline (UTC) of a clock started at `started_at` with `target` business time."""
    return calendar.add_business_time(started_at, target)


def pause(calendar: BusinessCalendar, now: datetime, due_at: datetime) -> timedelta:
    """What is left of a clock paused at `now`: business time until `due_at`, or minus the real time since a breach.

    Zero when `now` is exactly the deadline (which counts as breached, see `state`).
    """
    now, due_at = _utc(now), _utc(due_at)
    if due_at <= now:
        return due_at - now
    return calendar.business_time_between(now, due_at)


def resume(calendar: BusinessCalendar, now: datetime, remaining: timedelta) -> datetime:
    """The new deadline (UTC) of a clock resumed at `now` with what `pause` left.

    A positive `remaining` is business time from `now`; zero or negative stays breached, `-remaining` real time ago.
    """
    if remaining <= timedelta(0):
        return _utc(now) + remaining
    return calendar.add_business_time(now, remaining)


def state(now: datetime, due_at: datetime, warn_before: timedelta) -> SlaState:
    """Breached from the deadline on; a warning in the real time `warn_before` before it; else ok."""
    now, due_at = _utc(now), _utc(due_at)
    if now >= due_at:
        return SlaState.BREACHED
    if due_at - now <= warn_before:
        return SlaState.WARNING
    return SlaState.OK


def next_check(now: datetime, due_at: datetime, warn_before: timedelta) -> datetime | None:
    """When a sweeper must look at this clock next (UTC): the warning, then the breach; None once breached."""
    now, due_at = _utc(now), _utc(due_at)
    warn_at = due_at - warn_before
    if now < warn_at:
        return warn_at
    if now < due_at:
        return due_at
    return None


_UNIT_TEXT = {TimeUnit.MINUTE: "min", TimeUnit.HOUR: "h", TimeUnit.DAY: "d"}


@dataclass(frozen=True, slots=True)
class DueText:
    """What a list shows for a deadline, for the web layer to phrase with gettext ("due in 23 min").

    `minutes` is the exact whole minutes to the deadline (rounded up) or since the breach (rounded down); `amount`
    is the same time in `unit`, rounded to the nearest: minutes under an hour, hours under two days, else days.
    `amount` is 0 only for a breach less than a minute ago ("breached just now").
    """

    state: SlaState
    minutes: int
    unit: TimeUnit
    amount: int

    def __str__(self) -> str:
        """An English fallback; the web layer translates from the fields instead."""
        if self.state is SlaState.BREACHED:
            return "breached just now" if not self.amount else f"breached {self.amount} {_UNIT_TEXT[self.unit]} ago"
        return f"due in {self.amount} {_UNIT_TEXT[self.unit]}"


def describe(now: datetime, due_at: datetime, warn_before: timedelta = timedelta(0)) -> DueText:
    """How far `due_at` is from `now`, for "due in 23 min" / "breached 2 h ago"."""
    seconds = (_utc(due_at) - _utc(now)).total_seconds()
    # Rounded up before the deadline: never "due in 0 min" while there is still time.
    minutes = math.ceil(seconds / 60) if seconds > 0 else math.floor(-seconds / 60)
    if minutes < 60:
        unit, amount = TimeUnit.MINUTE, minutes
    elif minutes < 48 * 60:
        unit, amount = TimeUnit.HOUR, (minutes + 30) // 60
    else:
        unit, amount = TimeUnit.DAY, (minutes + 720) // 1440
    return DueText(state(now, due_at, warn_before), minutes, unit, amount)
