"""A small OAuth 2.0 identity provider on loopback, standing in for Google or Microsoft (which cannot run here).

It speaks the parts of the protocol Postdesk and Dovecot use: the authorisation endpoint (consent is
given at once and the browser is redirected back with a code), the token endpoint (authorisation-code
grant with PKCE, refresh-token grant), and RFC 7662 introspection, which Dovecot calls to decide
whether an XOAUTH2 login's access token is good.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class _Issued:
    username: str
    expires_at: float


@dataclass
class _PendingCode:
    username: str
    redirect_uri: str
    challenge: str


@dataclass
class IdentityProvider:
    """Register a client and a user, hand the refresh token to Postdesk, then watch what happens."""

    client_id: str = "postdesk-test-client"
    client_secret: str = "client-Secret-77"
    access_token_lifetime: int = 3600
    rotate_refresh_tokens: bool = False
    refresh_requests: int = 0
    introspections: int = 0
    _access: dict[str, _Issued] = field(default_factory=dict)
    _refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> username
    _codes: dict[str, _PendingCode] = field(default_factory=dict)
    _consenting_user: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/authorize":
                    self._send_redirect(provider.authorize(dict(urllib.parse.parse_qsl(url.query))))
                    return
                self._send_json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                path = urllib.parse.urlsplit(self.path).path
                if path == "/token":
                    self._send_json(*provider.token(form))
                elif path == "/introspect":
                    self._send_json(200, provider.introspect(form.get("token", "")))
                else:
                    self._send_json(404, {"error": "not_found"})

            def _send_json(self, status: int, payload: dict[str, object]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _send_redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.token_url = self.url + "/token"
        self.authorization_url = self.url + "/authorize"
        self.introspection_url = self.url + "/introspect"
        threading.Thread(target=self._server.serve_forever, name="test-idp", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what the test arranges -----------------------------------------------------------------

    def grant_refresh_token(self, username: str) -> str:
        """A refresh token for `username`, as if they had consented earlier."""
        token = "rt-" + secrets.token_urlsafe(16)
        with self._lock:
            self._refresh[token] = username
        return token

    def revoke_everything(self) -> None:
        """The user changed their password or withdrew consent: every token stops working."""
        with self._lock:
            self._refresh.clear()
            self._access.clear()

    def revoke_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    def consent_as(self, username: str) -> None:
        """Who is signed in at the provider when the browser comes to /authorize."""
        self._consenting_user = username

    # -- the protocol ---------------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> str:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or query.get("code_challenge_method") != "S256":
            return (
                redirect_uri + "?" + urllib.parse.urlencode({"error": "invalid_request", "state": query.get("state")})
            )
        code = "code-" + secrets.token_urlsafe(12)
        with self._lock:
            self._codes[code] = _PendingCode(self._consenting_user, redirect_uri, query.get("code_challenge", ""))
        return redirect_uri + "?" + urllib.parse.urlencode({"code": code, "state": query.get("state", "")})

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Unknown client or wrong secret."}
        grant = form.get("grant_type")
        with self._lock:
            if grant == "refresh_token":
                self.refresh_requests += 1
                old = form.get("refresh_token", "")
                username = self._refresh.get(old)
                if username is None:
                    return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                if self.rotate_refresh_tokens:
                    del self._refresh[old]
                return 200, self._issue(username, with_refresh=self.rotate_refresh_tokens)
            if grant == "authorization_code":
                pending = self._codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if (
                    pending is None
                    or pending.redirect_uri != form.get("redirect_uri")
                    or pending.challenge != challenge
                ):
                    return 400, {"error": "invalid_grant", "error_description": "Bad code, redirect URI or verifier."}
                return 200, self._issue(pending.username, with_refresh=True)
        return 400, {"error": "unsupported_grant_type"}

    def _issue(self, username: str, *, with_refresh: bool) -> dict[str, object]:
        access = "at-" + secrets.token_urlsafe(16)
        self._access[access] = _Issued(username, time.time() + self.access_token_lifetime)
        answer: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
        }
        if with_refresh:
            refresh = "rt-" + secrets.token_urlsafe(16)
            self._refresh[refresh] = username
            answer["refresh_token"] = refresh
        return answer

    def introspect(self, token: str) -> dict[str, object]:
        with self._lock:
            self.introspections += 1
            issued = self._access.get(token)
            if issued is None or issued.expires_at <= time.time():
                return {"active": False}
            return {"active": True, "username": issued.username}
