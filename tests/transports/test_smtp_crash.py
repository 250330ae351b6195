"""The kill test: SIGKILL the SMTP process mid-burst, again and again; no acknowledged mail is lost or doubled.

A client sends a burst of distinct mails over several connections and treats every error or
disconnect as "not acknowledged", retrying after the restart as a real MTA would. The server is
a real process, killed without warning at three different moments. Afterwards every waiting mail
is processed, and the stored state must show each mail exactly once, intact.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import secrets
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from factories import make_raw_mail
from processes import free_port

pytestmark = pytest.mark.slow

LAUNCHER = Path(__file__).with_name("smtpd_process.py")
MAILBOX = "support@example.com"
TOTAL = 300
CONNECTIONS = 4
KILL_AFTER_ACKS = (100, 170, 240)
BURST_SECONDS = 45.0
START_SECONDS = 20.0
SOCKET_TIMEOUT = 10.0


@dataclass
class CrashSite:
    env: dict[str, str]
    port: int
    log: Path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[CrashSite]:
    """A fresh data dir, a free port and, when the run is on PostgreSQL, a database of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTDESK_", "DATABASE_URL", "REDIS_URL"))}
    port = free_port()
    env |= {
        "DJANGO_SETTINGS_MODULE": "postdesk.settings",
        "POSTDESK_DATA_DIR": str(tmp_path / "crash-data"),
        "POSTDESK_BIND": "127.0.0.1",
        "POSTDESK_SMTP_PORT": str(port),
        "POSTDESK_HTTP_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "smtpd.log"
    test_url = os.environ.get("DATABASE_URL", "")
    if not test_url.startswith(("postgres://", "postgresql://")):
        # SQLite: the file database in the data dir (REDIS_URL is unset too: huey uses a file there).
        yield CrashSite(env, port, log)
        return
    import psycopg
    from psycopg import sql

    name = f"postdesk_crash_{secrets.token_hex(4)}"
    parts = urlsplit(test_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield CrashSite(env | {"DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}"))}, port, log)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# "smtpd": the listener alone; "run": `postdesk run`, which also processes mail while it is killed.
SERVER_COMMANDS = {
    "smtpd": [sys.executable, str(LAUNCHER), "serve"],
    "run": [sys.executable, "-m", "postdesk.cli", "run"],
}


class ServerProcess:
    """The server as a separate process that can be started, SIGKILLed and started again."""

    def __init__(self, site: CrashSite, command: list[str]) -> None:
        self.site = site
        self.command = command
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.site.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command, env=self.site.env, stdout=log, stderr=log)
        self.starts += 1
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the SMTP process exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.site.port), timeout=1) as probe:
                    probe.settimeout(2)
                    if probe.recv(1024).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"the SMTP process did not answer within {START_SECONDS} s:\n{self.log_tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM, as an operator stops it; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            pytest.fail(f"the SMTP process ignored SIGTERM:\n{self.log_tail()}")

    def ensure_dead(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, chars: int | None = 4000) -> str:
        text = self.site.log.read_text(errors="replace") if self.site.log.exists() else ""
        return text[-chars:] if chars else text


@dataclass
class Burst:
    """Sends every mail until it is acknowledged with 250, over several connections, like a queueing MTA."""

    port: int
    mails: dict[str, bytes]
    deadline: float
    pending: queue.Queue[str] = field(default_factory=queue.Queue)
    acked: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)  # permanent (5xx) answers: a bounce, never expected
    interrupted: int = 0  # transactions cut off by the kill (disconnect, reset, refused connection)
    temporary: int = 0  # 4xx answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for message_id in self.mails:
            self.pending.put(message_id)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def finished(self) -> bool:
        with self.lock:
            return len(self.acked) + len(self.rejected) >= len(self.mails)

    def run(self) -> None:
        smtp: smtplib.SMTP | None = None
        while time.monotonic() < self.deadline and not self.finished():
            try:
                message_id = self.pending.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=SOCKET_TIMEOUT)
                    smtp.ehlo("mta.customer.test")
                smtp.sendmail("alice@customer.test", [MAILBOX], self.mails[message_id])
            except smtplib.SMTPRecipientsRefused as refused:
                code, reply = next(iter(refused.recipients.values()))
                smtp = _drop(smtp)
                self._answered(message_id, code, reply)
            except smtplib.SMTPResponseException as error:
                smtp = _drop(smtp)
                self._answered(message_id, error.smtp_code, error.smtp_error)
            except (OSError, smtplib.SMTPException):
                # Killed mid-transaction or not up yet: not acknowledged, try again later.
                smtp = _drop(smtp)
                with self.lock:
                    self.interrupted += 1
                self.pending.put(message_id)
                time.sleep(0.05)
            else:
                with self.lock:
                    self.acked.add(message_id)
        _drop(smtp)

    def _answered(self, message_id: str, code: int, reply: bytes) -> None:
        with self.lock:
            if 400 <= code < 500:
                self.temporary += 1
                self.pending.put(message_id)
            else:
                self.rejected[message_id] = f"{code} {reply.decode(errors='replace')}"


@pytest.mark.parametrize("server_kind", ["smtpd", "run"])
def test_sigkill_during_a_burst_loses_and_doubles_nothing(site: CrashSite, server_kind: str) -> None:
    _run_launcher(site, "setup", timeout=60)
    mails = _burst_mails()
    server = ServerProcess(site, SERVER_COMMANDS[server_kind])
    try:
        server.start()
        burst = Burst(site.port, mails, deadline=time.monotonic() + BURST_SECONDS)
        clients = [threading.Thread(target=burst.run, daemon=True) for _ in range(CONNECTIONS)]
        for client in clients:
            client.start()
        for threshold in KILL_AFTER_ACKS:
            while burst.acked_count() < threshold and time.monotonic() < burst.deadline:
                time.sleep(0.005)
            server.kill()
            server.start()
        for client in clients:
            client.join(timeout=max(0.0, burst.deadline - time.monotonic()) + SOCKET_TIMEOUT + 5)
        assert not any(c.is_alive() for c in clients), "a client thread hung"
        assert server.stop() == 0, server.log_tail()
    finally:
        server.ensure_dead()

    retried = server.log_tail(None).count("acknowledged again")
    print(
        f"kills: {len(KILL_AFTER_ACKS)}, interrupted transactions: {burst.interrupted}, "
        f"4xx: {burst.temporary}, stored but unacknowledged then retried: {retried}"
    )
    assert server.starts == 1 + len(KILL_AFTER_ACKS)
    assert burst.interrupted > 0, "no kill ever interrupted a transaction: the test tested nothing"
    assert not burst.rejected, f"permanent refusals: {dict(list(burst.rejected.items())[:5])}"
    assert burst.acked == set(mails), f"{len(mails) - len(burst.acked)} mails never acknowledged in time"

    if server_kind == "run":
        # Killed while processing too: a restarted `postdesk run` must finish everything by itself.
        server.start()
        try:
            _wait_until_nothing_waits(site, timeout=120)
            assert server.stop() == 0, server.log_tail()
        finally:
            server.ensure_dead()
    else:
        _run_launcher(site, "process", timeout=120)
    stored = json.loads(_run_launcher(site, "report", timeout=60))
    received: list[dict[str, Any]] = stored["received"]
    messages: list[dict[str, Any]] = stored["messages"]

    received_ids = collections.Counter(r["message_id"] for r in received)
    assert [m for m, n in received_ids.items() if n > 1] == [], "a mail was accepted twice"
    lost = sorted(burst.acked - set(received_ids))
    assert lost == [], f"{len(lost)} mails were acknowledged with 250 but never stored, e.g. {lost[:3]}"
    assert set(received_ids) == set(mails)
    not_done = [(r["id"], r["state"], r["error"]) for r in received if r["state"] != "processed"]
    assert not_done == [], f"{len(not_done)} received mails not processed, e.g. {not_done[:3]}"
    assert [r["id"] for r in received if not r["blob_intact"]] == [], "raw mail missing or damaged on disk"

    message_ids = collections.Counter(m["message_id"] for m in messages)
    assert [m for m, n in message_ids.items() if n > 1] == [], "a mail became two messages"
    # Every mail that ever got a 250 is a message, exactly once.
    assert set(message_ids) == burst.acked
    assert len(messages) == TOTAL


def _wait_until_nothing_waits(site: CrashSite, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            [sys.executable, "-m", "postdesk.cli", "status", "--json"],
            env=site.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0 and json.loads(done.stdout)["received_mail"]["waiting"] == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"mail still waiting {timeout} s after the restart")


def _burst_mails() -> dict[str, bytes]:
    """Distinct mails of varied size (some with an attachment), CRLF line ends as on the wire."""
    token = secrets.token_hex(4)
    mails = {}
    for n in range(TOTAL):
        message_id = f"crash-{n}-{token}@customer.test"
        raw = make_raw_mail(
            subject=f"Order {n} has not arrived",
            sender=f"Customer {n % 23} <customer{n % 23}@customer.test>",
            message_id=f"<{message_id}>",
            body=f"Hello, this is mail {n}.\n" + "Where is my parcel? " * (n % 50) + "\n",
            attachments=(("invoice.pdf", "application/pdf", secrets.token_bytes(20_000)),) if n % 10 == 0 else (),
        )
        mails[message_id] = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return mails


def _run_launcher(site: CrashSite, command: str, *, timeout: float) -> str:
    done = subprocess.run(
        [sys.executable, str(LAUNCHER), command], env=site.env, capture_output=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stderr.decode(errors='replace')[-4000:]}"
    return done.stdout.decode()


def _drop(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError):
            smtp.close()
    return None
