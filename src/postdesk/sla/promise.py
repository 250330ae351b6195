"""The reply time an acknowledgement promises: the SLA deadline, or later when the team's backlog needs longer.

The promise is the later of two moments, both in business time from `now`:

- the first-response deadline (what the SLA commits to; the promise is never earlier);
- when the agents on shift will have worked through the backlog: `backlog / agents_on_shift * median_handle`.

`backlog` counts the conversations awaiting a first reply in the team's queue including the new one, so one agent
with an empty queue promises the SLA deadline or one median handle time, whichever is later. With nobody on shift
the backlog is counted as one agent's work: someone comes on shift when the calendar opens, and business time
already skips the closed hours. `round_up` / `readable_promise` then make the time read well ("by 14:30").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from postdesk.sla.business_hours import BusinessCalendar

QUARTER_HOUR = timedelta(minutes=15)
HOUR = timedelta(hours=1)
# Promises further out than this are rounded to the hour, nearer ones to the quarter hour.
_HOUR_ROUNDING_FROM = timedelta(hours=2)


def backlog_time(backlog: int, agents_on_shift: int, median_handle: timedelta) -> timedelta:
    """Business time the agents on shift need to work through `backlog` conversations."""
    if backlog < 0 or agents_on_shift < 0:
        raise ValueError(f"backlog and agents cannot be negative, got {backlog} and {agents_on_shift}")
    if median_handle < timedelta(0):
        raise ValueError(f"the median handle time cannot be negative, got {median_handle}")
    return median_handle * backlog / max(agents_on_shift, 1)


def promised_reply_time(
    calendar: BusinessCalendar,
    now: datetime,
    first_response_target: timedelta,
    backlog: int,
    agents_on_shift: int,
    median_handle: timedelta,
) -> datetime:
    """When the customer can expect an answer (UTC, unrounded): see the module docstring."""
    sla_due = calendar.add_business_time(now, first_response_target)
    queue_clear = calendar.add_business_time(now, backlog_time(backlog, agents_on_shift, median_handle))
    return max(sla_due, queue_clear)


def round_up(at: datetime, step: timedelta, time_zone: ZoneInfo) -> datetime:
    """`at` rounded up (UTC) to the next multiple of `step` on the local clock of `time_zone` (unchanged if on one).

    Works in the UTC offset in force at `at`, so Asia/Tehran (UTC+03:30) rounds to its own hours; the result is
    never before `at`.
    """
    if at.tzinfo is None:
        raise ValueError(f"at must be a timezone-aware datetime, got {at!r}")
    if step <= timedelta(0) or timedelta(days=1) % step:
        raise ValueError(f"the rounding step must divide a day, got {step}")
    offset = at.astimezone(time_zone).utcoffset() or timedelta(0)
    # Local wall time as a distance from the epoch, rounded up on that scale, then shifted back.
    local = at.astimezone(UTC) + offset - datetime(1970, 1, 1, tzinfo=UTC)
    rounded = -(-local // step) * step
    return datetime(1970, 1, 1, tzinfo=UTC) + rounded - offset


def readable_promise(now: datetime, promised: datetime, time_zone: ZoneInfo) -> datetime:
    """The promise as an acknowledgement states it: up to the quarter hour when within two hours, else the hour."""
    step = QUARTER_HOUR if promised.astimezone(UTC) - now.astimezone(UTC) <= _HOUR_ROUNDING_FROM else HOUR
    return round_up(promised, step, time_zone)
