"""The conversation page explains triage: which rules fired and why, what was detected, the SLA, the category."""

from __future__ import annotations

import pytest
from django.test import Client

from factories import make_agent, make_raw_mail
from postdesk.desk.models import Conversation, DecisionSource, Direction, Incident, Message, Role, Rule, SlaPolicy
from two_teams import BASE_TIME, Deliver, TwoTeams, deliver, fast_passwords, two_teams

__all__ = ["deliver", "fast_passwords", "two_teams"]

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def logged_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def page(client: Client, conversation: Conversation, tail: str = "") -> str:
    response = client.get(f"/c/{conversation.number}/{tail}", **(HTMX if tail else {}))
    assert response.status_code == 200
    return response.content.decode()


def refund_mail(deliver: Deliver, two_teams: TwoTeams) -> Conversation:
    message = deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Refund for order 77",
            sender="Rita <rita@customer.test>",
            to="x@support.test",
            body="Please refund my order, the service is down again.\n",
        ),
        at=BASE_TIME,
    )
    return Conversation.objects.get(pk=message.conversation_id)


def test_the_timeline_names_the_rule_its_reasons_and_its_actions(two_teams: TwoTeams, deliver: Deliver) -> None:
    Rule.objects.create(
        slug="refunds-tagged",
        name="Refunds are tagged",
        definition={
            "triggers": ["conversation_created"],
            "conditions": [{"field": "subject", "operator": "contains", "value": "refund"}],
            "actions": [{"kind": "add_tags", "value": "refund"}],
        },
    )
    conversation = refund_mail(deliver, two_teams)
    timeline = page(logged_in(two_teams.agent_x), conversation, "timeline")
    assert "Rule “Refunds are tagged” (refunds-tagged) applied" in timeline
    assert "because subject contains &#x27;refund&#x27;" in timeline or "because subject contains 'refund'" in timeline
    assert "then " in timeline and "refund" in timeline
    assert "Rule refunds-tagged" in timeline  # the tag change itself is signed by the rule, not by an agent
    assert "Triaged" in timeline


def test_the_header_says_what_triage_decided_and_when_the_sla_is_due(two_teams: TwoTeams, deliver: Deliver) -> None:
    SlaPolicy.objects.create(name="Everything", first_response_minutes=120)
    conversation = refund_mail(deliver, two_teams)
    header = page(logged_in(two_teams.agent_x), conversation, "header")
    assert 'data-testid="triage-priority"' in header
    assert "lexicon" in header  # "the service is down": the urgency lexicon set the priority, and says so
    assert 'data-testid="sla-due"' in header
    assert "due in" in header or "breached" in header


def test_an_agent_corrects_the_category_and_the_page_shows_who_set_it(two_teams: TwoTeams) -> None:
    client = logged_in(two_teams.agent_x)
    x = two_teams.conversation_x
    response = client.post(f"/c/{x.number}/category", {"category": "login"})
    assert response.status_code == 303
    fresh = Conversation.objects.get(pk=x.pk)
    assert (fresh.category, fresh.category_source) == ("login", DecisionSource.AGENT)
    header = page(client, x, "header")
    assert 'data-testid="category">login<' in header
    assert "Category: login (set by an agent)" in header
    assert "Changed the category from none to login" in page(client, x, "timeline")


def test_another_team_cannot_set_the_category_and_a_collaborator_may_not(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    assert logged_in(two_teams.agent_y).post(f"/c/{x.number}/category", {"category": "spam"}).status_code == 404
    helper = make_agent("helper@example.org", teams=(two_teams.mailbox_x.team,), role=Role.COLLABORATOR)
    assert logged_in(helper).post(f"/c/{x.number}/category", {"category": "spam"}).status_code == 403
    assert Conversation.objects.get(pk=x.pk).category == ""


def test_a_category_too_long_is_a_clear_400(two_teams: TwoTeams) -> None:
    x = two_teams.conversation_x
    response = logged_in(two_teams.agent_x).post(f"/c/{x.number}/category", {"category": "x" * 101})
    assert response.status_code == 400
    assert "Traceback" not in response.content.decode()


def test_one_answer_reaches_every_customer_of_the_incident_the_agent_may_see(
    two_teams: TwoTeams, deliver: Deliver
) -> None:
    x = two_teams.conversation_x
    also_x = refund_mail(deliver, two_teams)
    incident = Incident.objects.create(mailbox=two_teams.mailbox_x, title="Login outage")
    Conversation.objects.filter(pk__in=[x.pk, also_x.pk, two_teams.conversation_y.pk]).update(incident=incident)
    client = logged_in(two_teams.agent_x)
    assert "Answer all 2 customers of this incident" in page(client, x, "header")  # team Y's member is not counted

    response = client.post(f"/c/{x.number}/incident-reply", {"text": "The login works again."}, **HTMX)
    assert response.status_code == 200
    assert "Answered 2 customers of the incident." in response.content.decode()
    answered = Message.objects.filter(direction=Direction.OUTBOUND, visible_text="The login works again.")
    assert sorted(answered.values_list("conversation_id", flat=True)) == sorted([x.pk, also_x.pk])
    assert {m.to[0]["address"] for m in answered} == {"xavier@x-customer.test", "rita@customer.test"}

    assert client.post(f"/c/{x.number}/incident-reply", {"text": "  "}).status_code == 400
    assert logged_in(two_teams.agent_y).post(f"/c/{x.number}/incident-reply", {"text": "Hi"}).status_code == 404
    helper = make_agent("helper2@example.org", teams=(two_teams.mailbox_x.team,), role=Role.COLLABORATOR)
    assert logged_in(helper).post(f"/c/{x.number}/incident-reply", {"text": "Hi"}).status_code == 403
    assert answered.count() == 2
