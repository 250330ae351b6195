"""Routing (desk/routing.py): who gets each mail as it arrives, the team queue, availability, and its controls."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date, timedelta
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.test import Client

from factories import make_agent, make_mailbox, make_raw_mail, make_team
from postdesk.desk import actions, routing
from postdesk.desk.errors import BadRequest, PermissionDenied
from postdesk.desk.models import (
    AgentProfile,
    AssignmentMode,
    BusinessCalendar,
    Conversation,
    Event,
    EventKind,
    Holiday,
    Mailbox,
    Role,
    Status,
    Team,
)
from two_teams import BASE_TIME, Deliver, deliver, fast_passwords, token_client

__all__ = ["deliver", "fast_passwords", "token_client"]

pytestmark = pytest.mark.django_db

# BASE_TIME is Friday 2026-11-20 09:00 UTC.
CommitCallbacks = Callable[..., AbstractContextManager[list[Callable[[], object]]]]


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks: CommitCallbacks) -> Iterator[CommitCallbacks]:
    """Run what the code queues for after the commit (hand-outs), as a real commit would; huey runs inline."""
    yield lambda: django_capture_on_commit_callbacks(execute=True)


def _team(mode: str = AssignmentMode.ROUND_ROBIN, *, strict: bool = False, name: str = "Support") -> Team:
    team = make_team(name)
    team.assignment_mode = mode
    team.language_strict = strict
    team.save()
    return team


def _agent(email: str, team: Team, *, role: Role = Role.AGENT, **profile: object) -> User:
    user = make_agent(email, teams=(team,), role=role)
    if profile:
        AgentProfile.objects.filter(user=user).update(**profile)
    return cast(User, user)


def _mail(deliver: Deliver, mailbox: Mailbox, n: int, **kwargs: object) -> Conversation:
    message = deliver(
        mailbox,
        make_raw_mail(
            subject=f"Question {n}",
            sender=f"Customer {n} <c{n}@customer.test>",
            to=mailbox.address,
            body=f"Question number {n}, please help.\n",
            **kwargs,  # type: ignore[arg-type]
        ),
        at=BASE_TIME + timedelta(minutes=n),
    )
    return Conversation.objects.get(pk=message.conversation_id)


def _assignee(conversation: Conversation) -> int | None:
    return Conversation.objects.values_list("assignee_id", flat=True).get(pk=conversation.pk)


def _routed(conversation: Conversation) -> list[dict[str, Any]]:
    return list(
        Event.objects.filter(conversation=conversation, kind=EventKind.ROUTED)
        .order_by("id")
        .values_list("data", flat=True)
    )


def _set_mode(team: Team, mode: str, *, strict: bool | None = None) -> None:
    team.assignment_mode = mode
    if strict is not None:
        team.language_strict = strict
    team.save()


# --- as mail arrives ----------------------------------------------------------------------------------


def test_round_robin_takes_turns_across_three_agents(deliver: Deliver) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    ana, boris, chen = (_agent(f"{n}@example.org", team) for n in ("ana", "boris", "chen"))

    conversations = [_mail(deliver, mailbox, n) for n in range(6)]

    assert [_assignee(c) for c in conversations] == [ana.pk, boris.pk, chen.pk, ana.pk, boris.pk, chen.pk]
    first = Conversation.objects.get(pk=conversations[0].pk)
    assert first.status == Status.OPEN  # as when an agent assigns it: someone has it now
    assert first.team_id == team.pk
    [event] = _routed(first)
    assert event["agent"] == "ana@example.org"
    assert event["assignee"] == ana.pk
    assert str(event["reason"]).startswith("round robin: ana@example.org has not been assigned yet")
    fourth = _routed(conversations[3])[0]
    assert str(fourth["reason"]).startswith("round robin: ana@example.org was assigned least recently")
    # The intake step log says what routing decided.
    steps = first.messages.get().received_mail.steps  # type: ignore[union-attr]
    assert {"step": "route", "outcome": "ok", "detail": event["reason"]} in steps, steps


def test_least_loaded_fills_by_share_of_capacity_then_waits(deliver: Deliver) -> None:
    team = _team(AssignmentMode.LEAST_LOADED)
    mailbox = make_mailbox("help@support.test", team=team)
    small = _agent("small@example.org", team, capacity=2)
    big = _agent("big@example.org", team, capacity=4)

    conversations = [_mail(deliver, mailbox, n) for n in range(7)]

    # 0/2 vs 0/4 tie (first by id); then the lower share of capacity; a tie at 2/4 vs 1/2 goes to the one
    # assigned least recently. Six fit; the seventh waits in the team queue.
    assert [_assignee(c) for c in conversations] == [small.pk, big.pk, big.pk, small.pk, big.pk, big.pk, None]
    assert str(_routed(conversations[1])[0]["reason"]).startswith("least loaded: big@example.org")
    waiting = Conversation.objects.get(pk=conversations[6].pk)
    assert waiting.status == Status.NEW and waiting.team_id == team.pk
    [event] = _routed(waiting)
    assert event["reason"] == "waiting: no agent is available"
    assert {e["agent"]: e["why"] for e in event["excluded"]} == {
        "small@example.org": "at capacity (2 of 2 open)",
        "big@example.org": "at capacity (4 of 4 open)",
    }


def test_a_full_agent_gets_the_waiting_conversation_when_they_resolve_one(
    deliver: Deliver, after_commit: Callable[[], AbstractContextManager[object]]
) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    ana = _agent("ana@example.org", team, capacity=1)
    first = _mail(deliver, mailbox, 1)
    second = _mail(deliver, mailbox, 2)
    assert (_assignee(first), _assignee(second)) == (ana.pk, None)
    # Pending (waiting on the customer) does not count against capacity either, but first a plain resolve.
    with after_commit():
        actions.do_set_status(ana, first, Status.RESOLVED)

    assert _assignee(second) == ana.pk
    assert [e["reason"] for e in _routed(second)] == [
        "waiting: no agent is available",
        "round robin: ana@example.org was assigned least recently; 0 of 1 open",
    ]


def test_hand_out_gives_the_queue_out_most_urgent_first_and_only_what_fits(deliver: Deliver) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    ana = _agent("ana@example.org", team, availability="offline", capacity=2)
    old, urgent, recent = (_mail(deliver, mailbox, n) for n in (1, 2, 3))
    actions.do_set_priority(ana, urgent, "urgent")
    assert [_assignee(c) for c in (old, urgent, recent)] == [None, None, None]
    AgentProfile.objects.filter(user=ana).update(availability="online")

    assert routing.hand_out(team.pk, now=BASE_TIME + timedelta(hours=1)) == 2

    assert [_assignee(c) for c in (old, urgent, recent)] == [ana.pk, ana.pk, None]
    assert routing.hand_out(team.pk, now=BASE_TIME + timedelta(hours=1)) == 0  # full: the recent one waits
    actions.do_set_status(ana, old, Status.PENDING)  # waiting on the customer: no longer on her plate
    assert routing.hand_out(team.pk, now=BASE_TIME + timedelta(hours=2)) == 1
    assert _assignee(recent) == ana.pk


def test_offline_away_and_off_shift_agents_are_skipped(deliver: Deliver) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    weekend = BusinessCalendar.objects.create(name="Weekend", weekly_hours={"sat": ["09:00-17:00"]})
    fridays = BusinessCalendar.objects.create(
        name="Fridays", time_zone="Europe/Kyiv", weekly_hours={"fri": "08:00-20:00"}
    )
    day_off = BusinessCalendar.objects.create(name="Fridays, not today", weekly_hours={"fri": "08:00-20:00"})
    Holiday.objects.create(calendar=day_off, date=date(2026, 11, 20), name="Day off")
    _agent("off@example.org", team, availability="offline")
    _agent("away@example.org", team, availability="away")
    _agent("weekend@example.org", team, schedule=weekend)
    _agent("holiday@example.org", team, schedule=day_off)
    here = _agent("here@example.org", team, schedule=fridays)  # 11:00 on a Friday in Kyiv

    conversation = _mail(deliver, mailbox, 1)

    assert _assignee(conversation) == here.pk
    [event] = _routed(conversation)
    assert {e["agent"]: e["why"] for e in event["excluded"]} == {
        "off@example.org": "offline",
        "away@example.org": "away",
        "weekend@example.org": "off shift",
        "holiday@example.org": "off shift",
    }


def test_nobody_present_means_the_conversation_waits_with_the_reason_said_once(deliver: Deliver) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    _agent("off@example.org", team, availability="offline")
    first = _mail(deliver, mailbox, 1)
    deliver(
        mailbox,
        make_raw_mail(
            subject="Re: Question 1",
            sender="Customer 1 <c1@customer.test>",
            to=mailbox.address,
            in_reply_to=f"<{first.messages.get().message_id}>",
            body="Anyone there?\n",
        ),
        at=BASE_TIME + timedelta(hours=1),
    )
    assert Conversation.objects.get(pk=first.pk).message_count == 2
    assert _assignee(first) is None
    assert [e["reason"] for e in _routed(first)] == ["waiting: no agent is available"]


def _waiting_in_ukrainian(deliver: Deliver, *, strict: bool) -> tuple[Team, Conversation, User, User]:
    """A mail in Ukrainian waiting in a manual team, whose agents speak English and Russian; then the team routes."""
    team = _team(AssignmentMode.MANUAL, strict=strict)
    mailbox = make_mailbox("help@support.test", team=team)
    en = _agent("en@example.org", team, languages=["en"])
    ru = _agent("ru@example.org", team, languages=["ru", "en"])
    conversation = _mail(deliver, mailbox, 1)
    assert _assignee(conversation) is None  # a manual team: nobody decides but people
    assert _routed(conversation) == []
    Conversation.objects.filter(pk=conversation.pk).update(language="uk")
    _set_mode(team, AssignmentMode.ROUND_ROBIN)
    return team, conversation, en, ru


def test_a_strict_team_holds_a_mail_nobody_speaks(deliver: Deliver) -> None:
    team, conversation, _en, _ru = _waiting_in_ukrainian(deliver, strict=True)

    assert routing.hand_out(team.pk) == 0
    reason = routing.route(Conversation.objects.get(pk=conversation.pk), now=BASE_TIME)

    assert reason == "waiting: no available agent speaks uk"
    assert _assignee(conversation) is None
    [event] = _routed(conversation)
    assert event["reason"] == reason


def test_a_lenient_team_gives_it_to_someone_and_a_speaker_comes_first(deliver: Deliver) -> None:
    team, conversation, en, _ru = _waiting_in_ukrainian(deliver, strict=False)

    assert routing.hand_out(team.pk) == 1
    assert _assignee(conversation) == en.pk
    assert "nobody available speaks uk" in str(_routed(conversation)[0]["reason"])

    # Someone who speaks Ukrainian (in any spelling of the code) is preferred over the round-robin turn.
    uk = _agent("uk@example.org", team, languages=["UK"])
    another = _mail(deliver, team.mailboxes.get(), 2)
    actions.do_assign(en, another, None)
    Conversation.objects.filter(pk=another.pk).update(language="uk")
    assert routing.hand_out(team.pk) == 1
    assert _assignee(another) == uk.pk


def test_a_conversation_needs_the_skills_its_tags_name(deliver: Deliver) -> None:
    team = _team(AssignmentMode.MANUAL)
    mailbox = make_mailbox("help@support.test", team=team)
    generalist = _agent("generalist@example.org", team)
    billing = _agent("billing@example.org", team, skills=["Billing "])
    conversation = _mail(deliver, mailbox, 1)
    # "vip" is nobody's skill: a plain label, it holds nothing back; "billing" is a skill, so it is needed.
    actions.do_tag(generalist, conversation, add=["billing", "vip"])
    _set_mode(team, AssignmentMode.ROUND_ROBIN)

    assert routing.hand_out(team.pk) == 1

    assert _assignee(conversation) == billing.pk  # the generalist's turn came first, but lacks the skill
    assert "has billing" in str(_routed(conversation)[0]["reason"])


def test_a_manual_team_never_assigns(deliver: Deliver) -> None:
    team = _team(AssignmentMode.MANUAL)
    mailbox = make_mailbox("help@support.test", team=team)
    _agent("ana@example.org", team)

    conversation = _mail(deliver, mailbox, 1)

    assert _assignee(conversation) is None
    assert Conversation.objects.get(pk=conversation.pk).status == Status.NEW
    assert routing.hand_out(team.pk) == 0
    assert _assignee(conversation) is None
    assert _routed(conversation) == []


def test_another_teams_agent_is_never_chosen(deliver: Deliver) -> None:
    team_a, team_b = _team(name="A"), _team(name="B")
    mailbox_a = make_mailbox("a@support.test", team=team_a)
    _agent("a-off@example.org", team_a, availability="offline")
    b_agent = _agent("b@example.org", team_b)
    collaborator = _agent("collab@example.org", team_a, role=Role.COLLABORATOR)

    conversation = _mail(deliver, mailbox_a, 1)
    assert _assignee(conversation) is None
    assert routing.hand_out(team_a.pk) == 0

    # A rule may move it to team B; B's agent still cannot open a mailbox of team A, so it is not theirs.
    Conversation.objects.filter(pk=conversation.pk).update(team=team_b)
    assert routing.hand_out(team_b.pk) == 0
    assert _assignee(conversation) not in (b_agent.pk, collaborator.pk)
    # An admin of team B sees every mailbox: they can take it.
    b_admin = _agent("b-admin@example.org", team_b, role=Role.ADMIN)
    assert routing.hand_out(team_b.pk) == 1
    assert _assignee(conversation) == b_admin.pk


def test_a_rule_that_chose_the_assignee_is_left_alone(deliver: Deliver) -> None:
    team = _team(AssignmentMode.MANUAL)
    mailbox = make_mailbox("help@support.test", team=team)
    ana = _agent("ana@example.org", team)
    boris = _agent("boris@example.org", team)
    conversation = _mail(deliver, mailbox, 1)
    actions.do_assign(boris, conversation, boris)
    _set_mode(team, AssignmentMode.ROUND_ROBIN)

    reason = routing.route(Conversation.objects.get(pk=conversation.pk), now=BASE_TIME)

    assert reason == "already assigned to boris@example.org"
    assert _assignee(conversation) == boris.pk != ana.pk
    assert _routed(conversation) == []


# --- availability -------------------------------------------------------------------------------------


def test_going_offline_with_release_hands_the_conversations_to_the_others(
    deliver: Deliver, after_commit: Callable[[], AbstractContextManager[object]]
) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    ana = _agent("ana@example.org", team)
    boris = _agent("boris@example.org", team)
    conversations = [_mail(deliver, mailbox, n) for n in range(4)]
    assert [_assignee(c) for c in conversations] == [ana.pk, boris.pk, ana.pk, boris.pk]
    actions.do_set_status(ana, conversations[2], Status.PENDING)  # waiting on the customer: stays hers

    with after_commit():
        released = routing.set_availability(ana, "offline", release=True)

    assert released == 1
    assert [_assignee(c) for c in conversations] == [boris.pk, boris.pk, ana.pk, boris.pk]
    assert AgentProfile.objects.get(user=ana).availability == "offline"
    assert [e["reason"] for e in _routed(conversations[0])][1:] == [
        "released: ana@example.org went offline",
        "round robin: boris@example.org was assigned least recently; 2 open, no limit",
    ]
    # Offline, she gets no new mail.
    assert _assignee(_mail(deliver, mailbox, 9)) == boris.pk


def test_going_offline_without_release_keeps_the_conversations(
    deliver: Deliver, after_commit: Callable[[], AbstractContextManager[object]]
) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    ana = _agent("ana@example.org", team)
    _agent("boris@example.org", team)
    conversation = _mail(deliver, mailbox, 1)
    with after_commit():
        assert routing.set_availability(ana, "offline", release=False) == 0
    assert _assignee(conversation) == ana.pk


def test_coming_online_hands_out_the_teams_queue(
    deliver: Deliver, after_commit: Callable[[], AbstractContextManager[object]]
) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    ana = _agent("ana@example.org", team, availability="away")
    conversation = _mail(deliver, mailbox, 1)
    assert _assignee(conversation) is None

    with after_commit():
        routing.set_availability(ana, "online", release=False)

    assert _assignee(conversation) == ana.pk


def test_availability_refuses_bad_values_and_people_who_are_not_routed() -> None:
    team = _team()
    ana = _agent("ana@example.org", team)
    collaborator = _agent("collab@example.org", team, role=Role.COLLABORATOR)
    with pytest.raises(BadRequest, match="use one of: online, away, offline"):
        routing.set_availability(ana, "busy", release=False)
    with pytest.raises(BadRequest, match="only when going offline"):
        routing.set_availability(ana, "away", release=True)
    with pytest.raises(PermissionDenied):
        routing.set_availability(collaborator, "away", release=False)
    assert AgentProfile.objects.get(user=collaborator).availability == "online"
    assert AgentProfile.objects.get(user=ana).availability == "online"


# --- the header control and the API -------------------------------------------------------------------


def _page_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_header_shows_the_control_and_a_plain_post_sets_it() -> None:
    team = _team()
    ana = _agent("ana@example.org", team)
    client = _page_client(ana)

    page = client.get("/")
    assert b'data-testid="availability"' in page.content
    assert b'<option value="online" selected>' in page.content

    response = client.post("/me/availability/", {"availability": "away", "next": "/?folder=mine"})

    assert response.status_code == 303
    assert response["Location"] == "/?folder=mine"
    assert AgentProfile.objects.get(user=ana).availability == "away"
    page = client.get("/?folder=mine")
    assert b'<option value="away" selected>' in page.content
    assert b"You are away" in page.content  # the flash message
    # Somewhere else is not a place to go back to.
    response = client.post("/me/availability/", {"availability": "online", "next": "https://evil.test/"})
    assert response["Location"] == "/"


def test_htmx_offers_release_for_offline_and_swaps_in_the_new_state(deliver: Deliver) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    ana = _agent("ana@example.org", team)
    _agent("boris@example.org", team, availability="offline")
    conversation = _mail(deliver, mailbox, 1)
    assert _assignee(conversation) == ana.pk
    client = _page_client(ana)

    online = client.get("/me/availability/?availability=online", HTTP_HX_REQUEST="true")
    offline = client.get("/me/availability/?availability=offline", HTTP_HX_REQUEST="true")
    assert b'data-testid="availability-release"' not in online.content
    assert b'data-testid="availability-release"' in offline.content
    assert b'<option value="offline" selected>' in offline.content
    assert AgentProfile.objects.get(user=ana).availability == "online"  # looking is not choosing
    assert "script-src 'self'" in offline["Content-Security-Policy"]

    response = client.post("/me/availability/", {"availability": "offline", "release": "1"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert b"1 conversation went back to the queue" in response.content
    assert b'<option value="offline" selected>' in response.content
    assert json.loads(response["HX-Trigger"])["pd:changed"]["kind"] == "routed"
    assert _assignee(conversation) is None  # Boris is offline too: it waits in the queue


def test_the_control_refuses_collaborators_and_anonymous_users() -> None:
    team = _team()
    collaborator = _agent("collab@example.org", team, role=Role.COLLABORATOR)
    client = _page_client(collaborator)
    assert b'data-testid="availability"' not in client.get("/").content

    refused = client.post("/me/availability/", {"availability": "away"})
    assert refused.status_code == 403
    assert client.get("/me/availability/?availability=away").status_code == 403
    anonymous = Client().post("/me/availability/", {"availability": "away"})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert AgentProfile.objects.get(user=collaborator).availability == "online"


def test_the_api_sets_and_shows_the_availability(
    token_client: Callable[[User], Client], deliver: Deliver, after_commit: Callable[[], AbstractContextManager[object]]
) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    ana = _agent("ana@example.org", team, capacity=5)
    _agent("boris@example.org", team)
    conversation = _mail(deliver, mailbox, 1)
    client = token_client(ana)

    shown = client.get("/api/v1/me/availability")
    assert shown.status_code == 200
    assert shown.json() == {"availability": "online", "on_shift": True, "open_count": 1, "capacity": 5, "released": 0}

    away = client.post("/api/v1/me/availability", {"availability": "away", "release": False}, "application/json")
    assert away.status_code == 200
    assert away.json()["availability"] == "away"
    with after_commit():
        offline = client.post(
            "/api/v1/me/availability", {"availability": "offline", "release": True}, "application/json"
        )
    assert offline.status_code == 200
    assert offline.json() == {
        "availability": "offline",
        "on_shift": True,
        "open_count": 0,
        "capacity": 5,
        "released": 1,
    }
    assert _assignee(conversation) != ana.pk and _assignee(conversation) is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"availability": "busy"}, "Unknown availability 'busy'; use one of: online, away, offline."),
        ({"availability": "away", "release": True}, "only when going offline"),
        ({"availability": "away", "release": "yes"}, "Must be true or false"),
        ({"availability": "away", "relase": True}, "Unknown field relase"),
        ({}, "availability"),
    ],
)
def test_the_api_refuses_a_bad_body_with_a_clear_message(
    token_client: Callable[[User], Client], body: dict[str, object], message: str
) -> None:
    ana = _agent("ana@example.org", _team())
    response = token_client(ana).post("/api/v1/me/availability", body, "application/json")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert AgentProfile.objects.get(user=ana).availability == "online"


def test_the_api_refuses_collaborators_and_anonymous_callers(token_client: Callable[[User], Client]) -> None:
    collaborator = _agent("collab@example.org", _team(), role=Role.COLLABORATOR)
    refused = token_client(collaborator).post("/api/v1/me/availability", {"availability": "away"}, "application/json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    anonymous = Client().post("/api/v1/me/availability", {"availability": "away"}, "application/json")
    assert anonymous.status_code == 401
    assert AgentProfile.objects.get(user=collaborator).availability == "online"


def test_a_reply_is_held_when_routing_handed_the_conversation_to_someone_else_meanwhile(
    deliver: Deliver, after_commit: Callable[[], AbstractContextManager[object]]
) -> None:
    team = _team()
    mailbox = make_mailbox("help@support.test", team=team)
    ana = _agent("ana@example.org", team)
    boris = _agent("boris@example.org", team)
    supervisor = _agent("sue@example.org", team, role=Role.SUPERVISOR, availability="offline")
    conversation = _mail(deliver, mailbox, 1)
    assert _assignee(conversation) == ana.pk
    seen = actions.latest_event_id(conversation)  # the supervisor opens the page now

    with after_commit():
        routing.set_availability(ana, "offline", release=True)  # and the hand-out gives it to Boris
    assert _assignee(conversation) == boris.pk

    with pytest.raises(actions.Collision) as held:
        actions.do_reply(
            supervisor,
            conversation,
            text="On it.",
            recipients=actions.reply_recipients(conversation, reply_all=False),
            seen_event_id=seen,
        )
    assert "Postdesk routed it to boris@example.org" in held.value.changes
