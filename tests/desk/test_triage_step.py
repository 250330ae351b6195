"""Triage at intake (desk/triage_step.py): language, urgency, category and priority, repeats, incidents, and the
agent's category correction through actions and the API."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.urls import reverse

from factories import make_agent, make_raw_mail
from postdesk.desk import actions, triage_step
from postdesk.desk.blobs import default_store
from postdesk.desk.errors import BadRequest, NotFound
from postdesk.desk.models import (
    ClassifierModel,
    ClassifierTarget,
    Contact,
    Conversation,
    DecisionSource,
    Event,
    EventKind,
    Incident,
    Priority,
    Role,
)
from postdesk.triage import classify
from triage_examples import TRAINING
from two_teams import BASE_TIME, Deliver, TwoTeams, deliver, fast_passwords, token_client, two_teams

__all__ = ["deliver", "fast_passwords", "token_client", "two_teams"]

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def triage_settings(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    # Few languages load fast; a refresh interval of 0 makes each mail see the rows a test just wrote.
    settings.POSTDESK_LANGUAGES = ["en", "de", "ru"]
    settings.POSTDESK_TRIAGE_REFRESH_SECONDS = 0
    triage_step.forget_caches()
    yield
    triage_step.forget_caches()


def install_category_model() -> ClassifierModel:
    """A tiny category model trained here, stored as a blob and made active, the way `postdesk train` does."""
    texts = [text for texts in TRAINING.values() for text in texts]
    labels = [label for label, texts in TRAINING.items() for _ in texts]
    model = classify.train(texts, labels, trained_at=datetime(2026, 11, 1, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model"
        classify.save(model, path)
        sha = default_store().put(path.read_bytes())
    return ClassifierModel.objects.create(
        target=ClassifierTarget.CATEGORY, blob_sha256=sha, examples=len(texts), labels=list(model.labels)
    )


def fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


def triaged(conversation: Conversation) -> dict[str, object]:
    event = Event.objects.filter(conversation=conversation, kind=EventKind.TRIAGED).order_by("-id").first()
    assert event is not None, "no TRIAGED event"
    return dict(event.data)


def mail_to_x(world: TwoTeams, deliver: Deliver, body: str, *, subject: str = "Question", sender: str, at: datetime):  # type: ignore[no-untyped-def]
    return deliver(
        world.mailbox_x, make_raw_mail(subject=subject, sender=sender, to="x@support.test", body=body), at=at
    )


# --- language and urgency ---------------------------------------------------------------------------------


def test_a_german_mail_gets_language_de_on_the_conversation_and_the_contact(
    two_teams: TwoTeams, deliver: Deliver
) -> None:
    message = mail_to_x(
        two_teams,
        deliver,
        "Guten Tag, meine Bestellung ist immer noch nicht angekommen. Können Sie bitte nachsehen, wo das Paket ist?",
        subject="Bestellung nicht angekommen",
        sender="Dieter <dieter@kunde.test>",
        at=BASE_TIME,
    )
    conversation = fresh(message.conversation)
    assert conversation.language == "de"
    assert Contact.objects.get(pk=conversation.contact_id).language == "de"
    data = triaged(conversation)
    assert data["language"] == "de"
    assert isinstance(data["language_confidence"], float) and data["language_confidence"] > 0.5
    lines = {line.kind: line for line in triage_step.explain(conversation)}
    assert lines[triage_step.ExplanationKind.LANGUAGE].value == "de"
    assert "German" in lines[triage_step.ExplanationKind.LANGUAGE].text


def test_a_mail_saying_the_service_is_down_becomes_urgent_and_says_why(two_teams: TwoTeams, deliver: Deliver) -> None:
    message = mail_to_x(
        two_teams,
        deliver,
        "Hello, your service is down since 9:00 and none of our staff can work. Please hurry.",
        subject="Cannot work",
        sender="Olga <olga@shop.test>",
        at=BASE_TIME,
    )
    conversation = fresh(message.conversation)
    assert conversation.priority == Priority.URGENT
    assert conversation.priority_source == DecisionSource.LEXICON
    data = triaged(conversation)
    assert data["priority_applied"] is True
    assert data["priority_reason"] == "lexicon: outage term 'service is down' (en)"
    [line] = [line for line in triage_step.explain(conversation) if line.kind == triage_step.ExplanationKind.PRIORITY]
    assert "service is down" in line.text and line.source == DecisionSource.LEXICON


def test_automated_mail_gets_no_urgency(two_teams: TwoTeams, deliver: Deliver) -> None:
    message = deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Automatic reply: outage",
            sender="Robot <robot@shop.test>",
            to="x@support.test",
            body="I am out of office. Re: your service is down, outage report attached.",
            extra_headers={"Auto-Submitted": "auto-replied"},
        ),
        at=BASE_TIME,
    )
    conversation = fresh(message.conversation)
    assert conversation.priority == Priority.NORMAL
    assert conversation.priority_source == ""
    data = triaged(conversation)
    assert data["automated"] is True and data["priority_applied"] is False


def test_an_administrators_urgency_term_is_used_for_the_next_mail(two_teams: TwoTeams, deliver: Deliver) -> None:
    from postdesk.desk.models import UrgencyTerm

    UrgencyTerm.objects.create(term="production stopped", language="en", topic="outage", priority=Priority.URGENT)
    message = mail_to_x(
        two_teams,
        deliver,
        "Our production stopped an hour ago.",
        sender="Pia <pia@factory.test>",
        at=BASE_TIME,
    )
    assert fresh(message.conversation).priority == Priority.URGENT
    assert triaged(message.conversation)["priority_reason"] == "lexicon: outage term 'production stopped' (en)"


def test_a_customer_reply_raises_the_priority_but_a_calm_one_never_lowers_it(
    two_teams: TwoTeams, deliver: Deliver
) -> None:
    first = mail_to_x(two_teams, deliver, "Could you check my settings?", sender="Rita <rita@firm.test>", at=BASE_TIME)
    conversation = first.conversation
    actions.do_set_priority(two_teams.agent_x, conversation, Priority.LOW)
    assert fresh(conversation).priority_source == DecisionSource.AGENT

    def reply(body: str, at: datetime) -> None:
        deliver(
            two_teams.mailbox_x,
            make_raw_mail(
                subject="Re: Question",
                sender="Rita <rita@firm.test>",
                to="x@support.test",
                in_reply_to=f"<{first.message_id}>",
                body=body,
            ),
            at=at,
        )

    reply("We are losing money now: outage of the whole shop, nothing works!", BASE_TIME + timedelta(hours=1))
    raised = fresh(conversation)
    assert raised.message_count == 2
    assert raised.priority == Priority.URGENT
    assert raised.priority_source == DecisionSource.LEXICON
    assert triaged(conversation)["priority_before"] == Priority.LOW

    actions.do_set_priority(two_teams.agent_x, conversation, Priority.HIGH)
    reply("Thanks, the shop works again. One more bug though.", BASE_TIME + timedelta(hours=2))
    assert fresh(conversation).priority == Priority.HIGH  # "bug" is high: not lowered, not raised


# --- the category model -----------------------------------------------------------------------------------


def test_the_category_model_sets_the_category_above_the_threshold_and_not_below(
    two_teams: TwoTeams,
    deliver: Deliver,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    row = install_category_model()
    text = "Question\nMy parcel delivery is late, where is the parcel?"
    guess = classify.load(default_store().path_for(row.blob_sha256)).predict([text])[0]
    assert guess.label == "shipping"

    settings.POSTDESK_TRIAGE_MIN_CONFIDENCE = guess.confidence - 0.01
    sure = mail_to_x(
        two_teams, deliver, "My parcel delivery is late, where is the parcel?", sender="A <a@a.test>", at=BASE_TIME
    ).conversation
    sure = fresh(sure)
    assert sure.category == "shipping"
    assert sure.category_source == DecisionSource.MODEL
    assert sure.category_confidence == pytest.approx(guess.confidence)
    assert triaged(sure)["category_model"] == row.pk

    settings.POSTDESK_TRIAGE_MIN_CONFIDENCE = guess.confidence + 0.01
    unsure = mail_to_x(
        two_teams, deliver, "My parcel delivery is late, where is the parcel?", sender="B <b@b.test>", at=BASE_TIME
    ).conversation
    unsure = fresh(unsure)
    assert unsure.category == "" and unsure.category_source == "" and unsure.category_confidence is None
    data = triaged(unsure)
    assert data["category"] == "shipping" and data["category_applied"] is False
    assert data["category_confidence"] == pytest.approx(guess.confidence, abs=1e-4)
    [line] = [line for line in triage_step.explain(unsure) if line.kind == triage_step.ExplanationKind.CATEGORY]
    assert "shipping" in line.text and "not set" in line.text


def test_an_agents_category_is_recorded_as_the_agents_and_replaces_the_models(two_teams: TwoTeams) -> None:
    conversation = two_teams.conversation_x
    Conversation.objects.filter(pk=conversation.pk).update(
        category="billing", category_source=DecisionSource.MODEL, category_confidence=0.7
    )
    actions.do_set_category(two_teams.agent_x, conversation, "  account ")
    changed = fresh(conversation)
    assert (changed.category, changed.category_source, changed.category_confidence) == ("account", "agent", None)
    event = Event.objects.filter(conversation=conversation, kind=EventKind.CATEGORY).get()
    assert event.data == {"before": "billing", "before_source": "model", "after": "account"}
    assert event.actor_id == two_teams.agent_x.pk


def test_confirming_the_models_category_makes_it_an_agents_label(two_teams: TwoTeams) -> None:
    conversation = two_teams.conversation_x
    Conversation.objects.filter(pk=conversation.pk).update(
        category="billing", category_source=DecisionSource.MODEL, category_confidence=0.7
    )
    actions.do_set_category(two_teams.agent_x, conversation, "billing")
    assert fresh(conversation).category_source == DecisionSource.AGENT
    actions.do_set_category(two_teams.agent_x, conversation, "billing")  # nothing new: no second event
    assert Event.objects.filter(conversation=conversation, kind=EventKind.CATEGORY).count() == 1


def test_a_bad_category_is_refused(two_teams: TwoTeams) -> None:
    with pytest.raises(BadRequest):
        actions.do_set_category(two_teams.agent_x, two_teams.conversation_x, "x" * 101)
    with pytest.raises(BadRequest):
        actions.do_set_category(two_teams.agent_x, two_teams.conversation_x, "billing\r\nBcc: evil")
    assert fresh(two_teams.conversation_x).category == ""


def test_an_agent_of_another_team_can_neither_set_nor_see_the_category(
    two_teams: TwoTeams,
    token_client,  # type: ignore[no-untyped-def]
) -> None:
    actions.do_set_category(two_teams.agent_y, two_teams.conversation_y, "YSECRET-CATEGORY")
    with pytest.raises(NotFound):
        actions.do_set_category(two_teams.agent_x, two_teams.conversation_y, "billing")
    assert fresh(two_teams.conversation_y).category == "YSECRET-CATEGORY"

    client = token_client(two_teams.agent_x)
    number = two_teams.conversation_y.number
    for url in (
        reverse("api:conversation-detail", kwargs={"number": number}),
        reverse("api:conversation-events", kwargs={"number": number}),
    ):
        response = client.get(url)
        assert response.status_code == 404
        assert b"YSECRET" not in response.content
    posted = client.post(
        reverse("api:conversation-category", kwargs={"number": number}),
        json.dumps({"category": "billing"}),
        content_type="application/json",
    )
    assert posted.status_code == 404
    assert fresh(two_teams.conversation_y).category == "YSECRET-CATEGORY"


def test_the_category_api(two_teams: TwoTeams, token_client) -> None:  # type: ignore[no-untyped-def]
    url = reverse("api:conversation-category", kwargs={"number": two_teams.conversation_x.number})

    def post(user, body: object):  # type: ignore[no-untyped-def]
        return token_client(user).post(url, json.dumps(body), content_type="application/json")

    ok = post(two_teams.agent_x, {"category": "billing"})
    assert ok.status_code == 200, ok.content
    assert ok.json()["number"] == two_teams.conversation_x.number
    assert fresh(two_teams.conversation_x).category == "billing"

    for bad in ({"category": "x" * 101}, {"category": 7}, {"categories": "billing"}, {}):
        response = post(two_teams.agent_x, bad)
        assert response.status_code == 400, (bad, response.content)
        assert response.json()["error"]["code"] == "bad_request"

    team_x = two_teams.mailbox_x.team
    assert team_x is not None
    collaborator = make_agent("cx@example.org", teams=(team_x,), role=Role.COLLABORATOR)
    refused = post(collaborator, {"category": "account"})
    assert refused.status_code == 403
    assert fresh(two_teams.conversation_x).category == "billing"


# --- repeats and incidents --------------------------------------------------------------------------------

ASKED = "Hello, I ordered the blue kettle last week and the order still shows as processing. When will it ship?"
ASKED_AGAIN = "Hi again, my order of the blue kettle still shows as processing since last week. When will it ship?"


def test_the_same_customer_asking_again_within_the_window_is_linked_to_the_open_conversation(
    two_teams: TwoTeams, deliver: Deliver
) -> None:
    first = mail_to_x(two_teams, deliver, ASKED, subject="Order status", sender="Kim <kim@k.test>", at=BASE_TIME)
    again = mail_to_x(
        two_teams,
        deliver,
        ASKED_AGAIN,
        subject="Where is my kettle?",
        sender="Kim <kim@k.test>",
        at=BASE_TIME + timedelta(hours=30),
    )
    assert again.conversation_id != first.conversation_id
    assert fresh(again.conversation).duplicate_of_id == first.conversation_id
    linked_new = Event.objects.get(conversation=again.conversation, kind=EventKind.LINKED)
    assert linked_new.data["repeat_of"] == first.conversation.number
    assert "same customer" in linked_new.data["reason"]
    linked_old = Event.objects.get(conversation=first.conversation, kind=EventKind.LINKED)
    assert linked_old.data["repeated_by"] == again.conversation.number
    [line] = [
        line for line in triage_step.explain(again.conversation) if line.kind == triage_step.ExplanationKind.DUPLICATE
    ]
    assert line.numbers == (first.conversation.number,)


def test_the_same_question_after_the_window_is_not_linked(two_teams: TwoTeams, deliver: Deliver) -> None:
    mail_to_x(two_teams, deliver, ASKED, subject="Order status", sender="Kim <kim@k.test>", at=BASE_TIME)
    later = mail_to_x(
        two_teams,
        deliver,
        ASKED_AGAIN,
        subject="Where is my kettle?",
        sender="Kim <kim@k.test>",
        at=BASE_TIME + timedelta(hours=73),
    )
    assert fresh(later.conversation).duplicate_of_id is None
    assert not Event.objects.filter(kind=EventKind.LINKED).exists()


OUTAGE_REPORTS = [
    "The checkout page shows error 502 bad gateway when I try to pay for my order.",
    "Checkout gives me a 502 bad gateway error when paying for the order, please fix.",
    "I get error 502 bad gateway on the checkout page when I pay for my order.",
    "Your checkout page: 502 bad gateway error every time I try to pay for an order.",
]


def test_four_customers_reporting_the_same_outage_become_one_incident(two_teams: TwoTeams, deliver: Deliver) -> None:
    conversations = []
    for index, body in enumerate(OUTAGE_REPORTS):
        message = mail_to_x(
            two_teams,
            deliver,
            body,
            subject="Checkout broken" if index == 0 else "Cannot pay",
            sender=f"Customer {index} <c{index}@shop{index}.test>",
            at=BASE_TIME + timedelta(minutes=5 * index),
        )
        conversations.append(message.conversation)
        if index < 3:
            assert not Incident.objects.exists(), "three reporters are not yet an incident"

    incident = Incident.objects.get()
    assert incident.title == "Checkout broken"
    assert incident.mailbox_id == two_teams.mailbox_x.pk
    members = set(Conversation.objects.filter(incident=incident).values_list("pk", flat=True))
    assert members == {c.pk for c in conversations}
    assert Event.objects.filter(kind=EventKind.LINKED, data__incident=incident.pk).count() == 4
    [line] = [
        line
        for line in triage_step.explain(fresh(conversations[-1]))
        if line.kind == triage_step.ExplanationKind.INCIDENT
    ]
    assert set(line.numbers) == {c.number for c in conversations[:3]}

    fifth = mail_to_x(
        two_teams,
        deliver,
        "Checkout: error 502 bad gateway when I try to pay for my order.",
        sender="Late <late@late.test>",
        at=BASE_TIME + timedelta(minutes=30),
    )
    assert fresh(fifth.conversation).incident_id == incident.pk
    assert Incident.objects.count() == 1


# --- admin ------------------------------------------------------------------------------------------------


def test_the_admin_refuses_an_urgency_term_the_lexicon_cannot_use() -> None:
    from postdesk.desk.admin_triage import UrgencyTermForm

    bad = UrgencyTermForm(data={"term": "pay*ment", "language": "en", "topic": "outage", "priority": "urgent"})
    assert not bad.is_valid()
    assert bad.errors["term"] == ["urgency term 'pay*ment': '*' may only end a word (a stem)"]
    low = UrgencyTermForm(data={"term": "slow", "language": "en", "topic": "outage", "priority": "low"})
    assert not low.is_valid() and "priority" in low.errors
    good = UrgencyTermForm(data={"term": "refund*", "language": " EN ", "topic": "cancel", "priority": "urgent"})
    assert good.is_valid(), good.errors
    assert good.save().language == "en"


def test_the_admin_pages_list_models_terms_and_incidents_with_members(
    two_teams: TwoTeams,
    deliver: Deliver,
    client,  # type: ignore[no-untyped-def]
) -> None:
    old, new = install_category_model(), install_category_model()
    ClassifierModel.objects.filter(pk=old.pk).update(active=False)
    for index, body in enumerate(OUTAGE_REPORTS):
        mail_to_x(two_teams, deliver, body, sender=f"C{index} <c{index}@s{index}.test>", at=BASE_TIME)
    client.force_login(two_teams.superuser)
    incident = Incident.objects.get()

    assert client.get(reverse("admin:desk_urgencyterm_changelist")).status_code == 200
    models_page = client.get(reverse("admin:desk_classifiermodel_changelist"))
    assert models_page.status_code == 200
    incidents = client.get(reverse("admin:desk_incident_changelist")).content.decode()
    assert "Question" in incidents and ">4<" in incidents
    detail = client.get(reverse("admin:desk_incident_change", args=[incident.pk])).content.decode()
    assert "c3@s3.test" in detail

    response = client.post(
        reverse("admin:desk_classifiermodel_changelist"),
        {"action": "make_active", "_selected_action": [old.pk]},
    )
    assert response.status_code == 302
    assert ClassifierModel.objects.get(pk=old.pk).active
    assert not ClassifierModel.objects.get(pk=new.pk).active
