"""Agent pages: login, the conversation list with keyset paging, the thread page and the sandboxed mail HTML."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from django.test import Client

from factories import make_agent, make_mailbox, make_raw_mail
from postdesk.desk.models import Conversation, Role, Status

pytestmark = pytest.mark.django_db

BASE_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def logged_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def row_count(response) -> int:  # type: ignore[no-untyped-def]
    return response.content.decode().count('class="conversation-row"')


# --- login ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/c/1/", "/c/1/m/1/html"])
def test_pages_need_a_login(two_teams, path: str):  # type: ignore[no-untyped-def]
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_login_and_logout(two_teams):  # type: ignore[no-untyped-def]
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'name="password"' in page.content

    wrong = client.post("/login/", {"username": "ax@example.org", "password": "nope"})
    assert wrong.status_code == 200
    assert b"did not match" in wrong.content

    right = client.post("/login/", {"username": "ax@example.org", "password": "correct horse battery staple"})
    assert right.status_code == 302
    assert right["Location"] == "/"
    listing = client.get("/")
    assert b"Broken login for Xavier" in listing.content
    assert b"Log out" in listing.content

    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


GOOD = "correct horse battery staple"


def test_wrong_passwords_throttle_that_account_from_that_address(two_teams):  # type: ignore[no-untyped-def]
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(5):
        assert attacker.post("/login/", {"username": "ax@example.org", "password": "guess"}).status_code == 200

    refused = attacker.post("/login/", {"username": "AX@example.org", "password": GOOD})

    assert refused.status_code == 429
    assert b"Too many wrong passwords. Try again in 15 minutes." in refused.content
    assert "_auth_user_id" not in attacker.session
    # The agent at their own desk, and other accounts, are not locked out by someone else's guessing.
    assert (
        Client(REMOTE_ADDR="198.51.100.2").post("/login/", {"username": "ax@example.org", "password": GOOD}).status_code
        == 302
    )
    assert attacker.post("/login/", {"username": "ay@example.org", "password": GOOD}).status_code == 302


def test_one_address_guessing_many_accounts_is_throttled(two_teams):  # type: ignore[no-untyped-def]
    attacker = Client(REMOTE_ADDR="203.0.113.8")
    for number in range(20):
        attacker.post("/login/", {"username": f"user{number}@example.org", "password": "guess"})
    assert attacker.post("/login/", {"username": "ay@example.org", "password": GOOD}).status_code == 429


def test_a_right_password_clears_the_count(two_teams):  # type: ignore[no-untyped-def]
    client = Client(REMOTE_ADDR="198.51.100.3")
    for _ in range(4):
        client.post("/login/", {"username": "ax@example.org", "password": "typo"})
    assert client.post("/login/", {"username": "ax@example.org", "password": GOOD}).status_code == 302
    client.logout()
    for _ in range(4):
        client.post("/login/", {"username": "ax@example.org", "password": "typo"})
    assert client.post("/login/", {"username": "ax@example.org", "password": GOOD}).status_code == 302


def test_admin_sign_in_is_throttled_too(two_teams):  # type: ignore[no-untyped-def]
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        attacker.post("/admin/login/", {"username": two_teams.superuser.username, "password": "guess"})
    page = attacker.post("/admin/login/", {"username": two_teams.superuser.username, "password": "pw-root-123"})
    assert b"Too many wrong passwords" in page.content
    assert "_auth_user_id" not in attacker.session


# --- list ----------------------------------------------------------------------------------------


def test_list_shows_only_own_team(two_teams):  # type: ignore[no-untyped-def]
    response = logged_in(two_teams.agent_x).get("/")
    assert response.status_code == 200
    html = response.content.decode()
    x = two_teams.conversation_x
    assert f'href="/c/{x.number}/"' in html
    assert "Broken login for Xavier" in html
    assert "Xavier Client" in html
    assert "I cannot log in since Monday." in html  # snippet
    assert "2026-11-20 09:00" in html  # last message time
    assert '<span class="badge new">New</span>' in html  # status
    # Nothing of team Y: not the row, not its mailbox in the filter, not even through search.
    assert "YSECRET" not in html
    assert "y@support.test" not in html
    assert row_count(response) == 1
    search = logged_in(two_teams.agent_x).get("/?q=YSECRET-BODY")
    assert row_count(search) == 0
    assert "YSECRET" not in search.content.decode().replace('value="YSECRET-BODY"', "")


def test_list_filters_by_status_and_mailbox(two_teams):  # type: ignore[no-untyped-def]
    Conversation.objects.filter(pk=two_teams.conversation_y.pk).update(status=Status.PENDING)
    client = logged_in(two_teams.admin)
    assert row_count(client.get("/")) == 2
    pending = client.get("/?status=pending").content.decode()
    assert "YSECRET-SUBJECT" in pending and "Xavier" not in pending
    by_mailbox = client.get("/?mailbox=x@support.test").content.decode()
    assert "Xavier" in by_mailbox and "YSECRET" not in by_mailbox


def test_list_pages_with_an_older_link(two_teams, deliver):  # type: ignore[no-untyped-def]
    mailbox = make_mailbox("bulk@support.test")
    for i in range(53):
        deliver(
            mailbox,
            make_raw_mail(subject=f"Bulk question {i:02d}", sender=f"c{i} <c{i}@bulk.test>", to="bulk@support.test"),
            at=BASE_TIME + timedelta(hours=1, minutes=i),
        )
    client = logged_in(two_teams.admin)
    first = client.get("/?mailbox=bulk@support.test")
    assert row_count(first) == 50
    html = first.content.decode()
    assert "Bulk question 52" in html and "Bulk question 02" not in html
    older = re.search(r'class="older" href="([^"]+)"', html)
    assert older is not None
    link = older.group(1).replace("&amp;", "&")
    assert "mailbox=bulk%40support.test" in link  # the filter survives paging
    second = client.get("/" + link)
    assert row_count(second) == 3
    second_html = second.content.decode()
    for i in (0, 1, 2):
        assert f"Bulk question {i:02d}" in second_html
    assert 'class="older"' not in second_html


def test_bad_cursor_is_a_clear_400_page(two_teams):  # type: ignore[no-untyped-def]
    response = logged_in(two_teams.agent_x).get("/?cursor=garbage")
    assert response.status_code == 400
    assert b"cursor is not valid" in response.content


# --- thread --------------------------------------------------------------------------------------


def test_thread_page_shows_messages_for_own_team(two_teams):  # type: ignore[no-untyped-def]
    y = two_teams.conversation_y
    response = logged_in(two_teams.agent_y).get(f"/c/{y.number}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Refund YSECRET-SUBJECT" in html
    assert "My card number is in the YSECRET-BODY text." in html
    attachment = two_teams.message_y.attachments.get()
    assert f'href="/api/v1/attachments/{attachment.pk}/download"' in html
    assert "y-contract.pdf" in html
    assert f'href="/api/v1/messages/{two_teams.message_y.pk}/raw"' in html
    # The download links work with the page's session.
    download = logged_in(two_teams.agent_y).get(f"/api/v1/attachments/{attachment.pk}/download")
    assert b"".join(download.streaming_content) == b"%PDF-1.4 y secret contract"


def test_other_teams_thread_and_frames_are_404(two_teams):  # type: ignore[no-untyped-def]
    client = logged_in(two_teams.agent_x)
    y, message_y = two_teams.conversation_y, two_teams.message_y
    for path in (f"/c/{y.number}/", f"/c/{y.number}/m/{message_y.pk}/html", "/c/987654/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"YSECRET" not in response.content
    # Y's message through X's own conversation number is not a way in either.
    sneaky = client.get(f"/c/{two_teams.conversation_x.number}/m/{message_y.pk}/html")
    assert sneaky.status_code == 404
    assert b"YSECRET" not in sneaky.content
    assert logged_in(two_teams.no_profile).get(f"/c/{two_teams.conversation_x.number}/").status_code == 404


def test_quoted_history_is_collapsed_and_problems_shown(two_teams, deliver):  # type: ignore[no-untyped-def]
    first = deliver(two_teams.mailbox_x, make_raw_mail(subject="Order", message_id="<o1@c.test>", to="x@support.test"))
    deliver(
        two_teams.mailbox_x,
        make_raw_mail(
            subject="Re: Order",
            message_id="<o2@c.test>",
            in_reply_to="<o1@c.test>",
            to="x@support.test",
            body="Any news?\n\nOn Fri, 20 Nov 2026 Alice wrote:\n> Hello, my order has not arrived.\n",
        ),
        at=BASE_TIME + timedelta(minutes=3),
    )
    deliver(
        two_teams.mailbox_x,
        b"From: Old <old@c.test>\r\nTo: x@support.test\r\nSubject: Re: Order\r\nMessage-ID: <o3@c.test>\r\n"
        b"In-Reply-To: <o1@c.test>\r\n\r\nThird without a date\r\n",
        at=BASE_TIME + timedelta(minutes=4),
    )
    html = logged_in(two_teams.agent_x).get(f"/c/{first.conversation.number}/").content.decode()
    assert html.index("Hello, my order has not arrived.") < html.index("Any news?") < html.index("Third without")
    details = re.search(r'<details class="quoted">.*?</details>', html, re.S)
    assert details is not None
    assert "&gt; Hello, my order has not arrived." in details.group(0)
    assert "Any news?" not in details.group(0)
    assert "missing-date" in html  # the parse problem of the third mail


def test_mail_html_lives_in_a_sandboxed_frame(two_teams, deliver):  # type: ignore[no-untyped-def]
    msg = EmailMessage()
    msg["From"] = "Mallory <mallory@evil.test>"
    msg["To"] = "x@support.test"
    msg["Subject"] = "Pretty mail"
    msg["Message-ID"] = "<pretty@evil.test>"
    msg["Date"] = "Fri, 20 Nov 2026 09:30:00 +0000"
    msg.set_content("Plain: see our logo\n")
    msg.add_alternative(
        '<p class="x">See <b>our logo</b>: <img src="cid:logo123@evil.test"> '
        '<img src="https://tracker.evil.test/pixel.gif"></p><script>alert("pwned")</script>',
        subtype="html",
    )
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo123@evil.test>")
    message = deliver(two_teams.mailbox_x, bytes(msg))
    client = logged_in(two_teams.agent_x)

    page = client.get(f"/c/{message.conversation.number}/")
    html = page.content.decode()
    # Our page runs only our own script files: nothing inline, nothing from the mail.
    assert "pwned" not in html
    assert re.findall(r"<script(?![^>]*\bsrc=\"/static/)", html) == []
    assert "<b>our logo</b>" not in html  # the mail's HTML is never part of our page
    frame = re.search(r"<iframe[^>]*>", html)
    assert frame is not None
    tag = frame.group(0)
    assert " sandbox=" in tag and "allow-scripts" not in tag and "allow-same-origin" not in tag
    frame_url = f"/c/{message.conversation.number}/m/{message.pk}/html"
    assert f'src="{frame_url}"' in tag
    policy = page["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy

    frame_page = client.get(frame_url)
    assert frame_page.status_code == 200
    assert frame_page["Content-Security-Policy"].startswith(
        "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'"
    )
    assert frame_page["X-Frame-Options"] == "SAMEORIGIN"
    assert frame_page["X-Content-Type-Options"] == "nosniff"
    body = frame_page.content.decode()
    assert "<b>our logo</b>" in body
    assert "alert" not in body
    assert 'src="data:image/png;base64,' in body  # the inline image, allowed by img-src data:
    assert "cid:logo123" not in body


def test_formatted_reply_hides_the_quoted_history_until_asked(two_teams, deliver):  # type: ignore[no-untyped-def]
    msg = EmailMessage()
    msg["From"] = "Xavier <xavier@x-customer.test>"
    msg["To"] = "x@support.test"
    msg["Subject"] = "Re: Refund"
    msg.set_content("The refund has still not arrived.")
    msg.add_alternative(
        "<div>The refund has <b>still</b> not arrived.</div>"
        '<div class="gmail_quote"><div class="gmail_attr">On Mon, 2 Nov 2026 at 10:00, Support wrote:</div>'
        "<blockquote>We sent the refund yesterday.</blockquote></div>",
        subtype="html",
    )
    message = deliver(two_teams.mailbox_x, bytes(msg))
    client = logged_in(two_teams.agent_x)
    frame_url = f"/c/{message.conversation.number}/m/{message.pk}/html"

    visible = client.get(frame_url).content.decode()
    full = client.get(frame_url + "?full=1").content.decode()

    assert "<b>still</b>" in visible and "We sent the refund yesterday" not in visible
    assert "<b>still</b>" in full and "We sent the refund yesterday" in full
    assert f'href="{frame_url}?full=1"' in client.get(f"/c/{message.conversation.number}/").content.decode()
    assert logged_in(two_teams.agent_y).get(frame_url + "?full=1").status_code == 404


def test_admin_role_opens_any_thread(two_teams):  # type: ignore[no-untyped-def]
    boss = make_agent("boss2@example.org", role=Role.ADMIN)
    assert logged_in(boss).get(f"/c/{two_teams.conversation_y.number}/").status_code == 200
