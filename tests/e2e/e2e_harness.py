"""Browser end-to-end harness: a real `postdesk run` on loopback, an SMTP sink for what it sends, a canary web
server that must hear nothing, and Debian's chromium driven by Playwright (never `playwright install`).

Tests talk to Postdesk over HTTP and SMTP only, as a browser, a customer's mail server and an API client would;
they read state through the API with the agents' tokens, never through the ORM.
"""

from __future__ import annotations

import contextlib
import json
import os
import smtplib
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from playwright.sync_api import Browser, BrowserContext, Dialog, ElementHandle, Frame, Page, Request, WebSocket

from processes import POSTDESK, free_port, http_ready, postdesk_env, smtp_ready, stop, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Browser waits are generous, since a loaded machine is slow; a pass never depends on them being short.
UI_TIMEOUT_MS = 15_000
UI_TIMEOUT = UI_TIMEOUT_MS / 1000
PASSWORD = "e2e-Correct-Horse-42"

ALPHA = "help@alpha.test"
BETA = "help@beta.test"


def poll(predicate: Callable[[], Any], timeout: float, what: str, *, page: Page | None = None) -> Any:
    """Poll `predicate` every 0.1 s until it returns something truthy; fail with `what` after `timeout`.

    With `page`, it waits through Playwright, so that the browser's events (a dialog to dismiss) are handled
    meanwhile; a plain sleep would leave them queued.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(100)
        else:
            time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def customer_mail(
    *,
    subject: str,
    sender: str = "Alice <alice@customer.test>",
    to: str = ALPHA,
    body: str = "Hello, my order has not arrived.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> bytes:
    """A plain mail from a customer, as bytes, with a fresh Message-ID unless given one."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = message_id or make_msgid(domain="customer.test")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    mail.set_content(body)
    return bytes(mail)


# --- the SMTP sink: where Postdesk's replies go ------------------------------------------------------------------


@dataclass(frozen=True)
class SinkMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class SmtpSink:
    """An aiosmtpd server in the test process that keeps every mail it accepts."""

    def __init__(self) -> None:
        self._mails: list[SinkMail] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self._lock:
            self._mails.append(SinkMail(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(content)))
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def matching(self, predicate: Callable[[EmailMessage], bool]) -> list[SinkMail]:
        with self._lock:
            mails = list(self._mails)
        return [mail for mail in mails if predicate(mail.message)]


# --- the canary: a web server that hostile mail tries to reach ----------------------------------------------------

# A 1x1 transparent PNG, so that an allowed remote image really renders.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000105f53d1b0000000049454e44ae426082"
)


class Canary:
    """An HTTP server on loopback that counts every TCP connection and every request path it gets."""

    def __init__(self) -> None:
        self._connections = 0
        self._paths: list[str] = []
        self._lock = threading.Lock()
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with canary._lock:
                    canary._paths.append(self.path)
                body, kind = (PIXEL, "image/png") if ".png" in self.path else (b"/* canary */", "text/plain")
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                return None

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                # Counted before any parsing, so that even a TLS handshake (an https:// URL) shows up.
                with canary._lock:
                    canary._connections += 1
                return True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return list(self._paths)


# --- the Postdesk server ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    email: str
    name: str
    team: str
    token: str
    password: str = PASSWORD


@dataclass
class Desk:
    """A running `postdesk run` and the ways tests talk to it."""

    url: str
    smtp_port: int
    env: dict[str, str]
    agents: dict[str, Agent]
    log: Path

    def deliver(self, raw: bytes, *, sender: str = "alice@customer.test") -> None:
        """Hand a mail to Postdesk's own SMTP listener, as the customer's provider would (RCPT TO: its To)."""
        recipients = [address for _, address in getaddresses(message_from_bytes(raw).get_all("To", []))]
        assert recipients, "the mail has a To header"
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as client:
            client.sendmail(sender, recipients, raw)

    def api(self, who: str, path: str) -> Any:
        """GET /api/v1/<path> as agent `who`, with the token `postdesk agent add` printed."""
        request = urllib.request.Request(
            f"{self.url}/api/v1/{path.lstrip('/')}", headers={"Authorization": f"Token {self.agents[who].token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def api_status(self, who: str, path: str) -> int:
        try:
            self.api(who, path)
        except urllib.error.HTTPError as exc:
            return exc.code
        return 200

    def find_conversation(self, who: str, subject: str) -> dict[str, Any]:
        """Wait until agent `who` can see a conversation with exactly this subject; its list row."""

        def look() -> dict[str, Any] | None:
            rows = self.api(who, "conversations/?limit=200")["results"]
            return next((row for row in rows if row["subject"] == subject), None)

        found: dict[str, Any] = poll(look, 30, f"a conversation {subject!r} visible to {who}")
        return found

    def conversation(self, who: str, number: int) -> dict[str, Any]:
        result: dict[str, Any] = self.api(who, f"conversations/{number}/")
        return result


def unique(label: str) -> str:
    """A fresh subject or phrase, so that tests sharing the server never see each other's mail."""
    return f"{label} {uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def session_database() -> Iterator[str | None]:
    """SQLite in the data dir, or, when the run is on PostgreSQL, a database of this session's own."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        yield None
        return
    import psycopg
    from psycopg import sql

    server = base.rsplit("/", 1)[0]
    name = f"postdesk_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# Runs `postdesk` commands one after another through the CLI's own `main`, in one Python process: each command
# as its own process would pay Django's start-up again (seconds each on a busy machine). Then it points the
# mailboxes' outgoing SMTP at the sink: the CLI has no options for that yet, so this one step uses the ORM.
_SETUP = """
import contextlib, io, json, sys
from postdesk.cli import main
commands, smtp = json.loads(sys.argv[1]), json.loads(sys.argv[2])
outputs = []
for argv in commands:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    if status != 0:
        sys.exit(f"postdesk {' '.join(argv)} exited with {status}")
    outputs.append(out.getvalue())
from postdesk.desk.models import Mailbox
for address, port, signature in smtp:
    updated = Mailbox.objects.filter(address=address).update(
        smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, smtp_user="", signature=signature
    )
    assert updated == 1, address
print(json.dumps(outputs))
"""


@contextlib.contextmanager
def running_desk(data_dir: Path, sink_port: int) -> Iterator[Desk]:
    """Set up an installation with the CLI and run `postdesk run` (web, jobs and SMTP listener in one process).

    Two teams: Alpha (help@alpha.test; agents ann and bob) and Beta (help@beta.test; agent cat). Both mailboxes
    send through the SMTP sink on `sink_port`.
    """
    http_port, smtp_port = free_port(), free_port()
    with session_database() as database_url:
        env = postdesk_env(
            data_dir,
            database_url,
            POSTDESK_HTTP_PORT=str(http_port),
            POSTDESK_SMTP_PORT=str(smtp_port),
            # Long enough that the page shows the pending send, short enough that the sink gets it at once.
            POSTDESK_UNDO_SEND_SECONDS="1",
            E2E_PASSWORD=PASSWORD,
        )
        teams = {"Alpha": ALPHA, "Beta": BETA}
        people = [("ann@alpha.test", "Ann Alpha", "Alpha"), ("bob@alpha.test", "Bob Alpha", "Alpha")]
        people += [("cat@beta.test", "Cat Beta", "Beta")]
        commands = [
            ["migrate", "--quiet"],
            *[["mailbox", "add", mailbox, "--name", f"{team} Support"] for team, mailbox in teams.items()],
            *[["team", "add", team, "--mailbox", mailbox] for team, mailbox in teams.items()],
            *[["agent", "add", email, "--team", team, "--name", name, "--password-env", "E2E_PASSWORD"]
              for email, name, team in people],
        ]  # fmt: skip
        smtp = [[mailbox, sink_port, f"The {team} team"] for team, mailbox in teams.items()]
        done = subprocess.run(
            [POSTDESK[0], "-c", _SETUP, json.dumps(commands), json.dumps(smtp)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"setting up with the postdesk CLI failed:\n{done.stdout}\n{done.stderr}"
        # `agent add` prints only the new API token on standard output.
        tokens = [output.strip() for output in json.loads(done.stdout)[-len(people) :]]
        agents = {
            email.split("@")[0]: Agent(email=email, name=name, team=team, token=token)
            for (email, name, team), token in zip(people, tokens, strict=True)
        }

        log = data_dir.parent / "postdesk-run.log"
        with log.open("w") as output:
            server = subprocess.Popen([*POSTDESK, "run"], env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{http_port}"
        try:
            try:
                wait_for(lambda: server.poll() is not None or (http_ready(url) and smtp_ready(smtp_port)), 60, "it")
            except AssertionError:
                raise AssertionError(f"postdesk run did not start:\n{log.read_text()}") from None
            assert server.poll() is None, f"postdesk run exited:\n{log.read_text()}"
            yield Desk(url=url, smtp_port=smtp_port, env=env, agents=agents, log=log)
        finally:
            if server.poll() is None:
                stop(server)


# --- the browser --------------------------------------------------------------------------------------------------


def blocked_by_csp(request: Request) -> bool:
    """The browser refused this request itself under the page's Content-Security-Policy: it never left."""
    failure = request.failure or ""
    return failure == "csp" or "BLOCKED_BY_CSP" in failure


@dataclass
class Traffic:
    """Every request and WebSocket a browser context opened, and every dialog and popup its pages tried."""

    requests: list[Request] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    # Every text frame the server sent down the page's live socket, parsed.
    received: list[dict[str, Any]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)

    def foreign(self, origin: str) -> list[str]:
        """What went to anywhere but `origin` (inline data: images aside, and what the CSP stopped in the browser:
        DevTools reports those as requests, but they never reach the network)."""
        ws_origin = origin.replace("http://", "ws://", 1)
        leaks = [
            request.url
            for request in self.requests
            if not (request.url == origin or request.url.startswith((origin + "/", "data:image/")))
            and not blocked_by_csp(request)
        ]
        return leaks + [url for url in self.websockets if not url.startswith(ws_origin + "/")]

    def clear(self) -> None:
        for record in (self.requests, self.websockets, self.received, self.dialogs, self.popups):
            record.clear()

    def stopped_by_csp(self) -> list[str]:
        return [request.url for request in self.requests if blocked_by_csp(request)]


@dataclass
class AgentBrowser:
    """A signed-in browser context of one agent, and what it sent over the network."""

    agent: Agent
    context: BrowserContext
    page: Page
    traffic: Traffic


def open_context(browser: Browser, desk: Desk) -> tuple[BrowserContext, Page, Traffic]:
    context = browser.new_context(base_url=desk.url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    traffic = Traffic()

    def on_request(request: Request) -> None:
        traffic.requests.append(request)

    def on_websocket(socket: WebSocket) -> None:
        traffic.websockets.append(socket.url)
        socket.on("framereceived", on_frame)

    def on_frame(payload: str | bytes) -> None:
        with contextlib.suppress(ValueError):
            traffic.received.append(json.loads(payload))

    def on_dialog(dialog: Dialog) -> None:
        traffic.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_page(page: Page) -> None:
        page.on("dialog", on_dialog)
        page.on("websocket", on_websocket)
        page.on("popup", lambda popup: traffic.popups.append(popup.url))

    context.on("request", on_request)
    context.on("page", on_page)
    return context, context.new_page(), traffic


def login(browser: Browser, desk: Desk, who: str) -> AgentBrowser:
    """A fresh context for agent `who`, signed in through /login/ as a person would."""
    agent = desk.agents[who]
    context, page, traffic = open_context(browser, desk)
    page.goto("/login/")
    page.get_by_label("Email address").fill(agent.email)
    page.get_by_label("Password").fill(agent.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login/" not in url)
    return AgentBrowser(agent=agent, context=context, page=page, traffic=traffic)


# --- the conversation page's mail frames -------------------------------------------------------------------------

# What a mail frame may do: open links in a new tab, nothing else (no scripts, no same origin, no forms, no
# top navigation, no modal dialogs).
ALLOWED_SANDBOX = {"allow-popups", "allow-popups-to-escape-sandbox"}


def open_mail_frames(page: Page) -> list[tuple[ElementHandle, Frame]]:
    """Expand every collapsed formatted view on the page; each mail frame element with its loaded document."""
    collapsed = page.locator("details:not([open]):has(iframe) > summary")
    while collapsed.count():
        collapsed.first.click()
    shown: list[tuple[ElementHandle, Frame]] = []
    iframes = page.locator("iframe")
    for index in range(iframes.count()):
        element = iframes.nth(index).element_handle()
        element.scroll_into_view_if_needed()  # a lazy frame loads once it is near the viewport

        def loaded(element: ElementHandle = element) -> Frame | None:
            frame = element.content_frame()
            return frame if frame is not None and "/m/" in frame.url else None

        frame: Frame = poll(loaded, UI_TIMEOUT, "the mail frame to load its document")
        frame.wait_for_load_state("load")
        # The settle point for "nothing happened" checks: no request in the frame for half a second.
        frame.wait_for_load_state("networkidle")
        shown.append((element, frame))
    return shown


def parent_reach(frame: Frame) -> str:
    """What code running in `frame` gets when it touches our page: a SecurityError when the frame is isolated."""
    result: str = frame.evaluate(
        """() => {
            try { return 'reached: ' + window.parent.document.title; }
            catch (error) { return 'blocked: ' + error.name; }
        }"""
    )
    return result


# --- live pages ---------------------------------------------------------------------------------------------------


def mark_page(page: Page) -> None:
    """Tag the current document, so that `same_document` can tell a live update from a reload."""
    page.evaluate("() => { window.__e2eSameDocument = true; }")


def same_document(page: Page) -> bool:
    return bool(page.evaluate("() => window.__e2eSameDocument === true"))


def wait_until_live(page: Page) -> dict[str, Any]:
    """Wait for the page's live socket (static/postdesk/live.js) to be open and subscribed; its status."""
    page.wait_for_function(
        """() => {
            const live = window.postdeskLive && window.postdeskLive.status();
            return live && live.connected && (live.conversations.length + live.mailboxes.length) > 0;
        }"""
    )
    status: dict[str, Any] = page.evaluate("() => window.postdeskLive.status()")
    return status
