"""Tests of `postdesk.triage.lexicon`: the cold-start urgency terms in five languages, and administrators' terms."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postdesk.triage.lexicon import (
    Lexicon,
    LexiconError,
    Topic,
    UrgencyMatch,
    UrgencyPriority,
    UrgencyTerm,
    builtin_terms,
)

pytestmark = pytest.mark.pure

URGENT = UrgencyPriority.URGENT
HIGH = UrgencyPriority.HIGH
LEXICON = Lexicon.builtin()


def hit(text: str) -> tuple[UrgencyPriority, str] | None:
    found = LEXICON.match(text)
    return (found.priority, found.topic) if found else None


@pytest.mark.parametrize(
    ("text", "priority", "topic"),
    [
        # English
        ("Hi, my payment failed three times this morning.", URGENT, Topic.PAYMENT_FAILED),
        ("You charged me twice for the same order!", URGENT, Topic.PAYMENT_FAILED),
        ("Your website is down since 9am", URGENT, Topic.OUTAGE),
        ("I can’t log in since the update", HIGH, Topic.OUTAGE),
        ("The app crashes when I open the invoice", HIGH, Topic.BUG),
        ("I think my account was hacked", URGENT, Topic.SECURITY),
        ("Fix this or my lawyer will contact you", URGENT, Topic.LEGAL),
        ("Please cancel my subscription", HIGH, Topic.CANCEL),
        # Russian, inflected
        ("Здравствуйте! Не проходит оплата картой", URGENT, Topic.PAYMENT_FAILED),
        ("Третий день не проходят оплаты", URGENT, Topic.PAYMENT_FAILED),
        ("Платёж не прошёл, деньги списали дважды", URGENT, Topic.PAYMENT_FAILED),
        ("Ваш сайт не работает уже час", URGENT, Topic.OUTAGE),
        ("Приложение постоянно вылетает", HIGH, Topic.BUG),
        ("Мой аккаунт взломали вчера", URGENT, Topic.SECURITY),
        ("Буду вынужден обратиться в суд", URGENT, Topic.LEGAL),
        ("Прошу отменить подписку и вернуть деньги", HIGH, Topic.CANCEL),
        # Ukrainian
        ("Оплата не пройшла, допоможіть", URGENT, Topic.PAYMENT_FAILED),
        ("Сайт не працює з ранку", URGENT, Topic.OUTAGE),
        ("Не можу увійти в кабінет", HIGH, Topic.OUTAGE),
        ("Додаток не працює після оновлення", HIGH, Topic.BUG),
        ("Мій акаунт зламали", URGENT, Topic.SECURITY),
        ("Я подаю позов до суду", URGENT, Topic.LEGAL),
        ("Прошу скасувати замовлення", HIGH, Topic.CANCEL),
        # Persian, with the Arabic ye and kaf, a ZWNJ, or no separator at all
        ("سلام، پرداخت ناموفق بود", URGENT, Topic.PAYMENT_FAILED),
        ("پرداخت من ناموفق بود", URGENT, Topic.PAYMENT_FAILED),
        ("سايت كار نمی\u200cكند", URGENT, Topic.OUTAGE),
        ("برنامه کار نمیکند", HIGH, Topic.BUG),
        ("حساب من هک شد", URGENT, Topic.SECURITY),
        ("با وکیل خود به دادگاه می\u200cروم", URGENT, Topic.LEGAL),
        ("لطفا اشتراک من را لغو کنید", HIGH, Topic.CANCEL),
        # Chinese: substrings, no spaces
        ("你好，我的支付失败了", URGENT, Topic.PAYMENT_FAILED),
        ("网站打不开了", URGENT, Topic.OUTAGE),
        ("我无法登录我的账户", HIGH, Topic.OUTAGE),
        ("应用一打开就闪退", HIGH, Topic.BUG),
        ("我的账号被盗了", URGENT, Topic.SECURITY),
        ("我要起诉你们", URGENT, Topic.LEGAL),
        ("我要求退款", HIGH, Topic.CANCEL),
    ],
)
def test_each_language_and_topic_is_recognised(text: str, priority: UrgencyPriority, topic: Topic) -> None:
    assert hit(text) == (priority, topic)


@pytest.mark.parametrize(
    "text",
    [
        "I paid, thanks, all good",
        "Thanks, the payment went through and everything works now.",
        "Debugging the export took a while, but it is fine.",
        "Can you send me the invoice for March?",
        "Спасибо, всё работает отлично",
        "Судя по всему, цена зависит от тарифа",
        "Искать счёт в личном кабинете удобно",
        "Дякую, все добре, оплата пройшла",
        "Будь ласка, позови менеджера",
        "ممنون، همه چیز خوب است",
        "به طور قطعی پرداخت انجام شد",
        "谢谢，一切都好",
        "请把三月的发票发给我",
        "",
    ],
)
def test_innocent_text_is_not_urgent(text: str) -> None:
    assert LEXICON.match(text) is None


def test_the_highest_priority_wins_over_an_earlier_lower_one() -> None:
    found = LEXICON.match("Please cancel my order. Also my account was hacked!")
    assert found is not None
    assert (found.priority, found.topic, found.term) == (URGENT, Topic.SECURITY, "hacked")


def test_the_match_names_the_term_and_its_language() -> None:
    assert LEXICON.match("Не проходит оплата") == UrgencyMatch(
        priority=URGENT, topic=Topic.PAYMENT_FAILED, term="не проход* оплат*", language="ru"
    )


def test_english_words_match_inside_chinese_text_and_only_as_words() -> None:
    assert hit("这个bug很严重") == (HIGH, Topic.BUG)
    assert hit("ladybugs are red") is None


def test_case_and_yo_do_not_matter() -> None:
    assert hit("PAYMENT FAILED") == (URGENT, Topic.PAYMENT_FAILED)
    assert hit("ПЛАТЕЖ НЕ ПРОШЁЛ") == (URGENT, Topic.PAYMENT_FAILED)


def test_administrators_add_terms_and_override_built_in_ones() -> None:
    extended = LEXICON.with_extra(
        [
            UrgencyTerm(term="chargeback notice", language="en", topic="chargeback", priority=URGENT),
            UrgencyTerm(term="Datenleck*", language="de", topic=Topic.SECURITY, priority=URGENT),
            # Administrators' terms come from forms: the priority may be a plain string.
            UrgencyTerm(term="refund*", language="en", topic=Topic.CANCEL, priority="urgent"),  # type: ignore[arg-type]
        ]
    )
    assert extended.match("We received a chargeback notice") == UrgencyMatch(
        priority=URGENT, topic="chargeback", term="chargeback notice", language="en"
    )
    assert extended.match("Wir haben ein Datenleck entdeckt") is not None
    refund = extended.match("I want a refund")
    assert refund is not None and refund.priority is URGENT
    # The built-in lexicon itself is unchanged.
    assert hit("I want a refund") == (HIGH, Topic.CANCEL)
    assert LEXICON.match("Wir haben ein Datenleck entdeckt") is None


@pytest.mark.parametrize(
    ("term", "language", "topic", "priority", "message"),
    [
        ("  ", "en", "bug", "high", "empty"),
        ("pay*ment", "en", "bug", "high", "'*' may only end a word"),
        ("outage", "", "outage", "urgent", "no language"),
        ("outage", "en", "", "urgent", "no topic"),
        ("outage", "en", "outage", "critical", "'critical' is not one of urgent, high"),
    ],
)
def test_bad_administrator_terms_are_refused_clearly(
    term: str, language: str, topic: str, priority: str, message: str
) -> None:
    with pytest.raises(LexiconError, match=message):
        UrgencyTerm(term=term, language=language, topic=topic, priority=priority)  # type: ignore[arg-type]


def test_the_builtin_lexicon_covers_every_topic_in_every_language() -> None:
    covered = {(term.language, term.topic) for term in builtin_terms()}
    assert covered == {(language, topic) for language in ("en", "ru", "uk", "fa", "zh") for topic in Topic}


def test_thousands_of_extra_terms_still_match_the_right_one() -> None:
    extra = [UrgencyTerm(term=f"code{n:04d} alarm", language="en", topic=f"t{n}", priority=HIGH) for n in range(3000)]
    big = LEXICON.with_extra(extra)
    found = big.match("we got a CODE2718 ALARM tonight")
    assert found is not None and found.topic == "t2718"
    assert big.match("code27180 alarm") is None


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_text_gives_a_match_or_none_and_never_raises(text: str) -> None:
    found = LEXICON.match(text)
    assert found is None or found.term in {term.term for term in LEXICON.terms}
