"""The Django admin: write-only mailbox passwords, read-mostly conversations, replaying failed mail."""

from __future__ import annotations

import pytest
from django.test import Client

from factories import make_mailbox, make_raw_mail
from postdesk.desk import secrets_box
from postdesk.desk.blobs import default_store
from postdesk.desk.intake import accept_raw
from postdesk.desk.models import Mailbox, Message, ReceivedMail, ReceivedState, Source
from postdesk.desk.processing import process_received_mail

pytestmark = pytest.mark.django_db

MAILBOX_FORM = {
    "address": "help@example.com",
    "name": "Help",
    "team": "",
    "active": "on",
    "signature": "",
    "imap_host": "imap.example.com",
    "imap_port": "993",
    "imap_ssl": "on",
    "imap_user": "help",
    "imap_auth": "password",
    "imap_password": "",
    "imap_folder": "INBOX",
    "imap_processed_folder": "",
    "smtp_host": "smtp.example.com",
    "smtp_port": "587",
    "smtp_starttls": "on",
    "smtp_user": "help",
    "smtp_password": "",
}


@pytest.fixture
def operator(two_teams) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(two_teams.superuser)
    return client


def test_mailbox_passwords_are_stored_encrypted_and_never_shown(operator):  # type: ignore[no-untyped-def]
    add = operator.get("/admin/desk/mailbox/add/")
    assert add.status_code == 200
    assert b'name="imap_password"' in add.content
    assert b"imap_password_encrypted" not in add.content

    response = operator.post(
        "/admin/desk/mailbox/add/", {**MAILBOX_FORM, "imap_password": "imap-s3cret", "smtp_password": "smtp-s3cret"}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    mailbox = Mailbox.objects.get(address="help@example.com")
    assert mailbox.imap_password_encrypted and "imap-s3cret" not in mailbox.imap_password_encrypted
    assert secrets_box.decrypt(mailbox.imap_password_encrypted) == "imap-s3cret"
    assert secrets_box.decrypt(mailbox.smtp_password_encrypted) == "smtp-s3cret"

    change_url = f"/admin/desk/mailbox/{mailbox.pk}/change/"
    page = operator.get(change_url).content.decode()
    assert "imap-s3cret" not in page and "smtp-s3cret" not in page
    assert mailbox.imap_password_encrypted not in page

    # Saving without typing a password keeps the stored one.
    assert operator.post(change_url, {**MAILBOX_FORM, "name": "Help desk"}).status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.name == "Help desk"
    assert secrets_box.decrypt(mailbox.imap_password_encrypted) == "imap-s3cret"

    # A new one replaces it; the clear box removes it.
    operator.post(change_url, {**MAILBOX_FORM, "imap_password": "rotated", "clear_smtp_password": "on"})
    mailbox.refresh_from_db()
    assert secrets_box.decrypt(mailbox.imap_password_encrypted) == "rotated"
    assert mailbox.smtp_password_encrypted == ""


def test_oauth_secrets_are_write_only_and_a_new_refresh_token_drops_the_old_access_token(  # type: ignore[no-untyped-def]
    operator,
):
    oauth = {
        **MAILBOX_FORM,
        "imap_auth": "xoauth2",
        "oauth_provider": "microsoft",
        "oauth_client_id": "app-1",
        "oauth_client_secret": "client-s3cret",
        "oauth_refresh_token": "refresh-s3cret",
    }
    assert operator.post("/admin/desk/mailbox/add/", oauth).status_code == 302
    mailbox = Mailbox.objects.get(address="help@example.com")
    assert secrets_box.decrypt(mailbox.oauth_client_secret_encrypted) == "client-s3cret"
    assert secrets_box.decrypt(mailbox.oauth_refresh_token_encrypted) == "refresh-s3cret"
    change_url = f"/admin/desk/mailbox/{mailbox.pk}/change/"
    page = operator.get(change_url).content.decode()
    assert "client-s3cret" not in page and "refresh-s3cret" not in page
    assert "postdesk mailbox authorize" in page

    Mailbox.objects.filter(pk=mailbox.pk).update(oauth_access_token_encrypted=secrets_box.encrypt("access-1"))
    no_secrets = {k: v for k, v in oauth.items() if k not in ("oauth_client_secret", "oauth_refresh_token")}
    assert operator.post(change_url, no_secrets).status_code == 302
    mailbox.refresh_from_db()
    assert secrets_box.decrypt(mailbox.oauth_client_secret_encrypted) == "client-s3cret"
    assert mailbox.oauth_access_token_encrypted, "saving without a new token keeps the cached access token"
    assert operator.post(change_url, {**oauth, "oauth_refresh_token": "refresh-2"}).status_code == 302
    mailbox.refresh_from_db()
    assert secrets_box.decrypt(mailbox.oauth_refresh_token_encrypted) == "refresh-2"
    assert mailbox.oauth_access_token_encrypted == ""


def test_mailbox_list_shows_fetch_state(operator, two_teams):  # type: ignore[no-untyped-def]
    Mailbox.objects.filter(pk=two_teams.mailbox_x.pk).update(last_error="IMAP login refused")
    html = operator.get("/admin/desk/mailbox/").content.decode()
    assert "x@support.test" in html and "y@support.test" in html
    assert "IMAP login refused" in html


def test_every_model_page_opens(operator, two_teams):  # type: ignore[no-untyped-def]
    contact = two_teams.conversation_x.contact
    received = ReceivedMail.objects.first()
    assert received is not None
    for url in (
        "/admin/desk/team/",
        "/admin/desk/agentprofile/",
        "/admin/desk/contact/",
        f"/admin/desk/contact/{contact.pk}/change/",
        "/admin/desk/conversation/",
        f"/admin/desk/conversation/{two_teams.conversation_x.pk}/change/",
        "/admin/desk/receivedmail/?state__exact=failed",
        f"/admin/desk/receivedmail/{received.pk}/change/",
        "/admin/desk/blockedsender/",
        "/admin/desk/blockedsender/add/",
        "/admin/desk/tag/",
        "/admin/desk/outboundmail/?state__exact=failed",
    ):
        assert operator.get(url).status_code == 200, url
    assert "xavier@x-customer.test" in operator.get(f"/admin/desk/contact/{contact.pk}/change/").content.decode()
    assert operator.get("/admin/desk/conversation/add/").status_code == 403
    assert operator.get("/admin/desk/receivedmail/add/").status_code == 403


def test_replay_failed_processes_the_mail_again(operator, two_teams, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    mailbox = make_mailbox("replay@support.test")
    raw = make_raw_mail(subject="Lost and found", to="replay@support.test")
    accepted = accept_raw(mailbox, raw, source=Source.IMPORT, enqueue=lambda _id: None)
    store = default_store()
    row = ReceivedMail.objects.get(pk=accepted.received_mail_id)
    store.path_for(row.raw_sha256).unlink()  # a storage hiccup makes processing fail
    assert process_received_mail(row.pk) == ReceivedState.FAILED
    store.put(raw)  # the operator fixed the storage

    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(
            "/admin/desk/receivedmail/",
            {"action": "replay_failed", "_selected_action": [str(row.pk)]},
            follow=True,
        )
    assert response.status_code == 200
    assert "Queued 1 failed mail again." in response.content.decode()
    row.refresh_from_db()
    assert row.state == ReceivedState.PROCESSED
    assert Message.objects.get(received_mail=row).conversation.subject == "Lost and found"
