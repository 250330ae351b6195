"""Every write an agent makes goes through a `do_*` function here (DESIGN.md §3, in the style of Zulip's actions).

Each one checks the user's rights (through `access`), changes the rows, writes the timeline `Event` and
queues the live update, all in one transaction. Nothing here knows about HTTP: errors are
`PostdeskError`s with a message for the user, which the web and API layers turn into statuses.

Rights: admins and supervisors act on every conversation they see, agents on their teams' ones;
collaborators may read and add internal notes, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import getaddresses

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from postdesk.desk import access, automation, live, outbox
from postdesk.desk.errors import BadRequest, NotFound, PermissionDenied, PostdeskError
from postdesk.desk.models import (
    BlockedSender,
    Conversation,
    DecisionSource,
    Direction,
    Draft,
    DraftKind,
    Event,
    EventKind,
    Message,
    Notification,
    OutboundState,
    Priority,
    SavedView,
    Status,
    Tag,
    ThreadRef,
)
from postdesk.desk.people import display_name
from postdesk.mail import thread_keys

# Statuses an agent sets by hand; `snoozed`, `spam` and `merged` have their own actions.
SETTABLE_STATUSES = (Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED)
MAX_TEXT = 200_000
MAX_RECIPIENTS = 50
MAX_TAGS = 20
_MENTION = re.compile(r"(?<![\w.@])@([\w.+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)")


class Collision(PostdeskError):
    """Someone else acted on the conversation since the agent opened it; send again with `confirm` to go ahead."""

    code = "collision"

    def __init__(self, changes: list[str]) -> None:
        super().__init__(
            _("Since you opened this conversation: %(changes)s. Check the conversation, then send again to confirm.")
            % {"changes": "; ".join(changes)}
        )
        self.changes = changes


@dataclass(frozen=True, slots=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()

    @property
    def everyone(self) -> list[str]:
        return list(dict.fromkeys([*self.to, *self.cc, *self.bcc]))


@dataclass(slots=True)
class BulkResult:
    changed: int = 0
    errors: list[str] = field(default_factory=list)


# --- rights -------------------------------------------------------------------------------------------


def can_act(user: User) -> bool:
    """True when the user may answer and change conversations (not only read and add notes)."""
    return access.role(user) in access.ANSWERING_ROLES


def _require_act(user: User) -> None:
    if not can_act(user):
        raise PermissionDenied(_("Collaborators may read conversations and add internal notes, nothing else."))


def _locked(user: User, conversation: Conversation) -> Conversation:
    """The conversation, re-read under a row lock, if the user still sees it."""
    found = access.visible_conversations(user).select_for_update().filter(pk=conversation.pk).first()
    if found is None:
        raise NotFound(_("There is no conversation #%(number)s.") % {"number": conversation.number})
    return found


def _event(
    conversation: Conversation,
    actor: User | None,
    kind: EventKind,
    *,
    message: Message | None = None,
    **data: object,
) -> Event:
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    event = Event.objects.create(conversation=conversation, actor_id=actor_id, kind=kind, message=message, data=data)
    live.conversation_changed(conversation, kind, actor_id=actor_id)
    automation.after_event(conversation, kind, now=event.created_at)
    return event


def latest_event_id(conversation: Conversation) -> int:
    """What a page remembers at render time, to learn later what changed since (collision detection)."""
    return Event.objects.filter(conversation=conversation).aggregate(m=Max("id"))["m"] or 0


# --- addresses ----------------------------------------------------------------------------------------


def parse_addresses(raw: str | Iterable[str], *, label: str) -> tuple[str, ...]:
    """`"Ann <a@x.test>, b@y.test"` (or a list of such) → ("a@x.test", "b@y.test"); anything odd is a BadRequest.

    Line breaks and other control characters are refused outright: they are how header injection starts.
    """
    parts = [raw] if isinstance(raw, str) else list(raw)
    if any(re.search(r"[\x00-\x1f\x7f]", part) for part in parts):
        raise BadRequest(_("%(field)s contains a line break or control character.") % {"field": label})
    addresses: list[str] = []
    for _name, address in getaddresses(parts):
        address = address.strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            raise BadRequest(
                _("%(field)s: %(address)s is not an email address.") % {"field": label, "address": address}
            ) from None
        addresses.append(address.lower())
    unique = tuple(dict.fromkeys(addresses))
    if len(unique) > MAX_RECIPIENTS:
        raise BadRequest(_("%(field)s has more than %(max)s addresses.") % {"field": label, "max": MAX_RECIPIENTS})
    return unique


def _clean_text(text: str, *, label: str, required: bool = True) -> str:
    text = text.replace("\r\n", "\n").replace("\x00", "")
    if required and not text.strip():
        raise BadRequest(_("%(field)s is empty.") % {"field": label})
    if len(text) > MAX_TEXT:
        raise BadRequest(_("%(field)s is too long (at most %(max)s characters).") % {"field": label, "max": MAX_TEXT})
    return text


def reply_recipients(conversation: Conversation, *, reply_all: bool) -> Recipients:
    """Who a reply goes to by default: the customer (their Reply-To if given), and with reply-all the others."""
    last = (
        conversation.messages.filter(direction=Direction.INBOUND)
        .only("from_address", "reply_to", "to", "cc")
        .order_by("-created_at", "-id")
        .first()
    )
    if last is None:
        return Recipients(to=(conversation.contact_address,) if conversation.contact_address else ())
    to = [a["address"].lower() for a in last.reply_to if a.get("address")] or [last.from_address]
    cc: list[str] = []
    if reply_all:
        ours = {conversation.mailbox.address}
        for entry in [*last.to, *last.cc]:
            address = (entry.get("address") or "").lower()
            local, _at, domain = conversation.mailbox.address.partition("@")
            is_ours = address in ours or (address.startswith(local + "+") and address.endswith("@" + domain))
            if address and not is_ours and address not in to:
                cc.append(address)
    return Recipients(to=tuple(dict.fromkeys(a for a in to if a)), cc=tuple(dict.fromkeys(cc)))


# --- collisions ---------------------------------------------------------------------------------------


def changes_since(user: User, conversation: Conversation, seen_event_id: int) -> list[str]:
    """What others did since the page was rendered that should hold a reply (replies, taking it, new mail)."""
    others = Event.objects.filter(
        conversation=conversation,
        id__gt=seen_event_id,
        kind__in=[EventKind.REPLIED, EventKind.FORWARDED, EventKind.ASSIGNED, EventKind.ROUTED, EventKind.RECEIVED],
    ).exclude(actor_id=user.pk)
    # A reply its author undid never reached the customer: it changes nothing for the next one.
    others = others.exclude(message__outbound__state=OutboundState.CANCELLED)
    described: list[str] = []
    for event in others.select_related("actor").order_by("id")[:10]:
        if event.actor is not None:
            who = display_name(event.actor)
        elif event.data.get("rule"):
            who = _("the rule %(rule)s") % {"rule": event.data["rule"]}
        else:
            who = "Postdesk"
        if event.kind == EventKind.RECEIVED:
            described.append(_("the customer wrote again"))
        elif event.kind == EventKind.REPLIED:
            described.append(_("%(who)s replied") % {"who": who})
        elif event.kind == EventKind.FORWARDED:
            described.append(_("%(who)s forwarded it") % {"who": who})
        elif event.kind == EventKind.ROUTED:
            # Routing handed it to someone else while the page was open; a wait in the queue changes nothing.
            if event.data.get("assignee") not in (None, user.pk):
                assignee = event.data.get("assignee_name") or ""
                described.append(_("%(who)s routed it to %(assignee)s") % {"who": who, "assignee": assignee})
        elif event.data.get("assignee") != user.pk:
            assignee = event.data.get("assignee_name") or _("nobody")
            described.append(_("%(who)s assigned it to %(assignee)s") % {"who": who, "assignee": assignee})
    return list(dict.fromkeys(described))


# --- replies, forwards and notes ----------------------------------------------------------------------


def _thread_headers(conversation: Conversation) -> tuple[list[str], list[str]]:
    """In-Reply-To and References for mail we send on this conversation, so the customer's client threads it."""
    ids = [
        message_id
        for message_id in conversation.messages.exclude(message_id=None)
        .exclude(direction__in=[Direction.NOTE, Direction.EVENT])
        .order_by("created_at", "id")
        .values_list("message_id", flat=True)
        if message_id
    ]
    if not ids:
        return [], []
    last_inbound = (
        conversation.messages.filter(direction=Direction.INBOUND)
        .exclude(message_id=None)
        .order_by("-created_at", "-id")
        .values_list("message_id", flat=True)
        .first()
    )
    parent = last_inbound or ids[-1]
    # The first and the last few keep References short while every client still finds the thread.
    references = ids if len(ids) <= 10 else [ids[0], *ids[-9:]]
    return [parent], [r for r in references if r]


def _reply_subject(subject: str, *, forward: bool) -> str:
    subject = " ".join(subject.split())
    if forward:
        return subject if thread_keys.is_forward_subject(subject) else f"Fwd: {subject}".strip()
    if thread_keys.normalize_subject(subject) != subject.casefold():
        return subject  # already has a Re:/AW:/… prefix
    return f"Re: {subject}".strip()


def outbound_message(
    conversation: Conversation,
    *,
    from_name: str,
    to: Sequence[str],
    subject: str,
    text: str,
    signed: bool,
    now: datetime,
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    **fields: object,
) -> Message:
    """A mail we send on `conversation` (call inside its transaction, then queue it in the outbox): threaded on
    the customer's mail with our own Message-ID, from the mailbox, with its signature when `signed`."""
    mailbox = conversation.mailbox
    in_reply_to, references = _thread_headers(conversation)
    signature = mailbox.signature.strip() if signed else ""
    message = Message.objects.create(
        conversation=conversation,
        mailbox=mailbox,
        direction=Direction.OUTBOUND,
        message_id=outbox.new_message_id(conversation),
        in_reply_to=in_reply_to,
        references=references,
        from_address=mailbox.address,
        from_name=from_name,
        to=[{"name": "", "address": a} for a in to],
        cc=[{"name": "", "address": a} for a in cc],
        bcc=[{"name": "", "address": a} for a in bcc],
        date=now,
        subject=subject,
        text=f"{text.rstrip()}\n\n-- \n{signature}" if signature else text,
        visible_text=text,
        signature=signature,
        created_at=now,
        **fields,
    )
    ThreadRef.objects.get_or_create(mailbox=mailbox, key=message.message_id, defaults={"conversation": conversation})
    return message


def do_reply(
    user: User,
    conversation: Conversation,
    *,
    text: str,
    recipients: Recipients,
    seen_event_id: int,
    confirm: bool = False,
    status_after: str = Status.PENDING,
    forward: bool = False,
) -> Message:
    """Answer (or forward) the conversation: an outbound message and its outbox row, sent after the undo window.

    Held with `Collision` when others replied, took it or the customer wrote since `seen_event_id`,
    unless `confirm`.
    """
    _require_act(user)
    text = _clean_text(text, label=_("The message"))
    if not recipients.to:
        raise BadRequest(_("Add at least one address to send to."))
    if status_after not in (*SETTABLE_STATUSES,):
        raise BadRequest(_("Unknown status %(status)r.") % {"status": status_after})
    with transaction.atomic():
        conversation = _locked(user, conversation)
        if conversation.status == Status.MERGED:
            raise BadRequest(_("This conversation was merged into another; answer there."))
        if not confirm:
            changes = changes_since(user, conversation, seen_event_id)
            if changes:
                raise Collision(changes)
        mailbox = conversation.mailbox
        now = timezone.now()
        # Kept on the event so that undoing the send can put the conversation back as it was.
        before = {"status": conversation.status, "assignee": conversation.assignee_id}
        message = outbound_message(
            conversation,
            from_name=mailbox.name or display_name(user),
            to=recipients.to,
            cc=recipients.cc,
            bcc=recipients.bcc,
            subject=_reply_subject(conversation.subject, forward=forward),
            text=text,
            signed=not forward,
            now=now,
            author_id=user.pk,
            forwarded=forward,
        )
        outbox.enqueue(message, delay=timedelta(seconds=settings.POSTDESK_UNDO_SEND_SECONDS))
        conversation.message_count += 1
        conversation.last_message_at = conversation.updated_at = now
        fields = ["message_count", "last_message_at", "updated_at"]
        if not forward:
            conversation.waiting_since = None
            conversation.snippet = " ".join(text.split())[:200]
            fields += ["waiting_since", "snippet"]
            if conversation.assignee_id is None:
                conversation.assignee_id = user.pk
                fields.append("assignee")
            fields += _set_status_fields(conversation, status_after, now)
        conversation.save(update_fields=fields)
        _event(
            conversation,
            user,
            EventKind.FORWARDED if forward else EventKind.REPLIED,
            message=message,
            to=list(recipients.everyone),
            before=before,
        )
        sent_kind = DraftKind.FORWARD if forward else DraftKind.REPLY
        Draft.objects.filter(conversation=conversation, author_id=user.pk, kind=sent_kind).delete()
    return message


def do_note(user: User, conversation: Conversation, *, text: str) -> Message:
    """An internal note; `@name` mentions notify those agents (if they can see the conversation)."""
    text = _clean_text(text, label=_("The note"))
    if access.role(user) is None:
        raise NotFound(_("There is no conversation #%(number)s.") % {"number": conversation.number})
    with transaction.atomic():
        conversation = _locked(user, conversation)
        now = timezone.now()
        message = Message.objects.create(
            conversation=conversation,
            mailbox=conversation.mailbox,
            direction=Direction.NOTE,
            from_address=getattr(user, "email", ""),
            from_name=display_name(user),
            text=text,
            visible_text=text,
            author_id=user.pk,
            date=now,
            created_at=now,
        )
        conversation.message_count += 1
        conversation.updated_at = now
        conversation.save(update_fields=["message_count", "updated_at"])
        mentioned = mentioned_users(text, conversation, exclude=user)
        event = _event(conversation, user, EventKind.NOTED, message=message, mentioned=[u.pk for u in mentioned])
        Notification.objects.bulk_create(
            Notification(
                recipient=mentioned_user,
                conversation=conversation,
                event=event,
                text=_("%(who)s mentioned you on #%(number)s")
                % {"who": display_name(user), "number": conversation.number},
            )
            for mentioned_user in mentioned
        )
        conversation.followers.add(*mentioned)
        Draft.objects.filter(conversation=conversation, author_id=user.pk, kind=DraftKind.NOTE).delete()
    return message


def mentioned_users(text: str, conversation: Conversation, *, exclude: User) -> list[User]:
    """Agents named as `@ann`, `@ann@example.org` or `@ann.smith` who can see the conversation."""
    handles = {h.lower().rstrip(".") for h in _MENTION.findall(text)}
    if not handles:
        return []
    model = get_user_model()
    candidates = model.objects.filter(is_active=True).exclude(pk=exclude.pk)
    wanted = Q(username__in=handles) | Q(email__in=handles)
    for handle in handles:
        if "@" not in handle:
            wanted |= Q(email__istartswith=handle + "@")
    found: list[User] = []
    for candidate in candidates.filter(wanted)[:20]:
        if access.visible_conversations(candidate).filter(pk=conversation.pk).exists():
            found.append(candidate)
    return found


# --- assignment, status, priority, snooze -------------------------------------------------------------


def _set_status_fields(conversation: Conversation, status: str, now: datetime) -> list[str]:
    if conversation.status == status:
        return []
    conversation.status = status
    conversation.snoozed_until = None
    conversation.resolved_at = now if status == Status.RESOLVED else None
    conversation.closed_at = now if status == Status.CLOSED else None
    return ["status", "snoozed_until", "resolved_at", "closed_at"]


def do_assign(user: User, conversation: Conversation, assignee: User | None) -> Conversation:
    """Give the conversation to `assignee` (None: unassign). The assignee must be able to see it."""
    _require_act(user)
    if assignee is not None:
        if access.role(assignee) not in access.ANSWERING_ROLES:
            raise BadRequest(_("%(who)s is not an agent who can answer mail.") % {"who": display_name(assignee)})
        if not access.visible_conversations(assignee).filter(pk=conversation.pk).exists():
            raise BadRequest(_("%(who)s is not in a team that sees this mailbox.") % {"who": display_name(assignee)})
    with transaction.atomic():
        conversation = _locked(user, conversation)
        new_id = assignee.pk if assignee is not None else None
        if conversation.assignee_id == new_id:
            return conversation
        conversation.assignee_id = new_id
        conversation.updated_at = timezone.now()
        fields = ["assignee", "updated_at"]
        if conversation.status == Status.NEW:
            fields += _set_status_fields(conversation, Status.OPEN, conversation.updated_at)
        conversation.save(update_fields=fields)
        _event(
            conversation,
            user,
            EventKind.ASSIGNED,
            assignee=new_id,
            assignee_name=display_name(assignee) if assignee is not None else "",
        )
    return conversation


def do_take(user: User, conversation: Conversation) -> Conversation:
    return do_assign(user, conversation, user)


def do_set_status(user: User, conversation: Conversation, status: str) -> Conversation:
    _require_act(user)
    if status not in SETTABLE_STATUSES:
        raise BadRequest(
            _("Unknown status %(status)r; use one of: %(valid)s.")
            % {"status": status, "valid": ", ".join(SETTABLE_STATUSES)}
        )
    with transaction.atomic():
        conversation = _locked(user, conversation)
        if conversation.status == Status.MERGED:
            raise BadRequest(_("This conversation was merged into another."))
        before = conversation.status
        now = timezone.now()
        fields = _set_status_fields(conversation, status, now)
        if not fields:
            return conversation
        conversation.updated_at = now
        conversation.save(update_fields=[*fields, "updated_at"])
        _event(conversation, user, EventKind.STATUS, before=before, after=status)
    return conversation


def do_set_priority(user: User, conversation: Conversation, priority: str) -> Conversation:
    _require_act(user)
    if priority not in Priority.values:
        raise BadRequest(
            _("Unknown priority %(priority)r; use one of: %(valid)s.")
            % {"priority": priority, "valid": ", ".join(Priority.values)}
        )
    with transaction.atomic():
        conversation = _locked(user, conversation)
        if conversation.priority == priority:
            return conversation
        before = conversation.priority
        conversation.priority = priority
        conversation.priority_source, conversation.priority_confidence = DecisionSource.AGENT, None
        conversation.updated_at = timezone.now()
        conversation.save(update_fields=["priority", "priority_source", "priority_confidence", "updated_at"])
        _event(conversation, user, EventKind.PRIORITY, before=before, after=priority)
    return conversation


MAX_CATEGORY = 100


def do_set_category(user: User, conversation: Conversation, category: str) -> Conversation:
    """Set (or with "" clear) the category: an agent's decision, which the classifier learns from.

    Setting the category the classifier or a rule already chose confirms it: the conversation then
    counts as labelled by an agent (training data), and the timeline says so.
    """
    _require_act(user)
    cleaned = " ".join(category.split())
    if re.search(r"[\x00-\x1f\x7f]", category) or len(cleaned) > MAX_CATEGORY:
        raise BadRequest(
            _("A category is a name of at most %(max)s characters without line breaks.") % {"max": MAX_CATEGORY}
        )
    category = cleaned
    with transaction.atomic():
        conversation = _locked(user, conversation)
        if conversation.category == category and conversation.category_source in (DecisionSource.AGENT, ""):
            return conversation
        before = {"category": conversation.category, "source": conversation.category_source}
        conversation.category = category
        conversation.category_source = DecisionSource.AGENT if category else ""
        conversation.category_confidence = None
        conversation.updated_at = timezone.now()
        conversation.save(update_fields=["category", "category_source", "category_confidence", "updated_at"])
        _event(
            conversation,
            user,
            EventKind.CATEGORY,
            before=before["category"],
            before_source=before["source"],
            after=category,
        )
    return conversation


def do_snooze(user: User, conversation: Conversation, until: datetime) -> Conversation:
    """Hide the conversation until `until`; it wakes then, or as soon as the customer writes."""
    _require_act(user)
    now = timezone.now()
    if timezone.is_naive(until):
        raise BadRequest(_("Give the snooze time with its time zone."))
    if until <= now:
        raise BadRequest(_("Snooze until a time in the future."))
    if until > now + timedelta(days=366):
        raise BadRequest(_("Snooze for at most a year."))
    with transaction.atomic():
        conversation = _locked(user, conversation)
        if conversation.status in (Status.MERGED, Status.SPAM):
            raise BadRequest(_("A merged or spam conversation cannot be snoozed."))
        conversation.status = Status.SNOOZED
        conversation.snoozed_until = until
        conversation.updated_at = now
        conversation.save(update_fields=["status", "snoozed_until", "updated_at"])
        _event(conversation, user, EventKind.SNOOZED, until=until.isoformat())
    return conversation


def wake_snoozed(now: datetime | None = None) -> int:
    """Open every conversation whose snooze time has come (the periodic job); returns how many."""
    now = now or timezone.now()
    woken = 0
    due = Conversation.objects.filter(status=Status.SNOOZED, snoozed_until__lte=now).values_list("pk", flat=True)
    for pk in list(due[:1000]):
        with transaction.atomic():
            conversation = Conversation.objects.select_for_update().filter(pk=pk, status=Status.SNOOZED).first()
            if conversation is None:
                continue
            conversation.status = Status.OPEN
            conversation.snoozed_until = None
            conversation.updated_at = now
            conversation.save(update_fields=["status", "snoozed_until", "updated_at"])
            _event(conversation, None, EventKind.WOKE, reason="time")
            woken += 1
    return woken


# --- tags, followers ----------------------------------------------------------------------------------


def _tag_names(names: Iterable[str]) -> list[str]:
    cleaned = list(dict.fromkeys(" ".join(n.split()).lower() for n in names if n.strip()))
    for name in cleaned:
        if len(name) > 50:
            raise BadRequest(_("A tag has at most 50 characters: %(tag)s") % {"tag": name[:60]})
    if len(cleaned) > MAX_TAGS:
        raise BadRequest(_("At most %(max)s tags at a time.") % {"max": MAX_TAGS})
    return cleaned


def do_tag(
    user: User, conversation: Conversation, *, add: Sequence[str] = (), remove: Sequence[str] = ()
) -> Conversation:
    _require_act(user)
    adding, removing = _tag_names(add), _tag_names(remove)
    with transaction.atomic():
        conversation = _locked(user, conversation)
        before = set(conversation.tags.values_list("name", flat=True))
        tags = [Tag.objects.get_or_create(name=name)[0] for name in adding if name not in before]
        conversation.tags.add(*tags)
        gone = [name for name in removing if name in before]
        if gone:
            conversation.tags.remove(*Tag.objects.filter(name__in=gone))
        if tags or gone:
            _event(conversation, user, EventKind.TAGGED, added=[t.name for t in tags], removed=gone)
    return conversation


def do_follow(user: User, conversation: Conversation, *, follow: bool = True) -> Conversation:
    """Follow (or stop following) a conversation: followers are told when it changes."""
    if access.role(user) is None:
        raise NotFound(_("There is no conversation #%(number)s.") % {"number": conversation.number})
    with transaction.atomic():
        conversation = _locked(user, conversation)
        if follow:
            conversation.followers.add(user.pk)
        else:
            conversation.followers.remove(user.pk)
        _event(conversation, user, EventKind.FOLLOWED, follow=follow)
    return conversation


# --- merge, split, spam -------------------------------------------------------------------------------


def _refresh_list_row(conversation: Conversation) -> None:
    messages = conversation.messages.exclude(direction__in=[Direction.NOTE, Direction.EVENT])
    last = messages.order_by("-created_at", "-id").first()
    conversation.message_count = conversation.messages.count()
    if last is not None:
        conversation.last_message_at = last.created_at
        conversation.snippet = " ".join((last.visible_text or last.text).split())[:200]
    conversation.has_attachments = conversation.messages.filter(attachments__inline=False).exists()
    conversation.save(update_fields=["message_count", "last_message_at", "snippet", "has_attachments", "updated_at"])


def do_merge(user: User, source: Conversation, target: Conversation) -> Conversation:
    """Move `source`'s messages into `target`; later mail to either lands in `target`."""
    _require_act(user)
    if source.pk == target.pk:
        raise BadRequest(_("A conversation cannot be merged into itself."))
    with transaction.atomic():
        first, second = sorted([source, target], key=lambda c: c.pk)  # one lock order: no deadlock
        locked = {c.pk: _locked(user, c) for c in (first, second)}
        source, target = locked[source.pk], locked[target.pk]
        if source.mailbox_id != target.mailbox_id:
            raise BadRequest(_("Only conversations of the same mailbox can be merged."))
        if Status.MERGED in (source.status, target.status):
            raise BadRequest(_("One of these conversations was already merged."))
        now = timezone.now()
        source.messages.update(conversation=target)
        ThreadRef.objects.filter(conversation=source).update(conversation=target)
        source.status = Status.MERGED
        source.merged_into = target
        source.updated_at = now
        source.snoozed_until = None
        source.message_count = 0
        source.save(update_fields=["status", "merged_into", "updated_at", "snoozed_until", "message_count"])
        target.tags.add(*source.tags.all())
        target.updated_at = now
        if target.waiting_since is None or (source.waiting_since and source.waiting_since < target.waiting_since):
            target.waiting_since = source.waiting_since or target.waiting_since
            target.save(update_fields=["waiting_since"])
        _refresh_list_row(target)
        _event(source, user, EventKind.MERGED, into=target.number)
        _event(target, user, EventKind.MERGED, merged=source.number)
    return target


def do_split(user: User, message: Message) -> Conversation:
    """Move one customer message (and what came after it from the same Message-ID chain) into a new conversation."""
    from postdesk.desk.processing import new_reply_token, next_conversation_number

    _require_act(user)
    if message.direction != Direction.INBOUND:
        raise BadRequest(_("Only a customer's message can be split into a new conversation."))
    with transaction.atomic():
        old = _locked(user, message.conversation)
        if old.messages.count() < 2:
            raise BadRequest(_("This is the only message of the conversation."))
        now = timezone.now()
        new = Conversation.objects.create(
            number=next_conversation_number(),
            subject=message.subject,
            subject_key=thread_keys.normalize_subject(message.subject)[:255],
            mailbox=old.mailbox,
            contact=old.contact,
            team=old.team,
            status=Status.OPEN,
            reply_token=new_reply_token(),
            previous=old,
            contact_name=message.from_name or old.contact_name,
            contact_address=message.from_address,
            created_at=now,
            updated_at=now,
            last_message_at=message.created_at,
            last_inbound_at=message.created_at,
            waiting_since=message.created_at,
        )
        Message.objects.filter(pk=message.pk).update(conversation=new)
        if message.message_id:
            ThreadRef.objects.filter(mailbox=old.mailbox, key=message.message_id).update(conversation=new)
        old.updated_at = now
        _refresh_list_row(old)
        _refresh_list_row(new)
        _event(old, user, EventKind.SPLIT, message=message, into=new.number)
        _event(new, user, EventKind.SPLIT, message=message, source=old.number)
    return new


def do_mark_spam(user: User, conversation: Conversation, *, block_sender: bool = False) -> Conversation:
    """File the conversation as spam; with `block_sender`, the sender's later mail goes straight to spam too."""
    _require_act(user)
    with transaction.atomic():
        conversation = _locked(user, conversation)
        now = timezone.now()
        before = conversation.status
        fields = _set_status_fields(conversation, Status.SPAM, now)
        conversation.updated_at = now
        conversation.save(update_fields=[*fields, "updated_at"])
        blocked = ""
        if block_sender and conversation.contact_address:
            blocked = conversation.contact_address.lower()
            BlockedSender.objects.get_or_create(pattern=blocked, defaults={"created_by_id": user.pk})
        _event(conversation, user, EventKind.SPAM, before=before, blocked=blocked)
    return conversation


# --- drafts -------------------------------------------------------------------------------------------


def do_save_draft(
    user: User,
    conversation: Conversation,
    *,
    kind: str = DraftKind.REPLY,
    text: str = "",
    recipients: Recipients | None = None,
    seen_event_id: int | None = None,
) -> Draft | None:
    """Keep what the agent is writing (one draft per kind); an empty one is deleted. Teammates see it.

    With `seen_event_id` (the id the editor was rendered with), a save that arrives after the agent
    already sent or noted from that editor is dropped: autosave fires as the Send button takes the
    focus, and must not bring the sent text back as a draft. The check runs under the conversation's
    row lock, which `do_reply` and `do_note` hold while they write and delete the draft.
    """
    if kind not in DraftKind.values:
        raise BadRequest(_("Unknown draft kind %(kind)r.") % {"kind": kind})
    if kind != DraftKind.NOTE:
        _require_act(user)
    elif access.role(user) is None:
        raise NotFound(_("There is no conversation #%(number)s.") % {"number": conversation.number})
    text = _clean_text(text, label=_("The draft"), required=False)
    with transaction.atomic():
        conversation = _locked(user, conversation)
        if seen_event_id is not None and _sent_from_editor(user, conversation, kind, seen_event_id):
            return None
        mine = Draft.objects.filter(conversation=conversation, author_id=user.pk, kind=kind)
        if not text.strip():
            if mine.delete()[0]:
                live.conversation_changed(conversation, "draft", actor_id=user.pk)
            return None
        recipients = recipients or Recipients(to=())
        draft, _created = Draft.objects.update_or_create(
            conversation=conversation,
            author_id=user.pk,
            kind=kind,
            defaults={
                "text": text,
                "to": list(recipients.to),
                "cc": list(recipients.cc),
                "bcc": list(recipients.bcc),
                "updated_at": timezone.now(),
            },
        )
        live.conversation_changed(conversation, "draft", actor_id=user.pk)
    return draft


def _sent_from_editor(user: User, conversation: Conversation, kind: str, seen_event_id: int) -> bool:
    sent_kinds = {
        DraftKind.REPLY: [EventKind.REPLIED],
        DraftKind.FORWARD: [EventKind.FORWARDED],
        DraftKind.NOTE: [EventKind.NOTED],
    }[DraftKind(kind)]
    return Event.objects.filter(
        conversation=conversation, actor_id=user.pk, kind__in=sent_kinds, id__gt=seen_event_id
    ).exists()


def do_delete_drafts(user: User, conversation: Conversation) -> int:
    """Discard every draft the user has on the conversation; returns how many there were."""
    with transaction.atomic():
        conversation = _locked(user, conversation)
        deleted, _rows = Draft.objects.filter(conversation=conversation, author_id=user.pk).delete()
        if deleted:
            live.conversation_changed(conversation, "draft", actor_id=user.pk)
    return deleted


# --- bulk ---------------------------------------------------------------------------------------------

BULK_ACTIONS = ("assign", "status", "tag", "spam", "merge", "priority", "category")
MAX_BULK = 500


def do_reply_incident(
    user: User, conversation: Conversation, *, text: str, status_after: str = Status.PENDING
) -> BulkResult:
    """One answer to every customer of `conversation`'s incident: a reply in each member the user may act on.

    The agent sees how many customers it goes to before sending, so no member's reply is held for a
    collision; members merged away or marked spam are skipped, other teams' members are never touched.
    """
    _require_act(user)
    text = _clean_text(text, label=_("The message"))
    if conversation.incident_id is None:
        raise BadRequest(_("#%(number)s is not part of an incident.") % {"number": conversation.number})
    members = (
        access.visible_conversations(user)
        .filter(incident_id=conversation.incident_id)
        .exclude(status__in=[Status.MERGED, Status.SPAM])
        .select_related("mailbox")
        .order_by("number")[:MAX_BULK]
    )
    result = BulkResult()
    for member in members:
        try:
            do_reply(
                user,
                member,
                text=text,
                recipients=reply_recipients(member, reply_all=False),
                seen_event_id=0,
                confirm=True,
                status_after=status_after,
            )
            result.changed += 1
        except PostdeskError as exc:
            result.errors.append(f"#{member.number}: {exc.user_message}")
    return result


def do_bulk(user: User, numbers: Sequence[int], action: str, value: str = "") -> BulkResult:
    """Apply one action to many conversations (by number). Each is checked as if done one by one.

    `merge` merges all of them into the oldest one. Conversations the user cannot see are reported
    as not found, never changed.
    """
    _require_act(user)
    if action not in BULK_ACTIONS:
        raise BadRequest(
            _("Unknown bulk action %(action)r; use one of: %(valid)s.")
            % {"action": action, "valid": ", ".join(BULK_ACTIONS)}
        )
    unique = list(dict.fromkeys(numbers))
    if not unique:
        raise BadRequest(_("Select at least one conversation."))
    if len(unique) > MAX_BULK:
        raise BadRequest(_("At most %(max)s conversations at a time.") % {"max": MAX_BULK})
    found = {
        c.number: c for c in access.visible_conversations(user).filter(number__in=unique).select_related("mailbox")
    }
    result = BulkResult()
    for number in unique:
        if number not in found:
            result.errors.append(_("There is no conversation #%(number)s.") % {"number": number})
    conversations = [found[n] for n in unique if n in found]
    assignee = _bulk_assignee(value) if action == "assign" else None
    if action == "merge":
        if len(conversations) < 2:
            raise BadRequest(_("Select at least two conversations to merge."))
        target, *others = sorted(conversations, key=lambda c: (c.created_at, c.pk))
        for other in others:
            try:
                do_merge(user, other, target)
                result.changed += 1
            except PostdeskError as exc:
                result.errors.append(f"#{other.number}: {exc.user_message}")
        return result
    for conversation in conversations:
        try:
            if action == "assign":
                do_assign(user, conversation, assignee)
            elif action == "status":
                do_set_status(user, conversation, value)
            elif action == "priority":
                do_set_priority(user, conversation, value)
            elif action == "category":
                do_set_category(user, conversation, value)
            elif action == "tag":
                do_tag(user, conversation, add=[value])
            elif action == "spam":
                do_mark_spam(user, conversation)
            result.changed += 1
        except PostdeskError as exc:
            result.errors.append(f"#{conversation.number}: {exc.user_message}")
    return result


def _bulk_assignee(value: str) -> User | None:
    if value in ("", "nobody"):
        return None
    model = get_user_model()
    found = model.objects.filter(Q(email__iexact=value) | Q(username=value)).first()
    if found is None and value.isdigit():
        found = model.objects.filter(pk=int(value)).first()
    if found is None:
        raise BadRequest(_("There is no agent %(who)s.") % {"who": value})
    return found


# --- saved views --------------------------------------------------------------------------------------

VIEW_FILTER_KEYS = (
    "mailbox",
    "status",
    "tag",
    "assignee",
    "priority",
    "contact",
    "after",
    "before",
    "q",
    "sort",
    "folder",
)


def do_save_view(user: User, name: str, filters: dict[str, str]) -> SavedView:
    if access.role(user) is None:
        raise PermissionDenied(_("Only agents can save views."))
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise BadRequest(_("Give the view a name of at most 100 characters."))
    unknown = sorted(set(filters) - set(VIEW_FILTER_KEYS))
    if unknown:
        raise BadRequest(_("Unknown filter %(keys)s.") % {"keys": ", ".join(unknown)})
    kept = {k: str(v)[:200] for k, v in filters.items() if str(v).strip()}
    view, _created = SavedView.objects.update_or_create(owner_id=user.pk, name=name, defaults={"filters": kept})
    return view


def do_delete_view(user: User, view_id: int) -> None:
    deleted, _rows = SavedView.objects.filter(owner_id=user.pk, pk=view_id).delete()
    if not deleted:
        raise NotFound(_("There is no saved view %(id)s.") % {"id": view_id})


# --- notifications ------------------------------------------------------------------------------------


def do_mark_notification_read(user: User, notification_id: int) -> Notification:
    """Mark one of the user's notifications read; a second call keeps the first time.

    Only notifications about conversations the user still sees exist for them: one whose conversation
    moved to another team is gone with it.
    """
    found = (
        Notification.objects.filter(
            pk=notification_id, recipient_id=user.pk, conversation__in=access.visible_conversations(user)
        )
        .select_related("conversation")
        .first()
    )
    if found is None:
        raise NotFound(_("There is no notification %(id)s.") % {"id": notification_id})
    if found.read_at is None:
        found.read_at = timezone.now()
        found.save(update_fields=["read_at"])
    return found
