"""Duplicates: the same customer asking again, and many customers reporting one incident, found by text similarity.

A mail's subject and visible text (the reply without quoted history) are normalised and cut
into shingles: 4-character pieces of each word (so "login" and "logins", or Russian case
endings, still share most of them) and, for scripts written without spaces (Chinese,
Japanese, Thai), single characters and 2-character pieces. Each shingle is hashed with a
keyed BLAKE2b (a fixed key, so signatures stored today compare with those computed next
year) and the smallest
`SIGNATURE_SIZE` distinct hashes form the `Signature` (a bottom-k sketch). `similarity`
estimates the Jaccard similarity of two shingle sets from their sketches; it is exact when
both mails are short enough to have at most `SIGNATURE_SIZE` shingles. A `Signature` is
stored per conversation as a short string (`to_str` / `from_str`), so comparing a new mail
with 500 recent ones needs no text and takes a few milliseconds.

Decisions (the thresholds are the caller's settings; `REPEAT_THRESHOLD` and
`INCIDENT_THRESHOLD` are the measured defaults, see bench/routing.py):
- repeat: an open conversation of the same sender within the window whose normalised
  subject is the same (threading links most of those already, DESIGN.md §5), or whose
  similarity reaches the threshold; the most similar wins. A short follow-up ("any news?",
  at most `SHORT_FOLLOW_UP_WORDS` words of body) within the window is linked when the sender
  has exactly one open conversation: with two or more it is ambiguous and nothing is linked.
- incident: at least `min_reporters` distinct senders, the new one included, whose mails
  within the window reach the threshold with the new mail. When a match already belongs to
  an incident, the new mail joins it and all of that incident's members (as passed in) count
  as reporters; matches in other incidents stay where they are.
"""

# Multilingual text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from postdesk.mail.thread_keys import normalize_subject

SIGNATURE_SIZE = 128
SHORT_FOLLOW_UP_WORDS = 6
REPEAT_THRESHOLD = 0.3
INCIDENT_THRESHOLD = 0.25

_FORMAT = "1"
_KEY = b"postdesk-duplicates-1"


class DuplicateError(ValueError):
    """Bad duplicate-detection input: a malformed stored signature, or an impossible window, threshold or count."""


# Normalisation. URLs, addresses and ticket numbers differ between otherwise identical reports
# ("order 12345 failed" / "order 67890 failed"), so they go before the digits do.
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_ADDRESS = re.compile(r"\S+@\S+")
_TICKET = re.compile(r"\[?#\s*\w*\d\w*\]?")
_NOT_LETTER = re.compile(r"[\W\d_]+")
# Letters typed differently on different keyboards for the same word: Arabic vs Persian yeh
# and kaf, Russian ё written as е.
_FOLD = str.maketrans({"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9", "ё": "е"})
# Scripts written without spaces between words: Han, kana, Thai.
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+")
# Function words of the languages we ship that would otherwise make any two mails in the same
# language look a little alike. Words under three letters are dropped anyway.
_STOP_WORDS = frozenset(
    """
    the and for you your our are was were has have had not but can cannot will would could should with this that
    these those from they them their there here what when where which who how all any been being into out about
    just also please thanks thank hello dear regards best get got its it's i'm i've don't doesn't can't
    это что как для все его она они оно так уже или если нас вас вам нам мне меня мой моя мое мои ваш ваша
    ваше ваши при без еще ещё был была было были есть быть только тоже спасибо здравствуйте добрый день пожалуйста
    уважением
    що як для все вже або якщо нас вас вам нам мені мене мій моя моє мої ваш ваша ваше ваші при без ще був
    була було були є бути тільки теж дякую доброго дня будь ласка повагою
    این که را با از به در برای است هست بود شده می های ها یک تا هم اما یا اگر من ما شما او آن سلام ممنون لطفا
    """.split()  # noqa: SIM905 (a word list reads best as words)
)  # fmt: skip


def normalise(text: str) -> str:
    """Case-folded letters only: no URLs, addresses, ticket numbers, digits or punctuation; single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_FOLD)
    if not text.isascii():
        # Combining marks (Arabic vowel signs, Devanagari and Thai vowels) are not word characters
        # to the regular expressions below and would split words; dropping them is consistent.
        text = "".join(char for char in text if not unicodedata.category(char).startswith("M"))
    text = _URL.sub(" ", text)
    text = _ADDRESS.sub(" ", text)
    text = _TICKET.sub(" ", text)
    return _NOT_LETTER.sub(" ", text).strip()


def _pieces(normalised: str) -> Iterable[str]:
    """Word pieces and unspaced runs: "订单 vpn 无法连接" gives "订单", "vpn", "无法连接"."""
    for word in normalised.split():
        start = 0
        for run in _UNSPACED.finditer(word):
            if run.start() > start:
                yield word[start : run.start()]
            yield run.group()
            start = run.end()
        if start < len(word):
            yield word[start:]


def _shingles(normalised: str) -> set[str]:
    out: set[str] = set()
    for piece in _pieces(normalised):
        if _UNSPACED.fullmatch(piece):
            # Characters and pairs: a Chinese reworded report shares few pairs ("网站打不开" /
            # "网站无法访问") but many characters; both together separate topics best.
            out.update(piece)
            out.update(piece[i : i + 2] for i in range(len(piece) - 1))
        elif len(piece) >= 3 and piece not in _STOP_WORDS:
            padded = f" {piece} "
            out.update(padded[i : i + 4] for i in range(len(padded) - 3))
    return out


def _words(normalised: str) -> int:
    """Words in the text, counting two characters of an unspaced script as one word."""
    count = 0
    for piece in _pieces(normalised):
        count += (len(piece) + 1) // 2 if _UNSPACED.fullmatch(piece) else 1
    return count


def _hash(shingle: str) -> int:
    digest = hashlib.blake2b(shingle.encode(), digest_size=4, key=_KEY).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class Signature:
    """A mail's bottom-k sketch: the smallest distinct shingle hashes (ascending) and the body's word count."""

    hashes: tuple[int, ...]
    words: int
    _members: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Kept beside the tuple: set intersection is what makes 500 comparisons take a few ms.
        object.__setattr__(self, "_members", frozenset(self.hashes))

    def is_empty(self) -> bool:
        """True when the mail had no words to compare (only digits, links or an attachment)."""
        return not self.hashes

    def to_str(self) -> str:
        """A compact ASCII form for a database column (at most 700 characters)."""
        packed = struct.pack(f">{len(self.hashes)}I", *self.hashes)
        return f"{_FORMAT}.{self.words}.{base64.b64encode(packed).decode('ascii')}"

    @classmethod
    def from_str(cls, text: str) -> Signature:
        """Read `to_str`'s form back; raises DuplicateError when it is not one."""
        parts = text.split(".")
        if len(parts) != 3 or parts[0] != _FORMAT or not parts[1].isdigit():
            raise DuplicateError(f"not a duplicate-detection signature (format {_FORMAT}): {text[:40]!r}")
        try:
            packed = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError) as error:
            raise DuplicateError(f"duplicate-detection signature has bad base64: {error}") from None
        if len(packed) % 4 or len(packed) // 4 > SIGNATURE_SIZE:
            raise DuplicateError(f"duplicate-detection signature has a bad length ({len(packed)} bytes)")
        hashes: tuple[int, ...] = struct.unpack(f">{len(packed) // 4}I", packed)
        if any(a >= b for a, b in pairwise(hashes)):
            raise DuplicateError("duplicate-detection signature hashes are not in ascending order")
        return cls(hashes, int(parts[1]))


def signature_of(subject: str, text: str) -> Signature:
    """The signature of a mail's subject (reply prefixes and list tags stripped) and visible text."""
    body = normalise(text)
    shingles = _shingles(normalise(normalize_subject(subject))) | _shingles(body)
    hashes = sorted({_hash(shingle) for shingle in shingles})[:SIGNATURE_SIZE]
    return Signature(tuple(hashes), _words(body))


def similarity(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity of two mails' shingles: symmetric, in [0, 1], 1 for the same text.

    Both sketches are exact below the smaller of their cut-offs (the largest hash of a full
    sketch), so the estimate is the Jaccard similarity of the hashes below it (Li and Church's
    conditional random sampling); exact when neither sketch is full.
    """
    if not a.hashes or not b.hashes:
        return 1.0 if a.hashes == b.hashes else 0.0
    cut_a = a.hashes[-1] if len(a.hashes) >= SIGNATURE_SIZE else None
    cut_b = b.hashes[-1] if len(b.hashes) >= SIGNATURE_SIZE else None
    if cut_a is None and cut_b is None:
        count_a, count_b = len(a.hashes), len(b.hashes)
    else:
        cut = min(cut for cut in (cut_a, cut_b) if cut is not None)
        count_a, count_b = bisect_right(a.hashes, cut), bisect_right(b.hashes, cut)
    # Every common hash is at most the cut: it lies in the sketch whose cut it is.
    common = len(a._members & b._members)
    return common / (count_a + count_b - common)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A mail to compare: the new one, or an open or recent conversation's first mail with its stored signature.

    `at` is when that mail came in; `incident_id` the incident the conversation already belongs to.
    """

    conversation_id: int
    sender: str
    subject: str
    at: datetime
    signature: Signature
    incident_id: int | None = None

    def __post_init__(self) -> None:
        if self.at.utcoffset() is None:
            raise DuplicateError(f"conversation {self.conversation_id}: time must be timezone-aware")

    @classmethod
    def of(
        cls,
        conversation_id: int,
        sender: str,
        subject: str,
        text: str,
        at: datetime,
        incident_id: int | None = None,
    ) -> Candidate:
        """A candidate from the mail itself (its signature computed here)."""
        return cls(conversation_id, sender, subject, at, signature_of(subject, text), incident_id)


@dataclass(frozen=True, slots=True)
class RepeatMatch:
    """The new mail repeats this open conversation of the same customer."""

    conversation_id: int
    similarity: float
    reason: str


@dataclass(frozen=True, slots=True)
class IncidentMatch:
    """The new mail reports the same thing as these conversations (the new one not included).

    `incident_id` is the existing incident to join, or None for a new one; `similarity` is the
    best similarity of the new mail with a conversation it matched directly.
    """

    conversation_ids: tuple[int, ...]
    incident_id: int | None
    similarity: float
    reason: str


def _check(window: timedelta, threshold: float) -> None:
    if window <= timedelta(0):
        raise DuplicateError(f"the window must be positive, got {window}")
    if not 0.0 < threshold <= 1.0:
        raise DuplicateError(f"the similarity threshold must be above 0 and at most 1, got {threshold}")


def _sender_key(address: str) -> str:
    return address.strip().casefold()


def _subject_key(subject: str) -> str:
    return normalise(normalize_subject(subject))


def _span(window: timedelta) -> str:
    """ "3 days", "2 h", "45 min": how the reasons say a window."""
    minutes = int(window.total_seconds() // 60)
    if minutes >= 1440 and minutes % 1440 == 0:
        days = minutes // 1440
        return f"{days} day" if days == 1 else f"{days} days"
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{max(minutes, 1)} min"


def _percent(value: float) -> str:
    return f"{round(value * 100)} %"


def find_repeat(
    new: Candidate,
    open_from_same_sender: Sequence[Candidate],
    *,
    window: timedelta,
    threshold: float,
) -> RepeatMatch | None:
    """The open conversation this mail repeats (same sender, within the window), or None."""
    _check(window, threshold)
    sender = _sender_key(new.sender)
    mine = [
        candidate
        for candidate in open_from_same_sender
        if candidate.conversation_id != new.conversation_id and _sender_key(candidate.sender) == sender
    ]
    near = [candidate for candidate in mine if abs(new.at - candidate.at) <= window]
    if not near:
        return None
    subject = _subject_key(new.subject)
    best: tuple[tuple[bool, float, datetime, int], Candidate, float, bool] | None = None
    for candidate in near:
        score = similarity(new.signature, candidate.signature)
        same_subject = subject != "" and _subject_key(candidate.subject) == subject
        if same_subject or score >= threshold:
            rank = (same_subject, score, candidate.at, -candidate.conversation_id)
            if best is None or rank > best[0]:
                best = (rank, candidate, score, same_subject)
    span = _span(window)
    if best is not None:
        _, candidate, score, same_subject = best
        how = "same subject" if same_subject else f"similar text ({_percent(score)})"
        return RepeatMatch(candidate.conversation_id, score, f"same customer, {how}, within {span}")
    if len(mine) == 1 and new.signature.words <= SHORT_FOLLOW_UP_WORDS:
        only = near[0]
        reason = f"short follow-up within {span}; the customer's only open conversation"
        return RepeatMatch(only.conversation_id, similarity(new.signature, only.signature), reason)
    return None


def find_incident(
    new: Candidate,
    recent_from_others: Sequence[Candidate],
    *,
    window: timedelta,
    threshold: float,
    min_reporters: int,
) -> IncidentMatch | None:
    """The conversations to group with this mail as one incident, or None when too few customers report it."""
    _check(window, threshold)
    if min_reporters < 2:
        raise DuplicateError(f"an incident needs at least 2 reporters, got {min_reporters}")
    if new.signature.is_empty():
        return None
    sender = _sender_key(new.sender)
    matched: dict[int, tuple[Candidate, float]] = {}
    for candidate in recent_from_others:
        if candidate.conversation_id == new.conversation_id or abs(new.at - candidate.at) > window:
            continue
        score = similarity(new.signature, candidate.signature)
        if score >= threshold and not candidate.signature.is_empty() and _sender_key(candidate.sender) != sender:
            matched[candidate.conversation_id] = (candidate, score)
    if not matched:
        return None

    best_by_incident: dict[int, float] = {}
    for candidate, score in matched.values():
        if candidate.incident_id is not None:
            best_by_incident[candidate.incident_id] = max(score, best_by_incident.get(candidate.incident_id, 0.0))
    incident_id = max(best_by_incident, key=lambda key: (best_by_incident[key], -key)) if best_by_incident else None
    group = {
        candidate.conversation_id: candidate
        for candidate, _ in matched.values()
        if candidate.incident_id is None or candidate.incident_id == incident_id
    }
    if incident_id is not None:
        for candidate in recent_from_others:
            if candidate.incident_id == incident_id and candidate.conversation_id != new.conversation_id:
                group[candidate.conversation_id] = candidate
    reporters = {sender} | {_sender_key(candidate.sender) for candidate in group.values()}
    if len(reporters) < min_reporters:
        return None
    best = max(score for candidate, score in matched.values() if candidate.conversation_id in group)
    if incident_id is None:
        reason = f"incident: {len(reporters)} customers sent similar mail within {_span(window)}"
    else:
        reason = f"joins incident {incident_id}: {len(reporters)} customers sent similar mail"
    return IncidentMatch(tuple(sorted(group)), incident_id, best, reason)
