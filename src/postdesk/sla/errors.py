"""The SLA package's errors: bad calendar or policy data, each with a message an administrator can act on.

SlaError (ValueError)
├── CalendarError   weekly hours, time zone, holidays or an iCal feed that cannot be used
└── PolicyError     targets or conditions of an SLA policy that cannot be used
"""

from __future__ import annotations


class SlaError(ValueError):
    """Bad SLA data given by a user; `str(error)` is the message to show them."""


class CalendarError(SlaError):
    """A business calendar (hours, time zone, holidays, iCal data) that cannot be used."""


class PolicyError(SlaError):
    """An SLA policy whose targets or conditions cannot be used."""
