"""Send one outbox row through its mailbox's SMTP relay, exactly once (DESIGN.md §6).

Why "exactly once" is built the way it is
-----------------------------------------
SMTP has one moment of handover: the relay takes responsibility for a mail when it answers 250 to
the final `<CRLF>.<CRLF>` of DATA (RFC 5321 §4.1.1.4). Before the dot, a dropped connection makes the
relay discard the transaction, so the mail can simply be sent again. After the dot the relay may
have accepted the mail even though we never hear its answer: a crash, a timeout or a reset while
waiting for the 250 leaves the outcome unknown. RFC 1047 describes exactly this window as the
source of duplicate mail, and SMTP gives no way to ask afterwards "did you take Message-ID X?".

So for that window we must choose between at-least-once (resend: maybe a duplicate) and at-most-once
(never resend: maybe a loss). We choose at-most-once, and make the window as small as possible:

1. `claim` (a conditional UPDATE) gives one worker the row for one attempt; the row stays `queued`
   with a lease. Everything up to DATA and the mail's content is sent under that lease. A crash here
   leaves the row queued: once the lease ends it is due again, and the relay has thrown the half
   transaction away. Sending again is safe.
2. Just before the final dot the row is marked `sending`, fenced on the claim, and committed. If that
   UPDATE matches nothing (the agent pressed undo, or the lease ran out and another worker took over)
   the connection is closed without the dot: the relay discards the mail. So at most one worker
   ever sends a row's dot.
3. The dot goes out; the 250 marks the row `sent`, a 4xx queues it again (the relay refused it), a
   5xx fails it.
4. A row found in `sending` after its deadline (by this job's follow-up or the periodic sweep), or
   whose connection broke while we waited for the answer, is marked `sent` with the note
   `outbox.UNCONFIRMED`, and its author is told, but it is never sent again.

Why at-most-once is the right side: by step 4 the relay had the whole mail, so it most likely accepted
it; the only way to lose a mail is a crash in the instant between the commit in step 2 and the dot
reaching the relay, or a relay that refused the dot just as we crashed. A duplicate reply reaches the
customer and cannot be taken back; a possible loss is reported to the agent, who can send again. A
resend with the same Message-ID would not save us either: some mailbox providers fold duplicates by
Message-ID, many do not.

Errors: 4xx replies, refused or lost connections and timeouts are temporary (retried with back-off,
see `outbox.backoff`); 5xx replies, a mailbox without an SMTP server, an undecryptable password, a
relay without STARTTLS when it is required are permanent: the row fails and the author is notified.
Recipients refused with 5xx are reported and the rest still get the mail; a 4xx refusal of some
recipients retries the whole mail later (on the last attempt the accepted ones get it).

Test hook: `POSTDESK_TEST_CRASH_AT=before-dot|after-dot` makes the process SIGKILL itself just before
the `sending` mark (content sent, no dot) or right after the relay's 250 (before `sent` is recorded),
so the crash tests can kill a real worker at exactly those points. Nothing else reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import signal
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from postdesk.desk import outbox
from postdesk.desk.blobs import default_store
from postdesk.desk.models import Mailbox, OutboundMail, OutboundState
from postdesk.desk.secrets_box import CredentialError, decrypt
from postdesk.mail import compose

log = logging.getLogger(__name__)

CRASH_AT_ENV = "POSTDESK_TEST_CRASH_AT"
IMPLICIT_TLS_PORT = 465  # SMTPS (RFC 8314): TLS from the first byte instead of STARTTLS


class SendFailure(Exception):
    """One attempt failed; `permanent` says whether trying again could help."""

    def __init__(self, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.text = text[:2000]
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Relay:
    host: str
    port: int
    starttls: bool
    implicit_tls: bool
    user: str
    password: str
    helo: str  # the name we give in EHLO: the mailbox's domain


def relay_for(mailbox: Mailbox) -> Relay:
    """The mailbox's SMTP settings; `SendFailure` (permanent) when they cannot work, saying what to set."""
    if not mailbox.smtp_host.strip():
        raise SendFailure(
            _(
                "the mailbox %(address)s has no SMTP server configured; an administrator must set its SMTP "
                "host (and port, user, password) and then retry with `postdesk outbox retry`"
            )
            % {"address": mailbox.address},
            permanent=True,
        )
    try:
        password = decrypt(mailbox.smtp_password_encrypted)
    except CredentialError as exc:
        raise SendFailure(str(exc), permanent=True) from None
    try:
        helo = compose.ascii_domain(mailbox.address.rpartition("@")[2])
    except compose.ComposeError:
        helo = "localhost"
    return Relay(
        host=mailbox.smtp_host.strip(),
        port=mailbox.smtp_port,
        starttls=mailbox.smtp_starttls,
        implicit_tls=mailbox.smtp_port == IMPLICIT_TLS_PORT,
        user=mailbox.smtp_user,
        password=password,
        helo=helo,
    )


def deliver(outbound_id: int, *, now: datetime | None = None) -> str:
    """The send job: send the row if it is due, settle it if a crash left it `sending`; returns what happened."""
    now = now or timezone.now()
    row = OutboundMail.objects.filter(pk=outbound_id).select_related("mailbox").first()
    if row is None:
        return "missing"
    if row.state == OutboundState.SENDING:
        if outbox.resolve_unconfirmed(row.pk, now):
            return "unconfirmed"
        # Another worker is waiting for the relay's answer; look again when its deadline has passed.
        outbox.queue_send(row.pk, row.send_after)
        return "sending"
    if row.state != OutboundState.QUEUED:
        return str(row.state)
    if row.send_after > now:
        return "not due"
    claim = outbox.claim(row, now)
    if claim is None:
        return "taken"
    # Should this process die before the row is settled, this job runs again when the lease ends.
    outbox.queue_send(row.pk, claim.fence)
    try:
        relay = relay_for(row.mailbox)
        raw = _stored_mail(row)
    except SendFailure as failure:
        outbox.fail(claim, now, failure.text)
        return "failed"
    return _attempt(claim, relay, row, raw, now)


def _stored_mail(row: OutboundMail) -> bytes:
    store = default_store()
    if not row.raw_sha256 or not store.exists(row.raw_sha256):
        raise SendFailure(_("the composed mail is missing from storage"), permanent=True)
    raw = store.get(row.raw_sha256)
    if hashlib.sha256(raw).hexdigest() != row.raw_sha256:
        raise SendFailure(_("the composed mail in storage is damaged"), permanent=True)
    return raw


def _attempt(claim: outbox.Claim, relay: Relay, row: OutboundMail, raw: bytes, now: datetime) -> str:
    """One SMTP conversation; settles the row through `outbox` and returns the outcome."""
    try:
        client, refused = _up_to_the_dot(claim, relay, row, raw)
    except SendFailure as failure:
        return _settle_failure(claim, now, failure, refused={})

    _crash_point("before-dot")
    sending = outbox.mark_sending(claim, now)
    if sending is None:
        # Cancelled (undo-send) or taken over after our lease ran out: no dot, so the relay discards it.
        client.close()
        log.info("outbound %s: no longer ours before the final dot; not sent", claim.outbound_id)
        return "abandoned"
    try:
        client.send(b".\r\n")
    except OSError as exc:
        # The dot never reached the relay (the connection was already gone): nothing was accepted.
        client.close()
        return _settle_failure(sending, now, _classify(exc, relay), refused={})
    try:
        code, reply = client.getreply()
    except OSError:
        client.close()
        outbox.mark_unconfirmed(sending, max(now, timezone.now()))
        return "unconfirmed"
    _crash_point("after-dot")
    with contextlib.suppress(smtplib.SMTPException, OSError):
        client.quit()
    client.close()
    if code == 250:
        outbox.mark_sent(sending, max(now, timezone.now()), refused=refused)
        return "sent"
    return _settle_failure(sending, now, _reply_failure(code, reply, _("the end of DATA")), refused=refused)


def _up_to_the_dot(
    claim: outbox.Claim, relay: Relay, row: OutboundMail, raw: bytes
) -> tuple[smtplib.SMTP, dict[str, str]]:
    """Connect, greet, log in, give the envelope and the whole mail, all but the final dot.

    Returns the open connection and the recipients refused for good; any failure is a `SendFailure`.
    """
    try:
        client = open_relay(relay)
    except SendFailure:
        raise
    except (smtplib.SMTPException, OSError) as exc:
        raise _classify(exc, relay) from None
    try:
        refused = _envelope(client, row, raw, last_attempt=claim.attempts >= outbox.MAX_ATTEMPTS)
        code, reply = client.docmd("DATA")
        if code != 354:
            raise _reply_failure(code, reply, "DATA")
        client.send(_dot_stuffed(raw))
    except SendFailure:
        client.close()
        raise
    except (smtplib.SMTPException, OSError) as exc:
        client.close()
        raise _classify(exc, relay) from None
    return client, refused


def open_relay(relay: Relay) -> smtplib.SMTP:
    """A connected (and, when configured, STARTTLS-secured and logged-in) SMTP client for `relay`."""
    context = ssl.create_default_context()
    timeout = outbox.smtp_timeout()
    client = (
        smtplib.SMTP_SSL(local_hostname=relay.helo, timeout=timeout, context=context)
        if relay.implicit_tls
        else smtplib.SMTP(local_hostname=relay.helo, timeout=timeout)
    )
    try:
        code, reply = client.connect(relay.host, relay.port)
        if code != 220:
            raise _reply_failure(code, reply, _("the greeting"))
        client.ehlo_or_helo_if_needed()
        if relay.starttls and not relay.implicit_tls:
            if not client.has_extn("starttls"):
                raise SendFailure(
                    _(
                        "the SMTP server %(host)s does not offer STARTTLS; turn STARTTLS off for this mailbox "
                        "only if the server is on a network you trust"
                    )
                    % {"host": relay.host},
                    permanent=True,
                )
            client.starttls(context=context)
            client.ehlo()
        if relay.user:
            client.login(relay.user, relay.password)
    except BaseException:
        client.close()
        raise
    return client


def _envelope(client: smtplib.SMTP, row: OutboundMail, raw: bytes, *, last_attempt: bool) -> dict[str, str]:
    """MAIL FROM and RCPT TO; returns the recipients refused for good, raises when the mail must wait or fail."""
    options = [f"SIZE={len(raw)}"] if client.has_extn("size") else []
    code, reply = client.mail(row.envelope_from, options)
    if code != 250:
        raise _reply_failure(code, reply, "MAIL FROM")
    accepted: list[str] = []
    refused: dict[str, str] = {}
    temporary = False
    for recipient in row.recipients:
        code, reply = client.rcpt(recipient)
        if code in (250, 251):
            accepted.append(recipient)
        else:
            refused[recipient] = _reply_text(code, reply)
            temporary = temporary or 400 <= code < 500
    if not accepted:
        raise SendFailure(
            _("every recipient was refused: %(refused)s") % {"refused": _joined(refused)},
            permanent=not temporary,
        )
    if temporary and not last_attempt:
        # Some addresses may work later (greylisting, full mailbox): keep the mail together and retry.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.rset()
        raise SendFailure(
            _("some recipients were refused for now: %(refused)s") % {"refused": _joined(refused)},
            permanent=False,
        )
    return refused


def _settle_failure(claim: outbox.Claim, now: datetime, failure: SendFailure, *, refused: dict[str, str]) -> str:
    if failure.permanent:
        outbox.fail(claim, now, failure.text, refused=refused)
        return "failed"
    outbox.retry_later(claim, now, failure.text)
    return "retry"


def _classify(exc: BaseException, relay: Relay) -> SendFailure:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        failure = _reply_failure(exc.smtp_code, exc.smtp_error, "")
        hint = _("check the SMTP user and password of this mailbox")
        return SendFailure(f"{failure.text} ({hint})", permanent=failure.permanent)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply_failure(exc.smtp_code, exc.smtp_error, "")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SendFailure(_("the SMTP server %(host)s closed the connection") % {"host": relay.host}, permanent=False)
    if isinstance(exc, smtplib.SMTPException):  # no AUTH offered, no usable AUTH method: configuration
        return SendFailure(f"{relay.host}: {exc}", permanent=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendFailure(
            _("the TLS certificate of %(host)s is not trusted: %(error)s")
            % {"host": relay.host, "error": exc.verify_message},
            permanent=True,
        )
    return SendFailure(
        _("cannot reach the SMTP server %(host)s:%(port)s: %(error)s")
        % {"host": relay.host, "port": relay.port, "error": str(exc) or type(exc).__name__},
        permanent=False,
    )


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {' '.join(text.split())}"[:500]


def _reply_failure(code: int, reply: bytes | str, step: str) -> SendFailure:
    text = _reply_text(code, reply)
    if step:
        text = _("%(reply)s (after %(step)s)") % {"reply": text, "step": step}
    # 4xx is "try again later"; 5xx, and anything outside the protocol, will not improve by retrying.
    return SendFailure(text, permanent=not 400 <= code < 500)


def _joined(refused: dict[str, str]) -> str:
    return "; ".join(f"{address}: {reason}" for address, reason in refused.items())


_BARE_LINE_END = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def _dot_stuffed(raw: bytes) -> bytes:
    """The DATA payload without its final dot: CRLF line ends, leading dots doubled (RFC 5321 §4.5.2)."""
    data = _LEADING_DOT.sub(b"..", _BARE_LINE_END.sub(b"\r\n", raw))
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _crash_point(name: str) -> None:
    # Test hook (see the module docstring): die like `kill -9` would, leaving no chance to clean up.
    if os.environ.get(CRASH_AT_ENV) == name:
        log.warning("%s=%s: killing this process", CRASH_AT_ENV, name)
        os.kill(os.getpid(), signal.SIGKILL)
