"""Tests of `postdesk.triage.duplicates`: repeats by the same customer, incidents reported by many, signatures."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postdesk.triage.duplicates import (
    INCIDENT_THRESHOLD,
    REPEAT_THRESHOLD,
    Candidate,
    DuplicateError,
    IncidentMatch,
    Signature,
    find_incident,
    find_repeat,
    normalise,
    signature_of,
    similarity,
)

pytestmark = pytest.mark.pure

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TEN_MINUTES = timedelta(minutes=10)

REFUND = (
    "Refund for order 4411",
    "Hello, I returned the blue jacket from order #4411 two weeks ago but I still have not received "
    "my refund. Could you check please? Thanks, Maria",
)
REFUND_AGAIN = (
    "Where is my refund?",
    "Hi again, it has been more than two weeks since I sent back the jacket (order 4411) and the refund "
    "still has not arrived. Can you look into it? Maria",
)
NEW_ADDRESS = (
    "Change delivery address",
    "Hello, I moved last week. Please send my next parcel to 12 Baker Street, London instead of my old "
    "address. Thanks, Maria",
)

OUTAGE_EN = [
    ("Site down?", "Your website is down, I get a 502 Bad Gateway error when I try to log in."),
    ("502 error", "Hi, getting 502 bad gateway on login page since 10 minutes. Is the site down?"),
    ("Cannot log in", "The login page shows 502 Bad Gateway. Website down?"),
    (
        "urgent: website not loading",
        "Your website has been down for me for a while, 502 Bad Gateway every time I log in.",
    ),
    ("Problem", "Hello, is your site down? The log in gives me a 502 bad gateway error."),
]
OUTAGE_ZH = [
    ("网站打不开", "你们的网站打不开了，登录时显示502错误。"),
    ("登录失败", "登录页面一直显示502错误，网站是不是挂了？"),
    ("网站故障", "网站登录不了，报502错误，请尽快处理。"),
    ("无法访问", "从十点开始网站无法登录，总是502错误。"),
    ("紧急", "网站打不开，登录显示502错误，怎么回事？"),
]
UNRELATED = [
    ("Invoice question", "Hi, could you send me a copy of the invoice for March? We need it for our accounting."),
    ("发票", "你好，请把三月份的发票发给我，我们财务需要。"),
    ("Password reset", "I forgot my password and the reset email never arrives. Can you help?"),
]


def mail(
    conversation_id: int,
    subject_and_text: tuple[str, str],
    *,
    sender: str = "maria@example.com",
    at: datetime = T0,
    incident_id: int | None = None,
) -> Candidate:
    subject, text = subject_and_text
    return Candidate.of(conversation_id, sender, subject, text, at, incident_id)


def repeat(new: Candidate, open_ones: Sequence[Candidate]) -> int | None:
    match = find_repeat(new, open_ones, window=3 * DAY, threshold=REPEAT_THRESHOLD)
    return None if match is None else match.conversation_id


# --- the same customer asking again -----------------------------------------------------------


def test_same_question_reworded_is_linked_to_the_open_conversation() -> None:
    open_ones = [mail(1, NEW_ADDRESS, at=T0 - timedelta(hours=5)), mail(2, REFUND, at=T0 - DAY)]
    match = find_repeat(mail(3, REFUND_AGAIN), open_ones, window=3 * DAY, threshold=REPEAT_THRESHOLD)
    assert match is not None
    assert match.conversation_id == 2
    assert match.similarity >= REPEAT_THRESHOLD
    assert match.reason.startswith("same customer, similar text (")
    assert match.reason.endswith("), within 3 days")


def test_same_question_reworded_in_russian_and_chinese_is_linked() -> None:
    ru_first = ("Не приходит возврат", "Здравствуйте! Я вернула куртку две недели назад, заказ 4411, но возврат денег "
                "так и не пришёл. Проверьте, пожалуйста.")  # fmt: skip
    ru_again = ("Где мой возврат?", "Добрый день, прошло уже больше двух недель, как я отправила куртку обратно "
                "(заказ 4411), а возврат денег всё ещё не пришел.")  # fmt: skip
    zh_first = ("退款还没到", "你好，我两周前退回了订单4411的外套，但是退款一直没有到账，请帮我查一下。")
    zh_again = ("退款问题", "你好，我退回外套已经两个多星期了，订单号4411，退款还是没有到账，麻烦查一下。")
    other = mail(5, NEW_ADDRESS, at=T0 - timedelta(hours=1))
    assert repeat(mail(3, ru_again), [other, mail(1, ru_first, at=T0 - DAY)]) == 1
    assert repeat(mail(4, zh_again), [other, mail(2, zh_first, at=T0 - DAY)]) == 2


def test_a_different_question_from_the_same_customer_is_not_linked() -> None:
    assert repeat(mail(3, NEW_ADDRESS), [mail(2, REFUND, at=T0 - DAY)]) is None
    assert repeat(mail(3, UNRELATED[2]), [mail(1, REFUND), mail(2, NEW_ADDRESS)]) is None


def test_the_same_subject_links_even_when_the_text_differs() -> None:
    first = mail(1, ("Re: [#77] Refund for order 4411", "Attached the receipt."), at=T0 - DAY)
    match = find_repeat(mail(2, ("Refund for order 4411", "Anything yet? I need the money for rent, "
                                 "please tell me when the payment will be made to my card")),
                        [first], window=3 * DAY, threshold=REPEAT_THRESHOLD)  # fmt: skip
    assert match is not None
    assert match.conversation_id == 1
    assert match.reason == "same customer, same subject, within 3 days"


def test_outside_the_window_nothing_is_linked() -> None:
    assert repeat(mail(3, REFUND_AGAIN), [mail(2, REFUND, at=T0 - 4 * DAY)]) is None
    assert repeat(mail(3, ("Refund for order 4411", "any news?")), [mail(2, REFUND, at=T0 - 4 * DAY)]) is None


def test_another_customers_conversation_is_never_a_repeat() -> None:
    theirs = mail(2, REFUND, sender="someone.else@example.com", at=T0 - DAY)
    assert repeat(mail(3, REFUND), [theirs]) is None


def test_sender_addresses_compare_without_case() -> None:
    assert repeat(mail(3, REFUND_AGAIN, sender="Maria@Example.COM"), [mail(2, REFUND, at=T0 - DAY)]) == 2


def test_short_follow_up_goes_to_the_only_open_conversation() -> None:
    nudge = mail(3, ("Hello?", "Any news?"))
    match = find_repeat(nudge, [mail(2, REFUND, at=T0 - DAY)], window=3 * DAY, threshold=REPEAT_THRESHOLD)
    assert match is not None
    assert match.conversation_id == 2
    assert match.reason == "short follow-up within 3 days; the customer's only open conversation"
    assert repeat(mail(4, ("", "有消息吗？")), [mail(2, REFUND, at=T0 - DAY)]) == 2


def test_short_follow_up_with_two_open_conversations_is_ambiguous() -> None:
    open_ones = [mail(1, NEW_ADDRESS, at=T0 - 2 * DAY), mail(2, REFUND, at=T0 - DAY)]
    assert repeat(mail(3, ("Hello?", "Any news?")), open_ones) is None


def test_a_long_new_question_is_not_a_follow_up() -> None:
    assert repeat(mail(3, UNRELATED[0]), [mail(2, REFUND, at=T0 - DAY)]) is None


# --- many customers reporting one incident ----------------------------------------------------


def arrive(reports: Sequence[tuple[str, str]], *, min_reporters: int = 3) -> list[IncidentMatch | None]:
    """Feed reports from different customers, two minutes apart, as the edge would: grouped ones get an incident."""
    seen: list[Candidate] = []
    results: list[IncidentMatch | None] = []
    for number, report in enumerate(reports, start=1):
        new = mail(number, report, sender=f"customer{number}@example.net", at=T0 + timedelta(minutes=2 * number))
        match = find_incident(new, seen, window=TEN_MINUTES, threshold=INCIDENT_THRESHOLD, min_reporters=min_reporters)
        results.append(match)
        if match is not None:
            incident = match.incident_id or 1000 + number
            grouped = set(match.conversation_ids)
            seen = [dataclasses.replace(c, incident_id=incident) if c.conversation_id in grouped else c for c in seen]
            new = dataclasses.replace(new, incident_id=incident)
        seen.append(new)
    return results


def test_five_customers_reporting_an_outage_in_english_become_one_incident() -> None:
    results = arrive([UNRELATED[0], *OUTAGE_EN, UNRELATED[2]])
    formed = results[3]
    assert formed is not None
    assert formed.incident_id is None
    assert formed.reason == "incident: 3 customers sent similar mail within 10 min"
    last = results[5]
    assert last is not None
    assert last.incident_id == 1004
    assert last.conversation_ids == (2, 3, 4, 5)  # the invoice question is not part of it
    assert last.reason == "joins incident 1004: 5 customers sent similar mail"
    assert results[6] is None  # nor is the password question after it


def test_customers_reporting_an_outage_in_chinese_are_grouped() -> None:
    results = arrive([UNRELATED[1], *OUTAGE_ZH])
    # Reworded Chinese reports share fewer characters than English ones share words: the
    # fifth report gathers the two closest earlier ones; the invoice request stays apart.
    assert results[:5] == [None] * 5
    formed = results[5]
    assert formed is not None
    assert formed.conversation_ids == (2, 3)
    assert formed.reason == "incident: 3 customers sent similar mail within 10 min"


def test_reports_spread_beyond_the_window_are_no_incident() -> None:
    seen = [
        mail(n, report, sender=f"c{n}@example.net", at=T0 + timedelta(minutes=15 * n))
        for n, report in enumerate(OUTAGE_EN[:4], start=1)
    ]
    new = mail(5, OUTAGE_EN[4], sender="c5@example.net", at=T0 + timedelta(minutes=75))
    assert find_incident(new, seen, window=TEN_MINUTES, threshold=INCIDENT_THRESHOLD, min_reporters=3) is None


def test_too_few_distinct_customers_are_no_incident() -> None:
    # One customer sending the same report three times is a repeat, not an incident.
    seen = [mail(n, OUTAGE_EN[n], sender="same@example.net", at=T0 + timedelta(minutes=n)) for n in (1, 2, 3)]
    new = mail(9, OUTAGE_EN[0], sender="other@example.net", at=T0 + timedelta(minutes=5))
    assert find_incident(new, seen, window=TEN_MINUTES, threshold=INCIDENT_THRESHOLD, min_reporters=3) is None
    match = find_incident(new, seen, window=TEN_MINUTES, threshold=INCIDENT_THRESHOLD, min_reporters=2)
    assert match is not None
    assert match.conversation_ids == (1, 2, 3)


def test_members_of_an_existing_incident_count_even_when_they_are_worded_differently() -> None:
    member = mail(1, OUTAGE_EN[1], sender="a@example.net", at=T0, incident_id=7)
    far_member = mail(2, ("Down", "Nothing works since this morning."), sender="b@example.net", at=T0, incident_id=7)
    new = mail(3, OUTAGE_EN[0], sender="c@example.net", at=T0 + timedelta(minutes=3))
    match = find_incident(new, [member, far_member], window=TEN_MINUTES, threshold=INCIDENT_THRESHOLD, min_reporters=3)
    assert match is not None
    assert match.incident_id == 7
    assert match.conversation_ids == (1, 2)


# --- normalisation and signatures -------------------------------------------------------------


def test_normalise_drops_what_differs_between_otherwise_identical_reports() -> None:
    assert normalise("Order #4411 FAILED!! See https://shop.example/o/4411 or mail me@x.io [#12]") == (
        "order failed see or mail"
    )
    assert normalise("Ｗｅｂｓｉｔｅ　ＤＯＷＮ") == "website down"
    assert normalise("Ёлка ёлка") == "елка елка"
    assert normalise("كيف  يمكنني") == normalise("کیف يمکنني")


def test_order_numbers_and_links_do_not_make_reports_different() -> None:
    a = signature_of("Payment failed for order 1234", "See https://shop.example/orders/1234")
    b = signature_of("Re: Payment failed for order 98765", "See https://shop.example/orders/98765")
    assert similarity(a, b) == 1.0


def test_signature_survives_storage() -> None:
    signature = signature_of(*REFUND)
    stored = signature.to_str()
    assert stored.isascii()
    assert len(stored) <= 700
    assert Signature.from_str(stored) == signature
    long = signature_of("", " ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(2000)))
    assert len(long.hashes) == 128
    assert Signature.from_str(long.to_str()) == long


@pytest.mark.parametrize("bad", ["", "garbage", "2.3.AAAA", "1.x.AAAA", "1.3.!!!!", "1.3.AAA=", "1.3.AAAAAQAAAAA="])
def test_a_damaged_stored_signature_is_refused_clearly(bad: str) -> None:
    with pytest.raises(DuplicateError, match="signature"):
        Signature.from_str(bad)


def test_bad_settings_are_refused_clearly() -> None:
    new = mail(1, REFUND)
    with pytest.raises(DuplicateError, match="window must be positive"):
        find_repeat(new, [], window=timedelta(0), threshold=0.5)
    with pytest.raises(DuplicateError, match="threshold"):
        find_incident(new, [], window=DAY, threshold=1.5, min_reporters=3)
    with pytest.raises(DuplicateError, match="at least 2 reporters"):
        find_incident(new, [], window=DAY, threshold=0.5, min_reporters=1)


TEXT = st.text(st.sampled_from("abcdefgh ийк 网站打不 ?!1"), max_size=300)


@given(TEXT, TEXT)
def test_similarity_is_symmetric_and_between_zero_and_one(a: str, b: str) -> None:
    first, second = signature_of("", a), signature_of("", b)
    value = similarity(first, second)
    assert 0.0 <= value <= 1.0
    assert value == similarity(second, first)


@given(st.text(max_size=2000), st.text(max_size=100))
def test_identical_mail_is_fully_similar_and_round_trips(text: str, subject: str) -> None:
    signature = signature_of(subject, text)
    assert similarity(signature, signature_of(subject, text)) == 1.0
    assert Signature.from_str(signature.to_str()) == signature
