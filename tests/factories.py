"""Factories for tests: mailboxes, teams, agents and raw mail built in code."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from postdesk.desk.models import AgentProfile, Mailbox, Role, Team

_serial = itertools.count(1)


def make_team(name: str | None = None) -> Team:
    return Team.objects.create(name=name or f"team-{next(_serial)}")


def make_mailbox(address: str = "support@example.com", *, team: Team | None = None, name: str = "") -> Mailbox:
    return Mailbox.objects.create(address=address, team=team, name=name or address)


def make_agent(
    email: str | None = None,
    *,
    teams: tuple[Team, ...] = (),
    role: Role = Role.AGENT,
    password: str = "correct horse battery staple",
):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    email = email or f"agent{next(_serial)}@example.org"
    user = get_user_model().objects.create_user(username=email, email=email, password=password)
    profile = AgentProfile.objects.create(user=user, role=role)
    profile.teams.set(teams)
    return user


def make_raw_mail(
    *,
    subject: str = "Help with my order",
    sender: str = "Alice Customer <alice@customer.test>",
    to: str = "support@example.com",
    body: str = "Hello, my order has not arrived.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    date: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> bytes:
    """A well-formed mail as bytes; every field can be set, and every call has a new Message-ID."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="customer.test")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for filename, content_type, content in attachments:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(msg)
