"""Plain dataclasses that carry a parsed mail between the pure mail modules and the rest of Postdesk."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox address; `address` keeps the sender's spelling, compare with `key`."""

    address: str
    name: str = ""

    @property
    def key(self) -> str:
        """The case-insensitive form used for lookups and comparisons."""
        return self.address.strip().lower()


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """Something that looked wrong in a mail; `code` is a stable kebab-case name."""

    code: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes = field(repr=False)
    content_id: str | None = None
    inline: bool = False
    # The filename of the forwarded message (a message/rfc822 `.eml` attachment of the same mail)
    # this file was found in; "" for the mail's own attachments.
    enclosed_in: str = ""

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """The result of `postdesk.mail.parse.parse`: everything later steps need, decoded."""

    message_id: str | None  # without angle brackets
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None  # timezone-aware UTC
    text: str  # best plain-text body (rendered from HTML when there is no text part)
    html: str  # sanitised HTML body, "" when the mail has none
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]  # every header, decoded, in order (names as written)
    thread_index: str | None  # Outlook Thread-Index, base64 as sent
    problems: tuple[ParseProblem, ...]

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        wanted = name.lower()
        for header_name, value in self.headers:
            if header_name.lower() == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True)
class ReplyParts:
    """A body split into what the sender just wrote, the quoted history and the signature."""

    visible: str
    quoted: str
    signature: str
    # The mail's HTML without the quoted history ("" when the mail has no HTML; the whole HTML when
    # no history was found), for showing the reply as the sender formatted it.
    visible_html: str = ""


class AutomatedKind(StrEnum):
    AUTO_REPLY = "auto_reply"
    OUT_OF_OFFICE = "out_of_office"
    BOUNCE = "bounce"
    BULK = "bulk"
    LIST = "list"


@dataclass(frozen=True, slots=True)
class BounceRecipient:
    address: str
    status: str  # enhanced status code such as "5.1.1", or "" when none was given
    permanent: bool


@dataclass(frozen=True, slots=True)
class AutomatedVerdict:
    """Whether a mail was sent by a machine, which kind, and why we think so."""

    kind: AutomatedKind | None
    reason: str = ""
    bounce_recipients: tuple[BounceRecipient, ...] = ()

    @property
    def is_automated(self) -> bool:
        return self.kind is not None
