"""Tests of `postdesk.mail.automated`: auto-replies, out-of-office, lists, bulk and bounces."""

from __future__ import annotations

import pytest
from mail_factory import make_mail, multipart, part

from postdesk.mail.automated import detect_automated
from postdesk.mail.model import AutomatedKind, BounceRecipient
from postdesk.mail.parse import parse

pytestmark = pytest.mark.pure


def verdict(raw: bytes) -> tuple[AutomatedKind | None, str]:
    result = detect_automated(parse(raw))
    return result.kind, result.reason


def test_human_mail_is_not_automated() -> None:
    assert verdict(make_mail("Hi, my printer is broken."))[0] is None


@pytest.mark.parametrize(
    ("headers", "subject", "kind"),
    [
        ((("Auto-Submitted", "auto-replied"),), "Re: question", AutomatedKind.AUTO_REPLY),
        ((("Auto-Submitted", "auto-generated"),), "Out of Office: question", AutomatedKind.OUT_OF_OFFICE),
        ((("Auto-Submitted", "no"),), "question", None),
        ((("X-Autoreply", "yes"),), "question", AutomatedKind.AUTO_REPLY),
        ((("X-Autorespond", "yes"),), "Urlaub", AutomatedKind.OUT_OF_OFFICE),
        ((("Precedence", "auto_reply"),), "question", AutomatedKind.AUTO_REPLY),
        ((("X-Mailer", "Vacation 1.2"),), "question", AutomatedKind.AUTO_REPLY),
        ((), "Automatic reply: question", AutomatedKind.AUTO_REPLY),
        ((), "Abwesenheitsnotiz: Ihre Anfrage", AutomatedKind.OUT_OF_OFFICE),
        ((), "Автоответ: ваш вопрос", AutomatedKind.AUTO_REPLY),
        ((), "自动回复: 你好", AutomatedKind.AUTO_REPLY),
        ((), "Out of Office", AutomatedKind.OUT_OF_OFFICE),
        ((("List-Id", "<users.lists.example.com>"),), "question", AutomatedKind.LIST),
        ((("List-Unsubscribe", "<mailto:u@example.com>"),), "Newsletter", AutomatedKind.LIST),
        ((("Precedence", "bulk"),), "Offer", AutomatedKind.BULK),
        ((("Precedence", "bulk"),), "Out of office until Monday", AutomatedKind.OUT_OF_OFFICE),
    ],
)
def test_auto_reply_signals(headers: tuple[tuple[str, str], ...], subject: str, kind: AutomatedKind | None) -> None:
    got, reason = verdict(make_mail("I am away.", subject=subject, extra=headers))
    assert got == kind
    if kind is not None:
        assert reason


def dsn_mail(action: str = "failed", status: str = "5.1.1") -> bytes:
    report = (
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.org\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "Final-Recipient: rfc822;<full@example.net>\r\n"
        "Action: delayed\r\nStatus: 4.2.2\r\n"
    )
    ctype, body = multipart(
        "report",
        part("text/plain", "Delivery failed."),
        part("message/delivery-status", report),
        part("message/rfc822", make_mail("original", subject="Hello")),
    )
    return make_mail(
        body,
        sender="MAILER-DAEMON@mx.example.com",
        subject="Undelivered Mail Returned to Sender",
        content_type=ctype + "; report-type=delivery-status",
    )


def test_rfc3464_bounce() -> None:
    result = detect_automated(parse(dsn_mail()))
    assert result.kind is AutomatedKind.BOUNCE
    assert result.bounce_recipients == (
        BounceRecipient("gone@example.org", "5.1.1", True),
        BounceRecipient("full@example.net", "4.2.2", False),
    )
    assert "3464" in result.reason


def test_success_dsn_is_not_a_bounce() -> None:
    report = (
        "Reporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; ok@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
    )
    ctype, body = multipart("report", part("text/plain", "Delivered."), part("message/delivery-status", report))
    result = detect_automated(parse(make_mail(body, content_type=ctype + "; report-type=delivery-status")))
    assert result.kind is AutomatedKind.AUTO_REPLY


def test_qmail_bounce() -> None:
    body = (
        "Hi. This is the qmail-send program at mail.example.com.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<nobody@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n\nReturn-Path: <alice@example.com>\nTo: other@example.org\n"
    )
    result = detect_automated(parse(make_mail(body, sender="MAILER-DAEMON@mail.example.com", subject="failure notice")))
    assert result.kind is AutomatedKind.BOUNCE
    assert result.bounce_recipients == (BounceRecipient("nobody@example.org", "5.1.1", True),)


def test_exim_bounce() -> None:
    body = (
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  lost@example.org\n    SMTP error from remote mail server after RCPT TO:<lost@example.org>:\n"
        "    550 5.1.1 No such user\n\n------ This is a copy of the message, including all the headers. ------\n"
        "From: alice@example.com\n"
    )
    result = detect_automated(
        parse(make_mail(body, sender="Mail Delivery System <Mailer-Daemon@x.example>", subject="Mail delivery failed"))
    )
    assert result.kind is AutomatedKind.BOUNCE
    assert result.bounce_recipients == (BounceRecipient("lost@example.org", "5.1.1", True),)


def test_delay_notice_is_temporary() -> None:
    body = "This is the mail system at host x.\n\n<slow@example.org>: connection timed out; will retry\n"
    result = detect_automated(
        parse(make_mail(body, sender="MAILER-DAEMON@x", subject="Delayed Mail (still being retried)"))
    )
    assert result.kind is AutomatedKind.BOUNCE
    assert result.bounce_recipients == (BounceRecipient("slow@example.org", "", False),)
