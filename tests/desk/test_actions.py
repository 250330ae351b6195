"""The service layer's writes (desk/actions.py): rights, timeline, collisions, merge, split, snooze, spam, bulk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from factories import make_agent, make_raw_mail
from postdesk.desk import actions
from postdesk.desk.errors import BadRequest, NotFound, PermissionDenied
from postdesk.desk.models import (
    BlockedSender,
    Conversation,
    Direction,
    Draft,
    Event,
    EventKind,
    Message,
    Notification,
    OutboundMail,
    Role,
    Status,
)
from two_teams import BASE_TIME, Deliver, TwoTeams, deliver, fast_passwords, two_teams

__all__ = ["deliver", "fast_passwords", "two_teams"]

pytestmark = pytest.mark.django_db


def _reply(world: TwoTeams, text: str = "We are on it.", **kwargs: object) -> Message:
    conversation = world.conversation_x
    seen = kwargs.pop("seen_event_id", actions.latest_event_id(conversation))
    return actions.do_reply(
        world.agent_x,
        conversation,
        text=text,
        recipients=actions.reply_recipients(conversation, reply_all=False),
        seen_event_id=seen,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_reply_is_an_outbound_message_with_an_outbox_row_threaded_on_the_customer_mail(two_teams: TwoTeams) -> None:
    customer = two_teams.conversation_x.messages.get()
    reply = _reply(two_teams)

    assert reply.direction == Direction.OUTBOUND
    assert [a["address"] for a in reply.to] == ["xavier@x-customer.test"]
    assert reply.in_reply_to == [customer.message_id]
    assert reply.references == [customer.message_id]
    assert reply.subject == "Re: Broken login for Xavier"
    assert two_teams.conversation_x.reply_token in (reply.message_id or "")
    outbound = OutboundMail.objects.get(message=reply)
    assert outbound.recipients == ["xavier@x-customer.test"]
    conversation = Conversation.objects.get(pk=two_teams.conversation_x.pk)
    # The answer is given: waiting on the customer, and the replier owns it.
    assert conversation.status == Status.PENDING
    assert conversation.assignee_id == two_teams.agent_x.pk
    assert conversation.waiting_since is None
    assert Event.objects.filter(conversation=conversation, kind=EventKind.REPLIED, message=reply).exists()


def test_the_mailbox_signature_is_added_to_replies_but_not_shown_as_what_the_agent_wrote(two_teams: TwoTeams) -> None:
    two_teams.mailbox_x.signature = "Acme Support\nhttps://acme.test"
    two_teams.mailbox_x.save()
    reply = _reply(two_teams, "Fixed now.")
    assert reply.text.endswith("-- \nAcme Support\nhttps://acme.test")
    assert reply.visible_text == "Fixed now."


def test_reply_is_held_when_someone_else_replied_since_the_agent_opened_it(two_teams: TwoTeams) -> None:
    conversation = two_teams.conversation_x
    opened_at = actions.latest_event_id(conversation)
    colleague = make_agent("ax2@example.org", teams=tuple(two_teams.agent_x.agent.teams.all()))
    actions.do_reply(
        colleague,
        conversation,
        text="Colleague here, fixed.",
        recipients=actions.reply_recipients(conversation, reply_all=False),
        seen_event_id=opened_at,
    )

    with pytest.raises(actions.Collision) as held:
        _reply(two_teams, seen_event_id=opened_at)
    assert any("replied" in change for change in held.value.changes)
    assert conversation.messages.filter(direction=Direction.OUTBOUND).count() == 1

    confirmed = _reply(two_teams, seen_event_id=opened_at, confirm=True)
    assert confirmed.pk is not None


def test_reply_is_held_when_the_customer_wrote_again(two_teams: TwoTeams, deliver: Deliver) -> None:
    conversation = two_teams.conversation_x
    opened_at = actions.latest_event_id(conversation)
    first = conversation.messages.get()
    deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Re: Broken login for Xavier",
            sender="Xavier Client <xavier@x-customer.test>",
            to="x@support.test",
            body="Also the password reset fails.\n",
            in_reply_to=f"<{first.message_id}>",
        ),
        at=BASE_TIME + timedelta(minutes=5),
    )
    with pytest.raises(actions.Collision) as held:
        _reply(two_teams, seen_event_id=opened_at)
    assert held.value.changes == ["the customer wrote again"]


def test_own_earlier_actions_do_not_hold_a_reply(two_teams: TwoTeams) -> None:
    opened_at = actions.latest_event_id(two_teams.conversation_x)
    actions.do_take(two_teams.agent_x, two_teams.conversation_x)
    _reply(two_teams, seen_event_id=opened_at)


def test_header_injection_through_an_address_is_refused(two_teams: TwoTeams) -> None:
    with pytest.raises(BadRequest, match="line break"):
        actions.parse_addresses("a@x.test\r\nBcc: victim@y.test", label="To")
    with pytest.raises(BadRequest, match="not an email address"):
        actions.parse_addresses("not an address", label="Cc")
    assert actions.parse_addresses("Ann <Ann@X.test>, b@y.test", label="To") == ("ann@x.test", "b@y.test")


def test_an_agent_cannot_act_on_another_teams_conversation(two_teams: TwoTeams) -> None:
    other = two_teams.conversation_y
    with pytest.raises(NotFound):
        actions.do_set_status(two_teams.agent_x, other, Status.RESOLVED)
    with pytest.raises(NotFound):
        actions.do_note(two_teams.agent_x, other, text="peek")
    with pytest.raises(NotFound):
        actions.do_reply(
            two_teams.agent_x,
            other,
            text="hi",
            recipients=actions.Recipients(to=("yolanda@y-customer.test",)),
            seen_event_id=0,
        )
    assert Conversation.objects.get(pk=other.pk).status == Status.NEW
    assert not Message.objects.filter(conversation=other).exclude(direction=Direction.INBOUND).exists()


def test_collaborators_may_add_notes_but_nothing_else(two_teams: TwoTeams) -> None:
    helper = make_agent("collab@example.org", teams=tuple(two_teams.agent_x.agent.teams.all()), role=Role.COLLABORATOR)
    note = actions.do_note(helper, two_teams.conversation_x, text="Customer is a reseller.")
    assert note.direction == Direction.NOTE
    with pytest.raises(PermissionDenied):
        actions.do_set_status(helper, two_teams.conversation_x, Status.RESOLVED)
    with pytest.raises(PermissionDenied):
        actions.do_reply(
            helper,
            two_teams.conversation_x,
            text="hi",
            recipients=actions.Recipients(to=("xavier@x-customer.test",)),
            seen_event_id=0,
        )


def test_mentions_notify_agents_who_can_see_the_conversation_only(two_teams: TwoTeams) -> None:
    teammate = make_agent("bob@example.org", teams=tuple(two_teams.agent_x.agent.teams.all()))
    actions.do_note(two_teams.agent_x, two_teams.conversation_x, text="@bob can you check? cc @ay@example.org")
    assert list(Notification.objects.values_list("recipient__email", flat=True)) == ["bob@example.org"]
    assert two_teams.conversation_x.followers.filter(pk=teammate.pk).exists()


def test_assigning_to_someone_who_cannot_see_the_mailbox_is_refused(two_teams: TwoTeams) -> None:
    with pytest.raises(BadRequest, match="not in a team"):
        actions.do_assign(two_teams.agent_x, two_teams.conversation_x, two_teams.agent_y)
    conversation = actions.do_assign(two_teams.admin, two_teams.conversation_x, two_teams.agent_x)
    assert conversation.assignee_id == two_teams.agent_x.pk
    assert conversation.status == Status.OPEN
    event = Event.objects.filter(conversation=conversation, kind=EventKind.ASSIGNED).get()
    assert event.actor_id == two_teams.admin.pk
    assert event.data["assignee"] == two_teams.agent_x.pk


def test_snooze_wakes_on_time_and_when_the_customer_writes(two_teams: TwoTeams, deliver: Deliver) -> None:
    with pytest.raises(BadRequest):
        actions.do_snooze(two_teams.agent_x, two_teams.conversation_x, timezone.now() - timedelta(minutes=1))
    until = timezone.now() + timedelta(hours=2)
    actions.do_snooze(two_teams.agent_x, two_teams.conversation_x, until)
    assert actions.wake_snoozed(timezone.now()) == 0
    assert actions.wake_snoozed(until + timedelta(seconds=1)) == 1
    assert Conversation.objects.get(pk=two_teams.conversation_x.pk).status == Status.OPEN

    actions.do_snooze(two_teams.agent_x, two_teams.conversation_x, until)
    first = two_teams.conversation_x.messages.order_by("id").first()
    assert first is not None
    deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Re: Broken login for Xavier",
            sender="xavier@x-customer.test",
            to="x@support.test",
            body="Any news?\n",
            in_reply_to=f"<{first.message_id}>",
        ),
        at=BASE_TIME + timedelta(minutes=3),
    )
    woken = Conversation.objects.get(pk=two_teams.conversation_x.pk)
    assert woken.status == Status.OPEN
    assert woken.snoozed_until is None
    assert Event.objects.filter(conversation=woken, kind=EventKind.WOKE, data__reason="customer wrote").exists()


def test_merge_moves_messages_and_later_mail_to_either_lands_in_the_survivor(
    two_teams: TwoTeams, deliver: Deliver
) -> None:
    second = deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Another problem",
            sender="Xavier Client <xavier@x-customer.test>",
            to="x@support.test",
            body="Also my invoice is wrong.\n",
        ),
        at=BASE_TIME + timedelta(minutes=2),
    )
    source = second.conversation
    target = actions.do_merge(two_teams.agent_x, source, two_teams.conversation_x)
    assert target.message_count == 2
    assert Conversation.objects.get(pk=source.pk).status == Status.MERGED

    later = deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Re: Another problem",
            sender="xavier@x-customer.test",
            to="x@support.test",
            body="Ping about the invoice.\n",
            in_reply_to=f"<{second.message_id}>",
        ),
        at=BASE_TIME + timedelta(minutes=4),
    )
    assert later.conversation_id == target.pk

    with pytest.raises(BadRequest):
        actions.do_merge(two_teams.agent_x, target, target)
    with pytest.raises(NotFound):
        actions.do_merge(two_teams.agent_x, target, two_teams.conversation_y)


def test_split_moves_one_customer_message_into_a_new_linked_conversation(two_teams: TwoTeams, deliver: Deliver) -> None:
    first = two_teams.conversation_x.messages.get()
    follow_up = deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Re: Broken login for Xavier",
            sender="xavier@x-customer.test",
            to="x@support.test",
            body="Unrelated: please change my billing address.\n",
            in_reply_to=f"<{first.message_id}>",
        ),
        at=BASE_TIME + timedelta(minutes=6),
    )
    new = actions.do_split(two_teams.agent_x, follow_up)
    assert new.previous_id == two_teams.conversation_x.pk
    assert list(new.messages.values_list("pk", flat=True)) == [follow_up.pk]
    assert Conversation.objects.get(pk=two_teams.conversation_x.pk).message_count == 1
    with pytest.raises(BadRequest):
        actions.do_split(two_teams.agent_x, first)  # the only message left


def test_spam_with_block_sends_that_senders_later_mail_to_spam(two_teams: TwoTeams, deliver: Deliver) -> None:
    actions.do_mark_spam(two_teams.agent_x, two_teams.conversation_x, block_sender=True)
    assert BlockedSender.objects.filter(pattern="xavier@x-customer.test").exists()
    later = deliver(
        two_teams.mailbox_x,
        make_raw_mail(subject="Buy now", sender="xavier@x-customer.test", to="x@support.test", body="Cheap!\n"),
        at=BASE_TIME + timedelta(minutes=7),
    )
    assert later.conversation.status == Status.SPAM


def test_drafts_are_saved_shared_and_removed_when_sent(two_teams: TwoTeams) -> None:
    actions.do_save_draft(two_teams.agent_x, two_teams.conversation_x, text="Dear Xavier, we")
    assert Draft.objects.get(conversation=two_teams.conversation_x).text == "Dear Xavier, we"
    _reply(two_teams, "Dear Xavier, we fixed it.")
    assert not Draft.objects.filter(conversation=two_teams.conversation_x).exists()
    with pytest.raises(NotFound):
        actions.do_save_draft(two_teams.agent_x, two_teams.conversation_y, text="peek")


def test_bulk_reports_hidden_conversations_as_not_found_and_leaves_them_alone(two_teams: TwoTeams) -> None:
    numbers = [two_teams.conversation_x.number, two_teams.conversation_y.number, 999_999]
    result = actions.do_bulk(two_teams.agent_x, numbers, "status", Status.RESOLVED)
    assert result.changed == 1
    assert len(result.errors) == 2
    assert Conversation.objects.get(pk=two_teams.conversation_x.pk).status == Status.RESOLVED
    assert Conversation.objects.get(pk=two_teams.conversation_y.pk).status == Status.NEW
    with pytest.raises(BadRequest):
        actions.do_bulk(two_teams.agent_x, numbers, "explode")


def test_tags_are_normalised_and_recorded_in_the_timeline(two_teams: TwoTeams) -> None:
    actions.do_tag(two_teams.agent_x, two_teams.conversation_x, add=["  Billing ", "billing", "VIP"])
    assert sorted(two_teams.conversation_x.tags.values_list("name", flat=True)) == ["billing", "vip"]
    actions.do_tag(two_teams.agent_x, two_teams.conversation_x, remove=["vip"])
    assert list(two_teams.conversation_x.tags.values_list("name", flat=True)) == ["billing"]
    kinds = list(Event.objects.filter(conversation=two_teams.conversation_x).values_list("kind", flat=True))
    assert kinds.count(EventKind.TAGGED) == 2


def test_saved_views_belong_to_their_owner(two_teams: TwoTeams) -> None:
    view = actions.do_save_view(two_teams.agent_x, "My urgent", {"priority": "urgent", "folder": "mine"})
    with pytest.raises(NotFound):
        actions.do_delete_view(two_teams.agent_y, view.pk)
    with pytest.raises(BadRequest):
        actions.do_save_view(two_teams.agent_x, "Bad", {"drop_table": "x"})
    actions.do_delete_view(two_teams.agent_x, view.pk)


def test_undoing_a_reply_puts_the_conversation_back_and_holds_nobody(two_teams: TwoTeams, settings) -> None:  # type: ignore[no-untyped-def]
    from postdesk.desk import outbox

    settings.POSTDESK_UNDO_SEND_SECONDS = 60
    conversation = two_teams.conversation_x
    opened_at = actions.latest_event_id(conversation)
    reply = _reply(two_teams, "Oops, wrong customer.")
    assert Conversation.objects.get(pk=conversation.pk).status == Status.PENDING

    assert outbox.cancel(two_teams.agent_x, reply) is True
    restored = Conversation.objects.get(pk=conversation.pk)
    assert restored.status == Status.NEW
    assert restored.assignee_id is None
    assert restored.waiting_since is not None
    assert Draft.objects.get(conversation=conversation, author=two_teams.agent_x).text == "Oops, wrong customer."

    colleague = make_agent("ax3@example.org", teams=tuple(two_teams.agent_x.agent.teams.all()))
    sent = actions.do_reply(
        colleague,
        conversation,
        text="The right answer.",
        recipients=actions.reply_recipients(conversation, reply_all=False),
        seen_event_id=opened_at,
    )
    assert sent.pk is not None
