"""The automatic acknowledgement (desk/acknowledge.py): once, to people only, with the promised time in their
language."""

# ruff: noqa: RUF001

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from factories import make_mailbox, make_raw_mail, make_team
from postdesk.desk import acknowledge
from postdesk.desk.blobs import default_store
from postdesk.desk.models import (
    AutoReply,
    BusinessCalendar,
    Contact,
    ContactAddress,
    Conversation,
    Direction,
    Event,
    EventKind,
    Mailbox,
    Message,
    OutboundMail,
    ReceivedMail,
    ReplyTemplate,
    SlaPolicy,
    Status,
)
from two_teams import _deliver

pytestmark = pytest.mark.django_db

# Tuesday 24 November 2026, 20:00 in Berlin: after hours, so the first response is due Wednesday 10:00.
TUESDAY_EVENING = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)


@pytest.fixture
def mailbox(db: None) -> Mailbox:
    calendar = BusinessCalendar.objects.create(
        name="Berlin", time_zone="Europe/Berlin", weekly_hours={d: ["09:00-17:00"] for d in ("mon", "tue", "wed")}
    )
    team = make_team("Support")
    box = make_mailbox("help@shop.test", team=team, name="Shop help")
    box.calendar = calendar
    box.acknowledge = True
    box.acknowledgement_template = "ack"
    box.save()
    SlaPolicy.objects.create(name="Standard", first_response_minutes=60)
    ReplyTemplate.objects.create(
        key="ack",
        language="",
        name="Acknowledgement",
        subject="We got your mail (#{number})",
        body="Hello {customer_name}, we will answer by {promised_time}. {mailbox} {unknown} {subject.__class__}",
    )
    ReplyTemplate.objects.create(
        key="ack",
        language="ru",
        name="Подтверждение",
        subject="Мы получили ваше письмо (#{number})",
        body="Здравствуйте, {customer_name}! Мы ответим до {promised_time}.",
    )
    return box


def deliver(mailbox: Mailbox, at: datetime = TUESDAY_EVENING, **mail: Any) -> Message:
    mail.setdefault("to", mailbox.address)
    return _deliver(mailbox, make_raw_mail(**mail), at=at)


def acknowledgements(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.filter(direction=Direction.OUTBOUND).order_by("id"))


def step(message: Message) -> str:
    steps = ReceivedMail.objects.get(pk=message.received_mail_id).steps
    detail: str = next(entry["detail"] for entry in steps if entry["step"] == "acknowledge")
    return detail


def test_the_acknowledgement_promises_the_first_response_time_and_is_an_auto_reply(mailbox: Mailbox) -> None:
    inbound = deliver(mailbox, subject="Broken zipper", sender="Alice Customer <alice@customer.test>")
    conversation = Conversation.objects.get(pk=inbound.conversation_id)

    [sent] = acknowledgements(conversation)
    assert [a["address"] for a in sent.to] == ["alice@customer.test"]
    assert sent.subject == f"We got your mail (#{conversation.number})"
    assert sent.text.startswith("Hello Alice Customer, we will answer by Wednesday 25 November, 10:00 (Europe/Berlin).")
    # Unknown placeholders stay as written; nothing reaches attributes of the values.
    assert "Shop help {unknown} {subject.__class__}" in sent.text
    assert sent.author_id is None
    assert sent.in_reply_to == [inbound.message_id]

    outbound = OutboundMail.objects.get(message=sent)
    assert outbound.send_after <= datetime.now(UTC) + timedelta(seconds=1)  # no undo delay
    raw = default_store().get(outbound.raw_sha256)
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nAuto-Submitted: auto-replied\r\n" in b"\r\n" + headers
    assert outbound.recipients == ["alice@customer.test"]

    # Not an answer: the SLA still waits for an agent, and nothing about the conversation's state moved.
    assert conversation.status == Status.NEW
    assert conversation.first_responded_at is None
    assert conversation.first_response_due_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert conversation.waiting_since == TUESDAY_EVENING
    assert conversation.assignee_id is None
    assert conversation.acknowledged_at == TUESDAY_EVENING
    event = Event.objects.get(conversation=conversation, kind=EventKind.ACKNOWLEDGED)
    assert event.data["promised"] == "2026-11-25T09:00:00+00:00"
    assert event.message_id == sent.pk
    assert AutoReply.objects.filter(address="alice@customer.test", conversation=conversation).count() == 1
    assert step(inbound).startswith("sent to alice@customer.test")

    # The customer writes again: no second acknowledgement.
    deliver(
        mailbox,
        at=TUESDAY_EVENING + timedelta(minutes=5),
        subject="Re: Broken zipper",
        in_reply_to=f"<{inbound.message_id}>",
    )
    assert len(acknowledgements(conversation)) == 1


def test_a_russian_customer_gets_the_russian_translation(mailbox: Mailbox) -> None:
    contact = Contact.objects.create(name="Иван Петров", language="ru")
    ContactAddress.objects.create(contact=contact, address="ivan@customer.test")
    inbound = deliver(
        mailbox,
        subject="Не пришёл заказ",
        sender="Иван Петров <ivan@customer.test>",
        body="Здравствуйте! Мой заказ до сих пор не пришёл, хотя прошло уже две недели. Помогите, пожалуйста.\n",
    )
    [sent] = acknowledgements(inbound.conversation)
    assert sent.subject == f"Мы получили ваше письмо (#{inbound.conversation.number})"
    assert sent.text == "Здравствуйте, Иван Петров! Мы ответим до Среда 25 ноября, 10:00 (Europe/Berlin)."


def test_the_promise_is_later_when_the_team_has_a_backlog(mailbox: Mailbox, settings: Any) -> None:
    settings.POSTDESK_MEDIAN_HANDLE_MINUTES = 60
    # Wednesday 09:00 Berlin, nobody on shift: with three waiting (this one included), three hours of work.
    wednesday_9 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    for n in range(2):
        deliver(mailbox, at=wednesday_9 - timedelta(minutes=10), subject=f"earlier {n}", sender=f"c{n}@customer.test")
    inbound = deliver(mailbox, at=wednesday_9, subject="Late parcel", sender="dora@customer.test")
    [sent] = acknowledgements(inbound.conversation)
    assert "Wednesday 25 November, 12:00 (Europe/Berlin)" in sent.text


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        ("Bob <bob@customer.test>", {"Auto-Submitted": "auto-replied"}),
        ("News <news@lists.customer.test>", {"List-Id": "<news.lists.customer.test>", "Precedence": "list"}),
        ("MAILER-DAEMON@customer.test", {}),
        ("no-reply@shop-platform.test", {}),
        ("Loop <help@shop.test>", {}),
    ],
)
def test_never_to_robots_lists_bounces_or_ourselves(mailbox: Mailbox, sender: str, headers: dict[str, str]) -> None:
    inbound = deliver(mailbox, subject="Automatic", sender=sender, extra_headers=headers)
    assert acknowledgements(inbound.conversation) == []
    assert step(inbound).startswith("not sent")
    assert not AutoReply.objects.exists()


def test_at_most_the_daily_limit_per_sender(mailbox: Mailbox, settings: Any) -> None:
    settings.POSTDESK_AUTO_REPLY_DAILY_LIMIT = 2
    sent = []
    for n in range(3):
        inbound = deliver(mailbox, at=TUESDAY_EVENING + timedelta(hours=n), subject=f"Question {n}")
        sent.append(len(acknowledgements(inbound.conversation)))
    assert sent == [1, 1, 0]
    assert "daily-limit" in step(inbound)
    # A day after the first one, there is room again.
    later = deliver(mailbox, at=TUESDAY_EVENING + timedelta(hours=24, minutes=1), subject="Question 4")
    assert len(acknowledgements(later.conversation)) == 1


def test_a_mailbox_without_acknowledgement_sends_nothing(mailbox: Mailbox) -> None:
    mailbox.acknowledge = False
    mailbox.save()
    inbound = deliver(mailbox, subject="Hello")
    assert acknowledgements(inbound.conversation) == []
    assert Conversation.objects.get(pk=inbound.conversation_id).acknowledged_at is None
    assert step(inbound) == "not sent: the mailbox sends no acknowledgement"


def test_without_an_sla_the_promise_is_as_soon_as_possible(mailbox: Mailbox) -> None:
    SlaPolicy.objects.all().delete()
    inbound = deliver(mailbox, subject="Hello")
    [sent] = acknowledgements(inbound.conversation)
    assert "we will answer by as soon as possible." in sent.text

    # Without a template, the built-in text says it in a sentence of its own.
    mailbox.acknowledgement_template = ""
    mailbox.save()
    other = deliver(mailbox, subject="Hello again", sender="eve@customer.test")
    [builtin] = acknowledgements(other.conversation)
    assert "will answer as soon as possible." in builtin.text
    assert f"#{other.conversation.number}" in builtin.text


def test_placeholders_are_only_the_five_names() -> None:
    values = {"customer_name": "Ann", "number": "7"}
    assert acknowledge.fill_placeholders("{customer_name} #{number} {number.real} {0} {", values) == (
        "Ann #7 {number.real} {0} {"
    )
