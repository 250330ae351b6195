"""API v1 writes and the reads that came with them: every action's happy path, its bad input, the 409 collision flow,
the timeline, drafts, saved views, notifications, folder counts, the new list filters and the OpenAPI schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from factories import make_agent, make_mailbox, make_raw_mail, make_team
from postdesk.desk.models import (
    BlockedSender,
    Conversation,
    Direction,
    Draft,
    Event,
    Mailbox,
    Message,
    OutboundMail,
    OutboundState,
    Role,
    SavedView,
    Status,
)

BASE_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@dataclass
class Desk:
    """One team's mailbox with two agents, a collaborator, and a customer's conversation of one mail."""

    mailbox: Mailbox
    ann: User
    bob: User
    ann_api: Client
    bob_api: Client
    first: Message  # the customer's mail (Cc: Dave and the mailbox itself)
    conversation: Conversation

    @property
    def url(self) -> str:
        return f"/api/v1/conversations/{self.conversation.number}/"

    def reload(self) -> Conversation:
        return Conversation.objects.get(pk=self.conversation.pk)


@pytest.fixture
def desk(deliver, token_client) -> Desk:  # type: ignore[no-untyped-def]
    team = make_team("Support")
    mailbox = make_mailbox("support@example.com", team=team)
    mailbox.signature = "Ann from Example Support"
    mailbox.save()
    ann = make_agent("ann@example.org", teams=(team,))
    bob = make_agent("bob@example.org", teams=(team,))
    first = deliver(
        mailbox,
        make_raw_mail(
            subject="Order 1234 has not arrived",
            sender="Carol Customer <carol@customer.test>",
            to="support@example.com",
            body="Where is my order 1234?\n",
            extra_headers={"Cc": "Dave <dave@customer.test>, support@example.com"},
        ),
        at=BASE_TIME,
    )
    return Desk(mailbox, ann, bob, token_client(ann), token_client(bob), first, first.conversation)


def post(client: Client, url: str, body: Any = None) -> Any:
    """POST `body` as JSON (nothing at all when None)."""
    return client.post(url, json.dumps(body) if body is not None else "", content_type="application/json")


def put(client: Client, url: str, body: Any) -> Any:
    return client.put(url, json.dumps(body), content_type="application/json")


def assert_error(response, status: int, code: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """The response is our JSON error with that status (and code); returns its message."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"])
    assert body["error"]["message"].strip()
    assert "Traceback" not in response.content.decode()
    if code is not None:
        assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def latest(client: Client, desk: Desk) -> int:
    response = client.get(desk.url)
    assert response.status_code == 200
    return int(response.json()["latest_event_id"])


def reply(client: Client, desk: Desk, **body: Any) -> Any:
    body.setdefault("text", "We are on it.")
    body.setdefault("seen_event_id", latest(client, desk))
    return post(client, desk.url + "replies", body)


# --- replies and forwards ---------------------------------------------------------------------------


def test_reply_goes_to_the_customer_and_is_queued(desk):  # type: ignore[no-untyped-def]
    response = reply(desk.ann_api, desk, text="Your parcel left today.")
    assert response.status_code == 201, response.content
    message = response.json()
    assert message["direction"] == "outbound"
    assert message["author"] == "ann@example.org"
    assert [a["address"] for a in message["to"]] == ["carol@customer.test"]
    assert message["cc"] == [] and message["bcc"] == []
    assert message["subject"] == "Re: Order 1234 has not arrived"
    assert message["visible_text"] == "Your parcel left today."
    assert message["text"].endswith("-- \nAnn from Example Support")  # the mailbox's signature
    assert message["raw_url"] is None
    assert message["outbound"]["state"] == "queued"
    assert message["outbound"]["last_error"] == ""

    outbound = OutboundMail.objects.get(message_id=message["id"])
    assert outbound.recipients == ["carol@customer.test"]
    conversation = desk.reload()
    assert conversation.status == Status.PENDING  # the default status after a reply
    assert conversation.assignee == desk.ann  # whoever answers an unassigned conversation takes it
    kinds = [e["kind"] for e in desk.ann_api.get(desk.url + "events").json()["results"]]
    assert kinds[-1] == "replied"


def test_reply_all_and_explicit_recipients(desk):  # type: ignore[no-untyped-def]
    everyone = reply(desk.ann_api, desk, reply_all=True, status_after="resolved").json()
    assert [a["address"] for a in everyone["to"]] == ["carol@customer.test"]
    # The mailbox itself is never copied in.
    assert [a["address"] for a in everyone["cc"]] == ["dave@customer.test"]
    assert desk.reload().status == Status.RESOLVED

    as_text = reply(desk.ann_api, desk, to="Eve <EVE@x.test>, fred@y.test", cc=[], bcc=["audit@example.org"]).json()
    assert [a["address"] for a in as_text["to"]] == ["eve@x.test", "fred@y.test"]
    assert as_text["cc"] == []
    assert [a["address"] for a in as_text["bcc"]] == ["audit@example.org"]
    assert OutboundMail.objects.get(message_id=as_text["id"]).recipients == [
        "eve@x.test",
        "fred@y.test",
        "audit@example.org",
    ]


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ({"text": 42}, "text"),
        ({"text": ["hello"]}, "text"),
        ({"text": "   "}, "empty"),
        ({"seen_event_id": "7"}, "seen_event_id"),
        ({"seen_event_id": True}, "seen_event_id"),
        ({"seen_event_id": -1}, "seen_event_id"),
        ({"confirm": "yes"}, "confirm"),
        ({"reply_all": 1}, "reply_all"),
        ({"to": "carol@customer.test\r\nBcc: victim@evil.test"}, "line break"),
        ({"to": ["carol@customer.test", "x@evil.test\nBcc: y@evil.test"]}, "line break"),
        ({"cc": "Someone <nobody>"}, "not an email address"),
        ({"bcc": {"address": "x@y.test"}}, "bcc"),
        ({"to": []}, "at least one address"),
        ({"status_after": "waiting"}, "waiting"),
        ({"statuss": "open"}, "statuss"),
    ],
)
def test_bad_replies_are_400_and_send_nothing(desk, body: dict[str, Any], hint: str):  # type: ignore[no-untyped-def]
    message = assert_error(reply(desk.ann_api, desk, **body), 400, "bad_request")
    assert hint in message
    assert not OutboundMail.objects.exists()
    assert desk.reload().message_count == 1


def test_reply_needs_seen_event_id(desk):  # type: ignore[no-untyped-def]
    response = post(desk.ann_api, desk.url + "replies", {"text": "Hello"})
    assert "seen_event_id" in assert_error(response, 400, "bad_request")


def test_malformed_bodies_are_400_or_415(desk):  # type: ignore[no-untyped-def]
    url = desk.url + "replies"
    broken = desk.ann_api.post(url, '{"text": "hi", ', content_type="application/json")
    assert "JSON" in assert_error(broken, 400, "parse_error")
    not_an_object = desk.ann_api.post(url, "[1, 2]", content_type="application/json")
    assert "JSON object" in assert_error(not_an_object, 400, "bad_request")
    form = desk.ann_api.post(url, {"text": "hi", "seen_event_id": "0"})  # multipart form
    assert_error(form, 415, "unsupported_media_type")
    assert not OutboundMail.objects.exists()


def test_collision_holds_the_reply_until_confirmed(desk):  # type: ignore[no-untyped-def]
    seen_by_ann = latest(desk.ann_api, desk)
    assert reply(desk.bob_api, desk, text="Bob was faster.").status_code == 201

    held = reply(desk.ann_api, desk, text="Ann's answer.", seen_event_id=seen_by_ann)
    message = assert_error(held, 409, "collision")
    error = held.json()["error"]
    assert error["changes"] == ["bob@example.org replied"]
    assert "bob@example.org replied" in message
    assert error["latest_event_id"] == latest(desk.ann_api, desk) > seen_by_ann
    assert OutboundMail.objects.count() == 1  # only Bob's

    # Having looked, Ann either confirms or sends again with what she has now seen.
    confirmed = reply(desk.ann_api, desk, text="Ann's answer.", seen_event_id=seen_by_ann, confirm=True)
    assert confirmed.status_code == 201
    again = reply(desk.ann_api, desk, text="And one more.", seen_event_id=error["latest_event_id"])
    assert again.status_code == 201, again.content


def test_collision_when_the_customer_wrote_again_or_someone_took_it(desk, deliver):  # type: ignore[no-untyped-def]
    seen = latest(desk.ann_api, desk)
    deliver(
        desk.mailbox,
        make_raw_mail(
            subject="Re: Order 1234 has not arrived",
            sender="Carol Customer <carol@customer.test>",
            in_reply_to=f"<{desk.first.message_id}>",
            body="Any news?\n",
        ),
        at=BASE_TIME + timedelta(hours=1),
    )
    assert post(desk.bob_api, desk.url + "take").status_code == 200
    held = reply(desk.ann_api, desk, seen_event_id=seen)
    assert_error(held, 409, "collision")
    assert held.json()["error"]["changes"] == [
        "the customer wrote again",
        "bob@example.org assigned it to bob@example.org",
    ]


def test_forward_keeps_the_status_and_needs_a_recipient(desk):  # type: ignore[no-untyped-def]
    response = post(desk.ann_api, desk.url + "forwards", {"to": "warehouse@partner.test", "text": "Can you check?"})
    assert response.status_code == 201, response.content
    message = response.json()
    assert message["forwarded"] is True
    assert message["subject"] == "Fwd: Order 1234 has not arrived"
    assert [a["address"] for a in message["to"]] == ["warehouse@partner.test"]
    assert desk.reload().status == Status.NEW
    assert "to" in assert_error(post(desk.ann_api, desk.url + "forwards", {"text": "x"}), 400)
    assert_error(post(desk.ann_api, desk.url + "forwards", {"to": "a@b.test\r\n", "text": "x"}), 400)


# --- notes, mentions and notifications ----------------------------------------------------------------


def test_note_with_mention_notifies_and_can_be_marked_read(desk):  # type: ignore[no-untyped-def]
    response = post(desk.ann_api, desk.url + "notes", {"text": "@bob@example.org can you look at the tracking?"})
    assert response.status_code == 201, response.content
    note = response.json()
    assert note["direction"] == "note" and note["author"] == "ann@example.org" and note["outbound"] is None
    assert not OutboundMail.objects.exists()  # a note never leaves

    mine = desk.bob_api.get("/api/v1/notifications/").json()
    [notification] = mine["results"]
    assert notification["conversation"] == desk.conversation.number
    assert "ann@example.org mentioned you" in notification["text"]
    assert notification["read_at"] is None
    assert desk.ann_api.get("/api/v1/notifications/").json()["results"] == []

    url = f"/api/v1/notifications/{notification['id']}/read"
    assert_error(post(desk.ann_api, url), 404, "not_found")  # not Ann's
    read = post(desk.bob_api, url)
    assert read.status_code == 200 and read.json()["read_at"]
    assert desk.bob_api.get("/api/v1/notifications/?unread=true").json()["results"] == []
    assert len(desk.bob_api.get("/api/v1/notifications/?unread=false").json()["results"]) == 1
    assert "unread" in assert_error(desk.bob_api.get("/api/v1/notifications/?unread=maybe"), 400, "bad_filter")
    assert_error(desk.bob_api.get("/api/v1/notifications/?before=x"), 400, "bad_cursor")


def test_notifications_page_by_id(desk):  # type: ignore[no-untyped-def]
    for i in range(5):
        assert post(desk.ann_api, desk.url + "notes", {"text": f"@bob@example.org note {i}"}).status_code == 201
    first = desk.bob_api.get("/api/v1/notifications/?limit=3").json()
    assert len(first["results"]) == 3 and first["next_before"] == first["results"][-1]["id"]
    rest = desk.bob_api.get(f"/api/v1/notifications/?limit=3&before={first['next_before']}").json()
    assert len(rest["results"]) == 2 and rest["next_before"] is None
    ids = [n["id"] for n in first["results"] + rest["results"]]
    assert ids == sorted(ids, reverse=True)


def test_empty_note_is_400(desk):  # type: ignore[no-untyped-def]
    assert "empty" in assert_error(post(desk.ann_api, desk.url + "notes", {"text": ""}), 400)
    assert_error(post(desk.ann_api, desk.url + "notes", {}), 400)


# --- assignment, status, priority, snooze -------------------------------------------------------------


def test_assign_by_email_id_and_null_and_take(desk):  # type: ignore[no-untyped-def]
    by_email = post(desk.ann_api, desk.url + "assign", {"assignee": "BOB@example.org"})
    assert by_email.status_code == 200, by_email.content
    assert by_email.json()["assignee"] == "bob@example.org"
    assert by_email.json()["status"] == "open"  # a new conversation opens when someone gets it
    assert post(desk.ann_api, desk.url + "assign", {"assignee": desk.ann.pk}).json()["assignee"] == "ann@example.org"
    assert post(desk.ann_api, desk.url + "assign", {"assignee": None}).json()["assignee"] is None
    assert post(desk.bob_api, desk.url + "take").json()["assignee"] == "bob@example.org"


def test_bad_assignments_are_400(desk):  # type: ignore[no-untyped-def]
    outsider = make_agent("olga@example.org", teams=(make_team("Elsewhere"),))
    assert "olga@example.org" in assert_error(
        post(desk.ann_api, desk.url + "assign", {"assignee": outsider.email}), 400
    )
    assert_error(post(desk.ann_api, desk.url + "assign", {"assignee": "nobody@nowhere.test"}), 400, "unknown_agent")
    assert_error(post(desk.ann_api, desk.url + "assign", {"assignee": True}), 400, "bad_request")
    assert_error(post(desk.ann_api, desk.url + "assign", {}), 400, "bad_request")
    assert_error(post(desk.ann_api, desk.url + "take", {"who": "me"}), 400, "bad_request")
    assert desk.reload().assignee is None


def test_status_and_priority(desk):  # type: ignore[no-untyped-def]
    assert post(desk.ann_api, desk.url + "status", {"status": "resolved"}).json()["status"] == "resolved"
    assert post(desk.ann_api, desk.url + "priority", {"priority": "urgent"}).json()["priority"] == "urgent"
    assert desk.reload().priority_rank == 0
    assert "waiting" in assert_error(post(desk.ann_api, desk.url + "status", {"status": "waiting"}), 400)
    assert "snoozed" in assert_error(post(desk.ann_api, desk.url + "status", {"status": "snoozed"}), 400)
    assert "soon" in assert_error(post(desk.ann_api, desk.url + "priority", {"priority": "soon"}), 400)
    assert_error(post(desk.ann_api, desk.url + "priority", {"priority": 1}), 400)
    events = desk.ann_api.get(desk.url + "events").json()["results"]
    status = next(e for e in events if e["kind"] == "status")
    assert status["data"] == {"before": "new", "after": "resolved"} and status["actor"] == "ann@example.org"


def test_snooze_until_a_time_with_offset(desk):  # type: ignore[no-untyped-def]
    until = (timezone.now() + timedelta(days=2)).astimezone(UTC).replace(microsecond=0)
    response = post(desk.ann_api, desk.url + "snooze", {"until": until.isoformat().replace("+00:00", "Z")})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "snoozed"
    assert datetime.fromisoformat(response.json()["snoozed_until"].replace("Z", "+00:00")) == until
    in_tokyo = until.astimezone(timezone.get_fixed_timezone(9 * 60)).isoformat()
    assert post(desk.ann_api, desk.url + "snooze", {"until": in_tokyo}).status_code == 200
    assert desk.reload().snoozed_until == until


@pytest.mark.parametrize(
    ("until", "hint"),
    [
        ("2030-01-01T09:00:00", "offset"),
        ("2020-01-01T09:00:00+00:00", "future"),
        ("2999-01-01T09:00:00Z", "year"),
        ("next tuesday", "ISO 8601"),
        (1767250800, "ISO 8601"),
    ],
)
def test_bad_snoozes_are_400(desk, until: object, hint: str):  # type: ignore[no-untyped-def]
    assert hint in assert_error(post(desk.ann_api, desk.url + "snooze", {"until": until}), 400, "bad_request")
    assert desk.reload().status == Status.NEW


# --- tags and followers -------------------------------------------------------------------------------


def test_tags_are_added_and_removed_and_filter_the_list(desk):  # type: ignore[no-untyped-def]
    added = post(desk.ann_api, desk.url + "tags", {"add": ["VIP", "  late  delivery "]})
    assert added.status_code == 200
    assert added.json()["tags"] == ["late delivery", "vip"]
    listed = desk.ann_api.get("/api/v1/conversations/?tag=vip").json()["results"]
    assert [row["number"] for row in listed] == [desk.conversation.number]
    assert listed[0]["tags"] == ["late delivery", "vip"]
    assert post(desk.ann_api, desk.url + "tags", {"remove": ["vip"]}).json()["tags"] == ["late delivery"]
    assert desk.ann_api.get("/api/v1/conversations/?tag=vip").json()["results"] == []
    assert_error(post(desk.ann_api, desk.url + "tags", {}), 400, "bad_request")
    assert_error(post(desk.ann_api, desk.url + "tags", {"add": "vip"}), 400, "bad_request")
    assert_error(post(desk.ann_api, desk.url + "tags", {"add": [1]}), 400, "bad_request")
    assert "50" in assert_error(post(desk.ann_api, desk.url + "tags", {"add": ["x" * 51]}), 400)


def test_follow_and_unfollow(desk):  # type: ignore[no-untyped-def]
    assert post(desk.bob_api, desk.url + "followers", {"follow": True}).json()["followers"] == ["bob@example.org"]
    assert post(desk.ann_api, desk.url + "followers", {}).json()["followers"] == [
        "ann@example.org",
        "bob@example.org",
    ]
    assert post(desk.bob_api, desk.url + "followers", {"follow": False}).json()["followers"] == ["ann@example.org"]
    assert_error(post(desk.bob_api, desk.url + "followers", {"follow": "no"}), 400, "bad_request")


# --- merge, split, spam -------------------------------------------------------------------------------


def test_merge_into_another_conversation(desk, deliver):  # type: ignore[no-untyped-def]
    second = deliver(
        desk.mailbox,
        make_raw_mail(subject="Also: my invoice", sender="Carol Customer <carol@customer.test>", body="Invoice?\n"),
        at=BASE_TIME + timedelta(minutes=5),
    ).conversation
    response = post(desk.ann_api, desk.url + "merge", {"into": second.number})
    assert response.status_code == 200, response.content
    assert response.json()["number"] == second.number
    assert response.json()["message_count"] == 2
    source = desk.ann_api.get(desk.url).json()
    assert source["status"] == "merged" and source["merged_into"] == second.number
    assert_error(post(desk.ann_api, desk.url + "merge", {"into": second.number}), 400)  # already merged


def test_bad_merges(desk, deliver):  # type: ignore[no-untyped-def]
    url = desk.url + "merge"
    assert "itself" in assert_error(post(desk.ann_api, url, {"into": desk.conversation.number}), 400)
    assert_error(post(desk.ann_api, url, {"into": 987654}), 404, "not_found")
    assert_error(post(desk.ann_api, url, {"into": str(desk.conversation.number)}), 400, "bad_request")
    assert_error(post(desk.ann_api, url, {"into": 10**30}), 400, "bad_request")
    other_mailbox = make_mailbox("sales@example.com", team=desk.mailbox.team)
    elsewhere = deliver(other_mailbox, make_raw_mail(to="sales@example.com")).conversation
    assert "same mailbox" in assert_error(post(desk.ann_api, url, {"into": elsewhere.number}), 400)
    assert desk.reload().status == Status.NEW


def test_split_a_message_into_a_new_conversation(desk, deliver):  # type: ignore[no-untyped-def]
    later = deliver(
        desk.mailbox,
        make_raw_mail(
            subject="Re: Order 1234 has not arrived",
            sender="Carol Customer <carol@customer.test>",
            in_reply_to=f"<{desk.first.message_id}>",
            body="Different question: can I change my address?\n",
        ),
        at=BASE_TIME + timedelta(hours=1),
    )
    assert later.conversation_id == desk.conversation.pk
    response = post(desk.ann_api, f"/api/v1/messages/{later.pk}/split")
    assert response.status_code == 201, response.content
    new = response.json()
    assert new["number"] != desk.conversation.number
    assert new["message_count"] == 1 and new["snippet"].startswith("Different question")
    assert desk.reload().message_count == 1
    # The only message left cannot be split off; a note is not a customer's message.
    assert "only message" in assert_error(post(desk.ann_api, f"/api/v1/messages/{desk.first.pk}/split"), 400)
    note = post(desk.ann_api, desk.url + "notes", {"text": "internal"}).json()
    assert "customer" in assert_error(post(desk.ann_api, f"/api/v1/messages/{note['id']}/split"), 400)
    assert_error(post(desk.ann_api, "/api/v1/messages/987654/split"), 404, "not_found")


def test_spam_and_block_sender(desk):  # type: ignore[no-untyped-def]
    response = post(desk.ann_api, desk.url + "spam", {"block_sender": True})
    assert response.status_code == 200
    assert response.json()["status"] == "spam"
    assert BlockedSender.objects.filter(pattern="carol@customer.test").exists()
    assert_error(post(desk.ann_api, desk.url + "spam", {"block_sender": "yes"}), 400)


# --- drafts -------------------------------------------------------------------------------------------


def test_drafts_are_saved_seen_by_teammates_and_deleted(desk):  # type: ignore[no-untyped-def]
    url = desk.url + "draft"
    saved = put(desk.ann_api, url, {"kind": "reply", "text": "Dear Carol,", "to": "carol@customer.test"})
    assert saved.status_code == 200, saved.content
    assert saved.json()["to"] == ["carol@customer.test"] and saved.json()["author"] == "ann@example.org"
    assert put(desk.bob_api, url, {"kind": "note", "text": "checking the depot"}).status_code == 200

    seen_by_bob = desk.bob_api.get(desk.url + "drafts").json()
    assert {(d["author"], d["kind"], d["text"]) for d in seen_by_bob} == {
        ("ann@example.org", "reply", "Dear Carol,"),
        ("bob@example.org", "note", "checking the depot"),
    }
    # Saving again replaces; an empty text deletes.
    assert put(desk.ann_api, url, {"text": "Dear Carol, good news"}).json()["text"] == "Dear Carol, good news"
    assert put(desk.ann_api, url, {"text": ""}).status_code == 204
    assert desk.ann_api.delete(url).status_code == 204  # nothing left: still fine
    assert desk.bob_api.delete(url).status_code == 204
    assert not Draft.objects.exists()
    # Sending a reply removes the sender's draft.
    put(desk.ann_api, url, {"text": "almost"})
    reply(desk.ann_api, desk)
    assert not Draft.objects.exists()


def test_bad_drafts_are_400(desk):  # type: ignore[no-untyped-def]
    url = desk.url + "draft"
    assert "letter" in assert_error(put(desk.ann_api, url, {"kind": "letter", "text": "x"}), 400)
    assert "line break" in assert_error(put(desk.ann_api, url, {"text": "x", "cc": "a@b.test\r\nX: y"}), 400)
    assert_error(put(desk.ann_api, url, {"text": None}), 400, "bad_request")
    assert not Draft.objects.exists()


# --- timeline ----------------------------------------------------------------------------------------


def test_events_page_by_id_and_poll_for_new_ones(desk):  # type: ignore[no-untyped-def]
    for priority in ("high", "low", "urgent", "normal"):
        post(desk.ann_api, desk.url + "priority", {"priority": priority})
    everything = desk.ann_api.get(desk.url + "events").json()
    assert everything["next_after"] is None
    ids = [e["id"] for e in everything["results"]]
    kinds = [e["kind"] for e in everything["results"]]
    assert ids == sorted(ids)
    assert kinds == ["received", "triaged", "priority", "priority", "priority", "priority"]
    assert everything["results"][0]["actor"] is None

    page = desk.ann_api.get(desk.url + "events?limit=2").json()
    assert [e["id"] for e in page["results"]] == ids[:2] and page["next_after"] == ids[1]
    rest = desk.ann_api.get(f"{desk.url}events?after={page['next_after']}&limit=2").json()
    assert [e["id"] for e in rest["results"]] == ids[2:4]
    assert desk.ann_api.get(f"{desk.url}events?after={ids[-1]}").json() == {"results": [], "next_after": None}

    assert_error(desk.ann_api.get(desk.url + "events?after=-1"), 400, "bad_cursor")
    assert_error(desk.ann_api.get(desk.url + "events?after=abc"), 400, "bad_cursor")
    assert_error(desk.ann_api.get(desk.url + "events?limit=0"), 400, "bad_limit")
    assert_error(desk.ann_api.get(desk.url + "events?since=1"), 400, "bad_filter")


# --- bulk --------------------------------------------------------------------------------------------


def test_bulk_changes_many_and_reports_the_rest(desk, deliver):  # type: ignore[no-untyped-def]
    second = deliver(desk.mailbox, make_raw_mail(subject="Second"), at=BASE_TIME + timedelta(minutes=1))
    numbers = [desk.conversation.number, second.conversation.number, 987654]
    response = post(
        desk.ann_api, "/api/v1/conversations/bulk", {"numbers": numbers, "action": "status", "value": "open"}
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"changed": 2, "errors": ["There is no conversation #987654."]}
    assert set(Conversation.objects.values_list("status", flat=True)) == {Status.OPEN}

    assigned = post(
        desk.ann_api,
        "/api/v1/conversations/bulk",
        {"numbers": numbers[:2], "action": "assign", "value": "bob@example.org"},
    )
    assert assigned.json()["changed"] == 2
    assert set(Conversation.objects.values_list("assignee", flat=True)) == {desk.bob.pk}


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ({"numbers": [1], "action": "explode"}, "explode"),
        ({"numbers": [], "action": "spam"}, "at least one"),
        ({"numbers": "1,2", "action": "spam"}, "numbers"),
        ({"numbers": ["1"], "action": "spam"}, "numbers"),
        ({"numbers": [1], "action": "status", "value": 3}, "value"),
        ({"action": "spam"}, "numbers"),
    ],
)
def test_bad_bulk_requests_are_400(desk, body: dict[str, Any], hint: str):  # type: ignore[no-untyped-def]
    assert hint in assert_error(post(desk.ann_api, "/api/v1/conversations/bulk", body), 400, "bad_request")


# --- saved views -------------------------------------------------------------------------------------


def test_saved_views_are_personal(desk):  # type: ignore[no-untyped-def]
    created = post(desk.ann_api, "/api/v1/views/", {"name": "Urgent ones", "filters": {"priority": "urgent"}})
    assert created.status_code == 201, created.content
    view = created.json()
    assert view["name"] == "Urgent ones" and view["filters"] == {"priority": "urgent"}
    assert [v["name"] for v in desk.ann_api.get("/api/v1/views/").json()] == ["Urgent ones"]
    assert desk.bob_api.get("/api/v1/views/").json() == []

    assert_error(desk.bob_api.delete(f"/api/v1/views/{view['id']}/"), 404, "not_found")
    assert desk.ann_api.delete(f"/api/v1/views/{view['id']}/").status_code == 204
    assert not SavedView.objects.exists()
    assert_error(desk.ann_api.delete(f"/api/v1/views/{view['id']}/"), 404, "not_found")


def test_bad_saved_views_are_400(desk):  # type: ignore[no-untyped-def]
    assert "colour" in assert_error(
        post(desk.ann_api, "/api/v1/views/", {"name": "x", "filters": {"colour": "red"}}), 400
    )
    assert "name" in assert_error(post(desk.ann_api, "/api/v1/views/", {"name": " ", "filters": {}}), 400)
    assert_error(post(desk.ann_api, "/api/v1/views/", {"name": "x", "filters": {"status": 1}}), 400, "bad_request")
    assert_error(post(desk.ann_api, "/api/v1/views/", {"name": "x", "filters": ["status"]}), 400, "bad_request")


# --- folders and list filters ------------------------------------------------------------------------


def test_folder_counts(desk, deliver):  # type: ignore[no-untyped-def]
    for i in range(3):
        deliver(desk.mailbox, make_raw_mail(subject=f"More {i}"), at=BASE_TIME + timedelta(minutes=i + 1))
    post(desk.ann_api, desk.url + "take")
    body = desk.ann_api.get("/api/v1/folders/").json()
    assert body["cap"] == 1000
    counts = {f["key"]: f["count"] for f in body["folders"]}
    team = desk.mailbox.team
    assert team is not None
    assert counts["mine"] == 1
    assert counts["unassigned"] == 3
    assert counts[f"team-{team.pk}"] == 4
    assert counts["open"] == 4 and counts["pending"] == 0 and counts["spam"] == 0
    assert not any(f["capped"] for f in body["folders"])
    assert {f["key"]: f["count"] for f in desk.bob_api.get("/api/v1/folders/").json()["folders"]}["mine"] == 0
    assert_error(desk.ann_api.get("/api/v1/folders/?team=1"), 400, "bad_filter")


def test_list_filters_folders_and_sorts(desk, deliver):  # type: ignore[no-untyped-def]
    older = deliver(desk.mailbox, make_raw_mail(subject="Older"), at=BASE_TIME - timedelta(days=1)).conversation
    newer = deliver(desk.mailbox, make_raw_mail(subject="Newer"), at=BASE_TIME + timedelta(days=1)).conversation
    first = desk.conversation
    post(desk.ann_api, f"/api/v1/conversations/{newer.number}/priority", {"priority": "urgent"})
    post(desk.ann_api, f"/api/v1/conversations/{first.number}/take")

    def numbers(query: str) -> list[int]:
        response = desk.ann_api.get(f"/api/v1/conversations/?{query}")
        assert response.status_code == 200, response.content
        return [row["number"] for row in response.json()["results"]]

    assert numbers("") == [newer.number, first.number, older.number]
    assert numbers("sort=waiting") == [older.number, first.number, newer.number]
    assert numbers("sort=priority") == [newer.number, first.number, older.number]
    assert numbers("priority=urgent") == [newer.number]
    assert numbers("assignee=me") == [first.number]
    assert numbers(f"assignee={desk.ann.pk}") == [first.number]
    assert numbers("assignee=nobody") == [newer.number, older.number]
    assert numbers("folder=mine") == [first.number]
    assert numbers("folder=unassigned&sort=waiting") == [older.number, newer.number]
    assert numbers("after=2026-11-20&before=2026-11-20") == [first.number]
    # Paging keeps the order.
    page = desk.ann_api.get("/api/v1/conversations/?sort=waiting&limit=2").json()
    rest = desk.ann_api.get(f"/api/v1/conversations/?sort=waiting&limit=2&cursor={page['next_cursor']}").json()
    assert [r["number"] for r in page["results"] + rest["results"]] == [older.number, first.number, newer.number]

    assert_error(desk.ann_api.get("/api/v1/conversations/?sort=loudest"), 400, "bad_sort")
    assert_error(desk.ann_api.get("/api/v1/conversations/?folder=attic"), 400, "bad_filter")
    assert_error(desk.ann_api.get("/api/v1/conversations/?assignee=someone"), 400, "bad_filter")
    assert_error(desk.ann_api.get("/api/v1/conversations/?priority=soon"), 400)
    assert_error(desk.ann_api.get("/api/v1/conversations/?after=yesterday"), 400, "bad_filter")


# --- the conversation and its messages ---------------------------------------------------------------


def test_detail_shows_state_and_outbound_delivery(desk):  # type: ignore[no-untyped-def]
    post(desk.ann_api, desk.url + "tags", {"add": ["vip"]})
    post(desk.bob_api, desk.url + "followers", {"follow": True})
    sent = reply(desk.ann_api, desk).json()
    OutboundMail.objects.filter(message_id=sent["id"]).update(
        state=OutboundState.FAILED, attempts=3, last_error="550 5.1.1 mailbox unavailable"
    )
    detail = desk.ann_api.get(desk.url).json()
    assert detail["tags"] == ["vip"]
    assert detail["followers"] == ["bob@example.org"]
    assert detail["assignee"] == "ann@example.org"
    assert detail["snoozed_until"] is None and detail["waiting_since"] is None  # answered: nobody waits
    assert detail["merged_into"] is None
    assert detail["latest_event_id"] == Event.objects.filter(conversation=desk.conversation).latest("id").pk
    inbound, outbound = detail["messages"]
    assert inbound["direction"] == "inbound" and inbound["author"] is None and inbound["outbound"] is None
    assert outbound["direction"] == "outbound" and outbound["author"] == "ann@example.org"
    assert outbound["outbound"]["state"] == "failed"
    assert outbound["outbound"]["attempts"] == 3
    assert outbound["outbound"]["last_error"] == "550 5.1.1 mailbox unavailable"
    row = desk.ann_api.get("/api/v1/conversations/").json()["results"][0]
    assert row["tags"] == ["vip"] and "followers" not in row and "messages" not in row


def test_waiting_since_is_shown_until_answered(desk):  # type: ignore[no-untyped-def]
    assert desk.ann_api.get(desk.url).json()["waiting_since"] is not None
    reply(desk.ann_api, desk)
    assert desk.ann_api.get(desk.url).json()["waiting_since"] is None


# --- methods, sessions and the schema ----------------------------------------------------------------


def test_wrong_methods_are_405(desk):  # type: ignore[no-untyped-def]
    assert_error(desk.ann_api.get(desk.url + "replies"), 405, "method_not_allowed")
    assert_error(desk.ann_api.post(desk.url + "draft", "{}", content_type="application/json"), 405)
    assert_error(desk.ann_api.delete("/api/v1/views/"), 405)


def test_session_writes_need_the_csrf_token(desk):  # type: ignore[no-untyped-def]
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(desk.ann)
    response = post(browser, desk.url + "status", {"status": "open"})
    assert "CSRF" in assert_error(response, 403, "permission_denied")
    assert desk.reload().status == Status.NEW
    assert browser.get(desk.url).status_code == 200  # reads need no token


def test_schema_documents_the_write_side(desk):  # type: ignore[no-untyped-def]
    response = desk.ann_api.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    one = "/api/v1/conversations/{number}/"
    for path, method in [
        (one + "replies", "post"),
        (one + "forwards", "post"),
        (one + "notes", "post"),
        (one + "assign", "post"),
        (one + "take", "post"),
        (one + "status", "post"),
        (one + "priority", "post"),
        (one + "snooze", "post"),
        (one + "tags", "post"),
        (one + "followers", "post"),
        (one + "merge", "post"),
        (one + "spam", "post"),
        (one + "draft", "put"),
        (one + "draft", "delete"),
        (one + "events", "get"),
        (one + "drafts", "get"),
        ("/api/v1/conversations/bulk", "post"),
        ("/api/v1/messages/{message_id}/split", "post"),
        ("/api/v1/views/", "get"),
        ("/api/v1/views/", "post"),
        ("/api/v1/views/{view_id}/", "delete"),
        ("/api/v1/notifications/", "get"),
        ("/api/v1/notifications/{notification_id}/read", "post"),
        ("/api/v1/folders/", "get"),
    ]:
        assert method in paths.get(path, {}), (path, method)
    replies = paths[one + "replies"]["post"]
    assert "409" in replies["responses"] and "201" in replies["responses"]
    components = schema["components"]["schemas"]
    assert {"seen_event_id", "text"} <= set(components["ReplyRequest"]["required"])
    assert "changes" in components["CollisionDetail"]["properties"]
    assert "outbound" in components["Message"]["properties"]
    list_parameters = {p["name"] for p in paths["/api/v1/conversations/"]["get"]["parameters"]}
    assert {"tag", "assignee", "priority", "sort", "folder"} <= list_parameters


def test_admin_of_no_team_acts_everywhere(desk, token_client):  # type: ignore[no-untyped-def]
    boss = token_client(make_agent("boss@example.org", role=Role.ADMIN))
    assert post(boss, desk.url + "status", {"status": "closed"}).json()["status"] == "closed"
    assert reply(boss, desk).status_code == 201


def test_message_author_is_kept_when_reading_a_note_of_another(desk):  # type: ignore[no-untyped-def]
    post(desk.bob_api, desk.url + "notes", {"text": "I called the carrier."})
    messages = desk.ann_api.get(desk.url).json()["messages"]
    assert [(m["direction"], m["author"]) for m in messages] == [("inbound", None), ("note", "bob@example.org")]
    assert Message.objects.filter(direction=Direction.NOTE).count() == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/conversations/{huge}/replies"),
        ("post", "/api/v1/conversations/{huge}/take"),
        ("put", "/api/v1/conversations/{huge}/draft"),
        ("get", "/api/v1/conversations/{huge}/events"),
        ("get", "/api/v1/conversations/{huge}/drafts"),
        ("post", "/api/v1/messages/{huge}/split"),
        ("delete", "/api/v1/views/{huge}/"),
        ("post", "/api/v1/notifications/{huge}/read"),
    ],
)
def test_ids_beyond_any_database_integer_are_plain_404(desk, method: str, path: str):  # type: ignore[no-untyped-def]
    url = path.format(huge="9" * 30)
    response = desk.ann_api.generic(method.upper(), url, "{}", content_type="application/json")
    assert_error(response, 404, "not_found")
