"""API v1 behaviour: lists, filters, keyset paging, conversation detail, downloads, schema and every error shape."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import quote

import pytest
from django.http import Http404
from django.test import Client, RequestFactory

from factories import make_agent, make_mailbox, make_raw_mail, make_team
from postdesk.api.errors import page_not_found, server_error
from postdesk.desk.blobs import default_store
from postdesk.desk.models import Attachment, Conversation, Direction, Message, Role, Status

BASE_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(db: None):  # type: ignore[no-untyped-def]
    return make_agent("boss@example.org", role=Role.ADMIN)


@pytest.fixture
def api(boss, token_client) -> Client:  # type: ignore[no-untyped-def]
    return token_client(boss)


def assert_error(response, status: int, code: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """The response is our JSON error with that status (and code); returns its message."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"].strip()
    assert "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return str(body["error"]["message"])


# --- list ----------------------------------------------------------------------------------------


def test_list_rows_carry_what_a_list_shows(api, deliver):  # type: ignore[no-untyped-def]
    team = make_team("Billing")
    mailbox = make_mailbox("support@example.com", team=team)
    deliver(
        mailbox,
        make_raw_mail(
            subject="Invoice 42 is wrong",
            sender="Alice Customer <alice@customer.test>",
            body="The total on invoice 42 is twice what we agreed.\n",
            attachments=(("invoice.pdf", "application/pdf", b"%PDF-1.4 invoice"),),
        ),
    )
    response = api.get("/api/v1/conversations/")
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    [row] = body["results"]
    assert row["subject"] == "Invoice 42 is wrong"
    assert row["status"] == "new"
    assert row["priority"] == "normal"
    assert row["mailbox"] == "support@example.com"
    assert row["team"] == "Billing"
    assert row["assignee"] is None
    assert row["contact"]["name"] == "Alice Customer"
    assert row["contact"]["address"] == "alice@customer.test"
    assert isinstance(row["contact"]["id"], int)
    assert row["message_count"] == 1
    assert row["snippet"].startswith("The total on invoice 42")
    assert row["has_attachments"] is True
    assert row["created_at"] and row["last_message_at"]
    assert isinstance(row["number"], int)
    assert "messages" not in row  # bodies load only on the conversation itself


def test_filters_narrow_the_list(api, deliver):  # type: ignore[no-untyped-def]
    sales = make_mailbox("sales@example.com")
    support = make_mailbox("support@example.com")
    a = deliver(sales, make_raw_mail(subject="Quote for 10 seats", sender="Ann <ann@a.test>", to="sales@example.com"))
    b = deliver(
        support,
        make_raw_mail(subject="Crash on start", sender="Bob Builder <bob@b.test>", body="It fails with code E1234.\n"),
        at=BASE_TIME + timedelta(minutes=1),
    )
    c = deliver(
        support,
        make_raw_mail(subject="Password reset", sender="Ann <ANN@a.test>"),
        at=BASE_TIME + timedelta(minutes=2),
    )
    Conversation.objects.filter(pk=b.conversation.pk).update(status=Status.OPEN)

    def numbers(query: str) -> list[int]:
        response = api.get(f"/api/v1/conversations/?{query}")
        assert response.status_code == 200, response.content
        return [row["number"] for row in response.json()["results"]]

    na, nb, nc = a.conversation.number, b.conversation.number, c.conversation.number
    assert numbers("") == [nc, nb, na]
    assert numbers("mailbox=support@example.com") == [nc, nb]
    assert numbers("mailbox=SALES@example.com") == [na]
    assert numbers("mailbox=nobody@example.com") == []
    assert numbers("status=open") == [nb]
    assert numbers("status=new,open") == [nc, nb, na]
    assert numbers("contact=ann@a.test") == [nc, na]
    assert numbers(f"contact={a.conversation.contact_id}") == [nc, na]
    assert numbers("q=seats") == [na]  # subject
    assert numbers("q=builder") == [nb]  # contact name
    assert numbers("q=b.test") == [nb]  # contact address
    assert numbers("q=E1234") == [nb]  # message text
    assert numbers("q=nothing-like-this") == []
    assert numbers("mailbox=support@example.com&q=ann") == [nc]


def test_keyset_walk_sees_every_conversation_once_in_order(api, deliver):  # type: ignore[no-untyped-def]
    mailbox = make_mailbox()
    for i in range(120):
        # Three conversations share each timestamp, so the id tie-break is exercised too.
        deliver(
            mailbox,
            make_raw_mail(subject=f"Question {i}", sender=f"Customer {i} <c{i}@customer.test>"),
            at=BASE_TIME + timedelta(minutes=i // 3),
        )
    expected = list(Conversation.objects.order_by("-last_message_at", "-id").values_list("number", flat=True))
    assert len(expected) == 120

    seen: list[int] = []
    url = "/api/v1/conversations/?limit=7"
    pages = 0
    while True:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["results"]) <= 7
        seen.extend(row["number"] for row in body["results"])
        pages += 1
        if body["next_cursor"] is None:
            break
        url = f"/api/v1/conversations/?limit=7&cursor={quote(body['next_cursor'])}"
        assert pages < 50
    assert seen == expected
    assert len(set(seen)) == 120
    assert pages == 18  # 17 full pages of 7, then 1

    default_page = api.get("/api/v1/conversations/").json()
    assert len(default_page["results"]) == 50
    assert default_page["next_cursor"]
    largest = api.get("/api/v1/conversations/?limit=200").json()
    assert len(largest["results"]) == 120
    assert largest["next_cursor"] is None


def test_paging_with_a_filter_keeps_the_filter(api, deliver):  # type: ignore[no-untyped-def]
    mailbox = make_mailbox()
    for i in range(10):
        deliver(
            mailbox,
            make_raw_mail(subject=f"{'Refund' if i % 2 else 'Other'} {i}", sender=f"c{i} <c{i}@x.test>"),
            at=BASE_TIME + timedelta(minutes=i),
        )
    first = api.get("/api/v1/conversations/?q=refund&limit=3").json()
    second = api.get(f"/api/v1/conversations/?q=refund&limit=3&cursor={first['next_cursor']}").json()
    subjects = [row["subject"] for row in first["results"] + second["results"]]
    assert subjects == ["Refund 9", "Refund 7", "Refund 5", "Refund 3", "Refund 1"]
    assert second["next_cursor"] is None


# --- detail --------------------------------------------------------------------------------------


def test_conversation_detail_has_messages_in_order(api, deliver):  # type: ignore[no-untyped-def]
    mailbox = make_mailbox()
    first = deliver(
        mailbox,
        make_raw_mail(
            subject="Printer on fire",
            message_id="<first@customer.test>",
            body="The printer is on fire.\n",
            attachments=(("photo.png", "image/png", b"\x89PNG\r\n\x1a\nfake"),),
        ),
    )
    reply = make_raw_mail(
        subject="Re: Printer on fire",
        message_id="<second@customer.test>",
        in_reply_to="<first@customer.test>",
        references="<first@customer.test>",
        body="It is out now.\n\nOn Mon, Alice wrote:\n> The printer is on fire.\n",
        extra_headers={"Cc": "Boss <boss@customer.test>"},
    )
    second = deliver(mailbox, reply, at=BASE_TIME + timedelta(minutes=5))
    assert second.conversation.pk == first.conversation.pk
    number = first.conversation.number

    response = api.get(f"/api/v1/conversations/{number}/")
    assert response.status_code == 200
    body = response.json()
    assert body["number"] == number
    assert body["message_count"] == 2
    assert [m["message_id"] for m in body["messages"]] == ["first@customer.test", "second@customer.test"]
    one, two = body["messages"]
    assert one["direction"] == "inbound"
    assert one["from"] == {"name": "Alice Customer", "address": "alice@customer.test"}
    assert one["to"] == [{"name": "", "address": "support@example.com"}]
    assert one["problems"] == []
    [attachment] = one["attachments"]
    assert attachment["filename"] == "photo.png"
    assert attachment["content_type"] == "image/png"
    assert attachment["size"] == len(b"\x89PNG\r\n\x1a\nfake")
    assert len(attachment["sha256"]) == 64
    assert attachment["inline"] is False
    assert attachment["url"].endswith(f"/api/v1/attachments/{attachment['id']}/download")
    assert one["raw_url"].endswith(f"/api/v1/messages/{one['id']}/raw")
    assert two["cc"] == [{"name": "Boss", "address": "boss@customer.test"}]
    assert two["visible_text"].strip() == "It is out now."
    assert "The printer is on fire." in two["quoted_text"]
    for key in ("date", "subject", "text", "html", "signature", "automated_kind", "reply_to"):
        assert key in two


def test_html_is_returned_sanitised(api, deliver):  # type: ignore[no-untyped-def]
    msg = EmailMessage()
    msg["From"] = "Mallory <mallory@evil.test>"
    msg["To"] = "support@example.com"
    msg["Subject"] = "Look at this"
    msg["Message-ID"] = "<html1@evil.test>"
    msg["Date"] = "Fri, 20 Nov 2026 09:30:00 +0000"
    msg.set_content("plain version\n")
    msg.add_alternative(
        '<p onclick="steal()">Hello <b>there</b></p><script>alert(1)</script><img src="x" onerror="alert(2)">',
        subtype="html",
    )
    message = deliver(make_mailbox(), bytes(msg))
    html = api.get(f"/api/v1/conversations/{message.conversation.number}/").json()["messages"][0]["html"]
    assert "<b>there</b>" in html
    assert "script" not in html.lower()
    assert "onclick" not in html.lower() and "onerror" not in html.lower()


def test_parse_problems_are_listed(api, deliver):  # type: ignore[no-untyped-def]
    raw = (
        b"From: Old Client <old@client.test>\r\nTo: support@example.com\r\nSubject: no date here\r\n"
        b"Message-ID: <nodate@client.test>\r\n\r\nHello\r\n"
    )
    message = deliver(make_mailbox(), raw)
    problems = api.get(f"/api/v1/conversations/{message.conversation.number}/").json()["messages"][0]["problems"]
    assert {"code": "missing-date", "detail": ""} in problems


# --- downloads -----------------------------------------------------------------------------------


def test_raw_download_is_the_original_bytes(api, deliver):  # type: ignore[no-untyped-def]
    raw = make_raw_mail(subject="Keep me exactly", body="Bytes matter: caf\u00e9\n")
    message = deliver(make_mailbox(), raw)
    response = api.get(f"/api/v1/messages/{message.pk}/raw")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == raw
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"].startswith(f'attachment; filename="message-{message.pk}.eml"')
    assert response["X-Content-Type-Options"] == "nosniff"


def test_raw_of_a_note_is_a_json_404(api, deliver):  # type: ignore[no-untyped-def]
    inbound = deliver(make_mailbox(), make_raw_mail())
    note = Message.objects.create(
        conversation=inbound.conversation, mailbox=inbound.mailbox, direction=Direction.NOTE, text="internal"
    )
    message = assert_error(api.get(f"/api/v1/messages/{note.pk}/raw"), 404, "no_raw_mail")
    assert "raw mail" in message


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("application/pdf", "application/pdf"),
        ("image/png", "image/png"),
        ("text/html", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("application/x-msdownload", "application/octet-stream"),
    ],
)
def test_attachment_download_headers(api, deliver, declared: str, served: str):  # type: ignore[no-untyped-def]
    content = b"<svg onload=alert(1)>" if "svg" in declared else b"file content \x00\x01"
    _maintype, subtype = declared.split("/")
    message = deliver(make_mailbox(), make_raw_mail(attachments=((f"Счёт №5.{subtype[:3]}", declared, content),)))
    attachment = message.attachments.get()
    response = api.get(f"/api/v1/attachments/{attachment.pk}/download")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Type"] == served
    assert response["X-Content-Type-Options"] == "nosniff"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert f"filename*=UTF-8''{quote(attachment.filename, safe='')}" in disposition
    disposition.encode("ascii")  # header stays ASCII; the real name travels percent-encoded


def test_attachment_name_is_sanitised(api, deliver):  # type: ignore[no-untyped-def]
    message = deliver(make_mailbox(), make_raw_mail(attachments=(("a.txt", "text/plain", b"hello"),)))
    attachment = message.attachments.get()
    Attachment.objects.filter(pk=attachment.pk).update(filename='..\\..\\etc/pass"wd\r\nX-Evil: 1\u202etxt.exe')
    response = api.get(f"/api/v1/attachments/{attachment.pk}/download")
    response.close()
    disposition = response["Content-Disposition"]
    assert "X-Evil" not in response
    assert disposition == (
        "attachment; filename=\"passwdX-Evil: 1txt.exe\"; filename*=UTF-8''passwdX-Evil%3A%201txt.exe"
    )


def test_missing_blob_is_a_json_500_without_trace(api, deliver):  # type: ignore[no-untyped-def]
    message = deliver(make_mailbox(), make_raw_mail(attachments=(("a.pdf", "application/pdf", b"%PDF-1 gone"),)))
    attachment = message.attachments.get()
    default_store().path_for(attachment.sha256).unlink()
    assert_error(api.get(f"/api/v1/attachments/{attachment.pk}/download"), 500, "file_missing")


# --- schema --------------------------------------------------------------------------------------


def test_schema_is_served(api):  # type: ignore[no-untyped-def]
    response = api.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/v1/conversations/",
        "/api/v1/conversations/{number}/",
        "/api/v1/messages/{message_id}/raw",
        "/api/v1/attachments/{attachment_id}/download",
    ):
        assert path in schema["paths"]
    message_fields = schema["components"]["schemas"]["Message"]["properties"]
    assert "from" in message_fields and "from_" not in message_fields
    assert "Error" in schema["components"]["schemas"]


# --- errors --------------------------------------------------------------------------------------


def test_no_token_is_401_json(two_teams):  # type: ignore[no-untyped-def]
    response = Client().get("/api/v1/conversations/")
    message = assert_error(response, 401, "not_authenticated")
    assert "credentials" in message.lower()
    assert response["WWW-Authenticate"] == "Token"


def test_bad_token_is_401_json(two_teams):  # type: ignore[no-untyped-def]
    response = Client(HTTP_AUTHORIZATION="Token " + "f" * 64).get("/api/v1/conversations/")
    assert "invalid token" in assert_error(response, 401, "authentication_failed").lower()


def test_token_of_inactive_user_is_refused(two_teams, token_client):  # type: ignore[no-untyped-def]
    client = token_client(two_teams.agent_x)
    two_teams.agent_x.is_active = False
    two_teams.agent_x.save()
    assert_error(client.get("/api/v1/conversations/"), 401)


@pytest.mark.parametrize(
    ("query", "code", "hint"),
    [
        ("cursor=not-a-cursor", "bad_cursor", "cursor"),
        (f"cursor={base64.urlsafe_b64encode(b'yesterday|7').decode()}", "bad_cursor", "cursor"),
        (f"cursor={base64.urlsafe_b64encode(b'2026-11-20T09:00:00|7').decode()}", "bad_cursor", "cursor"),
        ("limit=0", "bad_limit", "limit"),
        ("limit=201", "bad_limit", "200"),
        ("limit=ten", "bad_limit", "limit"),
        ("status=waiting", "bad_request", "waiting"),
        ("state=open", "bad_filter", "state"),
        ("q=" + "x" * 201, "bad_request", "too long"),
    ],
)
def test_bad_requests_are_400_json(api, query: str, code: str, hint: str):  # type: ignore[no-untyped-def]
    message = assert_error(api.get(f"/api/v1/conversations/?{query}"), 400, code)
    assert hint in message


def test_unknown_things_are_404_json(api):  # type: ignore[no-untyped-def]
    assert "#999999" in assert_error(api.get("/api/v1/conversations/999999/"), 404, "not_found")
    assert_error(api.get("/api/v1/messages/999999/raw"), 404, "not_found")
    assert_error(api.get("/api/v1/attachments/999999/download"), 404, "not_found")
    assert_error(api.get("/api/v1/conversations/abc/"), 404, "not_found")
    assert_error(api.get("/api/v1/no-such-endpoint"), 404, "not_found")
    huge = "9" * 30  # beyond any database integer: still a plain 404, not a database error
    assert_error(api.get(f"/api/v1/conversations/{huge}/"), 404, "not_found")
    assert_error(api.get(f"/api/v1/messages/{huge}/raw"), 404, "not_found")
    assert_error(api.get(f"/api/v1/attachments/{huge}/download"), 404, "not_found")


def test_wrong_method_is_405_json(api):  # type: ignore[no-untyped-def]
    message = assert_error(api.post("/api/v1/conversations/", {}), 405, "method_not_allowed")
    assert "POST" in message
    assert_error(api.delete("/api/v1/conversations/1/"), 405, "method_not_allowed")


def test_django_404_and_500_handlers_answer_json_under_api():  # type: ignore[no-untyped-def]
    factory = RequestFactory()
    not_found = page_not_found(factory.get("/api/v2/whatever"), Http404())
    assert not_found.status_code == 404
    assert not_found["Content-Type"] == "application/json"
    broken = server_error(factory.get("/api/v1/conversations/"))
    assert broken.status_code == 500
    assert broken["Content-Type"] == "application/json"
    page = page_not_found(factory.get("/somewhere"), Http404())
    assert page.status_code == 404
    assert not page["Content-Type"].startswith("application/json")


def test_unexpected_error_is_500_json_without_trace(api, deliver, monkeypatch):  # type: ignore[no-untyped-def]
    # Stands in for any bug in our code: the answer must be JSON and must not leak the details.
    message = deliver(make_mailbox(), make_raw_mail())

    def explode(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("postdesk.api.serializers.MessageSerializer.get_problems", explode)
    response = api.get(f"/api/v1/conversations/{message.conversation.number}/")
    text = assert_error(response, 500, "internal_error")
    assert "secret internal detail" not in response.content.decode()
    assert "logged" in text


def test_files_inside_a_forwarded_mail_are_listed_and_downloadable(api, boss, deliver):  # type: ignore[no-untyped-def]
    from email import message_from_bytes, policy

    inner = make_raw_mail(subject="Invoice 42", attachments=(("invoice.pdf", "application/pdf", b"%PDF-1 inner"),))
    outer = EmailMessage()
    outer["From"] = "Alice Customer <alice@customer.test>"
    outer["To"] = "support@example.com"
    outer["Subject"] = "Fwd: Invoice 42"
    outer["Message-ID"] = "<fwd-42@customer.test>"
    outer.set_content("See the forwarded mail: the invoice is wrong.\n")
    outer.add_attachment(message_from_bytes(inner, policy=policy.default))
    message = deliver(make_mailbox(), bytes(outer))

    detail = api.get(f"/api/v1/conversations/{message.conversation.number}/").json()
    listed = detail["messages"][0]["attachments"]

    assert [(a["filename"], a["enclosed_in"]) for a in listed] == [
        ("Invoice 42.eml", ""),
        ("invoice.pdf", "Invoice 42.eml"),
    ]
    response = api.get(listed[1]["url"])
    assert b"".join(response.streaming_content) == b"%PDF-1 inner"
    browser = Client()
    browser.force_login(boss)
    page = browser.get(f"/c/{message.conversation.number}/").content.decode()
    assert "inside the forwarded mail Invoice 42.eml" in page
