"""A mailbox's OAuth 2.0 state: its client, a usable access token (refreshed and cached), stored grants."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from postdesk.desk.models import Mailbox
from postdesk.desk.secrets_box import decrypt, encrypt
from postdesk.transports.oauth2 import (
    PROVIDERS,
    Client,
    LoopbackReceiver,
    OAuthError,
    TokenGrant,
    exchange_code,
    refresh_access_token,
    start_authorization,
)


def client_for(mailbox: Mailbox) -> Client:
    """The mailbox's OAuth client; provider presets fill in whatever was not set explicitly."""
    preset = PROVIDERS.get(mailbox.oauth_provider)
    token_url = mailbox.oauth_token_url or (preset.token_url if preset else "")
    if not mailbox.oauth_client_id or not token_url:
        raise OAuthError(f"mailbox {mailbox.address} uses XOAUTH2 but has no OAuth client id or token URL configured")
    return Client(
        client_id=mailbox.oauth_client_id,
        client_secret=decrypt(mailbox.oauth_client_secret_encrypted),
        token_url=token_url,
        scope=mailbox.oauth_scope or (preset.scope if preset else ""),
        authorization_url=mailbox.oauth_authorization_url or (preset.authorization_url if preset else ""),
    )


def store_grant(mailbox: Mailbox, grant: TokenGrant) -> None:
    """Keep the new access token and, when the provider rotated it, the new refresh token."""
    mailbox.oauth_access_token_encrypted = encrypt(grant.access_token)
    mailbox.oauth_access_token_expires_at = grant.expires_at
    fields = ["oauth_access_token_encrypted", "oauth_access_token_expires_at"]
    if grant.refresh_token:
        mailbox.oauth_refresh_token_encrypted = encrypt(grant.refresh_token)
        fields.append("oauth_refresh_token_encrypted")
    mailbox.save(update_fields=fields)


def cached_access_token(mailbox: Mailbox) -> str:
    """The stored access token while it has more than a minute left, else ""."""
    expires_at = mailbox.oauth_access_token_expires_at
    if not mailbox.oauth_access_token_encrypted or expires_at is None:
        return ""
    grant = TokenGrant(decrypt(mailbox.oauth_access_token_encrypted), expires_at)
    return grant.access_token if grant.usable_at(timezone.now()) else ""


def fresh_access_token(mailbox: Mailbox) -> str:
    """Ask the token endpoint for a new access token and store it; OAuthError says why not."""
    refresh_token = decrypt(mailbox.oauth_refresh_token_encrypted)
    grant = refresh_access_token(client_for(mailbox), refresh_token, now=timezone.now())
    store_grant(mailbox, grant)
    return grant.access_token


def authorize(
    mailbox: Mailbox, *, show_url: Callable[[str], None], port: int = 0, timeout: float = 300.0
) -> TokenGrant:
    """The one-time consent: `show_url` gets the provider's page to open; the redirect comes back to a
    loopback port, and the tokens it yields are stored on the mailbox."""
    client = client_for(mailbox)
    receiver = LoopbackReceiver(port)
    try:
        started = start_authorization(client, receiver.redirect_uri, login_hint=mailbox.imap_user)
        show_url(started.url)
        if not receiver.wait(timeout):
            raise OAuthError(f"no answer from the browser within {timeout:.0f} s")
        if not receiver.code:
            raise OAuthError(f"the provider did not authorise: {receiver.error or 'no code in the redirect'}")
        grant = exchange_code(client, started, receiver.code, receiver.state, now=timezone.now())
    finally:
        receiver.close()
    store_grant(mailbox, grant)
    return grant
