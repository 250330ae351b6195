"""The durable path: accept_raw stores and dedupes; processing threads mail into conversations."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from factories import make_mailbox, make_raw_mail
from postdesk.desk.blobs import default_store
from postdesk.desk.intake import accept_raw, find_mailbox
from postdesk.desk.models import (
    ContactAddress,
    Conversation,
    Message,
    ReceivedMail,
    ReceivedState,
    Source,
    Status,
)
from postdesk.desk.processing import process_received_mail

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def deliver(mailbox, raw: bytes, *, now: datetime = NOW, envelope_to: tuple[str, ...] = ()) -> Message | None:  # type: ignore[no-untyped-def]
    accepted = accept_raw(mailbox, raw, source=Source.SMTP, envelope_to=envelope_to, enqueue=lambda _id: None)
    state = process_received_mail(accepted.received_mail_id, now=now)
    assert state == ReceivedState.PROCESSED, ReceivedMail.objects.get(pk=accepted.received_mail_id).error
    return Message.objects.filter(received_mail_id=accepted.received_mail_id).first()


def test_accept_raw_stores_bytes_before_returning_and_queues_once() -> None:
    mailbox = make_mailbox()
    raw = make_raw_mail()
    queued: list[int] = []
    with_capture = accept_raw(mailbox, raw, source=Source.SMTP, enqueue=queued.append)
    row = ReceivedMail.objects.get(pk=with_capture.received_mail_id)
    assert row.state == ReceivedState.WAITING
    assert row.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert default_store().get(row.raw_sha256) == raw


def test_same_bytes_or_same_message_id_never_make_a_second_message() -> None:
    mailbox = make_mailbox()
    raw = make_raw_mail(message_id="<same@customer.test>")
    first = deliver(mailbox, raw)
    again = accept_raw(mailbox, raw, source=Source.IMAP, enqueue=lambda _id: None)
    assert again.duplicate
    # Same Message-ID, different bytes (for example relayed twice with other Received lines).
    resent = b"Received: from relay.example by mx.example; Fri, 20 Nov 2026 09:31:00 +0000\r\n" + raw
    third = accept_raw(mailbox, resent, source=Source.IMPORT, enqueue=lambda _id: None)
    assert third.duplicate
    assert Message.objects.count() == 1
    assert first is not None and first.message_id == "same@customer.test"


def test_the_same_mail_in_two_mailboxes_is_two_messages() -> None:
    sales = make_mailbox("sales@example.com")
    support = make_mailbox("support@example.com")
    raw = make_raw_mail(to="support@example.com, sales@example.com")
    deliver(support, raw)
    deliver(sales, raw)
    assert Conversation.objects.filter(mailbox=support).count() == 1
    assert Conversation.objects.filter(mailbox=sales).count() == 1


def test_find_mailbox_accepts_subaddresses_and_ignores_case() -> None:
    mailbox = make_mailbox("support@example.com")
    assert find_mailbox("Support@Example.COM") == mailbox
    assert find_mailbox("<support+abc123@example.com>") == mailbox
    assert find_mailbox("sales@example.com") is None
    assert find_mailbox("not-an-address") is None


def test_new_mail_creates_a_conversation_with_list_row_fields() -> None:
    mailbox = make_mailbox()
    message = deliver(mailbox, make_raw_mail(subject="Invoice missing", body="Where is my invoice for May?\n"))
    assert message is not None
    conversation = message.conversation
    assert conversation.subject == "Invoice missing"
    assert conversation.status == Status.NEW
    assert conversation.contact_name == "Alice Customer"
    assert conversation.contact_address == "alice@customer.test"
    assert "Where is my invoice" in conversation.snippet
    assert conversation.message_count == 1
    assert ContactAddress.objects.get(address="alice@customer.test").contact == conversation.contact
    steps = [s["step"] for s in message.received_mail.steps]  # type: ignore[union-attr]
    assert steps == [
        "parse",
        "detect-automated",
        "extract-reply",
        "store-attachments",
        "understand",
        "identify-contact",
        "find-thread",
        "create-or-append",
        "triage",
        "rules",
        "route",
        "sla",
        "acknowledge",
    ]


def test_reply_threads_by_in_reply_to_and_by_references() -> None:
    mailbox = make_mailbox()
    first = deliver(mailbox, make_raw_mail(message_id="<a@customer.test>"))
    reply = deliver(mailbox, make_raw_mail(subject="Other words", in_reply_to="<a@customer.test>"))
    deep = deliver(
        mailbox,
        make_raw_mail(subject="Unrelated", sender="bob@elsewhere.test", references="<zzz@x> <a@customer.test>"),
    )
    assert first and reply and deep
    assert reply.conversation_id == first.conversation_id == deep.conversation_id
    assert Conversation.objects.count() == 1


def test_a_reply_that_arrives_before_its_parent_still_joins_it() -> None:
    mailbox = make_mailbox()
    child = deliver(mailbox, make_raw_mail(subject="Re: Hello", in_reply_to="<parent@customer.test>"))
    parent = deliver(mailbox, make_raw_mail(subject="Hello", message_id="<parent@customer.test>"))
    assert child and parent and child.conversation_id == parent.conversation_id


def test_a_reply_processed_before_its_queued_parent_never_joins_another_thread_by_subject() -> None:
    """Two workers: a customer's two threads share a subject; the reply to the second overtakes its parent."""
    mailbox = make_mailbox()
    older = deliver(mailbox, make_raw_mail(subject="API returns 401", message_id="<t1@customer.test>"))
    parent = accept_raw(
        mailbox,
        make_raw_mail(subject="API returns 401", message_id="<t2@customer.test>"),
        source=Source.SMTP,
        enqueue=lambda _id: None,
    )
    reply = deliver(mailbox, make_raw_mail(subject="Re: API returns 401", in_reply_to="<t2@customer.test>"))
    assert process_received_mail(parent.received_mail_id, now=NOW) == ReceivedState.PROCESSED
    parent_message = Message.objects.get(received_mail_id=parent.received_mail_id)
    assert older and reply
    assert reply.conversation_id != older.conversation_id
    assert parent_message.conversation_id == reply.conversation_id


def test_reply_token_in_subaddress_threads_even_without_headers() -> None:
    mailbox = make_mailbox()
    first = deliver(mailbox, make_raw_mail())
    assert first
    token = first.conversation.reply_token
    answer = deliver(
        mailbox,
        make_raw_mail(subject="totally new words", sender="someone@else.test", to=f"support+{token}@example.com"),
        envelope_to=(f"support+{token}@example.com",),
    )
    assert answer and answer.conversation_id == first.conversation_id


def test_subject_threading_needs_the_same_contact() -> None:
    mailbox = make_mailbox()
    first = deliver(mailbox, make_raw_mail(subject="Login broken", sender="alice@customer.test"))
    same_person = deliver(mailbox, make_raw_mail(subject="RE: AW: Login broken", sender="ALICE@customer.test"))
    other_person = deliver(mailbox, make_raw_mail(subject="Re: Login broken", sender="mallory@evil.test"))
    assert first and same_person and other_person
    assert same_person.conversation_id == first.conversation_id
    assert other_person.conversation_id != first.conversation_id


def test_subject_threading_stops_after_the_window() -> None:
    mailbox = make_mailbox()
    first = deliver(mailbox, make_raw_mail(subject="Refund"), now=NOW)
    late = deliver(mailbox, make_raw_mail(subject="Re: Refund"), now=NOW + timedelta(days=90))
    assert first and late and late.conversation_id != first.conversation_id


def test_ticket_number_threads_only_for_the_same_contact() -> None:
    mailbox = make_mailbox()
    first = deliver(mailbox, make_raw_mail(subject="Broken screen"))
    assert first
    number = first.conversation.number
    mine = deliver(mailbox, make_raw_mail(subject=f"new words [#{number}]"))
    theirs = deliver(mailbox, make_raw_mail(subject=f"new words [#{number}]", sender="eve@evil.test"))
    assert mine and theirs
    assert mine.conversation_id == first.conversation_id
    assert theirs.conversation_id != first.conversation_id


def test_reply_reopens_a_recently_resolved_conversation() -> None:
    mailbox = make_mailbox()
    first = deliver(mailbox, make_raw_mail(message_id="<r1@customer.test>"))
    assert first
    Conversation.objects.filter(pk=first.conversation_id).update(status=Status.RESOLVED, resolved_at=NOW)
    reply = deliver(mailbox, make_raw_mail(in_reply_to="<r1@customer.test>"), now=NOW + timedelta(days=2))
    assert reply and reply.conversation_id == first.conversation_id
    assert Conversation.objects.get(pk=first.conversation_id).status == Status.OPEN


def test_reply_to_an_old_resolved_or_a_closed_conversation_starts_a_linked_one() -> None:
    mailbox = make_mailbox()
    old = deliver(mailbox, make_raw_mail(message_id="<old@customer.test>"))
    closed = deliver(mailbox, make_raw_mail(message_id="<closed@customer.test>", subject="Second"))
    assert old and closed
    Conversation.objects.filter(pk=old.conversation_id).update(status=Status.RESOLVED, resolved_at=NOW)
    Conversation.objects.filter(pk=closed.conversation_id).update(status=Status.CLOSED, closed_at=NOW)
    late = deliver(mailbox, make_raw_mail(in_reply_to="<old@customer.test>"), now=NOW + timedelta(days=30))
    soon = deliver(mailbox, make_raw_mail(in_reply_to="<closed@customer.test>"), now=NOW + timedelta(minutes=5))
    assert late and soon
    assert late.conversation_id != old.conversation_id
    assert late.conversation.previous_id == old.conversation_id
    assert soon.conversation_id != closed.conversation_id
    assert soon.conversation.previous_id == closed.conversation_id


def test_attachments_are_stored_content_addressed() -> None:
    mailbox = make_mailbox()
    pdf = b"%PDF-1.4 fake but fine\n" * 50
    message = deliver(mailbox, make_raw_mail(attachments=(("invoice.pdf", "application/pdf", pdf),)))
    assert message
    attachment = message.attachments.get()
    assert attachment.filename == "invoice.pdf"
    assert attachment.size == len(pdf)
    assert default_store().get(attachment.sha256) == pdf
    assert message.conversation.has_attachments


@pytest.mark.parametrize(
    ("label", "raw"),
    [
        ("empty", b""),
        ("garbage", bytes(range(256)) * 40),
        ("headers only", b"From: a@b.test\r\nSubject: nothing\r\n"),
        (
            "invalid utf-8 in headers",
            b"From: \xff\xfe <x@y.test>\r\nSubject: \xc3\x28 broken\r\n\r\nbody\r\n",
        ),
        ("10,000-character header", b"Subject: " + b"x" * 10000 + b"\r\nFrom: a@b.test\r\n\r\nbody\r\n"),
        (
            "200-deep multipart",
            b"From: a@b.test\r\nSubject: deep\r\n"
            + b"".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode() for i in range(200))
            + b"Content-Type: text/plain\r\n\r\ndeep body\r\n",
        ),
    ],
)
def test_bad_input_still_becomes_a_conversation_with_problems_and_raw_kept(label: str, raw: bytes) -> None:
    mailbox = make_mailbox()
    message = deliver(mailbox, raw)
    assert message is not None, label
    assert message.problems, f"{label}: problems should be recorded"
    assert message.received_mail is not None
    assert default_store().get(message.received_mail.raw_sha256) == raw


def test_a_failing_step_leaves_the_mail_failed_and_replayable(monkeypatch: pytest.MonkeyPatch) -> None:
    mailbox = make_mailbox()
    accepted = accept_raw(mailbox, make_raw_mail(), source=Source.SMTP, enqueue=lambda _id: None)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("postdesk.desk.processing._create_or_append", broken)
    assert process_received_mail(accepted.received_mail_id) == ReceivedState.FAILED
    row = ReceivedMail.objects.get(pk=accepted.received_mail_id)
    assert "disk on fire" in row.error
    assert row.steps[-1]["step"] == "create-or-append" and row.steps[-1]["outcome"] == "error"
    assert Message.objects.count() == 0
    monkeypatch.undo()
    ReceivedMail.objects.filter(pk=row.pk).update(state=ReceivedState.WAITING)
    assert process_received_mail(row.pk) == ReceivedState.PROCESSED
    assert Message.objects.count() == 1


def test_processing_twice_is_harmless() -> None:
    mailbox = make_mailbox()
    accepted = accept_raw(mailbox, make_raw_mail(), source=Source.SMTP, enqueue=lambda _id: None)
    assert process_received_mail(accepted.received_mail_id) == ReceivedState.PROCESSED
    assert process_received_mail(accepted.received_mail_id) == ReceivedState.PROCESSED
    assert Message.objects.count() == 1
