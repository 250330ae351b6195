"""The conversation page and every action an agent takes on it, through the page's own forms and fragments.

Each action is posted the way the browser does (a plain form post, or htmx with `HX-Request`), and the test
checks what the agent then sees: the state on the page, the timeline, the editor, the status code and message.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from django.test import Client
from django.utils import timezone

from factories import make_agent, make_mailbox, make_raw_mail
from postdesk.desk import actions
from postdesk.desk.models import (
    BlockedSender,
    Conversation,
    Direction,
    Draft,
    Event,
    Message,
    Notification,
    OutboundMail,
    OutboundState,
    Role,
    Status,
)
from postdesk.web.thread import snooze_until
from two_teams import BASE_TIME, Deliver, TwoTeams

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
HTMX = {"HTTP_HX_REQUEST": "true"}


def logged_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def url(conversation: Conversation, tail: str = "") -> str:
    return f"/c/{conversation.number}/{tail}"


def seen_id(html: str, kind: str = "reply") -> int:
    """The seen_event_id the page's reply (or forward) form carries."""
    match = re.search(rf'name="seen_event_id" id="{kind}-seen-event-id" value="(\d+)"', html)
    assert match, f"no {kind} form with seen_event_id on the page"
    return int(match.group(1))


def textarea(html: str, kind: str) -> str:
    match = re.search(rf'<textarea id="{kind}-text"[^>]*>(.*?)</textarea>', html, re.S)
    assert match, f"no {kind} editor"
    return match.group(1)


def field_value(html: str, field_id: str) -> str:
    match = re.search(rf'id="{field_id}" name="[^"]+" value="([^"]*)"', html)
    assert match, f"no field {field_id}"
    return match.group(1)


def fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


def timeline(client: Client, conversation: Conversation) -> str:
    response = client.get(url(conversation, "timeline"), **HTMX)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def teammate(two_teams: TwoTeams):  # type: ignore[no-untyped-def]
    """A second agent of team X (sees the same conversations as agent_x)."""
    team_x = two_teams.mailbox_x.team
    assert team_x is not None
    return make_agent("bob@example.org", teams=(team_x,))


@pytest.fixture
def collaborator(two_teams: TwoTeams):  # type: ignore[no-untyped-def]
    team_x = two_teams.mailbox_x.team
    assert team_x is not None
    return make_agent("carol@example.org", teams=(team_x,), role=Role.COLLABORATOR)


# --- the page ----------------------------------------------------------------------------------------


def test_page_shows_thread_contact_timeline_editors_and_live_hooks(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    response = logged_in(two_teams.agent_x).get(url(x))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Broken login for Xavier" in html
    assert "I cannot log in since Monday." in html
    # The contact panel and the timeline.
    assert 'data-testid="contact-panel"' in html and "Xavier Client" in html
    assert "xavier@x-customer.test" in html
    assert re.search(r'data-kind="received">.*?Xavier Client wrote', html, re.S)
    # The reply editor is prefilled with the customer and carries what the agent has seen.
    assert field_value(html, "reply-to") == "xavier@x-customer.test"
    assert seen_id(html) == actions.latest_event_id(x) > 0
    # What live.js and the shortcuts need.
    assert f'data-live-conversation="{x.pk}" data-live-number="{x.number}"' in html
    assert '<div id="presence"' in html
    assert re.search(r'<textarea id="reply-text"[^>]*data-typing', html)
    assert 'hx-trigger="pd:changed from:body"' in html
    for key in ('data-shortcut="r"', 'data-shortcut="R"', 'data-shortcut="n"', 'data-shortcut="f"'):
        assert key in html, key
    for key in ('data-shortcut="a"', 'data-shortcut="e"', 'data-shortcut="z"', 'data-shortcut="#"'):
        assert key in html, key
    assert '<script src="/static/postdesk/thread.js" defer></script>' in html
    # No inline script, no event-handler attribute, no inline style: the CSP allows none.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"\son[a-z]+=", html)
    assert " style=" not in html


def test_static_files_of_the_page_are_served(two_teams: TwoTeams) -> None:
    client = logged_in(two_teams.agent_x)
    for path in ("/static/postdesk/thread.js", "/static/postdesk/thread.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_next_and_previous_follow_the_list_order(two_teams: TwoTeams, deliver: Deliver) -> None:
    later = deliver(
        two_teams.mailbox_x,
        make_raw_mail(subject="Later question", sender="Zed <zed@z.test>", to="x@support.test"),
        at=BASE_TIME + timedelta(hours=2),
    ).conversation
    middle = deliver(
        two_teams.mailbox_x,
        make_raw_mail(subject="Middle question", sender="Mia <mia@m.test>", to="x@support.test"),
        at=BASE_TIME + timedelta(hours=1),
    ).conversation
    html = logged_in(two_teams.agent_x).get(url(middle)).content.decode()
    # The list is newest first: k goes up to the newer one, j down to the older one (team Y's is skipped).
    assert re.search(rf'id="previous-conversation"[^>]*href="/c/{later.number}/"[^>]*data-shortcut="k"', html)
    assert re.search(rf'id="next-conversation"[^>]*href="/c/{two_teams.conversation_x.number}/"[^>]*"j"', html)
    first = logged_in(two_teams.agent_x).get(url(two_teams.conversation_x)).content.decode()
    assert 'id="next-conversation"' not in first


def test_contact_panel_lists_only_conversations_the_agent_may_see(two_teams: TwoTeams, deliver: Deliver) -> None:
    other_x = deliver(
        two_teams.mailbox_x,
        make_raw_mail(subject="Second X issue", sender="Xavier Client <xavier@x-customer.test>", to="x@support.test"),
        at=BASE_TIME + timedelta(days=30),
    ).conversation
    deliver(
        two_teams.mailbox_y,
        make_raw_mail(
            subject="Xavier YSECRET at Y", sender="Xavier Client <xavier@x-customer.test>", to="y@support.test"
        ),
        at=BASE_TIME + timedelta(days=31),
    )
    assert other_x.pk != two_teams.conversation_x.pk
    html = logged_in(two_teams.agent_x).get(url(two_teams.conversation_x)).content.decode()
    panel = re.search(r'data-testid="other-conversations">(.*?)</ul>', html, re.S)
    assert panel is not None
    assert f'href="/c/{other_x.number}/"' in panel.group(1) and "Second X issue" in panel.group(1)
    assert "YSECRET" not in html


# --- replying ----------------------------------------------------------------------------------------


def test_reply_through_the_page_queues_it_and_the_thread_shows_undo(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    page = client.get(url(x)).content.decode()
    response = client.post(
        url(x, "reply"),
        {
            "to": "xavier@x-customer.test",
            "cc": "",
            "bcc": "audit@example.org",
            "text": "We reset your password.",
            "status_after": "resolved",
            "seen_event_id": seen_id(page),
        },
    )
    assert response.status_code == 303
    reply = Message.objects.get(conversation=x, direction=Direction.OUTBOUND)
    assert reply.visible_text == "We reset your password."
    assert [a["address"] for a in reply.bcc] == ["audit@example.org"]
    outbound = OutboundMail.objects.get(message=reply)
    assert outbound.state == OutboundState.QUEUED
    assert set(outbound.recipients) == {"xavier@x-customer.test", "audit@example.org"}
    conversation = fresh(x)
    assert conversation.status == Status.RESOLVED
    assert conversation.assignee_id == two_teams.agent_x.pk
    html = client.get(response["Location"]).content.decode()
    assert "We reset your password." in html
    assert 'data-testid="undo-send"' in html and "Sending in" in html
    assert re.search(r'data-kind="replied">.*?Replied to xavier@x-customer.test', html, re.S)


def test_reply_by_htmx_answers_a_fresh_editor_with_the_undo_countdown(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    seen = seen_id(client.get(url(x)).content.decode())
    response = client.post(
        url(x, "reply"),
        {"to": "xavier@x-customer.test", "text": "Fixed on our side.", "seen_event_id": seen},
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<details id="reply-box"')
    assert textarea(html, "reply") == ""
    assert 'data-testid="sent-notice"' in html
    assert re.search(r"Sending in <span data-countdown>\d+</span> s", html)
    reply = Message.objects.get(conversation=x, direction=Direction.OUTBOUND)
    assert f'action="/c/{x.number}/m/{reply.pk}/undo"' in html
    assert json.loads(response["HX-Trigger"]) == {"pd:changed": {"kind": "replied", "own": True}}
    assert fresh(x).status == Status.PENDING  # the default: waiting on the customer


def test_reply_all_prefills_the_other_recipients(two_teams: TwoTeams, deliver: Deliver) -> None:
    message = deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Team question",
            sender="Ann <ann@client.test>",
            to="x@support.test, Ben <ben@client.test>",
            extra_headers={"Cc": "cy@client.test"},
        ),
    )
    client = logged_in(two_teams.agent_x)
    plain = client.get(url(message.conversation)).content.decode()
    assert field_value(plain, "reply-to") == "ann@client.test"
    assert field_value(plain, "reply-cc") == ""
    assert 'data-all-cc="ben@client.test, cy@client.test"' in plain
    everyone = client.get(url(message.conversation) + "?compose=reply_all").content.decode()
    assert field_value(everyone, "reply-cc") == "ben@client.test, cy@client.test"
    assert re.search(r'value="reply_all" checked', everyone)


def test_forward_goes_to_any_address_and_leaves_the_status(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    seen = seen_id(client.get(url(x)).content.decode(), "forward")
    response = client.post(
        url(x, "forward"),
        {"to": "billing@partner.test", "text": "Can you check his invoice?", "seen_event_id": seen},
    )
    assert response.status_code == 303
    forwarded = Message.objects.get(conversation=x, direction=Direction.OUTBOUND)
    assert forwarded.forwarded
    assert [a["address"] for a in forwarded.to] == ["billing@partner.test"]
    assert fresh(x).status == Status.NEW
    assert "Forwarded to billing@partner.test" in timeline(client, x)


# --- collisions --------------------------------------------------------------------------------------


def test_a_reply_is_held_when_a_teammate_replied_and_sent_when_confirmed(two_teams: TwoTeams, teammate) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    ann, bob = logged_in(two_teams.agent_x), logged_in(teammate)
    ann_seen = seen_id(ann.get(url(x)).content.decode())
    bob_seen = seen_id(bob.get(url(x)).content.decode())
    assert (
        bob.post(
            url(x, "reply"), {"to": "xavier@x-customer.test", "text": "Bob answers first.", "seen_event_id": bob_seen}
        ).status_code
        == 303
    )

    form = {"to": "xavier@x-customer.test", "text": "Ann's careful answer.", "seen_event_id": ann_seen}
    held = ann.post(url(x, "reply"), form, **HTMX)

    assert held.status_code == 409
    html = held.content.decode()
    assert 'data-testid="held"' in html
    assert "bob@example.org replied" in html
    assert textarea(html, "reply") == "Ann&#x27;s careful answer."  # the text is still in the editor
    assert 'name="confirm" value="1"' in html and 'data-testid="review"' in html
    assert Message.objects.filter(conversation=x, direction=Direction.OUTBOUND).count() == 1
    # And kept as Ann's draft, so a reload (or "Review the conversation" without script) has it back.
    assert Draft.objects.get(conversation=x, author=two_teams.agent_x).text == "Ann's careful answer."
    reloaded = ann.get(url(x)).content.decode()
    assert textarea(reloaded, "reply") == "Ann&#x27;s careful answer."

    sent = ann.post(url(x, "reply"), {**form, "confirm": "1"}, **HTMX)
    assert sent.status_code == 200
    assert Message.objects.filter(conversation=x, direction=Direction.OUTBOUND).count() == 2
    assert not Draft.objects.filter(conversation=x, author=two_teams.agent_x).exists()


def test_a_plain_form_post_that_collides_gets_the_whole_page_with_the_text(two_teams: TwoTeams, teammate) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    ann = logged_in(two_teams.agent_x)
    seen = seen_id(ann.get(url(x)).content.decode())
    actions.do_take(teammate, x)
    response = ann.post(url(x, "reply"), {"to": "xavier@x-customer.test", "text": "Mine!", "seen_event_id": seen})
    assert response.status_code == 409
    html = response.content.decode()
    assert "bob@example.org assigned it to bob@example.org" in html
    assert textarea(html, "reply") == "Mine!"
    assert "<html" in html  # the whole page, usable without script
    # That page shows the thread as it is now: what the agent has seen from here on.
    assert seen_id(html) == actions.latest_event_id(x)


def test_a_reply_is_held_when_the_customer_wrote_again(two_teams: TwoTeams, deliver: Deliver) -> None:
    x = two_teams.conversation_x
    ann = logged_in(two_teams.agent_x)
    seen = seen_id(ann.get(url(x)).content.decode())
    first = x.messages.get()
    deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Re: Broken login for Xavier",
            sender="Xavier Client <xavier@x-customer.test>",
            to="x@support.test",
            in_reply_to=f"<{first.message_id}>",
            body="Never mind, it works now!\n",
        ),
        at=BASE_TIME + timedelta(minutes=5),
    )
    held = ann.post(
        url(x, "reply"), {"to": "xavier@x-customer.test", "text": "Try again", "seen_event_id": seen}, **HTMX
    )
    assert held.status_code == 409
    assert "the customer wrote again" in held.content.decode()


def test_the_seen_id_moves_only_when_the_thread_is_rendered_again(two_teams: TwoTeams, teammate) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    ann = logged_in(two_teams.agent_x)
    old_seen = seen_id(ann.get(url(x)).content.decode())
    actions.do_reply(
        teammate,
        x,
        text="Bob was here.",
        recipients=actions.reply_recipients(x, reply_all=False),
        seen_event_id=actions.latest_event_id(x),
    )
    # Ann's page refreshes its thread (live, or "Review the conversation"): the fragment shows Bob's reply
    # and hands the reply form the new seen id out of band.
    fragment = ann.get(url(x, "thread"), **HTMX).content.decode()
    assert "Bob was here." in fragment
    new_seen = int(re.search(r'id="reply-seen-event-id" value="(\d+)" hx-swap-oob="true"', fragment).group(1))  # type: ignore[union-attr]
    assert new_seen > old_seen
    assert '<div id="reply-held" class="held-slot" hx-swap-oob="true"></div>' in fragment
    ok = ann.post(url(x, "reply"), {"to": "xavier@x-customer.test", "text": "Ann adds.", "seen_event_id": new_seen})
    assert ok.status_code == 303


def test_a_reply_without_seen_event_id_is_refused(two_teams: TwoTeams) -> None:
    response = logged_in(two_teams.agent_x).post(
        url(two_teams.conversation_x, "reply"), {"to": "xavier@x-customer.test", "text": "Hi"}, **HTMX
    )
    assert response.status_code == 400
    assert "reload the page" in response.content.decode()
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


# --- undo --------------------------------------------------------------------------------------------


def test_undo_within_the_window_puts_the_text_back(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    seen = seen_id(client.get(url(x)).content.decode())
    client.post(
        url(x, "reply"), {"to": "xavier@x-customer.test", "text": "Oops, wrong customer", "seen_event_id": seen}
    )
    reply = Message.objects.get(conversation=x, direction=Direction.OUTBOUND)

    undone = client.post(url(x, f"m/{reply.pk}/undo"), **HTMX)

    assert undone.status_code == 200
    html = undone.content.decode()
    assert textarea(html, "reply") == "Oops, wrong customer"
    assert "Sending undone" in html
    assert OutboundMail.objects.get(message=reply).state == OutboundState.CANCELLED
    assert Draft.objects.get(conversation=x, author=two_teams.agent_x).text == "Oops, wrong customer"
    page = client.get(url(x)).content.decode()
    assert textarea(page, "reply") == "Oops, wrong customer"
    assert 'data-state="cancelled"' in page
    assert "Undid sending a reply" in timeline(client, x)


def test_undo_after_the_window_is_refused_and_only_the_author_may_undo(two_teams: TwoTeams, teammate) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    seen = seen_id(client.get(url(x)).content.decode())
    client.post(url(x, "reply"), {"to": "xavier@x-customer.test", "text": "Gone already", "seen_event_id": seen})
    reply = Message.objects.get(conversation=x, direction=Direction.OUTBOUND)

    other = logged_in(teammate).post(url(x, f"m/{reply.pk}/undo"), **HTMX)
    assert other.status_code == 403
    assert "Only the agent who" in other.content.decode()

    OutboundMail.objects.filter(message=reply).update(send_after=timezone.now() - timedelta(seconds=1))
    late = client.post(url(x, f"m/{reply.pk}/undo"), **HTMX)
    assert late.status_code == 409
    assert "Too late to undo" in late.content.decode()
    assert OutboundMail.objects.get(message=reply).state == OutboundState.QUEUED

    customer_mail = x.messages.get(direction=Direction.INBOUND)
    assert client.post(url(x, f"m/{customer_mail.pk}/undo"), **HTMX).status_code == 400


# --- notes, drafts -----------------------------------------------------------------------------------


def test_a_note_with_a_mention_notifies_and_is_highlighted(two_teams: TwoTeams, teammate) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    response = client.post(url(x, "note"), {"text": "@bob can you <check> this?"}, **HTMX)
    assert response.status_code == 200
    assert "Note added." in response.content.decode()
    assert textarea(response.content.decode(), "note") == ""
    assert Notification.objects.filter(recipient=teammate, conversation=x).count() == 1
    html = client.get(url(x)).content.decode()
    note = re.search(r'<article class="message note".*?</article>', html, re.S)
    assert note is not None
    assert '<mark class="mention">@bob</mark> can you &lt;check&gt; this?' in note.group(0)
    assert "Added an internal note" in timeline(client, x)


def test_drafts_save_while_typing_and_teammates_see_them(two_teams: TwoTeams, teammate) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    ann = logged_in(two_teams.agent_x)
    saved = ann.post(url(x, "draft"), {"kind": "reply", "to": "xavier@x-customer.test", "text": "Dear Xavier"}, **HTMX)
    assert saved.status_code == 200
    assert "Draft saved at" in saved.content.decode()
    # Typing on: a half-typed address in To does not cost the text, nor the addresses saved before.
    ann.post(url(x, "draft"), {"kind": "reply", "to": "xavier@x-customer.test, not yet an", "text": "Dear Xavier, we"})
    draft = Draft.objects.get(conversation=x, author=two_teams.agent_x)
    assert draft.text == "Dear Xavier, we" and draft.to == ["xavier@x-customer.test"]

    bob_page = logged_in(teammate).get(url(x)).content.decode()
    assert "ax@example.org has a draft reply" in bob_page
    assert "Dear Xavier, we" in bob_page
    fragment = logged_in(teammate).get(url(x, "drafts"), **HTMX).content.decode()
    assert "ax@example.org has a draft reply" in fragment
    # Ann's own page gives the draft back in her editor, not as someone else's.
    own = ann.get(url(x)).content.decode()
    assert textarea(own, "reply") == "Dear Xavier, we"
    assert "has a draft reply" not in own

    # A note being typed is a draft of its own beside the reply; both come back in their editors.
    ann.post(url(x, "draft"), {"kind": "note", "text": "internal thought"}, **HTMX)
    assert Draft.objects.get(conversation=x, author=two_teams.agent_x, kind="reply").text == "Dear Xavier, we"
    assert Draft.objects.get(conversation=x, author=two_teams.agent_x, kind="note").text == "internal thought"
    both = ann.get(url(x)).content.decode()
    assert textarea(both, "reply") == "Dear Xavier, we"
    assert textarea(both, "note") == "internal thought"
    # Emptying an editor discards its draft only.
    ann.post(url(x, "draft"), {"kind": "reply", "text": ""}, **HTMX)
    assert list(Draft.objects.filter(conversation=x).values_list("kind", flat=True)) == ["note"]
    ann.post(url(x, "draft"), {"kind": "note", "text": ""}, **HTMX)
    assert not Draft.objects.filter(conversation=x).exists()
    assert "has a draft" not in logged_in(teammate).get(url(x, "drafts"), **HTMX).content.decode()


def test_a_draft_save_overtaken_by_the_send_does_not_bring_the_text_back(two_teams: TwoTeams, teammate) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    ann = logged_in(two_teams.agent_x)
    seen = seen_id(ann.get(url(x)).content.decode())
    form = {"kind": "reply", "to": "xavier@x-customer.test", "text": "Final words", "seen_event_id": seen}
    assert ann.post(url(x, "reply"), form, **HTMX).status_code == 200
    # The autosave that left the browser just before the click arrives after the send.
    late = ann.post(url(x, "draft"), {**form, "text": "Final word"}, **HTMX)
    assert late.status_code == 200
    assert not Draft.objects.filter(conversation=x).exists()
    assert "has a draft" not in logged_in(teammate).get(url(x, "drafts"), **HTMX).content.decode()
    # Once the thread (with the sent reply) is on screen, the next reply's drafts save again.
    fragment = ann.get(url(x, "thread"), **HTMX).content.decode()
    newer = re.search(r'id="reply-seen-event-id" value="(\d+)"', fragment)
    assert newer is not None
    ann.post(url(x, "draft"), {**form, "text": "PS", "seen_event_id": newer.group(1)}, **HTMX)
    assert Draft.objects.get(conversation=x).text == "PS"


def test_a_draft_of_an_unknown_kind_is_refused(two_teams: TwoTeams) -> None:
    response = logged_in(two_teams.agent_x).post(url(two_teams.conversation_x, "draft"), {"kind": "letter"}, **HTMX)
    assert response.status_code == 400
    assert "Unknown draft kind" in response.content.decode()


# --- the other actions -------------------------------------------------------------------------------


def test_take_assign_status_and_priority(two_teams: TwoTeams, teammate) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    page = client.get(url(x)).content.decode()
    assert f'<option value="{teammate.pk}">bob@example.org</option>' in page  # team X agents are offered
    assert f'<option value="{two_teams.agent_y.pk}"' not in page  # team Y's are not

    took = client.post(url(x, "take"), **HTMX)
    assert took.status_code == 200 and "You took this conversation." in took.content.decode()
    assert json.loads(took["HX-Trigger"])["pd:changed"]["kind"] == "assigned"
    assert fresh(x).assignee_id == two_teams.agent_x.pk
    assert fresh(x).status == Status.OPEN

    assert client.post(url(x, "assign"), {"assignee": str(teammate.pk)}).status_code == 303
    assert fresh(x).assignee_id == teammate.pk
    assert client.post(url(x, "status"), {"status": "resolved"}).status_code == 303
    assert fresh(x).status == Status.RESOLVED
    triaged = fresh(x).get_priority_display()  # "I cannot log in": the urgency lexicon made it High on arrival
    assert client.post(url(x, "priority"), {"priority": "urgent"}).status_code == 303
    assert fresh(x).priority == "urgent"
    assert client.post(url(x, "assign"), {"assignee": ""}).status_code == 303
    assert fresh(x).assignee_id is None

    header = client.get(url(x, "header"), **HTMX).content.decode()
    assert '<span class="badge resolved" data-testid="status">Resolved</span>' in header
    assert 'data-testid="priority">Urgent<' in header
    events = timeline(client, x)
    for text in (
        "Took it",
        "Assigned it to bob@example.org",
        "Changed the status from Open to Resolved",
        f"Changed the priority from {triaged} to Urgent",
        "Unassigned it",
    ):
        assert text in events, text
    assert "ax@example.org" in events  # the actor is named


def test_snooze_by_preset_and_by_time_in_the_agents_zone(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    before = timezone.now()
    assert client.post(url(x, "snooze"), {"preset": "1h", "tz": "Europe/Berlin"}).status_code == 303
    until = fresh(x).snoozed_until
    assert until is not None and timedelta(minutes=59) < until - before < timedelta(minutes=61)
    assert fresh(x).status == Status.SNOOZED

    custom = (timezone.now() + timedelta(days=3)).astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)
    answer = client.post(url(x, "snooze"), {"until": custom.strftime("%Y-%m-%dT%H:%M"), "tz": "Asia/Tokyo"}, **HTMX)
    assert answer.status_code == 200 and "Snoozed until" in answer.content.decode()
    # "09:00" typed in Tokyo is 00:00 UTC: the browser's zone decides what the agent meant.
    assert fresh(x).snoozed_until == custom.replace(tzinfo=UTC) - timedelta(hours=9)
    header = client.get(url(x, "header"), **HTMX).content.decode()
    assert 'data-testid="snoozed-until"' in header
    assert "Snoozed it until" in timeline(client, x)


def test_snooze_presets_follow_the_agents_calendar() -> None:
    now = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # a Friday; already Saturday 07:30 in Tokyo
    assert snooze_until("tomorrow", "", "Asia/Tokyo", now) == datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
    assert snooze_until("tomorrow", "", "UTC", now) == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert snooze_until("monday", "", "UTC", now) == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_tags_follow_and_spam(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    assert client.post(url(x, "tags"), {"add": "Billing, login "}).status_code == 303
    assert sorted(fresh(x).tags.values_list("name", flat=True)) == ["billing", "login"]
    assert client.post(url(x, "tags"), {"remove": "billing"}).status_code == 303
    assert list(fresh(x).tags.values_list("name", flat=True)) == ["login"]
    header = client.get(url(x, "header"), **HTMX).content.decode()
    assert 'data-tag="login"' in header and 'data-tag="billing"' not in header

    assert client.post(url(x, "follow"), {"follow": "1"}).status_code == 303
    assert fresh(x).followers.filter(pk=two_teams.agent_x.pk).exists()
    assert 'data-testid="unfollow"' in client.get(url(x, "header"), **HTMX).content.decode()
    assert client.post(url(x, "follow"), {"follow": "0"}).status_code == 303
    assert not fresh(x).followers.exists()

    spam = client.post(url(x, "spam"), {"block_sender": "1"}, **HTMX)
    assert spam.status_code == 200
    assert "xavier@x-customer.test goes to spam" in spam.content.decode()
    assert fresh(x).status == Status.SPAM
    assert BlockedSender.objects.filter(pattern="xavier@x-customer.test").exists()
    events = timeline(client, x)
    assert "added the tags billing, login" in events
    assert "removed the tags billing" in events
    assert "Followed it" in events and "Stopped following it" in events
    assert "Marked it as spam and blocked xavier@x-customer.test" in events


def test_merge_moves_the_page_to_the_survivor(two_teams: TwoTeams, deliver: Deliver) -> None:
    x = two_teams.conversation_x
    other = deliver(
        two_teams.mailbox_x,
        make_raw_mail(subject="Login again", sender="Xavier Client <xavier@x-customer.test>", to="x@support.test"),
        at=BASE_TIME + timedelta(hours=1),
    ).conversation
    client = logged_in(two_teams.agent_x)
    response = client.post(url(other, "merge"), {"into": f"#{x.number}"}, **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/c/{x.number}/"
    assert fresh(other).status == Status.MERGED
    assert x.messages.count() == 2
    survivor = client.get(url(x)).content.decode()
    assert f"Merged #{other.number} into this conversation" in survivor
    merged_page = client.get(url(other)).content.decode()
    assert 'data-testid="merged-notice"' in merged_page and f'href="/c/{x.number}/"' in merged_page


def test_split_moves_a_message_into_a_new_conversation(two_teams: TwoTeams, deliver: Deliver) -> None:
    x = two_teams.conversation_x
    first = x.messages.get()
    second = deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Re: Broken login for Xavier",
            sender="Xavier Client <xavier@x-customer.test>",
            to="x@support.test",
            in_reply_to=f"<{first.message_id}>",
            body="Also, a separate billing question.\n",
        ),
        at=BASE_TIME + timedelta(minutes=10),
    )
    assert second.conversation_id == x.pk
    client = logged_in(two_teams.agent_x)
    assert f'action="/c/{x.number}/m/{second.pk}/split"' in client.get(url(x)).content.decode()
    response = client.post(url(x, f"m/{second.pk}/split"))
    assert response.status_code == 303
    new = Message.objects.get(pk=second.pk).conversation
    assert new.pk != x.pk
    assert response["Location"] == f"/c/{new.number}/"
    assert f"Split a message into #{new.number}" in timeline(client, x)
    assert "Also, a separate billing question." in client.get(url(new)).content.decode()


# --- collaborators and other teams -------------------------------------------------------------------

ACTIONS = {
    "reply": {"to": "xavier@x-customer.test", "text": "x", "seen_event_id": "999999"},
    "forward": {"to": "a@b.test", "text": "x", "seen_event_id": "999999"},
    "take": {},
    "assign": {"assignee": ""},
    "status": {"status": "resolved"},
    "priority": {"priority": "high"},
    "snooze": {"preset": "1h"},
    "tags": {"add": "x"},
    "merge": {"into": "1"},
    "spam": {},
}


def test_collaborators_see_only_the_note_editor_and_may_only_note(two_teams: TwoTeams, collaborator) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    client = logged_in(collaborator)
    html = client.get(url(x)).content.decode()
    assert 'id="note-form"' in html
    for absent in ('id="reply-form"', 'id="forward-form"', 'id="conversation-actions"', 'data-testid="take"'):
        assert absent not in html, absent
    for name, data in ACTIONS.items():
        response = client.post(url(x, name), data, **HTMX)
        assert response.status_code == 403, name
        assert "Collaborators may read conversations and add internal notes" in response.content.decode(), name
    assert client.post(url(x, "draft"), {"kind": "reply", "text": "sneaky"}, **HTMX).status_code == 403
    assert client.post(url(x, "note"), {"text": "I know this customer."}).status_code == 303
    assert x.messages.filter(direction=Direction.NOTE, author=collaborator).count() == 1
    assert fresh(x).status == Status.NEW and fresh(x).assignee_id is None
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_an_agent_of_another_team_gets_404_everywhere(two_teams: TwoTeams) -> None:
    y = two_teams.conversation_y
    message_y = two_teams.message_y
    attachment = message_y.attachments.get()
    before = list(Event.objects.filter(conversation=y).values_list("id", flat=True))
    client = logged_in(two_teams.agent_x)
    reads = [
        url(y),
        url(y, "thread"),
        url(y, "header"),
        url(y, "timeline"),
        url(y, "drafts"),
        url(y, f"m/{message_y.pk}/html"),
        url(y, f"m/{message_y.pk}/html?images=1&full=1"),
        url(y, f"a/{attachment.pk}/preview"),
        # Y's objects through X's own conversation number are no way in either.
        url(two_teams.conversation_x, f"m/{message_y.pk}/html"),
        url(two_teams.conversation_x, f"a/{attachment.pk}/preview"),
        f"/api/v1/attachments/{attachment.pk}/download",
    ]
    for path in reads:
        for extra in ({}, HTMX):
            response = client.get(path, **extra)
            assert response.status_code == 404, path
            assert b"YSECRET" not in response.content, path
    writes = {**ACTIONS, "note": {"text": "peek"}, "draft": {"kind": "note", "text": "peek"}}
    writes_on_messages = ["undo", "split", "retry"]
    for name, data in writes.items():
        response = client.post(url(y, name), data, **HTMX)
        assert response.status_code == 404, name
        assert b"YSECRET" not in response.content
    for name in writes_on_messages:
        assert client.post(url(y, f"m/{message_y.pk}/{name}"), **HTMX).status_code == 404, name
        assert client.post(url(two_teams.conversation_x, f"m/{message_y.pk}/{name}")).status_code == 404, name
    # Merging X's conversation into Y's: Y's number does not exist for this agent.
    merge = client.post(url(two_teams.conversation_x, "merge"), {"into": str(y.number)}, **HTMX)
    assert merge.status_code == 404
    assert list(Event.objects.filter(conversation=y).values_list("id", flat=True)) == before
    assert fresh(y).status == Status.NEW and not Draft.objects.exists()
    assert fresh(two_teams.conversation_x).status == Status.NEW


def test_pages_and_actions_need_a_login(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    anonymous = Client()
    assert anonymous.get(url(x, "thread")).status_code == 302
    assert anonymous.post(url(x, "take")).status_code == 302
    assert fresh(x).assignee_id is None


# --- hostile and wrong input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        ("reply", {"to": "xavier@x-customer.test\r\nBcc: all@evil.test", "text": "hi"}, "line break"),
        ("reply", {"to": "xavier@x-customer.test", "cc": "not an address", "text": "hi"}, "is not an email address"),
        ("reply", {"to": "xavier@x-customer.test", "text": "   "}, "The message is empty."),
        ("reply", {"to": "", "text": "hi"}, "Add at least one address"),
        ("reply", {"to": "xavier@x-customer.test", "text": "hi", "status_after": "exploded"}, "Unknown status"),
        ("forward", {"to": "", "text": "fyi"}, "Add at least one address"),
        ("note", {"text": ""}, "The note is empty."),
        ("status", {"status": "exploded"}, "Unknown status"),
        ("status", {"status": "spam"}, "Unknown status"),
        ("priority", {"priority": "asap"}, "Unknown priority"),
        ("snooze", {"until": "next tuesday"}, "must look like"),
        ("snooze", {"until": "2001-01-01T09:00"}, "in the future"),
        ("snooze", {"until": ""}, "Choose when"),
        ("snooze", {"preset": "forever"}, "Unknown snooze choice"),
        ("snooze", {"preset": "1h", "tz": "Mars/Olympus"}, "Unknown time zone"),
        ("snooze", {"preset": "1h", "tz": "../../etc/passwd"}, "Unknown time zone"),
        ("assign", {"assignee": "bob"}, "must be a number"),
        ("assign", {"assignee": "999999"}, "There is no agent"),
        ("merge", {"into": ""}, "Give the number"),
        ("merge", {"into": "twelve"}, "must be a number"),
        ("tags", {"add": " , "}, "Type a tag"),
        ("tags", {"add": "x" * 60}, "at most 50 characters"),
        ("follow", {"follow": "maybe"}, "follow must be 1 or 0"),
    ],
)
def test_wrong_input_is_a_clear_400(two_teams: TwoTeams, action: str, data: dict[str, str], message: str) -> None:
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    if action in ("reply", "forward"):
        data = {**data, "seen_event_id": str(actions.latest_event_id(x))}
    events = Event.objects.count()
    for extra in ({}, HTMX):
        response = client.post(url(x, action), data, **extra)
        assert response.status_code == 400, (action, extra)
        assert message in response.content.decode(), (action, response.content.decode()[-600:])
        assert "Traceback" not in response.content.decode()
    assert Event.objects.count() == events
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()


def test_a_refused_reply_keeps_the_text_in_the_editor(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    response = logged_in(two_teams.agent_x).post(
        url(x, "reply"),
        {"to": "bad\r\nBcc: x@evil.test", "text": "Long careful text", "seen_event_id": actions.latest_event_id(x)},
        **HTMX,
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert textarea(html, "reply") == "Long careful text"
    assert 'role="alert"' in html


def test_errors_for_htmx_are_fragments_and_pages_otherwise(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    client = logged_in(two_teams.agent_x)
    fragment = client.post(url(x, "status"), {"status": "nope"}, **HTMX)
    assert fragment.status_code == 400
    assert fragment.content.decode().startswith('<div class="error" role="alert" data-code="bad_request">')
    page = client.post(url(x, "status"), {"status": "nope"})
    assert page.status_code == 400 and b"<html" in page.content
    missing = client.get("/c/999999/thread", **HTMX)
    assert missing.status_code == 404
    assert missing.content.decode().startswith('<div class="error" role="alert" data-code="not_found">')
    assert client.get(url(x, "take")).status_code == 405  # actions are POST only


def test_merging_into_itself_or_another_mailbox_is_refused(two_teams: TwoTeams) -> None:
    x, y = two_teams.conversation_x, two_teams.conversation_y
    boss = logged_in(two_teams.admin)  # sees both mailboxes
    itself = boss.post(url(x, "merge"), {"into": str(x.number)}, **HTMX)
    assert itself.status_code == 400 and "cannot be merged into itself" in itself.content.decode()
    across = boss.post(url(x, "merge"), {"into": str(y.number)}, **HTMX)
    assert across.status_code == 400 and "same mailbox" in across.content.decode()
    assert fresh(x).status == Status.NEW and fresh(y).status == Status.NEW


# --- mail HTML, remote images, attachments -----------------------------------------------------------


def _html_mail(two_teams: TwoTeams, deliver: Deliver) -> Message:
    msg = EmailMessage()
    msg["From"] = "Pat <pat@customer.test>"
    msg["To"] = "x@support.test"
    msg["Subject"] = "Newsletter-style mail"
    msg["Message-ID"] = "<pretty@customer.test>"
    msg["Date"] = "Fri, 20 Nov 2026 09:30:00 +0000"
    msg.set_content("See the picture")
    msg.add_alternative(
        '<p>See <b>the picture</b>: <img id="tracker" src="https://tracker.example.net/p.gif"></p>'
        '<div class="gmail_quote"><div class="gmail_attr">On Mon, Support wrote:</div>'
        "<blockquote>Earlier words.</blockquote></div>",
        subtype="html",
    )
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="screen.png")
    msg.add_attachment(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
                       maintype="image", subtype="svg+xml", filename="evil.svg")  # fmt: skip
    msg.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    return deliver(two_teams.mailbox_x, bytes(msg))


def test_remote_images_are_blocked_until_the_agent_asks(two_teams: TwoTeams, deliver: Deliver) -> None:
    message = _html_mail(two_teams, deliver)
    conversation = message.conversation
    client = logged_in(two_teams.agent_x)
    page = client.get(url(conversation)).content.decode()
    frame_url = f"/c/{conversation.number}/m/{message.pk}/html"
    button = re.search(r'<a class="button" role="button" href="([^"]+)"[^>]*data-testid="show-remote-images"', page)
    assert button is not None and button.group(1) == frame_url + "?images=1"
    frame = re.search(r"<iframe[^>]*>", page)
    assert frame is not None
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame.group(0)
    assert "allow-scripts" not in frame.group(0) and "allow-same-origin" not in frame.group(0)
    assert f'href="{frame_url}?full=1"' in page  # "Show quoted text" for the formatted view

    blocked = client.get(frame_url)
    assert "tracker.example.net" in blocked.content.decode()  # the tag is there, the CSP stops the load
    assert "http:" not in blocked["Content-Security-Policy"] and "https:" not in blocked["Content-Security-Policy"]
    assert "Earlier words." not in blocked.content.decode()

    allowed = client.get(frame_url + "?images=1&full=1")
    csp = allowed["Content-Security-Policy"]
    assert "img-src data: cid: https: http:" in csp
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "Earlier words." in allowed.content.decode()
    assert allowed["X-Content-Type-Options"] == "nosniff" and allowed["Referrer-Policy"] == "no-referrer"
    # Asking once is not remembered: the next load is blocked again.
    assert "https:" not in client.get(frame_url)["Content-Security-Policy"]


def test_a_mail_without_remote_images_offers_no_button(two_teams: TwoTeams) -> None:
    page = logged_in(two_teams.agent_x).get(url(two_teams.conversation_x)).content.decode()
    assert 'data-testid="show-remote-images"' not in page


def test_image_attachments_are_previewed_safely_and_everything_downloads(two_teams: TwoTeams, deliver: Deliver) -> None:
    message = _html_mail(two_teams, deliver)
    conversation = message.conversation
    client = logged_in(two_teams.agent_x)
    page = client.get(url(conversation)).content.decode()
    by_name = {a.filename: a for a in message.attachments.all()}
    png, svg, pdf = by_name["screen.png"], by_name["evil.svg"], by_name["invoice.pdf"]
    assert f'src="/c/{conversation.number}/a/{png.pk}/preview"' in page
    assert f"/a/{svg.pk}/preview" not in page and f"/a/{pdf.pk}/preview" not in page
    for attachment in (png, svg, pdf):
        assert f'href="/api/v1/attachments/{attachment.pk}/download"' in page
        assert attachment.filename in page
    assert re.search(r"image/png, 40\sbytes", page)  # type and size are shown

    preview = client.get(url(conversation, f"a/{png.pk}/preview"))
    assert preview.status_code == 200
    assert preview["Content-Type"] == "image/png"
    assert preview["X-Content-Type-Options"] == "nosniff"
    assert preview["Content-Disposition"].startswith("inline;")
    assert "sandbox" in preview["Content-Security-Policy"]
    assert preview.content == PNG
    for refused in (svg, pdf):
        response = client.get(url(conversation, f"a/{refused.pk}/preview"))
        assert response.status_code == 404
        assert b"no preview" in response.content
    svg_download = client.get(f"/api/v1/attachments/{svg.pk}/download")
    assert svg_download["Content-Type"] == "application/octet-stream"


# --- live refresh fragments --------------------------------------------------------------------------


def test_fragments_show_what_others_changed(two_teams: TwoTeams, teammate) -> None:  # type: ignore[no-untyped-def]
    x = two_teams.conversation_x
    ann = logged_in(two_teams.agent_x)
    actions.do_take(teammate, x)
    actions.do_note(teammate, x, text="Looking into it")
    header = ann.get(url(x, "header"), **HTMX).content.decode()
    assert header.startswith('<header id="conversation-header"')
    assert 'data-testid="assignee">bob@example.org<' in header
    assert "Looking into it" in ann.get(url(x, "thread"), **HTMX).content.decode()
    events = timeline(ann, x)
    assert re.search(r"bob@example.org</strong>\s*<span class=\"what\">Took it", events)


def test_failed_sends_show_the_error_on_the_message(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    reply = actions.do_reply(
        two_teams.agent_x,
        x,
        text="Will bounce",
        recipients=actions.reply_recipients(x, reply_all=False),
        seen_event_id=actions.latest_event_id(x),
    )
    OutboundMail.objects.filter(message=reply).update(
        state=OutboundState.FAILED, last_error="550 5.1.1 <xavier@x-customer.test>: mailbox unknown"
    )
    client = logged_in(two_teams.agent_x)
    html = client.get(url(x)).content.decode()
    assert 'data-state="failed"' in html
    assert "550 5.1.1 &lt;xavier@x-customer.test&gt;: mailbox unknown" in html
    assert f'action="/c/{x.number}/m/{reply.pk}/retry"' in html

    customer_mail = x.messages.get(direction=Direction.INBOUND)
    assert client.post(url(x, f"m/{customer_mail.pk}/retry"), **HTMX).status_code == 400
    again = client.post(url(x, f"m/{reply.pk}/retry"), **HTMX)
    assert again.status_code == 200 and "Sending again." in again.content.decode()
    # It really went out again: here (no SMTP server is set up) it fails anew, with the new reason on the page.
    row = OutboundMail.objects.get(message=reply)
    assert row.attempts == 1 and "550 5.1.1" not in row.last_error
    assert row.last_error[:40] in client.get(url(x)).content.decode()


def test_an_admin_without_a_team_sees_and_acts_on_any_conversation(two_teams: TwoTeams) -> None:
    y = two_teams.conversation_y
    boss = logged_in(two_teams.admin)
    assert boss.get(url(y)).status_code == 200
    assert boss.post(url(y, "take")).status_code == 303
    assert fresh(y).assignee_id == two_teams.admin.pk


def test_a_mailbox_without_team_offers_only_admins(two_teams: TwoTeams, deliver: Deliver) -> None:
    lonely = make_mailbox("lonely@support.test")
    conversation = deliver(lonely, make_raw_mail(to="lonely@support.test")).conversation
    page = logged_in(two_teams.admin).get(url(conversation)).content.decode()
    options = re.search(r'<select id="assign-select".*?</select>', page, re.S)
    assert options is not None
    assert "boss@example.org" in options.group(0) and "ax@example.org" not in options.group(0)
    assert two_teams.superuser.email in options.group(0)
