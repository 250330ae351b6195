"""Where triage, rules, routing, SLA clocks and the acknowledgement meet the conversation's changes (DESIGN.md §4, §7).

Two entry points, both inside the transaction that writes the change, so a decision and the change it
explains commit together (and a crash leaves neither):

- `after_inbound` — processing.py, once a customer's mail is in its conversation: the steps triage →
  rules → route → sla → acknowledge, each recorded on the ReceivedMail like the steps before it.
- `after_event` — actions._event, for every timeline event an agent (or a rule) causes: the SLA clocks
  follow the status, and the rules see the matching trigger.

Rules never loop: while a rule's actions are being applied, the events they write update the clocks
but do not trigger rules again (the pure engine's `cascade` evaluates the follow-up triggers itself,
each rule at most once per chain).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from django.db import transaction

from postdesk.desk import acknowledge, routing, rule_runner, sla_clock, triage_step
from postdesk.desk.models import Conversation, EventKind, Message
from postdesk.triage.rules import Trigger

# How processing.py records a step: its name, and the work, which returns a one-line description of the outcome.
StepRecorder = Callable[[str, Callable[[], str]], object]

_applying_rules: ContextVar[bool] = ContextVar("postdesk_applying_rules", default=False)

# The rule trigger each timeline event stands for; events not listed trigger no rules.
TRIGGER_OF_EVENT: dict[str, Trigger] = {
    EventKind.REPLIED: Trigger.AGENT_REPLIED,
    EventKind.NOTED: Trigger.NOTE_ADDED,
    EventKind.ASSIGNED: Trigger.ASSIGNEE_CHANGED,
    EventKind.STATUS: Trigger.STATUS_CHANGED,
    EventKind.SNOOZED: Trigger.STATUS_CHANGED,
    EventKind.WOKE: Trigger.STATUS_CHANGED,
    EventKind.SPAM: Trigger.STATUS_CHANGED,
    EventKind.PRIORITY: Trigger.PRIORITY_CHANGED,
}

# Events after which an agent may have room for another conversation from the team queue.
FREES_CAPACITY = frozenset({EventKind.STATUS, EventKind.ASSIGNED, EventKind.SPAM, EventKind.MERGED})


@contextmanager
def applying_rules() -> Iterator[None]:
    """While a rule's actions run, the events they write do not trigger rules again."""
    token = _applying_rules.set(True)
    try:
        yield
    finally:
        _applying_rules.reset(token)


def after_inbound(
    message: Message,
    understanding: triage_step.Understanding,
    *,
    created: bool,
    quiet: bool,
    now: datetime,
    record: StepRecorder,
) -> None:
    """A customer's mail landed in its conversation: decide what it is, who takes it, by when; acknowledge it.

    `quiet` (imported history) still records what the mail is about, but starts no clocks, runs no rules,
    assigns nobody and sends nothing.
    """
    conversation = message.conversation
    record("triage", lambda: triage_step.apply(message, understanding, created=created, now=now))
    if quiet:
        return
    trigger = Trigger.CONVERSATION_CREATED if created else Trigger.CUSTOMER_REPLIED
    record("rules", lambda: rule_runner.run(conversation, trigger, now=now, message=message))
    record("route", lambda: routing.route(conversation, now=now))
    record("sla", lambda: sla_clock.on_inbound(conversation, created=created, now=now))
    if created:
        record("acknowledge", lambda: acknowledge.acknowledge(conversation, message, now=now))


def after_event(conversation: Conversation, kind: str, *, now: datetime) -> None:
    """An agent's or a rule's change to `conversation` was written as a timeline event of `kind`."""
    trigger = TRIGGER_OF_EVENT.get(kind)
    sla_clock.on_event(conversation, kind, now=now)
    if trigger is not None and not _applying_rules.get():
        rule_runner.run(conversation, trigger, now=now)
    if kind in FREES_CAPACITY:
        team_id = conversation.team_id
        transaction.on_commit(lambda: routing.hand_out_soon(team_id))
