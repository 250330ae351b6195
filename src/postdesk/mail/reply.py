"""Plain-text reply splitting: what the sender just wrote versus quoted history and signature, in many languages."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

from postdesk.mail.model import ReplyParts

# Postdesk's own precompiled patterns, tried line by line with cheap prefilters. They cover what
# mail-parser-reply's header patterns found (it scanned the whole text with every language's
# patterns and cost ~8 ms a mail); that library is kept only as the baseline in bench/parse.py.
# The forms come from the discourse-email-reply-trimmer and talon corpora, gen_mail.py's clients,
# and Yandex, mail.ru, Gmail-fa and Foxmail replies.

# "X wrote:" endings per language.
_WROTE = (
    r"wrote|writes|schrieb|a écrit|a ecrit|escribió|escribio|ha scritto|schreef|het volgende geschreven|"
    r"escreveu|napisał\(a\)|napisał|napisal|pisze|napsal\(a\)|nadesłał|skrev|kirjoitti|написал\(а\)|написала|"
    r"написал|пишет|пише|написав\(ла\)|написав|نوشت|نوشته است|写道|寫道|書きました|작성하였습니다|작성"
)
# The same words as literals: `str.endswith` with a tuple is a C-speed prefilter per line.
_WROTE_WORDS = tuple(word.replace("\\", "") for word in _WROTE.split("|"))
_WROTE_ANYWHERE = re.compile(_WROTE, re.IGNORECASE)
# How quote headers open: "On <date>", "Am <date>", a date digit, a Russian weekday, "在 <date>".
_OPENER_WORDS = r"on|am|le|el|il|op|em|w dniu|dnia|dne|den|at|в|во|у|пн|вт|ср|чт|пт|сб|вс"
_WROTE_START = re.compile(rf"^[\s>*-]*(?:(?:{_OPENER_WORDS})\b|\d|在|于|於|در|روز)", re.IGNORECASE)
# The same openings as words only, for headers wrapped over several lines and for headers whose
# "wrote" word is not at the end: "Am 03.02.2016 schrieb Max <m@example.de>:" (Gmail-de).
_WROTE_START_WORD = re.compile(r"^[>\s*-]*(?:on|am|le|el|il|op|em|w dniu|dnia|dne|den)\s", re.IGNORECASE)
# "Max Mustermann <m@example.de> schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:" (Gmail-de, Inbox).
_WROTE_ON = re.compile(rf"(?:{_WROTE})\s+(?:on|am|le|el|den)\b", re.IGNORECASE)
# "2013/7/20 sam via Discourse Meta <info@discourse.org>", "вт, 5 янв. 2016 г. в 23:39, Erlend
# <info@discourse.org>:" — a date, a name and an address, colon optional (old Gmail, Gmail-ru).
_DATE_NAME_ADDRESS = re.compile(r"\d{4}\b.{1,80}<[^@<>\s]+@[^@<>\s]+\.[^@<>\s]+>\s*[:：]?$")
_DATE_FIRST = re.compile(r"^[^\d<]{0,16}\d")
# "2016-03-03 17:21 GMT+01:00 Some One": old Gmail's header with the address lost in wrapping.
_ISO_DATE_NAME = re.compile(r"^[\s>]*\d{4}-\d\d-\d\d \d{1,2}:\d\d GMT[+-]\d\d:\d\d [^\W\d_][\w .'-]*$")
# Quote headers whose "wrote" word is the name's neighbour need the name to look like a name.
_NAME_PARTICLES = frozenset({"via", "from", "de", "da", "van", "von", "der", "den", "la", "le", "du", "and", "&"})

_FORWARD = re.compile(
    r"^[\s*>]*(?:-{2,}\s*(?:forwarded message|forwarded e-?mail|weitergeleitete nachricht|message transféré|"
    r"message transfere|mensaje reenviado|mensaje original reenviado|messaggio inoltrato|doorgestuurd bericht|"
    r"пересылаемое сообщение|пересланное сообщение|переслане повідомлення|пересланий лист|转发的邮件|已转发邮件|"
    r"轉寄的郵件|پیام هدایت[‌ ]?شده|پیام بازارسال[‌ ]?شده|پیام ارسال[‌ ]?شده)\s*-{2,}|"
    r"begin forwarded message\s*:|anfang der weitergeleiteten nachricht\s*:|début du message réexpédié\s*:|"
    r"inicio del mensaje reenviado\s*:|начало переадресованного сообщения\s*:|початок пересланого повідомлення\s*:|"
    r"开始转发的邮件\s*[:：]|轉寄的郵件開始\s*[:：])",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^[\s*]*(?:-{2,}\s*(?:original message|original e-?mail|reply message|ursprüngliche nachricht|"
    r"originalnachricht|message d'origine|message original|mensaje original|mensagem original|"
    r"messaggio originale|oorspronkelijk bericht|oprindelig meddelelse|opprinnelig melding|ursprungligt meddelande|"
    r"původní zpráva|wiadomość oryginalna|исходное сообщение|оригинальное сообщение|оригінальне повідомлення|"
    r"вихідне повідомлення|原始邮件|原始郵件|پیام اصلی)\s*-{2,}|"
    r"-{5,}\s*(?:原始邮件|原始郵件|original)\s*-{5,}|"
    r"_{20,}\s*$|-{20,}\s*$)",
    re.IGNORECASE,
)
# Characters a separator or forward line can start with (after spaces); other lines skip the regexes.
_MARKER_FIRST = frozenset("-_*>bBaAdDiIнНпП开轉")
# Outlook-style header blocks: a From line followed within a few lines by Sent/Date/To.
_FROM_FIELD = re.compile(
    r"^\s*[*>]*\s*(?:from|von|de|da|van|od|från|fra|от|від|发件人|寄件者|從|از)\s*[*]*\s*[:：]", re.IGNORECASE
)
_SENT_FIELD = re.compile(
    r"^\s*[*>]*\s*(?:sent|date|to|subject|cc|organization|organisation|organización|gesendet|datum|an|betreff|"
    r"envoyé|date d'envoi|à|objet|enviado|"
    r"enviado el|fecha|para|asunto|inviato|data|oggetto|verzonden|aan|onderwerp|wysłano|temat|skickat|till|ämne|"
    r"sendt|til|emne|dato|odesláno|komu|předmět|отправлено|дата|кому|тема|надіслано|відправлено|"
    r"发送时间|日期|收件人|主题|抄送|寄件日期|傳送時間|ارسال شده|تاریخ|به|موضوع)"
    r"\s*[*]*\s*[:：]",
    re.IGNORECASE,
)
# Header field values that look like mail metadata: an address or a clock time.
_FIELD_VALUE = re.compile(r"@|\d:\d\d")
# A header line without a "wrote" word needs an address, a clock time or a year in it.
_HEADERISH = re.compile(r"@|\d:\d\d|\d{4}")
_DASH_SIGNATURE = re.compile(r"^(?:-- ?|--)\s*$")
# Phone and app sign-offs; everything from here to the end is signature.
_SIGN_OFF = re.compile(
    r"^[\s(<]*(?:sent from my |sent from (?:\[?mail|outlook|yahoo|samsung|windows|mailbox|gmail|proton|my)|"
    r"sent via |sent with |sent from a |get (?:\[?outlook|mailbox) for |from my (?:iphone|ipad|android)|"
    r"von meinem .{1,40} gesendet|gesendet von meinem|gesendet mit |diese nachricht wurde von meinem|"
    r"envoyé de mon|envoyé depuis mon|envoyé à partir de|obtenir outlook pour|"
    r"enviado desde mi|enviado desde |enviado con |enviado do meu|obtener outlook para|inviato da|"
    r"verzonden met|verzonden vanaf|verstuurd vanaf mijn|verstuurd met|wysłane z|wysłano z|skickat från|"
    r"sendt fra min|sendt fra |odesláno z|"
    r"отправлено с |отправлено из |отправлено со |послано с |получить outlook для|"
    r"надіслано з |надіслано із |відправлено з |"
    r"发自我的|发自|来自我的|从我的 ?iphone发送|來自我的|從我的 ?iphone ?傳送|"
    r"ارسال شده از|ارسال‌شده از|فرستاده شده از)",
    re.IGNORECASE,
)
# The letters _SIGN_OFF's phrases start with: a cheap test that spares most lines the regex.
_SIGN_OFF_FIRST = frozenset("(<sgfvdeoiwпонв发来从來從اف")
_SIGN_OFF_MAX_LENGTH = 80  # "Sent from my …" in a longer line is a sentence of the reply
# Longer lines are prose, not a quote header.
_HEADER_MAX_LENGTH = 250
# A closing line such as "Regards, Roman" that some senders put below the quoted history.
_CLOSING = re.compile(
    r"^\s*(?:(?:regards|best|kind regards|best regards|warm regards|cheers|thanks|thank you|many thanks|sincerely|"
    r"yours|br|mit freundlichen grüßen|freundliche grüße|viele grüße|beste grüße|liebe grüße|grüße|gruß|mfg|"
    r"danke|cordialement|bien à vous|bien cordialement|merci|salutations|bonne journée|saludos|atentamente|"
    r"un saludo|gracias|с уважением|спасибо|всего доброго|всего хорошего|з повагою|дякую|щиро|"
    r"با تشکر|با سپاس|ممنون|groeten|met vriendelijke groet|hälsningar|mvh|med vennlig hilsen|vennlig hilsen|"
    r"pozdrawiam|distinti saluti|cordiali saluti|grazie)(?!\w)|此致|谢谢|祝好)",
    re.IGNORECASE,
)
_CLOSING_MAX_LINES = 6
# Lines of nothing but one repeated mark ("***", "====", "ᐧ" from Gmail tracking add-ons) are
# decoration, not text, at the end of the visible part (discourse delimiters case).
_DECORATION = re.compile(r"^\s*(?:([-_=*#~+.•·ᐧ])\1*)?\s*$")
# "reply text--- On <date>, X wrote:" — a header glued to the end of a reply line (talon).
_GLUED_HEADER = re.compile(rf"^(.*?\S)\s*-{{2,}}\s*((?:{_OPENER_WORDS})\s.*(?:{_WROTE})\s*[:：]?\s*)$", re.IGNORECASE)
# What a piece of a wrapped link has and a one-word answer ("Yes.") has not.
_LINK_PIECE = re.compile(r"[=/?&%#]|https?:|www\.")
# Supercite-style quoting with the author's initials ("JS> text", "C>").
_INITIALS_QUOTE = re.compile(r"^\s*[A-Z]{1,3}>(?:\s|$)")


class _Kind(Enum):
    ATTRIBUTION = "attribution"  # "On <date>, X wrote:" lines; the quote may follow with ">" or without
    HISTORY = "history"  # an Outlook header block or separator: everything after it is history
    QUOTE = "quote"  # a ">" block without a header
    FORWARD = "forward"  # a forwarded message: its content is for the reader, not history


@dataclass(frozen=True, slots=True)
class _Boundary:
    kind: _Kind
    start: int  # first line of the header, separator or quote block
    end: int  # last line of the header (start - 1 for a bare quote block)


def _has_colon(line: str) -> bool:
    return ":" in line or "：" in line


def _is_quoted(line: str) -> bool:
    stripped = line.lstrip()
    return stripped[:1] == ">" or (">" in stripped[1:4] and _INITIALS_QUOTE.match(stripped) is not None)


def _unquoted(line: str) -> str:
    return line.strip().lstrip(">").strip()


def _is_header_field(line: str) -> bool:
    return _has_colon(line) and (_FROM_FIELD.match(line) is not None or _SENT_FIELD.match(line) is not None)


def _is_sign_off(line: str) -> bool:
    if len(line) > _SIGN_OFF_MAX_LENGTH:
        return False
    stripped = line.lstrip()
    return stripped[:1].lower() in _SIGN_OFF_FIRST and _SIGN_OFF.match(line) is not None


def _is_signature_start(line: str) -> bool:
    return (line[:2] == "--" and _DASH_SIGNATURE.match(line) is not None) or _is_sign_off(line)


def _is_forward(line: str) -> bool:
    stripped = line.lstrip(" \t>")
    return bool(stripped) and stripped[0] in _MARKER_FIRST and _FORWARD.match(line) is not None


def _next_content(lines: list[str], index: int, stop: int) -> int:
    """Index of the first non-blank line at or after `index`, or `stop`."""
    while index < stop and not lines[index].strip():
        index += 1
    return index


def _looks_like_name(words: list[str]) -> bool:
    """Whether words are a name ("John Smith", "Roman Tkachenko from Hacker News", "张伟"), not "Here is what he"."""
    if not 1 <= len(words) <= 6:
        return False
    for word in words:
        if word.lower() in _NAME_PARTICLES:
            continue
        first = word.lstrip("\"'(")[:1]
        if first.islower():
            return False
    return True


def _attribution_start(lines: list[str], index: int) -> int:
    """First line of a quote header that ends on `index` but was wrapped over the lines above."""
    # Narrow clients split the header over two or three lines (talon polymail and
    # quotation_separator cases); Polymail even leaves blank lines around "<mailto:…>". Take the
    # earliest line above that opens with "On"/"Am"/…, else the nearest one opening with a digit.
    word_start: int | None = None
    digit_start: int | None = None
    seen = 0
    mailto = False
    for above_index in range(index - 1, max(index - 7, -1), -1):
        above = lines[above_index].strip()
        if not above:
            if mailto:
                continue
            break
        if above.endswith((".", "!", "?")):
            break  # the end of a sentence of the reply, not part of a header
        seen += 1
        mailto = mailto or "mailto:" in above
        if seen > (3 if mailto else 2):
            break
        if _WROTE_START_WORD.match(above):
            word_start = above_index
        elif digit_start is None and _WROTE_START.match(above):
            digit_start = above_index
    if word_start is not None:
        return word_start
    return digit_start if digit_start is not None else index


def _attribution(lines: list[str], index: int, stop: int) -> tuple[int, int] | None:
    """(first, last) line of an "On <date>, <name> wrote:" header ending or sitting on line `index`."""
    line = lines[index]
    stripped = line.strip()
    core = stripped.strip(" \t\xa0>*-").rstrip(" \t\xa0:：.-*")
    if len(core) > _HEADER_MAX_LENGTH:
        return None
    if core.lower().endswith(_WROTE_WORDS):
        start = _attribution_start(lines, index)
        if start < index:
            return start, index
        if stripped.startswith(">"):
            return None  # a header inside the quote: the quote block itself is the boundary
        following = _next_content(lines, index + 1, stop)
        wrapped_in_dashes = stripped.startswith("-") or stripped.endswith("-")
        if (
            _WROTE_START.match(core)
            or _HEADERISH.search(core)
            or "<" in core
            or wrapped_in_dashes
            or (following < stop and _is_quoted(lines[following]))
        ):
            return index, index
        match = _WROTE_ANYWHERE.search(core)
        if match is not None and _looks_like_name(core[: match.start()].replace(",", " ").split()):
            return index, index
        return None
    # "Am <date> schrieb <name> <address>:" or "<name> <address> schrieb am <date>:" — the "wrote"
    # word is not last; the closing colon may have been wrapped onto the next line.
    end = index
    if stripped[-1] not in ":：":
        following_line = lines[index + 1].strip() if index + 1 < stop else ""
        if not (0 < len(following_line) <= 80 and following_line[-1] in ":："):
            return None
        end = index + 1
    if len(stripped) > _HEADER_MAX_LENGTH:
        return None
    wrote = _WROTE_ANYWHERE.search(stripped)
    if wrote is None:
        return None
    if _WROTE_START_WORD.match(stripped):
        return index, end
    if "@" in stripped and (_WROTE_ON.search(stripped, wrote.start()) or _WROTE_START.match(stripped)):
        return index, end  # "søn. 30. apr. 2017 kl. 00.26 skrev David <d@example.com>:"
    return None


def _dated_attribution(lines: list[str], index: int, stripped: str, stop: int) -> tuple[int, int] | None:
    """Headers without a "wrote" word: a date, a name and maybe an address (old Gmail, Gmail-ru)."""
    if _ISO_DATE_NAME.match(stripped) or (
        len(stripped) <= 160 and _DATE_FIRST.match(stripped) and _DATE_NAME_ADDRESS.search(stripped)
    ):
        above = lines[index - 1].strip() if index > 0 else ""
        if above and _WROTE_START.match(above) and not _WROTE_START.match(stripped):
            return index - 1, index  # "2016-10-24 15:36 GMT+02:00 Foo bar <\ninfo@foo.bar>:"
        return index, index
    if stripped[-1] in ":：" and _HEADERISH.search(stripped) and ("@" in stripped or _WROTE_START.match(stripped)):
        # "1 мар. 2024 г. в 10:00, Иван <i@example.ru>:" right above a ">" block: Gmail-ru writes no
        # "wrote" word; Gmail always quotes with ">", which is what marks it.
        following = _next_content(lines, index + 1, stop)
        if following < stop and _is_quoted(lines[following]):
            above = lines[index - 1] if index > 0 else ""
            if above.strip() and _WROTE_START.match(above) and not _WROTE_START.match(stripped):
                return index - 1, index
            return index, index
    return None


def _find_boundary(
    lines: list[str], begin: int, stop: int, forced: Collection[int], scan_stop: int | None = None
) -> _Boundary | None:
    """The first quote header, separator, ">" block or forwarded message in lines[begin:stop].

    Only lines before `scan_stop` may start one; the lines up to `stop` still complete it.
    """
    for index in range(begin, stop if scan_stop is None else scan_stop):
        if index in forced:
            return _Boundary(_Kind.HISTORY, index, index)
        line = lines[index]
        stripped = line.strip()
        if not stripped:
            continue
        span = _attribution(lines, index, stop)
        if span is not None:
            return _Boundary(_Kind.ATTRIBUTION, max(span[0], begin), span[1])
        if _is_quoted(line):
            opening = [_unquoted(x) for x in lines[index : min(index + 4, stop)]]
            first = _next_content(opening, 0, len(opening))
            if first < len(opening) and _is_forward(opening[first]):
                return _Boundary(_Kind.FORWARD, index, index)
            return _Boundary(_Kind.QUOTE, index, index - 1)
        first_char = stripped[0]
        if first_char in _MARKER_FIRST:
            if _FORWARD.match(line):
                return _Boundary(_Kind.FORWARD, index, index)
            if _SEPARATOR.match(line):
                return _Boundary(_Kind.HISTORY, index, index)
        if _has_colon(stripped):
            if _FROM_FIELD.match(line) and any(_SENT_FIELD.match(x) for x in lines[index + 1 : min(index + 5, stop)]):
                return _Boundary(_Kind.HISTORY, index, index)
            # Two header fields in a row ("Date: …\nTo: …", "Subject: …\nFrom: …") with mail-like
            # values open a quoted header block too, as mail-parser-reply's from_header patterns had it.
            if (
                index + 1 < stop
                and _is_header_field(line)
                and _is_header_field(lines[index + 1])
                and _FIELD_VALUE.search(line + lines[index + 1])
            ):
                return _Boundary(_Kind.HISTORY, index, index)
        if first_char.isdigit() or _has_colon(stripped) or ">" in stripped:
            span = _dated_attribution(lines, index, stripped, stop)
            if span is not None:
                return _Boundary(_Kind.ATTRIBUTION, max(span[0], begin), span[1])
    return None


def _quote_block_end(lines: list[str], index: int, stop: int) -> int:
    """One past the last ">" line of the quote block starting at or after `index` (blank lines inside allowed)."""
    end = index
    cursor = index
    while cursor < stop:
        line = lines[cursor]
        if _is_quoted(line):
            end = cursor + 1
        elif line.strip():
            # A wrapped link ("_nonce=3dd518)") between ">" lines still belongs to the quote (talon
            # link_breaks_quotation_markers_sequence); a line of words is an answer.
            following = _next_content(lines, cursor + 1, stop)
            fragment = len(line.split()) == 1 and len(line) <= 80 and _LINK_PIECE.search(line) is not None
            if not (fragment and following < stop and _is_quoted(lines[following])):
                break
        cursor += 1
    return end


def _has_own_text(lines: list[str], begin: int, stop: int) -> bool:
    """Whether lines[begin:stop] hold something the sender wrote (not blank, sign-offs or decoration)."""
    return any(line.strip() and not _is_sign_off(line) and not _DECORATION.match(line) for line in lines[begin:stop])


def _tail_is_only_signature(lines: list[str], begin: int, stop: int, forced: Collection[int]) -> bool:
    """Whether everything from `begin` on is blank, a signature, or more history."""
    first = _next_content(lines, begin, stop)
    if first >= stop:
        return True
    line = lines[first]
    if _is_signature_start(line) or _DECORATION.match(line):
        return True
    boundary = _find_boundary(lines, first, stop, forced, scan_stop=first + 1)
    return boundary is not None and boundary.kind is not _Kind.FORWARD


def _is_closing(lines: list[str], begin: int, stop: int) -> bool:
    """A short closing such as "Regards, Roman" is all that follows the quote (talon reply_wraps cases)."""
    content: list[str] = []
    for index in range(begin, stop):
        line = lines[index]
        if line.strip():
            if _is_quoted(line) or len(content) == _CLOSING_MAX_LINES:
                return False
            content.append(line)
    return bool(content) and _CLOSING.match(content[0]) is not None


def _mark_history(lines: list[str], begin: int, stop: int, quoted: list[bool], forced: Collection[int]) -> None:
    """Set quoted[i] for the lines of lines[begin:stop] that are quoted history.

    Top-posted replies lose everything from the first quote header on. When the sender wrote
    below or between quotes, the history is taken apart instead: a quote followed by the answer
    (bottom-posting) goes, quotes between answers (inline replies) stay because the answers need
    them, and only their "wrote:" header goes — as discourse-email-reply-trimmer expects.
    """
    while begin < stop:
        boundary = _find_boundary(lines, begin, stop, forced)
        if boundary is None or boundary.kind is _Kind.FORWARD:
            return  # a forwarded message is content the reader must see, with whatever it quotes
        own_before = _has_own_text(lines, begin, boundary.start)
        if boundary.kind is _Kind.HISTORY:
            if own_before:
                quoted[boundary.start : stop] = [True] * (stop - boundary.start)
            return  # a header block at the very top: nothing else to show, keep it all
        header_end = boundary.end + 1
        body = _next_content(lines, header_end, stop)
        if body >= stop or not _is_quoted(lines[body]):
            # An attribution followed by history without ">" marks (Outlook-like quoting).
            if own_before:
                quoted[boundary.start : stop] = [True] * (stop - boundary.start)
                return
            # A header at the very top followed by text: the reply comes below it (discourse
            # embedded_email_17/18); drop the header and read on.
            quoted[boundary.start : header_end] = [True] * (header_end - boundary.start)
            begin = header_end
            continue
        quote_end = _quote_block_end(lines, body, stop)
        if _tail_is_only_signature(lines, quote_end, stop, forced):
            if own_before:
                quoted[boundary.start : stop] = [True] * (stop - boundary.start)
            return  # nothing but quotes: the visible part falls back to the whole text
        bottom_posted = not own_before and boundary.kind is _Kind.ATTRIBUTION
        if bottom_posted or (own_before and _is_closing(lines, quote_end, stop)):
            # The answer below "X wrote:" and its quote, or just a closing line under the quote:
            # the quote is history.
            quoted[boundary.start : quote_end] = [True] * (quote_end - boundary.start)
        else:
            # Answers between quotes: keep the quotes for context, drop only the header.
            quoted[boundary.start : header_end] = [True] * (header_end - boundary.start)
        begin = quote_end


def _unglue_headers(lines: list[str]) -> list[str]:
    """Put a quote header that shares its line with reply text ("bla--- On …, X wrote:") on its own line."""
    out: list[str] = []
    for line in lines:
        if "-" in line and line.rstrip().lower().rstrip(":： ").endswith(_WROTE_WORDS):
            match = _GLUED_HEADER.match(line)
            if match is not None:
                out.extend((match.group(1), match.group(2)))
                continue
        out.append(line)
    return out


def quoted_lines(lines: list[str], forced: Collection[int] = ()) -> list[bool]:
    """For each line, whether it is quoted history; `forced` lines start history unconditionally.

    The HTML splitter renders HTML to lines and passes the lines where a client's quote container
    or reply header element starts as `forced`.
    """
    quoted = [False] * len(lines)
    _mark_history(lines, 0, len(lines), quoted, forced)
    return quoted


def _visible_lines(lines: list[str], quoted_mask: list[bool]) -> list[str]:
    """The lines not quoted, with one blank line where history between two paragraphs was taken out."""
    visible: list[str] = []
    removed = False
    for line, is_quoted in zip(lines, quoted_mask, strict=True):
        if is_quoted:
            removed = True
            continue
        if removed and not line.strip() and visible and not visible[-1].strip():
            continue
        if line.strip():
            removed = False
        visible.append(line)
    return visible


def split_reply(text: str) -> ReplyParts:
    """Split a plain-text body into the new reply, the quoted history and the signature.

    Deterministic and line based: quoted history starts at the first quote header ("On …
    wrote:" in many languages, an Outlook header block or separator) or ">" block; a forwarded
    message stays visible; the signature starts at an RFC 3676 §4.3 "-- " line or a phone
    sign-off. When that would leave nothing visible, the whole text is the visible part.
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = _unglue_headers(normalized.split("\n"))
    quoted_mask = quoted_lines(lines)
    body_lines = _visible_lines(lines, quoted_mask)
    quoted = "\n".join(line for line, is_quoted in zip(lines, quoted_mask, strict=True) if is_quoted).strip("\n")

    signature = ""
    for index, line in enumerate(body_lines):
        if index > 0 and _is_signature_start(line):
            signature = "\n".join(body_lines[index:]).strip("\n")
            body_lines = body_lines[:index]
            break
    while body_lines and _DECORATION.match(body_lines[-1]):
        body_lines.pop()
    visible = "\n".join(body_lines).strip()
    if not visible:
        return ReplyParts(visible=normalized.strip(), quoted="", signature="")
    return ReplyParts(visible=visible, quoted=quoted, signature=signature.strip())
