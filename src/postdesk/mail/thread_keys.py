"""Thread keys: reply tokens, our Message-IDs, Outlook Thread-Index roots, ticket numbers and normalised subjects."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import base64
import binascii
import re
import secrets

# Reply and forward prefixes across clients and languages. Sources: Zulip's email mirror
# fixture (zulip-subject-normalization corpus), Wikipedia "List of email subject
# abbreviations", and what Outlook / Foxmail / Yandex / Thunderbird localisations send.
_PREFIX_WORDS = (
    "re", "fwd", "fw", "aw", "wg", "sv", "vs", "antw", "doorst", "odp", "pd", "rif", "r", "i",
    "tr", "réf", "ref", "enc", "res", "rv", "ynt", "ilt", "vl", "vb", "ats", "vá", "továbbítás",
    "رد", "fs",
    "ответ", "отв", "пересл", "переслать", "fwd", "відповідь", "пересилання",
    "回复", "答复", "回覆", "轉寄", "转发", "转寄", "回復", "返信", "転送",
    "پاسخ", "هدایت", "بازارسال",
)  # fmt: skip
_PREFIX_ALTERNATION = "|".join(sorted({re.escape(w) for w in _PREFIX_WORDS}, key=len, reverse=True))
# A prefix word, an optional counter (Re[2]:, Re(3):, Re^2:), then a separator: ":" ";" the
# full-width "：" used by CJK clients, or "--" (Zulip's "RE--" case).
_PREFIX = re.compile(
    rf"^(?P<open>[\[(]\s*)?(?:{_PREFIX_ALTERNATION})\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*(?:[:;：]|-{{2,}}|-(?=\s*$))[\s:;：\-]*"
    r"|^(?:re|fwd|fw|aw|wg)\s*$",
    re.IGNORECASE,
)
_FWD_PAREN = re.compile(r"\((?:fwd|fw)\)", re.IGNORECASE)
# The prefixes among them that mean "forwarded" (Outlook FW/WG/TR/RV/ENC, Foxmail 转发, Yandex Пересл …).
_FORWARD_WORDS = frozenset(
    {"fwd", "fw", "wg", "tr", "enc", "rv", "doorst", "pd", "i", "ilt", "fs", "továbbítás",
     "пересл", "переслать", "пересилання", "轉寄", "转发", "转寄", "転送", "هدایت", "بازارسال"}
)  # fmt: skip
_FIRST_PREFIX = re.compile(
    rf"^(?:\[[^\[\]:：]{{1,60}}\]\s*)?[\[(]?\s*({_PREFIX_ALTERNATION})\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:;：]",
    re.IGNORECASE,
)
# A mailing-list or ticket tag at the front: "[users] ...", "[#1234] ..."; no colon inside so
# "[Fwd: ...]" bracketed forwards are handled by _PREFIX instead.
_TAG = re.compile(r"^\[[^\[\]:：]{1,60}\]\s*")
_SPACE = re.compile(r"\s+")

_TICKET = re.compile(r"\[#(\d{1,12})\]")
_TOKEN = r"[a-z0-9]{8,32}"
_TOKEN_RE = re.compile(rf"^{_TOKEN}$")
_ADDRESS_TOKEN = re.compile(rf"^[^@+]+\+({_TOKEN})@[^@]+$", re.IGNORECASE)
_MESSAGE_ID_TOKEN = re.compile(rf"^<?pd\.({_TOKEN})\.[A-Za-z0-9_-]+@[^@>]+>?$", re.IGNORECASE)


def is_forward_subject(subject: str) -> bool:
    """True when the subject's first prefix says the mail is a forward ("FW: …", "WG: …", "转发: …")."""
    if _FWD_PAREN.search(subject):
        return True
    match = _FIRST_PREFIX.match(subject.strip())
    return match is not None and match.group(1).lower() in _FORWARD_WORDS


def normalize_subject(subject: str) -> str:
    """Strip reply/forward prefixes, list tags and "(fwd)"; collapse whitespace; casefold."""
    text = _SPACE.sub(" ", subject.replace("\u3000", " ")).strip()
    text = _FWD_PAREN.sub(" ", text).strip()
    opened = 0
    for _ in range(100):  # bounded: hostile subjects cannot loop forever
        before = text
        match = _PREFIX.match(text)
        if match:
            if match.group("open") is not None and match.group("open").startswith("["):
                opened += 1
            text = text[match.end() :].lstrip()
        else:
            tag = _TAG.match(text)
            if tag:
                text = text[tag.end() :]
        if opened and text.startswith("]"):
            # "[Fwd: ] Blonde Joke": an empty bracketed forward closes right away.
            opened -= 1
            text = text[1:].lstrip()
        if text == before:
            break
    while opened and text.endswith("]"):
        opened -= 1
        text = text[:-1].rstrip()
    return _SPACE.sub(" ", text).strip().casefold()


def ticket_number(subject: str) -> int | None:
    """The ticket number of a "[#1234]" tag in the subject, or None."""
    match = _TICKET.search(subject)
    return int(match.group(1)) if match else None


def reply_token_from_address(address: str) -> str | None:
    """The TOKEN of a "local+TOKEN@domain" reply address (RFC 5233 subaddress), lowercased."""
    match = _ADDRESS_TOKEN.match(address.strip().strip("<>"))
    return match.group(1).lower() if match else None


def reply_token_from_message_id(message_id: str) -> str | None:
    """The TOKEN of a Message-ID we generated ("pd.<TOKEN>.<random>@<domain>"), or None."""
    match = _MESSAGE_ID_TOKEN.match(message_id.strip())
    return match.group(1).lower() if match else None


def make_message_id(token: str, domain: str) -> str:
    """A new Message-ID (without angle brackets) carrying `token`, for mail we send."""
    token = token.lower()
    if not _TOKEN_RE.match(token):
        raise ValueError(f"reply token must match [a-z0-9]{{8,32}}: {token!r}")
    domain = domain.strip().strip(".")
    if not domain or any(ch in domain for ch in "<>@ \t\r\n"):
        raise ValueError(f"bad domain for a Message-ID: {domain!r}")
    return f"pd.{token}.{secrets.token_hex(8)}@{domain}"


def thread_index_root(thread_index: str) -> str | None:
    """Hex of the first 22 bytes of an Outlook Thread-Index ([MS-OXOMSG] 2.2.1.3), or None if invalid.

    Those 22 bytes (reserved byte, FILETIME, GUID) are the conversation's header block; each
    reply appends a 5-byte child block, so every message of one conversation shares them.
    """
    cleaned = "".join(thread_index.split())
    if not cleaned:
        return None
    try:
        data = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(data) < 22:
        return None
    return data[:22].hex()
