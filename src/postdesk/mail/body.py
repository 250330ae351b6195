"""Mail bodies: HTML sanitising, HTML to text, and visible reply versus quoted history in HTML."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import copy
import html as html_lib
import itertools
import re
from dataclasses import dataclass, replace
from enum import Enum

import nh3
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from lxml import etree

from postdesk.mail.model import ParsedMessage, ReplyParts
from postdesk.mail.reply import quoted_lines, split_reply
from postdesk.mail.thread_keys import is_forward_subject

__all__ = [
    "HtmlReplyParts", "html_to_text", "sanitize_html", "split_message_reply", "split_reply", "split_reply_html",
]  # fmt: skip

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

# Where a client's quoted history starts (see split_reply_html): Outlook on the web, Zimbra,
# Hotmail, Outlook for Mac, new Outlook.
_HISTORY_ID_VALUES = frozenset(
    {
        "divRplyFwdMsg", "x_divRplyFwdMsg", "appendonsend", "x_appendonsend", "zwchr", "stopSpelling",
        "OLK_SRC_BODY_SECTION", "mail-editor-reference-message-container",
    }
)  # fmt: skip
# Ids are dropped (they would clash with the page around the mail) except the few that mark where
# a client's quoted history starts, which split_reply_html needs after sanitising.
_ALLOWED_ID_VALUES: dict[str, dict[str, set[str]]] = {
    tag: {"id": set(_HISTORY_ID_VALUES)} for tag in ("div", "hr", "span")
}

# Layout-only CSS; anything that can position content over the UI or load resources
# (position, url(), behavior, expression) is dropped.
_ALLOWED_STYLE = {
    "background-color", "border", "border-bottom", "border-collapse", "border-color", "border-left",
    "border-right", "border-spacing", "border-style", "border-top", "border-top-color", "border-top-style",
    "border-top-width", "border-width", "color",
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
        tag_attribute_values=_ALLOWED_ID_VALUES,
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


# --- visible reply versus quoted history in HTML ---------------------------------------------
#
# The HTML is rendered to lines the way a reader sees it, with the quote containers of the
# common clients marked ">" and their reply-header elements marked as the start of history; the
# plain-text splitter then decides, so both formats follow one set of rules. Each line remembers
# where in the tree it starts, and the tree is cut there.

# Quote containers: their content is rendered as ">" lines. Gmail (div.gmail_quote, with the
# "On … wrote:" div.gmail_attr inside), Yahoo (div.yahoo_quoted), Thunderbird (div.moz-cite-prefix
# before its blockquote). Blockquotes count when a client marks them as citations: type="cite"
# (Apple Mail, Thunderbird) or a left quote bar (Outlook, mail.ru); a bare <blockquote> is also
# what editors use for indenting, so it counts only when the text around it says it is a quote.
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_quote_container", "yahoo_quoted", "moz-cite-prefix"})
# Elements where the reply header of quoted history starts: everything from them on is history.
# Outlook on the web (#divRplyFwdMsg, #appendonsend just above it; "x_" after a round trip),
# Zimbra (hr#zwchr), Hotmail (hr#stopSpelling), Outlook for Mac (#OLK_SRC_BODY_SECTION), new
# Outlook (#mail-editor-reference-message-container), Exchange (.OutlookMessageHeader).
_HISTORY_IDS = frozenset(value.lower() for value in _HISTORY_ID_VALUES)
_HISTORY_CLASSES = frozenset({"outlookmessageheader"})
# Desktop Outlook puts its "From: … Sent: …" block in a div with a top border; in a language our
# field names miss, the border and a leading "Label:" still mark it.
_TOP_BORDER = re.compile(r"border-top\s*:[^;]*solid|border-top-style\s*:\s*solid", re.IGNORECASE)
_LABEL = re.compile(r"^[^\s:：]{1,20}(?:\s[^\s:：]{1,20}){0,2}\s*[:：]$")
_HEADER_BLOCK_LABELS = 3
_MAIL_VALUE = re.compile(r"@|\d:\d\d")
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "center", "dd", "div", "dl", "dt", "fieldset",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "li", "main",
        "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_UNRENDERED_TAGS = frozenset({"head", "style", "script", "title", "template", "xml", "noscript"})
# Any of the markup the quote containers and reply headers above are made of; HTML without it
# and a text part without history is a new mail, and rendering it to look for history is wasted.
# Substring tests: a case-insensitive regex alternation over a whole mail is ~30 times slower.
_QUOTE_STRUCTURE = (
    "<blockquote", "<hr", "border-top", "gmail_quote", "yahoo_quoted", "moz-cite-prefix", "divrplyfwdmsg",
    "appendonsend", "olk_src", "outlookmessageheader", "mail-editor-reference",
)  # fmt: skip
_HTML_PARSER = etree.HTMLParser(remove_blank_text=False, no_network=True)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HtmlReplyParts:
    """An HTML body split into the new reply and the quoted history, both as HTML."""

    visible: str  # the whole input when no quoted history was found
    quoted: str  # "" when none


class _Slot(Enum):
    BEFORE = "before"  # just before the element
    TEXT = "text"  # inside the element's leading text, at an offset
    TAIL = "tail"  # inside the text after the element, at an offset


@dataclass(slots=True)  # not frozen: one is made per rendered line, and frozen init is slow
class _Position:
    slot: _Slot
    element: etree._Element
    offset: int = 0


@dataclass(frozen=True, slots=True)
class _Rendering:
    """An HTML tree as text lines, with where in the tree each line starts."""

    lines: list[str]  # with "> " for each quote container around the line
    texts: list[str]  # the same lines as a reader sees them
    starts: list[_Position]
    forced: set[int]  # lines where a client's reply header element starts


def _is_quote_container(element: etree._Element, tag: str, classes: str) -> bool:
    if classes and not _QUOTE_CLASSES.isdisjoint(classes.lower().split()):
        return True
    if tag != "blockquote":
        return False
    style = (element.get("style") or "").lower().replace(" ", "")
    return (element.get("type") or "").lower() == "cite" or "border-left" in style


def _starts_history(element: etree._Element, tag: str, classes: str) -> bool:
    element_id = element.get("id")
    if element_id and element_id.lower() in _HISTORY_IDS:
        return True
    if classes and not _HISTORY_CLASSES.isdisjoint(classes.lower().split()):
        return True
    if tag == "div" and _TOP_BORDER.search(element.get("style") or ""):
        return _is_header_block(element)
    return False


def _is_header_block(element: etree._Element) -> bool:
    """Whether an element holds a mail header block: three "Label:" fragments and an address or time.

    A bordered box in the sender's own text ("Tel: …" in a signature) has fewer labels.
    """
    fragments = [fragment.strip() for fragment in itertools.islice(element.itertext(), 40)]
    labels = [fragment for fragment in fragments if _LABEL.match(fragment)]
    return len(labels) >= _HEADER_BLOCK_LABELS and _MAIL_VALUE.search(" ".join(fragments)) is not None


def _text_of(element: etree._Element) -> str:
    return "".join(element.itertext())


def _render(body: etree._Element) -> _Rendering:
    """Render `body` to lines the way a reader sees them (one loop: this runs for every HTML reply)."""
    lines: list[str] = []
    texts: list[str] = []
    starts: list[_Position] = []
    forced: set[int] = set()
    parts: list[str] = []
    start: _Position | None = None
    line_depth = quote_depth = pre_depth = 0
    has_text = False
    quote_containers: set[etree._Element] = set()

    def end_line() -> None:
        nonlocal start, parts, has_text
        if start is None:
            return
        if has_text:
            text = " ".join("".join(parts).split())
            lines.append("> " * line_depth + text if line_depth else text)
            texts.append(text)
        else:
            lines.append("")
            texts.append("")
        starts.append(start)
        parts = []
        start = None
        has_text = False

    def add(text: str, slot: _Slot, element: etree._Element) -> None:
        nonlocal start, has_text, line_depth
        if pre_depth and "\n" in text:
            add_preformatted(text, slot, element)
            return
        if start is None:
            start = _Position(slot, element, 0)
        if not has_text and not text.isspace():
            has_text = True
            line_depth = quote_depth
        parts.append(text)

    def add_preformatted(text: str, slot: _Slot, element: etree._Element) -> None:
        nonlocal start, has_text, line_depth
        offset = 0
        for number, segment in enumerate(text.split("\n")):
            if number:
                end_line()
            if start is None:
                start = _Position(slot, element, offset)
            if not has_text and segment and not segment.isspace():
                has_text = True
                line_depth = quote_depth
            parts.append(segment)
            offset += len(segment) + 1

    walker = etree.iterwalk(body, events=("start", "end", "comment", "pi"))
    for event, element in walker:
        if event == "comment" or event == "pi":
            if element.tail:
                add(element.tail, _Slot.TAIL, element)
            continue
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if event == "start":
            if tag in _UNRENDERED_TAGS:
                walker.skip_subtree()
                continue
            if tag in _BLOCK_TAGS:
                end_line()
            if element.attrib:
                classes = element.get("class") or ""
                if _starts_history(element, tag, classes):
                    end_line()
                    forced.add(len(lines))
                if _is_quote_container(element, tag, classes):
                    quote_containers.add(element)
                    end_line()
                    quote_depth += 1
            if tag == "pre":
                pre_depth += 1
            if start is None:
                start = _Position(_Slot.BEFORE, element)
            if tag == "br":
                end_line()
            if element.text:
                add(element.text, _Slot.TEXT, element)
            continue
        if tag not in _UNRENDERED_TAGS:
            if tag in _BLOCK_TAGS:
                end_line()
            if quote_containers and element in quote_containers:
                end_line()
                quote_depth -= 1
            if tag == "pre":
                pre_depth -= 1
        if element.tail:
            add(element.tail, _Slot.TAIL, element)
    end_line()
    return _Rendering(lines, texts, starts, forced)


def _has_content(element: etree._Element) -> bool:
    """Whether an element shows anything: text, or an image."""
    if isinstance(element.tag, str) and element.tag.lower() == "img":
        return True
    if isinstance(element.tag, str) and _text_of(element).strip():
        return True
    return any(isinstance(child.tag, str) and child.tag.lower() == "img" for child in element.iter())


def _is_rule(element: etree._Element) -> bool:
    """An <hr>, or a wrapper holding nothing but one (Outlook 2003 puts it in a centred div)."""
    if not isinstance(element.tag, str) or (element.tail or "").strip():
        return False
    return element.tag.lower() == "hr" or (not _has_content(element) and element.find(".//hr") is not None)


def _widen(position: _Position, body: etree._Element) -> _Position:
    """The same cut, moved out to the outermost element it opens and above a rule drawn right before it."""
    element = position.element
    if position.slot is _Slot.TEXT and position.offset == 0 and element is not body:
        position = _Position(_Slot.BEFORE, element)
    is_rule = isinstance(element.tag, str) and element.tag.lower() == "hr"
    if position.slot is _Slot.TAIL and position.offset == 0 and is_rule:
        position = _Position(_Slot.BEFORE, element)
    if position.slot is not _Slot.BEFORE:
        return position
    element = position.element
    while True:
        parent = element.getparent()
        if parent is None or parent is body:
            break
        if (parent.text or "").strip() or any(
            _has_content(sibling) or (sibling.tail or "").strip() for sibling in element.itersiblings(preceding=True)
        ):
            break
        element = parent
    previous = element.getprevious()
    while previous is not None and _is_rule(previous):
        element = previous
        previous = element.getprevious()
    return _Position(_Slot.BEFORE, element)


def _drop_after(position: _Position) -> None:
    """Remove everything from `position` to the end of the document."""
    element = position.element
    if position.slot is _Slot.TEXT:
        element.text = (element.text or "")[: position.offset] or None
        for child in list(element):
            element.remove(child)
    elif position.slot is _Slot.TAIL:
        element.tail = (element.tail or "")[: position.offset] or None
    for sibling in list(element.itersiblings()):
        sibling.getparent().remove(sibling)
    if position.slot is _Slot.BEFORE:
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)  # its tail goes with it
            element = parent
    else:
        element.tail = None if position.slot is not _Slot.TAIL else element.tail
    ancestor = element if position.slot is _Slot.BEFORE else element.getparent()
    while ancestor is not None:
        ancestor.tail = None
        for sibling in list(ancestor.itersiblings()):
            ancestor.getparent().remove(sibling)
        ancestor = ancestor.getparent()


def _drop_before(position: _Position) -> None:
    """Remove everything from the start of the document up to `position`."""
    element = position.element
    parent = element.getparent()
    if position.slot is _Slot.TEXT:
        element.text = (element.text or "")[position.offset :] or None
    elif position.slot is _Slot.TAIL:
        rest = (element.tail or "")[position.offset :]
        element.tail = None
        if parent is not None:
            for child in [*element.itersiblings(preceding=True), element]:
                parent.remove(child)
            parent.text = rest or None
        element = parent
        parent = element.getparent() if element is not None else None
    while element is not None and parent is not None:
        for sibling in list(element.itersiblings(preceding=True)):
            parent.remove(sibling)
        parent.text = None
        element, parent = parent, parent.getparent()


def _inner_html(element: etree._Element) -> str:
    parts = [html_lib.escape(element.text or "", quote=False)]
    parts.extend(etree.tostring(child, method="html", encoding="unicode") for child in element)
    return "".join(parts).strip()


@dataclass(frozen=True, slots=True)
class _HtmlSplit:
    parts: HtmlReplyParts
    visible_words: str  # the visible part's text without whitespace, to compare with the text split


def _has_quote_structure(html: str) -> bool:
    lowered = html.lower()
    return any(marker in lowered for marker in _QUOTE_STRUCTURE)


def _squash(text: str) -> str:
    return "".join(text.split())


def _parse_body(html: str) -> etree._Element | None:
    """The <body> (or root) of `html` parsed leniently, or None when there is nothing to parse."""
    if not html.strip():
        return None
    try:
        document = etree.fromstring(_XML_DECLARATION.sub("", html, count=1), _HTML_PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    if document is None:
        return None
    body = document.find("body")
    return document if body is None else body


def _split_body(html: str, body: etree._Element) -> _HtmlSplit:
    rendered = _render(body)
    quoted = quoted_lines(rendered.lines, rendered.forced)
    first = next((index for index, is_quoted in enumerate(quoted) if is_quoted), None)
    # Only a reply written above its history is cut: text before the first quoted line, nothing
    # but quoted (or blank) lines after it.
    if (
        first is None
        or not any(rendered.texts[:first])
        or not all(
            is_quoted or not line for line, is_quoted in zip(rendered.lines[first:], quoted[first:], strict=True)
        )
    ):
        return _HtmlSplit(HtmlReplyParts(visible=html, quoted=""), _squash("".join(rendered.texts)))
    position = _widen(rendered.starts[first], body)
    document = body.getroottree()
    history = copy.deepcopy(document.getroot())
    located = history.xpath(document.getpath(position.element))
    _drop_after(position)
    quoted_html = ""
    if located:
        _drop_before(_Position(position.slot, located[0], position.offset))
        history_body = history.find("body")
        quoted_html = _inner_html(history if history_body is None else history_body)
    parts = HtmlReplyParts(visible=_inner_html(body), quoted=quoted_html)
    return _HtmlSplit(parts, _squash("".join(rendered.texts[:first])))


def split_reply_html(html: str) -> HtmlReplyParts:
    """Split an HTML body into the new reply and the quoted history, both as HTML.

    Cuts where a client's quote container or reply header starts (Gmail, Outlook, Apple Mail,
    Thunderbird, Yahoo, Zimbra, Hotmail) or where the rendered text shows a quote header in
    any of `split_reply`'s languages. Only a reply written above its history is cut; answers
    written below or between quotes, forwarded messages, and HTML that cannot be parsed come
    back whole as the visible part.
    """
    body = _parse_body(html)
    if body is None:
        return HtmlReplyParts(visible=html, quoted="")
    return _split_body(html, body).parts


def split_message_reply(parsed: ParsedMessage) -> ReplyParts:
    """The visible reply, quoted history and signature of a parsed mail, with the visible HTML.

    The text part decides, except when it is the HTML rendered to text (no text part was sent,
    or one with the very same words): then the HTML's quote structure decides, because
    rendering loses the quote containers a client marks its history with.

    A forward ("FW: …") keeps everything visible: below the sender's note is the mail they want
    us to read, even when its header block looks exactly like a reply's (Outlook).
    """
    reply = split_reply(parsed.text)
    if is_forward_subject(parsed.subject):
        if reply.quoted:
            reply = ReplyParts(visible=parsed.text.replace("\r\n", "\n").strip(), quoted="", signature="")
        return replace(reply, visible_html=parsed.html)
    if not parsed.html:
        return reply
    if not reply.quoted and not _has_quote_structure(parsed.html):
        return replace(reply, visible_html=parsed.html)  # a new mail: no need to render its HTML
    body = _parse_body(parsed.html)
    if body is None:
        return replace(reply, visible_html=parsed.html)
    rendered_from_html = _squash(etree.tostring(body, method="text", encoding="unicode")) == _squash(parsed.text)
    split = _split_body(parsed.html, body)
    if not split.parts.quoted or not rendered_from_html:
        return replace(reply, visible_html=split.parts.visible)
    if split.visible_words == _squash(reply.visible + reply.signature):
        return replace(reply, visible_html=split.parts.visible)  # both splits agree
    from_html = split_reply(html_to_text(split.parts.visible))
    return ReplyParts(
        visible=from_html.visible,
        quoted=html_to_text(split.parts.quoted),
        signature=from_html.signature,
        visible_html=split.parts.visible,
    )
