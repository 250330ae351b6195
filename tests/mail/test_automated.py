"""Tests of `postdesk.mail.automated`: auto-replies, out-of-office, lists, bulk and bounces."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import json

import pytest
from mail_factory import make_mail, multipart, part

from postdesk.mail.automated import detect_automated
from postdesk.mail.model import AutomatedKind, AutomatedVerdict, BounceRecipient
from postdesk.mail.parse import parse

pytestmark = pytest.mark.pure

DAEMON = "Mail Delivery System <MAILER-DAEMON@mx.example.com>"


def verdict(raw: bytes) -> tuple[AutomatedKind | None, str]:
    result = detect_automated(parse(raw))
    return result.kind, result.reason


def bounce(raw: bytes) -> AutomatedVerdict:
    """The verdict on `raw`, which must be a bounce."""
    result = detect_automated(parse(raw))
    assert result.kind is AutomatedKind.BOUNCE, result
    return result


def returned_original(to: str = "gone@example.org") -> bytes:
    return make_mail("Hello, about your order.", sender="Support <support@example.com>", to=to, subject="Your order")


def report_mail(report: str, *, notice: str = "Delivery failed.", subject: str = "Undelivered Mail") -> bytes:
    """A multipart/report bounce (RFC 6522): notice, delivery-status fields, returned message."""
    ctype, body = multipart(
        "report",
        part("text/plain", notice),
        part("message/delivery-status", report),
        part("message/rfc822", returned_original()),
    )
    return make_mail(
        body,
        sender=DAEMON,
        to="support@example.com",
        subject=subject,
        content_type=f"{ctype}; report-type=delivery-status",
    )


def notice_mail(
    text: str, *, sender: str = DAEMON, subject: str = "Mail delivery failed", extra: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """A free-form bounce: the notice as the plain-text body."""
    return make_mail(text, sender=sender, to="support@example.com", subject=subject, extra=extra)


# --- Human mail stays human --------------------------------------------------------------------------------------


def test_human_mail_is_not_automated() -> None:
    assert verdict(make_mail("Hi, my printer is broken."))[0] is None


@pytest.mark.parametrize(
    ("subject", "body", "extra"),
    [
        # A customer's complaint uses bounce words in the subject.
        ("Order 312084 not delivered", "My parcel never arrived, can you check?", ()),
        ("Undeliverable parcel", "The courier says the parcel could not be delivered to my street.", ()),
        # A person answering a bounce quotes it below their own words.
        (
            "Re: Undelivered Mail Returned to Sender",
            "Which address did you use?\n\n> This is the mail system at host mx.example.com.\n"
            "> I'm sorry to have to inform you that your message could not\n"
            "> be delivered to one or more recipients.\n",
            (("In-Reply-To", "<b1@mx.example.com>"),),
        ),
        # A person forwarding a bounce inline, under the forward separator.
        (
            "Fwd: Mail delivery failed",
            "Can you check why this bounced?\n\n---------- Forwarded message ---------\n"
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\n\n"
            "This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of its recipients.\n"
            "  gone@example.org\n    550 5.1.1 No such user\n",
            (),
        ),
        # Someone writing about delivery problems in their own words, with the phrase quoted.
        ("Question", '> Delivery failed\nWhat does "Delivery failed" mean in your app?', ()),
        ("Automatic reply feature broken", "The automatic reply setting does not save.", ()),
        ("Out of office hours support?", "Do you answer calls out of office hours?", ()),
        ("Re: Automatic reply settings", "Thanks, that worked.", ()),
    ],
)
def test_human_mail_with_bounce_or_auto_reply_words_is_not_automated(
    subject: str, body: str, extra: tuple[tuple[str, str], ...]
) -> None:
    assert verdict(make_mail(body, subject=subject, extra=extra)) == (None, "")


def test_person_forwarding_a_bounce_as_attachment_is_not_a_bounce() -> None:
    ctype, body = multipart(
        "mixed",
        part("text/plain", "Hi, why did this bounce?"),
        part("message/rfc822", report_mail("Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\n")),
        boundary="OUTER",
    )
    assert verdict(make_mail(body, subject="Fwd: Undelivered Mail", content_type=ctype))[0] is None


def test_postmaster_writing_an_ordinary_mail_is_not_a_bounce() -> None:
    raw = make_mail("http://example.com/a-very-long-link", sender="Bob <postmaster@example.net>", subject="Link")
    assert verdict(raw)[0] is None


# --- Auto-replies, out-of-office, lists and bulk -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "subject", "kind"),
    [
        ((("Auto-Submitted", "auto-replied"),), "Re: question", AutomatedKind.AUTO_REPLY),
        ((("Auto-Submitted", "auto-generated"),), "Out of Office: question", AutomatedKind.OUT_OF_OFFICE),
        ((("Auto-Submitted", "no"),), "question", None),
        ((("X-Autoreply", "yes"),), "question", AutomatedKind.AUTO_REPLY),
        ((("X-Autorespond", "yes"),), "Urlaub", AutomatedKind.OUT_OF_OFFICE),
        ((("X-Autogenerated", "Reply"),), "question", AutomatedKind.AUTO_REPLY),
        (
            (("X-MS-Exchange-Generated-Message-Source", "Mailbox Rules Agent"),),
            "Automatic reply: question",
            AutomatedKind.AUTO_REPLY,
        ),
        # An inbox rule forwarding a customer's mail carries the same Exchange marks.
        ((("X-MS-Exchange-Generated-Message-Source", "Mailbox Rules Agent"),), "Re: question", None),
        ((("X-MS-Exchange-Inbox-Rules-Loop", "support@example.com"),), "Re: question", None),
        ((("Precedence", "auto_reply"),), "question", AutomatedKind.AUTO_REPLY),
        ((("X-Mailer", "Vacation 1.2"),), "question", AutomatedKind.AUTO_REPLY),
        ((("X-Auto-Response-Suppress", "All"),), "Automatic reply: question", AutomatedKind.AUTO_REPLY),
        ((("X-Auto-Response-Suppress", "All"),), "question", None),
        ((("X-MS-Exchange-Inbox-Rules-Loop", "bob@example.com"),), "Out of office", AutomatedKind.OUT_OF_OFFICE),
        ((), "Automatic reply: question", AutomatedKind.AUTO_REPLY),
        ((), "Automatische Antwort: Ihre Anfrage", AutomatedKind.AUTO_REPLY),
        ((), "Réponse automatique : votre question", AutomatedKind.AUTO_REPLY),
        ((), "Respuesta automática: su pregunta", AutomatedKind.AUTO_REPLY),
        ((), "Автоматический ответ: ваш вопрос", AutomatedKind.AUTO_REPLY),
        ((), "Автоответ: ваш вопрос", AutomatedKind.AUTO_REPLY),
        ((), "Автоматична відповідь: ваше питання", AutomatedKind.AUTO_REPLY),
        ((), "پاسخ خودکار: سوال شما", AutomatedKind.AUTO_REPLY),
        ((), "自动回复: 你好", AutomatedKind.AUTO_REPLY),
        ((), "自动回复：你好", AutomatedKind.AUTO_REPLY),
        ((), "[Auto-Reply] question", AutomatedKind.AUTO_REPLY),
        ((), "Abwesenheitsnotiz: Ihre Anfrage", AutomatedKind.OUT_OF_OFFICE),
        ((), "Out of Office", AutomatedKind.OUT_OF_OFFICE),
        ((), "Out of Office AutoReply: question", AutomatedKind.OUT_OF_OFFICE),
        ((("List-Id", "<users.lists.example.com>"),), "question", AutomatedKind.LIST),
        ((("List-Post", "<mailto:users@lists.example.com>"),), "question", AutomatedKind.LIST),
        ((("X-BeenThere", "users@lists.example.com"),), "question", AutomatedKind.LIST),
        ((("Precedence", "list"),), "question", AutomatedKind.LIST),
        ((("List-Unsubscribe", "<mailto:u@example.com>"),), "Newsletter", AutomatedKind.LIST),
        ((("Precedence", "bulk"),), "Offer", AutomatedKind.BULK),
        ((("Precedence", "junk"),), "Offer", AutomatedKind.BULK),
        ((("Precedence", "bulk"),), "Out of office until Monday", AutomatedKind.OUT_OF_OFFICE),
    ],
)
def test_auto_reply_signals(headers: tuple[tuple[str, str], ...], subject: str, kind: AutomatedKind | None) -> None:
    got, reason = verdict(make_mail("Thanks for your message.", subject=subject, extra=headers))
    assert got == kind
    if kind is not None:
        assert reason


@pytest.mark.parametrize(
    "body",
    [
        "I am out of the office until Monday and will answer then.",
        "Ich bin bis 12. Mai im Urlaub.",
        "Я в отпуске до понедельника.",
        "I will be traveling for work on July 10-31 with intermittent access to email.",
    ],
)
def test_auto_reply_that_says_the_person_is_away_is_out_of_office(body: str) -> None:
    raw = make_mail(body, subject="Re: question", extra=(("Auto-Submitted", "auto-replied"),))
    assert verdict(raw)[0] is AutomatedKind.OUT_OF_OFFICE


def test_bounce_evidence_wins_over_auto_submitted() -> None:
    # Mail systems mark their notices Auto-Submitted too (RFC 3834 §5, sisimai lhost-x6-01).
    raw = make_mail(
        "We had trouble delivering your message. Full details follow:\n\n"
        "The following recipients returned permanent errors: gone@example.org. Reason: SMTP Server refused "
        "to accept your message (DATA), with the following error message: [554 5.4.6 Hop count exceeded]\n",
        sender="",
        subject="There was an error sending your mail",
        extra=(("Auto-Submitted", "auto-replied"), ("Return-Path", "<>")),
    )
    assert bounce(raw).bounce_recipients == (BounceRecipient("gone@example.org", "5.4.6", True),)


# --- RFC 3464 delivery status ------------------------------------------------------------------------------------


def test_rfc3464_bounce() -> None:
    report = (
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "Final-Recipient: rfc822;<full@example.net>\r\nAction: delayed\r\nStatus: 4.2.2\r\n"
    )
    result = bounce(report_mail(report))
    assert result.bounce_recipients == (
        BounceRecipient("gone@example.org", "5.1.1", True),
        BounceRecipient("full@example.net", "4.2.2", False),
    )
    assert "3464" in result.reason


def test_recipients_without_blank_lines_between_them_are_all_found() -> None:
    report = (
        "Reporting-MTA: dns; mx.example.com\r\n"
        "Final-Recipient: rfc822; full@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    )
    assert bounce(report_mail(report)).bounce_recipients == (
        BounceRecipient("full@example.org", "5.2.2", True),
        BounceRecipient("gone@example.org", "5.1.1", True),
    )


def test_original_recipient_is_the_address_we_wrote_to() -> None:
    # The mailbox behind an alias is Final-Recipient; the helpdesk knows the customer by the address it used.
    report = (
        "Final-Recipient: rfc822; kb3543@mbox.example.fi\r\nOriginal-Recipient: rfc822;Jo.Doe@example.fi\r\n"
        "Action: delayed\r\nStatus: 4.3.0\r\n"
    )
    assert bounce(report_mail(report)).bounce_recipients == (BounceRecipient("Jo.Doe@example.fi", "4.3.0", False),)


def test_a_generic_status_gives_way_to_the_remote_servers_code() -> None:
    report = (
        "Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.0.0\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>... User Unknown\r\n"
    )
    assert bounce(report_mail(report)).bounce_recipients == (BounceRecipient("gone@example.org", "5.1.1", True),)


def test_failed_action_with_a_temporary_code_is_permanent() -> None:
    # The MTA gave up after days of retries: nothing more will happen, whatever the class of the last reply.
    report = "Final-Recipient: rfc822; slow@example.org\r\nAction: failed\r\nStatus: 4.4.7\r\n"
    assert bounce(report_mail(report)).bounce_recipients == (BounceRecipient("slow@example.org", "4.4.7", True),)


def test_nonstandard_action_and_smtp_status() -> None:
    report = "Final-Recipient: rfc822;big@example.be\r\nAction: failure\r\nStatus: 553 Exceeded maximum size\r\n"
    assert bounce(report_mail(report)).bounce_recipients == (BounceRecipient("big@example.be", "", True),)


@pytest.mark.parametrize(
    ("final", "returned_to", "want"),
    [
        ("x400; /RFC-822=pr(a)example.com/ADMD= /C=WW/", "pr@example.com", "pr@example.com"),
        ("x400; /S=jo/OU=zeus/O=hud/PRMD=UK.AC/ADMD= /C=GB/", "jo@zeus.hud.ac.uk", "jo@zeus.hud.ac.uk"),
    ],
)
def test_x400_recipient_resolves_to_the_internet_address(final: str, returned_to: str, want: str) -> None:
    report = f"Final-Recipient: {final}\r\nAction: failed\r\nStatus: 5.0.0\r\n"
    ctype, body = multipart(
        "report",
        part("text/plain", "Delivery Report (failure)"),
        part("message/delivery-status", report),
        part("message/rfc822", returned_original(returned_to)),
    )
    raw = make_mail(body, sender=DAEMON, content_type=f"{ctype}; report-type=delivery-status")
    assert [r.address for r in bounce(raw).bounce_recipients] == [want]


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded", "deliverable"])
def test_success_dsn_is_not_a_bounce(action: str) -> None:
    # "deliverable" is Postfix's answer to an address verification request (sisimai rfc3464-28).
    report = (
        f"Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; ok@example.org\r\nAction: {action}\r\n"
        "Status: 2.1.5\r\n"
    )
    result = detect_automated(parse(report_mail(report, subject="Mail Delivery Status Report")))
    assert result.kind is AutomatedKind.AUTO_REPLY
    assert result.bounce_recipients == ()


def test_delivery_status_pasted_into_the_text() -> None:
    # Amazon WorkMail and some Sendmail setups send the RFC 3464 fields as plain text.
    text = (
        "An error occurred while trying to deliver the mail to the following recipients:\n"
        "gone@example.jp\n\nTechnical report:\n\nReporting-MTA: dsn; a27-85.smtp-out.example.com\n\n"
        "Action: failed\nFinal-Recipient: rfc822; gone@example.jp\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.jp>... User Unknown\nStatus: 5.1.1\n"
    )
    raw = notice_mail(text, subject="Delivery Status Notification (Failure)")
    assert bounce(raw).bounce_recipients == (BounceRecipient("gone@example.jp", "5.1.1", True),)


def test_nested_delivery_status_is_not_this_bounces_recipient() -> None:
    # The returned message is itself an old delay warning: its delivery-status is history, not this bounce.
    old_warning = report_mail("Final-Recipient: rfc822; slow@example.de\r\nAction: delayed\r\nStatus: 4.4.7\r\n")
    report = "Final-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.0.0\r\n"
    ctype, body = multipart(
        "report",
        part("text/plain", "Delivery failed."),
        part("message/delivery-status", report),
        part("message/rfc822", old_warning),
        boundary="OUTER",
    )
    raw = make_mail(body, sender=DAEMON, content_type=f"{ctype}; report-type=delivery-status")
    assert [r.address for r in bounce(raw).bounce_recipients] == ["gone@example.com"]


def test_bounce_forwarded_inside_a_notice() -> None:
    # A gateway wraps the real DSN in its own notice that names nobody (sisimai lhost-x5-01, flufl dsn_15).
    inner = report_mail("Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n")
    ctype, body = multipart(
        "mixed",
        part(
            "text/plain",
            "The original message was received at Thu Oct 13 15:22:22 2015\n\n"
            "----- The following addresses had permanent delivery errors -----\n",
        ),
        part("message/rfc822", inner),
        boundary="OUTER",
    )
    raw = make_mail(body, sender=DAEMON, subject="Returned mail: User unknown", content_type=ctype)
    assert bounce(raw).bounce_recipients == (BounceRecipient("gone@example.org", "5.1.1", True),)


# --- Amazon SES --------------------------------------------------------------------------------------------------


def ses_notification(kind: str, recipients: list[dict[str, str]]) -> str:
    inner = {
        "notificationType": kind,
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": recipients},
        "mail": {"source": "support@example.com", "destination": ["gone@example.org"]},
    }
    if kind != "Bounce":
        del inner["bounce"]
    envelope = json.dumps({"Type": "Notification", "Message": json.dumps(inner)}, indent=2)
    # Lines longer than SMTP allows arrive folded, a newline inside a JSON string.
    folded = envelope.replace("support@example.com", "support@\n example.com", 1)
    return folded + "\n\n--\nIf you wish to stop receiving notifications from this topic, click the link below.\n"


def test_amazon_ses_bounce_notification() -> None:
    recipients = [{"emailAddress": "gone@example.org", "action": "failed", "status": "5.1.1", "diagnosticCode": "550"}]
    raw = make_mail(
        ses_notification("Bounce", recipients), sender="no-reply@sns.amazonaws.com", subject="AWS Notification Message"
    )
    assert bounce(raw).bounce_recipients == (BounceRecipient("gone@example.org", "5.1.1", True),)


@pytest.mark.parametrize("kind", ["Delivery", "Complaint"])
def test_amazon_ses_delivery_and_complaint_are_not_bounces(kind: str) -> None:
    raw = make_mail(ses_notification(kind, []), sender="no-reply@sns.amazonaws.com", subject="AWS Notification Message")
    assert verdict(raw)[0] is AutomatedKind.AUTO_REPLY


# --- Free-form notices -------------------------------------------------------------------------------------------


def test_qmail_bounce() -> None:
    body = (
        "Hi. This is the qmail-send program at mail.example.com.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<nobody@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n\nReturn-Path: <alice@example.com>\nTo: other@example.org\n"
    )
    result = bounce(notice_mail(body, sender="MAILER-DAEMON@mail.example.com", subject="failure notice"))
    assert result.bounce_recipients == (BounceRecipient("nobody@example.org", "5.1.1", True),)


def test_qmail_that_gave_up_on_a_temporary_error_is_permanent() -> None:
    body = (
        "Message from yahoo.com.\nUnable to deliver message to the following address(es).\n\n"
        "<list@example.com>:\nSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
        "I'm not going to try again; this message has been in the queue too long.\n"
    )
    result = bounce(notice_mail(body, sender="MAILER-DAEMON@yahoo.com", subject="failure delivery"))
    assert result.bounce_recipients == (BounceRecipient("list@example.com", "4.4.1", True),)


def test_exim_bounce() -> None:
    body = (
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  lost@example.org\n    SMTP error from remote mail server after RCPT TO:<lost@example.org>:\n"
        "    550 5.1.1 No such user\n\n------ This is a copy of the message, including all the headers. ------\n"
        "From: alice@example.com\n"
    )
    result = bounce(notice_mail(body))
    assert result.bounce_recipients == (BounceRecipient("lost@example.org", "5.1.1", True),)


def test_exim_recipient_without_domain_comes_from_x_failed_recipients() -> None:
    body = (
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  jo\n    SMTP error from remote mail server after MAIL FROM:<support@example.com> SIZE=1543:\n"
        "    host mx.example.jp [192.0.2.20]: 550 5.7.0 <support@example.com>... Please use your ISP's server.\n"
    )
    raw = notice_mail(body, extra=(("X-Failed-Recipients", "jo@example.ed.jp"),))
    assert bounce(raw).bounce_recipients == (BounceRecipient("jo@example.ed.jp", "5.7.0", True),)


def test_x_failed_recipients_beats_the_greeting_to_the_sender() -> None:
    # Google Groups greets the sender by address on the first line; the failed recipient is only in the header.
    body = (
        "support@example.com 様\n\n連絡しようとしたグループ（libsisimai）が存在しないか、投稿する権限がありません。\n"
    )
    raw = notice_mail(
        body,
        sender="Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        subject="Delivery Status Notification",
        extra=(("X-Failed-Recipients", "group@googlegroups.com"),),
    )
    assert [r.address for r in bounce(raw).bounce_recipients] == ["group@googlegroups.com"]


def test_postfix_alias_reports_the_address_written_to() -> None:
    body = (
        "This is the mail system at host mx.example.fi.\n\n"
        "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n"
        "<mbox.50@mx.example.fi> (expanded from\n    <Jo.Doe@example.fi>): Quota exceeded\n"
    )
    assert [r.address for r in bounce(notice_mail(body)).bounce_recipients] == ["Jo.Doe@example.fi"]


def test_sendmail_transcript_leaves_out_the_rejected_sender() -> None:
    body = (
        "   ----- Transcript of session follows -----\nWhile talking to mx.example.org:\n"
        ">>> MAIL From:<support@example.co.jp>\n"
        "<<< 501 <support@example.co.jp>... no access from mail server [192.0.2.55]\n"
        "554 <jo@example.org>... Remote protocol error\n"
        ">>> RCPT To:<ann@example.edu>\n<<< 550 <ann@example.edu>... User unknown\n"
    )
    raw = notice_mail(body, sender="MAILER-DAEMON@example.com", subject="Returned mail: User unknown")
    assert [r.address for r in bounce(raw).bounce_recipients] == ["jo@example.org", "ann@example.edu"]


def test_exchange_ndr_names_the_recipient_after_the_original_to() -> None:
    body = (
        "Your message\n\n  To:      list@example.com\n  Subject: Results\n  Sent:    Fri, 4 Oct 2002 17:10:56 -0400\n\n"
        "did not reach the following recipient(s):\n\n"
        "c=US;a= ;p=IKON;o=Nexus2;dda:SMTP=JO.DOE@EXAMPLE.COM; on Fri, 4 Oct 2002\n17:12:28 -0400\n"
        "    The recipient name is not recognized\n"
    )
    raw = notice_mail(body, sender="System Administrator <postmaster@example.com>", subject="Undeliverable: Results")
    result = bounce(raw)
    assert [r.address for r in result.bounce_recipients] == ["JO.DOE@EXAMPLE.COM"]  # case kept for display
    assert result.bounce_recipients[0].permanent


def test_every_recipient_of_a_multi_recipient_notice() -> None:
    body = (
        "This message was created automatically by mail delivery software.\n"
        "A message that you sent could not be delivered to one or more of its recipients.\n\n"
        "ann@example.co.jp Invalid Address, ERROR_CODE :550, ERROR_CODE :5.2.1 <ann@example.co.jp>... User Unknown\n"
        "bob@example.co.jp Invalid Address, ERROR_CODE :550, ERROR_CODE :5.2.2 <bob@example.co.jp>... Mailbox Full\n"
    )
    assert bounce(notice_mail(body)).bounce_recipients == (
        BounceRecipient("ann@example.co.jp", "5.2.1", True),
        BounceRecipient("bob@example.co.jp", "5.2.2", True),
    )


def test_prose_in_a_notice_does_not_add_recipients() -> None:
    body = (
        " --------Message not delivered to the following:\n\n jo.doe    No matches to nameserver query\n\n"
        " Try sending to the most explicit form of the name, e.g., if\n mike.fox@yale.example fails, try "
        "michael.j.fox@yale.example.\n\n --------Unsent Message below:\n\n"
        "Received: from mail.example.com\n\tby mr2.yale.example for <jo.doe@yale.example>; Tue, 26 Dec 2000\n"
    )
    raw = notice_mail(body, sender="MAILER-DAEMON@mr2.yale.example", subject="Returned mail - nameserver error")
    assert [r.address for r in bounce(raw).bounce_recipients] == ["jo.doe@yale.example"]


def test_screen_name_without_domain_belongs_to_the_bouncing_system() -> None:
    body = (
        "Your mail to the following recipients could not be delivered because they are not accepting mail from "
        "list@lists.example.com:\n\tscreenname\n"
    )
    raw = notice_mail(body, sender="Mail Delivery Subsystem <MAILER-DAEMON@AOL.com>", subject="Mail Delivery Problem")
    assert [r.address.lower() for r in bounce(raw).bounce_recipients] == ["screenname@aol.com"]


@pytest.mark.parametrize(
    ("text", "sender", "subject"),
    [
        # Verizon and Apache James: "Re:" subject, notice in the body.
        (
            "Error: Invalid user address\n\nError message below:\n550 - Requested action not taken: no such user\n\n"
            "Message details:\n  Subject: Test\n  MAIL FROM: support@example.com\n  RCPT TO: 5551234@vtext.example\n"
            "  From: support@example.com\n",
            "post_master@vtext.example",
            "Re:Test",
        ),
        # KDDI/au.
        (
            "Your mail sent on: Thu, 29 Apr 2013 00:00:00 +0900\n"
            "     Could not be delivered to: <5551234@vtext.example>\n"
            "     As their mailbox is full.\n",
            "no-reply@ezweb.example",
            "Mail",
        ),
        # DragonFly Mail Agent, no From at all.
        (
            "This is the DragonFly Mail Agent v0.13 at df.example.jp.\n\n"
            "There was an error delivering your mail to <5551234@vtext.example>.\n\n"
            "550 5.1.1 unknown user\n\nMessage headers follow.\n\nTo: <5551234@vtext.example>\n",
            "",
            "Mail delivery failed",
        ),
    ],
)
def test_vendor_notices(text: str, sender: str, subject: str) -> None:
    raw = make_mail(text, sender=sender, subject=subject) if sender else _without_from(text, subject)
    result = bounce(raw)
    assert [r.address for r in result.bounce_recipients] == ["5551234@vtext.example"]
    assert result.bounce_recipients[0].permanent


def _without_from(text: str, subject: str) -> bytes:
    """A mail with no From field at all, as DragonFly and some gateways send their notices."""
    raw = make_mail(text, subject=subject)
    assert b"From: Alice <alice@example.com>\r\n" in raw
    return raw.replace(b"From: Alice <alice@example.com>\r\n", b"")


def test_mailing_list_rejection() -> None:
    # fml, ezmlm and similar list managers refuse posts from non-members (sisimai lhost-fml-02).
    body = (
        "You are not a member of this mailing list <users@lists.example.org>.\n\n"
        "If you know the general guide of this list, please send mail with the mail body\n\n\tguide\n\n"
        "to the address\n\n\tusers-ctl@lists.example.org\n"
    )
    raw = make_mail(
        body, sender="users-admin@lists.example.org", subject="You support@example.com are not member (users ML)"
    )
    assert [r.address for r in bounce(raw).bounce_recipients] == ["users@lists.example.org"]


def test_moderation_hold_is_not_a_rejection() -> None:
    body = "Your mail to 'Users' is being held until the list moderator can review it for approval.\n"
    raw = make_mail(
        body, sender="users-owner@lists.example.org", subject="Your message to Users awaits moderator approval"
    )
    assert verdict(raw)[0] is not AutomatedKind.BOUNCE


def test_list_digest_that_mentions_rejected_mail_is_list_mail() -> None:
    body = (
        "Send Users mailing list submissions to users@lists.example.org\n\nToday's Topics:\n\n"
        + "".join(f"   {n}. Re: topic {n} (Ann)\n" for n in range(1, 8))
        + "   8. Re: my post was rejected (Bob)\n"
    )
    raw = make_mail(
        body,
        sender="users-request@lists.example.org",
        subject="Users Digest, Vol 3, Issue 7",
        extra=(("List-Id", "<users.lists.example.org>"),),
    )
    assert verdict(raw)[0] is AutomatedKind.LIST


def test_returned_message_to_is_the_last_resort() -> None:
    # Postfix with its delivery report missing: only the returned copy says where the mail went.
    ctype, body = multipart(
        "report",
        part("text/plain", "This is the mail system at host mx.example.net.\n\n--- Delivery report unavailable ---\n"),
        part("message/delivery-status", "Reporting-MTA: dns; mx.example.net\r\n"),
        part("message/rfc822", returned_original("lost@example.fr")),
    )
    raw = make_mail(
        body, sender=DAEMON, subject="Undelivered Mail", content_type=f"{ctype}; report-type=delivery-status"
    )
    assert [r.address for r in bounce(raw).bounce_recipients] == ["lost@example.fr"]


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "Delayed Mail (still being retried)",
            "This is the mail system at host x.\n\n<slow@example.org>: connection timed out\n",
        ),
        (
            "Delivery failure notification",
            "Your message with Subject: Bike could not be delivered to the following recipients:\n\n"
            "slow@example.org\n\n"
            "Delivery attempts will continue to be made for 5 day(s).\n",
        ),
    ],
)
def test_delay_notice_is_temporary(subject: str, body: str) -> None:
    result = bounce(notice_mail(body, sender="MAILER-DAEMON@x.example", subject=subject))
    assert result.bounce_recipients == (BounceRecipient("slow@example.org", "", False),)


def test_bounce_subject_from_an_unknown_sender_needs_a_notice_body() -> None:
    # Antivirus gateways and Exchange connectors send notices from addresses that look like anyone's.
    notice = (
        "--- Non-Delivery Report ---\nThe email below could not be delivered to the following user:\n\n"
        "<jo@example.com>\n"
    )
    raw = make_mail(notice, sender="admin@example.com", subject="Non-Delivery: Your message")
    assert [r.address for r in bounce(raw).bounce_recipients] == ["jo@example.com"]
