"""XOAUTH2 mailboxes against a real Dovecot that checks access tokens with a loopback identity provider."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from dovecot import INSTALL_HINT, Dovecot, DovecotMissing
from oauth_server import IdentityProvider

from factories import make_mailbox, make_raw_mail
from postdesk import cli
from postdesk.cli import main
from postdesk.desk.models import Conversation, ImapAuth, Mailbox
from postdesk.desk.secrets_box import decrypt, encrypt
from postdesk.transports.imap_fetcher import check_mailbox, fetch_once
from postdesk.transports.mailbox_oauth import authorize
from postdesk.transports.oauth2 import OAuthError

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

USER = "support@example.com"


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.stop()


@pytest.fixture
def oauth_dovecot(idp: IdentityProvider) -> Iterator[Dovecot]:
    """Dovecot accepting XOAUTH2 for tokens the identity provider vouches for (and no password for USER)."""
    try:
        server = Dovecot()
    except DovecotMissing as exc:
        pytest.fail(f"{exc}. The IMAP tests need a real Dovecot: run `{INSTALL_HINT}`.", pytrace=False)
    server.oauth_introspection_url = idp.introspection_url
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def oauth_mailbox(dovecot: Dovecot, idp: IdentityProvider, *, refresh_token: str = "") -> Mailbox:
    mailbox = make_mailbox(USER)
    mailbox.imap_host = dovecot.host
    mailbox.imap_port = dovecot.port
    mailbox.imap_ssl = False
    mailbox.imap_user = USER
    mailbox.imap_auth = ImapAuth.XOAUTH2
    mailbox.oauth_client_id = idp.client_id
    mailbox.oauth_client_secret_encrypted = encrypt(idp.client_secret)
    mailbox.oauth_token_url = idp.token_url
    mailbox.oauth_authorization_url = idp.authorization_url
    mailbox.oauth_refresh_token_encrypted = encrypt(refresh_token) if refresh_token else ""
    mailbox.save()
    return mailbox


def deliver(dovecot: Dovecot, number: int) -> None:
    dovecot.deliver(
        USER,
        make_raw_mail(subject=f"Invoice {number} is wrong", message_id=f"<inv-{number}@customer.test>"),
    )


def fresh(mailbox: Mailbox) -> Mailbox:
    return Mailbox.objects.get(pk=mailbox.pk)


def test_xoauth2_mailbox_fetches_and_reuses_its_access_token(oauth_dovecot: Dovecot, idp: IdentityProvider) -> None:
    mailbox = oauth_mailbox(oauth_dovecot, idp, refresh_token=idp.grant_refresh_token(USER))
    deliver(oauth_dovecot, 1)

    report = fetch_once(mailbox)

    assert report.ok, report.error
    assert report.fetched == 1
    assert Conversation.objects.get().subject == "Invoice 1 is wrong"
    assert idp.refresh_requests == 1
    assert idp.introspections >= 1, "Dovecot itself must have checked the token with the provider"
    deliver(oauth_dovecot, 2)
    assert fetch_once(fresh(mailbox)).fetched == 1
    assert idp.refresh_requests == 1, "a valid cached access token must be reused, not refreshed every round"
    assert check_mailbox(fresh(mailbox)) is None


def test_expired_access_token_is_renewed_before_login(oauth_dovecot: Dovecot, idp: IdentityProvider) -> None:
    mailbox = oauth_mailbox(oauth_dovecot, idp, refresh_token=idp.grant_refresh_token(USER))
    assert fetch_once(mailbox).ok
    mailbox = fresh(mailbox)
    mailbox.oauth_access_token_expires_at = timezone.now() + timedelta(seconds=30)  # inside the safety margin
    mailbox.save()
    deliver(oauth_dovecot, 1)

    report = fetch_once(mailbox)

    assert report.ok, report.error
    assert report.fetched == 1
    assert idp.refresh_requests == 2
    assert fresh(mailbox).oauth_access_token_expires_at > timezone.now() + timedelta(minutes=30)


def test_access_token_revoked_early_is_renewed_once_and_the_fetch_goes_on(
    oauth_dovecot: Dovecot, idp: IdentityProvider
) -> None:
    mailbox = oauth_mailbox(oauth_dovecot, idp, refresh_token=idp.grant_refresh_token(USER))
    assert fetch_once(mailbox).ok
    idp.revoke_access_tokens()  # still "valid" by its expiry time, but the server now refuses it
    deliver(oauth_dovecot, 1)

    report = fetch_once(fresh(mailbox))

    assert report.ok, report.error
    assert report.fetched == 1
    assert idp.refresh_requests == 2


def test_rotated_refresh_tokens_are_kept(oauth_dovecot: Dovecot, idp: IdentityProvider) -> None:
    idp.rotate_refresh_tokens = True
    first = idp.grant_refresh_token(USER)
    mailbox = oauth_mailbox(oauth_dovecot, idp, refresh_token=first)
    for number in (1, 2, 3):
        mailbox = fresh(mailbox)
        mailbox.oauth_access_token_expires_at = timezone.now()  # force a refresh every round
        mailbox.save()
        deliver(oauth_dovecot, number)
        report = fetch_once(mailbox)
        assert report.ok, report.error
    assert idp.refresh_requests == 3
    assert decrypt(fresh(mailbox).oauth_refresh_token_encrypted) != first
    assert Conversation.objects.count() == 3


def test_revoked_consent_is_reported_clearly_without_any_token(
    oauth_dovecot: Dovecot, idp: IdentityProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    refresh_token = idp.grant_refresh_token(USER)
    mailbox = oauth_mailbox(oauth_dovecot, idp, refresh_token=refresh_token)
    assert fetch_once(mailbox).ok
    access_token = decrypt(fresh(mailbox).oauth_access_token_encrypted)
    idp.revoke_everything()
    deliver(oauth_dovecot, 1)

    report = fetch_once(fresh(mailbox))

    assert report.fetched == 0
    assert "OAuth access token" in report.error
    assert "invalid_grant (Token has been expired or revoked.)" in report.error
    stored = fresh(mailbox)
    assert stored.last_error == report.error and stored.last_error_at is not None
    assert stored.last_fetch_at is not None, "the time of the last successful fetch stays visible"
    assert main(["check"]) == 1
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert out.count("invalid_grant") >= 2
    for secret in (refresh_token, access_token, idp.client_secret):
        assert secret not in out and secret not in report.error
    assert oauth_dovecot.status(USER)["unseen"] == 1, "mail stays on the server while it cannot be fetched"


def test_wrong_client_secret_and_missing_refresh_token_say_what_to_do(
    oauth_dovecot: Dovecot, idp: IdentityProvider
) -> None:
    mailbox = oauth_mailbox(oauth_dovecot, idp)
    assert "run `postdesk mailbox authorize ADDRESS` first" in (check_mailbox(mailbox) or "")
    mailbox.oauth_refresh_token_encrypted = encrypt(idp.grant_refresh_token(USER))
    mailbox.oauth_client_secret_encrypted = encrypt("not-the-secret")
    mailbox.save()
    assert "invalid_client" in (check_mailbox(fresh(mailbox)) or "")


def test_unreachable_token_endpoint_is_an_error_not_a_crash(oauth_dovecot: Dovecot, idp: IdentityProvider) -> None:
    mailbox = oauth_mailbox(oauth_dovecot, idp, refresh_token=idp.grant_refresh_token(USER))
    idp.stop()
    report = fetch_once(mailbox)
    assert "cannot reach token endpoint 127.0.0.1:" in report.error


def follow_in_browser(url: str) -> None:
    """What the operator's browser does: open the consent page, follow the redirect back to Postdesk."""

    def visit() -> None:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200

    threading.Thread(target=visit, daemon=True).start()


def test_authorize_in_a_browser_stores_a_refresh_token_that_fetches(
    oauth_dovecot: Dovecot, idp: IdentityProvider
) -> None:
    mailbox = oauth_mailbox(oauth_dovecot, idp)
    idp.consent_as(USER)
    shown: list[str] = []

    def show(url: str) -> None:
        shown.append(url)
        follow_in_browser(url)

    authorize(mailbox, show_url=show, timeout=20)

    assert shown and shown[0].startswith(idp.authorization_url + "?")
    assert "code_challenge_method=S256" in shown[0]
    deliver(oauth_dovecot, 1)
    report = fetch_once(fresh(mailbox))
    assert report.ok, report.error
    assert report.fetched == 1


def test_authorize_refuses_a_redirect_with_someone_elses_state(idp: IdentityProvider) -> None:
    mailbox = make_mailbox(USER)
    mailbox.imap_auth = ImapAuth.XOAUTH2
    mailbox.oauth_client_id = idp.client_id
    mailbox.oauth_token_url = idp.token_url
    mailbox.oauth_authorization_url = idp.authorization_url
    mailbox.save()

    def forged(url: str) -> None:
        redirect = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["redirect_uri"][0]
        follow_in_browser(redirect + "?code=stolen&state=not-ours")

    with pytest.raises(OAuthError, match="state does not match"):
        authorize(mailbox, show_url=forged, timeout=20)
    assert fresh(mailbox).oauth_refresh_token_encrypted == ""


def test_cli_sets_up_an_oauth_mailbox(
    idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEST_CLIENT_SECRET", idp.client_secret)
    monkeypatch.setenv("TEST_REFRESH_TOKEN", "rt-from-elsewhere")
    base = ["mailbox", "add", "help@acme.test", "--imap-user", "help@acme.test"]
    assert main([*base, "--imap-oauth", "google"]) == 2
    assert "--oauth-client-id" in capsys.readouterr().err
    assert main([*base, "--imap-oauth", "custom", "--oauth-client-id", "x"]) == 2
    assert "--oauth-token-url" in capsys.readouterr().err
    assert (
        main([*base, "--imap-oauth", "google", "--oauth-client-id", "id-1", "--oauth-client-secret-env", "NOPE"]) == 2
    )
    assert "NOPE is empty or unset" in capsys.readouterr().err

    assert (
        main(
            [
                *base,
                "--imap-oauth",
                "google",
                "--oauth-client-id",
                "id-1",
                "--oauth-client-secret-env",
                "TEST_CLIENT_SECRET",
                "--oauth-refresh-token-env",
                "TEST_REFRESH_TOKEN",
            ]
        )
        == 0
    )
    mailbox = Mailbox.objects.get(address="help@acme.test")
    assert mailbox.imap_auth == ImapAuth.XOAUTH2
    assert (mailbox.imap_host, mailbox.imap_port, mailbox.imap_ssl) == ("imap.gmail.com", 993, True)
    assert decrypt(mailbox.oauth_client_secret_encrypted) == idp.client_secret
    assert decrypt(mailbox.oauth_refresh_token_encrypted) == "rt-from-elsewhere"
    assert main(["mailbox", "authorize", "nobody@acme.test"]) == 2
    make_mailbox("plain@acme.test")
    assert main(["mailbox", "authorize", "plain@acme.test"]) == 2
    assert "logs in with a password" in capsys.readouterr().err


def test_cli_authorize_prints_the_consent_url_then_checks_the_login(
    oauth_dovecot: Dovecot, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    oauth_mailbox(oauth_dovecot, idp)
    idp.consent_as(USER)
    printed: list[str] = []

    def out(line: str) -> None:
        printed.append(line)
        if idp.authorization_url in line:
            follow_in_browser(line.strip())

    monkeypatch.setattr(cli, "_out", out)

    assert main(["mailbox", "authorize", USER, "--timeout", "20"]) == 0
    assert printed[-1] == "IMAP login checked: ok"
    assert fetch_once(Mailbox.objects.get(address=USER)).ok
