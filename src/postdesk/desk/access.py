"""Permission-checked reads (Zulip's `access_*` style): every view and API endpoint fetches protected objects here.

Rules: superusers and agents with role admin see every mailbox; other agents see the mailboxes whose
team is one of their teams; a user without an AgentProfile (or inactive, or anonymous) sees nothing.
A conversation, its messages and their attachments are visible when the conversation's mailbox is.
An object the user may not see is reported exactly like one that does not exist (`NotFound`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from postdesk.desk.errors import BadRequest, NotFound
from postdesk.desk.models import (
    PRIORITY_RANK,
    AgentProfile,
    Attachment,
    ContactAddress,
    Conversation,
    Mailbox,
    Message,
    Priority,
    Role,
    Status,
)

User = AbstractBaseUser | AnonymousUser

# Short text queries match almost everything and cost a scan; longer ones are a mistake or an attack.
MAX_QUERY_LENGTH = 200


def _profile(user: User) -> AgentProfile | None:
    if not user.is_authenticated or not user.is_active:
        return None
    return AgentProfile.objects.filter(user_id=user.pk).first()


# Roles that answer customers and act on conversations; collaborators only read and add notes.
ANSWERING_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)


def supervisors_of(team_id: int) -> QuerySet[AuthUser]:
    """The active supervisors of a team: who SLA escalations and rules' "notify supervisor" reach."""
    return (
        get_user_model()
        .objects.filter(is_active=True, agent__role=Role.SUPERVISOR, agent__teams=team_id)
        .distinct()
        .order_by("pk")
    )


def role(user: User) -> str | None:
    """The user's role: admin for active superusers, their agent role, or None (no agent, inactive, anonymous)."""
    if not user.is_authenticated or not user.is_active:
        return None
    if getattr(user, "is_superuser", False):
        return Role.ADMIN
    profile = AgentProfile.objects.filter(user_id=user.pk).only("role").first()
    return profile.role if profile else None


def _restricted_to(user: User) -> QuerySet[Mailbox] | None:
    """The mailboxes `user` is limited to, or None when the user sees everything."""
    if user.is_authenticated and user.is_active and getattr(user, "is_superuser", False):
        return None
    profile = _profile(user)
    if profile is None:
        return Mailbox.objects.none()
    if profile.role == Role.ADMIN:
        return None
    return Mailbox.objects.filter(team__in=profile.teams.all())


def sees_everything(user: User) -> bool:
    """True for active superusers and agents with role admin."""
    return _restricted_to(user) is None


def visible_mailboxes(user: User) -> QuerySet[Mailbox]:
    """The mailboxes `user` may read."""
    restricted = _restricted_to(user)
    return Mailbox.objects.all() if restricted is None else restricted


def visible_conversations(user: User) -> QuerySet[Conversation]:
    """The conversations `user` may read: those in a visible mailbox."""
    restricted = _restricted_to(user)
    if restricted is None:
        return Conversation.objects.all()
    # A literal id list, not a subquery: PostgreSQL then uses the indexes that start with the mailbox.
    return Conversation.objects.filter(mailbox_id__in=list(restricted.values_list("pk", flat=True)))


def access_conversation_by_number(user: User, number: int) -> Conversation:
    """The conversation with that number, if `user` may read it; else `NotFound`."""
    found = visible_conversations(user).filter(number=number).select_related("mailbox", "team", "assignee").first()
    if found is None:
        raise NotFound(_("There is no conversation #%(number)s.") % {"number": number})
    return found


def access_message(user: User, message_id: int) -> Message:
    """The message with that id (database id, not Message-ID), if `user` may read its conversation."""
    found = (
        Message.objects.filter(pk=message_id, conversation__in=visible_conversations(user))
        .select_related("conversation", "received_mail")
        .first()
    )
    if found is None:
        raise NotFound(_("There is no message %(id)s.") % {"id": message_id})
    return found


def access_attachment(user: User, attachment_id: int) -> Attachment:
    """The attachment with that id, if `user` may read the conversation it belongs to."""
    found = (
        Attachment.objects.filter(pk=attachment_id, message__conversation__in=visible_conversations(user))
        .select_related("message")
        .first()
    )
    if found is None:
        raise NotFound(_("There is no attachment %(id)s.") % {"id": attachment_id})
    return found


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """What a conversation list is narrowed to; empty fields do not filter."""

    mailbox: str = ""  # the mailbox address
    statuses: tuple[str, ...] = ()
    contact: str = ""  # a contact id, or one of the contact's addresses
    q: str = ""  # text in the subject, contact name or address, or any message's text
    tag: str = ""  # a tag name
    priorities: tuple[str, ...] = ()
    assignee_id: int | None = None  # assigned to this user
    unassigned: bool = False  # assigned to nobody
    active_from: datetime | None = None  # last activity at or after this time
    active_until: datetime | None = None  # last activity strictly before this time


def parse_statuses(raw: str) -> tuple[str, ...]:
    """`open,pending` → ("open", "pending"); an unknown status is a `BadRequest` naming the valid ones."""
    wanted = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    unknown = [s for s in wanted if s not in Status.values]
    if unknown:
        raise BadRequest(
            _("Unknown status %(status)s; use one of: %(valid)s.")
            % {"status": ", ".join(repr(s) for s in unknown), "valid": ", ".join(Status.values)}
        )
    return wanted


def parse_priorities(raw: str) -> tuple[str, ...]:
    """`urgent,high` → ("urgent", "high"); an unknown priority is a `BadRequest` naming the valid ones."""
    wanted = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    unknown = [p for p in wanted if p not in Priority.values]
    if unknown:
        raise BadRequest(
            _("Unknown priority %(priority)s; use one of: %(valid)s.")
            % {"priority": ", ".join(repr(p) for p in unknown), "valid": ", ".join(Priority.values)}
        )
    return wanted


def filter_conversations(user: User, wanted: ConversationFilter) -> QuerySet[Conversation]:
    """Visible conversations narrowed by `wanted`; filters only ever narrow, so nothing hidden leaks."""
    found = visible_conversations(user)
    if wanted.mailbox:
        found = found.filter(mailbox__address=wanted.mailbox.strip().lower())
    if wanted.statuses:
        found = found.filter(status__in=wanted.statuses)
    if wanted.contact:
        contact = wanted.contact.strip()
        if contact.isdigit():
            found = found.filter(contact_id=int(contact))
        else:
            owners = ContactAddress.objects.filter(address=contact.lower()).values("contact_id")
            found = found.filter(contact_id__in=owners)
    if wanted.tag:
        tagged = Conversation.tags.through.objects.filter(tag__name=" ".join(wanted.tag.split()).lower())
        found = found.filter(pk__in=tagged.values("conversation_id"))
    if wanted.priorities:
        # priority_rank, not priority: the list indexes hold the rank.
        found = found.filter(priority_rank__in=[PRIORITY_RANK[Priority(p)] for p in wanted.priorities])
    if wanted.unassigned:
        found = found.filter(assignee__isnull=True)
    elif wanted.assignee_id is not None:
        found = found.filter(assignee_id=wanted.assignee_id)
    if wanted.active_from is not None:
        found = found.filter(last_message_at__gte=wanted.active_from)
    if wanted.active_until is not None:
        found = found.filter(last_message_at__lt=wanted.active_until)
    if wanted.q:
        q = wanted.q.strip()
        if len(q) > MAX_QUERY_LENGTH:
            raise BadRequest(_("The search text is too long (at most %(max)s characters).") % {"max": MAX_QUERY_LENGTH})
        if q:
            from postdesk.desk import search

            # Full-text search (desk/search.py) narrows the list; the list keeps its order and pagination.
            found = search.filter_matching(found, q)
    return found
