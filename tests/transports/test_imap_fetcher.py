"""The IMAP fetcher against a real Dovecot on loopback: fetch, flag or move, UIDVALIDITY, errors, IDLE, crashes."""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from dovecot import Dovecot

from factories import make_mailbox, make_raw_mail
from postdesk.desk import intake
from postdesk.desk.models import Conversation, Mailbox, Message, ReceivedMail, Source
from postdesk.desk.secrets_box import encrypt
from postdesk.transports import imap_fetcher
from postdesk.transports.imap_fetcher import (
    FetchReport,
    check_mailbox,
    fetch_once,
    serve_fetch_forever,
    start_fetchers,
)
from processes import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

USER = "support@example.com"
PASSWORD = "imap-Secret-42"
# Generous upper bounds for waiting on another thread; they never decide pass or fail on speed.
WAIT = 20.0


def imap_mailbox(
    dovecot: Dovecot, *, folder: str = "INBOX", processed: str = "", password: str = PASSWORD, port: int = 0
) -> Mailbox:
    dovecot.add_user(USER, PASSWORD)
    mailbox = make_mailbox(USER)
    mailbox.imap_host = dovecot.host
    mailbox.imap_port = port or dovecot.port
    mailbox.imap_ssl = False
    mailbox.imap_user = USER
    mailbox.imap_password_encrypted = encrypt(password)
    mailbox.imap_folder = folder
    mailbox.imap_processed_folder = processed
    mailbox.save()
    return mailbox


def mail(number: int) -> bytes:
    return make_raw_mail(
        subject=f"Order {number} has not arrived",
        message_id=f"<order-{number}@customer.test>",
        body=f"Hello, order {number} is late. Where is it?\n",
    )


def fresh(mailbox: Mailbox) -> Mailbox:
    return Mailbox.objects.get(pk=mailbox.pk)


def fail_on(monkeypatch: pytest.MonkeyPatch, should_fail: Callable[[bytes], bool]) -> None:
    """Make `accept_raw` raise for chosen mail, as a full disk would; everything else is stored for real."""
    real = intake.accept_raw

    def accept(mailbox: Mailbox, raw: bytes, **kwargs: Any) -> intake.Accepted:
        if should_fail(raw):
            raise OSError(28, "No space left on device")
        return real(mailbox, raw, **kwargs)

    monkeypatch.setattr(imap_fetcher, "accept_raw", accept)


def test_new_mail_becomes_conversations_and_is_flagged_seen(dovecot: Dovecot) -> None:
    mailbox = imap_mailbox(dovecot)
    dovecot.deliver(USER, mail(1))
    dovecot.deliver(USER, mail(2))
    uidvalidity = dovecot.status(USER)["uidvalidity"]

    report = fetch_once(mailbox)

    assert report == FetchReport(fetched=2, duplicates=0, failed=0, uidvalidity=uidvalidity, last_uid=2)
    subjects = set(Conversation.objects.values_list("subject", flat=True))
    assert subjects == {"Order 1 has not arrived", "Order 2 has not arrived"}
    received = ReceivedMail.objects.order_by("pk")
    assert [(r.source, r.source_ref) for r in received] == [
        (Source.IMAP, f"{uidvalidity}:1"),
        (Source.IMAP, f"{uidvalidity}:2"),
    ]
    assert dovecot.flags(USER) == {1: {"\\Seen"}, 2: {"\\Seen"}}
    assert dovecot.status(USER)["messages"] == 2  # kept on the server
    stored = fresh(mailbox)
    assert (stored.imap_uidvalidity, stored.imap_last_uid) == (uidvalidity, 2)
    assert stored.last_fetch_at is not None
    assert stored.last_error == ""

    again = fetch_once(stored)
    assert (again.fetched, again.duplicates, again.failed, again.error) == (0, 0, 0, "")
    assert ReceivedMail.objects.count() == 2

    dovecot.deliver(USER, mail(3))
    third = fetch_once(fresh(mailbox))
    assert (third.fetched, third.duplicates, third.last_uid) == (1, 0, 3)
    assert Message.objects.count() == 3


def test_highest_uid_is_not_fetched_again_when_newer_mail_was_deleted(dovecot: Dovecot) -> None:
    # "UID 3:*" matches the highest UID even when it is below 3 (RFC 3501 §6.4.8): with mail 3 gone
    # before we saw it, the search answers UID 2, which was fetched already and must not count again.
    mailbox = imap_mailbox(dovecot)
    dovecot.deliver(USER, mail(1))
    dovecot.deliver(USER, mail(2))
    assert fetch_once(mailbox).fetched == 2
    dovecot.deliver(USER, mail(3))
    dovecot.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "uid", "3")

    report = fetch_once(fresh(mailbox))

    assert (report.fetched, report.duplicates, report.last_uid) == (0, 0, 2)


def test_mail_read_by_a_person_is_still_fetched(dovecot: Dovecot) -> None:
    # The position is the UID, not the \Seen flag: someone reading the mailbox in Thunderbird first
    # must not hide mail from the helpdesk.
    mailbox = imap_mailbox(dovecot)
    dovecot.deliver(USER, mail(1))
    dovecot.doveadm("flags", "add", "-u", USER, "\\Seen", "mailbox", "INBOX", "all")

    assert fetch_once(mailbox).fetched == 1


def test_processed_folder_receives_the_fetched_mail(dovecot: Dovecot) -> None:
    mailbox = imap_mailbox(dovecot, processed="Processed")
    for number in (1, 2, 3):
        dovecot.deliver(USER, mail(number))

    report = fetch_once(mailbox)

    assert report.fetched == 3
    assert dovecot.status(USER, "INBOX")["messages"] == 0
    assert dovecot.status(USER, "Processed")["messages"] == 3
    assert Conversation.objects.count() == 3
    assert fetch_once(fresh(mailbox)).fetched == 0


def test_uidvalidity_change_fetches_the_new_folder_without_duplicates(dovecot: Dovecot) -> None:
    dovecot.add_user(USER, PASSWORD)
    dovecot.create_folder(USER, "Support")
    mailbox = imap_mailbox(dovecot, folder="Support")
    for number in (1, 2, 3):
        dovecot.deliver(USER, mail(number), folder="Support")
    assert fetch_once(mailbox).fetched == 3
    old = dovecot.status(USER, "Support")["uidvalidity"]

    # The folder is rebuilt (a server migration, say): two old mails come back and one new one, with
    # UIDs 1-3 again, all at or below the position stored for the old folder.
    dovecot.delete_folder(USER, "Support")
    dovecot.create_folder(USER, "Support")
    for number in (1, 2, 4):
        dovecot.deliver(USER, mail(number), folder="Support")
    new = dovecot.status(USER, "Support")["uidvalidity"]
    assert new != old

    report = fetch_once(fresh(mailbox))

    assert (report.fetched, report.duplicates, report.uidvalidity, report.last_uid) == (1, 2, new, 3)
    assert ReceivedMail.objects.count() == 4
    assert Message.objects.count() == 4
    assert dovecot.status(USER, "Support")["unseen"] == 0
    assert fresh(mailbox).imap_uidvalidity == new


def test_wrong_password_is_recorded_clearly_without_the_password(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mailbox = imap_mailbox(dovecot, password="wrong-Password-99")
    dovecot.deliver(USER, mail(1))

    report = fetch_once(mailbox)

    expected = f"login failed for user {USER} at 127.0.0.1:{dovecot.port}"
    assert report.error.startswith(expected)
    stored = fresh(mailbox)
    assert stored.last_error.startswith(expected)
    assert stored.last_error_at is not None
    assert ReceivedMail.objects.count() == 0
    assert "wrong-Password-99" not in caplog.text
    assert "wrong-Password-99" not in stored.last_error
    assert check_mailbox(stored) is not None
    assert check_mailbox(stored).startswith(expected)  # type: ignore[union-attr]


def test_unreachable_server_is_recorded_clearly() -> None:
    port = free_port()  # nothing listens there
    mailbox = make_mailbox(USER)
    mailbox.imap_host, mailbox.imap_port, mailbox.imap_ssl = "127.0.0.1", port, False
    mailbox.imap_user, mailbox.imap_password_encrypted = USER, encrypt(PASSWORD)
    mailbox.save()

    report = fetch_once(mailbox)

    assert report.error.startswith(f"cannot connect to 127.0.0.1:{port}: ")
    assert "refused" in report.error.lower()
    assert fresh(mailbox).last_error == report.error
    assert check_mailbox(mailbox) == report.error


def test_check_mailbox_says_what_is_wrong(dovecot: Dovecot) -> None:
    mailbox = imap_mailbox(dovecot)
    assert check_mailbox(mailbox) is None

    mailbox.imap_folder = "No-Such-Folder"
    problem = check_mailbox(mailbox)
    assert problem is not None
    assert problem.startswith(f"cannot open folder No-Such-Folder at 127.0.0.1:{dovecot.port}")


def test_a_message_that_cannot_be_stored_is_retried_and_does_not_block_the_rest(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox = imap_mailbox(dovecot)
    for number in (1, 2, 3):
        dovecot.deliver(USER, mail(number))
    fail_on(monkeypatch, lambda raw: b"<order-2@customer.test>" in raw)

    first = fetch_once(mailbox)

    assert (first.fetched, first.failed, first.last_uid) == (2, 1, 1)
    assert dovecot.flags(USER) == {1: {"\\Seen"}, 2: set(), 3: {"\\Seen"}}
    assert "UID 2" in fresh(mailbox).last_error

    monkeypatch.undo()  # the disk has space again
    second = fetch_once(fresh(mailbox))

    assert (second.fetched, second.duplicates, second.failed, second.last_uid) == (1, 1, 0, 3)
    assert ReceivedMail.objects.count() == 3
    assert dovecot.status(USER)["unseen"] == 0
    assert fresh(mailbox).last_error == ""


def test_a_thousand_waiting_messages_are_fetched_exactly_once(dovecot: Dovecot) -> None:
    mailbox = imap_mailbox(dovecot)
    dovecot.deliver_many(USER, [mail(number) for number in range(1000)])

    report = fetch_once(mailbox, batch=100)

    assert (report.fetched, report.duplicates, report.failed, report.last_uid) == (1000, 0, 0, 1000)
    refs = list(ReceivedMail.objects.values_list("source_ref", flat=True))
    assert len(refs) == len(set(refs)) == 1000
    assert set(ReceivedMail.objects.values_list("message_id", flat=True)) == {
        f"order-{number}@customer.test" for number in range(1000)
    }
    assert dovecot.status(USER)["unseen"] == 0
    assert fetch_once(fresh(mailbox)).fetched == 0


def test_server_killed_in_the_middle_of_a_fetch_loses_and_doubles_nothing(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox = imap_mailbox(dovecot)
    dovecot.deliver_many(USER, [mail(number) for number in range(300)])
    real = intake.accept_raw
    calls = 0

    def accept_then_crash_the_server(mailbox: Mailbox, raw: bytes, **kwargs: Any) -> intake.Accepted:
        nonlocal calls
        calls += 1
        if calls == 150:  # in the middle of the second batch of 100
            dovecot.kill()
        return real(mailbox, raw, **kwargs)

    monkeypatch.setattr(imap_fetcher, "accept_raw", accept_then_crash_the_server)

    cut = fetch_once(mailbox, batch=100)

    assert cut.error.startswith(f"connection to 127.0.0.1:{dovecot.port} lost while fetching")
    assert fresh(mailbox).last_error == cut.error
    assert cut.last_uid == 100  # the first batch was stored and flagged; the second was not confirmed

    monkeypatch.undo()
    dovecot.start()
    done = fetch_once(fresh(mailbox), batch=100)

    assert done.ok, done.error
    assert done.last_uid == 300
    assert done.fetched + done.duplicates == 200
    assert ReceivedMail.objects.count() == 300
    assert set(ReceivedMail.objects.values_list("message_id", flat=True)) == {
        f"order-{number}@customer.test" for number in range(300)
    }
    assert Message.objects.count() == 300
    assert dovecot.status(USER)["unseen"] == 0
    assert fresh(mailbox).last_error == ""


class Reports:
    """Collects the fetcher thread's round reports so the test can wait for one it expects."""

    def __init__(self) -> None:
        self.queue: queue.Queue[FetchReport] = queue.Queue()

    def __call__(self, report: FetchReport) -> None:
        self.queue.put(report)

    def wait_for(self, matches: Callable[[FetchReport], bool]) -> FetchReport:
        seen: list[FetchReport] = []
        while True:
            try:
                report = self.queue.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no matching fetch round within {WAIT}s; saw {seen}") from None
            if matches(report):
                return report
            seen.append(report)


def test_fetcher_thread_picks_up_new_mail_through_idle_and_stops_promptly(dovecot: Dovecot) -> None:
    imap_mailbox(dovecot)
    dovecot.deliver(USER, mail(1))
    reports = Reports()
    # An hour between polls: only IDLE can bring the second mail in within the wait.
    group = start_fetchers(poll_interval=3600, idle_timeout=600, rescan_interval=None, on_report=reports)
    try:
        assert len(group) == 1
        reports.wait_for(lambda r: r.fetched == 1)
        reports.wait_for(lambda r: r.ok and r.fetched == 0)  # idle now

        dovecot.deliver(USER, mail(2))
        picked_up = reports.wait_for(lambda r: r.fetched == 1)
        assert picked_up.last_uid == 2
    finally:
        fetchers = list(group.fetchers.values())
        group.stop(timeout=5)
    assert not any(fetcher.is_alive() for fetcher in fetchers)
    assert set(Conversation.objects.values_list("subject", flat=True)) == {
        "Order 1 has not arrived",
        "Order 2 has not arrived",
    }
    assert dovecot.status(USER)["unseen"] == 0


def test_fetcher_thread_reconnects_after_the_server_restarts(dovecot: Dovecot) -> None:
    imap_mailbox(dovecot)
    reports = Reports()
    group = start_fetchers(
        poll_interval=3600, idle_timeout=600, rescan_interval=None, backoff_initial=0.1, on_report=reports
    )
    try:
        reports.wait_for(lambda r: r.ok)
        dovecot.kill()
        failed = reports.wait_for(lambda r: not r.ok)
        assert f"127.0.0.1:{dovecot.port}" in failed.error
        dovecot.start()
        dovecot.deliver(USER, mail(1))
        reports.wait_for(lambda r: r.fetched == 1)
    finally:
        group.stop(timeout=5)
    assert ReceivedMail.objects.count() == 1
    assert Mailbox.objects.get().last_error == ""


def test_fetchers_start_only_for_active_mailboxes_with_imap(dovecot: Dovecot) -> None:
    imap_mailbox(dovecot)
    make_mailbox("smtp-only@example.com")
    disabled = make_mailbox("old@example.com")
    disabled.imap_host, disabled.imap_user, disabled.active = "127.0.0.1", "old", False
    disabled.save()

    group = start_fetchers(poll_interval=3600, idle_timeout=600, rescan_interval=None)
    try:
        assert [fetcher.mailbox_id for fetcher in group.fetchers.values()] == [Mailbox.objects.get(address=USER).pk]
    finally:
        group.stop(timeout=5)


def test_serve_fetch_forever_fetches_until_sigterm(dovecot: Dovecot) -> None:
    imap_mailbox(dovecot)
    dovecot.deliver(USER, mail(1))
    before = signal.getsignal(signal.SIGTERM)

    def terminate_once_fetched() -> None:
        deadline = time.monotonic() + WAIT
        while dovecot.status(USER)["unseen"] and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_fetched)
    killer.start()
    serve_fetch_forever(poll_interval=3600)
    killer.join()

    assert ReceivedMail.objects.count() == 1
    assert signal.getsignal(signal.SIGTERM) is before
