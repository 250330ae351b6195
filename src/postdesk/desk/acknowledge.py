"""The automatic acknowledgement: tells a new customer, in their language, when to expect an answer.

Sent at most once per conversation, on intake, when the mailbox asks for it and the sender is a person
(`triage.auto_reply.may_auto_reply`: never to bounces, lists, auto-replies or robot addresses, at most
POSTDESK_AUTO_REPLY_DAILY_LIMIT a day per address, counted in AutoReply). It goes through the outbox like an
agent's reply, without the undo delay and marked `Auto-Submitted: auto-replied` (RFC 3834) so the customer's
own auto-responder stays quiet. It is not an agent's response: it meets no SLA target and changes neither
status, assignee nor waiting_since.

The promised time is `sla.promise`'s: the first-response deadline of the conversation's policy, or later when
the team's backlog needs longer, rounded to read well and written in the calendar's time zone in the template's
language ("Wednesday 25 November, 10:00 (Europe/Berlin)").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import formats, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from postdesk.desk import access, calendars, outbox
from postdesk.desk.models import (
    AgentProfile,
    AutoReply,
    AutoReplyKind,
    Availability,
    Conversation,
    Direction,
    EventKind,
    Mailbox,
    Message,
    OutboundMail,
    ReplyTemplate,
    Source,
    Status,
)
from postdesk.desk.models import SlaPolicy as PolicyRow
from postdesk.mail import compose
from postdesk.mail.model import AutomatedKind
from postdesk.sla import promise
from postdesk.sla.business_hours import BusinessCalendar
from postdesk.triage.auto_reply import may_auto_reply

# RFC 3834 §5: an automatic reply says so, and Microsoft servers are asked not to answer it with theirs.
PLACEHOLDERS = ("customer_name", "number", "subject", "promised_time", "mailbox")
# Only these exact names are replaced; anything else in braces ("{order}", "{subject.__class__}", "{0}") is text.
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_ACTIVE = frozenset({Status.NEW, Status.OPEN})
_DATE_FORMAT = "l j E, H:i"


def daily_limit() -> int:
    """Automatic mails one address may get per 24 hours (acknowledgements and rule replies together)."""
    return int(settings.POSTDESK_AUTO_REPLY_DAILY_LIMIT)


def median_handle_time() -> timedelta:
    """How long an agent takes per conversation, for the backlog part of the promise."""
    return timedelta(minutes=float(settings.POSTDESK_MEDIAN_HANDLE_MINUTES))


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    """`text` with `{customer_name}` … replaced by `values`; unknown or malformed placeholders are left as written.

    No `str.format`: a template is admin-written text, and format fields reach attributes (`{subject.__class__}`).
    """
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


# --- the promise ----------------------------------------------------------------------------------------------


MAX_BACKLOG_COUNTED = 2_000


@dataclass(frozen=True, slots=True)
class Promise:
    """When the acknowledgement says the customer will hear from us: `at` (UTC, rounded) in `time_zone`."""

    at: datetime
    time_zone: ZoneInfo

    def text(self, language: str) -> str:
        """ "Wednesday 25 November, 10:00 (Europe/Berlin)", with day and month names in `language`."""
        local = self.at.astimezone(self.time_zone)
        with translation.override(language):
            when = formats.date_format(local, _DATE_FORMAT)
        return f"{when} ({self.time_zone.key})"


def _agents_on_shift(team_id: int, now: datetime) -> int:
    schedules = AgentProfile.objects.filter(
        teams=team_id,
        availability=Availability.ONLINE,
        role__in=access.ANSWERING_ROLES,
        user__is_active=True,
    ).values_list("schedule_id", flat=True)
    return sum(1 for schedule in schedules if schedule is None or calendars.calendar_by_id(schedule).is_open(now))


def promised_time(conversation: Conversation, now: datetime) -> Promise | None:
    """The promise for `conversation` (None without a policy that has a first-response target)."""
    row = PolicyRow.objects.filter(pk=conversation.sla_policy_id).first() if conversation.sla_policy_id else None
    if row is None or not row.first_response_minutes:
        return None
    calendar: BusinessCalendar = calendars.calendar_for(conversation, row.calendar_id)
    team_id = conversation.team_id or conversation.mailbox.team_id
    backlog, agents = 1, 1
    if team_id is not None:
        # Conversations whose customer waits on the team (this one included, it is already written).
        waiting = Conversation.objects.filter(team_id=team_id, status__in=_ACTIVE, waiting_since__isnull=False)
        # Capped like the folder counts: past this many the promise is days away whatever the exact number.
        backlog = waiting.values("pk")[:MAX_BACKLOG_COUNTED].count()
        agents = _agents_on_shift(team_id, now)
    promised = promise.promised_reply_time(
        calendar, now, timedelta(minutes=row.first_response_minutes), max(backlog, 1), agents, median_handle_time()
    )
    return Promise(promise.readable_promise(now, promised, calendar.zone), calendar.zone)


# --- the text -------------------------------------------------------------------------------------------------


def language_candidates(conversation: Conversation) -> list[str]:
    """The customer's languages, best first: the conversation's (detected), then the contact's; "ru-RU" → "ru"."""
    found: list[str] = []
    for language in (conversation.language, conversation.contact.language):
        code = (language or "").strip().lower().replace("_", "-")
        if code:
            found += [code, code.split("-", 1)[0]]
    return list(dict.fromkeys(found))


def choose_template(key: str, mailbox: Mailbox, languages: Iterable[str]) -> ReplyTemplate | None:
    """The translation of template `key` for the first of `languages` that has one, else the default (language "").

    A template of this mailbox wins over one for every mailbox in the same language.
    """
    rows = list(ReplyTemplate.objects.filter(Q(mailbox=mailbox) | Q(mailbox=None), key=key))
    for language in [*languages, ""]:
        matching = [row for row in rows if row.language.strip().lower() == language]
        matching.sort(key=lambda row: row.mailbox_id is None)
        if matching:
            return matching[0]
    return None


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    subject: str
    text: str
    language: str  # what the date was written in
    template: str  # the template's key and language, or "built-in"


BUILTIN_WITH_PROMISE = gettext_noop(
    "Hello {customer_name},\n\nthank you for your message. We have received it as #{number} "
    "and will answer by {promised_time}.\n\n{mailbox}"
)
BUILTIN_WITHOUT_PROMISE = gettext_noop(
    "Hello {customer_name},\n\nthank you for your message. We have received it as #{number} "
    "and will answer as soon as possible.\n\n{mailbox}"
)


def _builtin_text(language: str, has_promise: bool) -> tuple[str, str]:
    """The acknowledgement when no template is set up: (text, the language it is really written in)."""
    original = BUILTIN_WITH_PROMISE if has_promise else BUILTIN_WITHOUT_PROMISE
    with translation.override(language):
        text = _(original)
    # Without a translation the text is English; the date then is English too, not half in another language.
    really = language if text != original or language.split("-")[0] == "en" else "en"
    return text, really


def compose_acknowledgement(conversation: Conversation, promised: Promise | None) -> Acknowledgement:
    """The subject and text to send, in the customer's language when a translation exists."""
    mailbox = conversation.mailbox
    languages = language_candidates(conversation)
    key = mailbox.acknowledgement_template.strip()
    row = choose_template(key, mailbox, languages) if key else None
    if row is not None:
        body, subject_text = row.body, row.subject
        language = row.language.strip().lower() or settings.LANGUAGE_CODE
        used = f"{row.key} ({row.language or 'default'})"
    else:
        body, language = _builtin_text(languages[0] if languages else settings.LANGUAGE_CODE, promised is not None)
        subject_text = ""
        used = "built-in"
    with translation.override(language):
        promised_text = promised.text(language) if promised is not None else _("as soon as possible")
    values = {
        "customer_name": conversation.contact_name or conversation.contact_address,
        "number": str(conversation.number),
        "subject": conversation.subject,
        "promised_time": promised_text,
        "mailbox": mailbox.name or mailbox.address,
    }
    from postdesk.desk import actions

    subject = fill_placeholders(subject_text, values) if subject_text.strip() else ""
    subject = subject or actions._reply_subject(conversation.subject, forward=False)
    return Acknowledgement(subject=subject, text=fill_placeholders(body, values), language=language, template=used)


# --- sending --------------------------------------------------------------------------------------------------


def enqueue_automatic(message: Message) -> OutboundMail:
    """The outbox row for an automatic `message`: no undo delay. `outbox.outgoing_mail` marks it Auto-Submitted
    (message by nobody, automated_kind auto_reply). Raises `compose.ComposeError` when the mail cannot be written.
    """
    return outbox.store_and_queue(message, delay=timedelta(0))


def send_automatic(
    conversation: Conversation, *, to: str, subject: str, text: str, now: datetime, reason: str
) -> Message:
    """An automatic mail to `to` on `conversation`: an outbound message by nobody, threaded, and its outbox row.

    Call inside the intake or action transaction; raises `compose.ComposeError` (nothing written) when it cannot
    be composed. Leaves status, assignee and waiting_since alone.
    """
    from postdesk.desk import actions

    mailbox = conversation.mailbox
    with transaction.atomic():
        message = actions.outbound_message(
            conversation,
            from_name=mailbox.name or mailbox.address,
            to=[to],
            subject=subject,
            text=text,
            signed=True,
            now=now,
            # Marks our own automatic mail, as it marks a customer's auto-reply: no agent wrote it.
            automated_kind=AutomatedKind.AUTO_REPLY.value,
            automated_reason=reason[:500],
        )
        enqueue_automatic(message)
    return message


def stored_automated_kind(value: str) -> AutomatedKind | None:
    """Message.automated_kind as the auto-reply guard takes it: None for a person's mail (or an unknown value)."""
    try:
        return AutomatedKind(value) if value else None
    except ValueError:
        return None


def is_bounce(message: Message) -> bool:
    """A null reverse path (MAIL FROM:<>) is how bounces and other delivery reports arrive by SMTP."""
    received = message.received_mail
    return received is not None and received.source == Source.SMTP and not received.envelope_from.strip("<> ")


def acknowledge(conversation: Conversation, message: Message, *, now: datetime) -> str:
    """Send the acknowledgement for the new conversation `message` opened, if due; a one-line account either way."""
    mailbox = conversation.mailbox
    if not mailbox.acknowledge:
        return "not sent: the mailbox sends no acknowledgement"
    if conversation.acknowledged_at is not None:
        return "not sent: already acknowledged"
    # "New": opened by this mail. Routing may already have made it open by assigning it; spam and the like are not.
    if conversation.status not in _ACTIVE:
        return f"not sent: the conversation is {conversation.status}"
    if conversation.messages.filter(direction=Direction.INBOUND).exclude(pk=message.pk).exists():
        return "not sent: not a new conversation"
    from postdesk.desk import actions

    recipients = actions.reply_recipients(conversation, reply_all=False).to
    if not recipients:
        return "not sent: no address to answer"
    to = recipients[0]
    kind = stored_automated_kind(message.automated_kind)
    ours = frozenset(Mailbox.objects.values_list("address", flat=True))
    # The address we write to (the customer's Reply-To, if any) counts against the limit; the sender must not be
    # a robot either, or a list's Reply-To would let an answer to the list through.
    checks = {to: AutoReply.objects.filter(address=to, sent_at__gt=now - timedelta(days=1)).count()}
    sender = message.from_address.strip().lower()
    if sender and sender != to:
        checks[sender] = 0
    for address, count in checks.items():
        decision = may_auto_reply(
            address,
            kind,
            is_list=kind is AutomatedKind.LIST,
            is_bounce=is_bounce(message),
            sent_to_sender_today=count,
            daily_limit=daily_limit(),
            our_addresses=ours,
        )
        if not decision.allowed:
            return f"not sent: {decision.reason} ({decision.code})"
    promised = promised_time(conversation, now)
    ack = compose_acknowledgement(conversation, promised)
    try:
        sent = send_automatic(
            conversation, to=to, subject=ack.subject, text=ack.text, now=now, reason="acknowledgement"
        )
    except compose.ComposeError as error:
        return f"not sent: {error}"
    AutoReply.objects.create(address=to, conversation=conversation, kind=AutoReplyKind.ACKNOWLEDGEMENT, sent_at=now)
    conversation.acknowledged_at = now
    conversation.message_count += 1
    conversation.save(update_fields=["acknowledged_at", "message_count"])
    actions._event(
        conversation,
        None,
        EventKind.ACKNOWLEDGED,
        message=sent,
        promised=promised.at.isoformat() if promised is not None else None,
        promised_text=promised.text(ack.language) if promised is not None else "",
        language=ack.language,
        template=ack.template,
        to=to,
    )
    what = f"promised {promised.text(ack.language)}" if promised is not None else "no promise (no SLA target)"
    return f"sent to {to} ({ack.template}, {ack.language}): {what}"
