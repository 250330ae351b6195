"""A real SMTP relay for tests of mail we send: aiosmtpd on a loopback port, recording what it accepts.

It can refuse: `data_replies` answers the final dot of the next transactions (e.g. "451 …" once, then
the default 250), `rcpt_replies` refuses chosen recipients, `drop_after_data` takes the mail and then
cuts the connection without answering (the "relay accepted, confirmation lost" case), and a
`login` makes it require AUTH with that user and password.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from processes import free_port


@dataclass(frozen=True)
class Delivered:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the mail as the relay got it (dots unstuffed, CRLF line ends)


@dataclass
class SinkHandler:
    delivered: list[Delivered] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    drop_after_data: bool = False
    rcpt_commands: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            self.rcpt_commands += 1
            refusal = self.rcpt_replies.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            reply = self.data_replies.pop(0) if self.data_replies else "250 2.0.0 queued"
            if reply.startswith("250"):
                content = envelope.original_content or b""
                assert isinstance(content, bytes)
                self.delivered.append(Delivered(str(envelope.mail_from), tuple(envelope.rcpt_tos), content))
            drop = self.drop_after_data
        if drop and server.transport is not None:
            server.transport.abort()  # accepted, but the client never hears so
        return reply


class SmtpSink:
    """`with SmtpSink() as sink:`; `.port` is fixed at creation, so a sink can be started after a client tries."""

    def __init__(self, port: int | None = None, *, login: tuple[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.handler = SinkHandler()
        self.login = login
        self._controller: Controller | None = None

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth: Any) -> Any:
        ok = isinstance(auth, LoginPassword) and (auth.login.decode(), auth.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535 itself

    def start(self) -> SmtpSink:
        options: dict[str, Any] = {}
        if self.login is not None:
            options = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def delivered(self) -> list[Delivered]:
        with self.handler.lock:
            return list(self.handler.delivered)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Delivered]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.delivered) >= count:
                return self.delivered
            time.sleep(0.05)
        raise AssertionError(f"the sink got {len(self.delivered)} mail(s), expected {count}, within {timeout}s")
