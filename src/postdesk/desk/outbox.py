"""The outbox: mail we send, written with its message and sent exactly once by a worker (DESIGN.md §6)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from postdesk.desk.models import Conversation, Message, OutboundMail
from postdesk.mail import thread_keys


def new_message_id(conversation: Conversation) -> str:
    """Our Message-ID for a mail on `conversation`: it carries the reply token, so answers find their way back."""
    domain = conversation.mailbox.address.rpartition("@")[2] or "postdesk.invalid"
    return thread_keys.make_message_id(conversation.reply_token, domain)


def enqueue(message: Message, *, delay: timedelta) -> OutboundMail:
    """Write the outbox row for `message` (call inside the transaction that creates the message)."""
    recipients = [entry["address"] for entry in [*message.to, *message.cc, *message.bcc]]
    return OutboundMail.objects.create(
        message=message,
        mailbox=message.mailbox,
        envelope_from=message.mailbox.address,
        recipients=list(dict.fromkeys(recipients)),
        send_after=timezone.now() + delay,
    )
