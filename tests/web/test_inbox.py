"""The inbox pages: folders and their counts, filters, sort orders with keyset pages, saved views, bulk actions."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone, translation
from django.utils.timesince import timesince
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from factories import make_agent, make_mailbox, make_raw_mail, make_team
from postdesk.desk import actions, folders
from postdesk.desk.models import Conversation, Mailbox, Priority, Role, SavedView, Status, Team
from postdesk.web import inbox

pytestmark = pytest.mark.django_db

BASE_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def numbers(response) -> list[int]:  # type: ignore[no-untyped-def]
    """The conversation numbers of the list's rows, in page order."""
    return [
        int(n) for n in re.findall(r'<tr class="conversation-row"[^>]* data-number="(\d+)"', response.content.decode())
    ]


def counts(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Folder key → the count the sidebar shows."""
    html = response.content.decode()
    found = re.findall(r'data-testid="folder-([\w-]+)".*?<span class="folder-count"[^>]*>([^<]*)</span>', html, re.S)
    return dict(found)


def next_link(response) -> str | None:  # type: ignore[no-untyped-def]
    match = re.search(r'class="older" href="([^"]+)"', response.content.decode())
    return "/" + match.group(1).replace("&amp;", "&") if match else None


class Desk:
    """Team X (x@) with agents ax and ax2, team Y (y@) with agent ay; conversations delivered as real mail."""

    def __init__(self, deliver: Callable[..., object]) -> None:
        self._deliver = deliver
        self.team_x, self.team_y = make_team("X"), make_team("Y")
        self.x = make_mailbox("x@support.test", team=self.team_x)
        self.y = make_mailbox("y@support.test", team=self.team_y)
        self.ax = make_agent("ax@example.org", teams=(self.team_x,))
        self.ax2 = make_agent("ax2@example.org", teams=(self.team_x,))
        self.ay = make_agent("ay@example.org", teams=(self.team_y,))
        self.boss = make_agent("boss@example.org", role=Role.ADMIN)
        self._serial = 0

    def mail(
        self, mailbox: Mailbox, subject: str, *, sender: str = "", at: datetime | None = None, body: str = "Hello.\n"
    ) -> Conversation:
        self._serial += 1
        raw = make_raw_mail(
            subject=subject,
            sender=sender or f"Customer {self._serial} <c{self._serial}@customer.test>",
            to=mailbox.address,
            body=body,
        )
        message = self._deliver(mailbox, raw, at=at or BASE_TIME + timedelta(minutes=self._serial))
        return Conversation.objects.get(pk=message.conversation_id)  # type: ignore[attr-defined]


@pytest.fixture
def desk(deliver) -> Desk:  # type: ignore[no-untyped-def]
    return Desk(deliver)


def fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


# --- folders and counts ---------------------------------------------------------------------------


def test_folders_count_only_the_agents_own_teams(desk: Desk) -> None:
    x_new = [desk.mail(desk.x, f"X question {i}") for i in range(3)]
    x_pending = desk.mail(desk.x, "X pending")
    actions.do_set_status(desk.ax, x_pending, Status.PENDING)
    actions.do_assign(desk.ax, x_new[0], desk.ax)  # Mine, and no longer unassigned
    y_new = [desk.mail(desk.y, f"Y question {i}") for i in range(5)]
    actions.do_mark_spam(desk.ay, y_new[0])
    actions.do_set_status(desk.ay, y_new[1], Status.RESOLVED)

    ax = counts(logged_in(desk.ax).get("/"))
    assert ax == {
        "unassigned": "2",
        "mine": "1",
        f"team-{desk.team_x.pk}": "3",
        "open": "3",
        "pending": "1",
        "snoozed": "0",
        "resolved": "0",
        "spam": "0",
        "all": "4",
    }
    ay = counts(logged_in(desk.ay).get("/"))
    assert ay == {
        "unassigned": "3",
        "mine": "0",
        f"team-{desk.team_y.pk}": "3",
        "open": "3",
        "pending": "0",
        "snoozed": "0",
        "resolved": "1",
        "spam": "1",
        "all": "4",
    }
    # An admin in no team sees every team's folder and every conversation in the counts.
    boss = counts(logged_in(desk.boss).get("/"))
    assert boss["unassigned"] == "5" and boss["all"] == "8" and boss["spam"] == "1"
    assert boss[f"team-{desk.team_x.pk}"] == "3" and boss[f"team-{desk.team_y.pk}"] == "3"
    # Nothing of team Y on X's page: not its folder, not its mail.
    html = logged_in(desk.ax).get("/").content.decode()
    assert "Team Y" not in html and "Y question" not in html and "y@support.test" not in html


def test_folder_lists_hold_what_their_counts_say(desk: Desk) -> None:
    mine = desk.mail(desk.x, "Mine one")
    theirs = desk.mail(desk.x, "Colleague's")
    waiting = desk.mail(desk.x, "Nobody's")
    pending = desk.mail(desk.x, "Waiting on the customer")
    actions.do_assign(desk.ax, mine, desk.ax)
    actions.do_assign(desk.ax, theirs, desk.ax2)
    actions.do_set_status(desk.ax, pending, Status.PENDING)
    client = logged_in(desk.ax)

    assert numbers(client.get("/?folder=mine")) == [mine.number]
    assert set(numbers(client.get("/?folder=unassigned"))) == {waiting.number}  # pending is not "open"
    assert set(numbers(client.get("/?folder=open"))) == {mine.number, theirs.number, waiting.number}
    assert numbers(client.get("/?folder=pending")) == [pending.number]
    assert numbers(client.get("/?folder=spam")) == []
    assert set(numbers(client.get(f"/?folder=team-{desk.team_x.pk}"))) == {mine.number, theirs.number, waiting.number}
    page = client.get("/?folder=mine").content.decode()
    assert 'aria-current="page"' in page and '<h1 id="inbox-title">Mine</h1>' in page


def test_another_teams_folder_is_a_400_not_a_peek(desk: Desk) -> None:
    desk.mail(desk.y, "Y secret")
    response = logged_in(desk.ax).get(f"/?folder=team-{desk.team_y.pk}")
    assert response.status_code == 400
    assert b"There is no folder" in response.content and b"Y secret" not in response.content


def test_counts_stop_at_the_cap(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folders, "COUNT_CAP", 4)
    monkeypatch.setattr(inbox, "COUNT_CAP", 4)
    for i in range(6):
        desk.mail(desk.x, f"Many {i}")
    shown = counts(logged_in(desk.ax).get("/"))
    assert shown["unassigned"] == "3+" and shown["all"] == "3+"
    assert shown["pending"] == "0"


def test_user_without_a_profile_sees_empty_folders(two_teams) -> None:  # type: ignore[no-untyped-def]
    response = logged_in(two_teams.no_profile).get("/")
    assert response.status_code == 200
    assert set(counts(response).values()) == {"0"}
    assert numbers(response) == []


# --- filters --------------------------------------------------------------------------------------


def test_filters_narrow_the_list(desk: Desk) -> None:
    urgent = desk.mail(desk.x, "Server down", sender="Ann Example <ann@example.net>", at=BASE_TIME)
    tagged = desk.mail(desk.x, "Invoice copy", at=BASE_TIME + timedelta(days=2))
    assigned = desk.mail(desk.x, "Password reset", at=BASE_TIME + timedelta(days=4))
    actions.do_set_priority(desk.ax, urgent, Priority.URGENT)
    actions.do_tag(desk.ax, tagged, add=["Billing"])
    actions.do_assign(desk.ax, assigned, desk.ax2)
    client = logged_in(desk.ax)

    assert numbers(client.get("/?priority=urgent")) == [urgent.number]
    assert numbers(client.get("/?tag=billing")) == [tagged.number]
    assert numbers(client.get("/?tag=BILLING")) == [tagged.number]
    assert numbers(client.get(f"/?assignee={desk.ax2.pk}")) == [assigned.number]
    assert numbers(client.get("/?assignee=me")) == []
    assert set(numbers(client.get("/?assignee=nobody"))) == {urgent.number, tagged.number}
    assert numbers(client.get("/?contact=ann@example.net")) == [urgent.number]
    assert numbers(client.get(f"/?contact={urgent.contact_id}")) == [urgent.number]
    assert numbers(client.get("/?status=open")) == [assigned.number]  # assigning opened it
    assert numbers(client.get("/?q=invoice")) == [tagged.number]
    # Dates are whole days, both ends included.
    assert numbers(client.get("/?after=2026-11-22&before=2026-11-22")) == [tagged.number]
    assert numbers(client.get("/?after=2026-11-21")) == [assigned.number, tagged.number]
    assert numbers(client.get("/?before=2026-11-21")) == [urgent.number]
    # Filters combine with a folder and with each other.
    assert numbers(client.get("/?folder=unassigned&priority=urgent")) == [urgent.number]
    assert numbers(client.get("/?folder=mine&priority=urgent")) == []
    # The form shows what is applied.
    page = client.get("/?priority=urgent&tag=billing").content.decode()
    assert '<option value="urgent" selected>' in page and 'value="billing"' in page


def test_a_status_filter_reaches_spam_but_all_conversations_hides_it(desk: Desk) -> None:
    spam = desk.mail(desk.x, "Cheap watches")
    actions.do_mark_spam(desk.ax, spam)
    client = logged_in(desk.ax)
    assert numbers(client.get("/")) == []
    assert numbers(client.get("/?status=spam")) == [spam.number]
    assert numbers(client.get("/?folder=spam")) == [spam.number]
    assert numbers(client.get("/?folder=open&status=spam")) == []


def test_filters_never_reach_another_team(desk: Desk) -> None:
    secret = desk.mail(desk.y, "YSECRET invoice", sender="Yolanda <yolanda@y.test>")
    actions.do_tag(desk.ay, secret, add=["billing"])
    client = logged_in(desk.ax)
    for query in ("tag=billing", "contact=yolanda@y.test", "q=YSECRET", "assignee=nobody", "mailbox=y@support.test"):
        response = client.get(f"/?{query}")
        assert response.status_code == 200, query
        assert numbers(response) == [], query


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("folder=nope", "There is no folder"),
        ("sort=alphabetical", "Unknown sort order"),
        ("status=done", "Unknown status"),
        ("priority=meh", "Unknown priority"),
        ("assignee=someone", "Unknown assignee"),
        ("after=yesterday", "must be a date"),
        ("before=2026-13-45", "must be a date"),
        ("cursor=garbage", "cursor is not valid"),
        ("q=" + "x" * 201, "too long"),
    ],
)
def test_bad_filter_values_are_a_clear_400_page(desk: Desk, query: str, says: str) -> None:
    for path in ("/", "/inbox/refresh/"):
        response = logged_in(desk.ax).get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert says in response.content.decode()
        assert b"Traceback" not in response.content


# --- sorting and keyset pages ---------------------------------------------------------------------


@pytest.fixture
def sortable(desk: Desk) -> list[Conversation]:
    """Eleven conversations with ties in every sort key, some not waiting, four priorities."""
    made = []
    for i in range(11):
        at = BASE_TIME + timedelta(minutes=10 * (i // 2))  # pairs share their time
        made.append(desk.mail(desk.x, f"Sortable {i}", at=at))
    priorities = [Priority.LOW, Priority.URGENT, Priority.NORMAL, Priority.HIGH]
    for i, conversation in enumerate(made):
        actions.do_set_priority(desk.ax, conversation, priorities[i % 4])
    # Some answered (not waiting), and waiting times that differ from activity times.
    Conversation.objects.filter(pk__in=[made[1].pk, made[4].pk, made[7].pk]).update(waiting_since=None)
    Conversation.objects.filter(pk=made[10].pk).update(waiting_since=BASE_TIME - timedelta(days=1))
    # SLA deadlines with ties, and some conversations without one.
    for i, conversation in enumerate(made):
        if i % 3 != 2:
            Conversation.objects.filter(pk=conversation.pk).update(sla_due_at=BASE_TIME + timedelta(hours=(7 * i) % 5))
    return [fresh(c) for c in made]


def expected_order(rows: list[Conversation], sort: str) -> list[int]:
    far = datetime.max.replace(tzinfo=UTC)
    keys: dict[str, Callable[[Conversation], tuple[object, ...]]] = {
        "newest": lambda c: (-c.last_message_at.timestamp(), -c.pk),
        "waiting": lambda c: (c.waiting_since or far, c.pk),
        "priority": lambda c: (c.priority_rank, -c.last_message_at.timestamp(), -c.pk),
        "due": lambda c: (c.sla_due_at or far, c.pk),
    }
    return [c.number for c in sorted(rows, key=keys[sort])]


@pytest.mark.parametrize("sort", ["newest", "waiting", "priority", "due"])
def test_every_sort_pages_through_every_row_once(
    desk: Desk, sortable: list[Conversation], sort: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "DEFAULT_LIMIT", 3)
    client = logged_in(desk.ax)
    seen: list[int] = []
    url: str | None = f"/?sort={sort}"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = numbers(response)
        assert 1 <= len(page) <= 3
        seen += page
        url = next_link(response)
        if url:
            assert f"sort={sort}" in url  # the order survives paging
        pages += 1
    assert pages == 4
    assert seen == expected_order(sortable, sort)


def test_default_sort_is_newest_and_a_cursor_only_fits_its_own_order(
    desk: Desk, sortable: list[Conversation], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "DEFAULT_LIMIT", 3)
    client = logged_in(desk.ax)
    first = client.get("/")
    assert numbers(first) == expected_order(sortable, "newest")[:3]
    link = next_link(first)
    assert link is not None
    cursor = re.search(r"cursor=([\w-]+)", link)
    assert cursor is not None
    response = client.get(f"/?sort=waiting&cursor={cursor.group(1)}")
    assert response.status_code == 400
    assert b"cursor is not valid" in response.content
    forged = base64.urlsafe_b64encode(b"priority|-1|2026-11-20T09:00:00+00:00|5").decode().rstrip("=")
    assert client.get(f"/?sort=priority&cursor={forged}").status_code == 400


def test_waiting_sort_puts_the_longest_waiting_first_and_answered_last(
    desk: Desk, sortable: list[Conversation]
) -> None:
    order = numbers(logged_in(desk.ax).get("/?sort=waiting"))
    assert order[0] == sortable[10].number  # waiting since the day before
    assert set(order[-3:]) == {sortable[1].number, sortable[4].number, sortable[7].number}


def test_due_sort_puts_the_nearest_deadline_first_and_rows_without_an_sla_last(
    desk: Desk, sortable: list[Conversation]
) -> None:
    order = numbers(logged_in(desk.ax).get("/?sort=due"))
    without = {c.number for c in sortable if c.sla_due_at is None}
    assert len(without) == 3
    assert set(order[-3:]) == without
    dues = [c.sla_due_at for c in sorted(sortable, key=lambda c: order.index(c.number)) if c.sla_due_at]
    assert dues == sorted(dues)


def test_rows_show_the_sla_deadline_in_words(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    now = BASE_TIME + timedelta(days=1)
    monkeypatch.setattr(inbox.timezone, "now", lambda: now)
    soon = desk.mail(desk.x, "Due soon")
    late = desk.mail(desk.x, "Breached")
    later = desk.mail(desk.x, "Due tomorrow")
    paused = desk.mail(desk.x, "Waiting on the customer")
    Conversation.objects.filter(pk=soon.pk).update(sla_due_at=now + timedelta(minutes=23))
    Conversation.objects.filter(pk=late.pk).update(sla_due_at=now - timedelta(hours=2))
    Conversation.objects.filter(pk=later.pk).update(sla_due_at=now + timedelta(hours=26))
    Conversation.objects.filter(pk=paused.pk).update(sla_paused={"resolution": 3600})
    no_sla = desk.mail(desk.x, "No SLA")
    page = lxml_html.fromstring(logged_in(desk.ax).get("/").content)

    def cells(conversation: Conversation) -> list[lxml_html.HtmlElement]:
        (row,) = page.xpath(f'//tr[@data-number="{conversation.number}"]')
        return list(row.xpath('.//*[@data-testid="sla-due"]'))

    def due(conversation: Conversation) -> tuple[str, list[str]]:
        (cell,) = cells(conversation)
        return cell.text_content().strip(), str(cell.get("class")).split()

    assert due(soon) == ("due in 23 min", ["sla-due", "warning"])  # within the default 30-minute warning
    assert due(late) == ("breached 2 h ago", ["sla-due", "breached"])
    assert due(later) == ("due in 26 h", ["sla-due", "ok"])
    assert due(paused) == ("SLA paused", ["sla-due", "paused"])
    assert cells(no_sla) == []


# --- list rows and live refresh -------------------------------------------------------------------


def test_rows_show_what_an_agent_needs(desk: Desk, deliver) -> None:  # type: ignore[no-untyped-def]
    raw = make_raw_mail(
        subject="Contract attached",
        sender="Carla Customer <carla@customer.test>",
        to="x@support.test",
        body="Please sign the attached contract.\n",
        attachments=(("contract.pdf", "application/pdf", b"%PDF-1.4 contract"),),
    )
    conversation = deliver(desk.x, raw, at=BASE_TIME).conversation
    actions.do_assign(desk.ax, conversation, desk.ax2)
    actions.do_set_priority(desk.ax, conversation, Priority.HIGH)
    actions.do_tag(desk.ax, conversation, add=["legal"])
    html = logged_in(desk.ax).get("/").content.decode()
    row = re.search(r'<tr class="conversation-row".*?</tr>', html, re.S)
    assert row is not None
    text = row.group(0)
    for shown in (
        "Carla Customer",
        "carla@customer.test",
        "Contract attached",
        "Please sign the attached contract.",
        '<span class="badge open">Open</span>',
        '<span class="priority high">High</span>',
        "ax2@example.org",
        '<span class="tag">legal</span>',
        'aria-label="Has attachments"',
        f'datetime="{BASE_TIME.isoformat()}"',
        "ago</time>",
        "waiting ",
        f'data-presence-for="{conversation.pk}"',
        f'href="/c/{conversation.number}/"',
    ):
        assert shown in text, shown


def test_rows_say_how_long_ago_in_words_and_name_what_is_missing(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    answered = desk.mail(desk.x, "Answered", at=BASE_TIME - timedelta(days=40))
    Conversation.objects.filter(pk=answered.pk).update(waiting_since=None)
    nameless = desk.mail(desk.x, "", at=BASE_TIME - timedelta(seconds=20))
    Conversation.objects.filter(pk=nameless.pk).update(waiting_since=BASE_TIME - timedelta(days=2, hours=3))
    monkeypatch.setattr(timezone, "now", lambda: BASE_TIME)
    html = logged_in(desk.ax).get("/").content.decode()
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r'<tr class="conversation-row"[^>]* data-number="(\d+)".*?</tr>', html, re.S)
    }
    new = rows[str(nameless.number)]
    assert ">(no subject)</a>" in new
    assert '<div class="assignee muted">Unassigned</div>' in new
    assert ">just now</time>" in new
    assert '<div class="waiting" title="Waiting since 2026-11-18 06:00">waiting 2\xa0days</div>' in new
    assert f'aria-label="Select conversation {nameless.number}"' in new
    old = rows[str(answered.number)]
    assert ">1\xa0month ago</time>" in old  # 40 days: calendar months, as Django's timesince counts them
    assert 'class="waiting"' not in old  # answered: not waiting


@pytest.mark.parametrize("language", ["en", "ru", "fa"])
@settings(max_examples=300, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    gap=st.one_of(
        st.timedeltas(min_value=timedelta(seconds=-120), max_value=timedelta(hours=2)),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=900)),
    ),
)
def test_relative_times_read_exactly_as_djangos_timesince(language: str, when: datetime, gap: timedelta) -> None:
    """The list's ages ("3 hours", "1 year") are worded, pluralised and translated as Django's own timesince."""
    now = when + gap
    with translation.override(language):
        ages = inbox.RelativeTime()
        first = ages.since(when, now)
        assert first == timesince(when, now, depth=1)
        assert ages.since(when, now) == first  # the second time from the page's cache, still the same text


def test_list_page_carries_the_live_contract(desk: Desk) -> None:
    desk.mail(desk.x, "Live one")
    html = logged_in(desk.ax).get("/").content.decode()
    assert f'data-live-mailboxes="{desk.x.pk}"' in html  # never team Y's mailbox
    assert 'data-agent-name="ax@example.org"' in html
    assert 'hx-trigger="pd:refresh from:body"' in html
    for script in ("django_htmx/htmx-2.min.js", "postdesk/app.js", "postdesk/live.js"):
        assert f'<script src="/static/{script}" defer></script>' in html
    boss = logged_in(desk.boss).get("/").content.decode()
    assert f'data-live-mailboxes="{desk.x.pk},{desk.y.pk}"' in boss


def test_refresh_returns_the_list_and_fresh_counts(desk: Desk) -> None:
    first = desk.mail(desk.x, "First")
    client = logged_in(desk.ax)
    before = client.get("/inbox/refresh/?folder=unassigned")
    assert numbers(before) == [first.number]
    assert counts(before)["unassigned"] == "1"
    second = desk.mail(desk.x, "Second arrives")
    after = client.get("/inbox/refresh/?folder=unassigned")
    html = after.content.decode()
    assert html.lstrip().startswith('<div id="inbox-list"')  # a fragment, not a page
    assert "<html" not in html
    assert 'id="folders"' in html and 'hx-swap-oob="true"' in html
    assert numbers(after) == [second.number, first.number]
    assert counts(after)["unassigned"] == "2"


def test_static_files_are_served(desk: Desk) -> None:
    client = logged_in(desk.ax)
    for path in ("/static/postdesk/app.css", "/static/postdesk/app.js", "/static/django_htmx/htmx-2.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path


def test_page_csp_allows_only_our_own_scripts_and_styles(desk: Desk) -> None:
    desk.mail(desk.x, "CSP check")
    response = logged_in(desk.ax).get("/")
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert "unsafe" not in response["Content-Security-Policy"]
    html = response.content.decode()
    # Nothing the policy would block: no inline script, style or event handler.
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert "<style" not in html and " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None
    assert '"allowEval":false' in html


# --- saved views ----------------------------------------------------------------------------------


def test_saved_views_are_saved_listed_used_and_deleted_by_their_owner_only(desk: Desk) -> None:
    urgent = desk.mail(desk.x, "Urgent one")
    desk.mail(desk.x, "Normal one")
    actions.do_set_priority(desk.ax, urgent, Priority.URGENT)
    owner, other = logged_in(desk.ax), logged_in(desk.ax2)

    saved = owner.post("/inbox/views/", {"name": "  Hot   stuff ", "priority": "urgent", "sort": "waiting", "q": ""})
    assert saved.status_code == 302
    view = SavedView.objects.get(owner=desk.ax)
    assert view.name == "Hot stuff" and view.filters == {"priority": "urgent", "sort": "waiting"}
    landing = owner.get(saved["Location"])
    assert numbers(landing) == [urgent.number]
    html = landing.content.decode()
    assert "Saved the view “Hot stuff”." in html
    assert re.search(
        r'<a href="\?priority=urgent&amp;sort=waiting" class="active" aria-current="page">Hot stuff</a>', html
    )

    assert "Hot stuff" not in other.get("/").content.decode()
    refused = other.post(f"/inbox/views/{view.pk}/delete/")
    assert refused.status_code == 404
    assert SavedView.objects.filter(pk=view.pk).exists()

    deleted = owner.post(f"/inbox/views/{view.pk}/delete/", {"folder": "mine"})
    assert deleted.status_code == 302 and deleted["Location"] == "/?folder=mine"
    assert not SavedView.objects.filter(pk=view.pk).exists()
    assert "Hot stuff" not in owner.get("/").content.decode()


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"name": "Bad", "priority": "meh"}, "Unknown priority"),
        ({"name": "Bad", "folder": "nope"}, "There is no folder"),
        ({"name": "   "}, "Give the view a name"),
        ({"name": "x" * 101}, "Give the view a name"),
    ],
)
def test_a_view_that_could_not_open_is_not_saved(desk: Desk, form: dict[str, str], says: str) -> None:
    response = logged_in(desk.ax).post("/inbox/views/", form)
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not SavedView.objects.exists()


# --- bulk actions ---------------------------------------------------------------------------------


def flash(response) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r'<div class="flash".*?</div>', response.content.decode(), re.S)
    return match.group(0) if match else ""


def test_bulk_assign_and_resolve_report_what_changed(desk: Desk) -> None:
    one, two, three = (desk.mail(desk.x, f"Bulk {i}") for i in range(3))
    client = logged_in(desk.ax)

    response = client.post("/inbox/bulk/", {"n": [one.number, two.number], "quick": "assign:me", "folder": "open"})
    assert response.status_code == 302 and response["Location"] == "/?folder=open"
    assert fresh(one).assignee_id == desk.ax.pk and fresh(two).assignee_id == desk.ax.pk
    assert fresh(three).assignee_id is None
    assert "Changed 2 conversations." in flash(client.get(response["Location"]))

    client.post("/inbox/bulk/", {"n": [one.number], "op": f"assign:{desk.ax2.pk}"})
    assert fresh(one).assignee_id == desk.ax2.pk
    client.post("/inbox/bulk/", {"n": [one.number], "op": "assign:nobody"})
    assert fresh(one).assignee_id is None

    client.post("/inbox/bulk/", {"n": [one.number, three.number], "quick": "status:resolved"})
    assert fresh(one).status == fresh(three).status == Status.RESOLVED
    client.post("/inbox/bulk/", {"n": [two.number], "op": "priority:urgent"})
    assert fresh(two).priority == Priority.URGENT and fresh(two).priority_rank == 0
    client.post("/inbox/bulk/", {"n": [two.number, three.number], "op": "tag", "new_tag": "Refunds"})
    assert list(fresh(three).tags.values_list("name", flat=True)) == ["refunds"]
    # Enter in the tag field (no action chosen) adds the tag too.
    client.post("/inbox/bulk/", {"n": [one.number], "op": "", "new_tag": "vip"})
    assert list(fresh(one).tags.values_list("name", flat=True)) == ["vip"]


def test_bulk_spam_and_merge(desk: Desk) -> None:
    junk = desk.mail(desk.x, "Junk")
    older = desk.mail(desk.x, "Order 1", at=BASE_TIME)
    newer = desk.mail(desk.x, "Order 1 again", at=BASE_TIME + timedelta(hours=1))
    client = logged_in(desk.ax)
    client.post("/inbox/bulk/", {"n": [junk.number], "op": "spam"})
    assert fresh(junk).status == Status.SPAM
    response = client.post("/inbox/bulk/", {"n": [newer.number, older.number], "op": "merge"})
    assert "Changed 1 conversation." in flash(client.get(response["Location"]))
    assert fresh(newer).status == Status.MERGED and fresh(newer).merged_into_id == older.pk
    assert fresh(older).message_count == 2


def test_bulk_reports_other_teams_conversations_as_not_found_and_leaves_them(desk: Desk) -> None:
    mine = desk.mail(desk.x, "Ours")
    hidden = desk.mail(desk.y, "Theirs")
    client = logged_in(desk.ax)
    response = client.post("/inbox/bulk/", {"n": [mine.number, hidden.number, 999999], "quick": "status:resolved"})
    shown = flash(client.get(response["Location"]))
    assert "Changed 1 conversation." in shown
    assert f"There is no conversation #{hidden.number}." in shown
    assert "There is no conversation #999999." in shown
    assert "Theirs" not in shown
    assert fresh(mine).status == Status.RESOLVED
    untouched = fresh(hidden)
    assert untouched.status == Status.NEW and untouched.events.count() == hidden.events.count()


def test_collaborator_cannot_bulk_act(desk: Desk) -> None:
    conversation = desk.mail(desk.x, "Read only")
    helper = make_agent("helper@example.org", teams=(desk.team_x,), role=Role.COLLABORATOR)
    client = logged_in(helper)
    page = client.get("/")
    assert numbers(page) == [conversation.number]
    assert b'id="bulk-form"' not in page.content  # no buttons that would only fail
    response = client.post("/inbox/bulk/", {"n": [conversation.number], "quick": "assign:me"})
    assert response.status_code == 403
    assert b"Collaborators may read conversations" in response.content
    assert fresh(conversation).assignee_id is None


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"n": ["1"], "op": "explode"}, "Choose what to do"),
        ({"n": ["1"], "op": ""}, "Choose what to do"),
        ({"n": ["1"], "op": "tag", "new_tag": " "}, "Type the tag"),
        ({"n": ["1", "two"], "op": "spam"}, "not a list of conversation numbers"),
        ({"op": "spam"}, "Select at least one conversation"),
        ({"n": ["1"], "op": "status:done"}, "Unknown status"),
        ({"n": ["1"], "op": "assign:ghost@example.org"}, "Choose what to do"),
        ({"n": ["1"], "op": "merge"}, "at least two"),
    ],
)
def test_bad_bulk_requests_are_a_clear_400_page(desk: Desk, form: dict[str, object], says: str) -> None:
    desk.mail(desk.x, "Something")
    response = logged_in(desk.ax).post("/inbox/bulk/", form)
    assert response.status_code == 400
    assert says in response.content.decode()


def test_bulk_needs_post_and_csrf(desk: Desk) -> None:
    conversation = desk.mail(desk.x, "Careful")
    assert logged_in(desk.ax).get("/inbox/bulk/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(desk.ax)
    assert strict.post("/inbox/bulk/", {"n": [conversation.number], "op": "spam"}).status_code == 403
    assert fresh(conversation).status == Status.NEW
    assert Client().post("/inbox/bulk/", {"n": [conversation.number], "op": "spam"}).status_code == 302  # to login


def test_an_agent_can_bulk_assign_only_to_agents_who_see_the_mailbox(desk: Desk) -> None:
    conversation = desk.mail(desk.x, "Assign me across teams")
    client = logged_in(desk.ax)
    response = client.post("/inbox/bulk/", {"n": [conversation.number], "op": f"assign:{desk.ay.pk}"})
    assert response.status_code == 302
    shown = flash(client.get(response["Location"]))
    assert "not in a team that sees this mailbox" in shown
    assert fresh(conversation).assignee_id is None


def test_assignee_choices_list_only_colleagues_and_admins(desk: Desk) -> None:
    page = logged_in(desk.ax).get("/").content.decode()
    assert "ax2@example.org" in page and "boss@example.org" in page
    assert "ay@example.org" not in page


def test_team_names_use_my_teams_even_for_a_member_admin(desk: Desk) -> None:
    # An admin who belongs to a team gets that team's folder only (but still counts everything in All).
    lead = make_agent("lead@example.org", teams=(desk.team_y,), role=Role.ADMIN)
    desk.mail(desk.x, "For X")
    shown = counts(logged_in(lead).get("/"))
    assert f"team-{desk.team_y.pk}" in shown and f"team-{desk.team_x.pk}" not in shown
    assert shown["all"] == "1"
    assert Team.objects.count() == 2


# --- cost: what the database is asked ---------------------------------------------------------------


def list_queries(client: Client, url: str) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("sort", ["newest", "waiting", "priority"])
def test_pages_never_use_offset_and_cost_the_same_for_more_rows(
    desk: Desk, sort: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = logged_in(desk.ax)
    for i in range(3):
        desk.mail(desk.x, f"Few {i}")
    few = list_queries(client, f"/?sort={sort}")
    for i in range(6):
        conversation = desk.mail(desk.x, f"More {i}")
        actions.do_tag(desk.ax, conversation, add=[f"tag{i}"])
        actions.do_assign(desk.ax, conversation, desk.ax2)
    more = list_queries(client, f"/?sort={sort}")
    assert len(numbers(client.get(f"/?sort={sort}"))) == 9
    assert len(more) == len(few)  # tags, assignees: no query per row
    monkeypatch.setattr(inbox, "DEFAULT_LIMIT", 2)
    second = client.get(f"/?sort={sort}")
    link = next_link(second)
    assert link is not None
    for sql in list_queries(client, link):
        assert "OFFSET" not in sql.upper()
    # Every folder count is capped by a LIMIT, in a single query.
    counting = [sql for sql in more if "COUNT(" in sql.upper()]
    assert len(counting) == 1
    assert counting[0].upper().count(f"LIMIT {folders.COUNT_CAP}") == len(counts(client.get("/")))
