"""A rule's notify action by email: the agent gets a mail through the mailbox's relay, with a link to the page."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator

import pytest
from django.test import override_settings
from test_rule_runner import make_rule

from postdesk.desk import actions
from postdesk.desk.models import Notification, Priority
from transports.smtp_sink import SmtpSink
from two_teams import TwoTeams, deliver, fast_passwords, two_teams

__all__ = ["deliver", "fast_passwords", "two_teams"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@override_settings(POSTDESK_URL="https://help.example.com")
def test_an_email_notification_reaches_the_agent_with_a_link_and_is_marked_automatic(
    two_teams: TwoTeams, sink: SmtpSink, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    mailbox = two_teams.mailbox_x
    mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_starttls = "127.0.0.1", sink.port, False
    mailbox.save()
    make_rule(
        "urgent-mail",
        {
            "triggers": ["priority_changed"],
            "conditions": [{"field": "priority", "operator": "is", "value": "urgent"}],
            "actions": [{"kind": "notify", "value": "owner", "channels": ["email"]}],
        },
    )
    conversation = two_teams.conversation_x
    actions.do_assign(two_teams.agent_x, conversation, two_teams.agent_x)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_set_priority(two_teams.agent_x, conversation, Priority.URGENT)

    (got,) = sink.wait_for(1)
    assert got.rcpt_tos == ("ax@example.org",)
    mail = email.message_from_bytes(got.data, policy=email.policy.default)
    assert mail["Auto-Submitted"] == "auto-generated"
    assert f"#{conversation.number}" in str(mail["Subject"])
    body = mail.get_body(("plain",))
    assert body is not None
    assert f"https://help.example.com/c/{conversation.number}" in str(body.get_content())
    assert Notification.objects.filter(recipient=two_teams.agent_x, conversation=conversation).count() == 1


def test_in_app_only_sends_no_mail(two_teams: TwoTeams, sink: SmtpSink, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    mailbox = two_teams.mailbox_x
    mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_starttls = "127.0.0.1", sink.port, False
    mailbox.save()
    make_rule(
        "urgent-app",
        {
            "triggers": ["priority_changed"],
            "actions": [{"kind": "notify", "value": "owner", "channels": ["in_app"]}],
        },
    )
    conversation = two_teams.conversation_x
    actions.do_assign(two_teams.agent_x, conversation, two_teams.agent_x)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_set_priority(two_teams.agent_x, conversation, Priority.URGENT)
    assert Notification.objects.filter(recipient=two_teams.agent_x).count() == 1
    assert sink.delivered == []
