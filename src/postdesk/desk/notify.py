"""Notification mail to agents: a rule's notify action with the email channel, sent through the mailbox's relay.

Best effort, unlike replies to customers (the outbox): the in-app Notification is the record, and a failed
mail is logged and retried by the job queue, never sent from a half-written transaction (it is queued
after commit).
"""

from __future__ import annotations

import logging
import secrets
import smtplib

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from postdesk.desk.models import Notification
from postdesk.mail import compose
from postdesk.transports import smtp_sender

log = logging.getLogger(__name__)


def email_soon(notification_ids: list[int]) -> None:
    """After the transaction commits, mail each notification to its recipient (a background job each)."""

    def queue() -> None:
        from postdesk.jobs import send_notification_email

        for notification_id in notification_ids:
            send_notification_email(notification_id)

    transaction.on_commit(queue)


def notification_mail(notification: Notification) -> compose.ComposedMail:
    conversation = notification.conversation
    mailbox = conversation.mailbox
    domain = mailbox.address.rpartition("@")[2]
    try:
        domain = compose.ascii_domain(domain)
    except compose.ComposeError:
        domain = "postdesk.invalid"
    link = settings.POSTDESK_URL + reverse("web:conversation", args=[conversation.number])
    recipient = notification.recipient
    text = "\n\n".join(
        [
            notification.text,
            _("Open the conversation: %(link)s") % {"link": link},
            _("You get this mail because a Postdesk rule asked to notify you."),
        ]
    )
    return compose.compose(
        compose.OutgoingMail(
            sender=compose.Party(address=mailbox.address, name="Postdesk"),
            reply_to=mailbox.address,
            to=(compose.Party(address=recipient.email, name=recipient.get_full_name()),),
            subject=f"[#{conversation.number}] {notification.text}",
            date=timezone.now(),
            message_id=f"pd-notify.{secrets.token_hex(8)}@{domain}",
            text=text + "\n",
            auto_submitted="auto-generated",
        )
    )


def send_email(notification_id: int) -> str:
    """Mail one notification; "sent", or why not. Temporary SMTP failures raise, so the job queue retries."""
    notification = (
        Notification.objects.select_related("recipient", "conversation__mailbox").filter(pk=notification_id).first()
    )
    if notification is None:
        return "missing"
    if not notification.recipient.email:
        return "no address"
    try:
        mail = notification_mail(notification)
        relay = smtp_sender.relay_for(notification.conversation.mailbox)
    except (compose.ComposeError, smtp_sender.SendFailure) as exc:
        log.warning("notification %s not mailed: %s", notification_id, exc)
        return f"not sent: {exc}"
    client = smtp_sender.open_relay(relay)
    try:
        refused = client.sendmail(mail.envelope_from, list(mail.recipients), mail.raw)
    except smtplib.SMTPRecipientsRefused as exc:
        log.warning("notification %s refused: %s", notification_id, exc.recipients)
        return "refused"
    finally:
        client.close()
    return "refused" if refused else "sent"
