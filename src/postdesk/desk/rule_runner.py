"""Runs the administrators' rules (triage/rules.py) on a conversation, applies their actions and explains them.

How a run goes (`run`, called by automation.py inside the transaction that wrote the change):

1. The enabled `Rule` rows, parsed and compiled once per process (`current_rules`); one aggregate query per
   run notices an added, edited, enabled, disabled or deleted rule and compiles them again.
2. `build_facts`: the conversation as rules see it. Team and assignee are written as the team's name and
   the agent's email, the same forms conditions and set_team / set_assignee use (ids work too).
3. `RuleSet.cascade`: the trigger, then the status / assignee / priority changes the rules' own actions make,
   each rule at most once per chain (so two rules that undo each other stop after one turn each).
4. Each firing is written as a RULE_FIRED event (rule, name, trigger, reasons, and what each action did), then
   its actions are applied in order inside `automation.applying_rules()`: the events they write carry
   {"rule": slug} ("by rule vip-first") and do not trigger rules again. A loop the engine stopped is written as
   a RULE_FIRED event with "suppressed".

An action that cannot be done (no such team, an agent who cannot see the mailbox, a template with no text for
this mailbox, an auto-reply the guard refuses) is not an error: the RULE_FIRED event says what was not done and
why, and the rest goes on. Mail sent by rules goes through the outbox, marked as an auto-reply, and only past
`triage.auto_reply.may_auto_reply` (never to robots, lists or bounces; at most POSTDESK_AUTO_REPLY_DAILY_LIMIT per
sender a day). Webhooks are rows (`WebhookCall`) delivered by a job after the commit, retried with back-off, and
never sent to loopback, private or link-local addresses unless POSTDESK_WEBHOOK_ALLOW_PRIVATE is set (a rule's
URL must not become a way into the internal network).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from postdesk.desk import access, acknowledge, calendars, notify
from postdesk.desk.errors import PostdeskError
from postdesk.desk.models import (
    AutoReply,
    AutoReplyKind,
    Conversation,
    DecisionSource,
    Direction,
    Event,
    EventKind,
    Mailbox,
    Message,
    Notification,
    Priority,
    ReplyTemplate,
    Rule,
    Status,
    Tag,
    Team,
    WebhookCall,
    WebhookState,
)
from postdesk.desk.people import display_name
from postdesk.mail import compose
from postdesk.mail.model import AutomatedKind
from postdesk.triage.auto_reply import may_auto_reply
from postdesk.triage.rules import (
    Action,
    ActionKind,
    Channel,
    Facts,
    Firing,
    Match,
    Outcome,
    RuleError,
    RuleProblem,
    RuleSet,
    Suppression,
    Trigger,
    compile_rules,
    parse_rule,
)
from postdesk.triage.rules import Rule as PureRule

log = logging.getLogger(__name__)

# Statuses a rule may set; snoozing needs a time and merging a target, which rule data cannot give.
RULE_STATUSES = (Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED, Status.SPAM)
# Conversations the periodic time checks look at (bounded: finished, merged and spam ones never).
TIME_CHECK_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)
TIME_CHECK_BATCH = 200
# Events after which a time-based rule may fire again: a person changed the status, or someone wrote.
# Changes made by rules do not count, so "pending for 3 days → remind" reminds once, not every sweep.
_EPISODE_KINDS = (
    EventKind.STATUS,
    EventKind.SNOOZED,
    EventKind.WOKE,
    EventKind.SPAM,
    EventKind.RECEIVED,
    EventKind.REPLIED,
)
# Events that set the status (an agent's reply sets pending, a customer's mail re-opens): "hours in status".
_STATUS_KINDS = _EPISODE_KINDS

WEBHOOK_TIMEOUT_SECONDS = 10.0
WEBHOOK_MAX_ATTEMPTS = 8
# Retries after 1, 4, 16, 64 minutes, then every 4 hours: about a day in all.
WEBHOOK_RETRY_BASE = timedelta(minutes=1)
_WEBHOOK_BACKOFF_CAP = 240
# How long one delivery attempt holds its row before another worker may take it.
_WEBHOOK_LEASE = timedelta(seconds=120)
WEBHOOK_SWEEP_BATCH = 200
MAX_WEBHOOK_TEXT = 10_000


# --- the compiled rules, per process -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Compiled:
    marker: tuple[object, ...]
    ruleset: RuleSet


_cache: _Compiled | None = None
_cache_lock = threading.Lock()


def rule_from_row(row: Rule) -> PureRule:
    """The pure rule a `Rule` row stands for; RuleError (listing every problem) when its definition is bad."""
    if not isinstance(row.definition, Mapping):
        raise RuleError([RuleProblem("", "the definition must be a JSON object")])
    return parse_rule({**row.definition, "id": row.slug, "name": row.name, "order": row.order, "enabled": row.enabled})


def current_rules() -> RuleSet:
    """The enabled rules, compiled; recompiled when any rule row was added, changed, enabled, disabled or deleted.

    The check is one aggregate query. Saving through the admin or `postdesk rules import` bumps `updated_at`;
    code that changes rows with `QuerySet.update` must bump it too (enabling and disabling is noticed anyway).
    """
    global _cache
    summary = Rule.objects.aggregate(
        count=Count("id"), enabled=Count("id", filter=Q(enabled=True)), latest=Max("updated_at"), top=Max("id")
    )
    marker = (summary["count"], summary["enabled"], summary["latest"], summary["top"])
    cached = _cache
    if cached is not None and cached.marker == marker:
        return cached.ruleset
    with _cache_lock:
        rules: list[PureRule] = []
        for row in Rule.objects.filter(enabled=True).order_by("order", "id"):
            try:
                rules.append(rule_from_row(row))
            except RuleError as exc:
                # The admin refuses bad rules; a row written around it is skipped, not allowed to stop intake.
                log.warning("rule %s is skipped: %s", row.slug, exc)
        ruleset = compile_rules(rules)
        _cache = _Compiled(marker, ruleset)
    return ruleset


def _has_rules_for(ruleset: RuleSet, trigger: Trigger) -> bool:
    return any(rule.enabled and trigger in rule.triggers for rule in ruleset.rules)


# --- facts --------------------------------------------------------------------------------------------


def _hours(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else max((now - since).total_seconds() / 3600, 0.0)


def _in_business_hours(conversation: Conversation, now: datetime) -> bool:
    """Open by the mailbox's calendar, else the team's, else always (the calendars the SLA clocks use, cached)."""
    return calendars.calendar_for(conversation, None).is_open(now)


def build_facts(conversation: Conversation, *, now: datetime, message: Message | None = None) -> Facts:
    """The conversation (and the customer's `message`, else their last one) as rules see it at `now`."""
    mailbox = conversation.mailbox
    mail = message
    if mail is None:
        mail = (
            conversation.messages.filter(direction=Direction.INBOUND)
            .only("from_address", "subject", "text", "visible_text", "automated_kind")
            .order_by("-created_at", "-id")
            .first()
        )
    if message is not None:
        has_attachments = message.attachments.filter(inline=False).exists()
    else:
        has_attachments = conversation.has_attachments
    last_reply = Message.objects.filter(
        conversation=conversation, direction=Direction.OUTBOUND, author__isnull=False, forwarded=False
    ).aggregate(at=Max("created_at"))["at"]
    status_since = Event.objects.filter(conversation=conversation, kind__in=_STATUS_KINDS).aggregate(
        at=Max("created_at")
    )["at"]
    team_name = ""
    if conversation.team_id is not None:
        team_name = Team.objects.filter(pk=conversation.team_id).values_list("name", flat=True).first() or ""
    assignee_email = ""
    if conversation.assignee_id is not None:
        assignee_email = (
            get_user_model().objects.filter(pk=conversation.assignee_id).values_list("email", flat=True).first() or ""
        )
    return Facts(
        mailbox_id=str(mailbox.pk),
        mailbox_address=mailbox.address,
        sender_address=(mail.from_address if mail is not None else "") or conversation.contact_address,
        subject=message.subject if message is not None else conversation.subject,
        text=(mail.visible_text or mail.text) if mail is not None else "",
        language=conversation.language,
        category=conversation.category,
        priority=conversation.priority,
        contact_tier=conversation.contact.tier,
        tags=frozenset(conversation.tags.values_list("name", flat=True)),
        has_attachments=has_attachments,
        automated_kind=acknowledge.stored_automated_kind(mail.automated_kind) if mail is not None else None,
        in_business_hours=_in_business_hours(conversation, now),
        hours_since_last_reply=_hours(last_reply, now),
        hours_since_customer_wrote=_hours(conversation.last_inbound_at, now),
        hours_in_status=_hours(status_since or conversation.created_at, now),
        status=conversation.status,
        team=team_name,
        assignee=assignee_email,
    )


# --- running ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Application:
    """One run's state while its actions are applied: what the next RULE_FIRED event will list."""

    conversation: Conversation
    trigger: Trigger
    now: datetime
    message: Message | None
    slug: str = ""
    rule_event: Event | None = None
    done: list[str] = field(default_factory=list)


def run(
    conversation: Conversation,
    trigger: Trigger,
    *,
    now: datetime,
    message: Message | None = None,
    already_fired: frozenset[str] = frozenset(),
) -> str:
    """Evaluate the rules for `trigger` on `conversation` (locked by the caller) and apply what fired.

    Returns a one-line description for the intake step log ("2 rules fired: vip-first, refunds-to-billing").
    """
    if conversation.status == Status.MERGED:
        return "merged: no rules"
    ruleset = current_rules()
    if not _has_rules_for(ruleset, trigger):
        return "no rules"
    facts = build_facts(conversation, now=now, message=message)
    outcome = ruleset.cascade(trigger, facts, already_fired=already_fired)
    return apply_outcome(conversation, trigger, outcome, now=now, message=message)


def apply_outcome(
    conversation: Conversation, trigger: Trigger, outcome: Outcome, *, now: datetime, message: Message | None = None
) -> str:
    """Write what `outcome` decided onto `conversation`, one RULE_FIRED event per firing; returns the description."""
    from postdesk.desk import automation

    if not outcome.firings and not outcome.suppressed:
        return "no rule matched"
    state = _Application(conversation, trigger, now, message)
    with automation.applying_rules():
        for firing in outcome.firings:
            _apply_firing(state, firing)
        if outcome.suppressed:
            _record_suppressed(state, outcome.suppressed)
    fired = [firing.rule_id for firing in outcome.firings]
    if not fired:
        return f"no rule fired; loop guard stopped {len(outcome.suppressed)}"
    noun = "rule" if len(fired) == 1 else "rules"
    return f"{len(fired)} {noun} fired: {', '.join(fired)}"


def _apply_firing(state: _Application, firing: Firing) -> None:
    from postdesk.desk import actions

    state.slug, state.done = firing.rule_id, []
    data: dict[str, object] = {
        "rule": firing.rule_id,
        "name": firing.rule_name,
        "trigger": firing.trigger.value,
        "reasons": list(firing.reasons),
        "actions": [],
    }
    # Written first so the timeline reads "rule X applied because …" before the changes it made, and so
    # notifications can point at it; what each action did is filled in below.
    state.rule_event = actions._event(
        state.conversation,
        None,
        EventKind.RULE_FIRED,
        rule=firing.rule_id,
        name=firing.rule_name,
        trigger=firing.trigger.value,
        reasons=list(firing.reasons),
        actions=[],
    )
    for action in firing.actions:
        try:
            state.done.append(_ACTIONS[action.kind](state, action))
        except PostdeskError as exc:
            state.done.append(_("not done: %(reason)s") % {"reason": exc.user_message})
    data["actions"] = state.done
    Event.objects.filter(pk=state.rule_event.pk).update(data=data)
    state.rule_event.data = data


def _record_suppressed(state: _Application, suppressed: tuple[Suppression, ...]) -> None:
    from postdesk.desk import actions

    actions._event(
        state.conversation,
        None,
        EventKind.RULE_FIRED,
        trigger=state.trigger.value,
        # The same stop can be reached along two follow-up paths (a status and a priority change): listed once.
        suppressed=[
            {"rule": item.rule_id, "trigger": item.trigger.value, "reason": item.reason}
            for item in dict.fromkeys(suppressed)
        ],
    )


def _touch(conversation: Conversation, now: datetime, *fields: str) -> None:
    conversation.updated_at = max(conversation.updated_at, now)
    conversation.save(update_fields=[*fields, "updated_at"])


# --- field actions --------------------------------------------------------------------------------------


def _find_team(value: str) -> Team | None:
    if value.isdigit():
        return Team.objects.filter(pk=int(value)).first()
    return Team.objects.filter(name__iexact=value.strip()).first()


def _find_agent(value: str) -> User | None:
    model = get_user_model()
    if value.isdigit():
        return model.objects.filter(pk=int(value), is_active=True).first()
    return model.objects.filter(Q(email__iexact=value.strip()) | Q(username=value.strip()), is_active=True).first()


def _set_team(state: _Application, action: Action) -> str:
    from postdesk.desk import actions, routing

    conversation = state.conversation
    team = _find_team(action.value)
    if team is None:
        return _("not done: there is no team %(team)s") % {"team": action.value}
    if conversation.team_id == team.pk:
        return _("team already %(team)s") % {"team": team.name}
    conversation.team_id = team.pk
    _touch(conversation, state.now, "team")
    actions._event(conversation, None, EventKind.ROUTED, rule=state.slug, team=team.name, reason=f"rule {state.slug}")
    if conversation.assignee_id is None:
        team_id = team.pk
        transaction.on_commit(lambda: routing.hand_out_soon(team_id))
    return _("moved to team %(team)s") % {"team": team.name}


def _set_assignee(state: _Application, action: Action) -> str:
    from postdesk.desk import actions

    conversation = state.conversation
    if action.value.strip().lower() in ("nobody", "none"):
        agent = None
    else:
        agent = _find_agent(action.value)
        if agent is None:
            return _("not assigned: there is no active agent %(who)s") % {"who": action.value}
        if access.role(agent) not in access.ANSWERING_ROLES:
            return _("not assigned: %(who)s is not an agent who can answer mail") % {"who": display_name(agent)}
        if not access.visible_conversations(agent).filter(pk=conversation.pk).exists():
            return _("not assigned: %(who)s is not in a team that sees this mailbox") % {"who": display_name(agent)}
    new_id = agent.pk if agent is not None else None
    if conversation.assignee_id == new_id:
        return _("already assigned to %(who)s") % {"who": display_name(agent) or _("nobody")}
    conversation.assignee_id = new_id
    fields = ["assignee"]
    if agent is not None and conversation.status == Status.NEW:
        fields += actions._set_status_fields(conversation, Status.OPEN, state.now)
    _touch(conversation, state.now, *fields)
    actions._event(
        conversation,
        None,
        EventKind.ASSIGNED,
        assignee=new_id,
        assignee_name=display_name(agent),
        rule=state.slug,
    )
    if agent is None:
        return _("unassigned")
    return _("assigned to %(who)s") % {"who": display_name(agent)}


def _set_priority(state: _Application, action: Action) -> str:
    from postdesk.desk import actions

    conversation = state.conversation
    if action.value not in Priority.values:
        return _("not done: unknown priority %(value)s") % {"value": action.value}
    before = conversation.priority
    if before == action.value:
        return _("priority already %(value)s") % {"value": action.value}
    conversation.priority = action.value
    conversation.priority_source = DecisionSource.RULE
    conversation.priority_confidence = None
    _touch(conversation, state.now, "priority", "priority_source", "priority_confidence")
    actions._event(conversation, None, EventKind.PRIORITY, before=before, after=action.value, rule=state.slug)
    return _("priority set to %(value)s") % {"value": action.value}


def _set_category(state: _Application, action: Action) -> str:
    from postdesk.desk import actions

    conversation = state.conversation
    value = action.value.strip()[:100]
    before = conversation.category
    if before == value:
        return _("category already %(value)s") % {"value": value}
    conversation.category = value
    conversation.category_source = DecisionSource.RULE
    conversation.category_confidence = None
    _touch(conversation, state.now, "category", "category_source", "category_confidence")
    actions._event(conversation, None, EventKind.CATEGORY, before=before, after=value, rule=state.slug)
    return _("category set to %(value)s") % {"value": value}


def _set_status(state: _Application, action: Action) -> str:
    from postdesk.desk import actions

    conversation = state.conversation
    if action.value not in RULE_STATUSES:
        return _("not done: a rule cannot set the status %(value)s (use one of: %(valid)s)") % {
            "value": action.value,
            "valid": ", ".join(RULE_STATUSES),
        }
    before = conversation.status
    fields = actions._set_status_fields(conversation, action.value, state.now)
    if not fields:
        return _("status already %(value)s") % {"value": action.value}
    _touch(conversation, state.now, *fields)
    if action.value == Status.SPAM:
        actions._event(conversation, None, EventKind.SPAM, before=before, blocked="", rule=state.slug)
    else:
        actions._event(conversation, None, EventKind.STATUS, before=before, after=action.value, rule=state.slug)
    return _("status set to %(value)s") % {"value": action.value}


def _change_tags(state: _Application, action: Action) -> str:
    from postdesk.desk import actions

    conversation = state.conversation
    names = actions._tag_names(action.tags)  # BadRequest (a too-long tag) is reported by the caller
    before = set(conversation.tags.values_list("name", flat=True))
    if action.kind is ActionKind.ADD_TAGS:
        added = [Tag.objects.get_or_create(name=name)[0] for name in names if name not in before]
        conversation.tags.add(*added)
        changed, removed = [tag.name for tag in added], []
    else:
        removed = [name for name in names if name in before]
        conversation.tags.remove(*Tag.objects.filter(name__in=removed))
        changed = []
    if not changed and not removed:
        return _("tags unchanged")
    _touch(conversation, state.now)
    actions._event(conversation, None, EventKind.TAGGED, added=changed, removed=removed, rule=state.slug)
    if changed:
        return _("tagged %(tags)s") % {"tags": ", ".join(changed)}
    return _("removed the tags %(tags)s") % {"tags": ", ".join(removed)}


# --- side effects -------------------------------------------------------------------------------------


def placeholders(conversation: Conversation) -> dict[str, str]:
    """The values templates and notes may use: {customer_name} {number} {subject} {mailbox}."""
    return {
        "customer_name": conversation.contact_name or conversation.contact.name or "",
        "number": str(conversation.number),
        "subject": conversation.subject,
        "mailbox": conversation.mailbox.name or conversation.mailbox.address,
    }


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace known {placeholders}; anything else stays as written (no attribute or index access, unlike format)."""
    return acknowledge.fill_placeholders(text, values)


def _add_note(state: _Application, action: Action) -> str:
    from postdesk.desk import actions

    conversation = state.conversation
    text = fill(action.value, placeholders(conversation))
    note = Message.objects.create(
        conversation=conversation,
        mailbox=conversation.mailbox,
        direction=Direction.NOTE,
        from_name=_("Rule %(rule)s") % {"rule": state.slug},
        text=text,
        visible_text=text,
        date=state.now,
        created_at=state.now,
    )
    conversation.message_count += 1
    _touch(conversation, state.now, "message_count")
    actions._event(conversation, None, EventKind.NOTED, message=note, mentioned=[], rule=state.slug)
    return _("added a note")


def find_template(key: str, conversation: Conversation) -> ReplyTemplate | None:
    """The template `key` in the customer's language (conversation's, then contact's, then the default text);
    a mailbox's own template goes before the one for every mailbox."""
    return acknowledge.choose_template(key, conversation.mailbox, acknowledge.language_candidates(conversation))


def _last_customer_mail(conversation: Conversation) -> Message | None:
    return (
        conversation.messages.filter(direction=Direction.INBOUND)
        .select_related("received_mail")
        .order_by("-created_at", "-id")
        .first()
    )


def _send_template(state: _Application, action: Action) -> str:
    from postdesk.desk import actions

    conversation = state.conversation
    template = find_template(action.value, conversation)
    if template is None:
        return _("not sent: there is no reply template %(key)s for this mailbox") % {"key": action.value}
    last = state.message if state.message is not None else _last_customer_mail(conversation)
    recipients = actions.reply_recipients(conversation, reply_all=False).to
    if last is None or not recipients:
        return _("not sent: the customer has no address to answer")
    to = recipients[0]
    kind = acknowledge.stored_automated_kind(last.automated_kind)
    decision = may_auto_reply(
        to,
        kind,
        is_list=kind is AutomatedKind.LIST,
        is_bounce=acknowledge.is_bounce(last),
        sent_to_sender_today=AutoReply.objects.filter(address=to, sent_at__gt=state.now - timedelta(days=1)).count(),
        daily_limit=acknowledge.daily_limit(),
        our_addresses=frozenset(Mailbox.objects.values_list("address", flat=True)),
    )
    if not decision.allowed:
        return _("not sent to %(to)s: %(reason)s") % {"to": to, "reason": decision.reason}
    values = placeholders(conversation)
    subject = (
        fill(template.subject, values)
        if template.subject
        else actions._reply_subject(conversation.subject, forward=False)
    )
    try:
        acknowledge.send_automatic(
            conversation,
            to=to,
            subject=" ".join(subject.split())[:998],
            text=fill(template.body, values).rstrip(),
            now=state.now,
            reason=f"rule {state.slug}",
        )
    except compose.ComposeError as error:
        return _("not sent to %(to)s: %(reason)s") % {"to": to, "reason": str(error)}
    AutoReply.objects.create(address=to, conversation=conversation, kind=AutoReplyKind.RULE, sent_at=state.now)
    conversation.message_count += 1
    conversation.last_message_at = state.now
    _touch(conversation, state.now, "message_count", "last_message_at")
    return _("sent the template %(key)s to %(to)s") % {"key": template.key, "to": to}


def _notify(state: _Application, action: Action) -> str:
    conversation = state.conversation
    who = action.value.strip()
    recipients: list[User] = []
    if who.lower() == "owner":
        if conversation.assignee_id is None:
            return _("nobody notified: the conversation has no assignee")
        owner = get_user_model().objects.filter(pk=conversation.assignee_id, is_active=True).first()
        recipients = [owner] if owner is not None else []
    elif who.lower() == "supervisor":
        team_id = conversation.team_id or conversation.mailbox.team_id
        recipients = list(access.supervisors_of(team_id)) if team_id is not None else []
        if not recipients:
            return _("nobody notified: the team has no supervisor")
    else:
        agent = _find_agent(who)
        if agent is None or access.role(agent) is None:
            return _("nobody notified: there is no agent %(who)s") % {"who": who}
        recipients = [agent]
    # Only people who can open the conversation hear about it.
    recipients = [user for user in recipients if access.visible_conversations(user).filter(pk=conversation.pk).exists()]
    if not recipients:
        return _("nobody notified: %(who)s cannot see this mailbox") % {"who": who}
    text = _("Rule %(rule)s on #%(number)s: %(subject)s") % {
        "rule": state.slug,
        "number": conversation.number,
        "subject": conversation.subject,
    }
    created = [
        Notification.objects.create(recipient=user, conversation=conversation, event=state.rule_event, text=text[:500])
        for user in recipients
    ]
    names = ", ".join(display_name(user) for user in recipients)
    if Channel.EMAIL in action.channels:
        # The in-app notification is always written: it is the record the mail points to.
        notify.email_soon([n.pk for n in created if n.recipient.email])
        return _("notified %(who)s in the app and by email") % {"who": names}
    return _("notified %(who)s") % {"who": names}


def webhook_payload(
    conversation: Conversation, trigger: Trigger, slug: str, message: Message | None
) -> dict[str, object]:
    """What a rule's webhook receives: the event, the rule, the conversation and, on intake, the customer's mail."""
    contact = conversation.contact
    payload: dict[str, object] = {
        "event": trigger.value,
        "rule": slug,
        "conversation": {
            "number": conversation.number,
            "subject": conversation.subject,
            "status": conversation.status,
            "priority": conversation.priority,
            "category": conversation.category,
            "language": conversation.language,
            "mailbox": conversation.mailbox.address,
            "contact": {
                "name": conversation.contact_name or contact.name,
                "address": conversation.contact_address,
                "tier": contact.tier,
            },
        },
    }
    if message is not None:
        payload["message"] = {
            "from": message.from_address,
            "subject": message.subject,
            "text": (message.visible_text or message.text)[:MAX_WEBHOOK_TEXT],
            "received_at": message.created_at.isoformat(),
        }
    return payload


def _call_webhook(state: _Application, action: Action) -> str:
    problem = url_problem(action.value, resolve=False)
    if problem:
        return _("webhook not called: %(reason)s") % {"reason": problem}
    call = WebhookCall.objects.create(
        conversation=state.conversation,
        rule_slug=state.slug,
        url=action.value,
        payload=webhook_payload(state.conversation, state.trigger, state.slug, state.message),
        send_after=state.now,
    )
    call_id = call.pk
    # After the commit: a rolled-back intake must not call out, and a slow endpoint must not hold the transaction.
    transaction.on_commit(lambda: _queue_webhook(call_id))
    return _("webhook queued for %(host)s") % {"host": urlsplit(action.value).hostname or action.value}


_ACTIONS: Mapping[ActionKind, Callable[[_Application, Action], str]] = {
    ActionKind.SET_TEAM: _set_team,
    ActionKind.SET_ASSIGNEE: _set_assignee,
    ActionKind.SET_PRIORITY: _set_priority,
    ActionKind.SET_CATEGORY: _set_category,
    ActionKind.SET_STATUS: _set_status,
    ActionKind.ADD_TAGS: _change_tags,
    ActionKind.REMOVE_TAGS: _change_tags,
    ActionKind.ADD_NOTE: _add_note,
    ActionKind.SEND_TEMPLATE: _send_template,
    ActionKind.NOTIFY: _notify,
    ActionKind.CALL_WEBHOOK: _call_webhook,
}


# --- time-based rules ---------------------------------------------------------------------------------


def fired_this_episode(conversation: Conversation) -> frozenset[str]:
    """Rules that fired since a person last changed the status or someone last wrote: they wait for the next change."""
    boundary = (
        Event.objects.filter(conversation=conversation, kind__in=_EPISODE_KINDS)
        .exclude(data__has_key="rule")
        .aggregate(last=Max("id"))["last"]
        or 0
    )
    rows = Event.objects.filter(conversation=conversation, kind=EventKind.RULE_FIRED, id__gt=boundary)
    return frozenset(slug for slug in (row.get("rule") for row in rows.values_list("data", flat=True)) if slug)


def run_time_checks(now: datetime | None = None) -> int:
    """Evaluate the time_check rules on new, open and pending conversations; returns how many had a rule fire.

    Each conversation is first evaluated without a lock; only one where a rule would fire is locked, looked at
    again and changed, so a sweep over many quiet conversations writes nothing.
    """
    now = now or timezone.now()
    ruleset = current_rules()
    if not _has_rules_for(ruleset, Trigger.TIME_CHECK):
        return 0
    changed = 0
    last_id = 0
    while True:
        batch = list(
            Conversation.objects.filter(status__in=TIME_CHECK_STATUSES, pk__gt=last_id)
            .select_related("mailbox", "contact")
            .order_by("pk")[:TIME_CHECK_BATCH]
        )
        if not batch:
            return changed
        last_id = batch[-1].pk
        for candidate in batch:
            facts = build_facts(candidate, now=now)
            if not ruleset.cascade(Trigger.TIME_CHECK, facts, already_fired=fired_this_episode(candidate)).firings:
                continue
            with transaction.atomic():
                conversation = (
                    Conversation.objects.select_for_update()
                    .filter(pk=candidate.pk, status__in=TIME_CHECK_STATUSES)
                    .first()
                )
                if conversation is None:
                    continue
                description = run(
                    conversation, Trigger.TIME_CHECK, now=now, already_fired=fired_this_episode(conversation)
                )
                if " fired:" in description:
                    changed += 1


# --- webhooks -----------------------------------------------------------------------------------------


def _private_allowed() -> bool:
    return bool(settings.POSTDESK_WEBHOOK_ALLOW_PRIVATE)


def url_problem(url: str, *, resolve: bool = True) -> str | None:
    """Why a webhook may not be sent to `url` (None: it may). With `resolve`, every address the name has is checked.

    Only http and https; never loopback, private, link-local (cloud metadata), multicast or reserved addresses,
    unless POSTDESK_WEBHOOK_ALLOW_PRIVATE=1 (for an installation whose receivers live on its own network).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _("the address is not a valid URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _("only http:// and https:// addresses can be called")
    if parts.username or parts.password:
        return _("the address must not contain a user name or password")
    if _private_allowed():
        return None
    host = parts.hostname
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    name = host.rstrip(".").lower()
    if literal is None and (name == "localhost" or name.endswith(".localhost")):
        return _("%(host)s is a local address") % {"host": host}
    if literal is not None:
        addresses = [literal]
    elif not resolve:
        return None
    else:
        try:
            infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
        except OSError as exc:
            return _("%(host)s cannot be resolved: %(error)s") % {"host": host, "error": exc}
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not address.is_global or address.is_multicast:
            return _("%(host)s is a private or local address (%(address)s)") % {"host": host, "address": address}
    return None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could point past the address check (to 127.0.0.1): it is a failure, not followed."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _backoff(attempts: int) -> timedelta:
    factor: int = min(4 ** max(attempts - 1, 0), _WEBHOOK_BACKOFF_CAP)
    return WEBHOOK_RETRY_BASE * factor


def _queue_webhook(call_id: int) -> None:
    from postdesk.jobs import deliver_webhook as job

    job(call_id)


def deliver_webhook(call_id: int, *, now: datetime | None = None) -> str:
    """POST one queued call if it is due; returns "delivered", "retry", "failed", "not due", "taken" or its state."""
    now = now or timezone.now()
    row = WebhookCall.objects.filter(pk=call_id).first()
    if row is None:
        return "missing"
    if row.state != WebhookState.QUEUED:
        return str(row.state)
    if row.send_after > now:
        return "not due"
    # A conditional UPDATE: of two workers only one gets the attempt; the lease lets a crashed one's row come back.
    claimed = WebhookCall.objects.filter(
        pk=row.pk, state=WebhookState.QUEUED, attempts=row.attempts, send_after=row.send_after
    ).update(attempts=row.attempts + 1, send_after=now + _WEBHOOK_LEASE)
    if not claimed:
        return "taken"
    attempts = row.attempts + 1
    problem = url_problem(row.url)
    if problem is not None:
        WebhookCall.objects.filter(pk=row.pk).update(state=WebhookState.FAILED, last_error=problem[:2000])
        return "failed"
    error, permanent = _post(row.url, row.payload)
    if error is None:
        WebhookCall.objects.filter(pk=row.pk).update(
            state=WebhookState.DELIVERED, delivered_at=timezone.now(), last_error=""
        )
        return "delivered"
    if permanent or attempts >= WEBHOOK_MAX_ATTEMPTS:
        WebhookCall.objects.filter(pk=row.pk).update(state=WebhookState.FAILED, last_error=error[:2000])
        log.warning("webhook %s to %s failed after %s attempts: %s", row.pk, row.url, attempts, error)
        return "failed"
    WebhookCall.objects.filter(pk=row.pk).update(send_after=now + _backoff(attempts), last_error=error[:2000])
    return "retry"


def _post(url: str, payload: object) -> tuple[str | None, bool]:
    """POST `payload` as JSON: (None, False) on a 2xx answer, else (what went wrong, whether retrying is useless).

    A 4xx answer (other than 408 and 429) says the receiver will not take this call, now or later; 5xx answers,
    timeouts and refused connections may pass.
    """
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    # The scheme was checked by url_problem (http and https only), so no file: or custom scheme gets here.
    request = urllib.request.Request(  # noqa: S310
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "Postdesk-Webhook/1"},
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        permanent = 300 <= exc.code < 500 and exc.code not in (408, 429)
        return f"HTTP {exc.code} {exc.reason}", permanent
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}", False
    if 200 <= status < 300:
        return None, False
    return f"HTTP {status}", False


def sweep_webhooks(now: datetime | None = None) -> int:
    """Queue a delivery job for every call that is due (new after a lost job, or waiting for a retry); how many."""
    now = now or timezone.now()
    due = list(
        WebhookCall.objects.filter(state=WebhookState.QUEUED, send_after__lte=now)
        .order_by("send_after", "pk")
        .values_list("pk", flat=True)[:WEBHOOK_SWEEP_BATCH]
    )
    for call_id in due:
        _queue_webhook(call_id)
    return len(due)


def describe_rule(rule: PureRule) -> str:
    """A one-line summary for lists: "when conversation_created if 2 conditions: 2 actions (set_team, add_tags)"."""
    triggers = ", ".join(trigger.value for trigger in Trigger if trigger in rule.triggers)
    kinds = ", ".join(dict.fromkeys(action.kind.value for action in rule.actions))
    joiner = " or " if rule.match is Match.ANY else " and "
    conditions = joiner.join(condition.explain() for condition in rule.conditions[:3]) or "always"
    if len(rule.conditions) > 3:
        conditions += f" (+{len(rule.conditions) - 3} more)"
    return f"when {triggers}, if {conditions}: {kinds}{' (then stop)' if rule.stop_processing else ''}"
