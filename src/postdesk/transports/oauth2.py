"""OAuth 2.0 for mailbox logins (XOAUTH2): provider presets, the refresh-token grant, and the one-time
authorisation-code grant with PKCE and a loopback redirect (RFC 6749, RFC 7636, RFC 8252).

Gmail and Microsoft 365 no longer accept passwords for IMAP. An operator registers Postdesk as an
OAuth client with the provider once, runs `postdesk mailbox authorize ADDRESS` to grant access in a
browser, and Postdesk keeps the refresh token (encrypted) and turns it into short-lived access tokens
as needed. Errors are `OAuthError` with the provider's own error code and description, never a secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

# Refresh this long before the provider's expiry, so a token never runs out in the middle of a round.
EXPIRY_MARGIN = timedelta(seconds=60)
DEFAULT_TIMEOUT = 20.0


class OAuthError(Exception):
    """A token request failed; the message names the endpoint and the provider's reason."""


@dataclass(frozen=True, slots=True)
class Provider:
    """Where a provider's endpoints are and what to ask for to read mail over IMAP."""

    name: str
    authorization_url: str
    token_url: str
    scope: str
    imap_host: str


PROVIDERS: dict[str, Provider] = {
    "google": Provider(
        name="google",
        authorization_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        scope="https://mail.google.com/",
        imap_host="imap.gmail.com",
    ),
    # "common" works for work and school accounts of any tenant; a single-tenant app registration
    # needs its tenant id in both URLs instead (--oauth-token-url / --oauth-authorization-url).
    "microsoft": Provider(
        name="microsoft",
        authorization_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",
        scope="https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
        imap_host="outlook.office365.com",
    ),
}


@dataclass(frozen=True, slots=True)
class Client:
    """An OAuth client registration plus the endpoints it talks to."""

    client_id: str
    client_secret: str
    token_url: str
    scope: str = ""
    authorization_url: str = ""


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a token endpoint handed out. `refresh_token` is empty when the provider kept the old one."""

    access_token: str
    expires_at: datetime
    refresh_token: str = ""

    def usable_at(self, now: datetime) -> bool:
        return bool(self.access_token) and now + EXPIRY_MARGIN < self.expires_at


def _post_form(url: str, fields: dict[str, str], timeout: float) -> dict[str, object]:
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc or url
    if parts.scheme not in ("https", "http"):
        raise OAuthError(f"token URL {url!r} must start with https://")
    body = urllib.parse.urlencode({k: v for k, v in fields.items() if v}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            payload = response.read()
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            error = json.loads(payload)
        except ValueError:
            raise OAuthError(f"token endpoint {host} answered HTTP {exc.code}") from None
        if not isinstance(error, dict):
            raise OAuthError(f"token endpoint {host} answered HTTP {exc.code}") from None
        code = str(error.get("error") or f"HTTP {exc.code}")
        description = str(error.get("error_description") or "").strip()
        detail = f" ({description})" if description else ""
        raise OAuthError(f"token endpoint {host} refused: {code}{detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise OAuthError(f"cannot reach token endpoint {host}: {reason}") from None
    try:
        data = json.loads(payload)
    except ValueError:
        raise OAuthError(f"token endpoint {host} answered with something that is not JSON") from None
    if not isinstance(data, dict):
        raise OAuthError(f"token endpoint {host} answered with something that is not a JSON object")
    return data


def _grant_from(data: dict[str, object], url: str, now: datetime) -> TokenGrant:
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuthError(f"token endpoint {urllib.parse.urlsplit(url).netloc} sent no access_token")
    try:
        lifetime = int(str(data.get("expires_in", 3600)))
    except ValueError:
        lifetime = 3600
    refresh = data.get("refresh_token")
    return TokenGrant(
        access_token=token,
        expires_at=now + timedelta(seconds=max(lifetime, 0)),
        refresh_token=refresh if isinstance(refresh, str) else "",
    )


def refresh_access_token(
    client: Client, refresh_token: str, *, now: datetime, timeout: float = DEFAULT_TIMEOUT
) -> TokenGrant:
    """Trade a refresh token for a fresh access token (and, with some providers, a new refresh token)."""
    if not refresh_token:
        raise OAuthError("no refresh token stored: run `postdesk mailbox authorize ADDRESS` first")
    data = _post_form(
        client.token_url,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "scope": client.scope,
        },
        timeout,
    )
    return _grant_from(data, client.token_url, now)


# -- the one-time authorisation in a browser -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authorization:
    """A started authorisation: send the user to `url`, then `finish()` waits for the redirect."""

    url: str
    redirect_uri: str
    state: str
    verifier: str


class LoopbackReceiver:
    """A one-shot HTTP server on 127.0.0.1 that catches the provider's redirect with the code."""

    def __init__(self, port: int = 0) -> None:
        self.code = ""
        self.state = ""
        self.error = ""
        self._done = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/":  # a browser also asks for /favicon.ico and the like
                    self.send_error(404)
                    return
                query = urllib.parse.parse_qs(url.query)
                receiver.code = query.get("code", [""])[0]
                receiver.state = query.get("state", [""])[0]
                receiver.error = " ".join(query.get("error", []) + query.get("error_description", []))
                message = "Postdesk got the authorisation; you can close this tab."
                if not receiver.code:
                    message = "Postdesk did not get an authorisation code: " + (receiver.error or "unknown reason")
                body = message.encode()
                self.send_response(200 if receiver.code else 400)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                receiver._done.set()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = HTTPServer(("127.0.0.1", port), Handler)
        self._server.timeout = 0.5  # handle_request returns now and then, so close() ends the thread
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._serve, name="oauth-redirect", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._done.is_set():
            self._server.handle_request()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def close(self) -> None:
        self._done.set()
        self._server.server_close()


def start_authorization(client: Client, redirect_uri: str, *, login_hint: str = "") -> Authorization:
    """The URL to open in a browser, with a fresh state and PKCE verifier (RFC 7636, S256)."""
    if not client.authorization_url:
        raise OAuthError("no authorisation URL configured for this mailbox")
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": client.scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        # Google hands out a refresh token only with offline access and consent.
        "access_type": "offline",
        "prompt": "consent",
    }
    if login_hint:
        query["login_hint"] = login_hint
    separator = "&" if "?" in client.authorization_url else "?"
    return Authorization(
        url=client.authorization_url + separator + urllib.parse.urlencode(query),
        redirect_uri=redirect_uri,
        state=state,
        verifier=verifier,
    )


def exchange_code(
    client: Client,
    authorization: Authorization,
    code: str,
    state: str,
    *,
    now: datetime,
    timeout: float = DEFAULT_TIMEOUT,
) -> TokenGrant:
    """Trade the code from the redirect for tokens; refuses a redirect that does not carry our state."""
    if not secrets.compare_digest(state, authorization.state):
        raise OAuthError("the redirect's state does not match: start the authorisation again")
    data = _post_form(
        client.token_url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": authorization.redirect_uri,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "code_verifier": authorization.verifier,
        },
        timeout,
    )
    grant = _grant_from(data, client.token_url, now)
    if not grant.refresh_token:
        raise OAuthError("the provider sent no refresh token: check that offline access is allowed for this client")
    return grant
