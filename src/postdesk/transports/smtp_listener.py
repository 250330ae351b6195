"""The inbound SMTP listener: checks recipient and size in the dialogue, answers 250 only once stored.

The durability promise (DESIGN.md §4): a `250` after DATA means `accept_raw` has fsynced the raw bytes
and committed the `ReceivedMail` row for every mailbox among the recipients. Anything that goes wrong
before that answers `451` so the sending MTA keeps the mail and retries; a retry of a mail we did
store is recognised by `accept_raw` (same bytes or Message-ID) and never becomes a second message.

SMTP replies are protocol text read by MTAs and echoed into bounces, so they stay ASCII English and
are not translated.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hmac
import logging
import os
import queue
import signal
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any, AnyStr, ParamSpec, Protocol, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from django.conf import settings
from django.db import close_old_connections, connections

from postdesk.config import ConfigError
from postdesk.desk.intake import accept_raw, find_mailbox
from postdesk.desk.models import Mailbox, Source

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Real MTAs relay lines longer than RFC 5321's 1,000 octets, and a client sending bare LF line ends
# (smtplib.sendmail with bytes does) sends the whole mail as one SMTP "line": aiosmtpd's 1,001 would
# refuse those mails with "500 Line too long". So any line up to the size limit passes, plus this
# margin, and the size limit alone decides (a connection buffers that much in DATA anyway).
LINE_LENGTH_LIMIT = 1024 * 1024
DB_THREADS = 4
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 30.0

REPLY_TEMPORARY = "451 4.3.0 Temporary failure, try again later"
REPLY_TOO_BIG = "552 5.3.4 Message too big"

# aiosmtpd answers size violations itself, with its own wording; we say it the standard way (RFC 3463).
_REWORDED_REPLIES = {
    "552 Error: message size exceeds fixed maximum message size": REPLY_TOO_BIG,
    "552 Error: Too much mail data": REPLY_TOO_BIG,
}


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    """Optional STARTTLS and AUTH; the defaults are a plain listener open to any client."""

    tls_context: ssl.SSLContext | None = None
    auth_user: str | None = None
    auth_password: str | None = None
    auth_require_tls: bool = True


def listener_options_from_env() -> ListenerOptions:
    """STARTTLS from POSTDESK_SMTP_TLS_CERT/_KEY and AUTH from POSTDESK_SMTP_AUTH_USER/_PASSWORD, when set."""
    cert = os.environ.get("POSTDESK_SMTP_TLS_CERT", "").strip()
    key = os.environ.get("POSTDESK_SMTP_TLS_KEY", "").strip()
    tls_context: ssl.SSLContext | None = None
    if cert or key:
        if not (cert and key):
            raise ConfigError("POSTDESK_SMTP_TLS_CERT and POSTDESK_SMTP_TLS_KEY must be set together")
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls_context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the SMTP TLS certificate {cert!r} and key {key!r}: {exc}") from None
    user = os.environ.get("POSTDESK_SMTP_AUTH_USER", "")
    password = os.environ.get("POSTDESK_SMTP_AUTH_PASSWORD", "")
    if bool(user) != bool(password):
        raise ConfigError("POSTDESK_SMTP_AUTH_USER and POSTDESK_SMTP_AUTH_PASSWORD must be set together")
    allow_plain = os.environ.get("POSTDESK_SMTP_AUTH_ALLOW_PLAIN", "") in {"1", "true", "yes"}
    if user and tls_context is None and not allow_plain:
        # aiosmtpd refuses AUTH without TLS: nobody could ever log in.
        raise ConfigError(
            "POSTDESK_SMTP_AUTH_USER needs STARTTLS (POSTDESK_SMTP_TLS_CERT and POSTDESK_SMTP_TLS_KEY), "
            "or POSTDESK_SMTP_AUTH_ALLOW_PLAIN=1 to allow passwords over plain text"
        )
    return ListenerOptions(
        tls_context=tls_context,
        auth_user=user or None,
        auth_password=password or None,
        auth_require_tls=not allow_plain,
    )


class _DatabaseThreads(concurrent.futures.Executor):
    """A few long-lived threads for ORM work, so the event loop never waits on the database.

    A plain thread pool cannot close the Django connections its threads opened; ours close them
    when they stop, so a stopped listener leaves no session behind (PostgreSQL refuses to drop a
    database that still has one).
    """

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._work, name=f"postdesk-smtp-db-{n}", daemon=True) for n in range(count)
        ]
        self._closed = False
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[T]:
        if self._closed:
            raise RuntimeError("the SMTP listener's database threads are stopped")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((future, partial(fn, *args, **kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join(STOP_TIMEOUT)

    def _work(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                future, call = job
                if not future.set_running_or_notify_cancel():
                    continue
                # A connection may have gone stale (server restart, CONN_MAX_AGE) while this thread idled.
                close_old_connections()
                try:
                    result = call()
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
                finally:
                    close_old_connections()
        finally:
            connections.close_all()


class _PostdeskSMTP(SMTP):
    def __init__(self, handler: SmtpHandler, *, line_length_limit: int, **options: Any) -> None:
        # SMTP.__init__ sizes its stream reader from this attribute, so it must be set first.
        self.line_length_limit = line_length_limit
        super().__init__(handler, **options)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status in _REWORDED_REPLIES:
            await super().push(_REWORDED_REPLIES[status])
        else:
            await super().push(status)


class ThreadRunner(Protocol):
    """Runs blocking work (the ORM) off the event loop and awaits its result."""

    def __call__(self, call: Callable[[], T], /) -> Awaitable[T]: ...


class SmtpHandler:
    """aiosmtpd hooks: RCPT checks the mailbox, DATA stores the mail durably before answering."""

    def __init__(self, run_in_thread: ThreadRunner) -> None:
        self._run = run_in_thread

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        try:
            mailbox = await self._run(partial(find_mailbox, address))
        except Exception:
            log.exception("could not check the recipient of an SMTP transaction")
            return REPLY_TEMPORARY
        if mailbox is None:
            log.info("refused mail for %s: no such mailbox", address)
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
        mail_from = str(envelope.mail_from or "")
        recipients = [str(r) for r in envelope.rcpt_tos]
        try:
            ids = await self._run(partial(_store, bytes(raw), mail_from, recipients))
        except Exception:
            # Never 250 for a mail we could not store: 451 makes the sender keep it and retry.
            log.exception("could not store an SMTP mail for %s (%d bytes); answered 451", recipients, len(raw))
            return REPLY_TEMPORARY
        return "250 2.0.0 Ok: queued as " + " ".join(str(i) for i in ids)


def _store(raw: bytes, mail_from: str, recipients: list[str]) -> list[int]:
    """Accept `raw` once for each distinct mailbox among `recipients` (runs in a database thread)."""
    by_mailbox: dict[int, tuple[Mailbox, list[str]]] = {}
    for recipient in recipients:
        mailbox = find_mailbox(recipient)
        if mailbox is None:
            # Deactivated between RCPT and DATA: a retry will get a clean 550 at RCPT.
            raise LookupError(f"mailbox for {recipient} disappeared during the SMTP transaction")
        by_mailbox.setdefault(mailbox.pk, (mailbox, []))[1].append(recipient)
    ids = []
    for mailbox, its_recipients in by_mailbox.values():
        accepted = accept_raw(mailbox, raw, source=Source.SMTP, envelope_from=mail_from, envelope_to=its_recipients)
        if accepted.duplicate:
            # Usually a retry after a lost 250 (a crash, a cut connection): acknowledge it again.
            log.info("mail already accepted as received mail %d; acknowledged again", accepted.received_mail_id)
        ids.append(accepted.received_mail_id)
    return ids


def _authenticator(options: ListenerOptions) -> Callable[..., AuthResult]:
    expected_user = (options.auth_user or "").encode()
    expected_password = (options.auth_password or "").encode()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        # Compare both parts, in constant time, so neither leaks through timing.
        same_user = hmac.compare_digest(auth_data.login, expected_user)
        same_password = hmac.compare_digest(auth_data.password, expected_password)
        return AuthResult(success=same_user and same_password, handled=False)

    return authenticate


class _ListenerController(Controller):
    """A Controller serving on a socket we bound ourselves: port 0 gives a known free port, race-free."""

    def __init__(self, handler: SmtpHandler, sock: socket.socket, line_length_limit: int, **kwargs: Any) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)
        self._sock = sock
        self._line_length_limit = line_length_limit

    def factory(self) -> SMTP:
        return _PostdeskSMTP(self.handler, line_length_limit=self._line_length_limit, **self.SMTP_kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)

    def _trigger_server(self) -> None:
        # The wildcard addresses are not connectable everywhere; their loopback twin is.
        wildcards = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 (not a bind)
        host = wildcards.get(self.hostname, self.hostname)
        with socket.create_connection((host, self.port), 1.0) as probe:
            probe.recv(1024)


class SmtpListener:
    """A running listener: `.host`, `.port` (the bound one), `.max_bytes`; `.stop()` ends it."""

    def __init__(self, controller: _ListenerController, threads: _DatabaseThreads, max_bytes: int) -> None:
        self._controller = controller
        self._threads = threads
        self.host: str = controller.hostname
        self.port: int = controller.port
        self.max_bytes = max_bytes
        self._stopped = False

    def stop(self) -> None:
        """Stop accepting, let mails being stored finish, close the database sessions.

        Clients cut off mid-transaction get no 250, so their MTA retries; a mail stored meanwhile is
        recognised as a duplicate then.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            self._controller.stop()
        finally:
            self._threads.shutdown(wait=True)


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen for SMTP on {host!r} port {port}: {exc} (see POSTDESK_BIND)") from None
    try:
        # A restart right after a crash must get its port back despite connections in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen for SMTP on {host} port {port}: {exc.strerror or exc} "
            "(see POSTDESK_BIND and POSTDESK_SMTP_PORT)"
        ) from None
    return sock


def start_smtp_listener(
    host: str, port: int, *, max_bytes: int | None = None, options: ListenerOptions | None = None
) -> SmtpListener:
    """Listen for SMTP on host:port (0 picks a free port) in a background thread; returns once it answers.

    Raises ConfigError when the address cannot be bound or the STARTTLS/AUTH environment is unusable.
    """
    limit = int(settings.POSTDESK_SMTP_MAX_BYTES if max_bytes is None else max_bytes)
    options = listener_options_from_env() if options is None else options
    threads = _DatabaseThreads(DB_THREADS)

    async def run_in_thread(call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(threads, call)

    smtp_options: dict[str, Any] = {
        "data_size_limit": limit or None,
        "decode_data": False,  # keep the bytes exactly as sent: they are the evidence
        "enable_SMTPUTF8": True,
        "server_hostname": socket.gethostname(),  # socket.getfqdn() may wait on DNS
        "ident": "Postdesk",
    }
    if options.tls_context is not None:
        smtp_options["tls_context"] = options.tls_context
    if options.auth_user:
        smtp_options["auth_required"] = True
        smtp_options["auth_require_tls"] = options.auth_require_tls
        smtp_options["authenticator"] = _authenticator(options)
    sock = _bind(host, port)
    controller = _ListenerController(
        SmtpHandler(run_in_thread),
        sock,
        line_length_limit=limit + LINE_LENGTH_LIMIT,
        ready_timeout=READY_TIMEOUT,
        **smtp_options,
    )
    try:
        controller.start()
    except BaseException:
        with contextlib.suppress(Exception):
            controller.stop(no_assert=True)
        sock.close()
        threads.shutdown(wait=True)
        raise
    listener = SmtpListener(controller, threads, limit)
    log.info("SMTP listener on %s port %d (max %d bytes)", listener.host, listener.port, limit)
    return listener


def serve_smtp_forever(host: str, port: int, *, max_bytes: int | None = None) -> None:
    """Run the listener until SIGTERM or SIGINT, then stop it cleanly (call from the main thread)."""
    done = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        listener = start_smtp_listener(host, port, max_bytes=max_bytes)
        try:
            while not done.wait(1.0):
                pass
        finally:
            log.info("stopping the SMTP listener on %s port %d", listener.host, listener.port)
            listener.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
