"""Teams and agents: setting up who works in which team with which role (command line and admin alike).

Errors are `BadRequest` with a message that says what to do; nothing here knows about HTTP or argv.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from knox.models import AuthToken

from postdesk.desk.errors import BadRequest
from postdesk.desk.models import AgentProfile, Mailbox, Role, Team


@dataclass(frozen=True, slots=True)
class NewAgent:
    """An agent just added or updated; `password` is set only when one was generated for them."""

    profile: AgentProfile
    created: bool
    password: str
    token: str


def add_team(name: str, mailbox_addresses: list[str]) -> tuple[Team, bool]:
    """Create the team (or find it) and give it these mailboxes, which must exist."""
    name = name.strip()
    if not name:
        raise BadRequest("a team needs a name")
    mailboxes = []
    for address in mailbox_addresses:
        mailbox = Mailbox.objects.filter(address=address.strip().lower()).first()
        if mailbox is None:
            raise BadRequest(f"no mailbox {address!r}; add it first with: postdesk mailbox add {address}")
        mailboxes.append(mailbox)
    with transaction.atomic():
        team, created = Team.objects.get_or_create(name=name)
        for mailbox in mailboxes:
            mailbox.team = team
            mailbox.save(update_fields=["team"])
    return team, created


def _teams(names: list[str]) -> list[Team]:
    found = {team.name: team for team in Team.objects.filter(name__in=[n.strip() for n in names])}
    missing = [n for n in names if n.strip() not in found]
    if missing:
        raise BadRequest(f"no team {missing[0]!r}; add it first with: postdesk team add {missing[0]!r}")
    return [found[n.strip()] for n in names]


def add_agent(email: str, *, teams: list[str], role: str, name: str = "", password: str = "") -> NewAgent:
    """Add an agent (or update an existing one's role, teams and name) and issue a new API token.

    A new agent without a given password gets a generated one, returned once; an existing agent's
    password is only replaced when one is given.
    """
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise BadRequest(f"{email!r} is not an email address") from None
    if role not in Role.values:
        raise BadRequest(f"unknown role {role!r}; choose one of: {', '.join(Role.values)}")
    if not teams and role != Role.ADMIN:
        raise BadRequest("an agent needs at least one team (--team NAME): they see only their teams' mail")
    team_objects = _teams(teams)
    users = get_user_model()
    generated = ""
    with transaction.atomic():
        user: AbstractUser | None = users.objects.filter(username=email).first()
        created = user is None
        if user is None:
            generated = "" if password else secrets.token_urlsafe(12)
            user = users.objects.create_user(username=email, email=email, password=password or generated)
        elif password:
            user.set_password(password)
        if name:
            first, _, last = name.strip().partition(" ")
            user.first_name, user.last_name = first, last
        user.is_active = True
        # The admin pages are for administrators; supervisors and agents work in the agent UI.
        user.is_staff = user.is_staff or role == Role.ADMIN
        user.save()
        profile, _new = AgentProfile.objects.update_or_create(user=user, defaults={"role": role})
        profile.teams.set(team_objects)
        _instance, token = AuthToken.objects.create(user=user)
    return NewAgent(profile=profile, created=created, password=generated, token=token)


def new_token(email: str) -> str:
    """A fresh API token for an active agent; earlier tokens keep working until revoked."""
    user = get_user_model().objects.filter(username=email.strip().lower(), is_active=True).first()
    if user is None:
        raise BadRequest(f"no active agent {email!r}; add one with: postdesk agent add {email} --team NAME")
    _instance, token = AuthToken.objects.create(user=user)
    return str(token)


def display_name(user: AbstractBaseUser | None) -> str:
    """How an agent is named to others: full name, else email, else user name ("" for nobody)."""
    if user is None:
        return ""
    full = getattr(user, "get_full_name", lambda: "")()
    return str(full or getattr(user, "email", "") or user.get_username())
