"""Tests of `postdesk.mail.body`: sanitising, HTML to text and reply splitting in many languages."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest

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
    ["Sent from my iPhone", "Отправлено с iPhone", "发自我的iPhone", "Get Outlook for iOS", "-- \nJohn Doe\nACME"],
)
def test_signatures(sign_off: str) -> None:
    parts = split_reply(f"Works now, thanks.\n\n{sign_off}")
    assert parts.visible == "Works now, thanks."
    assert parts.signature == sign_off


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
