"""Mail bodies: HTML sanitising, HTML to text, and visible reply versus quoted history and signature."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

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

# mail-parser-reply's own languages; its header regex is our baseline for "where quoting starts".
_MPR_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs", "ja", "ko", "zh"]

# "X wrote:" endings per language. ru/uk/fa were missing upstream (DESIGN.md §9); the forms
# come from discourse-email-reply-trimmer's russian/ukrainian cases and Yandex, mail.ru,
# Gmail-fa and Foxmail replies.
_WROTE = (
    r"wrote|writes|schrieb|a écrit|a ecrit|escribió|escribio|ha scritto|schreef|escreveu|napisał|napisal|"
    r"skrev|kirjoitti|написал\(а\)|написала|написал|пишет|пише|написав\(ла\)|написав|написала|"
    r"نوشت|نوشته است|写道|寫道|書きました|작성"
)
_WROTE_LINE = re.compile(rf"(?:{_WROTE})\s*[:：]?\s*$", re.IGNORECASE)
_WROTE_START = re.compile(
    r"^\s*(?:on|am|le|el|il|op|em|w dniu|den|в|во|у|пн|вт|ср|чт|пт|сб|вс|\d|在|于|於|"
    r"در|روز)",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|исходное сообщение|пересылаемое сообщение|"
    r"оригінальне повідомлення|вихідне повідомлення|forwarded message|weitergeleitete nachricht|"
    r"пересланное сообщение|原始邮件|原始郵件|پیام اصلی)\s*-{2,}|"
    r"-{5,}\s*(?:原始邮件|原始郵件)\s*-{5,}|"
    r"begin forwarded message:|"
    r"_{20,}\s*$|-{20,}\s*$)",
    re.IGNORECASE,
)
# Outlook-style header blocks: a From line followed within a few lines by Sent/Date/To.
_FROM_FIELD = re.compile(
    r"^\s*[*>]*\s*(?:from|von|de|da|van|od|från|fra|от|від|发件人|寄件者|從|از)\s*[*]*\s*[:：]", re.IGNORECASE
)
_SENT_FIELD = re.compile(
    r"^\s*[*>]*\s*(?:sent|date|to|subject|gesendet|datum|an|betreff|envoyé|date d'envoi|à|objet|enviado|"
    r"fecha|para|asunto|inviato|data|oggetto|verzonden|aan|onderwerp|wysłano|skickat|отправлено|дата|кому|"
    r"тема|надіслано|відправлено|发送时间|日期|收件人|主题|寄件日期|傳送時間|ارسال شده|تاریخ|به|موضوع)"
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


def _quote_start(lines: list[str]) -> int | None:
    """Index of the first line of quoted history, or None when there is none."""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if _SEPARATOR.match(line):
            return index
        if _FROM_FIELD.match(line) and any(_SENT_FIELD.match(nxt) for nxt in lines[index + 1 : index + 5]):
            return index
        if _WROTE_LINE.search(stripped) and (_WROTE_START.match(stripped) or "@" in stripped or len(stripped) < 200):
            # "On <date>, <name> wrote:" — split over up to three lines by narrow clients (talon polymail case).
            start = index
            for back in (1, 2):
                if index - back < 0 or not lines[index - back].strip():
                    break
                if _WROTE_START.match(lines[index - back]):
                    start = index - back
                    break
            return start
        if stripped.startswith(">") and all(
            not rest.strip() or rest.lstrip().startswith(">") or _SIGN_OFF.match(rest) for rest in lines[index:]
        ):
            return index
    return None


def _baseline_quote_start(text: str) -> int | None:
    """Where mail-parser-reply finds the first quote header (its line number), if anywhere."""
    try:
        from mailparser_reply import EmailReplyParser

        message = EmailReplyParser(languages=list(_MPR_LANGUAGES)).read(text)
        replies = message.replies
    except Exception:  # the library is regex-heavy third-party code; never let it break a mail
        return None
    if len(replies) < 2:
        return None
    header = str(replies[1].headers or "").strip()
    if not header:
        return None
    first_line = header.splitlines()[0].strip()
    for index, line in enumerate(text.split("\n")):
        if first_line and line.strip() == first_line:
            return index
    return None


def split_reply(text: str) -> ReplyParts:
    """Split a plain-text body into the new reply, the quoted history and the signature.

    Deterministic and line based: quoted history starts at the first quote header (ours, or
    mail-parser-reply's), Outlook separator or trailing ">" block; the signature starts at an
    RFC 3676 §4.3 "-- " line or a phone sign-off. When that would leave nothing visible,
    the whole text is the visible part.
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = normalized.split("\n")
    cut = _quote_start(lines)
    baseline = _baseline_quote_start(normalized)
    if baseline is not None and (cut is None or baseline < cut):
        cut = baseline
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
        if normalized.strip() and not all(not ln.strip() or ln.lstrip().startswith(">") for ln in lines):
            return ReplyParts(visible=normalized.strip(), quoted="", signature="")
        return ReplyParts(visible=normalized.strip(), quoted="", signature="")
    return ReplyParts(visible=visible, quoted=quoted, signature=signature.strip())
