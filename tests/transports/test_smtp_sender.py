"""Replies out through a real SMTP relay (an aiosmtpd sink on loopback): threading, retries, failures, undo.

The send job is called the way the worker calls it (`deliver`), with the time passed in, so back-off
is tested without sleeping. Crashes of real worker processes are in test_outbox_crash.py.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from smtp_sink import SmtpSink

from factories import make_agent, make_raw_mail
from postdesk import cli
from postdesk.desk import actions, outbox
from postdesk.desk.blobs import default_store
from postdesk.desk.errors import NotFound, PermissionDenied
from postdesk.desk.models import (
    Conversation,
    Draft,
    Event,
    EventKind,
    Mailbox,
    Message,
    Notification,
    OutboundMail,
    OutboundState,
)
from postdesk.desk.secrets_box import encrypt
from postdesk.transports import smtp_sender
from two_teams import Deliver, TwoTeams, deliver, fast_passwords, two_teams

__all__ = ["deliver", "fast_passwords", "two_teams"]

pytestmark = pytest.mark.django_db

CUSTOMER = "xavier@x-customer.test"
OnCommit = Callable[..., AbstractContextManager[object]]


@pytest.fixture(autouse=True)
def short_lease(settings) -> None:  # type: ignore[no-untyped-def]
    """A relay that hangs costs a test 5 s (the socket timeout is a third of the lease), not 2 minutes."""
    settings.POSTDESK_SEND_LEASE_SECONDS = 15


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def use_relay(mailbox: Mailbox, port: int, **fields: object) -> None:
    mailbox.smtp_host = "127.0.0.1"
    mailbox.smtp_port = port
    mailbox.smtp_starttls = False
    for name, value in fields.items():
        setattr(mailbox, name, value)
    mailbox.save()


def reply(world: TwoTeams, text: str = "Your login works again.", **recipients: tuple[str, ...]) -> Message:
    conversation = world.conversation_x
    return actions.do_reply(
        world.agent_x,
        conversation,
        text=text,
        recipients=actions.Recipients(
            to=recipients.get("to", (CUSTOMER,)), cc=recipients.get("cc", ()), bcc=recipients.get("bcc", ())
        ),
        seen_event_id=actions.latest_event_id(conversation),
    )


def row_of(message: Message) -> OutboundMail:
    return OutboundMail.objects.get(message=message)


def later(row: OutboundMail, seconds: float = 0) -> datetime:
    return row.send_after + timedelta(seconds=seconds)


def headers(data: bytes) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_a_reply_reaches_the_relay_threaded_and_the_answer_comes_back_to_the_conversation(
    two_teams: TwoTeams, sink: SmtpSink, settings, django_capture_on_commit_callbacks: OnCommit, deliver: Deliver
) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_UNDO_SEND_SECONDS = 0
    mailbox = two_teams.mailbox_x
    use_relay(mailbox, sink.port, name="X Support", signature="X Support team\nhttps://x.test")
    customer_mail = two_teams.conversation_x.messages.get()
    text = "Your login works again.\n.\n..a line that starts with dots\nBye."
    with django_capture_on_commit_callbacks(execute=True):
        message = reply(two_teams, text, cc=("carol@x-customer.test",), bcc=("boss@example.org",))

    (got,) = sink.wait_for(1)
    row = row_of(message)
    assert (row.state, row.attempts, row.last_error) == (OutboundState.SENT, 1, "")
    assert row.sent_at is not None
    # Exactly the bytes composed when the reply was written, dot-stuffing undone by the relay.
    assert got.data == default_store().get(row.raw_sha256)
    assert got.mail_from == "x@support.test"
    assert got.rcpt_tos == (CUSTOMER, "carol@x-customer.test", "boss@example.org")

    sent = headers(got.data)
    token = two_teams.conversation_x.reply_token
    assert sent["Message-ID"] == f"<{message.message_id}>"
    assert sent["In-Reply-To"] == f"<{customer_mail.message_id}>"
    assert sent["References"] == f"<{customer_mail.message_id}>"
    assert str(sent["Reply-To"]) == f"x+{token}@support.test"
    assert str(sent["From"]) == "X Support <x@support.test>"
    assert str(sent["To"]) == CUSTOMER
    assert str(sent["Cc"]) == "carol@x-customer.test"
    assert "Bcc" not in sent and b"boss@example.org" not in got.data
    assert sent["Subject"] == "Re: Broken login for Xavier"
    body = sent.get_body(("plain",))
    assert body is not None
    assert str(body.get_content()).replace("\r\n", "\n") == f"{text}\n\n-- \nX Support team\nhttps://x.test\n"

    # The customer answers with their client's usual headers, to the Reply-To address.
    answer = make_raw_mail(
        subject="Re: Re: Broken login for Xavier",
        sender="Xavier Client <xavier@x-customer.test>",
        to=str(sent["Reply-To"]),
        body="Thanks, it works!\n",
        in_reply_to=sent["Message-ID"],
        references=f"{sent['References']} {sent['Message-ID']}",
    )
    assert deliver(mailbox, answer).conversation_id == two_teams.conversation_x.pk
    # Even when the client drops the Reply-To and writes to the plain address, our Message-ID leads back.
    other_client = make_raw_mail(
        subject="another subject entirely",
        sender="Xavier Client <xavier@x-customer.test>",
        to="x@support.test",
        body="One more thing.\n",
        in_reply_to=sent["Message-ID"],
    )
    assert deliver(mailbox, other_client).conversation_id == two_teams.conversation_x.pk
    assert len(sink.delivered) == 1


def test_hostile_customer_headers_cannot_inject_headers_into_our_reply(
    two_teams: TwoTeams, sink: SmtpSink, deliver: Deliver
) -> None:
    mailbox = two_teams.mailbox_x
    use_relay(mailbox, sink.port, name="X Support\r\nBcc: evil-name@attacker.test")
    # The name decodes to an address, the subject to a line break and a Bcc line; a reference tries to close
    # its bracket early; the mailbox's name (typed by an admin) holds a line break too.
    raw = (
        b"From: =?utf-8?b?PGV2aWxAYXR0YWNrZXIudGVzdD4=?= <eve@customer.test>\r\n"
        b"To: x@support.test\r\n"
        b"Subject: =?utf-8?q?Help=0D=0ABcc:_evil-subject@attacker.test?=\r\n"
        b"Date: Fri, 20 Nov 2026 09:30:00 +0000\r\n"
        b"Message-ID: <abc@customer.test>\r\n"
        b"References: <ok@customer.test> <x@y>X-Injected:1>\r\n"
        b"\r\n"
        b"Hi\r\n"
    )
    hostile = deliver(mailbox, raw)
    conversation = hostile.conversation
    message = actions.do_reply(
        two_teams.agent_x,
        conversation,
        text="Hello Eve",
        recipients=actions.reply_recipients(conversation, reply_all=True),
        seen_event_id=actions.latest_event_id(conversation),
    )
    row = row_of(message)
    assert smtp_sender.deliver(row.pk, now=later(row)) == "sent"
    (got,) = sink.delivered
    assert got.rcpt_tos == ("eve@customer.test",)
    top = email.message_from_bytes(got.data, policy=email.policy.compat32)
    assert [name for name in top if name.lower() in ("bcc", "x-injected")] == []
    assert b"attacker.test>" not in got.data  # every hostile address stayed text inside a name or subject
    sent = headers(got.data)
    assert [a.addr_spec for a in sent["To"].addresses] == ["eve@customer.test"]
    assert [a.addr_spec for a in sent["From"].addresses] == ["x@support.test"]


def test_idn_recipients_are_sent_with_ascii_domains(two_teams: TwoTeams, sink: SmtpSink) -> None:
    use_relay(two_teams.mailbox_x, sink.port)
    message = reply(two_teams, to=("kunde@bücher.example",))
    row = row_of(message)
    assert row.recipients == ["kunde@xn--bcher-kva.example"]
    assert smtp_sender.deliver(row.pk, now=later(row)) == "sent"
    (got,) = sink.delivered
    assert got.rcpt_tos == ("kunde@xn--bcher-kva.example",)
    assert str(headers(got.data)["To"]) == "kunde@xn--bcher-kva.example"


def test_a_forward_carries_the_quoted_original_and_its_files(two_teams: TwoTeams, sink: SmtpSink) -> None:
    use_relay(two_teams.mailbox_y, sink.port, signature="not on forwards")
    conversation = two_teams.conversation_y
    message = actions.do_reply(
        two_teams.agent_y,
        conversation,
        text="Legal, please have a look at the contract.",
        recipients=actions.Recipients(to=("legal@example.org",)),
        seen_event_id=actions.latest_event_id(conversation),
        forward=True,
    )
    row = row_of(message)
    assert smtp_sender.deliver(row.pk, now=later(row)) == "sent"
    (got,) = sink.delivered
    sent = headers(got.data)
    assert sent["Subject"] == "Fwd: Refund YSECRET-SUBJECT"
    body = sent.get_body(("plain",))
    assert body is not None
    text = str(body.get_content()).replace("\r\n", "\n")
    assert text.startswith("Legal, please have a look at the contract.\n\n---------- Forwarded message ----------\n")
    assert "From: Yolanda Secret <yolanda@y-customer.test>\n" in text
    assert "My card number is in the YSECRET-BODY text." in text
    assert "not on forwards" not in text
    files = [(part.get_filename(), part.get_content()) for part in sent.iter_attachments()]
    assert files == [("y-contract.pdf", b"%PDF-1.4 y secret contract")]


def test_a_temporary_refusal_is_retried_with_back_off_and_sent_once(two_teams: TwoTeams, sink: SmtpSink) -> None:
    use_relay(two_teams.mailbox_x, sink.port)
    sink.handler.data_replies = ["451 4.3.0 Mail server temporarily rejected message"]
    message = reply(two_teams)
    row = row_of(message)
    assert smtp_sender.deliver(row.pk) == "not due"  # the undo window is still open

    first_try = later(row)
    assert smtp_sender.deliver(row.pk, now=first_try) == "retry"
    row.refresh_from_db()
    assert (row.state, row.attempts) == (OutboundState.QUEUED, 1)
    assert "451 4.3.0" in row.last_error
    assert row.send_after >= first_try + outbox.backoff(1)
    assert sink.delivered == []
    assert smtp_sender.deliver(row.pk, now=first_try + timedelta(seconds=1)) == "not due"

    assert smtp_sender.deliver(row.pk, now=later(row)) == "sent"
    row.refresh_from_db()
    assert (row.state, row.attempts) == (OutboundState.SENT, 2)
    assert len(sink.delivered) == 1
    assert smtp_sender.deliver(row.pk, now=later(row, 3600)) == OutboundState.SENT
    assert len(sink.delivered) == 1


def test_back_off_grows_from_30_seconds_to_two_hours() -> None:
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 4, 5, 6, 15)] == [
        30,
        120,
        480,
        1920,
        7200,
        7200,
        7200,
    ]
    total = sum(outbox.backoff(n).total_seconds() for n in range(1, outbox.MAX_ATTEMPTS))
    assert 20 * 3600 < total < 28 * 3600  # about a day of trying before giving up


def test_a_permanent_refusal_fails_the_mail_and_tells_the_author(two_teams: TwoTeams, sink: SmtpSink) -> None:
    use_relay(two_teams.mailbox_x, sink.port)
    sink.handler.data_replies = ["550 5.7.1 Message rejected as spam"]
    message = reply(two_teams)
    row = row_of(message)
    assert smtp_sender.deliver(row.pk, now=later(row)) == "failed"

    row.refresh_from_db()
    assert row.state == OutboundState.FAILED
    assert "550 5.7.1 Message rejected as spam" in row.last_error
    event = Event.objects.get(conversation=two_teams.conversation_x, kind=EventKind.SEND_FAILED)
    assert event.message_id == message.pk
    assert "550 5.7.1" in event.data["error"]
    note = Notification.objects.get(recipient=two_teams.agent_x)
    number = two_teams.conversation_x.number
    assert note.text.startswith(f"Your reply to #{number} could not be sent: 550 5.7.1 Message rejected as spam")
    assert note.event_id == event.pk
    assert smtp_sender.deliver(row.pk, now=later(row, 3600)) == OutboundState.FAILED
    assert sink.delivered == []


def test_recipients_refused_for_good_are_reported_and_the_others_get_the_mail(
    two_teams: TwoTeams, sink: SmtpSink
) -> None:
    use_relay(two_teams.mailbox_x, sink.port)
    sink.handler.rcpt_replies = {"gone@x-customer.test": "550 5.1.1 No such user"}
    message = reply(two_teams, cc=("gone@x-customer.test",))
    row = row_of(message)
    assert smtp_sender.deliver(row.pk, now=later(row)) == "sent"

    (got,) = sink.delivered
    assert got.rcpt_tos == (CUSTOMER,)
    row.refresh_from_db()
    assert row.state == OutboundState.SENT
    assert row.last_error == "gone@x-customer.test: 550 5.1.1 No such user"
    event = Event.objects.get(kind=EventKind.SEND_FAILED)
    assert event.data["partial"] is True
    assert event.data["refused"] == {"gone@x-customer.test": "550 5.1.1 No such user"}
    note = Notification.objects.get(recipient=two_teams.agent_x)
    assert "was not delivered to gone@x-customer.test: " in note.text


def test_a_recipient_refused_for_now_holds_the_whole_mail_for_a_retry(two_teams: TwoTeams, sink: SmtpSink) -> None:
    use_relay(two_teams.mailbox_x, sink.port)
    sink.handler.rcpt_replies = {"carol@x-customer.test": "450 4.2.0 Greylisted, try again later"}
    message = reply(two_teams, cc=("carol@x-customer.test",))
    row = row_of(message)
    assert smtp_sender.deliver(row.pk, now=later(row)) == "retry"
    assert sink.delivered == []
    row.refresh_from_db()
    assert "450 4.2.0 Greylisted" in row.last_error

    sink.handler.rcpt_replies = {}
    assert smtp_sender.deliver(row.pk, now=later(row)) == "sent"
    (got,) = sink.delivered
    assert got.rcpt_tos == (CUSTOMER, "carol@x-customer.test")


def test_an_outage_is_retried_until_the_relay_is_back_then_sent_once(two_teams: TwoTeams) -> None:
    relay = SmtpSink()  # its port is chosen, but nothing listens there yet
    use_relay(two_teams.mailbox_x, relay.port)
    message = reply(two_teams)
    row = row_of(message)
    waits = []
    for _attempt in range(3):
        assert smtp_sender.deliver(row.pk, now=later(row)) == "retry"
        before = row.send_after
        row.refresh_from_db()
        waits.append(row.send_after - before)
        assert "cannot reach the SMTP server 127.0.0.1" in row.last_error
    assert waits[1] > waits[0] and waits[2] > waits[1]

    with relay:
        assert smtp_sender.deliver(row.pk, now=later(row)) == "sent"
        assert len(relay.delivered) == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == (OutboundState.SENT, 4)


def test_it_gives_up_after_the_last_attempt(two_teams: TwoTeams) -> None:
    relay = SmtpSink()
    use_relay(two_teams.mailbox_x, relay.port)
    message = reply(two_teams)
    OutboundMail.objects.filter(message=message).update(attempts=outbox.MAX_ATTEMPTS - 1)
    row = row_of(message)
    assert smtp_sender.deliver(row.pk, now=later(row)) == "retry"  # the retry path decides to give up
    row.refresh_from_db()
    assert row.state == OutboundState.FAILED
    assert row.last_error.startswith(f"gave up after {outbox.MAX_ATTEMPTS} attempts; the last error: cannot reach")
    assert Notification.objects.filter(recipient=two_teams.agent_x, text__contains="could not be sent").exists()


def test_a_mailbox_without_an_smtp_server_fails_with_what_the_admin_must_do(two_teams: TwoTeams) -> None:
    message = reply(two_teams)
    row = row_of(message)
    assert smtp_sender.deliver(row.pk, now=later(row)) == "failed"
    row.refresh_from_db()
    assert "the mailbox x@support.test has no SMTP server configured" in row.last_error
    assert "postdesk outbox retry" in row.last_error
    assert Notification.objects.filter(recipient=two_teams.agent_x, text__contains="no SMTP server").exists()


def test_a_relay_without_starttls_is_refused_when_starttls_is_required(two_teams: TwoTeams, sink: SmtpSink) -> None:
    use_relay(two_teams.mailbox_x, sink.port, smtp_starttls=True)
    row = row_of(reply(two_teams))
    assert smtp_sender.deliver(row.pk, now=later(row)) == "failed"
    row.refresh_from_db()
    assert "does not offer STARTTLS" in row.last_error
    assert sink.delivered == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # the sink's, on loopback
def test_the_relay_login_uses_the_stored_password(two_teams: TwoTeams) -> None:
    with SmtpSink(login=("x-sender", "s3cret pass")) as relay:
        use_relay(
            two_teams.mailbox_x, relay.port, smtp_user="x-sender", smtp_password_encrypted=encrypt("wrong password")
        )
        row = row_of(reply(two_teams))
        assert smtp_sender.deliver(row.pk, now=later(row)) == "failed"
        row.refresh_from_db()
        assert row.last_error.startswith("535")
        assert "check the SMTP user and password of this mailbox" in row.last_error

        use_relay(two_teams.mailbox_x, relay.port, smtp_password_encrypted=encrypt("s3cret pass"))
        outbox.retry(row.pk)  # huey is inline in tests: the retry sends at once
        row.refresh_from_db()
        assert row.state == OutboundState.SENT
        assert len(relay.delivered) == 1


def test_a_connection_lost_after_the_final_dot_is_never_sent_again(two_teams: TwoTeams, sink: SmtpSink) -> None:
    use_relay(two_teams.mailbox_x, sink.port)
    sink.handler.drop_after_data = True  # the relay takes the mail, the answer never arrives
    row = row_of(reply(two_teams))
    assert smtp_sender.deliver(row.pk, now=later(row)) == "unconfirmed"
    row.refresh_from_db()
    assert row.state == OutboundState.SENT
    assert row.last_error == outbox.UNCONFIRMED
    note = Notification.objects.get(recipient=two_teams.agent_x)
    assert "most likely delivered and is not sent again" in note.text
    sink.handler.drop_after_data = False
    assert outbox.sweep(now=later(row, 3600)) == outbox.SweepReport(queued=0, resolved=0)
    assert smtp_sender.deliver(row.pk, now=later(row, 3600)) == OutboundState.SENT
    assert len(sink.delivered) == 1


def test_only_one_of_two_workers_claims_a_row_and_a_late_one_never_reaches_the_dot(two_teams: TwoTeams) -> None:
    row = row_of(reply(two_teams))
    due = later(row)
    first = outbox.claim(row, due)
    assert first is not None
    assert outbox.claim(row, due) is None  # same snapshot: the second worker loses
    # The first worker stalls past its lease; a second takes the row over.
    fresh = OutboundMail.objects.get(pk=row.pk)
    second = outbox.claim(fresh, first.fence)
    assert second is not None
    assert outbox.mark_sending(first, first.fence) is None  # the stalled one must not send its dot
    sending = outbox.mark_sending(second, first.fence)
    assert sending is not None
    assert outbox.mark_sent(first, first.fence) is False
    assert outbox.mark_sent(sending, first.fence) is True


def test_undo_send_within_the_window_gives_the_text_back_as_a_draft(two_teams: TwoTeams, sink: SmtpSink) -> None:
    use_relay(two_teams.mailbox_x, sink.port, signature="X Support")
    conversation = two_teams.conversation_x
    customer_mail = conversation.messages.get()
    message = reply(two_teams, "Try clearing your cookies.", cc=("carol@x-customer.test",))
    assert Conversation.objects.get(pk=conversation.pk).waiting_since is None

    colleague = make_agent("ax2@example.org", teams=tuple(two_teams.agent_x.agent.teams.all()))
    with pytest.raises(PermissionDenied):
        outbox.cancel(colleague, message)
    with pytest.raises(NotFound):
        outbox.cancel(two_teams.agent_y, message)
    assert outbox.cancel(two_teams.agent_x, message) is True

    row = row_of(message)
    assert row.state == OutboundState.CANCELLED
    draft = Draft.objects.get(conversation=conversation, author=two_teams.agent_x)
    assert (draft.kind, draft.text, draft.to, draft.cc) == (
        "reply",
        "Try clearing your cookies.",
        [CUSTOMER],
        ["carol@x-customer.test"],
    )
    assert Event.objects.filter(conversation=conversation, kind=EventKind.SEND_CANCELLED, message=message).exists()
    assert Conversation.objects.get(pk=conversation.pk).waiting_since == customer_mail.created_at
    assert smtp_sender.deliver(row.pk, now=later(row, 60)) == OutboundState.CANCELLED
    assert outbox.sweep(now=later(row, 60)).queued == 0
    assert sink.delivered == []
    assert outbox.cancel(two_teams.agent_x, message) is False


def test_undo_is_refused_once_the_window_has_passed_or_the_mail_is_out(two_teams: TwoTeams, sink: SmtpSink) -> None:
    use_relay(two_teams.mailbox_x, sink.port)
    message = reply(two_teams)
    row = row_of(message)
    assert outbox.cancel(two_teams.agent_x, message, now=later(row, 1)) is False
    assert smtp_sender.deliver(row.pk, now=later(row)) == "sent"
    assert outbox.cancel(two_teams.agent_x, message) is False
    assert not Draft.objects.exists()
    assert len(sink.delivered) == 1


def test_undo_wins_over_a_worker_that_has_not_sent_the_final_dot(two_teams: TwoTeams) -> None:
    message = reply(two_teams)
    row = row_of(message)
    claim = outbox.claim(row, later(row))
    assert claim is not None
    assert outbox.cancel(two_teams.agent_x, message, now=later(row, 1)) is True
    assert outbox.mark_sending(claim, later(row, 2)) is None


def test_the_sweep_sends_due_mail_whose_job_was_lost_and_settles_mail_left_sending(
    two_teams: TwoTeams, sink: SmtpSink, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.POSTDESK_UNDO_SEND_SECONDS = 0  # due at once; their jobs (queued on commit) never ran
    use_relay(two_teams.mailbox_x, sink.port)
    lost = row_of(reply(two_teams, "lost job"))
    stuck = row_of(reply(two_teams, "stuck in sending"))
    # A worker claimed `stuck` and marked it just before its dot, then died.
    claim = outbox.claim(stuck, timezone.now())
    assert claim is not None
    sending = outbox.mark_sending(claim, timezone.now())
    assert sending is not None

    assert outbox.sweep() == outbox.SweepReport(queued=1, resolved=0)
    lost.refresh_from_db()
    assert (lost.state, lost.last_error) == (OutboundState.SENT, "")
    assert OutboundMail.objects.get(pk=stuck.pk).state == OutboundState.SENDING  # its worker may still be waiting

    assert outbox.sweep(now=sending.fence) == outbox.SweepReport(queued=0, resolved=1)
    stuck.refresh_from_db()
    assert (stuck.state, stuck.last_error) == (OutboundState.SENT, outbox.UNCONFIRMED)
    (got,) = sink.delivered
    assert b"lost job" in got.data


def test_the_outbox_command_lists_and_retries_failed_mail(
    two_teams: TwoTeams, sink: SmtpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    message = reply(two_teams)
    row = row_of(message)
    assert smtp_sender.deliver(row.pk, now=later(row)) == "failed"  # no SMTP server yet

    assert cli.main(["outbox", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["state"], r["conversation"]) for r in listed] == [
        (row.pk, "failed", two_teams.conversation_x.number)
    ]
    assert "no SMTP server configured" in listed[0]["last_error"]

    use_relay(two_teams.mailbox_x, sink.port)
    assert cli.main(["outbox", "retry", str(row.pk)]) == 0
    assert "queued" in capsys.readouterr().out
    row.refresh_from_db()
    assert row.state == OutboundState.SENT
    assert len(sink.delivered) == 1
    assert cli.main(["outbox", "retry", str(row.pk)]) == 2
    assert "only failed or queued mail can be retried" in capsys.readouterr().err
    assert cli.main(["outbox", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
