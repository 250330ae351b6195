"""Readers for the ways a bounce names its failed recipients: RFC 3464 fields, Amazon SES JSON and free-form notices.

Each reader takes text and returns what it found; deciding whether a mail is a bounce at all, and which reader to
trust first, is `postdesk.mail.automated`'s job.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from postdesk.mail.model import BounceRecipient

# No "/" in the local part: X.400 addresses ("/S=jo/O=example/") are resolved separately, and paths such as
# "/home/jo/.forward/jo@example.com" in Exim notices must yield only the address.
ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+=?^_`{|}~.\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
ENHANCED = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
SMTP_CODE = re.compile(r"(?<![\d.])([45]\d\d)(?![\d.])")

# Local parts of the mail system's own addresses: named in notices as whom to ask, never as a failed recipient.
ROBOT_LOCAL = re.compile(
    r"^(?:mailer-daemon|postmaster|post_master|mail-daemon|mailerdaemon|maildaemon|mail\.daemon|mdaemon|root|abuse|"
    r"mail-delivery-subsystem|microsoftexchange[0-9a-f]*)$",
    re.IGNORECASE,
)

# RFC 3464 §2.3.3: these actions mean the message went on; "deliverable" is Postfix's address-verification report.
SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})

# Exchange and X.400 gateways prefix the real address with its type ("dda:SMTP=jo@example.com").
_TYPE_PREFIX = re.compile(r"^(?:[A-Za-z]+:)?(?:smtp|rfc-?822|internet)=", re.IGNORECASE)
_X400_RFC822 = re.compile(r"/RFC-?822=([^/]+)", re.IGNORECASE)
# RFC 2156 (MIXER): how characters that X.400 cannot carry are written inside an RFC-822 attribute.
_RFC2156 = {"(a)": "@", "(p)": "%", "(b)": "!", "(q)": '"', "(u)": "_", "(l)": "(", "(r)": ")"}


def clean_address(raw: str) -> str:
    """`raw` as found in a notice, without quotes, brackets and X.400/Exchange type prefixes; "" if nothing is left."""
    address = raw.strip().strip("<>\"'`").lstrip(".")
    address = _TYPE_PREFIX.sub("", address)
    return address if "@" in address and not address.startswith("@") else ""


def same_local(address: str, local: str) -> bool:
    return address.rpartition("@")[0].lower() == local.lower()


def resolve_x400(value: str, known: Iterable[str]) -> str:
    """The Internet address behind an X.400 O/R address such as "/S=jo/OU=mx/O=example/PRMD=ORG/", or `value`.

    An RFC-822 attribute carries the address itself; otherwise the surname (or given name and surname) must match
    the local part of an address the mail gives elsewhere (the notice text, the returned message) whose domain
    contains an OU or O value. Nothing is made up: without such an address the X.400 form stays.
    """
    embedded = _X400_RFC822.search(value)
    if embedded:
        address = embedded.group(1).strip()
        for code, char in _RFC2156.items():
            address = address.replace(code, char).replace(code.upper(), char)
        return address
    attributes = {}
    for item in value.strip().strip("/").split("/"):
        name, _, attr_value = item.partition("=")
        attributes[name.strip().upper()] = attr_value.strip()
    surname = attributes.get("S", "")
    locals_ = [surname, f"{attributes.get('G', '')}.{surname}"] if attributes.get("G") else [surname]
    places = [attributes[k].lower() for k in ("OU", "OU1", "OU2", "O") if attributes.get(k)]
    if surname and places:
        for address in known:
            domain = address.rpartition("@")[2].lower()
            if any(same_local(address, local) for local in locals_) and any(place in domain for place in places):
                return address
    return value.strip()


def pick_status(*texts: str) -> str:
    """The first enhanced status code of class 4 or 5; a generic X.0.0 gives way to a specific one of its class.

    A Status field of 5.0.0 next to a diagnostic of "550 5.1.1 user unknown" is the MTA not knowing better; the
    remote server's own code says more (lhost-courier-01, lhost-exim-43).
    """
    codes: list[str] = [m.group(1) for text in texts for m in ENHANCED.finditer(text) if m.group(1)[0] in "45"]
    if not codes:
        return ""
    first = codes[0]
    if first.endswith(".0.0"):
        for code in codes[1:]:
            if code[0] == first[0] and not code.endswith(".0.0"):
                return code
    return first


def _decide_permanent(status: str, smtp: str, action: str, delay: bool) -> bool:
    """Permanent means the mail system gave up: RFC 3464 "failed", or a 5xx code; a delay warning is temporary."""
    if action == "delayed":
        return False
    if action == "failed":
        return True
    code_class = status[:1] or smtp[:1]
    if code_class == "5":
        return True
    return not delay


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What the RFC 3464 per-recipient fields say: failed or delayed recipients, and how many were delivered."""

    recipients: tuple[BounceRecipient, ...]
    delivered: int
    actions: frozenset[str]

    @property
    def is_success_only(self) -> bool:
        return self.delivered > 0 and not self.recipients


def _field_groups(text: str) -> list[dict[str, str]]:
    """RFC 3464 fields in groups, one per recipient (and one per message), unfolded, names in lower case.

    A group ends at a blank line, or where a second Final-Recipient or Original-Recipient starts the next recipient:
    some mail systems leave out the blank lines between recipients (sisimai lhost-aol-03).
    """
    groups: list[dict[str, str]] = []
    current: dict[str, str] = {}
    name = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                groups.append(current)
            current, name = {}, ""
            continue
        if line[0] in " \t" and name:
            current[name] += " " + line.strip()
            continue
        field_name, colon, value = line.partition(":")
        if not colon or " " in field_name.strip():
            name = ""
            continue
        name = field_name.strip().lower()
        if name in ("final-recipient", "original-recipient") and name in current:
            groups.append(current)
            current = {}
        if name in current:
            name = ""  # a repeated field keeps its first value
            continue
        current[name] = value.strip()
    if current:
        groups.append(current)
    return groups


def _typed_address(value: str) -> tuple[str, str]:
    """("rfc822", "jo@example.com") from "rfc822; <jo@example.com>"; a value without a type counts as rfc822."""
    kind, separator, address = value.partition(";")
    if not separator:
        kind, address = "rfc822", value
    return kind.strip().lower(), address.strip().strip("<>").strip()


def _recipient_address(original: str, final: str, known: Callable[[], list[str]]) -> str:
    """Original-Recipient when it is a plain address (the one our side wrote to), else Final-Recipient resolved."""
    kind, address = _typed_address(original)
    cleaned = clean_address(address) if kind == "rfc822" else ""
    if cleaned and ADDRESS.fullmatch(cleaned) and not cleaned.upper().startswith("IMCEA"):
        return cleaned
    kind, address = _typed_address(final or original)
    if kind.startswith("x400") or address.startswith("/"):
        return resolve_x400(address, known())
    found = ADDRESS.search(address)
    return clean_address(found.group(0)) if found else address


def read_delivery_status(text: str, known: Callable[[], list[str]], *, inline: bool = False) -> DeliveryReport:
    """Per-recipient blocks of RFC 3464 §2.3 (Final-Recipient, Original-Recipient, Action, Status, Diagnostic-Code).

    `inline` is for fields pasted into a text body (mail systems that send no message/delivery-status part): there
    a block must also carry Action or Status, so a stray "Original-Recipient" line is not taken for a report.
    `known` lists addresses found elsewhere in the mail, to resolve X.400 recipients; called only when needed.
    """
    recipients: list[BounceRecipient] = []
    seen: set[str] = set()
    delivered = 0
    actions: set[str] = set()
    for group in _field_groups(text):
        final = group.get("final-recipient", "")
        original = group.get("original-recipient", "")
        if not final and not original:
            continue
        action_words = group.get("action", "").lower().split()
        action = action_words[0] if action_words else ""
        if action in ("failure", "expired"):  # seen in the wild for "failed" (flufl dsn_03, sisimai lhost-sendgrid-03)
            action = "failed"
        status_field = group.get("status", "")
        if inline and not action and not status_field:
            continue
        if action:
            actions.add(action)
        diagnostic = group.get("diagnostic-code", "")
        status = pick_status(status_field, diagnostic)
        if action in SUCCESS_ACTIONS or (not action and status_field.startswith("2.")):
            delivered += 1
            continue
        smtp = SMTP_CODE.search(status_field) or SMTP_CODE.search(diagnostic)
        permanent = _decide_permanent(status, smtp.group(1) if smtp else "", action, delay=True)
        address = _recipient_address(original, final, known)
        if address and address.lower() not in seen:
            seen.add(address.lower())
            recipients.append(BounceRecipient(address=address, status=status, permanent=permanent))
    return DeliveryReport(tuple(recipients), delivered, frozenset(actions))


@dataclass(frozen=True, slots=True)
class SesNotification:
    """An Amazon SES notification (sent as JSON, often wrapped in an SNS envelope): its type and bounced recipients."""

    kind: str  # "Bounce", "Complaint", "Delivery", ...
    recipients: tuple[BounceRecipient, ...]


def _json_object(text: str) -> dict[str, object] | None:
    try:
        # strict=False: SES lines longer than SMTP allows arrive folded, with a newline inside a JSON string.
        value, _ = json.JSONDecoder(strict=False).raw_decode(text.lstrip())
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def read_ses_notification(text: str) -> SesNotification | None:
    """The SES notification at the start of `text`, or None. Text after the JSON (SNS's unsubscribe footer) is fine."""
    document = _json_object(text)
    if document is None:
        return None
    inner = document.get("Message")
    if isinstance(inner, str):  # SNS envelope: the SES notification is a JSON string inside
        document = _json_object(inner) or {}
    kind = document.get("notificationType") or document.get("eventType")
    if not isinstance(kind, str):
        return None
    bounce = document.get("bounce")
    if kind != "Bounce" or not isinstance(bounce, dict):
        return SesNotification(kind, ())
    bounce_type = str(bounce.get("bounceType", ""))
    recipients: list[BounceRecipient] = []
    items = bounce.get("bouncedRecipients")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("emailAddress"), str):
            continue
        diagnostic = str(item.get("diagnosticCode", ""))
        status = pick_status(str(item.get("status", "")), diagnostic)
        action = str(item.get("action", "")).lower()
        smtp = SMTP_CODE.search(diagnostic)
        permanent = _decide_permanent(status, smtp.group(1) if smtp else "", action, delay=bounce_type != "Permanent")
        recipients.append(BounceRecipient(clean_address(item["emailAddress"]), status, permanent))
    return SesNotification(kind, tuple(recipients))


# --- Free-form notices --------------------------------------------------------------------------------------------

# Text before an address that names the recipient: "RCPT TO:<", "Recipient address: ", "could not be delivered to: ",
# "The following recipients returned permanent errors: ", Exim's "generated by ".
_ANCHOR_PREFIX = re.compile(
    r"(?:\brcpt to|\brecipients?\b(?:[^:<>@]{0,40}:)?|\baddress(?:es|\(es\))?\b(?:[^:<>@]{0,30}:)?|\buser ?id|"
    r"\bmailbox\b(?:[^:<>@]{0,20}:)?|"
    r"\bdelivered to|\bdeliver(?:ing)? (?:your |the )?(?:mail|message|e-?mail) to|\baddressed to|"
    r"\b(?:your|the) (?:mail|message|e-?mail) to|\bgenerated by|\bundeliverable\s+to|\bfailed for|\bfailed to|"
    r"\busers?\s*:|\bfailed\b[^:<>@]{0,30}:)"
    r"\s*[:=]?\s*[\"'(<\[]?\s*$",
    re.IGNORECASE,
)
# An address that starts its line, after an optional 4xx/5xx reply ("550 5.1.1 <jo@example.com>... User unknown"),
# a transcript marker or a bullet: qmail, Exim, Postfix and Sendmail put each failed recipient there.
_LINE_START_PREFIX = re.compile(
    r"^\s*(?:(?:<<<|>>>)\s*)?(?:[-*•]\s+|\d+\.\s+)?(?:[45]\d\d[ -]+(?:#?[45]\.\d{1,3}\.\d{1,3}\s+)?)?[\"'(<\[]*\s*$"
)
# A line that starts with a 4xx/5xx reply: an address in it is the one the server refused
# ("552 Quota violation for jo@example.com"), unless it is the sender (left out as one of `own`, or by "from").
_CODE_LINE = re.compile(r"^\s*(?:<<<\s*)?[45]\d\d[ -]")
# Text before an address that makes it the sender or a message id, never a failed recipient.
_SENDER_PREFIX = re.compile(
    r"(?:\bmail from|envelope-from|\bfrom|\bsender|(?<!generated )\bby|\bid|\breturn-path)\s*[:=]?\s*[\"'(<\[]?\s*$",
    re.IGNORECASE,
)
# "<jo@example.com> (expanded from <list@example.com>)", Exim's "(ultimately generated from list@example.com)":
# the address after it is the one our side wrote to.
_ALIAS_PREFIX = re.compile(r"(?:expanded from|generated from)\s*:?\s*<?\s*$", re.IGNORECASE)
_HEADER_NAME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*:")
_RECIPIENT_FIELDS = frozenset({
    "recipient", "recipients", "final-recipient", "original-recipient", "x-failed-recipients", "failed-recipients",
    "address", "addressee", "userid", "mailbox",
})  # fmt: skip
_COPY_FIELDS = frozenset({"to", "cc", "bcc"})
# A line that introduces the list of failed recipients, for recipients written without a domain
# (Exim "  jo", Sendmail "jo... User unknown", AOL's screen names).
_HEADLINE = re.compile(
    r"(?:following|these) (?:e-?mail )?(?:address(?:es|\(es\))?|recipients?(?:\(s\))?|users?|destinations?)|"
    r"address(?:es|\(es\))? failed|not delivered to the following|did not reach the following",
    re.IGNORECASE,
)
_BARE_LOCAL = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._%+\-]{0,63})(?:\s*$|\s{2,}|\.\.\.)")
_BLOCK_LINES = 6
_MAX_CANDIDATES = 200  # real notices name a handful; this bounds the work on a crafted one


@dataclass(frozen=True, slots=True)
class _Candidate:
    address: str
    line: int
    strong: bool


@dataclass(frozen=True, slots=True)
class NoticeReading:
    """Addresses a free-form notice names: `strong` where a failed recipient is written, `weak` anywhere else."""

    strong: tuple[BounceRecipient, ...]
    weak: tuple[BounceRecipient, ...]
    bare_locals: tuple[BounceRecipient, ...]  # recipients written without a domain; `address` is the local part

    def status_of(self, address: str) -> BounceRecipient | None:
        """The status this notice gives near `address` (or its local part), for recipients found elsewhere."""
        wanted = address.lower()
        local = wanted.rpartition("@")[0]
        for recipient in (*self.strong, *self.weak, *self.bare_locals):
            if recipient.address.lower() in (wanted, local):
                return recipient
        return None


def _is_quoted(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith(">") and not stripped.startswith(">>>")


def _continues_prose(lines: list[str], index: int, found: list[_Candidate]) -> bool:
    """Whether line `index` carries on a sentence from the line above ("... e.g., if" / "jo@example.com fails, try").

    Not when a recipient was found just above: that line is the previous recipient's reason ("... User unknown").
    """
    above = lines[index - 1].rstrip() if index > 0 else ""
    if not above or not ((above[-1].isascii() and above[-1].isalnum()) or above[-1] == ","):
        return False
    if _HEADLINE.search(above) or _ANCHOR_PREFIX.search(above):
        return False  # "Your message could not be delivered to" / "jo@example.com"
    for candidate in reversed(found):
        if index - candidate.line > _BLOCK_LINES:
            break
        if candidate.strong:
            return False
    return True


def _candidates(lines: list[str], own: frozenset[str]) -> list[_Candidate]:
    found: list[_Candidate] = []
    senders: set[str] = set()
    for index, line in enumerate(lines):
        if "@" not in line or _is_quoted(line):
            continue
        if len(found) >= _MAX_CANDIDATES:
            break
        header = _HEADER_NAME.match(line)
        header_name = header.group(1).lower() if header else ""
        code_line = bool(_CODE_LINE.match(line))
        for match in ADDRESS.finditer(line):
            address = clean_address(match.group(0))
            if not address or len(found) >= _MAX_CANDIDATES:
                continue
            # The words just before the address decide; a bound keeps lines of thousands of addresses linear.
            prefix = line[max(0, match.start() - 200) : match.start()]
            alias = _ALIAS_PREFIX.search(prefix) or (
                index > 0 and not prefix.strip(" \t<(\"'") and _ALIAS_PREFIX.search(lines[index - 1])
            )
            if alias:
                if found and found[-1].strong and index - found[-1].line <= 2:
                    found[-1] = _Candidate(address, found[-1].line, True)
                continue
            if _SENDER_PREFIX.search(prefix):
                senders.add(address.lower())
                continue
            robot = bool(ROBOT_LOCAL.match(address.rpartition("@")[0]))
            if _ANCHOR_PREFIX.search(prefix) or _TYPE_PREFIX.match(match.group(0)):
                if not robot:
                    found.append(_Candidate(address, index, True))
            elif header_name and header_name not in _RECIPIENT_FIELDS:
                if header_name in _COPY_FIELDS and not robot and address.lower() not in own:
                    found.append(_Candidate(address, index, False))
            elif header_name:
                if not robot:
                    found.append(_Candidate(address, index, True))
            elif match.start() < 200 and _LINE_START_PREFIX.match(prefix):
                found.append(_Candidate(address, index, code_line or not _continues_prose(lines, index, found)))
            elif not robot and address.lower() not in own:
                found.append(_Candidate(address, index, code_line))
    # An address the notice names as the sender ("MAIL From:<jo@example.com>") is not a failed recipient where it
    # comes back in a reply line ("<<< 501 <jo@example.com>... no access", sisimai lhost-v5sendmail-07).
    return [c for c in found if c.address.lower() not in senders]


def _block(lines: list[str], start: int, stop: int) -> str:
    """The lines that explain the recipient on line `start`: up to the next recipient, at most six lines."""
    return "\n".join(lines[start : min(stop, start + _BLOCK_LINES)])[:2000]


def read_notice(notice: str, own: frozenset[str], *, delay: bool) -> NoticeReading:
    """Failed recipients of a free-form notice, each with the status code written in the lines below it.

    `own` holds the bounce's own addresses (lower case): a notice names its addressee in a greeting or in the remote
    server's complaint about the sender, so such an address counts only where an error code follows it and no
    other recipient is named. `delay` says the notice is a warning, not a failure.
    """
    lines = notice.split("\n")
    candidates = _candidates(lines, own)
    if any(c.strong and c.address.lower() not in own for c in candidates):
        candidates = [c for c in candidates if c.address.lower() not in own]
    strong_lines = sorted({c.line for c in candidates if c.strong})
    readings: dict[bool, dict[str, BounceRecipient]] = {True: {}, False: {}}
    for candidate in candidates:
        after = bisect.bisect_right(strong_lines, candidate.line)
        block = _block(lines, candidate.line, strong_lines[after] if after < len(strong_lines) else len(lines))
        status = pick_status(block)
        smtp = SMTP_CODE.search(block)
        key = candidate.address.lower()
        if candidate.strong and key in own and not (status or smtp):
            continue
        recipient = BounceRecipient(
            candidate.address, status, _decide_permanent(status, smtp.group(1) if smtp else "", "", delay)
        )
        bucket = readings[candidate.strong]
        earlier = bucket.get(key)
        if earlier is None:
            bucket[key] = recipient
        elif not earlier.status and status:
            bucket[key] = BounceRecipient(earlier.address, status, recipient.permanent)
    strong = list(readings[True].values())
    if len(strong) == 1 and not strong[0].status:
        # One recipient and its code further down (Gmail's "The error that the other server returned was: 550 5.1.1").
        status = pick_status(notice)
        if status:
            strong[0] = BounceRecipient(strong[0].address, status, _decide_permanent(status, "", "", delay))
    weak = [r for key, r in readings[False].items() if key not in readings[True]]
    return NoticeReading(tuple(strong), tuple(weak), _bare_locals(lines, delay) if not strong else ())


def _bare_locals(lines: list[str], delay: bool) -> tuple[BounceRecipient, ...]:
    found: list[BounceRecipient] = []
    for index, line in enumerate(lines):
        if not _HEADLINE.search(line):
            continue
        for offset, following in enumerate(lines[index + 1 : index + 1 + _BLOCK_LINES], start=index + 1):
            if not following.strip():
                continue
            match = _BARE_LOCAL.match(following)
            if match is None or "@" in following:
                break
            block = _block(lines, offset, len(lines))
            status = pick_status(block)
            smtp = SMTP_CODE.search(block)
            permanent = _decide_permanent(status, smtp.group(1) if smtp else "", "", delay)
            found.append(BounceRecipient(match.group(1), status, permanent))
        if found:
            break
    return tuple(found)
