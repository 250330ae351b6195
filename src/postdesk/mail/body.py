"""Mail bodies: HTML sanitising, HTML to text, and visible reply versus quoted history and signature."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re

import nh3
from inscriptis import get_text
from inscriptis.model.config import ParserConfig

from postdesk.mail.model import ReplyParts

_ALLOWED_TAGS = {
    "a", "abbr", "address", "b", "big", "blockquote", "br", "caption", "center", "cite", "code",
    "col", "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span",
    "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt",
    "u", "ul",
}  # fmt: skip

_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "title", "dir", "lang", "align", "valign", "width", "height", "class"},
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "border", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor", "summary"},
    "td": {"colspan", "rowspan", "bgcolor", "nowrap"},
    "th": {"colspan", "rowspan", "bgcolor", "nowrap", "scope"},
    "tr": {"bgcolor"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "li": {"value"},
    "blockquote": {"cite", "type"},
}

# Layout-only CSS; anything that can position content over the UI or load resources
# (position, url(), behavior, expression) is dropped.
_ALLOWED_STYLE = {
    "background-color", "border", "border-bottom", "border-collapse", "border-color", "border-left",
    "border-right", "border-spacing", "border-style", "border-top", "border-width", "color",
    "direction", "display", "font", "font-family", "font-size", "font-style", "font-weight",
    "height", "letter-spacing", "line-height", "list-style-type", "margin", "margin-bottom",
    "margin-left", "margin-right", "margin-top", "max-width", "min-width", "padding",
    "padding-bottom", "padding-left", "padding-right", "padding-top", "text-align",
    "text-decoration", "text-indent", "text-transform", "unicode-bidi", "vertical-align",
    "white-space", "width", "word-break", "word-wrap",
}  # fmt: skip

# cid: stays as-is for the web layer to rewrite to attachment URLs; remote http(s) images
# stay too, the web layer blocks them until the agent allows them (DESIGN.md §12).
_URL_SCHEMES = {"http", "https", "mailto", "cid", "tel"}


def sanitize_html(html: str) -> str:
    """Return `html` with scripts, styles, event handlers, forms, frames and unsafe URLs removed."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        clean_content_tags={"script", "style", "title", "head", "noscript", "template", "xml"},
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        filter_style_properties=_ALLOWED_STYLE,
        strip_comments=True,
    )


_TEXT_CONFIG = ParserConfig(display_links=False, display_images=False)


def html_to_text(html: str) -> str:
    """Render HTML to readable plain text (inscriptis keeps table and list layout)."""
    if not html or not html.strip():
        return ""
    text = get_text(html, _TEXT_CONFIG)
    lines = [line.rstrip() for line in text.splitlines()]
    return "\n".join(lines).strip("\n")


# --- reply / quote / signature ---------------------------------------------------------------
#
# Postdesk's own precompiled patterns, tried line by line with cheap prefilters and stopping
# at the first quote header. They cover what mail-parser-reply's header patterns found
# (it scanned the whole text with every language's patterns and cost ~8 ms a mail); that
# library is kept only as the baseline in bench/parse.py and the tests.

# "X wrote:" endings per language. ru/uk/fa were missing upstream (DESIGN.md §9); the forms
# come from discourse-email-reply-trimmer's russian/ukrainian cases and Yandex, mail.ru,
# Gmail-fa and Foxmail replies.
_WROTE = (
    r"wrote|writes|schrieb|a écrit|a ecrit|escribió|escribio|ha scritto|schreef|escreveu|napisał|napisal|"
    r"napsal\(a\)|nadesłał|skrev|kirjoitti|написал\(а\)|написала|написал|пишет|пише|написав\(ла\)|написав|"
    r"نوشت|نوشته است|写道|寫道|書きました|작성하였습니다|작성"
)
# The same words as literals: `str.endswith` with a tuple is a C-speed prefilter per line.
_WROTE_WORDS = tuple(word.replace("\\", "") for word in _WROTE.split("|"))
_WROTE_ANYWHERE = re.compile(_WROTE, re.IGNORECASE)
_WROTE_START = re.compile(
    r"^\s*(?:on|am|le|el|il|op|em|w dniu|dnia|dne|den|в|во|у|пн|вт|ср|чт|пт|сб|вс|\d|在|于|於|"
    r"در|روز)",
    re.IGNORECASE,
)
# The same openings as words ("On <date>", "Am <date>"), for headers whose "wrote" word is not
# at the end: "Am 03.02.2016 schrieb Max <m@example.de>:" (Gmail-de, Thunderbird-de).
_WROTE_START_WORD = re.compile(r"^[>\s]*(?:on|am|le|el|il|op|em|w dniu|dnia|dne|den)\s", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|oprindelig meddelelse|исходное сообщение|"
    r"пересылаемое сообщение|оригінальне повідомлення|вихідне повідомлення|forwarded message|"
    r"weitergeleitete nachricht|пересланное сообщение|原始邮件|原始郵件|پیام اصلی)\s*-{2,}|"
    r"-{5,}\s*(?:原始邮件|原始郵件)\s*-{5,}|"
    r"begin forwarded message:|"
    r"_{20,}\s*$|-{20,}\s*$)",
    re.IGNORECASE,
)
# Characters a separator line can start with (after spaces); other lines skip _SEPARATOR.
_SEPARATOR_FIRST = frozenset("-_bB")
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
_DASH_SIGNATURE = re.compile(r"^(?:-- ?|--)\s*$")
# Phone and app sign-offs; everything from here to the end is signature.
_SIGN_OFF = re.compile(
    r"^\s*(?:sent from my |sent from (?:outlook|mail|yahoo|samsung)|sent via |sent with |"
    r"get outlook for (?:ios|android)|von meinem .{1,40} gesendet|gesendet von meinem|envoyé de mon|"
    r"enviado desde mi|inviato da|verzonden met|wysłane z|skickat från|"
    r"отправлено с |отправлено из |надіслано з |发自我的|从我的 ?iphone发送|來自我的|"
    r"ارسال شده از|فرستاده شده از)",
    re.IGNORECASE,
)


def _has_colon(line: str) -> bool:
    return ":" in line or "：" in line


def _is_header_field(line: str) -> bool:
    return _has_colon(line) and (_FROM_FIELD.match(line) is not None or _SENT_FIELD.match(line) is not None)


def _wrote_header_start(lines: list[str], index: int, stripped: str) -> int | None:
    """First line of an "On <date>, <name> wrote:" header ending or sitting on line `index`, or None."""
    if stripped.rstrip(":： \t").lower().endswith(_WROTE_WORDS):
        if not (_WROTE_START.match(stripped) or "@" in stripped or len(stripped) < 200):
            return None
        if _WROTE_START_WORD.match(stripped):
            return index
        # Narrow clients split the header over up to three lines (talon polymail and
        # quotation_separator cases): take the earliest of the two lines above that opens with
        # "On"/"Am"/…, else the nearest one opening with a date digit.
        word_start: int | None = None
        digit_start: int | None = None
        for back in (1, 2):
            if index - back < 0 or not lines[index - back].strip():
                break
            above = lines[index - back]
            if _WROTE_START_WORD.match(above):
                word_start = index - back
            elif digit_start is None and _WROTE_START.match(above):
                digit_start = index - back
        if word_start is not None:
            return word_start
        return digit_start if digit_start is not None else index
    # "Am <date> schrieb <name> <address>:" — the "wrote" word is not last; the colon may
    # have been wrapped onto the next line (discourse embedded_email_german_6).
    ends_header = stripped[-1] in ":："
    if not ends_header and index + 1 < len(lines):
        following = lines[index + 1].strip()
        ends_header = 0 < len(following) <= 80 and following[-1] in ":："
    if ends_header and _WROTE_START_WORD.match(stripped) and _WROTE_ANYWHERE.search(stripped) is not None:
        return index
    return None


def _quote_start(lines: list[str]) -> int | None:
    """Index of the first line of quoted history, or None when there is none."""
    # trailing_quote[i]: every line from i on is blank, quoted (">") or a phone sign-off.
    count = len(lines)
    trailing_quote = [False] * (count + 1)
    trailing_quote[count] = True
    for index in range(count - 1, -1, -1):
        rest = lines[index].lstrip()
        if rest and not rest.startswith(">") and _SIGN_OFF.match(rest) is None:
            break  # every earlier line stays False
        trailing_quote[index] = True
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        first = stripped[0]
        if first in _SEPARATOR_FIRST and _SEPARATOR.match(line):
            return index
        if _has_colon(stripped):
            if _FROM_FIELD.match(line) and any(_SENT_FIELD.match(nxt) for nxt in lines[index + 1 : index + 5]):
                return index
            # Any two header fields in a row ("Date: …\nTo: …", "Subject: …\nFrom: …") open a
            # quoted header block too, as mail-parser-reply's from_header patterns had it.
            if index + 1 < count and _is_header_field(line) and _is_header_field(lines[index + 1]):
                return index
        start = _wrote_header_start(lines, index, stripped)
        if start is not None:
            return start
        if stripped[-1] in ":：" and ("@" in stripped or _WROTE_START.match(stripped)):
            # A header without a "wrote" word right above the trailing ">" block (Gmail-ru:
            # "1 мар. 2024 г. в 10:00, Иван <i@example.ru>:").
            following = index + 1
            while following < count and not lines[following].strip():
                following += 1
            if following < count and lines[following].lstrip().startswith(">") and trailing_quote[following]:
                above = lines[index - 1] if index > 0 else ""
                if above.strip() and _WROTE_START.match(above) and not _WROTE_START.match(stripped):
                    return index - 1  # "2016-10-24 15:36 GMT+02:00 Foo bar <\ninfo@foo.bar>:"
                return index
        if first == ">" and trailing_quote[index]:
            return index
    return None


def split_reply(text: str) -> ReplyParts:
    """Split a plain-text body into the new reply, the quoted history and the signature.

    Deterministic and line based: quoted history starts at the first quote header ("On …
    wrote:" in many languages, an Outlook header block or separator) or at a trailing ">"
    block; the signature starts at an RFC 3676 §4.3 "-- " line or a phone sign-off. When
    that would leave nothing visible, the whole text is the visible part.
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = normalized.split("\n")
    cut = _quote_start(lines)
    body_lines = lines if cut is None else lines[:cut]
    quoted = "" if cut is None else "\n".join(lines[cut:]).strip("\n")

    signature = ""
    for index, line in enumerate(body_lines):
        if index > 0 and (_DASH_SIGNATURE.match(line) or _SIGN_OFF.match(line)):
            signature = "\n".join(body_lines[index:]).strip("\n")
            body_lines = body_lines[:index]
            break
    visible = "\n".join(body_lines).strip()
    if not visible:
        return ReplyParts(visible=normalized.strip(), quoted="", signature="")
    return ReplyParts(visible=visible, quoted=quoted, signature=signature.strip())
