"""Rules on real conversations (desk/rule_runner.py): intake, agents' actions, loops, time checks, mail, admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from factories import make_agent, make_raw_mail, make_team
from postdesk.desk import actions, rule_runner
from postdesk.desk.models import (
    AutoReply,
    BusinessCalendar,
    Conversation,
    DecisionSource,
    Direction,
    Event,
    EventKind,
    Message,
    Notification,
    OutboundMail,
    Priority,
    ReplyTemplate,
    Role,
    Rule,
    Status,
)
from two_teams import BASE_TIME, Deliver, TwoTeams, deliver, fast_passwords, two_teams

__all__ = ["deliver", "fast_passwords", "two_teams"]

pytestmark = pytest.mark.django_db


def make_rule(slug: str, definition: dict[str, object], *, order: int = 0, enabled: bool = True) -> Rule:
    rule_runner.rule_from_row(Rule(slug=slug, name=slug, order=order, enabled=enabled, definition=definition))
    return Rule.objects.create(
        slug=slug, name=slug.replace("-", " ").title(), order=order, enabled=enabled, definition=definition
    )


def fired(conversation: Conversation) -> list[dict[str, object]]:
    rows = Event.objects.filter(conversation=conversation, kind=EventKind.RULE_FIRED).order_by("id")
    return [row.data for row in rows]


def fired_slugs(conversation: Conversation) -> list[object]:
    return [data.get("rule") for data in fired(conversation) if data.get("rule")]


def mail_x(
    deliver: Deliver,
    world: TwoTeams,
    *,
    subject: str,
    sender: str = "Carla <carla@customer.test>",
    at: datetime = BASE_TIME,
    **headers: str,
) -> Message:
    raw = make_raw_mail(
        subject=subject,
        sender=sender,
        to="x@support.test",
        extra_headers={k.replace("_", "-"): v for k, v in headers.items()},
    )
    return deliver(world.mailbox_x, raw, at=at)


# --- intake -------------------------------------------------------------------------------------------


def test_a_refund_mail_goes_to_billing_with_high_priority_and_the_reason_on_the_timeline(
    two_teams: TwoTeams, deliver: Deliver
) -> None:
    billing = make_team("Billing")
    make_rule(
        "refunds-to-billing",
        {
            "triggers": ["conversation_created"],
            "conditions": [{"field": "subject", "operator": "contains", "value": "refund"}],
            "actions": [
                {"kind": "set_team", "value": "billing"},
                {"kind": "set_priority", "value": "urgent"},
                {"kind": "add_tags", "value": ["refund"]},
            ],
        },
    )
    message = mail_x(deliver, two_teams, subject="Please REFUND my last order")
    conversation = Conversation.objects.get(pk=message.conversation_id)

    assert conversation.team_id == billing.pk
    assert conversation.priority == Priority.URGENT
    assert conversation.priority_source == DecisionSource.RULE
    assert list(conversation.tags.values_list("name", flat=True)) == ["refund"]
    [event] = fired(conversation)
    assert event["rule"] == "refunds-to-billing"
    assert event["trigger"] == "conversation_created"
    assert event["reasons"] == ["subject contains 'refund'"]
    assert event["actions"] == ["moved to team Billing", "priority set to urgent", "tagged refund"]
    # Each change says which rule made it.
    for kind in (EventKind.ROUTED, EventKind.PRIORITY, EventKind.TAGGED):
        assert Event.objects.get(conversation=conversation, kind=kind).data["rule"] == "refunds-to-billing"
    assert message.received_mail is not None
    [rules_step] = [step for step in message.received_mail.steps if step["step"] == "rules"]
    assert rules_step["detail"] == "1 rule fired: refunds-to-billing"

    other = mail_x(deliver, two_teams, subject="Where is my parcel?")
    assert fired(other.conversation) == []
    assert Conversation.objects.get(pk=other.conversation_id).priority == Priority.NORMAL


def test_rules_run_in_order_and_stop_processing_ends_the_run(two_teams: TwoTeams, deliver: Deliver) -> None:
    vip = {"field": "sender_domain", "operator": "is", "value": "bigcorp.test"}
    make_rule(
        "tag-everything",
        {"triggers": ["conversation_created"], "actions": [{"kind": "add_tags", "value": ["seen"]}]},
        order=30,
    )
    make_rule(
        "vip-first",
        {
            "triggers": ["conversation_created"],
            "conditions": [vip],
            "actions": [{"kind": "set_priority", "value": "urgent"}],
            "stop_processing": True,
        },
        order=10,
    )
    make_rule(
        "vip-category",
        {
            "triggers": ["conversation_created"],
            "conditions": [vip],
            "actions": [{"kind": "set_category", "value": "vip"}],
        },
        order=5,
    )

    vip_mail = mail_x(deliver, two_teams, subject="Contract", sender="Boss <ceo@bigcorp.test>")
    conversation = Conversation.objects.get(pk=vip_mail.conversation_id)
    assert fired_slugs(conversation) == ["vip-category", "vip-first"]
    assert conversation.priority == Priority.URGENT and conversation.category == "vip"
    assert not conversation.tags.exists()

    plain = mail_x(deliver, two_teams, subject="Question")
    assert fired_slugs(plain.conversation) == ["tag-everything"]


# --- triggers from agents' actions -------------------------------------------------------------------


def test_agent_replied_and_status_changed_rules_follow_real_actions(two_teams: TwoTeams) -> None:
    make_rule(
        "answered",
        {"triggers": ["agent_replied"], "actions": [{"kind": "add_tags", "value": ["answered"]}]},
    )
    make_rule(
        "resolved-note",
        {
            "triggers": ["status_changed"],
            "conditions": [{"field": "status", "operator": "is", "value": "resolved"}],
            "actions": [{"kind": "add_note", "value": "Resolved #{number} for {customer_name}; survey follows."}],
        },
    )
    conversation = two_teams.conversation_x
    actions.do_reply(
        two_teams.agent_x,
        conversation,
        text="Try again now.",
        recipients=actions.reply_recipients(conversation, reply_all=False),
        seen_event_id=actions.latest_event_id(conversation),
    )
    assert list(conversation.tags.values_list("name", flat=True)) == ["answered"]
    assert fired(conversation)[-1]["trigger"] == "agent_replied"

    actions.do_set_status(two_teams.agent_x, conversation, Status.RESOLVED)
    note = Message.objects.get(conversation=conversation, direction=Direction.NOTE)
    assert note.text == f"Resolved #{conversation.number} for Xavier Client; survey follows."
    assert note.author_id is None
    assert fired_slugs(conversation) == ["answered", "resolved-note"]
    # The rule's own note does not set off note_added rules or fire the rule again.
    assert Event.objects.filter(conversation=conversation, kind=EventKind.NOTED).get().data["rule"] == "resolved-note"


def test_rules_that_would_ping_pong_stop_and_the_loop_guard_is_on_the_timeline(two_teams: TwoTeams) -> None:
    make_rule(
        "open-means-pending",
        {
            "triggers": ["status_changed"],
            "conditions": [{"field": "status", "operator": "is", "value": "open"}],
            "actions": [{"kind": "set_status", "value": "pending"}, {"kind": "set_priority", "value": "low"}],
        },
        order=2,
    )
    make_rule(
        "pending-means-open",
        {
            "triggers": ["status_changed"],
            "conditions": [{"field": "status", "operator": "is", "value": "pending"}],
            "actions": [{"kind": "set_status", "value": "open"}, {"kind": "set_priority", "value": "high"}],
        },
        order=1,
    )
    conversation = two_teams.conversation_x
    actions.do_set_status(two_teams.agent_x, conversation, Status.OPEN)

    conversation.refresh_from_db()
    assert fired_slugs(conversation) == ["open-means-pending", "pending-means-open"]
    assert conversation.status == Status.OPEN and conversation.priority == Priority.HIGH
    [guard] = [data for data in fired(conversation) if "suppressed" in data]
    assert [item["rule"] for item in guard["suppressed"]] == ["open-means-pending"]  # type: ignore[index, union-attr]
    statuses = Event.objects.filter(conversation=conversation, kind=EventKind.STATUS).count()
    assert statuses == 3  # the agent's, then one turn of each rule


# --- time checks and auto-replies -----------------------------------------------------------------------


def test_pending_for_three_days_sends_the_reminder_once(two_teams: TwoTeams) -> None:
    ReplyTemplate.objects.create(
        key="reminder", name="Reminder", body="Hello {customer_name}, is #{number} ({subject}) solved? {unknown}"
    )
    make_rule(
        "remind-pending",
        {
            "triggers": ["time_check"],
            "conditions": [
                {"field": "status", "operator": "is", "value": "pending"},
                {"field": "hours_in_status", "operator": "greater_than", "value": 72},
            ],
            "actions": [{"kind": "send_template", "value": "reminder"}],
        },
    )
    conversation = two_teams.conversation_x
    actions.do_reply(
        two_teams.agent_x,
        conversation,
        text="Does it work now?",
        recipients=actions.reply_recipients(conversation, reply_all=False),
        seen_event_id=actions.latest_event_id(conversation),
    )
    now = timezone.now()
    assert rule_runner.run_time_checks(now + timedelta(days=2)) == 0
    assert rule_runner.run_time_checks(now + timedelta(days=3, minutes=5)) == 1
    assert rule_runner.run_time_checks(now + timedelta(days=3, minutes=10)) == 0
    assert rule_runner.run_time_checks(now + timedelta(days=5)) == 0

    [reminder] = Message.objects.filter(conversation=conversation, direction=Direction.OUTBOUND, author=None)
    assert (
        reminder.text == f"Hello Xavier Client, is #{conversation.number} (Broken login for Xavier) solved? {{unknown}}"
    )
    assert [a["address"] for a in reminder.to] == ["xavier@x-customer.test"]
    assert reminder.automated_kind == "auto_reply"
    assert OutboundMail.objects.filter(message=reminder).exists()
    assert AutoReply.objects.filter(address="xavier@x-customer.test", kind="rule").count() == 1
    conversation.refresh_from_db()
    assert conversation.status == Status.PENDING  # the reminder is not an agent's answer

    # The customer answers and the agent replies again: a new episode, a new reminder three days later.
    actions.do_set_status(two_teams.agent_x, conversation, Status.OPEN)
    actions.do_set_status(two_teams.agent_x, conversation, Status.PENDING)
    later = timezone.now() + timedelta(days=3, hours=1)
    assert rule_runner.run_time_checks(later) == 1


def test_templates_never_answer_robots_and_at_most_n_a_day_per_sender(
    two_teams: TwoTeams, deliver: Deliver, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_AUTO_REPLY_DAILY_LIMIT = 2
    ReplyTemplate.objects.create(key="thanks", name="Thanks", body="Thanks, we got #{number}.")
    ReplyTemplate.objects.create(key="thanks", language="ru", name="Спасибо", body="Спасибо, номер {number}.")
    make_rule(
        "thank-everyone",
        {"triggers": ["conversation_created"], "actions": [{"kind": "send_template", "value": "thanks"}]},
    )
    robot = mail_x(
        deliver,
        two_teams,
        subject="Out of office",
        sender="Dora <dora@customer.test>",
        Auto_Submitted="auto-replied",
    )
    assert not Message.objects.filter(conversation=robot.conversation, direction=Direction.OUTBOUND).exists()
    [event] = fired(robot.conversation)
    assert "not sent to dora@customer.test: the mail is automatic" in str(event["actions"])

    sent = []
    for n in range(3):
        message = mail_x(deliver, two_teams, subject=f"Question number {n}", at=BASE_TIME + timedelta(minutes=n))
        sent.append(Message.objects.filter(conversation=message.conversation, direction=Direction.OUTBOUND).count())
    assert sent == [1, 1, 0]
    assert "already got 2 automatic replies today" in str(fired(message.conversation)[0]["actions"])


def test_a_template_is_chosen_in_the_conversations_language(two_teams: TwoTeams, deliver: Deliver) -> None:
    ReplyTemplate.objects.create(key="thanks", name="Thanks", body="Thanks, we got #{number}.")
    ReplyTemplate.objects.create(key="thanks", language="ru", name="Спасибо", body="Спасибо, номер {number}.")
    conversation = two_teams.conversation_x
    conversation.language = "ru"
    conversation.save(update_fields=["language"])
    assert rule_runner.find_template("thanks", conversation).body.startswith("Спасибо")  # type: ignore[union-attr]
    conversation.language = "de"
    assert rule_runner.find_template("thanks", conversation).body.startswith("Thanks")  # type: ignore[union-attr]
    assert rule_runner.find_template("missing", conversation) is None


def test_notify_reaches_the_owner_and_the_teams_supervisors_only(two_teams: TwoTeams, deliver: Deliver) -> None:
    team_x = two_teams.agent_x.agent.teams.get()
    supervisor = make_agent("sx@example.org", teams=(team_x,), role=Role.SUPERVISOR)
    make_agent("sy@example.org", teams=(two_teams.agent_y.agent.teams.get(),), role=Role.SUPERVISOR)
    make_rule(
        "urgent-alert",
        {
            "triggers": ["priority_changed"],
            "conditions": [{"field": "priority", "operator": "is", "value": "urgent"}],
            "actions": [
                {"kind": "notify", "value": "owner", "channels": ["in_app"]},
                {"kind": "notify", "value": "supervisor"},
                {"kind": "notify", "value": "ay@example.org"},
            ],
        },
    )
    conversation = two_teams.conversation_x
    actions.do_assign(two_teams.agent_x, conversation, two_teams.agent_x)
    actions.do_set_priority(two_teams.agent_x, conversation, Priority.URGENT)

    notified = set(Notification.objects.filter(conversation=conversation).values_list("recipient__email", flat=True))
    assert notified == {"ax@example.org", "sx@example.org"}
    rule_event = Event.objects.get(conversation=conversation, kind=EventKind.RULE_FIRED)
    assert all(n.event_id == rule_event.pk for n in Notification.objects.filter(conversation=conversation))
    assert "cannot see this mailbox" in str(rule_event.data["actions"])
    assert supervisor.pk in Notification.objects.values_list("recipient_id", flat=True)


def test_an_assignee_who_cannot_see_the_mailbox_is_refused_and_the_reason_recorded(
    two_teams: TwoTeams, deliver: Deliver
) -> None:
    make_rule(
        "give-to-y",
        {"triggers": ["conversation_created"], "actions": [{"kind": "set_assignee", "value": "ay@example.org"}]},
        order=1,
    )
    make_rule(
        "give-to-x",
        {"triggers": ["conversation_created"], "actions": [{"kind": "set_assignee", "value": "AX@example.org"}]},
        order=2,
    )
    message = mail_x(deliver, two_teams, subject="Login")
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.assignee_id == two_teams.agent_x.pk
    assert conversation.status == Status.OPEN
    first, second = fired(conversation)
    assert "not in a team that sees this mailbox" in str(first["actions"])
    assert second["actions"] == ["assigned to ax@example.org"]


def test_rule_changes_take_effect_at_once_and_broken_rows_are_skipped(two_teams: TwoTeams, deliver: Deliver) -> None:
    rule = make_rule(
        "tag-all", {"triggers": ["conversation_created"], "actions": [{"kind": "add_tags", "value": ["one"]}]}
    )
    Rule.objects.create(slug="broken", name="Broken", definition={"triggers": ["never"], "actions": []})
    first = mail_x(deliver, two_teams, subject="First")
    assert fired_slugs(first.conversation) == ["tag-all"]

    rule.definition = {"triggers": ["conversation_created"], "actions": [{"kind": "add_tags", "value": ["two"]}]}
    rule.updated_at = timezone.now()
    rule.save()
    second = mail_x(deliver, two_teams, subject="Second")
    assert list(second.conversation.tags.values_list("name", flat=True)) == ["two"]

    Rule.objects.filter(pk=rule.pk).update(enabled=False)
    third = mail_x(deliver, two_teams, subject="Third")
    assert fired(third.conversation) == []


# --- the admin ----------------------------------------------------------------------------------------


def _rule_form(definition: str, **overrides: str) -> dict[str, str]:
    return {
        "slug": "vip",
        "name": "VIP first",
        "order": "1",
        "enabled": "on",
        "definition_json": definition,
        **overrides,
    }


def test_the_admin_shows_each_problem_of_a_bad_rule_on_its_field(two_teams: TwoTeams) -> None:
    client = Client()
    client.force_login(two_teams.superuser)
    assert client.get("/admin/desk/rule/add/").status_code == 200

    not_json = client.post("/admin/desk/rule/add/", _rule_form("{triggers: oops"))
    assert not_json.status_code == 200
    assert "This is not valid JSON" in not_json.content.decode()

    bad = (
        '{"triggers": ["conversation_created", "sometimes"], "conditions": [{"field": "subject", '
        '"operator": "greater_than", "value": 3}], "actions": [{"kind": "set_priority", "value": "hihg"}]}'
    )
    response = client.post("/admin/desk/rule/add/", _rule_form(bad))
    page = response.content.decode()
    assert response.status_code == 200
    assert "triggers[1]: &#x27;sometimes&#x27; is not a known trigger" in page
    assert "conditions[0].operator: &#x27;greater_than&#x27; does not apply to subject" in page
    assert "actions[0].value: &#x27;hihg&#x27; is not a priority" in page
    assert not Rule.objects.exists()

    good = '{"triggers": ["conversation_created"], "actions": [{"kind": "add_tags", "value": "a, b"}]}'
    saved = client.post("/admin/desk/rule/add/", _rule_form(good))
    assert saved.status_code == 302
    rule = Rule.objects.get(slug="vip")
    assert rule.definition["actions"] == [{"kind": "add_tags", "value": ["a", "b"]}]
    listing = client.get("/admin/desk/rule/").content.decode()
    assert "when conversation_created, if always: add_tags" in listing


def test_a_non_staff_agent_cannot_open_the_rules_admin(two_teams: TwoTeams) -> None:
    client = Client()
    client.force_login(two_teams.agent_x)
    response = client.get("/admin/desk/rule/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.get("/admin/desk/webhookcall/").status_code == 302


def test_business_hours_come_from_the_team_calendar(two_teams: TwoTeams, deliver: Deliver) -> None:
    office = BusinessCalendar.objects.create(
        name="Berlin office",
        time_zone="Europe/Berlin",
        weekly_hours={day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    )
    team = two_teams.mailbox_x.team
    assert team is not None
    team.calendar = office
    team.save()
    make_rule(
        "after-hours",
        {
            "triggers": ["conversation_created"],
            "conditions": [{"field": "in_business_hours", "operator": "is_false"}],
            "actions": [{"kind": "add_tags", "value": "after-hours"}],
        },
    )
    saturday = datetime(2026, 11, 21, 11, 0, tzinfo=UTC)
    monday_morning = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 10:30 in Berlin
    weekend = mail_x(deliver, two_teams, subject="Weekend question", at=saturday).conversation
    weekday = mail_x(deliver, two_teams, subject="Weekday question", sender="Bo <bo@c.test>", at=monday_morning)
    assert list(weekend.tags.values_list("name", flat=True)) == ["after-hours"]
    assert not weekday.conversation.tags.exists()
