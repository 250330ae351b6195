"""Shared world for API and page tests: real mail accepted and processed, two teams that must not see each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from knox.models import AuthToken

from factories import make_agent, make_mailbox, make_raw_mail, make_team
from postdesk.desk.intake import accept_raw
from postdesk.desk.models import Conversation, Mailbox, Message, Role, Source
from postdesk.desk.processing import process_received_mail

BASE_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

Deliver = Callable[..., Message]


def _deliver(mailbox: Mailbox, raw: bytes, *, at: datetime | None = None) -> Message:
    """Accept `raw` the way every transport does, then process it; returns the message it became."""
    accepted = accept_raw(mailbox, raw, source=Source.IMPORT, enqueue=lambda _id: None)
    assert not accepted.duplicate
    assert process_received_mail(accepted.received_mail_id, now=at or BASE_TIME) == "processed"
    return Message.objects.select_related("conversation").get(received_mail_id=accepted.received_mail_id)


def _token_client(user: User) -> Client:
    """A client that authenticates with a knox token (header `Authorization: Token <key>`)."""
    _instance, key = AuthToken.objects.create(user)
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:  # type: ignore[no-untyped-def]
    """Argon2 costs ~0.3 s per user; these tests are about access, not hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def deliver(db: None) -> Deliver:
    return _deliver


@pytest.fixture
def token_client(db: None) -> Callable[[User], Client]:
    return _token_client


@dataclass
class TwoTeams:
    """Team X (mailbox x@) and team Y (mailbox y@), one conversation each, plus users of every kind."""

    mailbox_x: Mailbox
    mailbox_y: Mailbox
    agent_x: User
    agent_y: User
    admin: User
    superuser: User
    no_profile: User
    conversation_x: Conversation
    conversation_y: Conversation
    message_y: Message


@pytest.fixture
def two_teams(db: None) -> TwoTeams:
    team_x, team_y = make_team("X"), make_team("Y")
    mailbox_x = make_mailbox("x@support.test", team=team_x)
    mailbox_y = make_mailbox("y@support.test", team=team_y)
    message_x = _deliver(
        mailbox_x,
        make_raw_mail(
            subject="Broken login for Xavier",
            sender="Xavier Client <xavier@x-customer.test>",
            to="x@support.test",
            body="I cannot log in since Monday.\n",
        ),
        at=BASE_TIME,
    )
    message_y = _deliver(
        mailbox_y,
        make_raw_mail(
            subject="Refund YSECRET-SUBJECT",
            sender="Yolanda Secret <yolanda@y-customer.test>",
            to="y@support.test",
            body="My card number is in the YSECRET-BODY text.\n",
            attachments=(("y-contract.pdf", "application/pdf", b"%PDF-1.4 y secret contract"),),
        ),
        at=BASE_TIME + timedelta(minutes=1),
    )
    from django.contrib.auth import get_user_model

    superuser = get_user_model().objects.create_superuser("root@example.org", "root@example.org", "pw-root-123")
    no_profile = get_user_model().objects.create_user("nobody@example.org", "nobody@example.org", "pw-nobody-123")
    return TwoTeams(
        mailbox_x=mailbox_x,
        mailbox_y=mailbox_y,
        agent_x=make_agent("ax@example.org", teams=(team_x,)),
        agent_y=make_agent("ay@example.org", teams=(team_y,)),
        admin=make_agent("boss@example.org", role=Role.ADMIN),
        superuser=superuser,
        no_profile=no_profile,
        conversation_x=message_x.conversation,
        conversation_y=message_y.conversation,
        message_y=message_y,
    )
