"""Turns a waiting ReceivedMail into a message in a conversation, as a named list of recorded steps.

Steps, in order (each outcome is stored on the ReceivedMail, in the style of Mailman's pipelines):
parse → detect-automated → extract-reply → store-attachments → understand → (in one transaction)
identify-contact → find-thread → create-or-append → triage → rules → route → sla → acknowledge
(automation.py; for imported history only triage). A step that raises leaves the ReceivedMail `failed` with the
error; the raw mail stays, and `postdesk replay-failed` runs it again.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from postdesk.desk import automation, live, triage_step
from postdesk.desk.blobs import default_store
from postdesk.desk.models import (
    Attachment,
    BlockedSender,
    Contact,
    ContactAddress,
    Conversation,
    Counter,
    Direction,
    Event,
    EventKind,
    Mailbox,
    Message,
    ReceivedMail,
    ReceivedState,
    Status,
    ThreadRef,
)
from postdesk.mail import thread_keys
from postdesk.mail.automated import detect_automated
from postdesk.mail.body import split_message_reply
from postdesk.mail.model import Address, AutomatedKind, AutomatedVerdict, ParsedMessage, ReplyParts
from postdesk.mail.parse import parse

log = logging.getLogger(__name__)

T = TypeVar("T")

SNIPPET_LENGTH = 160
_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(slots=True)
class StepLog:
    """The outcome of each step, stored as JSON on the ReceivedMail."""

    entries: list[dict[str, str]] = field(default_factory=list)

    def record(self, step: str, outcome: str, detail: str = "") -> None:
        self.entries.append({"step": step, "outcome": outcome, "detail": detail[:1000]})

    def run(self, step: str, work: Callable[[], T], describe: Callable[[T], str] = lambda _: "") -> T:
        try:
            result = work()
        except Exception as exc:
            self.record(step, "error", f"{type(exc).__name__}: {exc}")
            raise
        self.record(step, "ok", describe(result))
        return result


@dataclass(frozen=True, slots=True)
class ThreadChoice:
    conversation: Conversation | None
    reason: str
    previous: Conversation | None = None  # set when the match was closed or too old to re-open


def process_received_mail(received_mail_id: int, *, now: datetime | None = None) -> str:
    """Process one queued mail; returns its final state. Safe to call twice for the same row."""
    row = ReceivedMail.objects.filter(pk=received_mail_id).select_related("mailbox").first()
    if row is None or row.state != ReceivedState.WAITING:
        return row.state if row else "missing"
    steps = StepLog()
    try:
        raw = default_store().get(row.raw_sha256)
        parsed = steps.run("parse", lambda: parse(raw), _describe_parse)
        verdict = steps.run("detect-automated", lambda: detect_automated(parsed), _describe_verdict)
        reply = steps.run("extract-reply", lambda: split_message_reply(parsed), _describe_reply)
        # Before the transaction: the fsyncs must not hold the database's write lock.
        steps.run("store-attachments", lambda: _store_attachments(parsed), lambda n: f"{n} stored")
        understanding = steps.run("understand", lambda: triage_step.understand(parsed, reply, verdict), str)
        with transaction.atomic():
            state = ReceivedMail.objects.select_for_update().filter(pk=row.pk).values_list("state", flat=True).get()
            if state != ReceivedState.WAITING:
                return state
            mailbox = _lock_mailbox(row)
            when = now or timezone.now()
            contact = steps.run(
                "identify-contact",
                lambda: _identify_contact(parsed, verdict, when),
                lambda c: f"contact {c.pk}",
            )
            choice = steps.run(
                "find-thread",
                lambda: _find_thread(mailbox, parsed, row, contact, when),
                lambda c: c.reason,
            )
            message = steps.run(
                "create-or-append",
                lambda: _create_or_append(mailbox, row, parsed, verdict, reply, contact, choice, when),
                lambda m: f"conversation #{m.conversation.number}, message {m.pk}",
            )
            automation.after_inbound(
                message,
                understanding,
                created=message.conversation.message_count == 1,
                quiet=row.quiet,
                now=when,
                record=lambda step, work: steps.run(step, work, str),
            )
            ReceivedMail.objects.filter(pk=row.pk).update(
                state=ReceivedState.PROCESSED,
                processed_at=when,
                steps=steps.entries,
                error="",
                attempts=row.attempts + 1,
            )
        log.debug("received mail %s → conversation #%s", row.pk, message.conversation.number)
        return ReceivedState.PROCESSED
    except Exception as exc:
        log.exception("processing received mail %s failed", row.pk)
        ReceivedMail.objects.filter(pk=row.pk, state=ReceivedState.WAITING).update(
            state=ReceivedState.FAILED,
            steps=steps.entries,
            error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"[:20000],
            attempts=row.attempts + 1,
        )
        return ReceivedState.FAILED


def _store_attachments(parsed: ParsedMessage) -> int:
    store = default_store()
    for attachment in parsed.attachments:
        store.put(attachment.content)
    return len(parsed.attachments)


def _lock_mailbox(row: ReceivedMail) -> Mailbox:
    """One writer per mailbox at a time makes find-thread + create atomic on PostgreSQL too.

    SQLite's IMMEDIATE transactions already serialise every writer, so the row we have will do there.
    """
    if connection.features.has_select_for_update:
        return Mailbox.objects.select_for_update().get(pk=row.mailbox_id)
    return row.mailbox


def _describe_parse(parsed: ParsedMessage) -> str:
    if not parsed.problems:
        return "no problems"
    return "problems: " + ", ".join(p.code for p in parsed.problems)


def _describe_verdict(verdict: AutomatedVerdict) -> str:
    return f"{verdict.kind}: {verdict.reason}" if verdict.kind else "written by a person"


def _describe_reply(reply: ReplyParts) -> str:
    return f"{len(reply.visible)} visible, {len(reply.quoted)} quoted, {len(reply.signature)} signature chars"


def _identify_contact(parsed: ParsedMessage, verdict: AutomatedVerdict, now: datetime) -> Contact:
    sender = parsed.from_ or Address("unknown-sender@invalid")
    key = _db_text(sender.key, 320) or "unknown-sender@invalid"
    known = ContactAddress.objects.select_related("contact").filter(address=key).first()
    if known is not None:
        contact = known.contact
        if not contact.name and sender.name:
            contact.name = _db_text(sender.name, 200)
            contact.save(update_fields=["name"])
    else:
        contact = Contact.objects.create(name=_db_text(sender.name, 200), created_at=now)
        try:
            with transaction.atomic():
                ContactAddress.objects.create(contact=contact, address=key)
        except IntegrityError:
            contact.delete()
            contact = ContactAddress.objects.select_related("contact").get(address=key).contact
    if verdict.kind == AutomatedKind.BOUNCE:
        _mark_failing(verdict, now)
    return contact


def _mark_failing(verdict: AutomatedVerdict, now: datetime) -> None:
    for recipient in verdict.bounce_recipients:
        if recipient.permanent:
            ContactAddress.objects.filter(address=recipient.address.strip().lower()).update(
                failing=True,
                failing_reason=f"bounced with status {recipient.status}"[:500],
                failing_since=now,
            )


def _candidate_ids(parsed: ParsedMessage) -> list[str]:
    """Message-IDs that may name the conversation, the nearest relative first."""
    ids = [*parsed.in_reply_to, *reversed(parsed.references)]
    return list(dict.fromkeys(i for i in ids if i))


def _reply_tokens(parsed: ParsedMessage, row: ReceivedMail) -> list[str]:
    tokens: list[str] = []
    for recipient in [*row.envelope_to, *(a.address for a in (*parsed.to, *parsed.cc))]:
        token = thread_keys.reply_token_from_address(str(recipient))
        if token:
            tokens.append(token)
    for message_id in _candidate_ids(parsed):
        token = thread_keys.reply_token_from_message_id(message_id)
        if token:
            tokens.append(token)
    return list(dict.fromkeys(tokens))


def _find_thread(
    mailbox: Mailbox, parsed: ParsedMessage, row: ReceivedMail, contact: Contact, now: datetime
) -> ThreadChoice:
    """DESIGN.md §5: reply token, then Message-ID references, Thread-Index, then subject for the same contact."""
    tokens = _reply_tokens(parsed, row)
    if tokens:
        found = Conversation.objects.filter(mailbox=mailbox, reply_token__in=tokens).first()
        if found is not None:
            return _reopen_rules(found, now, "reply token")

    # Nearest references first, then our own Message-ID (a reply processed before us may have named it),
    # then the Outlook Thread-Index root: one indexed lookup for all of them.
    keys = _thread_keys(parsed)
    if keys:
        refs = {
            r.key: r.conversation
            for r in ThreadRef.objects.filter(mailbox=mailbox, key__in=keys).select_related("conversation")
        }
        for key in keys:
            if key in refs:
                why = "Outlook Thread-Index" if key.startswith(THREAD_INDEX_PREFIX) else f"references <{key}>"
                return _reopen_rules(refs[key], now, why)

    number = thread_keys.ticket_number(parsed.subject)
    if number is not None:
        # A ticket number alone is guessable: only the same customer may continue the conversation.
        found = Conversation.objects.filter(mailbox=mailbox, number=number, contact=contact).first()
        if found is not None:
            return _reopen_rules(found, now, f"ticket number [#{number}]")

    references = _candidate_ids(parsed)
    queued = ReceivedMail.objects.filter(
        mailbox=mailbox, message_id__in=references, state__in=[ReceivedState.WAITING, ReceivedState.FAILED]
    )
    if references and queued.exists():
        # The mail this answers is accepted but not processed yet (several workers, out-of-order delivery).
        # A subject guess could join another thread of the same customer; the parent will find this
        # conversation by its own Message-ID instead.
        return ThreadChoice(None, "new conversation; the mail it answers is still queued and will join it")

    subject_key = _db_text(thread_keys.normalize_subject(parsed.subject), 255)
    had_prefix = subject_key != " ".join(parsed.subject.split()).casefold()
    is_reply = subject_key and (parsed.in_reply_to or parsed.references or had_prefix)
    if is_reply:
        window = timedelta(days=settings.POSTDESK_SUBJECT_THREAD_WINDOW_DAYS)
        found = (
            Conversation.objects.filter(
                mailbox=mailbox, contact=contact, subject_key=subject_key, last_message_at__gte=now - window
            )
            .exclude(status__in=[Status.SPAM])
            .order_by("-last_message_at")
            .first()
        )
        if found is not None:
            return _reopen_rules(found, now, "same subject from the same contact")
    return ThreadChoice(None, "new conversation")


def _reopen_rules(found: Conversation, now: datetime, reason: str) -> ThreadChoice:
    seen: set[int] = set()
    while found.status == Status.MERGED and found.merged_into_id and found.pk not in seen:
        seen.add(found.pk)
        found = Conversation.objects.get(pk=found.merged_into_id)
    if found.status == Status.CLOSED:
        return ThreadChoice(None, f"{reason}; #{found.number} is closed, starting a linked conversation", found)
    if found.status == Status.RESOLVED:
        window = timedelta(days=settings.POSTDESK_REOPEN_WINDOW_DAYS)
        resolved_at = found.resolved_at or found.updated_at
        if now - resolved_at > window:
            return ThreadChoice(
                None,
                f"{reason}; #{found.number} was resolved too long ago, starting a linked conversation",
                found,
            )
    return ThreadChoice(found, f"{reason} → #{found.number}")


def next_conversation_number() -> int:
    counter, _ = Counter.objects.select_for_update().get_or_create(name="conversation-number")
    if counter.value == 0:
        # Numbers continue after any conversation created another way (imports of old data, fixtures).
        highest = Conversation.objects.order_by("-number").values_list("number", flat=True).first()
        counter.value = highest or 0
    counter.value += 1
    counter.save(update_fields=["value"])
    return counter.value


def new_reply_token() -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(16))


def _create_or_append(
    mailbox: Mailbox,
    row: ReceivedMail,
    parsed: ParsedMessage,
    verdict: AutomatedVerdict,
    reply: ReplyParts,
    contact: Contact,
    choice: ThreadChoice,
    now: datetime,
) -> Message:
    message_id = parsed.message_id or ""
    if message_id:
        existing = Message.objects.select_related("conversation").filter(mailbox=mailbox, message_id=message_id)
        for duplicate in existing[:1]:
            # The same Message-ID never makes a second message, whichever way it came in again.
            return duplicate
    sender = parsed.from_ or Address("unknown-sender@invalid")
    snippet = _db_text(" ".join((reply.visible or parsed.text).split()), SNIPPET_LENGTH)
    has_attachments = any(not a.inline for a in parsed.attachments)
    conversation = choice.conversation
    blocked = _is_blocked(sender.key)
    if conversation is None:
        conversation = Conversation.objects.create(
            number=next_conversation_number(),
            subject=_db_text(parsed.subject, 998),
            subject_key=_db_text(thread_keys.normalize_subject(parsed.subject), 255),
            mailbox=mailbox,
            contact=contact,
            team=mailbox.team,
            status=Status.SPAM if blocked else Status.NEW,
            reply_token=new_reply_token(),
            waiting_since=None if verdict.kind else now,
            previous=choice.previous,
            contact_name=_db_text(contact.name or sender.name, 200),
            contact_address=_db_text(sender.key, 320),
            created_at=now,
            updated_at=now,
            last_message_at=now,
            last_inbound_at=now,
            message_count=1,
            snippet=snippet,
            has_attachments=has_attachments,
        )
        woke = False
    else:
        woke = _append_to(conversation, now, snippet, has_attachments, waiting=not verdict.kind and not blocked)

    message = Message.objects.create(
        conversation=conversation,
        mailbox=mailbox,
        direction=Direction.INBOUND,
        message_id=_db_text(message_id, 998) or None,
        in_reply_to=[_db_text(i) for i in parsed.in_reply_to],
        references=[_db_text(i) for i in parsed.references],
        from_address=_db_text(sender.key, 320),
        from_name=_db_text(sender.name, 200),
        to=[_address_json(a) for a in parsed.to],
        cc=[_address_json(a) for a in parsed.cc],
        reply_to=[_address_json(a) for a in parsed.reply_to],
        date=parsed.date,
        subject=_db_text(parsed.subject, 998),
        text=_db_text(parsed.text),
        html=_db_text(parsed.html),
        visible_text=_db_text(reply.visible),
        # Stored only when history was cut, so the HTML of a new mail is not kept twice.
        visible_html=_db_text(reply.visible_html) if reply.visible_html != parsed.html else "",
        quoted_text=_db_text(reply.quoted),
        signature=_db_text(reply.signature),
        automated_kind=verdict.kind.value if verdict.kind else "",
        automated_reason=_db_text(verdict.reason, 500),
        problems=[{"code": p.code, "detail": _db_text(p.detail)} for p in parsed.problems],
        received_mail=row,
        created_at=now,
    )
    for attachment in parsed.attachments:
        Attachment.objects.create(
            message=message,
            filename=_db_text(attachment.filename, 500),
            content_type=_db_text(attachment.content_type, 255),
            size=attachment.size,
            sha256=attachment.sha256,
            content_id=_db_text(attachment.content_id or "", 998),
            inline=attachment.inline,
            enclosed_in=_db_text(attachment.enclosed_in, 500),
        )
    _record_thread_refs(mailbox, conversation, parsed)
    Event.objects.create(conversation=conversation, kind=EventKind.RECEIVED, message=message, created_at=now)
    if woke:
        Event.objects.create(conversation=conversation, kind=EventKind.WOKE, data={"reason": "customer wrote"})
    live.conversation_changed(conversation, EventKind.RECEIVED)
    return message


def _is_blocked(address: str) -> bool:
    address = address.strip().lower()
    return BlockedSender.objects.filter(pattern__in=[address, "@" + address.rpartition("@")[2]]).exists()


def _append_to(
    conversation: Conversation, now: datetime, snippet: str, has_attachments: bool, *, waiting: bool
) -> bool:
    """Update the list row of a conversation the customer wrote to again; True when that woke it from a snooze."""
    fields = ["message_count", "last_message_at", "last_inbound_at", "updated_at", "snippet", "has_attachments"]
    woke = conversation.status == Status.SNOOZED
    if conversation.status in (Status.RESOLVED, Status.PENDING, Status.SNOOZED):
        # The customer wrote again: the conversation needs an agent again.
        conversation.status = Status.OPEN
        conversation.resolved_at = None
        conversation.snoozed_until = None
        fields += ["status", "resolved_at", "snoozed_until"]
    if waiting and conversation.waiting_since is None:
        conversation.waiting_since = now
        fields.append("waiting_since")
    conversation.message_count += 1
    conversation.last_message_at = conversation.last_inbound_at = conversation.updated_at = now
    conversation.snippet = snippet
    conversation.has_attachments = conversation.has_attachments or has_attachments
    conversation.save(update_fields=fields)
    return woke


THREAD_INDEX_PREFIX = "thread-index:"


def _thread_keys(parsed: ParsedMessage) -> list[str]:
    """Every ThreadRef key of a message, the nearest relative first."""
    keys = [*_candidate_ids(parsed), parsed.message_id or ""]
    root = thread_keys.thread_index_root(parsed.thread_index) if parsed.thread_index else None
    if root:
        keys.append(f"{THREAD_INDEX_PREFIX}{root}")
    return list(dict.fromkeys(_db_text(k) for k in keys if k and len(k) <= 998))


def _record_thread_refs(mailbox: Mailbox, conversation: Conversation, parsed: ParsedMessage) -> None:
    # Keys already known keep their conversation: the first one to claim a Message-ID wins.
    ThreadRef.objects.bulk_create(
        [ThreadRef(mailbox=mailbox, key=k, conversation=conversation) for k in _thread_keys(parsed)],
        ignore_conflicts=True,
    )


def _address_json(address: Address) -> dict[str, str]:
    return {"name": _db_text(address.name), "address": _db_text(address.address)}


def _db_text(value: str, limit: int | None = None) -> str:
    """Text as the database can hold it: PostgreSQL refuses NUL characters in text and JSON."""
    cleaned = value.replace("\x00", "\ufffd")
    return cleaned[:limit] if limit is not None else cleaned
