"""Tests of the HTML reply split (`split_reply_html`) and of `analyse` choosing between text and HTML."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mail_factory import CORPORA, make_mail, multipart, part

from postdesk.mail.analysis import analyse
from postdesk.mail.body import html_to_text, sanitize_html, split_reply_html
from postdesk.mail.parse import parse
from postdesk.mail.reply import split_reply

pytestmark = pytest.mark.pure

REPLY = '<div dir="ltr">New answer: it works now.<div><br></div><div>Thanks,<br>John</div></div>'
OLD = "Old question: the invoice total is wrong."


def words(text: str) -> str:
    return "".join(text.split())


def visible_text(html: str) -> str:
    return html_to_text(split_reply_html(html).visible)


# One reply per client, each quoting OLD the way that client does.
CLIENT_REPLIES = {
    "gmail": (
        f'{REPLY}<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 4 Mar 2024 at 10:20, Jane '
        '&lt;<a href="mailto:j@example.com">j@example.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote" '
        f'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex"><div>{OLD}</div>'
        "</blockquote></div>"
    ),
    "outlook web": (
        f'{REPLY}<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif"><b>From:</b> Jane &lt;j@example.com&gt;'
        "<br><b>Sent:</b> Monday, March 4, 2024 10:20 AM<br><b>To:</b> Support<br><b>Subject:</b> Order</font>"
        f"<div>&nbsp;</div></div><div>{OLD}</div>"
    ),
    "outlook desktop": (
        f'<div class="WordSection1"><p class="MsoNormal">New answer: it works now.<o:p></o:p></p>'
        '<p class="MsoNormal">Thanks,<br>John<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal">'
        "<b>From:</b> Jane &lt;j@example.com&gt;<br><b>Sent:</b> Monday, March 4, 2024 10:20 AM<br><b>To:</b> Support"
        f'<br><b>Subject:</b> Order</p></div><p class="MsoNormal">&nbsp;</p><p class="MsoNormal">{OLD}</p></div>'
    ),
    "outlook 2003": (
        f'{REPLY}<div><div class="MsoNormal" align="center" style="text-align:center"><hr size="2" width="100%" '
        'align="center"></div><p class="MsoNormal"><b>From:</b> Jane [mailto:j@example.com]<br><b>Sent:</b> Monday, '
        f"March 04, 2024 10:20 AM<br><b>To:</b> Support<br><b>Subject:</b> Order</p></div><p>{OLD}</p>"
    ),
    "apple mail": (
        f'<div>New answer: it works now.<br><br>Thanks,<br>John<br><div><br><blockquote type="cite"><div>On 4 Mar '
        '2024, at 10:20, Jane &lt;j@example.com&gt; wrote:</div><br class="Apple-interchange-newline">'
        f"<div><div>{OLD}</div></div></blockquote></div><br></div>"
    ),
    "iphone": (
        '<div dir="ltr">New answer: it works now.<br><br>Thanks,<br>John</div><div dir="ltr"><br><blockquote '
        'type="cite">On Mar 4, 2024, at 10:20 AM, Jane &lt;j@example.com&gt; wrote:<br><br></blockquote></div>'
        f'<blockquote type="cite"><div dir="ltr">{OLD}</div></blockquote>'
    ),
    "thunderbird": (
        '<p>New answer: it works now.</p><p>Thanks,<br>John</p><div class="moz-cite-prefix">On 04/03/2024 10:20, '
        f'Jane wrote:<br></div><blockquote type="cite" cite="mid:x@example.com"><p>{OLD}</p></blockquote>'
    ),
    "yahoo": (
        f'{REPLY}<div id="yahoo_quoted_1" class="yahoo_quoted"><div style="font-family:Helvetica">On Monday, March '
        f"4, 2024, 10:20:00 AM GMT+1, Jane &lt;j@example.com&gt; wrote:</div><div><br></div><div>{OLD}</div></div>"
    ),
    "zimbra": (
        f'{REPLY}<hr id="zwchr"><div style="color:#000"><b>From: </b>"Jane" &lt;j@example.com&gt;<br><b>To: </b>'
        f"Support<br><b>Sent: </b>Monday, March 4, 2024 10:20:00 AM<br><b>Subject: </b>Order<br></div><div>{OLD}</div>"
    ),
    "hotmail": (
        f'{REPLY}<div><hr id="stopSpelling">Date: Mon, 4 Mar 2024 10:20:00 +0100<br>Subject: Order<br>From: '
        f"j@example.com<br>To: support@example.com<br><br><div>{OLD}</div></div>"
    ),
    "mail.ru": (
        f"{REPLY}<br><br>Понедельник, 4 марта 2024, 10:20 +03:00 от Jane &lt;j@example.com&gt;:<br>"
        f'<blockquote style="border-left:1px solid #0857A6; margin:10px; padding:0 0 0 10px;"><div>{OLD}</div>'
        "</blockquote>"
    ),
    "yandex": (
        "<p>New answer: it works now.<br /><br />Thanks,<br />John<br /><br />04.03.2024, 10:20, &quot;Jane&quot; "
        f'&lt;<a href="mailto:j@example.com">j@example.com</a>&gt;:</p><blockquote>{OLD}</blockquote>'
    ),
    "foxmail": (
        "<div>New answer: it works now.</div><div><br></div><div>Thanks,<br>John</div><div><br></div><div "
        'style="font-size: 12px;">------------------&nbsp;原始邮件&nbsp;------------------</div><div '
        'style="font-size: 12px;background:#efefef;padding:8px;"><div>发件人: "Jane"&lt;j@example.com&gt;;</div>'
        f"<div>发送时间: 2024年3月4日(星期一) 上午10:20</div></div><div><br></div><div>{OLD}</div>"
    ),
}


@pytest.mark.parametrize("client", sorted(CLIENT_REPLIES))
@pytest.mark.parametrize("sanitised", [False, True], ids=["raw", "sanitised"])
def test_client_quote_blocks_are_cut(client: str, sanitised: bool) -> None:
    html = CLIENT_REPLIES[client]
    parts = split_reply_html(sanitize_html(html) if sanitised else html)
    assert words(html_to_text(parts.visible)) == words("New answer: it works now. Thanks, John")
    assert OLD in html_to_text(parts.quoted)


def test_outlook_rule_above_the_header_goes_with_the_history() -> None:
    parts = split_reply_html(CLIENT_REPLIES["outlook 2003"])
    assert "<hr" not in parts.visible
    assert "<hr" in parts.quoted


def test_cut_inside_a_paragraph_keeps_the_reply_before_it() -> None:
    parts = split_reply_html(CLIENT_REPLIES["yandex"])
    assert parts.visible.startswith("<p>New answer: it works now.")
    assert "04.03.2024" not in parts.visible
    assert parts.quoted.startswith("<p>04.03.2024")


# The "wrote:" line alone, in a plain paragraph, marks the history in every language.
@pytest.mark.parametrize(
    "header",
    [
        "On Mon, Mar 4, 2024 at 10:20 AM Jane &lt;j@example.com&gt; wrote:",
        "Am Mo., 4. März 2024 um 10:20 Uhr schrieb Max Muster &lt;m@example.de&gt;:",
        "Le lun. 4 mars 2024 à 10:20, Jean Dupont &lt;j@example.fr&gt; a écrit :",
        "El lun, 4 mar 2024 a las 10:20, Juan Pérez (&lt;j@example.es&gt;) escribió:",
        "4 мар. 2024 г. в 10:20, Иван Петров &lt;i@example.ru&gt;:",
        "пн, 4 бер. 2024 о 10:20 Ірина &lt;i@example.ua&gt; пише:",
        "در تاریخ ۴ مارس ۲۰۲۴، علی &lt;a@example.ir&gt; نوشت:",
        "张伟 &lt;z@example.cn&gt; 于2024年3月4日周一 10:20写道：",
    ],
)
def test_wrote_lines_in_plain_html(header: str) -> None:
    html = f"<div>New answer: it works now.</div><div><br></div><div>{header}</div><div>{OLD}</div>"
    parts = split_reply_html(html)
    assert words(html_to_text(parts.visible)) == words("New answer: it works now.")
    assert OLD in html_to_text(parts.quoted)


def test_quote_markup_reveals_history_in_languages_the_text_rules_miss() -> None:
    hungarian = CLIENT_REPLIES["gmail"].replace("On Mon, 4 Mar 2024 at 10:20, Jane", "2024. márc. 4., H, 10:20 Jane")
    hungarian = hungarian.replace("wrote:", "ezt írta:")
    turkish = (
        f'{REPLY}<div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>Kimden:</b> Jane<br><b>Gönderildi:</b> 4 '
        f"Mart 2024 Pazartesi 10:20<br><b>Kime:</b> Support</div><div>{OLD}</div>"
    )
    for html in (hungarian, turkish):
        assert OLD in split_reply(html_to_text(html)).visible  # plain text alone would show the history
        assert words(visible_text(html)) == words("New answer: it works now. Thanks, John")


def test_gmail_forward_is_not_history() -> None:
    html = (
        '<div dir="ltr">FYI, see the error below.<br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "---------- Forwarded message ---------<br>From: <b>Billing</b> &lt;billing@example.com&gt;<br>Date: Mon, 4 "
        'Mar 2024 at 10:20<br>Subject: Invoice<br></div><br><br><div dir="ltr">Error 42</div></div></div>'
    )
    parts = split_reply_html(html)
    assert parts.visible == html
    assert parts.quoted == ""


def test_apple_mail_forward_is_not_history() -> None:
    html = (
        '<div>FYI<br><div><br><blockquote type="cite"><div>Begin forwarded message:</div><br><div><b>From: </b>'
        "Billing &lt;billing@example.com&gt;</div><div><b>Subject: </b>Invoice</div><div>Error 42</div></blockquote>"
        "</div></div>"
    )
    assert split_reply_html(html).quoted == ""


def test_answer_below_the_quote_is_not_cut() -> None:
    # Thunderbird set to reply below the quote: the visible HTML must keep the answer.
    html = (
        '<div class="moz-cite-prefix">On 04/03/2024 10:20, Jane wrote:<br></div><blockquote type="cite">'
        f"<p>{OLD}</p></blockquote><p>New answer: it works now.</p>"
    )
    assert "New answer" in visible_text(html)


@pytest.mark.parametrize(
    "html",
    [
        # an indented paragraph at the end of a new mail: editors indent with a bare <blockquote>
        "<p>Please look at this part of the contract:</p><blockquote>The fee is due monthly.</blockquote>",
        "<p>As you wrote: the invoice is wrong.</p><p>It still is.</p>",
        "<p>From: my phone the login fails.</p><p>On the laptop it works.</p>",
        # a rule and a bordered box in the signature
        '<p>Thanks!</p><hr><p>ACME Ltd, Berlin</p><div style="border-top:1px solid #ccc">Tel: 030 1234</div>',
        "<p>Hello</p>",
    ],
)
def test_own_html_is_not_taken_for_history(html: str) -> None:
    parts = split_reply_html(html)
    assert parts.visible == html
    assert parts.quoted == ""


@pytest.mark.parametrize("html", ["", "   ", "<html></html>", "<!-- only a comment -->", '<?xml version="1.0"?><p>x'])
def test_empty_or_odd_html_comes_back_whole(html: str) -> None:
    assert split_reply_html(html).visible == html
    assert split_reply_html(html).quoted == ""


def test_sanitising_keeps_only_the_ids_that_mark_history() -> None:
    html = '<div id="divRplyFwdMsg">a</div><div id="appendonsend"></div><div id="login-form">b</div><hr id="zwchr">'
    clean = sanitize_html(html)
    assert 'id="divRplyFwdMsg"' in clean
    assert 'id="appendonsend"' in clean
    assert 'id="zwchr"' in clean
    assert "login-form" not in clean


# --- analyse: which split decides ------------------------------------------------------------


def test_html_only_mail_takes_the_visible_text_from_the_visible_html() -> None:
    turkish = CLIENT_REPLIES["outlook web"].replace("<b>From:</b>", "<b>Kimden:</b>")
    html = turkish.replace("<b>Sent:</b>", "<b>Tarih:</b>")
    result = analyse(make_mail(html, content_type="text/html; charset=utf-8"))
    assert OLD in result.parsed.text
    assert words(result.reply.visible + result.reply.signature) == words("New answer: it works now. Thanks, John")
    assert OLD in result.reply.quoted
    assert OLD not in result.reply.visible_html


def test_text_part_stays_the_authority_when_both_parts_exist() -> None:
    text = "New answer: it works now.\n\nThanks,\nJohn\n\n2024. márc. 4., H, 10:20 Jane ezt írta:\n\n" + OLD
    ctype, body = multipart(
        "alternative",
        part("text/plain; charset=utf-8", text),
        part("text/html; charset=utf-8", CLIENT_REPLIES["gmail"]),
    )
    result = analyse(make_mail(body, content_type=ctype))
    assert result.reply.visible == split_reply(text).visible
    assert OLD not in html_to_text(result.reply.visible_html)


def test_mail_without_html_has_no_visible_html() -> None:
    result = analyse(make_mail("Thanks!\n\nOn Mon, Jan 1, 2024 at 10:00 AM John <j@example.com> wrote:\n> old"))
    assert result.reply.visible == "Thanks!"
    assert result.reply.visible_html == ""


def test_new_html_mail_keeps_all_its_html() -> None:
    ctype, body = multipart(
        "alternative", part("text/plain; charset=utf-8", "Hello\n"), part("text/html; charset=utf-8", "<p>Hello</p>")
    )
    result = analyse(make_mail(body, content_type=ctype))
    assert result.reply.visible_html == result.parsed.html


# --- real client samples (talon corpus) ---------------------------------------------------------

needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"!!! CORPORA MISSING: {CORPORA}")
TALON = CORPORA / "talon"


def talon_html_cases() -> list[str]:
    if not CORPORA.is_dir():
        return []
    return [case["file"] for case in json.loads((TALON / "expectations.json").read_text("utf-8"))["html_replies"]]


@needs_corpora
@pytest.mark.parametrize("name", talon_html_cases())
def test_talon_html_replies(name: str) -> None:
    """talon's html_quotations_test: the reply rendered to text, whitespace removed, is exactly this."""
    html = (TALON / name).read_text("utf-8")
    for variant in (html, sanitize_html(html)):
        assert words(visible_text(variant)) == words("Hi. I am fine.\n\nThanks,\nAlex")
    via_analyse = analyse(make_mail(html.encode(), content_type="text/html; charset=utf-8")).reply
    assert words(via_analyse.visible + via_analyse.signature) == words("Hi. I am fine.\n\nThanks,\nAlex")


@needs_corpora
@pytest.mark.parametrize("name", ["android.eml", "aol.eml", "comcast.eml", "gmail.eml", "hotmail.eml"])
def test_html_and_text_splits_agree_on_real_clients(name: str) -> None:
    parsed = parse((TALON / "standard_replies" / name).read_bytes())
    from_text = split_reply(parsed.text)
    assert words(visible_text(parsed.html)) == words(from_text.visible + from_text.signature)
    assert analyse((TALON / "standard_replies" / name).read_bytes()).reply.visible == from_text.visible


@needs_corpora
def test_history_shares_a_block_with_the_reply() -> None:
    parsed = parse((TALON / "reply-quotations-share-block.eml").read_bytes())
    parts = split_reply_html(parsed.html)
    assert "Sounds great" in html_to_text(parts.visible)
    assert "booking inquiry" not in html_to_text(parts.visible)
    assert "booking inquiry" in html_to_text(parts.quoted)


@needs_corpora
@pytest.mark.parametrize("name", ["reply-separated-by-hr.html", "OLK_SRC_BODY_SECTION.html"])
def test_talon_loose_html_fixtures(name: str) -> None:
    parts = split_reply_html((TALON / name).read_text("utf-8"))
    assert "From:" not in html_to_text(parts.visible)
    assert "From:" in html_to_text(parts.quoted)


# --- nothing is lost or made up ----------------------------------------------------------------

_PIECES = [
    "<div>", "</div>", "<p>", "</p>", "<br>", "<hr>", "<b>", "</b>", '<blockquote type="cite">', "</blockquote>",
    '<div class="gmail_quote">', '<div id="divRplyFwdMsg">', '<div class="moz-cite-prefix">', "<pre>", "</pre>",
    "Thanks, it works.", "Regards, John", "On Mon, 4 Mar 2024, Jane &lt;j@example.com&gt; wrote:", "\n",
    "From: Jane &lt;j@example.com&gt;", "Sent: Monday, March 4, 2024 10:20", "To: Support", "&gt; old line",
    "---------- Forwarded message ---------", "-----Original Message-----", "Old question?", "<!-- c -->",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_split_keeps_every_word_once(pieces: list[str]) -> None:
    html = "".join(pieces)
    parts = split_reply_html(html)
    if not parts.quoted:
        assert parts.visible == html
        return
    assert words(html_to_text(parts.visible)) + words(html_to_text(parts.quoted)) == words(html_to_text(html))
    assert words(html_to_text(parts.visible))  # a cut never leaves the reply empty


OUTLOOK_HEADER_BLOCK = (
    "Please see the invoice below, the VAT number is wrong.\n\n"
    "From: Billing <billing@supplier.test>\n"
    "Sent: Monday, 2 November 2026 10:00\n"
    "To: Bea <bea@customer.test>\n"
    "Subject: Invoice 42\n\n"
    "Invoice 42: VAT number DE999999999, total 120.00 EUR.\n"
)


def test_an_outlook_forward_keeps_the_forwarded_mail_visible() -> None:
    forwarded = analyse(make_mail(OUTLOOK_HEADER_BLOCK, subject="FW: Invoice 42")).reply
    replied = analyse(make_mail(OUTLOOK_HEADER_BLOCK, subject="RE: Invoice 42")).reply

    assert "VAT number DE999999999" in forwarded.visible
    assert forwarded.quoted == ""
    assert "VAT number DE999999999" not in replied.visible
    assert "VAT number DE999999999" in replied.quoted


def test_an_html_forward_keeps_the_forwarded_mail_in_the_visible_html() -> None:
    html = (
        "<div>See below, the VAT number is wrong.</div><hr>"
        '<div id="divRplyFwdMsg"><b>From:</b> Billing &lt;billing@supplier.test&gt;<br>'
        "<b>Sent:</b> Monday, 2 November 2026 10:00<br><b>Subject:</b> Invoice 42</div>"
        "<div>Invoice 42: VAT number DE999999999</div>"
    )
    ctype, body = multipart("alternative", part("text/html", html))
    forwarded = analyse(make_mail(body, subject="FW: Invoice 42", content_type=ctype)).reply
    replied = analyse(make_mail(body, subject="RE: Invoice 42", content_type=ctype)).reply
    assert "DE999999999" in forwarded.visible_html and "DE999999999" in forwarded.visible
    assert "DE999999999" not in replied.visible_html
