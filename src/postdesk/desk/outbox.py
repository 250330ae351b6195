"""The outbox: mail we send, written with its message and sent exactly once by a worker (DESIGN.md §6).

A row's life (`OutboundMail.state`; `send_after` is "when to look at it next"):

    queued ──claim──▶ queued under a lease ──mark, just before the final dot──▶ sending
                        ├─ 4xx, network error ─▶ queued (retry_later)        ├─ 250 ─▶ sent
                        ├─ a crash ─▶ queued (due again when the lease ends)  ├─ 4xx ─▶ queued (retry_later)
                        └─ 5xx, no SMTP server ─▶ failed                      ├─ 5xx ─▶ failed
                                                                              └─ no answer, a crash ─▶ sent,
    queued, before send_after ──cancel (undo-send)──▶ cancelled                  unconfirmed: never resent

- `claim` is a conditional UPDATE (still queued, due, and unchanged since read): of two workers only
  one wins. It bumps `attempts` and moves `send_after` to the end of a lease, so a worker that dies
  before the dot only delays the mail until the lease ends; then it is due again.
- Every later write is fenced by what the claimant wrote (`state`, `attempts`, `send_after`): a worker
  whose lease ran out, or whose row was cancelled, finds its UPDATE matching nothing and stops before
  the dot. So at most one worker ever transmits a row's final dot.
- A row left in `sending` past its deadline was possibly accepted by the relay: it is never sent again
  (see `postdesk.transports.smtp_sender` for why), only marked sent with a note, and the author is told.

The MIME bytes are composed once, at `enqueue`, and stored as a blob: every attempt sends the same
bytes with the same Message-ID.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from postdesk.desk import access, live
from postdesk.desk.blobs import default_store
from postdesk.desk.errors import BadRequest, PermissionDenied
from postdesk.desk.models import (
    Attachment,
    Conversation,
    Direction,
    Draft,
    DraftKind,
    Event,
    EventKind,
    Message,
    Notification,
    OutboundMail,
    OutboundState,
    Status,
)
from postdesk.mail import compose, thread_keys
from postdesk.mail.model import AutomatedKind

log = logging.getLogger(__name__)

# Temporary failures retry after base times 1, 4, 16, 64, 240, 240, … (30 s, 2 min, 8 min, 32 min, then every
# 2 h with the default base); the 16th failure gives up, about a day after the first attempt.
MAX_ATTEMPTS = 16
_BACKOFF_FACTOR = 4
_BACKOFF_CAP = 240
DEFAULT_RETRY_BASE_SECONDS = 30.0
# How long one attempt may take up to the final dot, and after it to hear the relay's answer, before a
# crash is assumed. The SMTP socket timeout is a third of it, so a live worker never outlasts it.
DEFAULT_LEASE_SECONDS = 900.0
MAX_FORWARD_BYTES = 25 * 1024 * 1024

UNCONFIRMED = (
    "sent, but the confirmation was lost in a crash or a dropped connection after the relay had the whole mail;"
    " not sent again"
)


def _seconds(name: str, default: float) -> float:
    """A duration from settings (tests override it there) or the environment, else `default`."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "").strip() or default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a number of seconds, got {value!r}") from None
    if seconds < 0:
        raise ImproperlyConfigured(f"{name} must not be negative, got {seconds}")
    return seconds


def retry_base() -> timedelta:
    return timedelta(seconds=_seconds("POSTDESK_SEND_RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS))


def lease() -> timedelta:
    return timedelta(seconds=max(1.0, _seconds("POSTDESK_SEND_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)))


def smtp_timeout() -> float:
    return max(1.0, min(120.0, lease().total_seconds() / 3))


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th attempt failed for a temporary reason."""
    factor: int = min(_BACKOFF_FACTOR ** max(attempts - 1, 0), _BACKOFF_CAP)
    return retry_base() * factor


# --- writing the row ------------------------------------------------------------------------------


def new_message_id(conversation: Conversation) -> str:
    """Our Message-ID for a mail on `conversation`: it carries the reply token, so answers find their way back."""
    domain = conversation.mailbox.address.rpartition("@")[2]
    try:
        domain = compose.ascii_domain(domain)  # an IDN mailbox: the header carries the ASCII form
    except compose.ComposeError:
        domain = "postdesk.invalid"
    return thread_keys.make_message_id(conversation.reply_token, domain)


def enqueue(message: Message, *, delay: timedelta) -> OutboundMail:
    """Write the outbox row for `message` (call inside the transaction that creates the message).

    The mail is composed now and its bytes stored, so every attempt sends the very same mail. The send
    job is queued for the end of the undo window once the transaction commits; the periodic sweep
    finds the row even if that job is lost.
    """
    try:
        return store_and_queue(message, delay=delay)
    except compose.ComposeError as exc:
        raise BadRequest(_("This mail cannot be sent: %(reason)s") % {"reason": exc}) from None


def store_and_queue(message: Message, *, delay: timedelta) -> OutboundMail:
    """`enqueue` for Postdesk's own automatic mail: raises `compose.ComposeError` rather than a user's 400."""
    composed = compose.compose(outgoing_mail(message))
    raw_sha256 = default_store().put(composed.raw)
    row = OutboundMail.objects.create(
        message=message,
        mailbox=message.mailbox,
        envelope_from=composed.envelope_from,
        recipients=list(composed.recipients),
        raw_sha256=raw_sha256,
        send_after=timezone.now() + delay,
    )
    transaction.on_commit(lambda: queue_send(row.pk, row.send_after))
    return row


def _party(entry: dict[str, str]) -> compose.Party:
    return compose.Party(address=entry.get("address", ""), name=entry.get("name", ""))


def outgoing_mail(message: Message) -> compose.OutgoingMail:
    """What `compose` needs to write `message`, read from the rows (and, for a forward, the forwarded mail)."""
    conversation = message.conversation
    mailbox = message.mailbox
    forwarded: compose.ForwardedMail | None = None
    files: tuple[compose.FileToSend, ...] = ()
    if message.forwarded:
        original = (
            conversation.messages.filter(direction=Direction.INBOUND, created_at__lte=message.created_at)
            .exclude(pk=message.pk)
            .order_by("-created_at", "-id")
            .first()
        )
        if original is not None:
            forwarded = compose.ForwardedMail(
                sender=compose.Party(address=original.from_address, name=original.from_name),
                date=original.date,
                subject=original.subject,
                to=tuple(_party(e) for e in original.to),
                cc=tuple(_party(e) for e in original.cc),
                text=original.text,
            )
            files = _forwarded_files(original)
    return compose.OutgoingMail(
        sender=compose.Party(address=mailbox.address, name=message.from_name or mailbox.name),
        reply_to=compose.reply_address(mailbox.address, conversation.reply_token),
        to=tuple(_party(e) for e in message.to),
        cc=tuple(_party(e) for e in message.cc),
        bcc=tuple(_party(e) for e in message.bcc),
        subject=message.subject,
        date=message.date or message.created_at,
        message_id=message.message_id or "",
        in_reply_to=tuple(message.in_reply_to),
        references=tuple(message.references),
        text=message.text,
        attachments=files,
        forwarded=forwarded,
        auto_submitted="auto-replied"
        if message.author_id is None and message.automated_kind == AutomatedKind.AUTO_REPLY
        else "",
    )


def _forwarded_files(original: Message) -> tuple[compose.FileToSend, ...]:
    # Files found inside a forwarded .eml travel inside that .eml; inline images belong to HTML we do not send.
    rows = list(Attachment.objects.filter(message=original, inline=False, enclosed_in="").order_by("id"))
    total = sum(row.size for row in rows)
    if total > MAX_FORWARD_BYTES:
        raise BadRequest(
            _("The forwarded files are too large to send (%(size)s MB; at most %(max)s MB).")
            % {"size": round(total / 1024 / 1024, 1), "max": MAX_FORWARD_BYTES // 1024 // 1024}
        )
    store = default_store()
    files = []
    for row in rows:
        if not store.exists(row.sha256):
            raise BadRequest(_("The forwarded file %(name)s is missing from storage.") % {"name": row.filename})
        files.append(compose.FileToSend(row.filename, row.content_type, store.get(row.sha256)))
    return tuple(files)


def queue_send(outbound_id: int, at: datetime) -> None:
    """Queue the send job for `at` (now if it has passed)."""
    from postdesk.jobs import send_outbound_mail

    if at <= timezone.now():
        send_outbound_mail(outbound_id)
    else:
        send_outbound_mail.schedule(args=(outbound_id,), eta=at)


# --- undo -----------------------------------------------------------------------------------------


def cancel(user: AbstractBaseUser, message: Message, *, now: datetime | None = None) -> bool:
    """Undo-send: stop `message` going out and give its text back to the author as their draft.

    Only the author may, only while the row is queued and before its `send_after`. Returns False when
    it is too late (being sent, sent, failed or already cancelled). A worker that claimed the row
    meanwhile finds the cancellation before the final dot, and stops.
    """
    now = now or timezone.now()
    message = access.access_message(user, message.pk)
    if message.author_id is None or message.author_id != user.pk:
        raise PermissionDenied(_("Only the agent who wrote this mail can undo sending it."))
    with transaction.atomic():
        conversation = access.visible_conversations(user).select_for_update().get(pk=message.conversation_id)
        undone = OutboundMail.objects.filter(message=message, state=OutboundState.QUEUED, send_after__gt=now).update(
            state=OutboundState.CANCELLED
        )
        if not undone:
            return False
        Draft.objects.update_or_create(
            conversation=conversation,
            author_id=user.pk,
            kind=DraftKind.FORWARD if message.forwarded else DraftKind.REPLY,
            defaults={
                "text": message.visible_text or message.text,
                "to": [e["address"] for e in message.to],
                "cc": [e["address"] for e in message.cc],
                "bcc": [e["address"] for e in message.bcc],
                "updated_at": now,
            },
        )
        if not message.forwarded:
            _restore_before_reply(conversation, message)
        Event.objects.create(
            conversation=conversation, actor_id=user.pk, kind=EventKind.SEND_CANCELLED, message=message, created_at=now
        )
        live.conversation_changed(conversation, EventKind.SEND_CANCELLED, actor_id=user.pk)
        # The SLA clocks take back the first response the undone reply had met (imported here: automation
        # imports the modules that send automatic mail through this one).
        from postdesk.desk import automation

        automation.after_event(conversation, EventKind.SEND_CANCELLED, now=now)
    return True


def _restore_before_reply(conversation: Conversation, message: Message) -> None:
    """Put status and assignee back as they were before the undone reply, unless someone changed them since."""
    fields = []
    if conversation.waiting_since is None:
        conversation.waiting_since = _waiting_since(conversation, without=message)
        fields.append("waiting_since")
    replied = Event.objects.filter(conversation=conversation, kind=EventKind.REPLIED, message=message).first()
    before = replied.data.get("before") if replied is not None else None
    if replied is not None and isinstance(before, dict):
        changed_since = Event.objects.filter(
            conversation=conversation,
            id__gt=replied.pk,
            kind__in=[EventKind.STATUS, EventKind.ASSIGNED],
        ).exists()
        if not changed_since:
            conversation.status = before.get("status") or conversation.status
            conversation.assignee_id = before.get("assignee")
            if conversation.status != Status.RESOLVED:
                conversation.resolved_at = None
            fields += ["status", "assignee", "resolved_at"]
    if fields:
        conversation.save(update_fields=fields)


def _waiting_since(conversation: Conversation, *, without: Message) -> datetime | None:
    """The customer's oldest mail after our last answer that still stands (the undone one excluded)."""
    answered = (
        # Only an agent's reply answers: not a forward, not an acknowledgement or a rule's automatic mail.
        conversation.messages.filter(direction=Direction.OUTBOUND, forwarded=False, author__isnull=False)
        .exclude(pk=without.pk)
        .exclude(outbound__state=OutboundState.CANCELLED)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    unanswered = conversation.messages.filter(direction=Direction.INBOUND)
    if answered is not None:
        unanswered = unanswered.filter(created_at__gt=answered)
    return unanswered.order_by("created_at").values_list("created_at", flat=True).first()


# --- the state machine the sender drives ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker's hold on a row: the values it wrote, which any other change to the row moves."""

    outbound_id: int
    state: str
    attempts: int
    fence: datetime  # the send_after this worker wrote: end of its lease, or its deadline once sending


def _mine(claim: Claim) -> QuerySet[OutboundMail]:
    return OutboundMail.objects.filter(
        pk=claim.outbound_id, state=claim.state, attempts=claim.attempts, send_after=claim.fence
    )


def claim(row: OutboundMail, now: datetime) -> Claim | None:
    """Take a due queued row for one attempt (None if another worker took it or it changed since read)."""
    lease_end = now + lease()
    taken = OutboundMail.objects.filter(
        pk=row.pk,
        state=OutboundState.QUEUED,
        attempts=row.attempts,
        send_after=row.send_after,
        send_after__lte=now,
    ).update(attempts=row.attempts + 1, send_after=lease_end)
    return Claim(row.pk, OutboundState.QUEUED, row.attempts + 1, lease_end) if taken else None


def mark_sending(claim: Claim, now: datetime) -> Claim | None:
    """Record, durably, that the final dot is about to go; None means stop: the row was cancelled or taken over."""
    deadline = max(now, timezone.now()) + lease()
    with transaction.atomic(durable=True):  # committed before the dot, whoever calls this
        marked = _mine(claim).update(state=OutboundState.SENDING, send_after=deadline)
    return Claim(claim.outbound_id, OutboundState.SENDING, claim.attempts, deadline) if marked else None


def mark_sent(claim: Claim, now: datetime, *, refused: dict[str, str] | None = None) -> bool:
    """The relay accepted the mail (for the recipients not in `refused`, which the author is told about)."""
    note = _refused_text(refused) if refused else ""
    if not _mine(claim).update(state=OutboundState.SENT, sent_at=now, last_error=note):
        return False
    if refused:
        row = OutboundMail.objects.select_related("message__conversation").get(pk=claim.outbound_id)
        _report_failure(row, now, note, refused=refused, partial=True)
    return True


def mark_unconfirmed(claim: Claim, now: datetime) -> bool:
    """The dot went out but the answer never came (connection lost): never resend; tell the author."""
    if not _mine(claim).update(state=OutboundState.SENT, sent_at=now, last_error=UNCONFIRMED):
        return False
    _report_unconfirmed(claim.outbound_id, now)
    return True


def retry_later(claim: Claim, now: datetime, error: str) -> datetime | None:
    """A temporary failure: queue the row again after the back-off; after MAX_ATTEMPTS it fails instead."""
    if claim.attempts >= MAX_ATTEMPTS:
        fail(
            claim,
            now,
            _("gave up after %(n)s attempts; the last error: %(error)s") % {"n": claim.attempts, "error": error},
        )
        return None
    at = max(now, timezone.now()) + backoff(claim.attempts)
    if not _mine(claim).update(state=OutboundState.QUEUED, send_after=at, last_error=error[:2000]):
        return None
    log.info("outbound %s: attempt %s failed (%s); next at %s", claim.outbound_id, claim.attempts, error, at)
    queue_send(claim.outbound_id, at)
    return at


def fail(claim: Claim, now: datetime, error: str, *, refused: dict[str, str] | None = None) -> bool:
    """A permanent failure: the row is failed, the timeline says why, and the author is notified."""
    if not _mine(claim).update(state=OutboundState.FAILED, last_error=error[:2000]):
        return False
    log.warning("outbound %s failed: %s", claim.outbound_id, error)
    row = OutboundMail.objects.select_related("message__conversation").get(pk=claim.outbound_id)
    _report_failure(row, now, error, refused=refused or {}, partial=False)
    return True


def resolve_unconfirmed(outbound_id: int, now: datetime) -> bool:
    """A row a crash left in `sending` past its deadline: possibly accepted, so marked sent, never resent."""
    resolved = OutboundMail.objects.filter(pk=outbound_id, state=OutboundState.SENDING, send_after__lte=now).update(
        state=OutboundState.SENT, sent_at=now, last_error=UNCONFIRMED
    )
    if resolved:
        log.warning("outbound %s: left in 'sending' by a crash; marked sent, not sent again", outbound_id)
        _report_unconfirmed(outbound_id, now)
    return bool(resolved)


def _refused_text(refused: dict[str, str]) -> str:
    return "; ".join(f"{address}: {reason}" for address, reason in refused.items())


def _what(message: Message) -> str:
    number = message.conversation.number
    return (_("Your forward of #%(number)s") if message.forwarded else _("Your reply to #%(number)s")) % {
        "number": number
    }


def _report_failure(row: OutboundMail, now: datetime, error: str, *, refused: dict[str, str], partial: bool) -> None:
    message = row.message
    conversation = message.conversation
    event = Event.objects.create(
        conversation=conversation,
        kind=EventKind.SEND_FAILED,
        message=message,
        data={"error": error[:2000], "refused": refused, "partial": partial},
        created_at=now,
    )
    live.conversation_changed(conversation, EventKind.SEND_FAILED)
    if message.author_id is None:
        return
    if partial:
        text = _("%(what)s was not delivered to %(addresses)s: %(error)s") % {
            "what": _what(message),
            "addresses": ", ".join(refused),
            "error": error,
        }
    else:
        text = _("%(what)s could not be sent: %(error)s") % {"what": _what(message), "error": error}
    Notification.objects.create(
        recipient_id=message.author_id, conversation=conversation, event=event, text=text[:500], created_at=now
    )


def _report_unconfirmed(outbound_id: int, now: datetime) -> None:
    message = Message.objects.select_related("conversation").get(outbound__pk=outbound_id)
    if message.author_id is None:
        return
    text = _(
        "%(what)s was handed to the mail server, but Postdesk stopped before the server confirmed it. "
        "It was most likely delivered and is not sent again; if it did not arrive, send it again."
    ) % {"what": _what(message)}
    Notification.objects.create(
        recipient_id=message.author_id, conversation=message.conversation, text=text[:500], created_at=now
    )


# --- the sweep and the operator's retry -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepReport:
    queued: int  # due rows whose job was queued again
    resolved: int  # rows a crash left in `sending`, now marked sent


SWEEP_BATCH = 500


def sweep(now: datetime | None = None) -> SweepReport:
    """The periodic safety net: queue every due row (its job may have been lost) and settle stale `sending` rows.

    Queueing a row twice is harmless: only one job's claim succeeds.
    """
    now = now or timezone.now()
    due = list(
        OutboundMail.objects.filter(state=OutboundState.QUEUED, send_after__lte=now)
        .order_by("send_after")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    from postdesk.jobs import send_outbound_mail

    for outbound_id in due:
        send_outbound_mail(outbound_id)
    stale = list(
        OutboundMail.objects.filter(state=OutboundState.SENDING, send_after__lte=now).values_list("pk", flat=True)[
            :SWEEP_BATCH
        ]
    )
    resolved = sum(resolve_unconfirmed(outbound_id, now) for outbound_id in stale)
    if due or resolved:
        log.info("outbox sweep: queued %d due mail(s), settled %d left sending", len(due), resolved)
    return SweepReport(queued=len(due), resolved=resolved)


def retry(outbound_id: int, now: datetime | None = None) -> OutboundMail:
    """Send a failed (or waiting) row now, with a fresh set of attempts: the operator fixed the cause."""
    now = now or timezone.now()
    row = OutboundMail.objects.filter(pk=outbound_id).first()
    if row is None:
        raise BadRequest(_("There is no outgoing mail %(id)s.") % {"id": outbound_id})
    if row.state not in (OutboundState.FAILED, OutboundState.QUEUED):
        raise BadRequest(
            _("Outgoing mail %(id)s is %(state)s; only failed or queued mail can be retried.")
            % {"id": outbound_id, "state": row.state}
        )
    OutboundMail.objects.filter(pk=row.pk, state=row.state, send_after=row.send_after).update(
        state=OutboundState.QUEUED, attempts=0, send_after=now
    )
    queue_send(row.pk, now)
    row.refresh_from_db()
    return row
