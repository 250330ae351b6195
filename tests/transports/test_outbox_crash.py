"""Outbox crash and outage tests with real processes: `postdesk worker` killed at the worst moments.

The worker kills itself with SIGKILL at a chosen point (POSTDESK_TEST_CRASH_AT, read only by the SMTP
sender): `before-dot`, with the whole mail sent to the relay but not the final dot; `after-dot`, with
the relay's 250 received but not yet recorded. A fresh worker is then started as an operator would.
The relay is a real aiosmtpd sink in this test process, so what it holds is what a customer gets.

This file is also the helper the test runs in subprocesses (`python test_outbox_crash.py setup|reply|
report|sweep`), so that the installation's database is set up through Postdesk's own code.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as the helper: find tests/ (factories) and this folder (smtp_sink)
    sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import pytest
from smtp_sink import SmtpSink

from processes import POSTDESK, postdesk, postdesk_env, stop, wait_for

pytestmark = pytest.mark.slow

HELPER = [sys.executable, str(Path(__file__).resolve())]
MAILBOX = "support@example.com"
AGENT = "agent@example.org"
CUSTOMER = "alice@customer.test"
CRASH_ENV = "POSTDESK_TEST_CRASH_AT"
LEASE_SECONDS = "3"  # how long a crash before the dot delays the mail; the socket timeout is 1 s


# --- the helper, run in subprocesses --------------------------------------------------------------


def helper_setup(port: str) -> None:
    from django.core.management import call_command

    from factories import make_agent, make_raw_mail, make_team
    from postdesk.desk.intake import accept_raw
    from postdesk.desk.models import Mailbox, Source
    from postdesk.desk.processing import process_received_mail

    call_command("migrate", verbosity=0, interactive=False)
    team = make_team("Support")
    mailbox = Mailbox.objects.create(
        address=MAILBOX, name="Acme Support", team=team, smtp_host="127.0.0.1", smtp_port=int(port), smtp_starttls=False
    )
    make_agent(AGENT, teams=(team,))
    raw = make_raw_mail(sender=f"Alice <{CUSTOMER}>", to=MAILBOX, subject="Where is my parcel?")
    accepted = accept_raw(mailbox, raw, source=Source.SMTP, enqueue=lambda _id: None)
    process_received_mail(accepted.received_mail_id)


def helper_reply(text: str) -> None:
    print(json.dumps({"outbound": _reply(text)}))


def _reply(text: str) -> int:
    from django.contrib.auth import get_user_model

    from postdesk.desk import actions
    from postdesk.desk.models import Conversation, OutboundMail

    agent = get_user_model().objects.get(email=AGENT)
    conversation = Conversation.objects.get()
    message = actions.do_reply(
        agent,
        conversation,
        text=text,
        recipients=actions.reply_recipients(conversation, reply_all=False),
        seen_event_id=actions.latest_event_id(conversation),
        confirm=True,
    )
    return OutboundMail.objects.get(message=message).pk


def helper_burst(count: str) -> None:
    """`count` replies, each followed by a sweep that queues every due row again: duplicate jobs race."""
    from postdesk.desk.outbox import sweep

    for n in range(int(count)):
        _reply(f"Reply number {n:02}.")
        sweep()


def helper_report() -> None:
    from postdesk.desk.models import Notification, OutboundMail

    rows = [
        {"id": r.pk, "state": r.state, "attempts": r.attempts, "last_error": r.last_error}
        for r in OutboundMail.objects.order_by("id")
    ]
    notes = list(Notification.objects.order_by("id").values_list("text", flat=True))
    print(json.dumps({"outbound": rows, "notifications": notes}))


def helper_sweep() -> None:
    from postdesk.desk.outbox import sweep

    report = sweep()
    print(json.dumps({"queued": report.queued, "resolved": report.resolved}))


def helper_main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
    import django

    django.setup()
    commands = {
        "setup": helper_setup,
        "reply": helper_reply,
        "burst": helper_burst,
        "report": helper_report,
        "sweep": helper_sweep,
    }
    commands[argv[1]](*argv[2:])
    return 0


# --- the tests ------------------------------------------------------------------------------------


@dataclass
class Site:
    env: dict[str, str]
    log: Path
    database_url: str | None

    def helper(self, *args: str) -> Any:
        done = subprocess.run([*HELPER, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    def rows(self) -> list[dict[str, Any]]:
        """The outbox rows, read straight from the installation's database (polling through a helper is slow)."""
        query = "SELECT id, state, attempts, last_error FROM desk_outboundmail ORDER BY id"
        if self.database_url:
            import psycopg

            with psycopg.connect(self.database_url) as conn:
                found = conn.execute(query).fetchall()
        else:
            with contextlib.closing(sqlite3.connect(Path(self.env["POSTDESK_DATA_DIR"]) / "postdesk.sqlite3")) as conn:
                found = conn.execute(query).fetchall()
        return [{"id": i, "state": state, "attempts": n, "last_error": error} for i, state, n, error in found]

    def row(self) -> dict[str, Any]:
        rows = self.rows()
        assert len(rows) == 1
        return rows[0]

    def worker(self, **extra: str) -> subprocess.Popen[str]:
        with self.log.open("a") as log:
            return subprocess.Popen(
                [*POSTDESK, "worker", "--workers", "2"], env=self.env | extra, stdout=log, stderr=log, text=True
            )

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def site(tmp_path: Path, fresh_database_url: str | None, sink: SmtpSink) -> Site:
    env = postdesk_env(
        tmp_path / "data",
        fresh_database_url,
        PYTHONUNBUFFERED="1",
        POSTDESK_UNDO_SEND_SECONDS="0",
        POSTDESK_SEND_LEASE_SECONDS=LEASE_SECONDS,
    )
    env.pop(CRASH_ENV, None)
    created = Site(env, tmp_path / "worker.log", fresh_database_url)
    created.helper("setup", str(sink.port))
    return created


def wait_for_kill(worker: subprocess.Popen[str], site: Site) -> None:
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError(f"the worker did not crash at the test hook:\n{site.log_tail()}") from None
    assert worker.returncode == -signal.SIGKILL, site.log_tail()


def test_a_worker_killed_before_the_final_dot_sends_the_mail_exactly_once_after_restart(
    site: Site, sink: SmtpSink
) -> None:
    doomed = site.worker(**{CRASH_ENV: "before-dot"})
    site.helper("reply", "Your parcel left our warehouse today.")
    wait_for_kill(doomed, site)
    assert sink.handler.rcpt_commands >= 1  # the relay was in the middle of the transaction
    assert sink.delivered == []  # without the dot it threw the mail away
    assert site.row()["state"] == "queued"

    worker = site.worker()
    try:
        wait_for(lambda: site.row()["state"] == "sent", 60, f"the mail to be sent after the restart\n{site.log_tail()}")
        (got,) = sink.wait_for(1)
    finally:
        stop(worker)
    assert got.rcpt_tos == (CUSTOMER,)
    assert b"Your parcel left our warehouse today." in got.data
    row = site.row()
    assert (row["attempts"], row["last_error"]) == (2, "")
    assert len(sink.delivered) == 1


def test_a_worker_killed_after_the_relay_accepted_never_sends_the_mail_again(site: Site, sink: SmtpSink) -> None:
    doomed = site.worker(**{CRASH_ENV: "after-dot"})
    site.helper("reply", "Refund issued.")
    wait_for_kill(doomed, site)
    assert len(sink.delivered) == 1
    assert site.row()["state"] == "sending"

    worker = site.worker()
    try:
        wait_for(lambda: site.row()["state"] == "sent", 60, f"the crashed send to be settled\n{site.log_tail()}")
        # Nothing is left for the sweep either, however often it runs.
        assert site.helper("sweep") == {"queued": 0, "resolved": 0}
    finally:
        stop(worker)
    row = site.row()
    assert row["last_error"].startswith("sent, but the confirmation was lost")
    assert len(sink.delivered) == 1
    notes = site.helper("report")["notifications"]
    assert len(notes) == 1 and "not sent again" in notes[0]


def test_an_smtp_outage_is_retried_by_the_worker_and_the_mail_sent_once_when_the_relay_is_back(
    tmp_path: Path, fresh_database_url: str | None
) -> None:
    relay = SmtpSink()  # its port is reserved for the mailbox, but the relay is down
    env = postdesk_env(
        tmp_path / "data",
        fresh_database_url,
        PYTHONUNBUFFERED="1",
        POSTDESK_UNDO_SEND_SECONDS="0",
        POSTDESK_SEND_LEASE_SECONDS=LEASE_SECONDS,
        POSTDESK_SEND_RETRY_BASE_SECONDS="0.3",
    )
    site = Site(env, tmp_path / "worker.log", fresh_database_url)
    site.helper("setup", str(relay.port))
    worker = site.worker()
    try:
        site.helper("reply", "Sent during an outage.")
        wait_for(lambda: site.row()["attempts"] >= 2, 60, f"two failed attempts\n{site.log_tail()}")
        row = site.row()
        assert row["state"] == "queued"
        assert "cannot reach the SMTP server" in row["last_error"]
        with relay:
            wait_for(lambda: site.row()["state"] == "sent", 60, f"the mail to go out\n{site.log_tail()}")
            (got,) = relay.wait_for(1)
            assert b"Sent during an outage." in got.data
            assert site.helper("sweep") == {"queued": 0, "resolved": 0}
            assert len(relay.delivered) == 1
    finally:
        stop(worker)
    listed = postdesk(env, "outbox", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_two_workers_and_eager_sweeps_send_each_reply_exactly_once(site: Site, sink: SmtpSink) -> None:
    workers = [site.worker(), site.worker()]
    try:
        site.helper("burst", "12")
        wait_for(lambda: len(sink.delivered) >= 12, 60, f"twelve mails at the relay\n{site.log_tail()}")
        wait_for(lambda: all(r["state"] == "sent" for r in site.rows()), 60, "every row marked sent")
    finally:
        for worker in workers:
            stop(worker)
    bodies = sorted(line for d in sink.delivered for line in d.data.split(b"\r\n") if line.startswith(b"Reply number"))
    assert bodies == [f"Reply number {n:02}.".encode() for n in range(12)]
    assert all(r["attempts"] == 1 for r in site.rows())


if __name__ == "__main__":
    sys.exit(helper_main(sys.argv))
