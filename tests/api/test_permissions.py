"""Agents see only their teams' mailboxes through every API door; admins and superusers see all."""

from __future__ import annotations

import pytest
from django.test import Client

from postdesk.desk import access
from postdesk.desk.errors import NotFound

pytestmark = pytest.mark.django_db


def downloaded(client: Client, url: str) -> bytes:
    """The body of a file download (200 only); reading it to the end closes the file, as a server would."""
    response = client.get(url)
    assert response.status_code == 200, url
    return b"".join(response.streaming_content)


def numbers(client: Client, query: str = "") -> list[int]:
    response = client.get(f"/api/v1/conversations/?{query}")
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()["results"]]


def test_agent_lists_only_own_team(two_teams, token_client):  # type: ignore[no-untyped-def]
    x, y = two_teams.conversation_x.number, two_teams.conversation_y.number
    assert numbers(token_client(two_teams.agent_x)) == [x]
    assert numbers(token_client(two_teams.agent_y)) == [y]


def test_filters_and_search_never_reach_another_team(two_teams, token_client):  # type: ignore[no-untyped-def]
    client = token_client(two_teams.agent_x)
    y = two_teams.conversation_y
    for query in (
        "mailbox=y@support.test",
        "contact=yolanda@y-customer.test",
        f"contact={y.contact_id}",
        "q=YSECRET-SUBJECT",  # subject
        "q=YSECRET-BODY",  # message text
        "q=Yolanda",  # contact name
        "q=y-customer",  # contact address
        "status=new&mailbox=y@support.test",
    ):
        assert numbers(client, query) == [], query
    # The same searches find it for its own team, so the empty answers above mean "hidden", not "broken".
    own = token_client(two_teams.agent_y)
    assert numbers(own, "q=YSECRET-BODY") == [y.number]
    assert numbers(own, f"contact={y.contact_id}") == [y.number]


def test_hidden_conversation_is_indistinguishable_from_a_missing_one(two_teams, token_client):  # type: ignore[no-untyped-def]
    client = token_client(two_teams.agent_x)
    hidden = client.get(f"/api/v1/conversations/{two_teams.conversation_y.number}/")
    missing = client.get("/api/v1/conversations/987654/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert hidden.json()["error"]["message"].replace(str(two_teams.conversation_y.number), "N") == missing.json()[
        "error"
    ]["message"].replace("987654", "N")
    assert b"YSECRET" not in hidden.content


def test_agent_cannot_download_another_teams_raw_mail_or_attachments(two_teams, token_client):  # type: ignore[no-untyped-def]
    message_y = two_teams.message_y
    attachment_y = message_y.attachments.get()
    client = token_client(two_teams.agent_x)
    for url in (f"/api/v1/messages/{message_y.pk}/raw", f"/api/v1/attachments/{attachment_y.pk}/download"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
        assert b"secret" not in response.content
    owner = token_client(two_teams.agent_y)
    assert b"YSECRET-BODY" in downloaded(owner, f"/api/v1/messages/{message_y.pk}/raw")
    assert downloaded(owner, f"/api/v1/attachments/{attachment_y.pk}/download") == b"%PDF-1.4 y secret contract"


@pytest.mark.parametrize("who", ["admin", "superuser"])
def test_admin_and_superuser_see_everything(two_teams, token_client, who: str):  # type: ignore[no-untyped-def]
    client = token_client(getattr(two_teams, who))
    y = two_teams.conversation_y
    assert sorted(numbers(client)) == sorted([two_teams.conversation_x.number, y.number])
    assert client.get(f"/api/v1/conversations/{y.number}/").status_code == 200
    assert b"YSECRET-BODY" in downloaded(client, f"/api/v1/messages/{two_teams.message_y.pk}/raw")


def test_user_without_agent_profile_sees_nothing(two_teams, token_client):  # type: ignore[no-untyped-def]
    client = token_client(two_teams.no_profile)
    assert numbers(client) == []
    assert client.get(f"/api/v1/conversations/{two_teams.conversation_x.number}/").status_code == 404


def test_session_login_is_checked_the_same_way(two_teams):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(two_teams.agent_x)
    assert numbers(client) == [two_teams.conversation_x.number]
    assert client.get(f"/api/v1/conversations/{two_teams.conversation_y.number}/").status_code == 404


def test_moving_a_mailbox_to_another_team_moves_its_visibility(two_teams, token_client):  # type: ignore[no-untyped-def]
    client = token_client(two_teams.agent_x)
    two_teams.mailbox_y.team = two_teams.mailbox_x.team
    two_teams.mailbox_y.save()
    assert sorted(numbers(client)) == sorted([two_teams.conversation_x.number, two_teams.conversation_y.number])


def test_access_helpers_directly(two_teams):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import AnonymousUser

    agent_x, y = two_teams.agent_x, two_teams.conversation_y
    assert list(access.visible_mailboxes(agent_x)) == [two_teams.mailbox_x]
    assert list(access.visible_mailboxes(AnonymousUser())) == []
    assert access.visible_conversations(agent_x).count() == 1
    assert access.visible_conversations(two_teams.admin).count() == 2
    assert access.access_conversation_by_number(two_teams.agent_y, y.number) == y
    with pytest.raises(NotFound):
        access.access_conversation_by_number(agent_x, y.number)
    with pytest.raises(NotFound):
        access.access_message(agent_x, two_teams.message_y.pk)
    with pytest.raises(NotFound):
        access.access_attachment(agent_x, two_teams.message_y.attachments.get().pk)
    with pytest.raises(NotFound):
        access.access_conversation_by_number(AnonymousUser(), y.number)
