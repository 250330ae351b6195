"""SLA deadlines in words for lists and the conversation page: "due in 23 min", "breached 2 h ago", "SLA paused"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from postdesk.desk.models import Conversation, SlaPolicy
from postdesk.sla.clock import SlaState, TimeUnit, describe

DEFAULT_WARN_BEFORE = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class DueLabel:
    state: str  # ok, warning, breached or paused: also the CSS class
    text: str  # "due in 23 min"
    title: str  # "Due 2026-11-25 10:00": the exact deadline, for the tooltip


def _phrase(state: SlaState, unit: TimeUnit, amount: int) -> str:
    if state is SlaState.BREACHED:
        if amount == 0:
            return _("breached just now")
        if unit is TimeUnit.MINUTE:
            return ngettext("breached %(n)d min ago", "breached %(n)d min ago", amount) % {"n": amount}
        if unit is TimeUnit.HOUR:
            return ngettext("breached %(n)d h ago", "breached %(n)d h ago", amount) % {"n": amount}
        return ngettext("breached %(n)d day ago", "breached %(n)d days ago", amount) % {"n": amount}
    if unit is TimeUnit.MINUTE:
        return ngettext("due in %(n)d min", "due in %(n)d min", amount) % {"n": amount}
    if unit is TimeUnit.HOUR:
        return ngettext("due in %(n)d h", "due in %(n)d h", amount) % {"n": amount}
    return ngettext("due in %(n)d day", "due in %(n)d days", amount) % {"n": amount}


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
        text = describe(self.now, due, self._warning_time(conversation.sla_policy_id))
        key = (text.state, text.unit, text.amount)
        phrase = self._phrases.get(key)
        if phrase is None:
            phrase = self._phrases[key] = _phrase(text.state, text.unit, text.amount)
        local = timezone.localtime(due).strftime("%Y-%m-%d %H:%M")
        return DueLabel(str(text.state), phrase, _("Due %(when)s") % {"when": local})
