"""Triage through the API: what was decided is on the conversation, the category can be corrected, lists sort by due."""

from __future__ import annotations

import json

import pytest

from factories import make_raw_mail
from postdesk.desk.models import Conversation, SlaPolicy
from two_teams import BASE_TIME, Deliver, TwoTeams, deliver, fast_passwords, token_client, two_teams

__all__ = ["deliver", "fast_passwords", "token_client", "two_teams"]

pytestmark = pytest.mark.django_db


def test_the_conversation_carries_its_triage_and_sla(two_teams: TwoTeams, deliver: Deliver, token_client) -> None:  # type: ignore[no-untyped-def]
    SlaPolicy.objects.create(name="Standard", first_response_minutes=60, resolution_minutes=480)
    message = deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Zahlung fehlgeschlagen",
            sender="Greta <greta@kunde.test>",
            to="x@support.test",
            body="Guten Tag, meine Zahlung ist fehlgeschlagen und ich kann mich nicht anmelden. Bitte helfen Sie.\n",
        ),
        at=BASE_TIME,
    )
    api = token_client(two_teams.agent_x)
    number = Conversation.objects.get(pk=message.conversation_id).number
    body = api.get(f"/api/v1/conversations/{number}/").json()
    assert body["language"] == "de"
    assert body["sla_policy"] == "Standard"
    assert body["first_response_due_at"] is not None and body["sla_due_at"] == body["first_response_due_at"]
    assert body["first_responded_at"] is None

    corrected = api.post(
        f"/api/v1/conversations/{number}/category",
        json.dumps({"category": "payments"}),
        content_type="application/json",
    )
    assert corrected.status_code == 200, corrected.content
    assert corrected.json()["category"] == "payments"
    assert corrected.json()["category_source"] == "agent"

    listed = api.get("/api/v1/conversations/?sort=due").json()["results"]
    assert listed[0]["number"] == number  # the only conversation with a deadline comes first
    assert token_client(two_teams.agent_y).get(f"/api/v1/conversations/{number}/").status_code == 404


def test_incident_replies_need_an_incident_and_text(two_teams: TwoTeams, token_client) -> None:  # type: ignore[no-untyped-def]
    api = token_client(two_teams.agent_x)
    url = f"/api/v1/conversations/{two_teams.conversation_x.number}/incident-replies"
    alone = api.post(url, json.dumps({"text": "Fixed."}), content_type="application/json")
    assert alone.status_code == 400
    assert "not part of an incident" in alone.json()["error"]["message"]
    missing = api.post(url, json.dumps({}), content_type="application/json")
    assert missing.status_code == 400 and "text" in missing.json()["error"]["message"]
    assert Conversation.objects.get(pk=two_teams.conversation_x.pk).message_count == 1
