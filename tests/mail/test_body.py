"""Tests of `postdesk.mail.body` and `postdesk.mail.reply`: sanitising, HTML to text, plain-text reply splitting."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postdesk.mail.body import html_to_text, sanitize_html, split_reply

pytestmark = pytest.mark.pure


def test_sanitize_html() -> None:
    html = (
        '<html><head><meta http-equiv="refresh" content="0;url=x"><style>p{}</style></head><body>'
        '<p style="color: red; position: fixed" onmouseover="x()">Hi</p><form><input></form>'
        '<iframe src="https://evil"></iframe><a href="javascript:alert(1)">a</a>'
        '<img src="https://remote.example/x.png"><img src="cid:part1"><table><tr><td>c</td></tr></table></body></html>'
    )
    out = sanitize_html(html)
    for bad in ("meta", "style>", "onmouseover", "form", "input", "iframe", "javascript", "position"):
        assert bad not in out
    assert "color:red" in out.replace(" ", "")
    assert 'src="https://remote.example/x.png"' in out
    assert 'src="cid:part1"' in out
    assert "<td>c</td>" in out


def test_html_to_text() -> None:
    assert html_to_text("<p>Hello</p><ul><li>one</li><li>two</li></ul>").split() == ["Hello", "*", "one", "*", "two"]
    assert html_to_text("") == ""


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("Thanks!\n\nOn Mon, Jan 1, 2024 at 10:00 AM John <j@example.com> wrote:\n> old", "Thanks!"),
        ("Thanks!\n\nOn Mon, Jan 1, 2024 at 10:00 AM John Smith\n<j@example.com> wrote:\n> old", "Thanks!"),
        ("Thanks!\n\n-----Original Message-----\nFrom: x\nSent: y\n\nold", "Thanks!"),
        ("Danke!\n\nAm 01.01.2024 um 10:00 schrieb Max <m@example.de>:\n> alt", "Danke!"),
        ("Merci !\n\nLe 1 janv. 2024 à 10:00, Jean <j@example.fr> a écrit :\n> vieux", "Merci !"),
        ("¡Gracias!\n\nEl lun, 1 ene 2024 a las 10:00, Juan (<j@example.es>) escribió:\n> viejo", "¡Gracias!"),
        ("Спасибо!\n\n1 января 2024 г., в 10:00, Иван <i@example.ru> написал(а):\n> старое", "Спасибо!"),
        ("Спасибо!\n\nОт: Иван\nОтправлено: 1 января 2024 г.\nКому: support\nТема: вопрос\n\nстарое", "Спасибо!"),
        ("Дякую!\n\nпн, 1 січ. 2024 о 10:00 Іван <i@example.ua> пише:\n> старе", "Дякую!"),
        ("ممنون!\n\nدر تاریخ ۱ ژانویه ۲۰۲۴، علی <a@example.ir> نوشت:\n> قدیمی", "ممنون!"),
        ("谢谢！\n\n在 2024年1月1日 10:00，张三 <z@example.cn> 写道：\n> 旧", "谢谢！"),
        (
            "谢谢！\n\n------------------ 原始邮件 ------------------\n发件人: 张三\n发送时间: 2024年1月1日\n\n旧",
            "谢谢！",
        ),
        ("Reply on top\n\n> quoted line\n> another", "Reply on top"),
    ],
)
def test_split_reply_languages(text: str, visible: str) -> None:
    parts = split_reply(text)
    assert parts.visible == visible
    assert parts.quoted


@pytest.mark.parametrize(
    "sign_off",
    [
        "Sent from my iPhone",
        "Sent from my Galaxy",
        "Sent from Yahoo Mail for iPhone",
        "Sent from Mail for Windows",
        "Get Outlook for iOS",
        "Get Outlook for Android",
        "Von meinem iPhone gesendet",
        "Gesendet von meinem Samsung Galaxy Smartphone.",
        "Envoyé de mon iPhone",
        "Envoyé depuis mon iPad",
        "Enviado desde mi iPhone",
        "Отправлено с iPhone",
        "Отправлено из мобильной Почты Mail.ru",
        "Надіслано з iPhone",
        "ارسال شده از iPhone",
        "发自我的iPhone",
        "发自网易邮箱大师",
        "Verzonden met BlackBerry Work",
        "Sendt fra min iPad",
        "Skickat från min iPhone",
        "Wysłane z mojego iPhone",
        "-- \nJohn Doe\nACME",
        "--\nJohn Doe",
    ],
)
def test_signatures(sign_off: str) -> None:
    parts = split_reply(f"Works now, thanks.\n\n{sign_off}")
    assert parts.visible == "Works now, thanks."
    assert parts.signature == sign_off


def test_sign_off_before_the_quote_is_signature_and_the_quote_is_history() -> None:
    text = "Thanx :-)\n\nSendt fra min iPad\n\nDen 15. jun. 2016 kl. 20.42 skrev Jeff <j@example.com>:\n\nEnable tags."
    parts = split_reply(text)
    assert parts.visible == "Thanx :-)"
    assert parts.signature == "Sendt fra min iPad"
    assert "Enable tags." in parts.quoted


def test_everything_after_a_sign_off_is_signature() -> None:
    parts = split_reply("Works.\n\nEnvoyé depuis mon iPhone\n\nVon meinem Mobilgerät gesendet\nSent via mobile")
    assert parts.visible == "Works."
    assert parts.signature.endswith("Sent via mobile")


def test_decoration_lines_at_the_end_are_not_visible() -> None:
    # Gmail tracking add-ons append "ᐧ"; rows of one mark are decoration (discourse delimiters case).
    assert split_reply("This is not a ---------- delimiter.\n\nSecond line\n\nᐧ\n***\n=====").visible == (
        "This is not a ---------- delimiter.\n\nSecond line"
    )


def test_visible_never_empty() -> None:
    assert split_reply("-- \nonly a signature").visible == "-- \nonly a signature"
    assert split_reply("> all quoted").visible == "> all quoted"
    assert split_reply("").visible == ""


def test_deterministic() -> None:
    text = "Hi\n\nOn Mon, X wrote:\n> a"
    assert split_reply(text) == split_reply(text)


# The quote headers gen_mail.py writes (Outlook, Foxmail, Thunderbird, Gmail, Apple Mail, iPhone)
# in each of its languages; the visible part must stop before them and keep nothing quoted.
_GENERATOR_HEADERS = [
    "-----Original Message-----\nFrom: Jane Roe <j@example.com>\nSent: Monday, March 4, 2024 10:20 AM\n"
    "To: Support <support@example.com>\nSubject: Order",
    "-----Ursprüngliche Nachricht-----\nVon: Max Muster <m@example.de>\nGesendet: Montag, 4. März 2024 10:20\n"
    "An: Support <support@example.com>\nBetreff: Bestellung",
    "De : Jean Dupont <j@example.fr>\nEnvoyé : lundi 4 mars 2024 10:20\nÀ : Support <support@example.com>\n"
    "Objet : Commande",
    "De: Juan Pérez <j@example.es>\nEnviado el: lunes, 4 de marzo de 2024 10:20\n"
    "Para: Support <support@example.com>\nAsunto: Pedido",
    "От: Иван Петров <i@example.ru>\nОтправлено: понедельник, 4 марта 2024 г. 10:20\n"
    "Кому: Support <support@example.com>\nТема: Заказ",
    "发件人: 张伟 <z@example.cn>\n发送时间: 2024年3月4日 10:20\n收件人: Support <support@example.com>\n主题: 订单",
    '------------------ 原始邮件 ------------------\n发件人: "张伟"<z@example.cn>;\n'
    '发送时间: 2024年3月4日(星期一) 上午10:20\n收件人: "Support"<support@example.com>;\n主题: 订单',
    "On 04/03/2024 10:20, Jane Roe wrote:",
    "Am 04.03.24 um 10:20 schrieb Max Muster:",
    "04.03.2024 10:20, Иван Петров пишет:",
    "04.03.2024 10:20, Ірина Ткаченко пишет:",
    "On Mon, 4 Mar 2024 at 10:20, Jane Roe <j@example.com> wrote:",
    "Am Mo., 4. März 2024 um 10:20 Uhr schrieb Max Muster <m@example.de>:",
    "Le lun. 4 mars 2024 à 10:20, Jean Dupont <j@example.fr> a écrit :",
    "El lun, 4 mar 2024 a las 10:20, Juan Pérez (<j@example.es>) escribió:",
    "4 мар. 2024 г. в 10:20, Иван Петров <i@example.ru>:",
    "张伟 <z@example.cn> 于2024年3月4日周一 10:20写道：",
    "Am 04.03.2024 um 10:20 schrieb Max Muster <m@example.de>:",
    "On 4 Mar 2024, at 10:20, Jane Roe <j@example.com> wrote:",
    "On Mar 4, 2024, at 10:20 AM, Jane Roe <j@example.com> wrote:",
]


# Gmail-ru writes no "wrote" word; Gmail always quotes with ">", which is what marks it.
_ANGLE_ONLY = {"4 мар. 2024 г. в 10:20, Иван Петров <i@example.ru>:"}


@pytest.mark.parametrize(
    ("header", "quoting"),
    [(h, q) for h in _GENERATOR_HEADERS for q in ("plain", "angle") if not (q == "plain" and h in _ANGLE_ONLY)],
)
def test_split_reply_generator_headers(header: str, quoting: str) -> None:
    old = "Old question: the invoice total is wrong.\n\nRegards,\nJane"
    quoted = old if quoting == "plain" else "\n".join(f"> {line}" if line else ">" for line in old.split("\n"))
    text = f"New answer: it works now.\n\nThanks,\nJohn\n\n{header}\n\n{quoted}"
    parts = split_reply(text)
    assert parts.visible == "New answer: it works now.\n\nThanks,\nJohn"
    assert "invoice total" in parts.quoted
    assert parts.quoted.startswith(header.split("\n")[0])


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        # "wrote" word not last, the closing ">:" wrapped onto its own line (Gmail-de)
        ('Danke!\n\nAm 21.04.2016 17:48 schrieb "Max" <m@example.de\n>:\n\n> alt', "Danke!"),
        # header split over three lines by a narrow client; the middle line starts with a digit
        ("Reply\n\nOn Nov 30, 2011, at 12:47 PM, Somebody <\n416ffd@example.com>\nwrote:\n\nold", "Reply"),
        # header blocks that open with Date, or in Danish
        ("Blah\n\nDate: Wed, 16 May 2012 00:15:02 -0600\nTo: k@example.com\n\nold", "Blah"),
        ("Hej\n\nFra: a@example.dk\nSendt: 19. marts 2011 12:10\nTil: B\nEmne: X\n\nold", "Hej"),
        # Dutch "Op … schreef …:" with text after the name
        ("Lorem\n\nOp 13-02-2014 3:18 schreef Julius Caesar <j@example.nl>:\n\nold", "Lorem"),
    ],
)
def test_split_reply_headers_mail_parser_reply_found(text: str, visible: str) -> None:
    """Cases only mail-parser-reply caught before Postdesk's own patterns replaced it."""
    assert split_reply(text).visible == visible


def test_split_reply_keeps_colon_lines_of_the_reply() -> None:
    text = "Order date: 2024-03-01\nAmount: 12.00 EUR\nDevice: iPhone\n\nPlease check: the total is wrong."
    assert split_reply(text).visible == text


# --- more quote headers, per language --------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("Op 13-02-2014 3:18 schreef Julius Caesar <j@example.nl>:", "nl"),
        ("Op 17-feb.-2015, om 13:18 heeft Julius Caesar <j@example.nl> het volgende geschreven:", "nl"),
        ("Den 15. jun. 2016 kl. 20.42 skrev Jeff Atwood <info@example.no>:", "no"),
        ("søn. 30. apr. 2017 kl. 00.26 skrev David Taylor <d@example.dk>:", "da"),
        ("Den 4 mars 2024 10:20 skrev Anna Svensson <a@example.se>:", "sv"),
        ("W dniu 4.03.2024 o 10:20, Jan Kowalski <j@example.pl> pisze:", "pl"),
        ("Dnia 14 lip 2015 o godz. 00:25 Michael <m@example.pl> napisał(a):", "pl"),
        ("Em seg, 4 de mar de 2024 10:20, João <j@example.pt> escreveu:", "pt"),
        ("Il giorno lun 4 mar 2024 alle ore 10:20 Mario <m@example.it> ha scritto:", "it"),
        ("Le 2016-11-16 02:22, Erlend Sogge Heggen a écrit\xa0:", "fr"),
        ("суббота, 14 марта 2015 г. пользователь Иван написал:", "ru"),
        ('30 серп. 2016 р. 20:45 "Arpit" <no-reply@example.com> пише:', "uk"),
        ("在 2024年3月4日 10:20，张伟 <z@example.cn> 写道：", "zh"),
        ('On 15 May 2017 19:32, "Nomadic Sprite" <nomadic@example.com> wrote:', "en"),
        ("Max Mustermann <m@example.de> schrieb am Fr., 28.\nApr. 2017 um 11:53 Uhr:", "de, wrapped"),
        ("On Thu, 31 Mar 2016 at 11:16 Some One\n\n<\nmailto:Some One <some.one@example.com>\n> wrote:", "Polymail"),
        ("On Mon, Aug 19, 2013 at 2:36 AM, SomeOne via Meta <\ninfo@example.org> wrote:", "Gmail, wrapped"),
        ("---- John Smith wrote ----", "Android"),
        ("------On 12/29/1987 17:32 PM, Julius Caesar wrote-----", "dashed"),
        ("---- On Tue, 22 Dec 2015 14:17:36 +0530 Sam&lt;info@example.org&gt; wrote ----", "Zoho"),
        ("2016-03-03 17:21 GMT+01:00 Some One", "old Gmail without address"),
        ("2013/7/20 sam via Discourse Meta <info@example.org>", "old Gmail without colon"),
        ("*-------- Original Message --------*", "Thunderbird, bold"),
        ("-------- Message original --------", "Thunderbird fr"),
        ("-------- Исходное сообщение --------", "Thunderbird ru"),
        (
            "Від: Ірина Ткаченко <i@example.ua>\nНадіслано: 4 березня 2024 р. 10:20\nКому: Support\nТема: Замовлення",
            "uk",
        ),
        ("از: علی <a@example.ir>\nارسال شده: ۴ مارس ۲۰۲۴\nبه: Support\nموضوع: سفارش", "fa"),
    ],
)
def test_quote_headers_in_more_languages(header: str, language: str) -> None:
    text = f"New answer: it works now.\n\n{header}\n\n    Old question: the invoice total is wrong."
    parts = split_reply(text)
    assert parts.visible == "New answer: it works now.", language
    assert "invoice total" in parts.quoted


@pytest.mark.parametrize(
    "quote",
    [
        "| Old question: the invoice total is wrong.\n| Regards",  # pipe-quoting list archives
        "> Old question: the invoice total is wrong.\n>\n> Regards",
    ],
)
def test_dated_header_without_wrote_word_before_a_quote(quote: str) -> None:
    text = f"Replying ok\n2011/4/7 Nathan Nova <support@example.com>\n\n{quote}"
    assert split_reply(text).visible == "Replying ok"


def test_name_wrote_header_cuts_unquoted_history() -> None:
    text = "Fixed, thanks.\n\nJohn Smith wrote:\n\nOld question: the invoice total is wrong."
    assert split_reply(text).visible == "Fixed, thanks."


def test_header_glued_to_the_last_reply_line() -> None:
    text = "reply\nbla-bla - bla--- On Wed, Apr 4, 2012 at 3:59 PM, me@example.com wrote:\n> Hi"
    parts = split_reply(text)
    assert parts.visible == "reply\nbla-bla - bla"
    assert parts.quoted.startswith("On Wed, Apr 4, 2012")


# --- where the sender wrote: below, between or above the quotes ------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "On 04/19/2011 07:10 AM, Roman Tkachenko wrote:",
        "Am 19.04.2011 um 07:10 schrieb Roman Tkachenko:",
        "Le 19/04/2011 à 07:10, Roman Tkachenko a écrit :",
        "El 19/04/2011 a las 07:10, Roman Tkachenko escribió:",
        "19.04.2011 07:10, Роман Ткаченко пишет:",
        "19.04.2011 07:10, Роман Ткаченко пише:",
        "在 2011年4月19日 07:10，Roman 写道：",
    ],
)
def test_answer_below_the_quote(header: str) -> None:
    parts = split_reply(f"{header}\n\n>\n> Old question?\n\nTest reply")
    assert parts.visible == "Test reply"
    assert "Old question?" in parts.quoted


def test_header_at_the_top_followed_by_the_answer() -> None:
    # A quote header with no ">" quote after it and nothing above: the answer follows it.
    text = 'On 8 May 2017 17:34, "Andy Jones" <andy@example.com> wrote:\n\n    nil && 2.0\n\nIt should be: 2.0'
    assert split_reply(text).visible == "nil && 2.0\n\nIt should be: 2.0"


def test_answers_between_quotes_keep_the_quotes_they_answer() -> None:
    text = (
        "Hi,\n\nOn Mon, 4 Mar 2024 at 10:20, Support <support@example.com> wrote:\n"
        "> Which version do you use?\n\nVersion 2.3.\n\n> Did you restart the router?\n\nYes, twice."
    )
    parts = split_reply(text)
    assert parts.visible == (
        "Hi,\n\n> Which version do you use?\n\nVersion 2.3.\n\n> Did you restart the router?\n\nYes, twice."
    )
    assert parts.quoted == "On Mon, 4 Mar 2024 at 10:20, Support <support@example.com> wrote:"


def test_quote_then_answer_without_header_stays_visible() -> None:
    text = "> This is a quote.\n\nAnd this is some text."
    assert split_reply(text).visible == text


def test_closing_below_the_quote_stays_visible() -> None:
    text = "Test reply\n\nOn 04/19/2011 07:10 AM, Roman Tkachenko wrote:\n\n>\n> Test\n\nRegards, Roman"
    parts = split_reply(text)
    assert parts.visible == "Test reply\n\nRegards, Roman"
    assert "> Test" in parts.quoted


def test_signature_below_the_quote_is_history_too() -> None:
    text = "Okay.\n\nOn Mon, 4 Mar 2024, Support <s@example.com> wrote:\n> old\n>\n--\nViele Grüße\nBob"
    assert split_reply(text).visible == "Okay."


def test_wrapped_link_inside_a_quote_does_not_end_it() -> None:
    text = "Blah\n\nOn Monday, 24 September, 2012 at 3:46 PM, bob wrote:\n\n> View ticket (http://x/a\n_nonce=3dd)\n>\n"
    assert split_reply(text).visible == "Blah"


def test_supercite_initials_quote() -> None:
    text = "Before.\nOn Tue, 2011-03-01 at 18:02 +0530, Some One wrote:\n> Hello\n\nAfter.\n\nC>\nC> More quote.\nC>"
    assert split_reply(text).visible == "Before.\n> Hello\n\nAfter."


# --- forwarded messages are content, not history -------------------------------------------


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "-------- Forwarded Message --------",
        "Begin forwarded message:",
        "---------- Weitergeleitete Nachricht ----------",
        "Anfang der weitergeleiteten Nachricht:",
        "---------- Message transféré ---------",
        "Début du message réexpédié :",
        "---------- Mensaje reenviado ---------",
        "---------- Пересылаемое сообщение ----------",
        "-------- Пересланное сообщение --------",
        "---------- Переслане повідомлення ---------",
        "开始转发的邮件：",
    ],
)
def test_forwarded_message_stays_visible(marker: str) -> None:
    forwarded = "From: Billing <billing@example.com>\nDate: Tue, Sep 4, 2012\n\nError 42"
    text = f"FYI, see the error below.\n\n{marker}\n{forwarded}"
    parts = split_reply(text)
    assert "Error 42" in parts.visible
    assert "From: Billing" in parts.visible
    assert parts.quoted == ""


def test_forward_only_mail_is_all_visible() -> None:
    text = "---------- Forwarded message ----------\nFrom: Some One <foo@example.com>\n\nThe printer is on fire."
    assert split_reply(text).visible == text


def test_a_reply_quoting_a_forward_cuts_at_the_reply_header() -> None:
    text = (
        "Thanks, fixed.\n\nOn Mon, 4 Mar 2024 at 10:20, Ann <ann@example.com> wrote:\n"
        "> ---------- Forwarded message ---------\n> From: Billing <billing@example.com>\n>\n> Error 42"
    )
    parts = split_reply(text)
    assert parts.visible == "Thanks, fixed."
    assert "Error 42" in parts.quoted


# --- the sender's own text must survive ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "As you wrote: the invoice is wrong, and it still is.\nPlease fix it.",
        "Here is what the agent wrote:\n\nPlease restart the router.\n\nIt did not help.",
        "On Monday the app said:\n\nError 500\n\nToday it works.",
        "From: my phone the login fails.\nOn the laptop it works.\nCan you check?",
        "Subject: my second order\nDate: next Monday would be fine\nThanks",
        "2024-03-01 10:00:01 ERROR payment failed\n2024-03-01 10:00:02 retrying\nWhat does this mean?",
        "Since 2023 I get these errors.\nI sent the logs to our admin.\nThanks",
        "Please check the attached file.\n\n> ls -l\n> total 0\n\nThe folder is empty.",
        "On Monday I called your hotline.\nAs you wrote:\nrestart it. I did, nothing changed.",
        "Yes.\n\nSent from my account page the form fails with error 500 every time I submit it with a PDF.",
    ],
)
def test_own_text_is_not_taken_for_history(text: str) -> None:
    parts = split_reply(text)
    assert parts.visible == text
    assert parts.quoted == ""


_LINES = [
    "", "Thanks, it works.", "Regards, John", "> old line", ">", "On Mon, 4 Mar 2024, Jane <j@example.com> wrote:",
    "From: Jane <j@example.com>", "Sent: Monday, March 4, 2024 10:20", "-----Original Message-----", "-- ",
    "Sent from my iPhone", "---------- Forwarded message ---------", "Am 04.03.24 um 10:20 schrieb Max:",
    "Old question?", "2016-03-03 17:21 GMT+01:00 Some One", "C> initials quote", "John Smith wrote:", "***",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_LINES), max_size=30))
def test_split_reply_keeps_every_line_once(lines: list[str]) -> None:
    text = "\n".join(lines)
    parts = split_reply(text)
    if text.strip():
        assert parts.visible

    def content(value: str) -> list[str]:
        return sorted(line.strip() for line in value.split("\n") if line.strip() and line.strip() != "***")

    assert content(parts.visible + "\n" + parts.quoted + "\n" + parts.signature) == content(text)
