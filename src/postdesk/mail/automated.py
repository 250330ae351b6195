"""Verdicts on machine-sent mail: bounces (RFC 3464 and common free-form ones), auto-replies (RFC 3834), lists and bulk.

Bounce recipients come from the message/delivery-status part, which `parse` keeps as an
attachment with content type ``message/delivery-status`` (its RFC 3464 fields as text), so
`detect_automated` needs only the `ParsedMessage`. When a bounce has no such part
(qmail, old Exim, Exchange, free-form notices) the recipients are read from the text body.
"""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import re

from postdesk.mail.model import AutomatedKind, AutomatedVerdict, BounceRecipient, ParsedMessage

_BOUNCE_SENDER = re.compile(
    r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|maildaemon|mail\.daemon|bounce|bounces|"
    r"mdaemon|nobody-bounce|mail-delivery-subsystem|microsoftexchange[0-9a-f]*)(@|$)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|returned to sender|delivery status notification|delivery failure|"
    r"delivery has failed|delivery notification|failure notice|mail delivery failed|"
    r"could not send message|mail system error|non[- ]?delivery|nondeliverable|not delivered|"
    r"delivery problem|message not delivered|warning: could not send|delayed mail|delivery delayed|"
    r"message delayed|delivery report|mail could not be delivered|returned message|"
    r"unzustellbar|nicht zustellbar|non remis|no entregado|не доставлено|недоставлен|退信|系统退信",
    re.IGNORECASE,
)
# Signatures of free-form bounce bodies: qmail (qmail-send(8)), Exim, Postfix without DSN,
# Sendmail, Exchange/Office 365 NDRs.
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
    r"The following addresses had permanent fatal errors",
    re.IGNORECASE,
)
# The same phrases in lower case, searched case-sensitively in lowered text: a prefilter about
# eight times faster than the IGNORECASE search, which then runs only on the rare hits.
_BOUNCE_BODY_LOWER = re.compile(_BOUNCE_BODY.pattern.lower())


def _bounce_body(text: str) -> re.Match[str] | None:
    """The first free-form bounce phrase in the first 5000 characters of `text`, or None."""
    head = text[:5000]
    if _BOUNCE_BODY_LOWER.search(head.lower()) is None:
        return None
    return _BOUNCE_BODY.search(head)


_DELAY = re.compile(
    r"\bdelayed\b|will (?:continue|keep) (?:to )?(?:try|retry)|will retry|still trying|has not yet been delivered|"
    r"not yet been delivered|warning: could not send|temporar(?:y|ily)|will be retried|delivery delayed",
    re.IGNORECASE,
)
_OOO_SUBJECT = re.compile(
    r"out of (?:the )?office|\bOOO\b|\bOOF\b|abwesenheit|abwesend|\burlaub|on vacation|\bvacation\b|"
    r"\babsence\b|\babsent\b|congés|ausencia|fuera de (?:la )?oficina|fuori ufficio|"
    r"отпуск|нет в офисе|вне офиса|відпустк|不在办公室|休假|外出|خارج از دفتر|مرخصی",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response|antwort)|autoreply|autoresponse|"
    r"automatische antwort|réponse automatique|respuesta automática|risposta automatica|"
    r"resposta automática|automatisch antwoord|odpowiedź automatyczna|автоответ|"
    r"автоматический ответ|автоматична відповідь|自动回复|自動回覆|自動回复|自动答复|پاسخ خودکار)",
    re.IGNORECASE,
)
_OOO_BODY = re.compile(
    r"out of (?:the )?office|on (?:annual )?leave|on vacation|away from (?:the|my) office|"
    r"bin (?:bis|vom|ab|derzeit|zurzeit|nicht)|im urlaub|abwesend|en congés|absent|de vacaciones|"
    r"в отпуске|нахожусь в отпуске|у відпустці|休假|不在办公室|در مرخصی",
    re.IGNORECASE,
)
_VACATION_MAILER = re.compile(r"vacation|autorespond|auto-?reply|out of office|autoresponder", re.IGNORECASE)

_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_ENHANCED = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_SMTP_CODE = re.compile(r"(?<![\d.])([45]\d\d)(?![\d.])")
# Where a free-form bounce starts quoting the returned mail; addresses after it are not recipients.
_RETURNED_COPY = re.compile(
    r"^(?:-+ ?(?:original|returned|undelivered|the) message|-+ ?this is a copy|"
    r"-+ ?(?:message|original) (?:header|headers) follows|-+ ?below this line|"
    r"--- ?Below this line is a copy|Received: from|Return-Path:|Original message headers:|"
    r"-{3,} ?Original Message)",
    re.IGNORECASE | re.MULTILINE,
)


def detect_automated(msg: ParsedMessage) -> AutomatedVerdict:
    """Decide whether `msg` was sent by a machine, and which kind; `reason` names the signal that fired."""
    bounce = _detect_bounce(msg)
    if bounce is not None:
        return bounce

    content_type = (msg.header("Content-Type") or "").lower()
    if "multipart/report" in content_type and "feedback-report" in content_type:
        # RFC 5965 abuse reports are machine-made but not bounces.
        return AutomatedVerdict(AutomatedKind.AUTO_REPLY, "feedback-report (RFC 5965)")

    subject = msg.subject
    is_ooo = bool(_OOO_SUBJECT.search(subject))

    def auto(reason: str) -> AutomatedVerdict:
        if is_ooo or (_OOO_BODY.search(msg.text[:2000]) and _AUTO_SUBJECT.search(subject)):
            return AutomatedVerdict(AutomatedKind.OUT_OF_OFFICE, reason)
        return AutomatedVerdict(AutomatedKind.AUTO_REPLY, reason)

    auto_submitted = (msg.header("Auto-Submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        # RFC 3834 §5.1: any value other than "no" marks a machine-sent message.
        return auto(f"Auto-Submitted: {auto_submitted}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation"):
        value = msg.header(name)
        if value is not None and value.strip().lower() not in ("no", "false", "0"):
            return auto(f"{name} header")
    suppress = (msg.header("X-Auto-Response-Suppress") or "").lower()
    if suppress and any(word in suppress for word in ("all", "oof", "autoreply")) and _AUTO_SUBJECT.search(subject):
        return auto(f"X-Auto-Response-Suppress: {suppress}")
    precedence = (msg.header("Precedence") or "").strip().lower()
    if precedence == "auto_reply":
        return auto("Precedence: auto_reply")
    mailer = msg.header("X-Mailer") or ""
    if _VACATION_MAILER.search(mailer):
        return auto(f"X-Mailer: {mailer[:60]}")
    if _AUTO_SUBJECT.search(subject):
        return auto("auto-reply subject")
    if is_ooo and (precedence in ("bulk", "junk") or suppress):
        return AutomatedVerdict(AutomatedKind.OUT_OF_OFFICE, "out-of-office subject")

    if msg.header("List-Id") is not None:
        return AutomatedVerdict(AutomatedKind.LIST, "List-Id header")
    if precedence in ("bulk", "junk"):
        return AutomatedVerdict(AutomatedKind.BULK, f"Precedence: {precedence}")
    if precedence == "list":
        return AutomatedVerdict(AutomatedKind.LIST, "Precedence: list")
    if msg.header("List-Unsubscribe") is not None:
        return AutomatedVerdict(AutomatedKind.LIST, "List-Unsubscribe header")
    if is_ooo and subject.lower().startswith(("out of office", "abwesenheit")):
        return AutomatedVerdict(AutomatedKind.OUT_OF_OFFICE, "out-of-office subject")
    return AutomatedVerdict(None)


def _detect_bounce(msg: ParsedMessage) -> AutomatedVerdict | None:
    content_type = (msg.header("Content-Type") or "").lower()
    dsn_texts = [
        a.content.decode("utf-8", "replace")  # our own UTF-8 serialisation, see parse._delivery_status
        for a in msg.attachments
        if a.content_type == "message/delivery-status"
    ]
    if dsn_texts:
        recipients, actions = _parse_dsn("\n\n".join(dsn_texts))
        if actions and actions <= {"delivered", "relayed", "expanded"}:
            # A success DSN (RFC 3464 §2.3.3) is automated but nothing bounced.
            return AutomatedVerdict(AutomatedKind.AUTO_REPLY, f"delivery-status: {', '.join(sorted(actions))}")
        if not recipients:
            recipients = _recipients_from_text(msg)
        return AutomatedVerdict(AutomatedKind.BOUNCE, "message/delivery-status (RFC 3464)", tuple(recipients))
    if "multipart/report" in content_type and "delivery-status" in content_type:
        return AutomatedVerdict(
            AutomatedKind.BOUNCE, "multipart/report; report-type=delivery-status", tuple(_recipients_from_text(msg))
        )

    sender = msg.from_.key if msg.from_ else ""
    reason = ""
    if _BOUNCE_SENDER.match(sender):
        reason = f"bounce sender {sender.split('@')[0]}"
    elif _BOUNCE_SUBJECT.search(msg.subject) and (
        _bounce_body(msg.text) or not sender or "daemon" in sender or "postmaster" in sender
    ):
        reason = "bounce subject"
    elif body := _bounce_body(msg.text):
        reason = f"bounce text: {body.group(0)[:50]}"
    elif _BOUNCE_SUBJECT.search(msg.subject) and not msg.header("In-Reply-To") and not msg.header("References"):
        reason = "bounce subject"
    if not reason:
        return None
    if _BOUNCE_SENDER.match(sender) and _AUTO_SUBJECT.search(msg.subject) and not _BOUNCE_BODY.search(msg.text):
        return None
    return AutomatedVerdict(AutomatedKind.BOUNCE, reason, tuple(_recipients_from_text(msg)))


def _field(block: str, name: str) -> str:
    match = re.search(rf"^{name}\s*:\s*(.*(?:\n[ \t].*)*)", block, re.IGNORECASE | re.MULTILINE)
    return " ".join(match.group(1).split()) if match else ""


def _parse_dsn(text: str) -> tuple[list[BounceRecipient], set[str]]:
    """Per-recipient fields of RFC 3464 §2.3: Final-Recipient (or Original-Recipient), Action, Status."""
    recipients: list[BounceRecipient] = []
    actions: set[str] = set()
    seen: set[str] = set()
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        final = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
        if not final:
            continue
        address = final.split(";", 1)[-1].strip().strip("<>").strip()
        found = _ADDRESS.search(address)
        address = found.group(0) if found else address
        action = _field(block, "Action").lower().split()[0] if _field(block, "Action") else ""
        if action:
            actions.add(action)
        if action in ("delivered", "relayed", "expanded"):
            continue
        status_field = _field(block, "Status")
        status_match = _ENHANCED.search(status_field)
        status = status_match.group(1) if status_match else ""
        if not status:
            diagnostic = _ENHANCED.search(_field(block, "Diagnostic-Code"))
            status = diagnostic.group(1) if diagnostic else ""
        permanent = status.startswith("5") if status else action == "failed"
        if action == "delayed":
            permanent = False
        if address and address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(BounceRecipient(address=address, status=status, permanent=permanent))
    return recipients, actions


def _recipients_from_text(msg: ParsedMessage) -> list[BounceRecipient]:
    """Free-form bounces: addresses in the notice (before the returned copy) with nearby status codes."""
    text = msg.text.replace("\r\n", "\n")
    cut = _RETURNED_COPY.search(text)
    if cut and cut.start() > 0:
        text = text[: cut.start()]
    text = text[:20000]
    excluded = {a.key for a in (*msg.to, *msg.cc, *msg.reply_to)}
    if msg.from_:
        excluded.add(msg.from_.key)
    subject_delay = bool(_DELAY.search(msg.subject))
    body_delay = bool(_DELAY.search(text))
    lines = text.split("\n")
    recipients: list[BounceRecipient] = []
    seen: set[str] = set()
    for index, line in enumerate(lines):
        for match in _ADDRESS.finditer(line):
            address = match.group(0).strip(".-")
            key = address.lower()
            local = key.split("@", 1)[0]
            if key in seen or key in excluded or _BOUNCE_SENDER.match(local) or local in ("root", "abuse"):
                continue
            window = "\n".join(lines[index : index + 4])
            enhanced = _ENHANCED.search(window)
            smtp = _SMTP_CODE.search(window)
            status = enhanced.group(1) if enhanced else ""
            if status:
                permanent = status.startswith("5")
            elif smtp:
                permanent = smtp.group(1).startswith("5")
            else:
                permanent = not (subject_delay or body_delay)
            seen.add(key)
            recipients.append(BounceRecipient(address=address, status=status, permanent=permanent))
    return recipients
