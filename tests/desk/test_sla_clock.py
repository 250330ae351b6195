"""SLA clocks on real conversations (desk/sla_clock.py): the policy chosen, deadlines in business hours, pauses,
first responses, undo-send, and the sweep's warnings, breaches and escalations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from factories import make_agent, make_mailbox, make_raw_mail, make_team
from postdesk.desk import actions, outbox, rule_runner, sla_clock
from postdesk.desk.models import (
    AutoReply,
    BusinessCalendar,
    Contact,
    ContactAddress,
    Conversation,
    Event,
    EventKind,
    Holiday,
    Mailbox,
    Message,
    Notification,
    ReceivedMail,
    Role,
    SlaPolicy,
    Status,
    Team,
    Tier,
)
from postdesk.triage.rules import Trigger
from postdesk.web.due import DueTexts
from two_teams import _deliver, fast_passwords

__all__ = ["fast_passwords"]

pytestmark = pytest.mark.django_db

# Monday 23 November 2026, 09:00 in Berlin (UTC+1 in winter).
MONDAY_9_BERLIN = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
WEEKDAYS_9_TO_17 = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


@dataclass
class Clock:
    """The time every action, event and notification sees (timezone.now and the models' created_at)."""

    now: datetime

    def set(self, at: datetime) -> datetime:
        self.now = at
        return at

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    current = Clock(MONDAY_9_BERLIN)
    monkeypatch.setattr(timezone, "now", lambda: current.now)
    # Field defaults hold the original timezone.now; each field's cached default callable is replaced instead.
    for model, name in ((Event, "created_at"), (Notification, "created_at"), (AutoReply, "sent_at")):
        monkeypatch.setattr(model._meta.get_field(name), "_get_default", lambda: current.now)
    return current


def berlin_calendar(name: str = "Berlin office", **hours: Any) -> BusinessCalendar:
    return BusinessCalendar.objects.create(name=name, time_zone="Europe/Berlin", weekly_hours=hours or WEEKDAYS_9_TO_17)


def policy(name: str, **fields: Any) -> SlaPolicy:
    mailboxes = fields.pop("mailboxes", [])
    fields.setdefault("first_response_minutes", 60)
    row = SlaPolicy.objects.create(name=name, **fields)
    row.mailboxes.set(mailboxes)
    return row


@dataclass
class Desk:
    team: Team
    mailbox: Mailbox
    agent: Any
    deliver: Callable[..., Message]


@pytest.fixture
def desk(clock: Clock) -> Desk:
    team = make_team("Support")
    mailbox = make_mailbox("help@shop.test", team=team, name="Shop help")
    agent = make_agent("ann@shop.test", teams=(team,))

    def deliver(at: datetime | None = None, *, to: Mailbox | None = None, **mail: Any) -> Message:
        when = clock.set(at) if at is not None else clock.now
        mail.setdefault("to", (to or mailbox).address)
        return _deliver(to or mailbox, make_raw_mail(**mail), at=when)

    return Desk(team, mailbox, agent, deliver)


def fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


def reply(user: Any, conversation: Conversation, *, status_after: str = Status.PENDING, **kwargs: Any) -> Message:
    return actions.do_reply(
        user,
        conversation,
        text=kwargs.pop("text", "We are looking into it."),
        recipients=actions.reply_recipients(conversation, reply_all=False),
        seen_event_id=actions.latest_event_id(conversation),
        status_after=status_after,
        **kwargs,
    )


def sla_step(message: Message) -> str:
    steps = ReceivedMail.objects.get(pk=message.received_mail_id).steps
    detail: str = next(step["detail"] for step in steps if step["step"] == "sla")
    return detail


# --- choosing the policy ------------------------------------------------------------------------------------------


def test_the_first_matching_policy_by_order_applies_by_tier_mailbox_and_priority(desk: Desk, clock: Clock) -> None:
    other = make_mailbox("billing@shop.test", team=desk.team)
    policy("VIP", order=0, tiers=[Tier.VIP], first_response_minutes=15)
    policy("Billing mailbox", order=1, mailboxes=[other], first_response_minutes=120)
    policy("Urgent", order=2, priorities=["urgent"], first_response_minutes=30)
    policy("Standard", order=9, first_response_minutes=480)
    vip = Contact.objects.create(name="Very Important", tier=Tier.VIP)
    ContactAddress.objects.create(contact=vip, address="boss@bigcorp.test")

    standard = desk.deliver(subject="Where is my parcel").conversation
    from_vip = desk.deliver(subject="Where is my invoice", sender="Boss <boss@bigcorp.test>").conversation
    to_billing = desk.deliver(subject="Double charge", to=other).conversation

    assert fresh(standard).sla_policy.name == "Standard"
    assert fresh(from_vip).sla_policy.name == "VIP"
    assert fresh(to_billing).sla_policy.name == "Billing mailbox"
    # 24x7 (no calendar anywhere): the targets are plain minutes.
    assert fresh(from_vip).first_response_due_at == clock.now + timedelta(minutes=15)

    # An agent makes it urgent: the urgent policy now applies, counted from the conversation's start.
    started = fresh(standard).created_at
    clock.advance(minutes=5)
    actions.do_set_priority(desk.agent, standard, "urgent")
    urgent = fresh(standard)
    assert urgent.sla_policy.name == "Urgent"
    assert urgent.first_response_due_at == started + timedelta(minutes=30)
    assert urgent.sla_due_at == urgent.first_response_due_at
    event = Event.objects.filter(conversation=standard, kind=EventKind.SLA).order_by("-id").first()
    assert event is not None and event.data["policy"] == "Urgent" and event.data["previous"] == "Standard"


def test_no_policy_means_no_clock_and_automatic_mail_starts_none(desk: Desk) -> None:
    quiet = desk.deliver(subject="Just saying hi")
    assert fresh(quiet.conversation).sla_due_at is None
    assert sla_step(quiet) == "no SLA policy matches"

    policy("Standard")
    bounce = desk.deliver(
        subject="Out of office", sender="Bob <bob@customer.test>", extra_headers={"Auto-Submitted": "auto-replied"}
    )
    assert fresh(bounce.conversation).sla_due_at is None
    assert sla_step(bounce) == "no SLA: automatic mail"


# --- business hours -----------------------------------------------------------------------------------------------


def test_mail_on_friday_evening_is_due_on_monday_morning_in_business_hours(desk: Desk) -> None:
    desk.team.calendar = berlin_calendar()
    desk.team.save()
    policy("Standard", first_response_minutes=60, resolution_minutes=8 * 60)

    # Friday 20 November, 18:30 in Berlin: the office closed at 17:00.
    message = desk.deliver(datetime(2026, 11, 20, 17, 30, tzinfo=UTC), subject="Broken zipper")
    conversation = fresh(message.conversation)

    monday_10_berlin = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert conversation.first_response_due_at == monday_10_berlin
    assert conversation.resolution_due_at == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # Monday 17:00 Berlin
    assert conversation.sla_due_at == monday_10_berlin
    assert conversation.sla_check_at == monday_10_berlin - timedelta(minutes=30)  # the warning
    assert sla_step(message) == (
        "policy Standard: first response by 2026-11-23 09:00 UTC, resolution by 2026-11-23 16:00 UTC"
    )
    event = Event.objects.get(conversation=conversation, kind=EventKind.SLA)
    assert event.data["policy"] == "Standard"
    assert event.data["due"]["first_response"] == monday_10_berlin.isoformat()


def test_the_policy_calendar_wins_over_the_mailbox_one_which_wins_over_the_team_one(desk: Desk) -> None:
    desk.team.calendar = berlin_calendar("Team", mon=["09:00-17:00"], tue=["09:00-17:00"])
    desk.team.save()
    # Monday 23 November is a holiday for the mailbox's calendar.
    mailbox_calendar = berlin_calendar("Mailbox", mon=["09:00-17:00"], tue=["09:00-17:00"])
    Holiday.objects.create(calendar=mailbox_calendar, date=datetime(2026, 11, 23).date(), name="Founders' day")
    night_shift = BusinessCalendar.objects.create(name="Night", time_zone="UTC", weekly_hours={"mon": ["20:00-24:00"]})
    standard = policy("Standard", order=1, first_response_minutes=60)

    at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin
    assert fresh(desk.deliver(at, subject="a").conversation).first_response_due_at == at + timedelta(hours=1)

    desk.mailbox.calendar = mailbox_calendar
    desk.mailbox.save()
    tuesday_10_berlin = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert fresh(desk.deliver(at, subject="b").conversation).first_response_due_at == tuesday_10_berlin

    standard.calendar = night_shift
    standard.save()
    assert fresh(desk.deliver(at, subject="c").conversation).first_response_due_at == datetime(
        2026, 11, 23, 21, 0, tzinfo=UTC
    )


# --- pauses, replies ----------------------------------------------------------------------------------------------


def test_pending_pauses_the_clocks_and_the_customer_writing_again_resumes_them(desk: Desk, clock: Clock) -> None:
    desk.team.calendar = berlin_calendar()
    desk.team.save()
    policy("Standard", first_response_minutes=60, next_response_minutes=120, resolution_minutes=8 * 60)
    first = desk.deliver(MONDAY_9_BERLIN, subject="Order 17 never came")
    conversation = first.conversation

    clock.set(MONDAY_9_BERLIN + timedelta(minutes=30))  # 09:30 Berlin
    ours = reply(desk.agent, conversation, status_after=Status.PENDING)
    paused = fresh(conversation)
    assert paused.status == Status.PENDING
    assert paused.first_responded_at == clock.now
    assert paused.first_response_due_at is None and paused.resolution_due_at is None and paused.sla_due_at is None
    # 7.5 business hours of the resolution target were left when it paused.
    assert paused.sla_paused == {"resolution": 7.5 * 3600}
    label = DueTexts(clock.now).label(paused)
    assert label is not None and label.state == "paused" and label.text == "SLA paused"
    replied = Event.objects.get(conversation=conversation, kind=EventKind.REPLIED)
    assert replied.data["sla"]["met"] == ["first_response"]

    # The customer answers on Tuesday at 11:00 Berlin.
    tuesday_11 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    desk.deliver(tuesday_11, subject="Re: Order 17 never came", in_reply_to=f"<{ours.message_id}>")
    resumed = fresh(conversation)
    assert resumed.status == Status.OPEN
    assert resumed.sla_paused == {}
    # 6 business hours on Tuesday (to 17:00), the last 1.5 on Wednesday from 09:00: 10:30 Berlin.
    assert resumed.resolution_due_at == datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    # The last word was ours: the next-response clock starts.
    assert resumed.next_response_due_at == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert resumed.sla_due_at == resumed.next_response_due_at


def test_the_first_response_is_met_by_a_reply_not_by_a_note_or_a_forward(desk: Desk, clock: Clock) -> None:
    policy("Standard", first_response_minutes=60)
    conversation = desk.deliver(subject="Refund please").conversation
    due = fresh(conversation).first_response_due_at

    clock.advance(minutes=10)
    actions.do_note(desk.agent, conversation, text="Checking with the warehouse")
    actions.do_reply(
        desk.agent,
        conversation,
        text="Can you check this?",
        recipients=actions.Recipients(to=("warehouse@partner.test",)),
        seen_event_id=actions.latest_event_id(conversation),
        forward=True,
    )
    untouched = fresh(conversation)
    assert untouched.first_responded_at is None
    assert untouched.first_response_due_at == due == untouched.sla_due_at

    clock.advance(minutes=80)  # past the deadline
    reply(desk.agent, conversation, status_after=Status.OPEN)
    answered = fresh(conversation)
    assert answered.first_responded_at == clock.now
    assert answered.first_response_due_at is None and answered.sla_due_at is None
    replied = Event.objects.get(conversation=conversation, kind=EventKind.REPLIED)
    assert replied.data["sla"]["missed"] == ["first_response"]


def test_undoing_the_reply_puts_the_first_response_clock_back(desk: Desk, clock: Clock, settings: Any) -> None:
    settings.POSTDESK_UNDO_SEND_SECONDS = 30
    policy("Standard", first_response_minutes=60, resolution_minutes=240)
    conversation = desk.deliver(subject="Wrong size").conversation
    before = fresh(conversation)

    clock.advance(minutes=5)
    sent = reply(desk.agent, conversation, status_after=Status.PENDING)
    assert fresh(conversation).first_responded_at is not None

    clock.advance(seconds=10)
    assert outbox.cancel(desk.agent, sent)

    undone = fresh(conversation)
    assert undone.status == Status.NEW
    assert undone.first_responded_at is None
    assert undone.first_response_due_at == before.first_response_due_at
    # The resolution clock paused for the 10 seconds the reply stood.
    assert undone.resolution_due_at == before.resolution_due_at + timedelta(seconds=10)
    assert undone.sla_due_at == before.first_response_due_at


def test_resolving_in_time_meets_the_resolution_target_and_stops_every_clock(desk: Desk, clock: Clock) -> None:
    policy("Standard", first_response_minutes=60, resolution_minutes=120)
    conversation = desk.deliver(subject="Password reset").conversation
    clock.advance(minutes=30)
    actions.do_set_status(desk.agent, conversation, Status.RESOLVED)
    resolved = fresh(conversation)
    assert resolved.sla_due_at is None and resolved.sla_check_at is None and resolved.sla_paused == {}
    assert resolved.first_response_due_at is None and resolved.resolution_due_at is None
    status_event = Event.objects.get(conversation=conversation, kind=EventKind.STATUS)
    assert status_event.data["sla"] == {"met": ["resolution"]}

    # Another policy applying to the resolved conversation starts no clock on it.
    policy("Urgent", order=-1, priorities=["urgent"], first_response_minutes=5)
    actions.do_set_priority(desk.agent, conversation, "urgent")
    still = fresh(conversation)
    assert still.sla_policy is not None and still.sla_policy.name == "Urgent"
    assert still.sla_due_at is None and still.first_response_due_at is None and still.sla_paused == {}


# --- the sweep ----------------------------------------------------------------------------------------------------


@pytest.fixture
def rules_seen(monkeypatch: pytest.MonkeyPatch) -> list[Trigger]:
    """The rule triggers the sweep hands to the rules (the rules themselves are tested in test_rule_runner)."""
    seen: list[Trigger] = []
    original = rule_runner.run

    def run(conversation: Conversation, trigger: Trigger, **kwargs: Any) -> str:
        seen.append(trigger)
        return original(conversation, trigger, **kwargs)

    monkeypatch.setattr(rule_runner, "run", run)
    return seen


def test_the_sweep_warns_then_escalates_a_breach_once_each(desk: Desk, clock: Clock, rules_seen: list[Trigger]) -> None:
    escalations = make_team("Escalations")
    supervisor = make_agent("sue@shop.test", teams=(desk.team,), role=Role.SUPERVISOR)
    policy(
        "Standard",
        order=5,
        first_response_minutes=60,
        warn_before_minutes=15,
        raise_priority=True,
        reassign_to=escalations,
    )
    # A stricter policy for high priority: the sweep's own raise must not switch to it (it would breach at once).
    policy("High", order=1, priorities=["high"], first_response_minutes=10)
    start = clock.now
    conversation = desk.deliver(subject="Where is my order").conversation
    actions.do_assign(desk.agent, conversation, desk.agent)

    assert sla_clock.sweep(start + timedelta(minutes=44)) == 0
    assert not Notification.objects.exists()

    clock.set(start + timedelta(minutes=46))
    assert sla_clock.sweep(clock.now) == 1
    warned = fresh(conversation)
    assert [n.recipient_id for n in Notification.objects.all()] == [desk.agent.pk]
    assert "due in 14 min" in Notification.objects.get().text
    assert Event.objects.get(conversation=conversation, kind=EventKind.SLA, data__warning="first_response")
    assert warned.sla_check_at == start + timedelta(minutes=60)
    assert [t for t in rules_seen if t.startswith("sla_")] == [Trigger.SLA_WARNING]
    assert sla_clock.sweep(clock.now) == 0  # nothing new
    assert Notification.objects.count() == 1

    clock.set(start + timedelta(minutes=61))
    assert sla_clock.sweep(clock.now) == 1
    breached = fresh(conversation)
    notified = sorted(n.recipient_id for n in Notification.objects.filter(text__contains="overdue"))
    assert notified == sorted([desk.agent.pk, supervisor.pk])
    assert breached.priority == "high"
    assert breached.sla_policy.name == "Standard"
    assert breached.team == escalations and breached.assignee is None
    assert breached.sla_check_at is None
    assert (
        Event.objects.filter(conversation=conversation, kind=EventKind.SLA, data__breach="first_response").count() == 1
    )
    assert [t for t in rules_seen if t.startswith("sla_")] == [Trigger.SLA_WARNING, Trigger.SLA_BREACH]

    # Twice, or a second worker: nothing is announced again.
    count = Notification.objects.count()
    assert sla_clock.sweep(clock.now) == 0
    Conversation.objects.filter(pk=conversation.pk).update(sla_check_at=clock.now)  # even if asked to look again
    assert sla_clock.sweep(clock.now) == 1
    assert Notification.objects.count() == count
    assert Event.objects.filter(conversation=conversation, kind=EventKind.SLA).count() == 3  # applied, warning, breach


def test_a_breach_is_not_announced_again_after_a_pause(desk: Desk, clock: Clock) -> None:
    policy("Standard", first_response_minutes=None, resolution_minutes=60, warn_before_minutes=0)
    start = clock.now
    conversation = desk.deliver(subject="Still broken").conversation
    clock.set(start + timedelta(minutes=90))
    sla_clock.sweep(clock.now)
    assert Notification.objects.count() == 0  # nobody owns it and supervisors are only told of breaches
    assert Event.objects.filter(kind=EventKind.SLA, data__breach="resolution").count() == 1

    actions.do_set_status(desk.agent, conversation, Status.PENDING)
    clock.advance(hours=3)
    actions.do_set_status(desk.agent, conversation, Status.OPEN)
    resumed = fresh(conversation)
    label = DueTexts(clock.now).label(resumed)
    assert label is not None and label.state == "breached" and label.text == "breached 30 min ago"
    sla_clock.sweep(clock.now + timedelta(minutes=1))
    assert Event.objects.filter(kind=EventKind.SLA, data__breach="resolution").count() == 1


def test_due_labels_read_like_a_person_would_say_them() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def label(**delta: float) -> tuple[str, str] | None:
        found = DueTexts(now).label(Conversation(sla_due_at=now + timedelta(**delta)))
        return None if found is None else (found.state, found.text)

    assert label(minutes=23) == ("warning", "due in 23 min")
    assert label(hours=3) == ("ok", "due in 3 h")
    assert label(days=3) == ("ok", "due in 3 days")
    assert label(hours=-2) == ("breached", "breached 2 h ago")
    assert label(seconds=-20) == ("breached", "breached just now")
    assert DueTexts(now).label(Conversation()) is None
