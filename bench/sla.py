"""SLA arithmetic benchmark: `add_business_time` and `business_time_between` rates for short and long targets.

Prints operations/s on one core for targets of 1 h, 8 h and 30 days (720 business hours) on a Europe/Berlin
09:00-17:00 Monday-Friday calendar with 200 holidays, and on a 24x7 Berlin calendar with the same holidays (the
day-by-day path, not the real-time shortcut). Beside them, the rate of the obvious alternative measured in the same
run: stepping minute by minute and asking whether the calendar is open.

    python bench/sla.py [--seconds S]

Figures, not pass/fail.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from postdesk.sla.business_hours import DAY_KEYS, WHOLE_DAY, BusinessCalendar  # noqa: E402

BERLIN = ZoneInfo("Europe/Berlin")
TARGETS = {"1 h": timedelta(hours=1), "8 h": timedelta(hours=8), "30 days": timedelta(days=30)}


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per second of `operation`, run for about `seconds`."""
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(10):
            operation()
        calls += 10
    return calls / elapsed


def minute_steps(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The baseline: walk a minute at a time, counting the open ones."""
    at, left, minute = start, duration, timedelta(minutes=1)
    while left > timedelta(0):
        if calendar.is_open(at):
            left -= minute
        at += minute
    return at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent on each figure")
    args = parser.parse_args()
    # Every third day from January 2026: 200 holidays spread over the range the 30-day target crosses.
    holidays = frozenset(date(2026, 1, 2) + timedelta(days=3 * index) for index in range(200))
    office = BusinessCalendar.from_hours("Europe/Berlin", {key: ["09:00-17:00"] for key in DAY_KEYS[:5]}, holidays)
    always = BusinessCalendar("Europe/Berlin", tuple((WHOLE_DAY,) for _ in DAY_KEYS), holidays)
    start = datetime(2026, 3, 27, 16, 30, tzinfo=BERLIN)  # a Friday afternoon before the spring-forward night
    print(f"{'calendar':<34} {'target':>8} {'add ops/s':>11} {'between ops/s':>14} {'minute steps ops/s':>19}")
    for label, calendar in (("09-17 Mon-Fri, 200 holidays", office), ("24x7, 200 holidays", always)):
        for name, target in TARGETS.items():
            due = calendar.add_business_time(start, target)
            assert calendar.business_time_between(start, due) == target
            add = rate(partial(calendar.add_business_time, start, target), args.seconds)
            between = rate(partial(calendar.business_time_between, start, due), args.seconds)
            baseline = ""
            if target <= timedelta(hours=8):  # a 30-day walk would take minutes per call
                steps = rate(partial(minute_steps, calendar, start, target), args.seconds)
                baseline = f"{steps:,.0f}"
            print(f"{label:<34} {name:>8} {add:>11,.0f} {between:>14,.0f} {baseline:>19}")


if __name__ == "__main__":
    main()
