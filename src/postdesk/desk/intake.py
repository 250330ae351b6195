"""The one durable way in: `accept_raw` stores the bytes and the queue row before anyone says "accepted"."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from postdesk.desk.blobs import default_store
from postdesk.desk.models import Mailbox, ReceivedMail, ReceivedState, Source

log = logging.getLogger(__name__)

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_MAX_MESSAGE_ID = 998


@dataclass(frozen=True, slots=True)
class Accepted:
    received_mail_id: int
    duplicate: bool  # True when the same bytes or Message-ID were already accepted for this mailbox


def find_mailbox(recipient: str) -> Mailbox | None:
    """The active mailbox an envelope recipient belongs to; `local+anything@domain` is a subaddress."""
    address = recipient.strip().strip("<>").lower()
    if "@" not in address:
        return None
    local, _, domain = address.rpartition("@")
    base_local = local.split("+", 1)[0]
    found = {m.address: m for m in Mailbox.objects.filter(active=True, address__in={address, f"{base_local}@{domain}"})}
    return found.get(address) or found.get(f"{base_local}@{domain}")


def header_message_id(raw: bytes) -> str:
    """The Message-ID from the header block only (cheap), without brackets; "" when absent or unusable."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        value = headers.get("Message-ID")
    except Exception:  # any damage here only costs us the Message-ID dedupe, never the mail
        return ""
    if not value:
        return ""
    match = _MESSAGE_ID.search(str(value))
    found = match.group(1) if match else str(value).strip()
    if not found or len(found) > _MAX_MESSAGE_ID or any(c.isspace() or c == "\x00" for c in found):
        return ""
    return found


def accept_raw(
    mailbox: Mailbox,
    raw: bytes,
    *,
    source: Source,
    envelope_from: str = "",
    envelope_to: Iterable[str] = (),
    source_ref: str = "",
    quiet: bool = False,
    enqueue: Callable[[int], None] | None = None,
) -> Accepted:
    """Store `raw` durably and queue it for processing; idempotent per mailbox.

    On return the bytes are fsynced and the ReceivedMail row is committed, so the caller may
    acknowledge (SMTP 250, IMAP \\Seen). Processing is queued after commit; the periodic sweep
    re-queues anything a crash left waiting.
    """
    raw_sha256 = hashlib.sha256(raw).hexdigest()
    message_id = header_message_id(raw)
    existing = _find_existing(mailbox, raw_sha256, message_id)
    if existing is not None:
        return Accepted(existing, duplicate=True)

    default_store().put(raw)
    try:
        with transaction.atomic():
            row = ReceivedMail.objects.create(
                mailbox=mailbox,
                raw_sha256=raw_sha256,
                raw_size=len(raw),
                message_id=message_id or None,
                envelope_from=envelope_from.replace("\x00", "")[:320],
                envelope_to=[r.replace("\x00", "") for r in envelope_to],
                source=source,
                source_ref=source_ref.replace("\x00", "")[:500],
                quiet=quiet,
                state=ReceivedState.WAITING,
            )
            row_id = row.pk
            if enqueue is not None:
                transaction.on_commit(lambda: enqueue(row_id))
            else:
                # Imported history is a backlog: it must not delay mail that arrives meanwhile.
                transaction.on_commit(lambda: _enqueue_processing(row_id, backlog=quiet))
    except IntegrityError:
        # Another connection accepted the same mail between our check and our insert.
        again = _find_existing(mailbox, raw_sha256, message_id)
        if again is None:
            raise
        return Accepted(again, duplicate=True)
    return Accepted(row.pk, duplicate=False)


def _find_existing(mailbox: Mailbox, raw_sha256: str, message_id: str) -> int | None:
    same_bytes = ReceivedMail.objects.filter(mailbox=mailbox, raw_sha256=raw_sha256).values_list("pk", flat=True)
    for pk in same_bytes[:1]:
        return int(pk)
    if message_id:
        same_id = ReceivedMail.objects.filter(mailbox=mailbox, message_id=message_id).values_list("pk", flat=True)
        for pk in same_id[:1]:
            return int(pk)
    return None


def _enqueue_processing(received_mail_id: int, *, backlog: bool) -> None:
    from postdesk.jobs import queue_received_mail

    try:
        queue_received_mail(received_mail_id, backlog=backlog)
    except Exception:
        # The row is committed; the sweep will queue it again. Never fail the acceptance for this.
        log.exception("could not queue received mail %s; the sweep will retry", received_mail_id)
