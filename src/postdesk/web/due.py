"""SLA deadlines in words for lists and the conversation page: "due in 23 min", "breached 2 h ago", "SLA paused"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from postdesk.desk import sla_clock
from postdesk.desk.models import Conversation, SlaPolicy
from postdesk.sla.clock import SlaState, TimeUnit, describe

DEFAULT_WARN_BEFORE = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class DueLabel:
    state: str  # ok, warning, breached or paused: also the CSS class
    text: str  # "due in 23 min"
    title: str  # "Due 2026-11-25 10:00": the exact deadline, for the tooltip


@dataclass(slots=True)
class DueTexts:
    """Deadline words for the rows of one page: each policy's warning time read once, each phrase made once."""

    now: datetime
    warn_before: dict[int, timedelta] = field(default_factory=dict)
    _phrases: dict[tuple[SlaState, TimeUnit, int], str] = field(default_factory=dict)
    _loaded: bool = False

    def _warning_time(self, policy_id: int | None) -> timedelta:
        if not self._loaded:
            policies = SlaPolicy.objects.values_list("pk", "warn_before_minutes")
            self.warn_before = {pk: timedelta(minutes=minutes) for pk, minutes in policies}
            self._loaded = True
        return self.warn_before.get(policy_id or 0, DEFAULT_WARN_BEFORE)

    def label(self, conversation: Conversation) -> DueLabel | None:
        """The nearest running deadline, "SLA paused" while waiting on the customer, or None without an SLA."""
        due = conversation.sla_due_at
        if due is None:
            if conversation.sla_paused:
                return DueLabel("paused", _("SLA paused"), _("Waiting on the customer: the SLA clock is paused."))
            return None
        warn_before = self._warning_time(conversation.sla_policy_id)
        text = describe(self.now, due, warn_before)
        key = (text.state, text.unit, text.amount)
        phrase = self._phrases.get(key)
        if phrase is None:
            phrase = self._phrases[key] = sla_clock.due_text(self.now, due, warn_before)
        local = timezone.localtime(due).strftime("%Y-%m-%d %H:%M")
        return DueLabel(str(text.state), phrase, _("Due %(when)s") % {"when": local})
