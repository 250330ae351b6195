"""Every API endpoint against every kind of caller: an agent of team X can neither reach nor act on team Y's
conversations (404, the same answer as for something that does not exist), lists and counts never include them,
nobody gets in without signing in (401), collaborators only read, add notes and follow (403 otherwise), and
admins reach every team.

The endpoints are discovered from the URL resolver, so a new endpoint without an entry in MATRIX fails
`test_every_endpoint_is_in_the_matrix` until someone decides who may call it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from factories import make_agent, make_raw_mail
from postdesk.desk import actions
from postdesk.desk.models import (
    Attachment,
    BlockedSender,
    Conversation,
    Draft,
    Incident,
    Mailbox,
    Message,
    Notification,
    OutboundMail,
    Role,
    SavedView,
    Status,
)
from two_teams import BASE_TIME, TwoTeams

pytestmark = pytest.mark.django_db

MISSING = 987654  # an id and a number no object has
METHODS = ("get", "post", "put", "patch", "delete")


# --- the world --------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One team's things: a conversation of two customer mails (the second with a file), and a second one."""

    agent: User
    mailbox: Mailbox
    conversation: Conversation
    other: Conversation  # same mailbox: a merge target
    message: Message  # the second customer mail: splittable, with raw mail
    attachment: Attachment


@dataclass
class World:
    x: Side
    y: Side
    collaborator: User  # role collaborator, team X
    admin: User  # role admin, no team
    views: dict[int, SavedView] = field(default_factory=dict)  # by owner id
    notifications: dict[int, Notification] = field(default_factory=dict)  # by recipient id


def _side(deliver, agent: User, conversation: Conversation, tag: str) -> Side:  # type: ignore[no-untyped-def]
    mailbox = conversation.mailbox
    first = conversation.messages.order_by("id").first()
    assert first is not None
    second = deliver(
        mailbox,
        make_raw_mail(
            subject=f"Re: {conversation.subject}",
            sender=f"{conversation.contact_name} <{conversation.contact_address}>",
            to=mailbox.address,
            in_reply_to=f"<{first.message_id}>",
            body=f"{tag} follow-up with the form attached.\n",
            attachments=((f"{tag}-form.pdf", "application/pdf", f"%PDF-1.4 {tag}".encode()),),
        ),
        at=BASE_TIME + timedelta(hours=1),
    )
    assert second.conversation_id == conversation.pk
    other = deliver(
        mailbox,
        make_raw_mail(subject=f"{tag} second question", sender="Zed <zed@z.test>", to=mailbox.address),
        at=BASE_TIME + timedelta(hours=2),
    ).conversation
    # Both in one incident, so "answer the whole incident" has members to answer.
    incident = Incident.objects.create(mailbox=mailbox, title=f"{tag} outage")
    Conversation.objects.filter(pk__in=[conversation.pk, other.pk]).update(incident=incident)
    conversation.refresh_from_db()
    return Side(agent, mailbox, conversation, other, second, second.attachments.get())


@pytest.fixture
def world(two_teams: TwoTeams, deliver) -> World:  # type: ignore[no-untyped-def]
    team_x = two_teams.mailbox_x.team
    assert team_x is not None
    collaborator = make_agent("cx@example.org", teams=(team_x,), role=Role.COLLABORATOR)
    made = World(
        x=_side(deliver, two_teams.agent_x, two_teams.conversation_x, "XSIDE"),
        y=_side(deliver, two_teams.agent_y, two_teams.conversation_y, "YSECRET"),
        collaborator=collaborator,
        admin=two_teams.admin,
    )
    # Personal things: a saved view each, and a notification each (a mention in a note by someone else).
    for owner, side in ((made.y.agent, made.y), (collaborator, made.x), (made.admin, made.y), (made.x.agent, made.x)):
        made.views[owner.pk] = actions.do_save_view(owner, "My open ones", {"status": "open"})
        author = side.agent if owner == made.admin else made.admin
        actions.do_note(author, side.conversation, text=f"@{owner.email} have a look")
        made.notifications[owner.pk] = Notification.objects.get(recipient=owner)
    return made


def fingerprint() -> tuple[object, ...]:
    """Everything an action could change, to show that a refused request changed nothing."""
    conversations = [
        (
            c.number,
            c.status,
            c.priority,
            c.assignee_id,
            c.snoozed_until,
            c.message_count,
            c.merged_into_id,
            sorted(c.tags.values_list("name", flat=True)),
            sorted(c.followers.values_list("pk", flat=True)),
            c.events.count(),
            sorted(c.messages.values_list("pk", flat=True)),
        )
        for c in Conversation.objects.order_by("pk")
    ]
    return (
        conversations,
        sorted(Draft.objects.values_list("pk", "text")),
        sorted(SavedView.objects.values_list("pk", "name")),
        sorted(Notification.objects.values_list("pk", "read_at")),
        BlockedSender.objects.count(),
        OutboundMail.objects.count(),
    )


# --- the matrix -------------------------------------------------------------------------------------------

Body = Callable[[Side], object]


@dataclass(frozen=True)
class Endpoint:
    """Who may call one (URL name, method) and what a successful call looks like.

    scope: what the URL names. "conversation", "message", "attachment": an object of a team;
    "view", "notification": something personal; "collection": no object in the URL; "public": no sign-in.
    """

    name: str
    method: str
    scope: str
    ok: int = 200
    body: Body | None = None
    collaborator_may: bool = True  # reads; of the writes only notes, note drafts and following


def _soon(_side: Side) -> object:
    return {"until": (timezone.now() + timedelta(days=1)).isoformat()}


WRITE = {"collaborator_may": False}

MATRIX: dict[tuple[str, str], Endpoint] = {
    (e.name, e.method): e
    for e in [
        Endpoint("conversation-list", "GET", "collection"),
        Endpoint("folder-list", "GET", "collection"),
        Endpoint("conversation-detail", "GET", "conversation"),
        Endpoint("conversation-events", "GET", "conversation"),
        Endpoint("conversation-drafts", "GET", "conversation"),
        Endpoint("message-raw", "GET", "message"),
        Endpoint("attachment-download", "GET", "attachment"),
        Endpoint(
            "conversation-replies",
            "POST",
            "conversation",
            201,
            lambda s: {"text": "Answer.", "seen_event_id": 0, "confirm": True},
            **WRITE,
        ),
        Endpoint(
            "conversation-forwards", "POST", "conversation", 201, lambda s: {"to": "a@b.test", "text": "FYI"}, **WRITE
        ),
        Endpoint("conversation-notes", "POST", "conversation", 201, lambda s: {"text": "A note."}),
        Endpoint("conversation-assign", "POST", "conversation", body=lambda s: {"assignee": s.agent.email}, **WRITE),
        Endpoint("conversation-take", "POST", "conversation", **WRITE),
        Endpoint("conversation-status", "POST", "conversation", body=lambda s: {"status": "resolved"}, **WRITE),
        Endpoint("conversation-priority", "POST", "conversation", body=lambda s: {"priority": "high"}, **WRITE),
        Endpoint("conversation-category", "POST", "conversation", body=lambda s: {"category": "billing"}, **WRITE),
        Endpoint(
            "conversation-incident-replies", "POST", "conversation", body=lambda s: {"text": "Fixed now."}, **WRITE
        ),
        Endpoint("conversation-snooze", "POST", "conversation", body=_soon, **WRITE),
        Endpoint("conversation-tags", "POST", "conversation", body=lambda s: {"add": ["matrix"]}, **WRITE),
        Endpoint("conversation-followers", "POST", "conversation", body=lambda s: {"follow": True}),
        Endpoint("conversation-merge", "POST", "conversation", body=lambda s: {"into": s.other.number}, **WRITE),
        Endpoint("conversation-spam", "POST", "conversation", body=lambda s: {"block_sender": True}, **WRITE),
        # A note draft: collaborators may keep one (reply drafts are refused to them, see below).
        Endpoint("conversation-draft", "PUT", "conversation", body=lambda s: {"kind": "note", "text": "Draft."}),
        Endpoint("conversation-draft", "DELETE", "conversation", 204),
        Endpoint("message-split", "POST", "message", 201, **WRITE),
        Endpoint(
            "conversation-bulk",
            "POST",
            "collection",
            body=lambda s: {"numbers": [s.conversation.number], "action": "status", "value": "resolved"},
            **WRITE,
        ),
        Endpoint("view-list", "GET", "collection"),
        Endpoint("view-list", "POST", "collection", 201, lambda s: {"name": "Matrix", "filters": {"q": "x"}}),
        Endpoint("view-detail", "DELETE", "view", 204),
        Endpoint("notification-list", "GET", "collection"),
        Endpoint("notification-read", "POST", "notification"),
        # The caller's own availability: collaborators are never routed, so they have none to read or set.
        Endpoint("me-availability", "GET", "collection", collaborator_may=False),
        Endpoint(
            "me-availability", "POST", "collection", body=lambda s: {"availability": "away", "release": False}, **WRITE
        ),
        Endpoint("schema", "GET", "public"),
    ]
}

TEAM_SCOPED = [e for e in MATRIX.values() if e.scope in ("conversation", "message", "attachment")]
OBJECT_SCOPED = [e for e in MATRIX.values() if e.scope not in ("collection", "public")]
SIGNED_IN = [e for e in MATRIX.values() if e.scope != "public"]


def _ids(entries: list[Endpoint]) -> list[str]:
    return [f"{e.method} {e.name}" for e in entries]


def _walk(patterns: list[URLPattern | URLResolver]) -> Iterator[URLPattern]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns)
        else:
            yield pattern


def discovered_endpoints() -> set[tuple[str, str]]:
    """(URL name, method) of every view under the api namespace, from the resolver itself."""
    _prefix, api = get_resolver().namespace_dict["api"]
    found: set[tuple[str, str]] = set()
    for pattern in _walk(api.url_patterns):
        if pattern.name == "not-found":  # the catch-all JSON 404
            continue
        view_class = getattr(pattern.callback, "view_class", None)
        assert view_class is not None, f"{pattern.pattern}: a function view; give it a class and a matrix entry"
        assert pattern.name, f"{pattern.pattern} has no name: the matrix cannot refer to it"
        found |= {(pattern.name, m.upper()) for m in METHODS if hasattr(view_class, m)}
    return found


def call(client: Client, entry: Endpoint, world: World, side: Side, owner: User, *, missing: bool = False) -> Any:
    """Make `entry`'s request on `side`'s object (or `owner`'s personal one); `missing`: on an id nothing has."""
    ids: dict[str, dict[str, int]] = {
        "conversation": {"number": side.conversation.number},
        "message": {"message_id": side.message.pk},
        "attachment": {"attachment_id": side.attachment.pk},
        "view": {"view_id": world.views[owner.pk].pk},
        "notification": {"notification_id": world.notifications[owner.pk].pk},
    }
    kwargs = ids.get(entry.scope, {})
    if missing:
        kwargs = dict.fromkeys(kwargs, MISSING)
    url = reverse(f"api:{entry.name}", kwargs=kwargs)
    body = entry.body(side) if entry.body is not None else None
    response = client.generic(
        entry.method, url, json.dumps(body) if body is not None else "", content_type="application/json"
    )
    if response.streaming:
        response.content_bytes = b"".join(response.streaming_content)  # read to the end: closes the file
    return response


def _content(response: Any) -> bytes:
    return getattr(response, "content_bytes", None) or (b"" if response.streaming else response.content)


def _normalised_error(response: Any) -> dict[str, str]:
    body = response.json()
    return {key: re.sub(r"\d+", "N", str(value)) for key, value in body["error"].items()}


def post_json(client: Client, url: str, body: object) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def _client(token_client, user: User) -> Client:  # type: ignore[no-untyped-def]
    return token_client(user)


# --- tests ------------------------------------------------------------------------------------------------


def test_every_endpoint_is_in_the_matrix() -> None:
    found = discovered_endpoints()
    missing = sorted(found - set(MATRIX))
    stale = sorted(set(MATRIX) - found)
    assert not missing, f"endpoints without a permission-matrix entry: {missing}"
    assert not stale, f"matrix entries for endpoints that no longer exist: {stale}"


@pytest.mark.parametrize("who", ["agent", "collaborator"])
@pytest.mark.parametrize("entry", OBJECT_SCOPED, ids=_ids(OBJECT_SCOPED))
def test_another_teams_things_are_not_found(world, token_client, entry: Endpoint, who: str):  # type: ignore[no-untyped-def]
    caller = world.x.agent if who == "agent" else world.collaborator
    client = _client(token_client, caller)
    before = fingerprint()

    hidden = call(client, entry, world, world.y, world.y.agent)
    missing = call(client, entry, world, world.y, world.y.agent, missing=True)

    assert hidden.status_code == missing.status_code == 404, hidden.content
    assert hidden["Content-Type"] == missing["Content-Type"] == "application/json"
    assert _normalised_error(hidden) == _normalised_error(missing)
    assert hidden.json()["error"]["code"] == "not_found"
    assert b"YSECRET" not in _content(hidden) and b"yolanda" not in _content(hidden).lower()
    assert fingerprint() == before
    # The same request by team Y's own agent works: the 404 above was the permission, not a broken request.
    own = call(_client(token_client, world.y.agent), entry, world, world.y, world.y.agent)
    assert own.status_code == entry.ok, own.content


def test_merging_into_another_teams_conversation_is_not_found(world, token_client):  # type: ignore[no-untyped-def]
    client = _client(token_client, world.x.agent)
    url = reverse("api:conversation-merge", kwargs={"number": world.x.conversation.number})
    before = fingerprint()
    hidden = post_json(client, url, {"into": world.y.conversation.number})
    missing = post_json(client, url, {"into": MISSING})
    assert hidden.status_code == missing.status_code == 404
    assert _normalised_error(hidden) == _normalised_error(missing)
    assert fingerprint() == before


def test_bulk_actions_skip_another_teams_conversations_like_missing_ones(world, token_client):  # type: ignore[no-untyped-def]
    client = _client(token_client, world.x.agent)
    before = fingerprint()
    for action, value in [
        ("status", "resolved"),
        ("priority", "urgent"),
        ("assign", world.x.agent.email),
        ("tag", "x"),
        ("spam", ""),
        ("merge", ""),
    ]:
        hidden = post_json(
            client,
            "/api/v1/conversations/bulk",
            {"numbers": [world.y.conversation.number, world.y.other.number], "action": action, "value": value},
        )
        missing = post_json(
            client, "/api/v1/conversations/bulk", {"numbers": [MISSING, MISSING + 1], "action": action, "value": value}
        )
        assert hidden.status_code == missing.status_code, action
        if hidden.status_code == 200:
            assert hidden.json()["changed"] == 0
            assert [re.sub(r"\d+", "N", e) for e in hidden.json()["errors"]] == [
                re.sub(r"\d+", "N", e) for e in missing.json()["errors"]
            ]
        else:  # merge needs two conversations it can see: refused alike
            assert _normalised_error(hidden) == _normalised_error(missing)
    assert fingerprint() == before


@pytest.mark.parametrize("entry", SIGNED_IN, ids=_ids(SIGNED_IN))
@pytest.mark.parametrize("credentials", ["none", "bad token"])
def test_nobody_gets_in_without_signing_in(world, entry: Endpoint, credentials: str):  # type: ignore[no-untyped-def]
    client = Client() if credentials == "none" else Client(HTTP_AUTHORIZATION="Token " + "0" * 64)
    before = fingerprint()
    response = call(client, entry, world, world.x, world.x.agent)
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] in ("not_authenticated", "authentication_failed")
    assert response["WWW-Authenticate"] == "Token"
    assert fingerprint() == before


def test_the_schema_is_public(world):  # type: ignore[no-untyped-def]
    response = call(Client(), MATRIX[("schema", "GET")], world, world.x, world.x.agent)
    assert response.status_code == 200
    assert b"YSECRET" not in response.content and b"XSIDE" not in response.content


@pytest.mark.parametrize("entry", SIGNED_IN, ids=_ids(SIGNED_IN))
def test_collaborators_read_note_and_follow_only(world, token_client, entry: Endpoint):  # type: ignore[no-untyped-def]
    client = _client(token_client, world.collaborator)
    before = fingerprint()
    response = call(client, entry, world, world.x, world.collaborator)
    if entry.collaborator_may:
        assert response.status_code == entry.ok, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "permission_denied"
        assert fingerprint() == before


def test_collaborators_may_not_keep_reply_or_forward_drafts(world, token_client):  # type: ignore[no-untyped-def]
    client = _client(token_client, world.collaborator)
    url = reverse("api:conversation-draft", kwargs={"number": world.x.conversation.number})
    for kind in ("reply", "forward"):
        response = client.put(url, json.dumps({"kind": kind, "text": "Dear customer"}), content_type="application/json")
        assert response.status_code == 403, kind
    assert not Draft.objects.filter(author=world.collaborator).exists()


@pytest.mark.parametrize("entry", SIGNED_IN, ids=_ids(SIGNED_IN))
def test_admins_reach_every_team(world, token_client, entry: Endpoint):  # type: ignore[no-untyped-def]
    response = call(_client(token_client, world.admin), entry, world, world.y, world.admin)
    assert response.status_code == entry.ok, response.content


def test_personal_things_stay_personal_even_for_admins(world, token_client):  # type: ignore[no-untyped-def]
    client = _client(token_client, world.admin)
    views = client.get("/api/v1/views/").json()
    assert [v["id"] for v in views] == [world.views[world.admin.pk].pk]
    notifications = client.get("/api/v1/notifications/").json()["results"]
    assert [n["id"] for n in notifications] == [world.notifications[world.admin.pk].pk]
    for entry in (MATRIX[("view-detail", "DELETE")], MATRIX[("notification-read", "POST")]):
        hidden = call(client, entry, world, world.y, world.y.agent)  # team Y's agent's view and notification
        assert hidden.status_code == 404


# --- lists, counts and search ----------------------------------------------------------------------------


def _numbers(client: Client, query: str) -> list[int]:
    response = client.get(f"/api/v1/conversations/?{query}")
    assert response.status_code == 200, (query, response.content)
    return [row["number"] for row in response.json()["results"]]


def test_lists_and_search_never_include_another_team(world, token_client):  # type: ignore[no-untyped-def]
    y = world.y
    actions.do_tag(world.admin, y.conversation, add=["ysecret-tag"])
    actions.do_set_priority(world.admin, y.conversation, "urgent")
    actions.do_assign(world.admin, y.conversation, y.agent)
    x_numbers = {world.x.conversation.number, world.x.other.number}
    client = _client(token_client, world.x.agent)
    own = _client(token_client, y.agent)
    queries = [
        "",
        "sort=waiting",
        "sort=priority",
        "status=new,open,pending,snoozed,resolved,closed,spam,merged",
        "q=YSECRET",
        "q=Yolanda",
        "q=y-customer",
        "tag=ysecret-tag",
        "priority=urgent",
        f"assignee={y.agent.pk}",
        "mailbox=y@support.test",
        f"contact={y.conversation.contact_id}",
        *[f"folder={key}" for key in ("unassigned", "mine", "open", "pending", "snoozed", "resolved", "spam", "")],
    ]
    for query in queries:
        found = _numbers(client, query)
        assert set(found) <= x_numbers, query
    # Team Y's own agent finds them with the same queries: the empty answers above mean "hidden", not "broken".
    for query in ("q=YSECRET", "tag=ysecret-tag", "priority=urgent", f"assignee={y.agent.pk}"):
        assert y.conversation.number in _numbers(own, query), query
    # Another team's folder does not exist for this agent, exactly like a team that does not exist.
    hidden = client.get(f"/api/v1/conversations/?folder=team-{y.mailbox.team_id}")
    missing = client.get(f"/api/v1/conversations/?folder=team-{MISSING}")
    assert hidden.status_code == missing.status_code == 400
    assert _normalised_error(hidden) == _normalised_error(missing)


def test_folder_counts_ignore_another_team(world, token_client, deliver):  # type: ignore[no-untyped-def]
    agent_x = _client(token_client, world.x.agent)
    admin = _client(token_client, world.admin)

    def counts(client: Client) -> dict[str, int]:
        response = client.get("/api/v1/folders/")
        assert response.status_code == 200
        return {f["key"]: f["count"] for f in response.json()["folders"]}

    before, admin_before = counts(agent_x), counts(admin)
    assert not any(key == f"team-{world.y.mailbox.team_id}" for key in before)
    for status in (Status.OPEN, Status.PENDING, Status.RESOLVED, Status.SPAM):
        new = deliver(world.y.mailbox, make_raw_mail(subject=f"Y {status}", to=world.y.mailbox.address)).conversation
        actions.do_assign(world.admin, new, world.y.agent)
        if status == Status.SPAM:
            actions.do_mark_spam(world.admin, new)
        else:
            actions.do_set_status(world.admin, new, status)
    actions.do_assign(world.admin, world.y.other, None)
    assert counts(agent_x) == before
    assert counts(admin) != admin_before  # the new conversations do count for someone who sees them


def test_notifications_of_a_conversation_moved_away_are_hidden(world, token_client):  # type: ignore[no-untyped-def]
    client = _client(token_client, world.x.agent)
    assert [n["id"] for n in client.get("/api/v1/notifications/").json()["results"]] == [
        world.notifications[world.x.agent.pk].pk
    ]
    world.x.mailbox.team = world.y.mailbox.team
    world.x.mailbox.save()
    assert client.get("/api/v1/notifications/").json()["results"] == []
    read = call(client, MATRIX[("notification-read", "POST")], world, world.x, world.x.agent)
    assert read.status_code == 404
