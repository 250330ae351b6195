# ruff: noqa: RUF001, RUF003  (Cyrillic, Persian and Chinese text on purpose)
"""Full-text search (desk/search.py): what a search finds, for whom, in every shipped language, and that the
index follows every change. Runs on SQLite (FTS5 trigram) and on PostgreSQL (pg_trgm + simple + CJK pairs)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import make_agent, make_mailbox, make_raw_mail, make_team
from postdesk.desk import access, actions, search
from postdesk.desk.errors import BadRequest
from postdesk.desk.models import Conversation, Message, Role, Status
from two_teams import BASE_TIME, Deliver, TwoTeams, deliver, fast_passwords, two_teams

__all__ = ["deliver", "fast_passwords", "two_teams"]

pytestmark = pytest.mark.django_db


def numbers(user: AbstractBaseUser, q: str, **filters: object) -> list[int]:
    """What the conversation list shows `user` for the search `q`, in list order."""
    wanted = access.ConversationFilter(q=q, **filters)  # type: ignore[arg-type]
    rows = access.filter_conversations(user, wanted).order_by("-last_message_at", "-id")
    return list(rows.values_list("number", flat=True))


@pytest.fixture
def admin(db: None) -> AbstractBaseUser:
    return make_agent("search-admin@example.org", role=Role.ADMIN)  # type: ignore[no-any-return]


# --- what is searched ----------------------------------------------------------------------------------


def test_finds_by_subject_later_message_contact_name_and_address(deliver: Deliver, admin: AbstractBaseUser) -> None:
    mailbox = make_mailbox()
    first = deliver(
        mailbox,
        make_raw_mail(subject="Invoice missing", sender="Bob Builder <bob@b.test>", body="Hello, where is it?\n"),
    )
    deliver(
        mailbox,
        make_raw_mail(
            subject="Re: Invoice missing",
            sender="Bob Builder <bob@b.test>",
            body="Still waiting. The error says E4711-QUOKKA when I open it.\n",
            in_reply_to=f"<{first.message_id}>",
        ),
        at=BASE_TIME + timedelta(hours=1),
    )
    other = deliver(mailbox, make_raw_mail(subject="Other", sender="Ann <ann@a.test>", body="Nothing here.\n"))
    conversation = first.conversation
    assert Message.objects.filter(conversation=conversation).count() == 2  # the reply threaded

    n = conversation.number
    assert numbers(admin, "invoice") == [n]  # subject, any case
    assert numbers(admin, "e4711-quokka") == [n]  # a word in the second message only
    assert numbers(admin, "Builder") == [n]  # contact name
    assert numbers(admin, "bob@b.test") == [n]  # contact address
    assert numbers(admin, "b.test") == [n]  # part of it
    assert numbers(admin, "builder quokka invoice") == [n]  # every word, each in a different place
    assert numbers(admin, "builder nothing") == []  # every word must match in the same conversation
    assert numbers(admin, "nothing") == [other.conversation.number]
    assert numbers(admin, "zebra") == []


def test_phrases_match_as_written_words_in_any_order(deliver: Deliver, admin: AbstractBaseUser) -> None:
    mailbox = make_mailbox()
    wrapped = deliver(
        mailbox,
        make_raw_mail(subject="Parcel", body="The courier gave me a tracking\nnumber that does not work.\n"),
    )
    reversed_ = deliver(
        mailbox,
        make_raw_mail(subject="Numbers", body="Which number is the tracking one?\n"),
        at=BASE_TIME + timedelta(minutes=1),
    )
    a, b = wrapped.conversation.number, reversed_.conversation.number
    assert numbers(admin, '"tracking number"') == [a]  # across a line break, as one space
    assert numbers(admin, '"Tracking   Number"') == [a]
    assert numbers(admin, "tracking number") == [b, a]  # both words, any order
    assert numbers(admin, '"number tracking"') == []
    assert numbers(admin, '"tracking number') == [a]  # an unclosed quote runs to the end


def test_a_note_and_an_agent_reply_are_searchable(two_teams: TwoTeams) -> None:
    conversation = two_teams.conversation_x
    actions.do_note(two_teams.agent_x, conversation, text="Customer is on the legacy PLAN-Q7 contract.")
    actions.do_reply(
        two_teams.agent_x,
        conversation,
        text="We reset your gizmowidget credentials.",
        recipients=actions.reply_recipients(conversation, reply_all=False),
        seen_event_id=actions.latest_event_id(conversation),
    )
    assert numbers(two_teams.agent_x, "plan-q7") == [conversation.number]
    assert numbers(two_teams.agent_x, "gizmowidget") == [conversation.number]
    # Notes are internal, but only ever searchable by people who may see the conversation.
    assert numbers(two_teams.agent_y, "plan-q7") == []


def test_short_words(deliver: Deliver, admin: AbstractBaseUser) -> None:
    mailbox = make_mailbox()
    tv = deliver(mailbox, make_raw_mail(subject="Broken", body="My TV shows nothing.\n"))
    deliver(mailbox, make_raw_mail(subject="Other", body="Nothing to see.\n"))
    assert numbers(admin, "tv") == [tv.conversation.number]
    assert numbers(admin, "TV shows") == [tv.conversation.number]


# --- languages --------------------------------------------------------------------------------------------


def test_chinese_words_of_one_two_and_four_characters(deliver: Deliver, admin: AbstractBaseUser) -> None:
    mailbox = make_mailbox()
    order = deliver(
        mailbox,
        make_raw_mail(
            subject="订单问题",
            sender="王伟 <wang@example.cn>",
            body="你好，我的订单还没有收到，请帮我查一下物流信息。\n",
        ),
    )
    refund = deliver(
        mailbox,
        make_raw_mail(subject="退款", sender="李娜 <li@example.cn>", body="我想申请退款，商品有质量问题。\n"),
        at=BASE_TIME + timedelta(minutes=1),
    )
    o, r = order.conversation.number, refund.conversation.number
    assert numbers(admin, "订单") == [o]  # two characters: no trigram, the pair index (PostgreSQL) or a scan
    assert numbers(admin, "物流信息") == [o]  # four characters inside a sentence without spaces
    assert numbers(admin, "申请退款") == [r]
    assert numbers(admin, "退款") == [r]
    assert numbers(admin, "王伟") == [o]  # contact name
    assert numbers(admin, "查") == [o]  # one character
    assert numbers(admin, "我") == [r, o]
    assert numbers(admin, "订单 物流") == [o]
    assert numbers(admin, "订单 退款") == []
    assert numbers(admin, "单还没") == [o]
    assert numbers(admin, "订购") == []  # shares a character, is another word


def test_russian_and_ukrainian_word_forms(deliver: Deliver, admin: AbstractBaseUser) -> None:
    mailbox = make_mailbox()
    ru = deliver(
        mailbox,
        make_raw_mail(
            subject="Заказ не пришёл",
            sender="Ольга Иванова <olga@yandex.test>",
            body="Здравствуйте! Номер заказа 5521, оплатила картой. Что с моим заказом?\n",
        ),
    )
    uk = deliver(
        mailbox,
        make_raw_mail(
            subject="Замовлення",
            sender="Тарас <taras@ukr.test>",
            body="Кур’єр сказав, що посилку повернули. Де моє замовлення?\n",
        ),
        at=BASE_TIME + timedelta(minutes=1),
    )
    r, u = ru.conversation.number, uk.conversation.number
    assert numbers(admin, "заказ") == [r]  # finds заказа, заказом: the forms share the stem
    assert numbers(admin, "ЗАКАЗА") == [r]  # case-insensitive in Cyrillic too
    assert numbers(admin, "пришел") == [r]  # е finds ё
    assert numbers(admin, "ПРИШЁЛ") == [r]  # and ё finds ё, whatever the document holds
    assert numbers(admin, '"номер заказа"') == [r]
    assert numbers(admin, "иванова") == [r]
    assert numbers(admin, "замовлення") == [u]
    assert numbers(admin, "кур'єр") == [u]  # the apostrophe typed differently
    assert numbers(admin, "курʼєр") == [u]
    assert numbers(admin, "посилк") == [u]


def test_persian(deliver: Deliver, admin: AbstractBaseUser) -> None:
    mailbox = make_mailbox()
    fa = deliver(
        mailbox,
        make_raw_mail(
            subject="سفارش شماره ۱۲۳ هنوز نرسیده است",
            sender="زهرا احمدی <zahra@gmail.test>",
            body="سلام، می‌خواهم کد رهگیری سفارشم را بدانم.\n",  # with a zero-width non-joiner
        ),
    )
    arabic_letters = deliver(
        mailbox,
        make_raw_mail(subject="پرداخت", body="مبلغ از كارت من كسر شد ولي سفارش ثبت نشد.\n"),  # Arabic kaf and yeh
        at=BASE_TIME + timedelta(minutes=1),
    )
    f, a = fa.conversation.number, arabic_letters.conversation.number
    assert numbers(admin, "سفارش") == [a, f]
    assert numbers(admin, "سفارشم") == [f]
    assert numbers(admin, '"کد رهگیری"') == [f]
    assert numbers(admin, "میخواهم") == [f]  # typed without the ZWNJ
    assert numbers(admin, "می‌خواهم") == [f]  # typed with it
    assert numbers(admin, "احمدی") == [f]  # contact name
    assert numbers(admin, "کارت") == [a]  # Persian keyboard finds the Arabic kaf
    assert numbers(admin, "ولی") == [a]  # … and the Arabic yeh


# --- the index follows every change -----------------------------------------------------------------------


def test_a_merged_message_is_found_under_the_survivor(two_teams: TwoTeams, deliver: Deliver) -> None:
    source = deliver(
        two_teams.mailbox_x,
        make_raw_mail(subject="Second ticket", to="x@support.test", body="The flux-capacitor is broken too.\n"),
        at=BASE_TIME + timedelta(minutes=5),
    ).conversation
    target = two_teams.conversation_x
    assert numbers(two_teams.agent_x, "flux-capacitor") == [source.number]

    actions.do_merge(two_teams.agent_x, source, target)

    assert numbers(two_teams.agent_x, "flux-capacitor") == [target.number]
    assert numbers(two_teams.agent_x, "flux-capacitor", statuses=(Status.MERGED,)) == []
    assert numbers(two_teams.agent_x, "Second ticket") == [source.number]  # the merged one keeps its subject


def test_a_split_message_is_found_under_its_new_conversation(two_teams: TwoTeams, deliver: Deliver) -> None:
    original = two_teams.conversation_x
    first = original.messages.get()
    later = deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Re: Broken login for Xavier",
            sender="Xavier Client <xavier@x-customer.test>",
            to="x@support.test",
            body="Another thing: the hoverboard invoice is wrong.\n",
            in_reply_to=f"<{first.message_id}>",
        ),
        at=BASE_TIME + timedelta(hours=2),
    )
    assert later.conversation_id == original.pk
    assert numbers(two_teams.agent_x, "hoverboard") == [original.number]

    new = actions.do_split(two_teams.agent_x, later)

    assert numbers(two_teams.agent_x, "hoverboard") == [new.number]
    assert numbers(two_teams.agent_x, "since Monday") == [original.number]


def test_edits_deletes_and_rebuild(two_teams: TwoTeams) -> None:
    user = two_teams.superuser
    x, y = two_teams.conversation_x, two_teams.conversation_y
    Message.objects.filter(conversation=x).update(text="Now about a platypus.")
    assert numbers(user, "platypus") == [x.number]
    assert numbers(user, "Monday") == []
    Conversation.objects.filter(pk=x.pk).update(subject="Renamed wombat", contact_name="Xena")
    assert numbers(user, "wombat xena platypus") == [x.number]
    assert numbers(user, "Xavier Client") == []

    assert search.rebuild() == Conversation.objects.count() == 2
    assert numbers(user, "wombat xena platypus") == [x.number]
    assert numbers(user, "YSECRET-BODY") == [y.number]

    Message.objects.filter(conversation=y).delete()
    assert numbers(user, "YSECRET-BODY") == []
    assert numbers(user, "YSECRET-SUBJECT") == [y.number]


def test_bulk_inserts_are_indexed_and_a_paused_load_is_caught_up_by_rebuild(two_teams: TwoTeams) -> None:
    x, y = two_teams.conversation_x, two_teams.conversation_y
    user = two_teams.superuser

    def bulk(word: str) -> None:
        # One INSERT statement for several conversations, as COPY in bench/seed.py is one statement.
        Message.objects.bulk_create(
            Message(conversation=c, mailbox=c.mailbox, direction="inbound", text=f"{word} {c.number}")
            for c in (x, y, x)
        )

    bulk("marsupial")
    assert numbers(user, "marsupial") == [y.number, x.number]
    assert numbers(user, f"marsupial {x.number}") == [x.number]

    if connection.vendor == "postgresql":  # pausing is for COPY, which only PostgreSQL has
        with connection.cursor() as cursor:
            cursor.execute(search.PAUSE_SQL)
        bulk("echidna")
        assert numbers(user, "echidna") == []
        assert search.rebuild() == 2
        assert numbers(user, "echidna") == [y.number, x.number]
        assert numbers(user, "marsupial") == [y.number, x.number]


@pytest.mark.django_db(transaction=True)
def test_rebuild_outside_a_transaction(deliver: Deliver) -> None:
    # Outside a transaction PostgreSQL fills and indexes on several connections at once.
    from django.contrib.auth import get_user_model

    mailbox = make_mailbox()
    made = [
        deliver(mailbox, make_raw_mail(subject=f"Case {i}", body=f"Reference platypus-{i}.\n")).conversation.number
        for i in range(7)
    ]
    user = get_user_model().objects.create_superuser("rebuild@example.org", "rebuild@example.org", "pw-rebuild-1")
    assert search.rebuild(workers=3) == 7
    assert sorted(numbers(user, "platypus")) == sorted(made)
    assert numbers(user, "platypus-3") == [made[3]]
    assert numbers(user, "case 6") == [made[6]]


# --- who finds what -------------------------------------------------------------------------------------


def test_another_teams_conversations_are_never_found_nor_counted(two_teams: TwoTeams) -> None:
    x, y = two_teams.conversation_x.number, two_teams.conversation_y.number
    hidden_y = ("YSECRET-SUBJECT", "YSECRET-BODY", "Yolanda", "y-customer", "refund", '"card number"', "ysecret")
    for q in hidden_y:
        assert numbers(two_teams.agent_x, q) == [], q
        assert access.filter_conversations(two_teams.agent_x, access.ConversationFilter(q=q)).count() == 0
        assert search.ranked(access.visible_conversations(two_teams.agent_x), q) == []
        assert numbers(two_teams.agent_y, q) == [y], q  # so the empty answers mean "hidden", not "broken"
    assert numbers(two_teams.agent_x, "Xavier") == [x]
    assert numbers(two_teams.agent_y, "Xavier") == []
    assert numbers(two_teams.admin, "secret") == [y]
    assert numbers(two_teams.no_profile, "Xavier") == []
    # A word in both teams' conversations is counted per team.
    for agent, own in ((two_teams.agent_x, x), (two_teams.agent_y, y)):
        rows = access.filter_conversations(agent, access.ConversationFilter(q="test"))
        assert rows.count() == 1
        assert [c.number for c in rows] == [own]
    assert access.filter_conversations(two_teams.admin, access.ConversationFilter(q="test")).count() == 2


def test_search_combines_with_the_list_filters(deliver: Deliver, admin: AbstractBaseUser) -> None:
    sales = make_mailbox("sales@example.com", team=make_team("Sales"))
    support = make_mailbox("support@example.com")
    a = deliver(sales, make_raw_mail(subject="Quote for 10 seats", to="sales@example.com"))
    b = deliver(support, make_raw_mail(subject="Seats are broken"), at=BASE_TIME + timedelta(minutes=1))
    Conversation.objects.filter(pk=b.conversation.pk).update(status=Status.OPEN)
    assert numbers(admin, "seats") == [b.conversation.number, a.conversation.number]
    assert numbers(admin, "seats", mailbox="sales@example.com") == [a.conversation.number]
    assert numbers(admin, "seats", statuses=(Status.OPEN,)) == [b.conversation.number]


def test_a_very_common_word_finds_the_newest_matches(
    two_teams: TwoTeams, deliver: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    x_mailbox, y_mailbox = two_teams.mailbox_x, two_teams.mailbox_y

    def conversation(mailbox: object, minute: int, body: str) -> int:
        mail = make_raw_mail(subject=f"Ticket {minute}", to=str(mailbox), body=body)
        return deliver(mailbox, mail, at=BASE_TIME + timedelta(minutes=minute)).conversation.number

    x1 = conversation(x_mailbox, 10, "The widget broke.\n")
    x2 = conversation(x_mailbox, 11, "Another widget broke.\n")
    y3 = conversation(y_mailbox, 12, "My widget too.\n")
    x4 = conversation(x_mailbox, 13, "A widget again.\n")
    conversation(x_mailbox, 14, "Something else.\n")
    assert numbers(two_teams.superuser, "widget") == [x4, y3, x2, x1]

    # As if "widget" were in a large share of a million conversations: the newest two matches only.
    monkeypatch.setattr(search, "COMMON_MATCHES", 1)
    monkeypatch.setattr(search, "COMMON_WINDOW", 2)
    assert numbers(two_teams.superuser, "widget") == [x4, y3]
    assert numbers(two_teams.superuser, "widget broke") == [x2, x1]
    # The window narrows what a team sees; it never shows another team's conversation.
    assert numbers(two_teams.agent_x, "widget") == [x4]
    assert numbers(two_teams.agent_y, "widget") == [y3]
    assert numbers(two_teams.agent_y, "broke") == []


# --- ranking ----------------------------------------------------------------------------------------------


def test_ranked_puts_subject_hits_first_among_recent_matches(deliver: Deliver, admin: AbstractBaseUser) -> None:
    mailbox = make_mailbox()
    in_subject = deliver(mailbox, make_raw_mail(subject="Warranty claim", body="See the subject.\n"))
    in_body = deliver(
        mailbox,
        make_raw_mail(subject="Question", body="Long story. " * 40 + "Also, is there a warranty?\n"),
        at=BASE_TIME + timedelta(minutes=1),
    )
    rows = access.visible_conversations(admin)
    newest_first = numbers(admin, "warranty")
    assert newest_first == [in_body.conversation.number, in_subject.conversation.number]
    best = [c.number for c in search.ranked(rows, "warranty")]
    assert best == [in_subject.conversation.number, in_body.conversation.number]
    # Only the `window` most recent matches are ranked: a window of one holds the newest match only.
    assert [c.number for c in search.ranked(rows, "warranty", window=1)] == [in_body.conversation.number]
    assert search.ranked(rows, "nothing-matches-this") == []


# --- any input is a query -------------------------------------------------------------------------------

HOSTILE = (
    '"',
    '""',
    '"""',
    "'",
    "*",
    "a*",
    "-refund",
    "^start",
    "subject:x",
    "body: x",
    "NEAR(a b)",
    "a NEAR b",
    "a OR b",
    "a AND NOT b",
    "(",
    ")",
    "{subject}: x",
    "%",
    "_",
    "\\",
    "100%_\\",
    "'; DROP TABLE desk_search; --",
    "\x00",
    "a\x00b",
    "\ud800",
    "\u200c",
    "  ",
    "!!!",
    "&|!:*()<->",
    "订",
    "a:*",
    "x" * 200,
    '"' * 200,
)


@pytest.mark.parametrize("common", [False, True], ids=["indexed", "newest"])
@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_never_fail(two_teams: TwoTeams, q: str, common: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if common:  # the other way of finding matches, used for very common words
        monkeypatch.setattr(search, "COMMON_MATCHES", 0)
    numbers(two_teams.superuser, q)
    search.ranked(Conversation.objects.all(), q)


def test_too_long_a_query_is_a_clear_bad_request(two_teams: TwoTeams) -> None:
    with pytest.raises(BadRequest, match="too long"):
        numbers(two_teams.superuser, "x" * 201)
    with pytest.raises(BadRequest, match="too long"):
        search.ranked(Conversation.objects.all(), "x" * 201)


_QUERY_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("\"*-^:(){}%_\\'ab 订单зNEAROR\x00\u200c\t\n"), max_size=40),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=_QUERY_TEXT, common=st.booleans())
def test_no_query_text_raises(two_teams: TwoTeams, monkeypatch: pytest.MonkeyPatch, q: str, common: bool) -> None:
    monkeypatch.setattr(search, "COMMON_MATCHES", 0 if common else 10**9)
    found = numbers(two_teams.superuser, q)
    assert set(found) <= {two_teams.conversation_x.number, two_teams.conversation_y.number}
    assert {c.number for c in search.ranked(Conversation.objects.all(), q)} == set(found)  # the same matches


def test_parse() -> None:
    assert search.parse('Refund, "tracking  number" (order) заказ* 订单。') == (
        "Refund",
        "tracking number",
        "order",
        "заказ",
        "订单",
    )
    assert search.parse('"" " ') == ()
    assert search.parse("!!!") == ("!!!",)  # nothing but punctuation: kept as it is
    assert search.parse("a a A") == ("a", "A")
    many = search.parse("a bb ccc dddd eeeee ffffff ggggggg hhhhhhhh iiiiiiiii")
    assert many == ("bb", "ccc", "dddd", "eeeee", "ffffff", "ggggggg", "hhhhhhhh", "iiiiiiiii")  # longest: rarest


def test_backend_is_the_one_under_test() -> None:
    # This module runs on both databases (make test); make sure it is not silently on an unsupported one.
    assert connection.vendor in ("sqlite", "postgresql")
