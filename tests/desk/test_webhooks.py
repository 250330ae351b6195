"""Rules' webhooks (desk/rule_runner.py) against a real HTTP server on loopback: payload, retries, SSRF refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from factories import make_raw_mail
from postdesk.desk import rule_runner
from postdesk.desk.models import Event, EventKind, Rule, WebhookCall, WebhookState
from two_teams import Deliver, TwoTeams, deliver, fast_passwords, two_teams

__all__ = ["deliver", "fast_passwords", "two_teams"]

pytestmark = pytest.mark.django_db


@dataclass
class Receiver:
    """What the endpoint got, and the statuses it answers with next (then 200)."""

    url: str
    requests: list[dict[str, object]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(
                {"path": self.path, "type": self.headers.get("Content-Type"), "json": json.loads(body)}
            )
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/postdesk"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def webhook_rule(url: str) -> Rule:
    return Rule.objects.create(
        slug="tell-crm",
        name="Tell the CRM",
        definition={
            "triggers": ["conversation_created"],
            "conditions": [{"field": "subject", "operator": "contains", "value": "invoice"}],
            "actions": [{"kind": "call_webhook", "value": url}],
        },
    )


def invoice_mail(world: TwoTeams, deliver: Deliver) -> WebhookCall | None:
    message = deliver(
        world.mailbox_x,
        make_raw_mail(
            subject="Invoice 7781 is wrong", sender="Ivan <ivan@customer.test>", to="x@support.test", body="Fix it."
        ),
    )
    return WebhookCall.objects.filter(conversation=message.conversation).first()


def test_a_webhook_is_delivered_after_the_intake_with_the_conversation_and_the_mail(
    two_teams: TwoTeams, deliver: Deliver, receiver: Receiver, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_WEBHOOK_ALLOW_PRIVATE = True
    webhook_rule(receiver.url)
    call = invoice_mail(two_teams, deliver)
    assert call is not None and call.state == WebhookState.QUEUED
    assert receiver.requests == []  # not inside the intake transaction

    assert rule_runner.deliver_webhook(call.pk) == "delivered"
    [request] = receiver.requests
    assert request["path"] == "/hooks/postdesk"
    assert request["type"] == "application/json; charset=utf-8"
    payload = request["json"]
    assert isinstance(payload, dict)
    assert payload["event"] == "conversation_created" and payload["rule"] == "tell-crm"
    conversation = payload["conversation"]
    assert conversation["subject"] == "Invoice 7781 is wrong"
    assert conversation["mailbox"] == "x@support.test"
    assert conversation["contact"]["address"] == "ivan@customer.test"
    assert payload["message"]["text"].strip() == "Fix it."
    call.refresh_from_db()
    assert call.state == WebhookState.DELIVERED and call.attempts == 1
    # Delivered once: running the job again sends nothing.
    assert rule_runner.deliver_webhook(call.pk) == "delivered"
    assert len(receiver.requests) == 1
    event = Event.objects.get(conversation=call.conversation, kind=EventKind.RULE_FIRED)
    assert event.data["actions"] == ["webhook queued for 127.0.0.1"]


def test_a_failing_endpoint_is_retried_with_back_off_until_it_answers(
    two_teams: TwoTeams, deliver: Deliver, receiver: Receiver, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_WEBHOOK_ALLOW_PRIVATE = True
    receiver.answers = [500, 503]
    webhook_rule(receiver.url)
    call = invoice_mail(two_teams, deliver)
    assert call is not None
    start = timezone.now()

    assert rule_runner.deliver_webhook(call.pk, now=start) == "retry"
    call.refresh_from_db()
    assert call.state == WebhookState.QUEUED and call.last_error.startswith("HTTP 500")
    assert call.send_after == start + timedelta(minutes=1)
    assert rule_runner.sweep_webhooks(now=start) == 0  # not due yet

    assert rule_runner.deliver_webhook(call.pk, now=call.send_after) == "retry"
    call.refresh_from_db()
    assert call.send_after - timedelta(minutes=4) >= start
    WebhookCall.objects.filter(pk=call.pk).update(send_after=timezone.now() - timedelta(seconds=1))  # time passes
    assert rule_runner.sweep_webhooks() == 1  # the sweep queues the job, which (in tests) runs at once
    call.refresh_from_db()
    assert call.state == WebhookState.DELIVERED and call.attempts == 3
    assert len(receiver.requests) == 3


def test_a_webhook_gives_up_after_the_last_attempt(two_teams: TwoTeams, receiver: Receiver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_WEBHOOK_ALLOW_PRIVATE = True
    receiver.answers = [500] * rule_runner.WEBHOOK_MAX_ATTEMPTS
    call = WebhookCall.objects.create(conversation=two_teams.conversation_x, url=receiver.url, payload={"a": 1})
    outcomes = []
    for _attempt in range(rule_runner.WEBHOOK_MAX_ATTEMPTS):
        call.refresh_from_db()
        outcomes.append(rule_runner.deliver_webhook(call.pk, now=call.send_after))
    assert outcomes[-1] == "failed" and set(outcomes[:-1]) == {"retry"}
    call.refresh_from_db()
    assert call.state == WebhookState.FAILED and call.attempts == rule_runner.WEBHOOK_MAX_ATTEMPTS


def test_private_and_loopback_addresses_are_refused_without_the_setting(
    two_teams: TwoTeams, deliver: Deliver, receiver: Receiver, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_WEBHOOK_ALLOW_PRIVATE = False
    webhook_rule(receiver.url)
    assert invoice_mail(two_teams, deliver) is None
    event = Event.objects.filter(kind=EventKind.RULE_FIRED).latest("id")
    assert "webhook not called: 127.0.0.1 is a private or local address" in event.data["actions"][0]

    # A row queued while the setting was on (or a name that now resolves to loopback) is refused at delivery too.
    call = WebhookCall.objects.create(conversation=two_teams.conversation_x, url=receiver.url, payload={})
    assert rule_runner.deliver_webhook(call.pk) == "failed"
    call.refresh_from_db()
    assert "private or local address" in call.last_error
    assert receiver.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/x",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/x",
        "http://0.0.0.0/x",
        "http://[fd00::1]/x",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "http://user:secret@example.com/x",
    ],
)
def test_url_problem_refuses_what_must_not_be_called(url: str, settings) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_WEBHOOK_ALLOW_PRIVATE = False
    assert rule_runner.url_problem(url, resolve=False) is not None


def test_url_problem_lets_public_addresses_and_allowed_private_ones_through(settings) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_WEBHOOK_ALLOW_PRIVATE = False
    assert rule_runner.url_problem("https://hooks.example.com/postdesk", resolve=False) is None
    assert rule_runner.url_problem("http://93.184.215.14/x") is None
    settings.POSTDESK_WEBHOOK_ALLOW_PRIVATE = True
    assert rule_runner.url_problem("http://10.1.2.3/x") is None
    assert rule_runner.url_problem("file:///etc/passwd") is not None


def test_a_redirect_is_not_followed(two_teams: TwoTeams, receiver: Receiver, settings) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_WEBHOOK_ALLOW_PRIVATE = True
    receiver.answers = [302]
    call = WebhookCall.objects.create(conversation=two_teams.conversation_x, url=receiver.url, payload={})
    assert rule_runner.deliver_webhook(call.pk) == "failed"
    call.refresh_from_db()
    assert call.last_error.startswith("HTTP 302")
    assert [request["path"] for request in receiver.requests] == ["/hooks/postdesk"]
