"""SLA clocks on conversations: the policy, the due_at columns, pauses, and the sweep for warnings and breaches.

Each of a conversation's three clocks (`sla.clock.TargetKind`) is in one of three states, kept on the row:

- running: its `*_due_at` column holds the deadline;
- paused (status pending or snoozed, i.e. waiting on the customer): the column is empty and `sla_paused[kind]`
  holds the business seconds that were left (negative: real seconds since a breach, see `sla.clock.pause`);
- stopped: neither (met, missed, or not a target of the policy).

`sla_due_at` is the earliest running deadline (what lists show and sort by); `sla_check_at` is when `sweep` must
look next: the warning time of a clock not yet warned about, else its deadline, else never. `sla_notices` records
what was announced as "kind:state:due-isoformat", so a warning or breach is announced once; while a clock is
paused its keys read "kind:state:paused" and get the new deadline back on resume, so a pause does not announce a
breach a second time.

Everything here runs inside the caller's transaction with the conversation's row locked (intake, an agent's
action, or the sweep's own lock), and saves only the fields it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from postdesk.desk import access, calendars
from postdesk.desk.models import (
    Conversation,
    Event,
    EventKind,
    Notification,
    OutboundState,
    Priority,
    Status,
    Team,
)
from postdesk.desk.models import SlaPolicy as PolicyRow
from postdesk.sla import clock
from postdesk.sla.business_hours import BusinessCalendar
from postdesk.sla.clock import SlaState, TargetKind, Targets, TimeUnit
from postdesk.sla.errors import PolicyError
from postdesk.sla.policy import PolicyFacts, SlaPolicy, choose_policy
from postdesk.triage.rules import Trigger

log = logging.getLogger(__name__)

DUE_FIELD = {
    TargetKind.FIRST_RESPONSE: "first_response_due_at",
    TargetKind.NEXT_RESPONSE: "next_response_due_at",
    TargetKind.RESOLUTION: "resolution_due_at",
}
RUNNING = frozenset({Status.NEW, Status.OPEN})
PAUSING = frozenset({Status.PENDING, Status.SNOOZED})
ENDING = frozenset({Status.RESOLVED, Status.CLOSED, Status.SPAM, Status.MERGED})
# A resolved or closed conversation met its resolution target; spam and merged ones simply stop counting.
_RESOLVING = frozenset({Status.RESOLVED, Status.CLOSED})
DEFAULT_WARN_BEFORE = timedelta(minutes=30)
_RAISED = {Priority.LOW: Priority.NORMAL, Priority.NORMAL: Priority.HIGH, Priority.HIGH: Priority.URGENT}
SWEEP_BATCH = 200
_SWEEP_MAX_BATCHES = 50
_MAX_NOTICES = 30
_PAUSED = "paused"

# While the sweep raises a priority itself, the PRIORITY event must not choose another policy: an escalation that
# switched to a stricter policy would be breached at once, raise again, and so on up to urgent.
_escalating: ContextVar[bool] = ContextVar("postdesk_sla_escalating", default=False)


@contextmanager
def _escalation() -> Iterator[None]:
    token = _escalating.set(True)
    try:
        yield
    finally:
        _escalating.reset(token)


# --- policies -------------------------------------------------------------------------------------------------


def _minutes(value: int | None) -> int | None:
    # The admin form refuses 0, but a row written another way must not break intake: 0 means "no target".
    return value if value else None


def policy_from_row(row: PolicyRow, mailbox_ids: Iterable[int] = ()) -> SlaPolicy:
    """The pure policy of a SlaPolicy row; `PolicyError` when its data cannot be used."""
    return SlaPolicy(
        id=row.pk,
        name=row.name,
        targets=Targets.from_minutes(
            _minutes(row.first_response_minutes), _minutes(row.next_response_minutes), _minutes(row.resolution_minutes)
        ),
        order=row.order,
        priorities=frozenset(str(value) for value in row.priorities or ()),
        mailbox_ids=frozenset(mailbox_ids),
        categories=frozenset(str(value) for value in row.categories or ()),
        contact_tiers=frozenset(str(value) for value in row.tiers or ()),
        warn_before=timedelta(minutes=row.warn_before_minutes),
        calendar_id=row.calendar_id,
        enabled=row.enabled,
    )


def enabled_policies() -> list[SlaPolicy]:
    """Every enabled policy, in two queries; a policy whose data cannot be used is logged and left out."""
    rows = list(PolicyRow.objects.filter(enabled=True))
    links = PolicyRow.mailboxes.through.objects.filter(slapolicy_id__in=[row.pk for row in rows])
    mailboxes: dict[int, set[int]] = {}
    for policy_id, mailbox_id in links.values_list("slapolicy_id", "mailbox_id"):
        mailboxes.setdefault(policy_id, set()).add(mailbox_id)
    policies = []
    for row in rows:
        try:
            policies.append(policy_from_row(row, mailboxes.get(row.pk, ())))
        except PolicyError as error:
            log.warning("SLA policy %s (%s) cannot be used: %s", row.pk, row.name, error)
    return policies


def facts_of(conversation: Conversation) -> PolicyFacts:
    """What policy conditions look at, as triage and the rules left them."""
    return PolicyFacts(
        priority=conversation.priority,
        mailbox_id=conversation.mailbox_id,
        category=conversation.category or None,
        contact_tier=conversation.contact.tier or None,
    )


def _policy_of(conversation: Conversation) -> SlaPolicy | None:
    if conversation.sla_policy_id is None:
        return None
    return _policy_or_none(PolicyRow.objects.filter(pk=conversation.sla_policy_id).first())


# --- the clocks on the row ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Clocks:
    """A conversation's clocks being changed, and which columns changed (saved with update_fields)."""

    conversation: Conversation
    policy_calendar_id: int | None
    warn_before: timedelta
    changed: set[str] = field(default_factory=set)
    _calendar: BusinessCalendar | None = None

    @property
    def calendar(self) -> BusinessCalendar:
        # Read only when a clock moves: most events (and conversations without SLA) never need it.
        if self._calendar is None:
            self._calendar = calendars.calendar_for(self.conversation, self.policy_calendar_id)
        return self._calendar

    def due(self, kind: TargetKind) -> datetime | None:
        value: datetime | None = getattr(self.conversation, DUE_FIELD[kind])
        return value

    def remaining(self, kind: TargetKind) -> timedelta | None:
        seconds = (self.conversation.sla_paused or {}).get(kind.value)
        return None if seconds is None else timedelta(seconds=float(seconds))

    def is_on(self, kind: TargetKind) -> bool:
        return self.due(kind) is not None or self.remaining(kind) is not None

    @property
    def any_on(self) -> bool:
        return any(self.is_on(kind) for kind in TargetKind)

    def set(self, name: str, value: object) -> None:
        if getattr(self.conversation, name) != value:
            setattr(self.conversation, name, value)
            self.changed.add(name)

    def run(self, kind: TargetKind, due: datetime) -> None:
        self._unpause(kind)
        self.set(DUE_FIELD[kind], due)

    def pause(self, kind: TargetKind, remaining: timedelta) -> None:
        self.set(DUE_FIELD[kind], None)
        paused = dict(self.conversation.sla_paused or {})
        paused[kind.value] = remaining.total_seconds()
        self.set("sla_paused", paused)

    def stop(self, kind: TargetKind) -> None:
        self.set(DUE_FIELD[kind], None)
        self._unpause(kind)

    def _unpause(self, kind: TargetKind) -> None:
        paused = dict(self.conversation.sla_paused or {})
        if paused.pop(kind.value, None) is not None:
            self.set("sla_paused", paused)

    def met_if_stopped_now(self, kind: TargetKind, now: datetime) -> bool | None:
        """Whether the clock would be met if it stopped at `now`; None when it is not on."""
        due = self.due(kind)
        if due is not None:
            return now < due
        remaining = self.remaining(kind)
        return None if remaining is None else remaining > timedelta(0)

    # -- announcements

    @property
    def notices(self) -> list[str]:
        return list(self.conversation.sla_notices or [])

    def announced(self, kind: TargetKind, state: SlaState, due: datetime) -> bool:
        return _notice(kind, state, due) in self.notices

    def add_notices(self, keys: Iterable[str]) -> None:
        notices = self.notices
        notices += [key for key in keys if key not in notices]
        self.set("sla_notices", notices[-_MAX_NOTICES:])

    def _move_notices(self, kind: TargetKind, old: str, new: str) -> None:
        prefix = f"{kind.value}:"
        notices = [
            key[: -len(old)] + new if key.startswith(prefix) and key.endswith(f":{old}") else key
            for key in self.notices
        ]
        self.set("sla_notices", notices)

    def pause_notices(self, kind: TargetKind, due: datetime) -> None:
        self._move_notices(kind, _iso(due), _PAUSED)

    def resume_notices(self, kind: TargetKind, due: datetime) -> None:
        self._move_notices(kind, _PAUSED, _iso(due))

    # -- derived columns

    def refresh(self) -> None:
        """sla_due_at and sla_check_at from the running clocks and what was already announced."""
        running = [(kind, due) for kind in TargetKind if (due := self.due(kind)) is not None]
        self.set("sla_due_at", min((due for _kind, due in running), default=None))
        checks = [self._check_time(kind, due) for kind, due in running]
        self.set("sla_check_at", min((at for at in checks if at is not None), default=None))

    def _check_time(self, kind: TargetKind, due: datetime) -> datetime | None:
        # Like sla.clock.next_check, but by what was announced rather than by the time: a clock resumed inside
        # its warning window still gets its warning (at once), and a breach already announced is not looked at.
        if self.announced(kind, SlaState.BREACHED, due):
            return None
        if self.announced(kind, SlaState.WARNING, due) or not self.warn_before:
            return due
        return due - self.warn_before

    def save(self) -> None:
        if self.changed:
            self.conversation.save(update_fields=sorted(self.changed))
            self.changed.clear()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _notice(kind: TargetKind, state: SlaState, due: datetime) -> str:
    return f"{kind.value}:{state.value}:{_iso(due)}"


def _clocks(conversation: Conversation, policy: SlaPolicy | None) -> _Clocks:
    if policy is None:
        return _Clocks(conversation, None, DEFAULT_WARN_BEFORE)
    return _Clocks(conversation, policy.calendar_id, policy.warn_before)


def _resolution_was_met(conversation: Conversation) -> bool:
    """Whether the conversation was resolved or closed before (a customer may have reopened it since)."""
    if conversation.resolved_at is not None or conversation.closed_at is not None:
        return True
    return Event.objects.filter(
        conversation=conversation, kind=EventKind.STATUS, data__after__in=[Status.RESOLVED, Status.CLOSED]
    ).exists()


def _apply_policy(clocks: _Clocks, previous: SlaPolicy | None, policy: SlaPolicy, now: datetime) -> None:
    """Start `policy`'s clocks, counted from the conversation's start, keeping what is already met or stopped.

    A clock is (re)computed when it is on now, or when the previous policy did not have that target and the
    clock would run: first response until an agent answered, next response while the customer waits for a
    second answer, resolution until the conversation was resolved once.
    """
    conversation = clocks.conversation
    clocks.set("sla_policy_id", policy.id)
    for kind in TargetKind:
        target = policy.targets.get(kind)
        if target is None or conversation.status in ENDING:
            # A resolved, closed, spam or merged conversation keeps its new policy for when it is reopened.
            clocks.stop(kind)
            continue
        was_on = clocks.is_on(kind)
        newly = previous is None or previous.targets.get(kind) is None
        start: datetime | None = None
        if kind is TargetKind.FIRST_RESPONSE:
            if conversation.first_responded_at is None and (was_on or newly):
                start = conversation.created_at
        elif kind is TargetKind.NEXT_RESPONSE:
            waiting = conversation.first_responded_at is not None and conversation.waiting_since is not None
            if was_on or (newly and waiting):
                start = conversation.waiting_since or now
        elif conversation.status not in ENDING and (was_on or (newly and not _resolution_was_met(conversation))):
            start = conversation.created_at
        if start is None:
            clocks.stop(kind)
            continue
        due = clock.start_due(clocks.calendar, start, target)
        if conversation.status in PAUSING:
            clocks.pause(kind, clock.pause(clocks.calendar, now, due))
        else:
            clocks.run(kind, due)


def _due_summary(clocks: _Clocks) -> dict[str, str]:
    return {kind.value: _iso(due) for kind in TargetKind if (due := clocks.due(kind)) is not None}


def _write_sla_event(conversation: Conversation, **data: object) -> Event:
    from postdesk.desk import actions

    # Typed as Any only so mypy lets the keywords through to _event's **data (none of them is `message`).
    fields: dict[str, Any] = dict(data)
    return actions._event(conversation, None, EventKind.SLA, **fields)


def _describe(policy: SlaPolicy, clocks: _Clocks) -> str:
    parts = [
        f"{kind.replace('_', ' ')} by {due.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        for kind in TargetKind
        if (due := clocks.due(kind)) is not None
    ]
    parts += [f"{kind.replace('_', ' ')} paused" for kind in TargetKind if clocks.remaining(kind) is not None]
    return f"policy {policy.name}: " + (", ".join(parts) or "no clock running")


def _choose_again(conversation: Conversation, now: datetime, *, reason: str) -> tuple[_Clocks, SlaPolicy | None, str]:
    """Choose the policy from the current facts; when it differs, recompute the clocks and write an SLA event."""
    current = _policy_of(conversation)
    chosen = choose_policy(enabled_policies(), facts_of(conversation))
    if chosen is None:
        clocks = _clocks(conversation, current)
        if conversation.sla_policy_id is None and not clocks.any_on:
            return clocks, None, "no SLA policy matches"
        for kind in TargetKind:
            clocks.stop(kind)
        clocks.set("sla_policy_id", None)
        clocks.refresh()
        _write_sla_event(conversation, policy=None, previous=current.name if current else None, reason=reason)
        return clocks, None, "no SLA policy matches any more: clocks stopped"
    if current is not None and chosen.id == current.id:
        return _clocks(conversation, chosen), chosen, ""
    clocks = _clocks(conversation, chosen)
    _apply_policy(clocks, current, chosen, now)
    clocks.refresh()
    _write_sla_event(
        conversation,
        policy=chosen.name,
        policy_id=chosen.id,
        previous=current.name if current else None,
        due=_due_summary(clocks),
        paused=dict(conversation.sla_paused or {}),
        reason=reason,
    )
    return clocks, chosen, _describe(chosen, clocks)


# --- following the conversation -------------------------------------------------------------------------------


def _follow_status(clocks: _Clocks, now: datetime) -> dict[str, list[str]]:
    """Pause, resume or stop the clocks as the status says; returns what stopped as met or missed."""
    conversation = clocks.conversation
    outcome: dict[str, list[str]] = {}
    for kind in TargetKind:
        due, remaining = clocks.due(kind), clocks.remaining(kind)
        if conversation.status in RUNNING and remaining is not None:
            resumed = clock.resume(clocks.calendar, now, remaining)
            clocks.run(kind, resumed)
            clocks.resume_notices(kind, resumed)
        elif conversation.status in PAUSING and due is not None:
            clocks.pause(kind, clock.pause(clocks.calendar, now, due))
            clocks.pause_notices(kind, due)
        elif conversation.status in ENDING and (due is not None or remaining is not None):
            if kind is TargetKind.RESOLUTION and conversation.status in _RESOLVING:
                met = clocks.met_if_stopped_now(kind, now)
                outcome.setdefault("met" if met else "missed", []).append(kind.value)
            clocks.stop(kind)
    return outcome


def _annotate(conversation: Conversation, kind: str, sla: dict[str, object]) -> None:
    """Add what the SLA made of an event to that event (the newest of its kind: the one just written)."""
    event = Event.objects.filter(conversation=conversation, kind=kind).order_by("-id").only("id", "data").first()
    if event is not None:
        Event.objects.filter(pk=event.pk).update(data={**(event.data or {}), "sla": sla})


def _replied(clocks: _Clocks, now: datetime) -> dict[str, object] | None:
    """An agent answered: the first response (once) and the next response are met, or missed, and stop."""
    conversation = clocks.conversation
    event = (
        Event.objects.filter(conversation=conversation, kind=EventKind.REPLIED)
        .order_by("-id")
        .only("id", "actor_id", "data")
        .first()
    )
    if event is None or event.actor_id is None:
        # A reply nobody wrote (a rule's template) is not an agent's response.
        return None
    # What the reply changed, so that undoing the send can put it back.
    undo = {
        "first_responded_at": _iso(conversation.first_responded_at) if conversation.first_responded_at else None,
        "due": {kind.value: _iso(due) for kind in _RESPONSES if (due := clocks.due(kind)) is not None},
        "paused": {kind.value: s for kind in _RESPONSES if (s := (conversation.sla_paused or {}).get(kind.value))},
    }
    met: list[str] = []
    missed: list[str] = []
    if conversation.first_responded_at is None:
        clocks.set("first_responded_at", now)
    for kind in _RESPONSES:
        in_time = clocks.met_if_stopped_now(kind, now)
        if in_time is not None:
            (met if in_time else missed).append(kind.value)
        clocks.stop(kind)
    outcome: dict[str, object] = {"undo": undo}
    if met:
        outcome["met"] = met
    if missed:
        outcome["missed"] = missed
    return outcome


_RESPONSES = (TargetKind.FIRST_RESPONSE, TargetKind.NEXT_RESPONSE)


def _reply_undone(clocks: _Clocks) -> bool:
    """The agent undid a reply before it went out: the customer is still waiting, so its clocks run again."""
    conversation = clocks.conversation
    cancelled = (
        Event.objects.filter(conversation=conversation, kind=EventKind.SEND_CANCELLED)
        .order_by("-id")
        .values_list("message_id", flat=True)
        .first()
    )
    if cancelled is None:
        return False
    replied = Event.objects.filter(conversation=conversation, kind=EventKind.REPLIED, message_id=cancelled).first()
    undo = (replied.data.get("sla") or {}).get("undo") if replied is not None else None
    if replied is None or not isinstance(undo, dict):
        return False
    answered_since = (
        Event.objects.filter(conversation=conversation, kind=EventKind.REPLIED, id__gt=replied.pk)
        .exclude(actor_id=None)
        .exclude(message__outbound__state=OutboundState.CANCELLED)
        .exists()
    )
    if answered_since:
        return False
    if undo.get("first_responded_at") is None:
        clocks.set("first_responded_at", None)
    for kind in _RESPONSES:
        if clocks.is_on(kind):
            continue
        if (due := (undo.get("due") or {}).get(kind.value)) is not None:
            clocks.run(kind, datetime.fromisoformat(due))
        elif (seconds := (undo.get("paused") or {}).get(kind.value)) is not None:
            clocks.pause(kind, timedelta(seconds=float(seconds)))
    return True


def on_inbound(conversation: Conversation, *, created: bool, now: datetime) -> str:
    """The customer wrote (a new conversation, or again): choose the policy, start or resume the clocks.

    Returns a one-line description for the intake's step log.
    """
    # Triage and the rules ran just before on this row; read what they saved rather than trust this instance.
    conversation.refresh_from_db(
        fields=["priority", "category", "team", "status", "waiting_since", "first_responded_at", "sla_policy"]
    )
    if conversation.status in ENDING:
        return f"no SLA: the conversation is {conversation.status}"
    if created and conversation.waiting_since is None:
        # processing.py leaves waiting_since empty for automatic mail (auto-replies, bounces): nobody waits.
        return "no SLA: automatic mail"
    clocks, policy, description = _choose_again(conversation, now, reason="created" if created else "customer wrote")
    if policy is None:
        clocks.save()
        return description
    if not created:
        _follow_status(clocks, now)
        target = policy.targets.next_response
        waiting = conversation.waiting_since is not None and conversation.first_responded_at is not None
        if target is not None and waiting and not clocks.is_on(TargetKind.NEXT_RESPONSE):
            # The last word was ours: the customer now waits for the next answer.
            clocks.run(TargetKind.NEXT_RESPONSE, clock.start_due(clocks.calendar, now, target))
        clocks.refresh()
        description = description or _describe(policy, clocks)
    clocks.save()
    return description


# The events that can move a clock; the others (notes, tags, SLA events themselves, ...) are ignored at no cost.
_FOLLOWED = frozenset(
    {
        EventKind.REPLIED,
        EventKind.SEND_CANCELLED,
        EventKind.PRIORITY,
        EventKind.CATEGORY,
        EventKind.STATUS,
        EventKind.SNOOZED,
        EventKind.WOKE,
        EventKind.SPAM,
        EventKind.MERGED,
        EventKind.ASSIGNED,
    }
)


def on_event(conversation: Conversation, kind: str, *, now: datetime) -> None:
    """The conversation changed (a timeline event of `kind`): pause, resume, stop or satisfy its clocks.

    - REPLIED by an agent (not a rule): the first response is met (once), the response clocks stop;
    - SEND_CANCELLED (undo-send): what that reply stopped runs again, unless an agent has answered since;
    - PRIORITY, CATEGORY: the policy is chosen again and, when it differs, recomputed from the start;
    - any event: pending/snoozed pause, new/open resume, resolved/closed/spam/merged stop every clock.
    """
    if kind not in _FOLLOWED:
        return
    if kind in (EventKind.PRIORITY, EventKind.CATEGORY) and not _escalating.get():
        clocks, _policy, _description = _choose_again(conversation, now, reason=f"{kind} changed")
    else:
        clocks = _clocks(conversation, _policy_of(conversation))
    if not clocks.any_on and kind not in (EventKind.REPLIED, EventKind.SEND_CANCELLED):
        clocks.save()
        return
    if kind == EventKind.REPLIED:
        outcome = _replied(clocks, now)
        by_status = _follow_status(clocks, now)
        if outcome is not None:
            for key, kinds in by_status.items():
                outcome[key] = [*(outcome.get(key) or []), *kinds]  # type: ignore[misc]
            _annotate(conversation, EventKind.REPLIED, outcome)
    elif kind == EventKind.SEND_CANCELLED:
        _reply_undone(clocks)
        _follow_status(clocks, now)
    else:
        outcome_by_status = _follow_status(clocks, now)
        if outcome_by_status and kind in (EventKind.STATUS, EventKind.SPAM, EventKind.MERGED):
            _annotate(conversation, kind, dict(outcome_by_status))
    clocks.refresh()
    clocks.save()


# --- the sweep ------------------------------------------------------------------------------------------------


def sweep(now: datetime | None = None) -> int:
    """Announce the warnings and breaches that are due; returns how many conversations were looked at.

    Each conversation is handled in its own transaction under its row lock and re-checked there, and what was
    announced is recorded on the row in that transaction: two workers, or two runs, never announce twice.
    """
    now = now or timezone.now()
    looked_at = 0
    failed: set[int] = set()
    for _batch in range(_SWEEP_MAX_BATCHES):
        due = (
            Conversation.objects.filter(sla_check_at__lte=now)
            .exclude(pk__in=failed)
            .order_by("sla_check_at", "id")
            .values_list("pk", flat=True)
        )
        batch = list(due[:SWEEP_BATCH])
        for pk in batch:
            try:
                _sweep_one(pk, now)
            except Exception:
                # One broken conversation (a rule that raises) must not hold up every other deadline.
                log.exception("SLA sweep failed on conversation %s", pk)
                failed.add(pk)
            looked_at += 1
        if len(batch) < SWEEP_BATCH:
            break
    return looked_at


@dataclass(frozen=True, slots=True)
class _Notice:
    kind: TargetKind
    state: SlaState
    due: datetime


def _sweep_one(pk: int, now: datetime) -> None:
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(pk=pk, sla_check_at__lte=now).first()
        if conversation is None:
            return  # another worker got here first, or the clocks moved
        row = PolicyRow.objects.filter(pk=conversation.sla_policy_id).first() if conversation.sla_policy_id else None
        policy = _policy_or_none(row)
        clocks = _clocks(conversation, policy)
        notices: list[_Notice] = []
        for kind in TargetKind:
            due = clocks.due(kind)
            if due is None:
                continue
            state = clock.state(now, due, clocks.warn_before)
            if state is SlaState.BREACHED and not clocks.announced(kind, state, due):
                notices.append(_Notice(kind, state, due))
                clocks.add_notices([_notice(kind, SlaState.WARNING, due), _notice(kind, state, due)])
            elif state is SlaState.WARNING and not clocks.announced(kind, state, due):
                notices.append(_Notice(kind, state, due))
                clocks.add_notices([_notice(kind, state, due)])
        clocks.refresh()
        clocks.save()
        for notice in notices:
            _announce(conversation, row, notice, now)


def _policy_or_none(row: PolicyRow | None) -> SlaPolicy | None:
    if row is None:
        return None
    try:
        return policy_from_row(row)
    except PolicyError:
        return None


def _target_name(kind: TargetKind) -> str:
    return {
        TargetKind.FIRST_RESPONSE: _("first response"),
        TargetKind.NEXT_RESPONSE: _("next response"),
        TargetKind.RESOLUTION: _("resolution"),
    }[kind]


def _announce(conversation: Conversation, row: PolicyRow | None, notice: _Notice, now: datetime) -> None:
    """Tell the people the policy names, escalate a breach as the policy says, and let the rules react."""
    from postdesk.desk import actions, rule_runner

    breached = notice.state is SlaState.BREACHED
    event = _write_sla_event(
        conversation,
        **{"breach" if breached else "warning": notice.kind.value},
        due=_iso(notice.due),
        policy=row.name if row is not None else None,
    )
    label = due_text(now, notice.due)
    if breached:
        text = _("#%(number)s: the %(target)s is overdue (%(when)s, policy %(policy)s)")
    else:
        text = _("#%(number)s: the %(target)s is %(when)s (policy %(policy)s)")
    text %= {
        "number": conversation.number,
        "target": _target_name(notice.kind),
        "when": label,
        "policy": row.name if row is not None else "-",
    }
    recipients: list[int] = []
    owner = conversation.assignee_id
    supervisors = _supervisors(conversation.team_id)
    if row is not None:
        if row.notify_owner and owner is not None:
            recipients.append(owner)
        # Before a breach the supervisors hear of it only when nobody owns the conversation.
        if row.notify_supervisor and (breached or owner is None):
            recipients += supervisors
    Notification.objects.bulk_create(
        Notification(recipient_id=user_id, conversation=conversation, event=event, text=text[:500], created_at=now)
        for user_id in dict.fromkeys(recipients)
    )
    if breached and row is not None:
        raised = _RAISED.get(Priority(conversation.priority)) if row.raise_priority else None
        if raised is not None:
            before = conversation.priority
            conversation.priority = raised
            conversation.updated_at = now
            conversation.save(update_fields=["priority", "updated_at"])
            with _escalation():
                actions._event(conversation, None, EventKind.PRIORITY, before=before, after=raised, reason="sla")
        if row.reassign_to_id is not None and row.reassign_to_id != conversation.team_id:
            team = Team.objects.filter(pk=row.reassign_to_id).first()
            if team is not None:
                conversation.team = team
                conversation.assignee_id = None
                conversation.updated_at = now
                conversation.save(update_fields=["team", "assignee", "updated_at"])
                actions._event(
                    conversation,
                    None,
                    EventKind.ASSIGNED,
                    assignee=None,
                    assignee_name="",
                    team=team.pk,
                    team_name=team.name,
                    reason="sla",
                )
    rule_runner.run(conversation, Trigger.SLA_BREACH if breached else Trigger.SLA_WARNING, now=now)


def _supervisors(team_id: int | None) -> list[int]:
    return list(access.supervisors_of(team_id).values_list("pk", flat=True)) if team_id is not None else []


# --- what lists show ------------------------------------------------------------------------------------------


def due_text(now: datetime, due_at: datetime, warn_before: timedelta = timedelta(0)) -> str:
    """ "due in 23 min", "due in 3 h", "due in 2 d", "breached 2 h ago", "breached just now" (translated)."""
    described = clock.describe(now, due_at, warn_before)
    amount = described.amount
    if described.state is SlaState.BREACHED:
        if amount == 0:
            return _("breached just now")
        if described.unit is TimeUnit.MINUTE:
            return ngettext("breached %(n)s min ago", "breached %(n)s min ago", amount) % {"n": amount}
        if described.unit is TimeUnit.HOUR:
            return ngettext("breached %(n)s h ago", "breached %(n)s h ago", amount) % {"n": amount}
        return ngettext("breached %(n)s day ago", "breached %(n)s days ago", amount) % {"n": amount}
    if described.unit is TimeUnit.MINUTE:
        return ngettext("due in %(n)s min", "due in %(n)s min", amount) % {"n": amount}
    if described.unit is TimeUnit.HOUR:
        return ngettext("due in %(n)s h", "due in %(n)s h", amount) % {"n": amount}
    return ngettext("due in %(n)s day", "due in %(n)s days", amount) % {"n": amount}
