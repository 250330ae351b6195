"""Verdicts on machine-sent mail: bounces (RFC 3464 and common free-form ones), auto-replies (RFC 3834), lists and bulk.

A bounce is recognised by its structure (a message/delivery-status part, an Amazon SES notification,
X-Failed-Recipients), by a mail-system sender with a failure subject or text, or by the opening of a known
notice. Its recipients come from the most trustworthy place the mail offers, in this order: the RFC 3464 fields
(`parse` keeps a message/delivery-status part as an attachment, its fields as UTF-8 text; some systems paste them
into the body), the SES JSON, the addresses a free-form notice puts where failed recipients go
(`bounce_formats.read_notice`), X-Failed-Recipients, recipients written without a domain, any other address in the
notice, a bounce forwarded inside the mail, and last the To: of the returned original message. Bounce evidence wins
over auto-reply headers: many mail systems mark their bounces Auto-Submitted (sisimai lhost-x6-01).

A person who forwards or answers a bounce writes human mail: a notice quoted with ">" or below a forward or reply
separator does not count, nor does a bounce attached to their mail, nor a subject such as "Order 12 not delivered"
from a customer.
"""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import re
from collections.abc import Callable

from postdesk.mail.bounce_formats import (
    ADDRESS,
    ROBOT_LOCAL,
    NoticeReading,
    clean_address,
    read_delivery_status,
    read_notice,
    read_ses_notification,
    same_local,
)
from postdesk.mail.model import Attachment, AutomatedKind, AutomatedVerdict, BounceRecipient, ParsedMessage
from postdesk.mail.parse import parse

_BOUNCE_SENDER = re.compile(
    r"^(mailer-daemon|postmaster|post_master|mail-daemon|mailerdaemon|maildaemon|mail\.daemon|bounce|bounces|"
    r"mdaemon|nobody-bounce|mail[-._]?delivery[-._]?(?:sub)?system|microsoftexchange[0-9a-f]*)(@|$)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|returned to sender|delivery status notification|delivery failure|failure delivery|"
    r"delivery has failed|delivery notification|failure notice|mail delivery failed|delivery failed|failed mail|"
    r"could not send message|mail system error|non[- ]?delivery|nondeliverable|not delivered|delivery warning|"
    r"delivery problem|message not delivered|warning: could not send|delayed mail|delivery delayed|"
    r"message delayed|delivery report|could not be delivered|returned message|error sending your (?:mail|message)|"
    r"not yet been delivered|mail failed|"
    r"unzustellbar|nicht zustellbar|non remis|no entregado|не доставлено|недоставлен|退信|系统退信|メールエラー",
    re.IGNORECASE,
)
# Mail-system senders that never write anything but notices; postmaster@ and bounce@ are people or lists too.
_DAEMON_SENDER = re.compile(
    r"^(?:mailer-daemon|mail-daemon|mailerdaemon|maildaemon|mail\.daemon|mdaemon|"
    r"mail[-._]?delivery[-._]?(?:sub)?system)(?:@|$)",
    re.IGNORECASE,
)
_NOTICE_WORDS = re.compile(
    r"deliver|fail|error|returned|bounce|reject|unknown|invalid|refused|quota|not found|recipient", re.IGNORECASE
)
# Subjects that open with a bounce phrase: from a sender that is not obviously a mail system, they still need the
# body to read like a failure notice (_FAILURE_TEXT), so "Undeliverable parcel" from a customer stays human.
_BOUNCE_SUBJECT_START = re.compile(
    r"^\s*(?:undeliver|returned mail|non[- ]?delivery|delivery (?:status notification|failure|failed|notification|"
    r"problem|report|warning)|failure (?:notice|delivery)|mail delivery (?:failed|failure|problem)|"
    r"(?:mail|message) could not be delivered|message not delivered|failed mail|delayed mail|warning: could not send)",
    re.IGNORECASE,
)
_FAILURE_TEXT = re.compile(
    r"could not be delivered|undeliverable|delivery (?:to the following|has failed|failed)|failed recipients?|"
    r"(?:user|recipient|mailbox|address) (?:unknown|not found|unavailable)|no such (?:user|mailbox)|"
    r"\b[45]\d\d[ -]#?[45]\.\d{1,3}\.\d{1,3}|smtp error",
    re.IGNORECASE,
)
# Where a person's forward or reply starts quoting: a bounce phrase below it is quoted material.
_QUOTE_SEPARATOR = re.compile(
    r"^(?:-{2,} ?(?:Forwarded message|Original Message|Weitergeleitete Nachricht|Ursprüngliche Nachricht|"
    r"Message transféré|Message d'origine|Mensaje (?:reenviado|original)|Пересылаемое сообщение|Исходное сообщение)|"
    r"Begin forwarded message|On .{5,200} wrote:|Am .{5,200} schrieb|Le .{5,200} a écrit|From: .+|Von: .+|De: .+)",
    re.IGNORECASE | re.MULTILINE,
)
# Openings of free-form bounce notices: qmail (qmail-send(8)), Exim, Postfix without DSN, Sendmail, Exchange and
# Office 365 NDRs, Gmail, KDDI, DragonFly, Amazon WorkMail and others.
_BOUNCE_BODY = re.compile(
    r"This is the qmail-send program|"
    r"This message was created automatically by mail delivery software|"
    r"This is the mail system at host|"
    r"The original message was received at|"
    r"could not be delivered to one or more recipients|"
    r"Delivery to the following recipients? (?:failed|has been delayed)|"
    r"Your message (?:did not reach|could not be delivered|wasn't delivered|was not delivered)|"
    r"I'm sorry to have to inform you that your message could not|"
    r"A message that you sent could not be delivered|"
    r"Delivery has failed to these recipients|"
    r"permanent fatal errors|"
    r"Message delivery has been delayed|"
    r"Unable to deliver message to the following|"
    r"The following addresses had permanent fatal errors|"
    r"There was an error delivering your mail to|"
    r"We had trouble delivering your message|"
    r"The following recipients returned permanent errors|"
    r"An error occurred while trying to deliver the mail to the following|"
    r"-{3,} ?Failed Recipients ?-{3,}|"
    r"Could not be delivered to:",
    re.IGNORECASE,
)
_BOUNCE_BODY_WORDS = (
    "deliver", "qmail", "mail system", "original message was received", "did not reach", "sorry to have to inform",
    "permanent fatal", "permanent errors", "failed recipients",
)  # fmt: skip
_DELAY = re.compile(
    r"\bdelayed\b|will (?:continue|keep) (?:to )?(?:try|retry)|will (?:be )?retr(?:y|ied)|"
    r"still (?:trying|being retried)|"
    r"has not yet been delivered|not yet been delivered|warning: could not send|delivery warning|postponed|"
    r"attempts will continue|continue to try|this is a warning only|advisory[- ]only|warning message only",
    re.IGNORECASE,
)
_GIVE_UP = re.compile(
    r"permanent error|permanent fatal|given up|giving up|not going to try again|failed permanently|"
    r"retry timeout exceeded|could not be delivered for \d+ days",
    re.IGNORECASE,
)
# Where a free-form bounce starts quoting the returned mail; addresses after it are not recipients.
_RETURNED_COPY = re.compile(
    r"^(?:-+ ?(?:original|returned|undelivered|the) message|-+ ?this is a copy|"
    r"-+ ?(?:message|original) (?:header|headers) follows|-+ ?below this line|"
    r"--- ?Below this line is a copy|Received: from|Return-Path:|Original message headers:|"
    r"-{3,} ?Original Message|-* ?The header of the original message|-* ?START OF RETURNED MESSAGE|"
    r"Original mail as follows|Original message (?:as received )?(?:is as follows|follows)|"
    r"-* ?Original message follows|Message headers follow|The first \d+ lines of your original message|"
    r"-* ?Unsent Message (?:below|follows)|Original Message:|Content-Type: (?:message/rfc822|text/rfc822-headers))",
    re.IGNORECASE | re.MULTILINE,
)
# Mailing-list managers (fml, Mailman, ezmlm) that refuse a post write from the list's own robot address.
_LIST_ROBOT = re.compile(r"^(?:owner-[^@]+|[^@]+-(?:admin|owner|request|bounces?))@", re.IGNORECASE)
_LIST_REJECTION = re.compile(
    r"\bnot (?:a )?member\b|\bnon-?member\b|loop alert|loop back warning|duplicated message-id|security alert|"
    r"\brejected\b",
    re.IGNORECASE,
)
_LIST_HELD = re.compile(r"\bheld\b|awaits? (?:the )?moderator|moderator approval|\bpending\b", re.IGNORECASE)
_ANGLE_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_RECEIVED_FOR = re.compile(r"\bfor\s+<?([^\s<>;]+@[^\s<>;]+)>?", re.IGNORECASE)
_TO_FIELD = re.compile(r"^[ \t>]*(To|Cc)[ \t]*:[ \t]*(.*(?:\n[ \t]+\S.*)*)", re.IGNORECASE | re.MULTILINE)

_OOO_SUBJECT = re.compile(
    r"out of (?:the )?office|\bOOO\b|\bOOF\b|abwesenheit|abwesend|\burlaub|on vacation|\bvacation\b|"
    r"away (?:until|till|from)|"
    r"\babsence\b|\babsent\b|congés|ausencia|fuera de (?:la )?oficina|fuori ufficio|"
    r"отпуск|нет в офисе|вне офиса|відпустк|不在办公室|休假|外出|خارج از دفتر|مرخصی",
    re.IGNORECASE,
)
# Auto-reply subject forms, as clients write them: the phrase, then a colon (Outlook "Automatic reply: <subject>"),
# a dash, a bracket or nothing. "Automatic reply feature broken" from a customer is not one.
_AUTO_SUBJECT = re.compile(
    r"^\s*\[?(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response|antwort)|autoreply|autoresponse|"
    r"automatische antwort|réponse automatique|respuesta automática|risposta automatica|"
    r"resposta automática|automatisch antwoord|odpowiedź automatyczna|автоответ|"
    r"автоматический ответ|автоматична відповідь|自动回复|自動回覆|自動回复|自动答复|پاسخ خودکار)"
    r"(?:\]|\s*(?:[:：\-–(]|$))",
    re.IGNORECASE,
)
# Out-of-office subjects a person would not write about something else ("Out of office hours support?" is a question).
_OOO_SUBJECT_ALONE = re.compile(
    r"^\s*(?:out of (?:the )?office|abwesenheit(?:snotiz)?|absence du bureau|fuera de la oficina|"
    r"нет в офисе|不在办公室)(?:\s*auto-?reply)?"
    r"\s*(?:[:：\-–(]|until\b|till\b|bis\b|jusqu|hasta\b|$)",
    re.IGNORECASE,
)
_OOO_BODY = re.compile(
    r"out of (?:the )?office|on (?:annual )?leave|on vacation|away from (?:the|my) office|"
    r"bin (?:bis|vom|ab|derzeit|zurzeit|nicht)|im urlaub|abwesend|en congés|absent|de vacaciones|\btravel+ing\b|"
    r"(?:limited|intermittent) access to|"
    r"в отпуске|нахожусь в отпуске|у відпустці|休假|不在办公室|در مرخصی",
    re.IGNORECASE,
)
_VACATION_MAILER = re.compile(r"vacation|autorespond|auto-?reply|out of office|autoresponder", re.IGNORECASE)
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation", "X-AutoReply-From")
# Values of vendor headers that name an automatic reply: Yahoo's X-Autogenerated, X-POST-MessageClass.
_AUTO_REPLY_VALUES = (("X-Autogenerated", "reply"), ("X-POST-MessageClass", "autoresponder"))
_EXCHANGE_MARKS = (
    "X-Auto-Response-Suppress", "X-MS-Exchange-Generated-Message-Source", "X-MS-Exchange-Inbox-Rules-Loop",
)  # fmt: skip
# RFC 2919/2369 list headers and the list managers' own (Mailman X-BeenThere, ezmlm Mailing-List, fml X-ML-Name).
_LIST_HEADERS = (
    "List-Id", "List-Post", "List-Help", "List-Subscribe", "List-Owner", "List-Archive",
    "X-Mailing-List", "Mailing-List", "X-BeenThere", "X-ML-Name",
)  # fmt: skip


def detect_automated(msg: ParsedMessage) -> AutomatedVerdict:
    """Decide whether `msg` was sent by a machine, and which kind; `reason` names the signal that fired."""
    headers = _first_headers(msg)
    bounce = _detect_bounce(msg, headers)
    if bounce is not None:
        return bounce

    content_type = headers.get("content-type", "").lower()
    if "multipart/report" in content_type and "feedback-report" in content_type:
        # RFC 5965 abuse reports are machine-made but not bounces.
        return AutomatedVerdict(AutomatedKind.AUTO_REPLY, "feedback-report (RFC 5965)")

    subject = msg.subject
    ooo_subject = bool(_OOO_SUBJECT.search(subject))
    auto_subject = bool(_AUTO_SUBJECT.search(subject))

    def auto(reason: str) -> AutomatedVerdict:
        if ooo_subject or _OOO_BODY.search(msg.text[:1500]):
            return AutomatedVerdict(AutomatedKind.OUT_OF_OFFICE, reason)
        return AutomatedVerdict(AutomatedKind.AUTO_REPLY, reason)

    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        # RFC 3834 §5.1: any value other than "no" marks a machine-sent message.
        return auto(f"Auto-Submitted: {auto_submitted}")
    for name in _AUTO_REPLY_HEADERS:
        value = headers.get(name.lower())
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return auto(f"{name} header")
    for name, word in _AUTO_REPLY_VALUES:
        if word in headers.get(name.lower(), "").lower():
            return auto(f"{name} header")
    precedence = headers.get("precedence", "").strip().lower()
    if precedence == "auto_reply":
        return auto("Precedence: auto_reply")
    mailer = headers.get("x-mailer", "")
    if _VACATION_MAILER.search(mailer):
        return auto(f"X-Mailer: {mailer[:60]}")
    # Exchange's own marks: its automatic replies carry them (sisimai rfc3834-02, -04), but so does mail that an
    # inbox rule forwards or redirects, a customer's mail included. They back a subject up; alone they decide nothing.
    exchange_mark = next(
        (f"{name}: {headers[name.lower()][:40]}" for name in _EXCHANGE_MARKS if headers.get(name.lower())), ""
    )
    if auto_subject:
        return auto(exchange_mark or "auto-reply subject")
    if ooo_subject and (precedence in ("bulk", "junk") or exchange_mark):
        return AutomatedVerdict(AutomatedKind.OUT_OF_OFFICE, f"out-of-office subject, {exchange_mark or precedence}")
    if _OOO_SUBJECT_ALONE.search(subject):
        return AutomatedVerdict(AutomatedKind.OUT_OF_OFFICE, "out-of-office subject")

    for name in _LIST_HEADERS:
        if name.lower() in headers:
            return AutomatedVerdict(AutomatedKind.LIST, f"{name} header")
    if precedence in ("bulk", "junk"):
        return AutomatedVerdict(AutomatedKind.BULK, f"Precedence: {precedence}")
    if precedence == "list":
        return AutomatedVerdict(AutomatedKind.LIST, "Precedence: list")
    if "list-unsubscribe" in headers:
        # RFC 2369 list header on its own: newsletters and other one-to-many mail.
        return AutomatedVerdict(AutomatedKind.LIST, "List-Unsubscribe header")
    return AutomatedVerdict(None)


def _first_headers(msg: ParsedMessage) -> dict[str, str]:
    """The first value of each header, by lower-case name: one pass instead of a scan per question."""
    headers: dict[str, str] = {}
    for name, value in msg.headers:
        headers.setdefault(name.lower(), value)
    return headers


def _detect_bounce(msg: ParsedMessage, headers: dict[str, str], *, nested: bool = False) -> AutomatedVerdict | None:
    dsn_texts = [
        a.content.decode("utf-8", "replace")  # our own UTF-8 serialisation, see parse._delivery_status
        for a in _own_parts(msg)
        if a.content_type == "message/delivery-status"
    ]
    if dsn_texts:
        report = read_delivery_status("\n\n".join(dsn_texts), lambda: _known_addresses(msg, headers))
        if report.is_success_only:
            # A success DSN (RFC 3464 §2.3.3) is automated but nothing bounced.
            return AutomatedVerdict(AutomatedKind.AUTO_REPLY, f"delivery-status: {', '.join(sorted(report.actions))}")
        recipients = report.recipients or _recipients_without_report(msg, headers, nested=nested)
        return AutomatedVerdict(AutomatedKind.BOUNCE, "message/delivery-status (RFC 3464)", recipients)

    if msg.text.lstrip().startswith("{"):
        ses = read_ses_notification(msg.text)
        if ses is not None and ses.kind == "Bounce":
            return AutomatedVerdict(AutomatedKind.BOUNCE, "Amazon SES bounce notification", ses.recipients)
        if ses is not None:
            return AutomatedVerdict(AutomatedKind.AUTO_REPLY, f"Amazon SES {ses.kind.lower()} notification")

    sender = msg.from_.key if msg.from_ else ""
    if _is_list_rejection(msg, sender):
        recipients = _list_rejection_recipients(msg.text) or _recipients_without_report(msg, headers, nested=nested)
        return AutomatedVerdict(AutomatedKind.BOUNCE, "mailing-list rejection", recipients)
    reason = _bounce_evidence(msg, headers, sender)
    if not reason:
        return None
    return AutomatedVerdict(AutomatedKind.BOUNCE, reason, _recipients_without_report(msg, headers, nested=nested))


def _own_parts(msg: ParsedMessage) -> list[Attachment]:
    """The attachments of `msg` itself, without attached messages and the files inside them.

    A delivery-status inside an attached mail is about that older mail (flufl dsn_16), and a person
    forwarding a bounce as an attachment has not bounced anything.
    """
    return [a for a in msg.attachments if not a.enclosed_in and a.content_type != "message/rfc822"]


def _bounce_body(text: str) -> re.Match[str] | None:
    """The first free-form bounce phrase on an unquoted line in the first 3000 characters of `text`, or None.

    Notices open with it: in the corpora it never starts later than character 1700.
    """
    head = text[:3000]
    lowered = head.lower()
    # Every phrase holds one of these words: plain substring tests cost a fraction of the regex on the human mail
    # that makes up nearly all traffic.
    if not any(word in lowered for word in _BOUNCE_BODY_WORDS):
        return None
    for match in _BOUNCE_BODY.finditer(head):
        line_start = head.rfind("\n", 0, match.start()) + 1
        if not head[line_start : match.start()].lstrip().startswith(">"):
            return match
    return None


def _bounce_evidence(msg: ParsedMessage, headers: dict[str, str], sender: str) -> str:
    """Why `msg` is a bounce without a delivery-status part, or "" when it is not one."""
    content_type = headers.get("content-type", "").lower()
    if "multipart/report" in content_type and "delivery-status" in content_type:
        return "multipart/report; report-type=delivery-status"
    if headers.get("x-failed-recipients"):
        return "X-Failed-Recipients header"
    subject = msg.subject
    robot_sender = bool(_BOUNCE_SENDER.match(sender))
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    return_path = headers.get("return-path", "").strip().strip("<>").lower()
    machine_sender = (
        robot_sender
        or not sender
        or ("return-path" in headers and (not return_path or bool(_BOUNCE_SENDER.match(return_path))))
        or bool(auto_submitted and not auto_submitted.startswith("no"))
    )
    body = _bounce_body(msg.text)
    if body is not None and not machine_sender and _QUOTE_SEPARATOR.search(msg.text, 0, body.start()):
        body = None  # a person forwarding or answering a bounce: the notice is quoted below their own text
    bounce_subject = bool(_BOUNCE_SUBJECT.search(subject))
    if robot_sender and (body is not None or not _AUTO_SUBJECT.search(subject)):
        # postmaster@ also writes ordinary mail, and any of them may have an out-of-office: unless it is a mail
        # daemon, the mail must read like a notice too.
        if body is not None or bounce_subject or _DAEMON_SENDER.match(sender) or _has_returned_copy(msg):
            return f"bounce sender {sender.split('@')[0]}"
        if _NOTICE_WORDS.search(msg.text[:3000]):
            return f"bounce sender {sender.split('@')[0]}"
    if body is not None:
        return f"bounce text: {body.group(0)[:50]}"
    if not bounce_subject:
        return ""
    if machine_sender:
        return "bounce subject"
    head = msg.text[:3000]
    if (
        _BOUNCE_SUBJECT_START.match(subject)
        and _FAILURE_TEXT.search(head)
        and (_has_returned_copy(msg) or ADDRESS.search(head))
    ):
        return "bounce subject and failure text"
    return ""


def _has_returned_copy(msg: ParsedMessage) -> bool:
    return any(a.content_type in ("message/rfc822", "text/rfc822-headers") for a in msg.attachments)


def _is_list_rejection(msg: ParsedMessage, sender: str) -> bool:
    """A list manager refusing a post: "You are not a member", "Loop Alert" (fml, sisimai lhost-fml-*)."""
    if not _LIST_ROBOT.match(sender):
        return False
    # The refusal is the subject or the opening lines: a digest from list-request@ may discuss rejected mail below.
    opening = "\n".join([line for line in msg.text[:1500].split("\n") if line.strip()][:3])
    if _LIST_HELD.search(msg.subject) or _LIST_HELD.search(opening):
        return False
    return bool(_LIST_REJECTION.search(msg.subject) or _LIST_REJECTION.search(opening))


def _list_rejection_recipients(text: str) -> tuple[BounceRecipient, ...]:
    """The list address named on the refusal line ("You are not a member of this mailing list <list@example.org>")."""
    found: dict[str, BounceRecipient] = {}
    for line in _notice(text).split("\n")[:30]:
        if _LIST_REJECTION.search(line):
            for address in _ANGLE_ADDRESS.findall(line):
                found.setdefault(address.lower(), BounceRecipient(address, "", True))
    return tuple(found.values())


def _notice(text: str) -> str:
    """The notice part of a free-form bounce: the text before the returned copy of the original message."""
    text = text.replace("\r\n", "\n")
    cut = _RETURNED_COPY.search(text, 0, 30000)
    return text[: cut.start()] if cut and cut.start() > 0 else text[:20000]


def _own_addresses(msg: ParsedMessage) -> frozenset[str]:
    own = {a.key for a in (*msg.to, *msg.cc, *msg.reply_to)}
    if msg.from_:
        own.add(msg.from_.key)
    return frozenset(own)


def _recipients_without_report(
    msg: ParsedMessage, headers: dict[str, str], *, nested: bool
) -> tuple[BounceRecipient, ...]:
    """Bounced recipients when no message/delivery-status part names them, from the best source the mail has."""
    text = msg.text.replace("\r\n", "\n")

    def known() -> list[str]:  # computed only when a reader needs it
        return _known_addresses(msg, headers)

    if "recipient" in text.lower():
        report = read_delivery_status(text[:50000], known, inline=True)
        if report.recipients:
            return report.recipients
    notice = _notice(text)
    delay = bool(_DELAY.search(msg.subject) or _DELAY.search(notice)) and not _GIVE_UP.search(notice)
    own = _own_addresses(msg)
    reading = read_notice(notice, own, delay=delay)
    if not reading.strong:
        # Some notices come as a text attachment, the body holding the returned mail (sisimai lhost-x1-02).
        for attachment in _own_parts(msg):
            if attachment.content_type.startswith("text/plain") and attachment.size < 50000:
                attached = read_notice(_notice(attachment.content.decode("utf-8", "replace")), own, delay=delay)
                if attached.strong:
                    reading = attached
                    break
    if reading.strong:
        return reading.strong
    failed_header = _failed_recipients_header(headers, reading)
    if failed_header:
        return failed_header
    if reading.bare_locals:
        resolved = _resolve_bare_locals(reading.bare_locals, msg, known)
        if resolved:
            return resolved
    if reading.weak:
        # Any address in the notice: those the returned message was addressed to, if it names some of them.
        returned = {r.address.lower() for r in _returned_recipients(msg, delay, everywhere=True)}
        return tuple(r for r in reading.weak if r.address.lower() in returned) or reading.weak
    if not nested:
        for attachment in msg.attachments:
            if attachment.content_type == "message/rfc822":
                inner = parse(attachment.content)
                verdict = _detect_bounce(inner, _first_headers(inner), nested=True)
                if verdict is not None and verdict.kind is AutomatedKind.BOUNCE and verdict.bounce_recipients:
                    return verdict.bounce_recipients  # a bounce passed on inside another (sisimai lhost-x5-01)
    return _returned_recipients(msg, delay)


def _failed_recipients_header(headers: dict[str, str], reading: NoticeReading) -> tuple[BounceRecipient, ...]:
    """Exim's and Gmail's X-Failed-Recipients, each with the status the notice gives near it."""
    found: list[BounceRecipient] = []
    for match in ADDRESS.finditer(headers.get("x-failed-recipients", "")):
        address = clean_address(match.group(0))
        near = reading.status_of(address)
        found.append(BounceRecipient(address, near.status if near else "", near.permanent if near else True))
    return tuple(found)


def _resolve_bare_locals(
    locals_: tuple[BounceRecipient, ...], msg: ParsedMessage, known: Callable[[], list[str]]
) -> tuple[BounceRecipient, ...]:
    """Complete "jo" to the address the mail gives elsewhere, or to the bouncing system's domain (AOL screen names)."""
    sender_domain = msg.from_.key.rpartition("@")[2] if msg.from_ and _BOUNCE_SENDER.match(msg.from_.key) else ""
    resolved: list[BounceRecipient] = []
    for bare in locals_:
        match = next((address for address in known() if same_local(address, bare.address)), "")
        if not match and sender_domain and "." in sender_domain:
            match = f"{bare.address}@{sender_domain}"
        if match:
            resolved.append(BounceRecipient(match, bare.status, bare.permanent))
    return tuple(resolved)


def _returned_headers(msg: ParsedMessage) -> list[str]:
    """Header blocks of the returned original: attached message/rfc822 or text/rfc822-headers, or the quoted copy."""
    blocks = [
        a.content[:20000].decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n", 1)[0]
        for a in msg.attachments
        if a.content_type in ("message/rfc822", "text/rfc822-headers")
    ]
    text = msg.text.replace("\r\n", "\n")
    cut = _RETURNED_COPY.search(text, 0, 30000)
    if cut:
        blocks.append(text[cut.start() : cut.start() + 20000])
    return blocks


def _returned_recipients(msg: ParsedMessage, delay: bool, *, everywhere: bool = False) -> tuple[BounceRecipient, ...]:
    """Last resort: whom the returned original message was addressed to (its To and Cc).

    With `everywhere`, also the "for <jo@example.com>" of its Received fields, from every returned header block.
    """
    found: dict[str, str] = {}
    for block in _returned_headers(msg):
        # The first To and Cc only: a quoted copy may go on into older mails with their own.
        first: dict[str, str] = {}
        for match in _TO_FIELD.finditer(block):
            first.setdefault(match.group(1).lower(), match.group(2))
        fields = list(first.values())
        if everywhere:
            fields += _RECEIVED_FOR.findall(block)
        for field in fields:
            for match in ADDRESS.finditer(field):
                address = clean_address(match.group(0))
                if address:
                    found.setdefault(address.lower(), address)
        if found and not everywhere:
            break
    return tuple(BounceRecipient(a, "", not delay) for a in found.values())


def _known_addresses(msg: ParsedMessage, headers: dict[str, str]) -> list[str]:
    """Every address the mail shows: for completing a recipient written without a domain, or as an X.400 name."""
    sources = [headers.get("x-failed-recipients", ""), msg.text[:50000], *_returned_headers(msg)]
    found: dict[str, str] = {}
    for source in sources:
        for match in ADDRESS.finditer(source):
            address = clean_address(match.group(0))
            local = address.rpartition("@")[0]
            if address and not ROBOT_LOCAL.match(local):
                found.setdefault(address.lower(), address)
    return list(found.values())
