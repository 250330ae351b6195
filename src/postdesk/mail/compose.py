"""Compose the MIME bytes of a reply or forward we send: plain dataclasses in, bytes and the envelope out.

Header injection is impossible by construction, not by hope. The standard library's header parser
decodes RFC 2047 encoded-words in values it is given, and Python 3.11 then writes what they decode
to, CR LF included: a display name `=?utf-8?q?x=0D=0ABcc:_evil@x?=` assigned to an `EmailMessage`
comes out as a real `Bcc:` line. So the headers here never go through that parser: each value is
written by this module, from text that was neutralised first:

- names and subjects: control characters (CR, LF, NUL, …, U+2028) become spaces; a value that is
  not plain ASCII, or that contains `=?`, is written entirely as encoded-words, so what a client
  decodes is exactly the text we were given (decoding is not recursive, RFC 2047 §6.1);
- addresses: only `dot-atom@domain` is accepted (anything else is a `ComposeError`); the domain
  is converted to ASCII with IDNA, so `ann@bücher.de` is sent as `ann@xn--bcher-kva.de`;
- Message-IDs: our own must be a plain `id-left@id-right`; a reference taken from a customer's
  mail that is not one is dropped.

As a last guard the finished bytes are parsed again and must hold exactly the headers written.
The body (text/plain UTF-8, attachments) is built by `email.message.EmailMessage` with a 7-bit
policy, so the mail needs no 8BITMIME from the relay.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime

# 7bit: non-ASCII text is sent quoted-printable or base64, so any relay takes it (no 8BITMIME needed).
_POLICY = email.policy.SMTP.clone(cte_type="7bit", max_line_length=78)
_LINE = 78
_MAX_LINE = 998  # RFC 5322 §2.1.1
# C0 and C1 controls, DEL and the Unicode line and paragraph separators: never inside a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_SPACES = re.compile(r" {2,}")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
# A display name written bare must be atext words separated by single spaces (RFC 5322 §3.2.5 phrase).
_BARE_PHRASE = re.compile(rf"{_ATEXT}+(?: {_ATEXT}+)*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MSG_ID = re.compile(r"[\x21-\x7e]+")
_MAX_MSG_ID = 250
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_BODY_PART_HEADERS = frozenset(
    {"content-type", "content-transfer-encoding", "content-disposition", "mime-version", "content-id"}
)


class ComposeError(ValueError):
    """The mail cannot be written as given (an address that is not one, a bad Message-ID); says which."""


@dataclass(frozen=True, slots=True)
class Party:
    """A name and an address; the name may be empty and may be any Unicode text."""

    address: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class FileToSend:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ForwardedMail:
    """The mail a forward quotes below the agent's text."""

    sender: Party
    date: datetime | None
    subject: str
    to: tuple[Party, ...]
    cc: tuple[Party, ...]
    text: str


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    sender: Party  # From: the mailbox's name and address
    reply_to: str  # local+TOKEN@domain, so the answer finds its conversation
    to: tuple[Party, ...]
    subject: str
    date: datetime
    message_id: str  # without angle brackets, as Message rows store it
    text: str
    cc: tuple[Party, ...] = ()
    bcc: tuple[Party, ...] = ()  # envelope only: never written into the headers
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    attachments: tuple[FileToSend, ...] = ()
    forwarded: ForwardedMail | None = None
    # Sent by Postdesk itself: "auto-replied" (an acknowledgement, a rule's template reply) or "auto-generated"
    # (a notification to an agent), so that well-behaved auto-responders do not answer it (RFC 3834).
    auto_submitted: str = ""


AUTO_SUBMITTED_VALUES = frozenset({"auto-replied", "auto-generated"})


@dataclass(frozen=True, slots=True)
class ComposedMail:
    raw: bytes
    envelope_from: str  # ASCII
    recipients: tuple[str, ...]  # ASCII envelope recipients: To, Cc and Bcc, each once


# --- addresses ------------------------------------------------------------------------------------


def ascii_domain(domain: str) -> str:
    """The domain in ASCII (IDNA for non-ASCII labels), lowercased; `ComposeError` when it is not a host name."""
    domain = domain.strip().rstrip(".")
    try:
        ascii_form = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ComposeError(f"{domain!r} is not a domain name") from None
    labels = ascii_form.split(".")
    if len(ascii_form) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ComposeError(f"{domain!r} is not a domain name")
    return ascii_form


def ascii_address(address: str) -> str:
    """`local@domain` with the domain in ASCII; `ComposeError` for anything that is not a plain address.

    Only a dot-atom local part is accepted: quoted local parts and non-ASCII ones (which would need
    SMTPUTF8 from every relay on the way) are refused rather than guessed at.
    """
    if _CONTROL.search(address):
        raise ComposeError(f"{address!r} contains a line break or control character")
    local, at, domain = address.strip().rpartition("@")
    # "=?" is legal in a local part, but no real address has it and a careless reader might decode it.
    if not at or not _DOT_ATOM.fullmatch(local) or len(local) > 64 or "=?" in local:
        raise ComposeError(f"{address!r} is not an address Postdesk can send to")
    return f"{local}@{ascii_domain(domain)}"


def reply_address(mailbox_address: str, token: str) -> str:
    """The conversation's reply address `local+TOKEN@domain` (RFC 5233 subaddress) for `mailbox_address`."""
    local, _at, domain = ascii_address(mailbox_address).rpartition("@")
    if not re.fullmatch(r"[a-z0-9]{8,32}", token):
        raise ComposeError(f"not a reply token: {token!r}")
    return f"{local.split('+', 1)[0]}+{token}@{domain}"


# --- header values --------------------------------------------------------------------------------


def neutralise(text: str) -> str:
    """One line of text safe in a header: control characters become spaces, runs of spaces one.

    Other Unicode spaces (U+3000 in a Japanese subject) are kept; lone surrogates, which no charset
    can encode, become "?".
    """
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip(" ")


def _encoded_words(text: str, *, header_name: str = "") -> str:
    """`text` entirely as RFC 2047 encoded-words (Python picks B or Q), folded with CRLF SP."""
    return Header(text, "utf-8", header_name=header_name).encode(linesep="\r\n", maxlinelen=76)


def _needs_encoding(text: str) -> bool:
    # "=?" might be taken for an encoded-word by the reader; very long words cannot be folded plainly.
    return not text.isascii() or "=?" in text or any(len(word) > 70 for word in text.split(" "))


def _unstructured(text: str, *, header_name: str) -> str:
    """A Subject-like value: neutralised, then written plainly (folded at spaces) or as encoded-words."""
    text = neutralise(text)
    if _needs_encoding(text):
        return _encoded_words(text, header_name=header_name)
    return _fold(text.split(" "), first=len(header_name) + 2, separator=" ")


def _phrase(name: str) -> str:
    """A display name: bare when it is plain words, quoted when it has specials, else encoded-words."""
    name = neutralise(name)
    if not name:
        return ""
    if _needs_encoding(name):
        return _encoded_words(name)
    if _BARE_PHRASE.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mailbox(party: Party) -> str:
    address = ascii_address(party.address)
    phrase = _phrase(party.name)
    return f"{phrase} <{address}>" if phrase else address


def _fold(tokens: Sequence[str], *, first: int, separator: str) -> str:
    """Join tokens with `separator`, breaking the line (CRLF SP) before a token that would pass 78 characters.

    A token may itself be folded already (encoded-words); the column then continues from its last line.
    """
    out = ""
    column = first
    for index, token in enumerate(tokens):
        lead = token.split("\r\n", 1)[0]
        if index and column + len(separator) + len(lead) > _LINE:
            out += separator.rstrip() + "\r\n "
            column = 1
        elif index:
            out += separator
            column += len(separator)
        out += token
        column = len(token.rsplit("\r\n", 1)[1]) if "\r\n" in token else column + len(token)
    return out


def _address_list(parties: Iterable[Party], *, header_name: str) -> str:
    return _fold([_mailbox(p) for p in parties], first=len(header_name) + 2, separator=", ")


def clean_message_id(value: str) -> str | None:
    """A Message-ID without brackets if it can be written safely in a header, else None."""
    value = value.strip().strip("<>").strip()
    if not value or len(value) > _MAX_MSG_ID or not _MSG_ID.fullmatch(value) or any(c in value for c in "<>"):
        return None
    return value


def _id_list(ids: Iterable[str], *, header_name: str) -> str:
    cleaned = list(dict.fromkeys(c for c in (clean_message_id(i) for i in ids) if c))
    return _fold([f"<{c}>" for c in cleaned], first=len(header_name) + 2, separator=" ")


# --- body -----------------------------------------------------------------------------------------


def _safe_filename(filename: str) -> str:
    # No paths, no controls, and no "=?" that a reader could take for an encoded-word.
    name = neutralise(filename).replace("/", "_").replace("\\", "_").replace("=?", "=_").strip(" .")
    return name[:200] or "attachment"


def _forward_block(forwarded: ForwardedMail) -> str:
    def line(label: str, parties: Sequence[Party]) -> str:
        shown = ", ".join(f"{neutralise(p.name)} <{p.address}>" if p.name.strip() else p.address for p in parties)
        return f"{label}: {shown}\n" if shown else ""

    date = f"Date: {format_datetime(forwarded.date)}\n" if forwarded.date else ""
    return (
        "---------- Forwarded message ----------\n"
        + line("From", [forwarded.sender])
        + date
        + f"Subject: {neutralise(forwarded.subject)}\n"
        + line("To", forwarded.to)
        + line("Cc", forwarded.cc)
        + "\n"
        + forwarded.text.rstrip()
        + "\n"
    )


def body_text(mail: OutgoingMail) -> str:
    """The text/plain body: what the agent wrote (signature included by the caller), then any forwarded mail."""
    text = mail.text.replace("\r\n", "\n").replace("\r", "\n").rstrip() + "\n"
    if mail.forwarded is not None:
        text += "\n" + _forward_block(mail.forwarded)
    return text


def _body(mail: OutgoingMail) -> bytes:
    part = EmailMessage(policy=_POLICY)
    part.set_content(body_text(mail), charset="utf-8")
    for file in mail.attachments:
        content_type = file.content_type if _CONTENT_TYPE.fullmatch(file.content_type) else "application/octet-stream"
        maintype, subtype = content_type.lower().split("/", 1)
        if maintype in ("multipart", "message"):
            maintype, subtype = "application", "octet-stream"  # sent as opaque bytes, never re-parsed as MIME
        part.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=_safe_filename(file.filename))
    return part.as_bytes(policy=_POLICY)


# --- the mail -------------------------------------------------------------------------------------


def compose(mail: OutgoingMail) -> ComposedMail:
    """The mail as bytes (CRLF line ends, 7-bit) and its envelope; `ComposeError` if it cannot be written safely."""
    own_id = clean_message_id(mail.message_id)
    if own_id is None or "@" not in own_id:
        raise ComposeError(f"not a Message-ID Postdesk can send: {mail.message_id!r}")
    if not mail.to and not mail.cc and not mail.bcc:
        raise ComposeError("a mail needs at least one recipient")
    envelope_from = ascii_address(mail.sender.address)
    headers: list[tuple[str, str]] = [("From", _mailbox(mail.sender))]
    if mail.to:
        headers.append(("To", _address_list(mail.to, header_name="To")))
    if mail.cc:
        headers.append(("Cc", _address_list(mail.cc, header_name="Cc")))
    headers += [
        ("Reply-To", ascii_address(mail.reply_to)),
        ("Subject", _unstructured(mail.subject, header_name="Subject")),
        ("Date", format_datetime(mail.date)),
        ("Message-ID", f"<{own_id}>"),
    ]
    in_reply_to = _id_list(mail.in_reply_to, header_name="In-Reply-To")
    if in_reply_to:
        headers.append(("In-Reply-To", in_reply_to))
    references = _id_list(mail.references, header_name="References")
    if references:
        headers.append(("References", references))
    if mail.auto_submitted:
        if mail.auto_submitted not in AUTO_SUBMITTED_VALUES:
            raise ComposeError(f"not an Auto-Submitted value Postdesk sends: {mail.auto_submitted!r}")
        # Exchange and Outlook honour this instead of Auto-Submitted: no out-of-office answers to us.
        headers += [("Auto-Submitted", mail.auto_submitted), ("X-Auto-Response-Suppress", "All")]

    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
    raw = head + _body(mail)
    recipients = tuple(dict.fromkeys(ascii_address(p.address) for p in (*mail.to, *mail.cc, *mail.bcc)))
    _verify(raw, [name for name, _value in headers])
    return ComposedMail(raw=raw, envelope_from=envelope_from, recipients=recipients)


def _verify(raw: bytes, expected: list[str]) -> None:
    """Parse the bytes again: exactly the headers we wrote, no line over 998 characters, 7-bit only."""
    if any(len(line) > _MAX_LINE for line in raw.split(b"\r\n")) or not raw.isascii():
        raise ComposeError("the composed mail has an over-long line or 8-bit data")
    parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    top = [name.lower() for name in parsed]
    ours = [name.lower() for name in expected]
    if top[: len(ours)] != ours or not set(top[len(ours) :]) <= _BODY_PART_HEADERS:
        raise ComposeError(f"refusing to send: the composed mail has unexpected headers {top}")
    for part in parsed.walk():
        if part is not parsed and not {name.lower() for name in part} <= _BODY_PART_HEADERS:
            raise ComposeError("refusing to send: an attachment has unexpected headers")
