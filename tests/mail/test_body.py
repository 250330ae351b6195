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
