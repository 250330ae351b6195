"""Turn raw mail bytes into a `ParsedMessage`, never raising, recording every problem found.

Problem codes (stable, kebab-case; `ParseProblem.detail` says more):

- ``empty``: the input was empty or only whitespace.
- ``internal-error``: an unexpected exception; the result is best effort.
- ``no-headers``: no header block was recognised (binary garbage, a body without headers).
- ``obsolete-header-syntax``: a header name followed by white space before its colon (RFC 5322 §4.5
  allows it, the stdlib stops reading headers there); read as if the space were not there.
- ``no-body``: neither text, HTML nor attachments.
- ``missing-message-id``: no usable Message-ID (none is invented here).
- ``missing-from``: no usable From address.
- ``missing-date`` / ``bad-date``: Date absent, or present but unparsable (``date`` is None), or
  readable only leniently (detail says so; ``date`` is set).
- ``invalid-address``: an address in From/To/Cc/Reply-To could not be parsed; it was skipped.
- ``bad-header``: a header value could not be decoded by ``policy.default``; decoded by hand.
- ``raw-8bit-header``: a header held undeclared 8-bit bytes (RFC 5322 forbids, RFC 6532 allows UTF-8);
  detail: how they were decoded (the body's charset, a guess or a detector).
- ``raw-utf7-header``: a header of a UTF-7 mail held undeclared UTF-7; decoded as UTF-7.
- ``bad-encoded-word``: an RFC 2047 encoded word in an unknown charset or broken encoding.
- ``charset-fallback``: a declared charset (of a body part, an encoded word or an RFC 2231
  parameter) was missing or wrong and another was used; detail: declared and used.
- ``charset-unknown``: no charset fitted; decoded as windows-1252.
- ``broken-multipart``: a multipart without a boundary or whose boundary never occurs; the body
  was kept as text.
- ``mime-defect``: a structural defect reported by the stdlib parser (detail: the defect class).
- ``nesting-too-deep``: multipart nesting beyond ``MAX_DEPTH``; deeper parts were ignored.
- ``bad-attachment``: an attachment payload could not be decoded; the raw bytes were kept.
- ``uuencoded-attachment``: a plain-text body held uuencoded files; they became attachments and
  left the text (detail: the file names). ``bad-uuencode``: a block looked uuencoded but did
  not decode; it stays in the text.
- ``tnef-failed``: a winmail.dat could not be unpacked; it is kept as an attachment.
- ``tnef-rtf-body``: a winmail.dat's body exists only as RTF; its text becomes the body and the
  RTF is attached as ``message.rtf``.
- ``enclosed-message``: a message/rfc822 part was kept as an ``.eml`` attachment (detail: its
  subject); the files inside it are attachments too, with ``enclosed_in`` naming the ``.eml``.
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import email.utils
import mimetypes
import quopri
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32

from striprtf.striprtf import rtf_to_text as _untyped_rtf_to_text

from postdesk.mail import tnef
from postdesk.mail.body import html_to_text, sanitize_html
from postdesk.mail.charsets import Decoded, codec_name, decode_bytes, decode_utf7_runs
from postdesk.mail.model import Address, Attachment, ParsedMessage, ParseProblem
from postdesk.mail.uuencode import split_uuencoded

MAX_DEPTH = 50
MAX_PROBLEMS = 200
_ADDRESS_HEADERS = ("from", "to", "cc", "reply-to")
_UNSTRUCTURED_HEADERS = {"subject", "comments", "keywords", "thread-topic"}

# RFC 2047 §2: =?charset?encoding?encoded-text?= ; real mail puts spaces and "?" inside Q text,
# so the text part is matched lazily up to the next "?=".
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?(.*?)\?=", re.DOTALL)
_BETWEEN_WORDS = re.compile(r"^[ \t\r\n]*$")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_MSG_ID = re.compile(r"<\s*([^<>\s]+?)\s*>")
_LINE_BREAKS = re.compile(r"\n|\r")
_QUOTED_PAIR = re.compile(r"\\(.)")
# RFC 5322 §4.5.1 obs-optional: white space may come between a field name and its colon.
_OBSOLETE_FIELD_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:", re.MULTILINE)
_OBSOLETE_FROM = re.compile(r"From[ \t]+:")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_SIGNATURE_TYPES = {
    "application/pgp-signature",
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
}
# Problems from inside a forwarded message that concern what we take out of it (its files).
_ENCLOSED_PROBLEMS = {"bad-attachment", "tnef-failed", "uuencoded-attachment", "enclosed-message", "nesting-too-deep"}


class _RawPolicy(Compat32):
    """compat32 parsing, but `Message.get` returns the unfolded raw string, never a `Header`.

    `policy.default` builds a header object on every `get` (and the stdlib calls `get` many
    times per part while parsing); that was most of our parse time. We decode the few headers
    we need ourselves, so raw strings (8-bit bytes still surrogate-escaped) are what we want.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return _LINE_BREAKS.sub("", str(value))


_POLICY = _RawPolicy()
_UNSET = object()


@dataclass
class _State:
    """Mutable accumulator for one parse; frozen results are built from it at the end."""

    root: Message | None = None
    problems: list[ParseProblem] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)
    html_parts: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    depth_reported: bool = False
    _hint: object = _UNSET

    def problem(self, code: str, detail: str = "") -> None:
        if len(self.problems) < MAX_PROBLEMS:
            entry = ParseProblem(code, detail[:300])
            if entry not in self.problems:
                self.problems.append(entry)

    @property
    def hint_charset(self) -> str | None:
        """The charset the mail's text declares, for undeclared 8-bit (or UTF-7) header bytes; looked up once."""
        if self._hint is _UNSET:
            self._hint = _declared_text_charset(self.root) if self.root is not None else None
        return self._hint if isinstance(self._hint, str) else None


def parse(raw: bytes) -> ParsedMessage:
    """Parse raw mail bytes; never raises (unexpected errors become an ``internal-error`` problem)."""
    state = _State()
    try:
        return _parse(raw, state)
    except Exception as exc:  # the contract is "never raises": keep what we have
        state.problem("internal-error", f"{type(exc).__name__}: {exc}")
        return _empty(state)


def _empty(state: _State, headers: tuple[tuple[str, str], ...] = ()) -> ParsedMessage:
    return ParsedMessage(
        message_id=None,
        in_reply_to=(),
        references=(),
        subject="",
        from_=None,
        to=(),
        cc=(),
        reply_to=(),
        date=None,
        text="\n".join(state.text_parts),
        html="",
        attachments=tuple(state.attachments),
        headers=headers,
        thread_index=None,
        problems=tuple(state.problems),
    )


def _parse(raw: bytes, state: _State) -> ParsedMessage:
    if not raw or not raw.strip():
        state.problem("empty", "no bytes" if not raw else "only whitespace")
        return _empty(state)
    msg = _parse_bytes(raw, state)
    state.root = msg

    headers: list[tuple[str, str]] = []
    for name, value in msg.raw_items():
        headers.append((name, _decode_header_value(str(value), state, name)))
    if not headers:
        state.problem("no-headers")

    def first(name: str) -> str | None:
        wanted = name.lower()
        for header_name, value in msg.raw_items():
            if header_name.lower() == wanted:
                return str(value)
        return None

    subject_raw = first("subject")
    subject = " ".join(_decode_header_value(subject_raw, state, "subject").split()) if subject_raw else ""

    message_id: str | None = None
    mid_raw = first("message-id")
    if mid_raw is not None:
        ids = _extract_ids(_decode_header_value(mid_raw, state))
        message_id = ids[0] if ids else None
    if not message_id:
        state.problem("missing-message-id")

    irt_raw = first("in-reply-to")
    in_reply_to = _extract_ids(_decode_header_value(irt_raw, state)) if irt_raw else ()
    refs_raw = first("references")
    references = _extract_ids(_decode_header_value(refs_raw, state)) if refs_raw else ()

    addresses: dict[str, tuple[Address, ...]] = {}
    for name in _ADDRESS_HEADERS:
        found: list[Address] = []
        for header_name, value in msg.raw_items():
            if header_name.lower() == name:
                found.extend(_parse_addresses(name, str(value), state))
        addresses[name] = tuple(found)
    from_ = addresses["from"][0] if addresses["from"] else None
    if from_ is None:
        state.problem("missing-from")

    date = _parse_date(first("date"), state)
    thread_index_raw = first("thread-index")
    thread_index = _unfold(thread_index_raw).strip() or None if thread_index_raw else None

    _walk(msg, state, depth=0)
    _record_defects(msg, state)

    text = "\n".join(part for part in state.text_parts if part)
    html_raw = "\n".join(state.html_parts)
    html = sanitize_html(html_raw) if html_raw.strip() else ""
    if not text.strip() and html_raw.strip():
        text = html_to_text(html_raw)
    if not text.strip() and not html and not state.attachments:
        state.problem("no-body")
        text = ""

    return ParsedMessage(
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        subject=subject,
        from_=from_,
        to=addresses["to"],
        cc=addresses["cc"],
        reply_to=addresses["reply-to"],
        date=date,
        text=text,
        html=html,
        attachments=tuple(state.attachments),
        headers=tuple(headers),
        thread_index=thread_index,
        problems=tuple(state.problems),
    )


def _parse_bytes(raw: bytes, state: _State) -> Message:
    msg = BytesParser(policy=_POLICY).parsebytes(raw)
    stopped = any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect) for d in msg.defects)
    if not stopped and not _OBSOLETE_FROM.match(msg.get_unixfrom() or ""):
        return msg
    # The stdlib ends the header block at the first line that is not a header ("Fro :x",
    # stalwart malformed/019) and takes a first "From :" for an mbox separator; both are
    # fields under RFC 5322 §4.5.1, so close the gap and read again.
    end = _HEADER_END.search(raw)
    header_block = raw[: end.start()] if end else raw
    repaired, count = _OBSOLETE_FIELD_NAME.subn(rb"\1:", header_block)
    if not count:
        return msg
    state.problem("obsolete-header-syntax", f"{count} field name(s) with space before the colon")
    return BytesParser(policy=_POLICY).parsebytes(repaired + raw[len(header_block) :])


def _declared_text_charset(msg: Message) -> str | None:
    """The first charset a text part declares that says more than ASCII or UTF-8 (those are tried anyway)."""
    for part in iter_parts(msg):
        if part.get_content_maintype() not in ("text", "multipart") and part is not msg:
            continue
        label = _raw_param(part, "charset")
        if label and codec_name(label) not in (None, "ascii", "utf-8"):
            return label
    return None


# --- headers -------------------------------------------------------------------------------


def _unfold(value: str) -> str:
    """RFC 5322 §2.2.3: unfolding removes CRLF before WSP; tabs left by folding become spaces."""
    return _FOLD.sub("", value).replace("\t", " ").replace("\r", "").replace("\n", " ")


def _raw_to_str(value: str, state: _State | None) -> str:
    """Undo the parser's surrogateescape of raw 8-bit header bytes and decode them properly."""
    if value.isascii():
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start > 0:
            # UTF-8 cut inside the last character (Yahoo truncates long filenames, flanker
            # russian-attachment-yahoo): the text is UTF-8, only its final character is lost.
            return data.decode("utf-8", "replace")
    # No declaration applies to raw header bytes: the body's charset is the best hint, then
    # windows-1252 for a few bytes (zbateson m2010 "J\xfcrgen"), then charset-normalizer.
    decoded = decode_bytes(data, None, state.hint_charset if state is not None else None)
    if state is not None:
        state.problem("raw-8bit-header", f"decoded as {decoded.codec} ({decoded.how})")
    return decoded.text


def _decode_header_value(value: str | None, state: _State, name: str = "") -> str:
    """Decode one raw header value: raw 8-bit bytes, then RFC 2047 encoded words; unfolded."""
    if value is None:
        return ""
    text = _unfold(decode_encoded_words(value, state))
    if name.lower() in _UNSTRUCTURED_HEADERS:
        text = _undeclared_utf7(text, state)
    return text


def _undeclared_utf7(text: str, state: _State) -> str:
    """Headers of a UTF-7 mail are often raw UTF-7 too (zbateson m1011 "Fr+APY-sche"); only then decode them."""
    if "+" not in text or codec_name(state.hint_charset) != "utf-7":
        return text
    decoded = decode_utf7_runs(text)
    if decoded != text:
        state.problem("raw-utf7-header", "decoded as utf-7, the body's charset")
    return decoded


def decode_encoded_words(text: str, state: _State | None = None) -> str:
    """Decode RFC 2047 encoded words, joining adjacent words of one charset before decoding.

    Joining at the byte level matters for CJK mail, whose encoders split a multi-byte
    character across two encoded words (stalwart legacy samples do this).
    """
    if "=?" not in text:
        return _raw_to_str(text, state)
    out: list[str] = []
    pending: list[tuple[str, bytes]] = []  # (charset, bytes) runs not yet decoded
    position = 0

    def flush() -> None:
        for charset, data in pending:
            decoded = decode_bytes(data, charset)
            if state is not None:
                _record_charset(state, "encoded word", charset, data, decoded)
            out.append(decoded.text)
        pending.clear()

    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        # RFC 2047 §6.2: whitespace between adjacent encoded words is not displayed.
        if not (pending and _BETWEEN_WORDS.match(between)):
            flush()
            # Raw 8-bit bytes may sit inside an encoded word (stalwart legacy/015): segments
            # are decoded separately so those bytes get the word's own charset.
            out.append(_raw_to_str(between, state))
        charset, encoding, payload = match.group(1), match.group(2).upper(), match.group(3)
        data = _decode_word_payload(encoding, payload, state)
        if pending and pending[-1][0].lower() == charset.lower():
            pending[-1] = (pending[-1][0], pending[-1][1] + data)
        else:
            pending.append((charset, data))
        position = match.end()
    flush()
    out.append(_raw_to_str(text[position:], state))
    return "".join(out)


def _record_charset(state: _State, where: str, declared: str | None, data: bytes, decoded: Decoded) -> None:
    """Record a problem for every charset guess; nothing when the declaration (or plain ASCII/UTF-8) held."""
    how = decoded.how
    if how == "declared":
        return
    if how == "utf-8" and (codec_name(declared) == "utf-8" or data.isascii()):
        return
    if how == "fallback":
        state.problem("charset-unknown", f"{where}: declared {declared!r}")
    elif how in ("detected", "guessed") and where == "encoded word":
        state.problem("bad-encoded-word", f"charset {declared!r} decoded as {decoded.codec} ({how})")
    else:
        state.problem("charset-fallback", f"{where}: declared {declared!r}, decoded as {decoded.codec} ({how})")


def _decode_word_payload(encoding: str, payload: str, state: _State | None) -> bytes:
    if encoding == "B":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            if state is not None:
                state.problem("bad-encoded-word", "invalid base64")
            return payload.encode("ascii", "surrogateescape")
    return quopri.decodestring(payload.replace("_", " ").encode("utf-8", "surrogateescape"), header=False)


def _extract_ids(value: str) -> tuple[str, ...]:
    """Message ids without angle brackets; junk between ids (comments, dates, names) is ignored."""
    ids = [m.group(1) for m in _MSG_ID.finditer(value)]
    if not ids:
        # Some clients omit the brackets: take tokens that look like addr-specs (RFC 5322 §3.6.4).
        ids = [token.strip("<>,;\"'") for token in value.split() if "@" in token]
    seen: list[str] = []
    for item in ids:
        if item and item not in seen:
            seen.append(item)
    return tuple(seen)


def _parse_addresses(name: str, raw_value: str, state: _State) -> list[Address]:
    value = _unfold(_raw_to_str(raw_value, state))
    if not value.strip():
        return []
    result: list[Address] = []
    if "@" in value and "<" in value:
        value = _quote_address_like_names(value, name, state)
    parsed = _simple_addresses(value)
    if parsed is None:
        try:
            header = policy.default.header_factory(name, value)
            parsed = [(a.display_name, a.addr_spec) for a in header.addresses]
        except Exception:
            state.problem("bad-header", name)
            # Encoded words are decoded in the display names afterwards, never before splitting: a name
            # that decodes to "Eve\r\nBcc: evil@attacker.test" must not become an address.
            parsed = email.utils.getaddresses([value])
    for display_name, addr_spec in parsed:
        addr = addr_spec.strip()
        local, _, domain = addr.rpartition("@")
        if not local or not domain or any(ch.isspace() for ch in addr):
            state.problem("invalid-address", f"{name}: {addr or display_name!r}")
            continue
        display = display_name or ""
        if "=?" in display:
            # Encoded words inside quotes break RFC 2047 §5 but are common; decode anyway.
            display = decode_encoded_words(display, state)
        display = _undeclared_utf7(display, state)
        result.append(Address(address=addr, name=" ".join(display.split())))
    return result


# An unquoted display name holding an @ before the real <address>: both stdlib parsers would take
# the name for the address, which is how "support@yourbank.test <attacker@evil.test>" spoofs a sender.
_ADDRESS_LIKE_NAME = re.compile(r'(^|,)(\s*)([^,"<>()]*@[^,"<>()]*?)\s*<([^<>@\s]+@[^<>\s]+)>')


def _quote_address_like_names(value: str, name: str, state: _State) -> str:
    def quote(match: re.Match[str]) -> str:
        lead, space, display, addr = match.groups()
        state.problem("address-like-display-name", f"{name}: {display.strip()!r} is the name of <{addr}>")
        return f'{lead}{space}"{display.strip()}" <{addr}>'

    return _ADDRESS_LIKE_NAME.sub(quote, value)


# Syntax where `email.utils.getaddresses` and `policy.default` may disagree (comments, groups,
# quoted pairs, route addresses, stray brackets, an address as display name): such values take
# the slower, stricter path.
_HARD_ADDRESS = re.compile(r'[():;\\\[\]]|<[^>]*<|>[^<]*>|"[^"]*$|@[^,<>]*<')
_SIMPLE_ADDR_SPEC = re.compile(r"[^\s@<>\"]+@[^\s@<>\"]+")


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    """(display name, addr-spec) pairs of a plain address list, or None when it needs the full parser."""
    if _HARD_ADDRESS.search(value):
        return None
    pairs = email.utils.getaddresses([value])
    if len(pairs) != value.count("@"):
        return None
    for display, addr in pairs:
        if not _SIMPLE_ADDR_SPEC.fullmatch(addr) or '"' in display:
            return None
    return pairs


# The parts of an RFC 5322 date that survive most breakage: day, month name, year, hh:mm[:ss]
# and a numeric zone when there is one (stalwart malformed/019 "10:00:t <rimap-test@…>").
_LENIENT_DATE = re.compile(
    r"(\d{1,2})\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{2,4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([+-])(\d{2})(\d{2}))?",
    re.IGNORECASE,
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _parse_date(raw_value: str | None, state: _State) -> datetime | None:
    if raw_value is None:
        state.problem("missing-date")
        return None
    value = _unfold(raw_value).strip()
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        lenient = _lenient_date(value)
        state.problem("bad-date", value[:100] if lenient is None else f"read leniently: {value[:80]}")
        return lenient
    if parsed.tzinfo is None:
        # RFC 5322 §3.3: "-0000" means the zone is unknown; UTC is the only sane reading.
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        state.problem("bad-date", value[:100])
        return None


def _lenient_date(value: str) -> datetime | None:
    match = _LENIENT_DATE.search(value)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    full_year = int(year)
    if full_year < 100:  # RFC 5322 §4.3: two-digit years
        full_year += 2000 if full_year < 50 else 1900
    offset = timedelta(0)
    if sign:
        offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes)) * (-1 if sign == "-" else 1)
    try:
        moment = datetime(
            full_year,
            _MONTHS.index(month[:3].lower()) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            tzinfo=timezone(offset),
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _raw_param(part: Message, param: str, header: str = "content-type") -> str | None:
    """A Content-Type/Disposition parameter read without `policy.default`'s strict header objects."""
    try:
        value = part.get_param(param, header=header)
    except Exception:
        return None
    if value is None:
        return None
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return str(value)


def _text_param(part: Message, param: str, header: str, state: _State) -> str | None:
    """A parameter meant for people (a file name): RFC 2231 charset and continuations, raw 8-bit bytes decoded."""
    try:
        value = part.get_param(param, header=header)
    except Exception:
        state.problem("bad-header", f"{header} {param}")
        return None
    if value is None:
        return None
    if not isinstance(value, tuple):
        return _raw_to_str(str(value), state)
    charset, _language, text = value
    # The stdlib joins RFC 2231 continuations and leaves each octet as one character.
    try:
        data = str(text).encode("latin-1")
    except UnicodeEncodeError:
        data = str(text).encode("utf-8", "surrogateescape")
    decoded = decode_bytes(data, charset or None, state.hint_charset)
    _record_charset(state, f"{header} {param}", charset or None, data, decoded)
    return decoded.text


# --- body ----------------------------------------------------------------------------------


# "text/plain\n    charset=..." with the ";" missing, as some gateways fold it (sisimai lhost-x1-02).
_MISSING_SEMICOLON = re.compile(r"\s*([\w.+-]+/[\w.+-]+)\s+([\w-]+\s*=.*)", re.DOTALL)


def _content_type(part: Message, state: _State | None = None) -> str:
    try:
        ctype = part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"
    if not any(ch.isspace() for ch in ctype):
        return ctype
    raw = str(part.get("Content-Type", ""))
    missing = _MISSING_SEMICOLON.fullmatch(raw)
    if missing is None:
        return ctype.split()[0]
    # Repaired in place, so that the charset and name parameters are found too.
    part.replace_header("Content-Type", f"{missing[1]}; {missing[2]}")
    if state is not None:
        state.problem("bad-content-type", f"missing ';' in {' '.join(raw.split())[:100]}")
    return part.get_content_type().lower()


def _record_defects(part: Message, state: _State) -> None:
    for defect in getattr(part, "defects", []):
        if isinstance(defect, email.errors.StartBoundaryNotFoundDefect | email.errors.NoBoundaryInMultipartDefect):
            state.problem("broken-multipart", type(defect).__name__)
        else:
            state.problem("mime-defect", type(defect).__name__)


def _walk(part: Message, state: _State, depth: int) -> None:
    if depth > MAX_DEPTH:
        if not state.depth_reported:
            state.problem("nesting-too-deep", f"more than {MAX_DEPTH} levels")
            state.depth_reported = True
        return
    ctype = _content_type(part, state)
    if depth > 0:
        _record_defects(part, state)
    if part.is_multipart():
        payload = part.get_payload()
        if not isinstance(payload, list):  # pragma: no cover - defensive
            return
        children = [child for child in payload if isinstance(child, Message)]
        if ctype == "message/delivery-status":
            _delivery_status(children, state)
            return
        if ctype == "message/external-body":
            _external_body(part, children, state)
            return
        if ctype.startswith("message/"):
            _enclosed_message(part, children, state, depth)
            return
        if ctype == "multipart/alternative":
            _walk_alternative(children, state, depth)
            return
        if ctype == "multipart/signed":
            # RFC 1847 §2.1: the second part is the signature of the first; a detached
            # signature is no file a person attached, and the mail text was re-encoded anyway.
            children = children[:1] + [c for c in children[1:] if _content_type(c) not in _SIGNATURE_TYPES]
        for child in children:
            _walk(child, state, depth + 1)
        return
    if ctype.startswith("multipart/"):
        # The stdlib could not split it (missing or never-occurring boundary): keep the text.
        state.problem("broken-multipart", ctype)
        _leaf(part, state, "text/plain")
        return
    _leaf(part, state, ctype)


def _walk_alternative(children: list[Message], state: _State, depth: int) -> None:
    """RFC 2046 §5.1.4: alternatives say the same thing; keep the first plain and first HTML rendering."""
    seen_text = seen_html = False
    for child in children:
        ctype = _content_type(child, state)
        if ctype == "text/plain" and not _is_attachment(child):
            if not seen_text:
                seen_text = True
                _leaf(child, state, ctype, body=True)
        elif ctype == "text/html" and not _is_attachment(child):
            if not seen_html:
                seen_html = True
                _leaf(child, state, ctype, body=True)
        else:
            _walk(child, state, depth + 1)


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _filename(part: Message, state: _State) -> str | None:
    name = _text_param(part, "filename", "content-disposition", state) or _text_param(
        part, "name", "content-type", state
    )
    if not name:
        return None
    if "\\" in name and '"' in str(part.get("content-disposition", "")) + str(part.get("content-type", "")):
        # RFC 2045 §5.1 quoted-string: "\X" is a quoted pair meaning "X", so a quoted
        # "C:\TEMP\a.png" is "C:TEMPa.png" (as policy.default and stalwart read it).
        name = _QUOTED_PAIR.sub(r"\1", name)
    if "=?" in name:
        # Outlook puts RFC 2047 words inside quoted parameters (RFC 2047 §5 forbids it; everyone does it).
        name = decode_encoded_words(name, state)
    name = _unfold(name).strip().strip('"')
    # Never let a client-chosen path escape: keep the last path component only.
    name = re.split(r"[\\/]", name)[-1]
    return name or None


def _is_attachment(part: Message) -> bool:
    if _disposition(part) == "attachment":
        return True
    return _raw_param(part, "filename", "content-disposition") is not None and _disposition(part) != "inline"


def _payload_bytes(part: Message, state: _State) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:
        state.problem("bad-attachment", f"{type(exc).__name__}")
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def _leaf(part: Message, state: _State, ctype: str, *, body: bool = False) -> None:
    disposition = _disposition(part)
    filename = _filename(part, state)
    data = _payload_bytes(part, state)
    is_body_text = ctype in ("text/plain", "text/html") and disposition != "attachment"
    # A named inline text part is the body when it comes first (some clients name the body),
    # but after the body it is a file the sender attached inline, as Netscape did (JMAP's
    # rule, RFC 8621 §4.1.4; stalwart legacy/030, legacy/042).
    no_body_yet = not state.text_parts and not state.html_parts
    named_body = disposition == "inline" and ctype == "text/plain" and (body or no_body_yet)
    if is_body_text and (filename is None or named_body):
        text = _decode_text(part, data, state)
        if ctype == "text/html":
            state.html_parts.append(text)
        else:
            if (_raw_param(part, "format") or "").lower() == "flowed":
                text = _unflow(text, (_raw_param(part, "delsp") or "").lower() == "yes")
            state.text_parts.append(_take_uuencoded(text.replace("\r\n", "\n"), state))
        return
    is_tnef = ctype in ("application/ms-tnef", "application/vnd.ms-tnef") or (filename or "").lower() == "winmail.dat"
    if is_tnef and _unpack_tnef(data, state):
        return
    content_id = _content_id(part)
    inline = (disposition == "inline" and content_id is not None) or (disposition is None and content_id is not None)
    state.attachments.append(
        Attachment(
            filename=filename or _default_name(ctype, len(state.attachments) + 1),
            content_type=ctype,
            content=data,
            content_id=content_id,
            inline=inline,
        )
    )


def _take_uuencoded(text: str, state: _State) -> str:
    """Move uuencoded files out of a plain-text body into attachments (old gateways, Lotus Notes, Outlook 2000)."""
    found = split_uuencoded(text)
    for broken in found.broken:
        state.problem("bad-uuencode", broken)
    if not found.files:
        return text
    for item in found.files:
        name = re.split(r"[\\/]", item.filename)[-1] or _default_name("application/octet-stream", 1)
        guessed = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
        state.attachments.append(Attachment(filename=name, content_type=guessed, content=item.content))
    state.problem("uuencoded-attachment", ", ".join(item.filename for item in found.files))
    return found.text


def _content_id(part: Message) -> str | None:
    raw = None
    for name, value in part.raw_items():
        if name.lower() == "content-id":
            raw = str(value)
            break
    if raw is None:
        return None
    value = _unfold(raw).strip().strip("<>").strip()
    return value or None


def _default_name(ctype: str, index: int) -> str:
    extension = mimetypes.guess_extension(ctype, strict=False) or ".bin"
    return f"attachment-{index}{extension}"


def _decode_text(part: Message, data: bytes, state: _State) -> str:
    declared = _raw_param(part, "charset")
    decoded = decode_bytes(data, declared)
    _record_charset(state, "body", declared, data, decoded)
    return decoded.text


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 §4.2: a line ending in a space is soft-broken and joins the next one (not across quotes)."""
    out: list[str] = []
    buffer = ""
    buffer_depth = -1
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # RFC 3676 §4.4 space-stuffing
        if buffer and depth != buffer_depth:
            out.append(">" * buffer_depth + (" " if buffer_depth else "") + buffer)
            buffer = ""
        if content.endswith(" ") and content != "-- ":
            buffer += content[:-1] if delsp else content
            buffer_depth = depth
            continue
        full = buffer + content
        buffer = ""
        out.append(">" * depth + (" " if depth and full else "") + full)
    if buffer:
        out.append(">" * buffer_depth + (" " if buffer_depth else "") + buffer)
    return "\n".join(out)


def _enclosed_message(part: Message, children: list[Message], state: _State, depth: int) -> None:
    """Keep a forwarded message as an ``.eml`` attachment, and its files as attachments of their own."""
    inner = children[0] if children else None
    if inner is not None:
        inner = _decode_enclosed(part, inner, state)
    subject = ""
    data = b""
    if inner is not None:
        subject_raw: str | None = None
        for name, value in inner.raw_items():
            if name.lower() == "subject":
                subject_raw = str(value)
                break
        subject = _decode_header_value(subject_raw, state, "subject").strip() if subject_raw else ""
        data = _message_bytes(inner)
    # The sender's own name for the part comes first (stalwart rfc/008 "attached_email.eml",
    # thirdparty/015 "training-mail.txt"), then the forwarded subject.
    safe = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", subject).strip(" ._")[:100]
    filename = _filename(part, state) or f"{safe or 'message'}.eml"
    state.problem("enclosed-message", subject[:200])
    state.attachments.append(
        Attachment(
            filename=filename,
            content_type="message/rfc822",
            content=data,
            content_id=_content_id(part),
            inline=False,
        )
    )
    if inner is None:
        return
    # The forwarded message's own files, so an agent need not open the .eml to reach them.
    # Its text stays inside the .eml: it is not what this sender wrote.
    inner_state = _State(root=inner, depth_reported=state.depth_reported)
    _walk(inner, inner_state, depth + 1)
    state.depth_reported = inner_state.depth_reported
    for found in inner_state.problems:
        if found.code in _ENCLOSED_PROBLEMS:
            state.problem(found.code, found.detail)
    for attachment in inner_state.attachments:
        if attachment.content_type == "message/delivery-status":
            # Our rendering of a forwarded bounce's report, not a file: left in, it would
            # make the customer who forwarded a bounce look like a bounce themselves.
            continue
        # Content-IDs belong to the forwarded message's HTML; left on, they could stand in
        # for images the outer message's HTML refers to.
        state.attachments.append(replace(attachment, content_id=None, enclosed_in=attachment.enclosed_in or filename))


def _decode_enclosed(part: Message, inner: Message, state: _State) -> Message:
    """RFC 2046 §5.2.1 forbids encoding message/rfc822, yet base64 happens (stalwart rfc/008): decode and re-read."""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    if encoding not in ("base64", "quoted-printable"):
        return inner
    text = _message_bytes(inner).lstrip(b"\r\n")
    try:
        raw = (
            base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", text))
            if encoding == "base64"
            else quopri.decodestring(text)
        )
    except (binascii.Error, ValueError):
        state.problem("bad-attachment", f"message/rfc822 in broken {encoding}")
        return inner
    return BytesParser(policy=_POLICY).parsebytes(raw)


def _external_body(part: Message, children: list[Message], state: _State) -> None:
    """RFC 2046 §5.2.3: a reference to a file stored elsewhere; keep the reference under the file's name."""
    name = _text_param(part, "name", "content-type", state)
    filename = re.split(r"[\\/]", name)[-1] if name else ""
    state.attachments.append(
        Attachment(
            filename=filename or _default_name("message/external-body", len(state.attachments) + 1),
            content_type="message/external-body",
            content=_message_bytes(children[0]) if children else b"",
            content_id=_content_id(part),
        )
    )


def _message_bytes(msg: Message) -> bytes:
    for attempt in (policy.default, policy.compat32):
        try:
            return msg.as_bytes(policy=attempt)
        except Exception:  # noqa: S112 - try the next policy, then the string form
            continue
    try:
        return msg.as_string(policy=policy.compat32).encode("utf-8", "surrogateescape")
    except Exception:
        return b""


def _delivery_status(blocks: list[Message], state: _State) -> None:
    """RFC 3464 §2.1: keep the per-message and per-recipient fields as a text attachment.

    The stdlib parses message/delivery-status into header blocks; `automated.detect_automated`
    reads this attachment (content type message/delivery-status) to list bounced recipients.
    """
    lines: list[str] = []
    for block in blocks:
        for name, value in block.raw_items():
            lines.append(f"{name}: {_raw_to_str(_unfold(str(value)), state)}")
        lines.append("")
    state.attachments.append(
        Attachment(
            filename="delivery-status.txt",
            content_type="message/delivery-status",
            content="\n".join(lines).encode("utf-8"),
        )
    )


def _unpack_tnef(data: bytes, state: _State) -> bool:
    """Extract the files inside an Outlook winmail.dat; False (and a problem) when that fails."""
    try:
        content = tnef.unpack(data)
    except tnef.TnefError as exc:
        state.problem("tnef-failed", str(exc))
        return False
    if not content.files and not (content.html or content.text or content.rtf):
        state.problem("tnef-failed", "no attachments or body inside")
        return False
    had_body = bool(state.text_parts or state.html_parts)
    if content.html and not state.html_parts:
        html = content.html
        state.html_parts.append(html if isinstance(html, str) else decode_bytes(html).text)
    if content.text and not state.text_parts:
        state.text_parts.append(content.text.replace("\r\n", "\n"))
    if content.rtf and not had_body and not (content.html or content.text):
        # Outlook's "rich text" mail: the body exists only as RTF inside the winmail.dat. Its text
        # becomes the body; the RTF stays attached for its formatting.
        text = _rtf_text(content.rtf)
        if text:
            state.text_parts.append(text)
        shown = "shown as text" if text else "no text could be read from it"
        state.problem("tnef-rtf-body", f"the body is RTF only; {shown}, the original attached as message.rtf")
        state.attachments.append(
            Attachment(filename="message.rtf", content_type="application/rtf", content=content.rtf)
        )
    for item in content.files:
        state.attachments.append(
            Attachment(filename=item.filename, content_type=item.content_type, content=item.content)
        )
    return True


# striprtf ships py.typed but leaves its one function unannotated.
rtf_to_text: Callable[..., str] = _untyped_rtf_to_text


def _rtf_text(rtf: bytes) -> str:
    """The text of an RTF document ("" when it cannot be read); RTF is 7-bit, with its code page declared inside."""
    try:
        text = rtf_to_text(rtf.decode("latin-1"), errors="ignore")
    except Exception:  # a broken document must not lose the mail: the RTF stays attached
        return ""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip()


def iter_parts(msg: Message) -> Iterator[Message]:
    """Walk a parsed message without recursion (deeply nested hostile mail stays cheap)."""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        yield part
        if depth < MAX_DEPTH and part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))
