"""The periodic sweep queues mail a crash left waiting, so nothing accepted is ever forgotten."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from factories import make_mailbox, make_raw_mail
from postdesk.desk.intake import accept_raw
from postdesk.desk.models import Mailbox, Message, ReceivedMail, ReceivedState, Source
from postdesk.jobs import queue_waiting, sweep_waiting_mail

pytestmark = pytest.mark.django_db


def accept_without_queueing(mailbox: Mailbox, subject: str) -> int:
    """A mail accepted and committed, whose job was lost (the process died before queueing it)."""
    raw = make_raw_mail(subject=subject)
    return accept_raw(mailbox, raw, source=Source.SMTP, enqueue=lambda _id: None).received_mail_id


def test_the_sweep_processes_mail_left_waiting_for_over_a_minute() -> None:
    mailbox = make_mailbox()
    old = accept_without_queueing(mailbox, "left behind by a crash")
    fresh = accept_without_queueing(mailbox, "just arrived, its job is on the way")
    ReceivedMail.objects.filter(pk=old).update(received_at=timezone.now() - timedelta(minutes=5))
    assert sweep_waiting_mail.call_local() == 1
    assert ReceivedMail.objects.get(pk=old).state == ReceivedState.PROCESSED
    assert ReceivedMail.objects.get(pk=fresh).state == ReceivedState.WAITING
    # At start-up everything waiting is queued, whatever its age.
    assert queue_waiting(older_than=None, at_start=True) == 1
    assert ReceivedMail.objects.get(pk=fresh).state == ReceivedState.PROCESSED
    assert Message.objects.count() == 2


def test_the_sweep_leaves_waiting_mail_alone_while_jobs_are_queued() -> None:
    """Re-queueing mail that is merely queued behind a backlog would only delay new mail."""
    from huey.contrib.djhuey import HUEY

    mailbox = make_mailbox()
    old = accept_without_queueing(mailbox, "queued behind a long import")
    ReceivedMail.objects.filter(pk=old).update(received_at=timezone.now() - timedelta(minutes=5))
    HUEY.immediate = False  # a real queue (the test data dir's), holding one pending job
    try:
        HUEY.flush()
        queue_waiting(older_than=None, at_start=True)
        assert HUEY.pending_count() == 1
        assert sweep_waiting_mail.call_local() == 0
        assert HUEY.pending_count() == 1
        # A restart queues it again all the same: the crash may have lost the job the queue shows.
        assert queue_waiting(older_than=None, at_start=True) == 1
    finally:
        HUEY.flush()
        HUEY.immediate = True
