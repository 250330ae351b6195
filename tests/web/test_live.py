"""Live updates and presence over the real socket `/ws/live/`, against real processes.

One process (`postdesk run`, in-memory channel layer): new mail reaches the right agents' sockets,
another team's conversation or mailbox cannot be subscribed to, presence and typing go to the
teammates and typing expires; live.js in Debian's chromium does the same for a page. With Redis:
two `postdesk web` processes and a `postdesk worker`, and events and presence cross between them.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import logging
import re
import smtplib
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from factories import make_raw_mail
from processes import POSTDESK, free_port, http_ready, postdesk, postdesk_env, smtp_ready, stop, wait_for

pytestmark = pytest.mark.slow

PASSWORD = "live-Correct-Horse-42"
# Waits are generous: a loaded machine is slow, and a pass never depends on them being short.
WAIT_SECONDS = 60
UI_MS = WAIT_SECONDS * 1000
X, Y = "help@x-team.test", "help@y-team.test"
AGENTS = {  # who: (email, full name, team)
    "ann": ("ann@x-team.test", "Ann Archer", "X"),
    "bob": ("bob@x-team.test", "Bob Baker", "X"),
    "yan": ("yan@y-team.test", "Yan Yu", "Y"),
}
Message = dict[str, Any]

# Mailbox ids are not in the CLI's or the API's output; read them through the ORM in a process of its own, on
# the installation's database (never the test process's).
_MAILBOX_IDS = """
import json, os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
django.setup()
from postdesk.desk.models import Mailbox
print(json.dumps(dict(Mailbox.objects.values_list("address", "pk"))))
"""


# --- an installation and its processes ---------------------------------------------------------------------------


@dataclass
class Desk:
    """A scripted installation: teams X (Ann, Bob) and Y (Yan), one mailbox each."""

    env: dict[str, str]
    smtp_port: int
    mailbox_ids: dict[str, int]
    tokens: dict[str, str]
    logs: list[Path] = field(default_factory=list)

    def deliver(self, subject: str, to: str, *, in_reply_to: str | None = None) -> str:
        """Mail from a customer to our SMTP listener; returns its Message-ID."""
        message_id = make_msgid(domain="customer.test")
        raw = make_raw_mail(subject=subject, to=to, message_id=message_id, in_reply_to=in_reply_to)
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as client:
            client.sendmail("alice@customer.test", [to], raw)
        return message_id

    def number_of(self, base_url: str, who: str, subject: str) -> int:
        """The number of the conversation with that subject, as `who` sees it through the API."""

        def look() -> int | None:
            request = urllib.request.Request(
                f"{base_url}/api/v1/conversations/?limit=200", headers={"Authorization": f"Token {self.tokens[who]}"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                rows = json.loads(response.read())["results"]
            return next((int(row["number"]) for row in rows if row["subject"] == subject), None)

        number = wait_for(look, WAIT_SECONDS, f"{subject!r} in {who}'s API")
        assert number is not None
        return number

    def take(self, base_url: str, who: str, number: int) -> None:
        """`who` assigns the conversation to themselves through the API (a sync view, in a thread of the server)."""
        request = urllib.request.Request(
            f"{base_url}/api/v1/conversations/{number}/take",
            data=b"{}",
            method="POST",
            headers={"Authorization": f"Token {self.tokens[who]}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
            assert response.status == 200


def _cli(env: dict[str, str], *args: str) -> str:
    done = postdesk(env, *args)
    assert done.returncode == 0, f"postdesk {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def install(data_dir: Path, database_url: str | None, **extra: str) -> Desk:
    smtp_port = free_port()
    env = postdesk_env(data_dir, database_url, POSTDESK_SMTP_PORT=str(smtp_port), LIVE_PASSWORD=PASSWORD, **extra)
    _cli(env, "migrate", "--quiet")
    for team, address in (("X", X), ("Y", Y)):
        _cli(env, "mailbox", "add", address)
        _cli(env, "team", "add", team, "--mailbox", address)
    tokens = {
        who: _cli(env, "agent", "add", email, "--team", team, "--name", name, "--password-env", "LIVE_PASSWORD").strip()
        for who, (email, name, team) in AGENTS.items()
    }
    ids = subprocess.run(
        [POSTDESK[0], "-c", _MAILBOX_IDS], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return Desk(env=env, smtp_port=smtp_port, mailbox_ids=json.loads(ids.stdout), tokens=tokens)


@dataclass
class Processes:
    """Postdesk processes started by a test, stopped (SIGTERM) at its end."""

    desk: Desk
    running: list[tuple[subprocess.Popen[str], Path]] = field(default_factory=list)

    def start(self, command: str, *, http_port: int | None = None) -> subprocess.Popen[str]:
        env = dict(self.desk.env)
        if http_port is not None:
            env["POSTDESK_HTTP_PORT"] = str(http_port)
        log = Path(env["POSTDESK_DATA_DIR"]).parent / f"{command}-{len(self.running)}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [*POSTDESK, command], env=env, stdout=output, stderr=subprocess.STDOUT, text=True
            )
        self.running.append((process, log))
        return process

    def wait_ready(self, *, http_ports: list[int], smtp: bool) -> None:
        def ready() -> bool:
            for process, log in self.running:
                assert process.poll() is None, f"{log.name} exited:\n{log.read_text()}"
            return all(http_ready(f"http://127.0.0.1:{port}") for port in http_ports) and (
                not smtp or smtp_ready(self.desk.smtp_port)
            )

        wait_for(ready, 2 * WAIT_SECONDS, "the Postdesk processes to start")

    def stop_all(self) -> None:
        for process, log in self.running:
            if process.poll() is None:
                output = stop(process)
                assert process.returncode == 0, f"{output}\n{log.read_text()}"
            # Shown by pytest only when the test failed.
            print(f"--- {log.name} ---\n{log.read_text()[-4000:]}")


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[Desk], Processes]]:
    started: list[Processes] = []

    def make(desk: Desk) -> Processes:
        started.append(Processes(desk))
        return started[-1]

    yield make
    for group in started:
        group.stop_all()


@pytest.fixture
def one_process(
    tmp_path: Path, fresh_database_url: str | None, processes: Callable[[Desk], Processes]
) -> Iterator[tuple[Desk, str]]:
    """`postdesk run` (web, jobs and SMTP in one process, in-memory channel layer); yields the desk and its URL."""
    desk = install(tmp_path / "data", fresh_database_url)
    http_port = free_port()
    running = processes(desk)
    running.start("run", http_port=http_port)
    running.wait_ready(http_ports=[http_port], smtp=True)
    yield desk, f"http://127.0.0.1:{http_port}"


# --- signing in and the socket -----------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def sign_in(base_url: str, who: str) -> str:
    """Log in through /login/ like the browser does; returns the Cookie header of the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
    with opener.open(f"{base_url}/login/", timeout=30) as response:
        form = response.read().decode()
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert found, "the login page has a CSRF token"
    fields = {"username": AGENTS[who][0], "password": PASSWORD, "csrfmiddlewaretoken": found.group(1)}
    try:
        opener.open(f"{base_url}/login/", data=urllib.parse.urlencode(fields).encode(), timeout=30).close()
    except urllib.error.HTTPError as redirect:  # signed in: a redirect to the inbox, not followed
        assert redirect.code == 302, f"{who} could not sign in: HTTP {redirect.code}"
    cookies = {cookie.name: cookie.value for cookie in jar}
    assert "sessionid" in cookies, f"{who} could not sign in"
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


class LiveSocket:
    """A page's socket to `/ws/live/`, with everything it received kept for assertions."""

    def __init__(self, base_url: str, cookie: str | None, *, origin: str | None = None) -> None:
        headers = {"Cookie": cookie} if cookie else {}
        url = base_url.replace("http://", "ws://", 1) + "/ws/live/"
        self._stack = contextlib.ExitStack()
        self.connection: ClientConnection = self._stack.enter_context(
            connect(url, origin=Origin(origin or base_url), additional_headers=headers, open_timeout=30)
        )
        self.received: list[Message] = []
        _open_sockets.append(self)

    def expect(self, predicate: Callable[[Message], bool], what: str, timeout: float = WAIT_SECONDS) -> Message:
        """Read until a message matches `predicate`; fail after `timeout` seconds, showing what came instead."""
        deadline = time.monotonic() + timeout
        start = len(self.received)
        while time.monotonic() < deadline:
            try:
                raw = self.connection.recv(timeout=max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            message: Message = json.loads(raw)
            self.received.append(message)
            if predicate(message):
                return message
        raise AssertionError(f"timed out waiting for {what}; got {self.received[start:]}")

    def send(self, **message: Any) -> None:
        self.connection.send(json.dumps(message))

    def subscribe(self, conversations: list[int] = [], mailboxes: list[int] = []) -> Message:  # noqa: B006
        self.send(type="subscribe", conversations=conversations, mailboxes=mailboxes)
        return self.expect(lambda m: m["type"] == "subscribed", "the subscription's answer")

    def close(self) -> None:
        self._stack.close()


_open_sockets: list[LiveSocket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    """Sockets a failed test left open are closed before its servers stop."""
    yield
    while _open_sockets:
        _open_sockets.pop().close()


def opened(base_url: str, who: str) -> LiveSocket:
    live = LiveSocket(base_url, sign_in(base_url, who))
    hello = live.expect(lambda m: m["type"] == "hello", "hello")
    assert hello["name"] == AGENTS[who][1]
    return live


def changed(
    conversation: int | None = None, *, mailbox: int | None = None, kind: str = "received", actor: int | None = None
) -> Callable[[Message], bool]:
    """A change event; kind "*" is any kind. Mail from customers has no actor."""

    def match(m: Message) -> bool:
        return (
            m["type"] == "conversation.changed"
            and (kind == "*" or m["kind"] == kind)
            and m["actor"] == actor
            and (conversation is None or m["conversation"] == conversation)
            and (mailbox is None or m["mailbox"] == mailbox)
        )

    return match


def presence(conversation: int, name: str, state: str) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return m["type"] == "presence" and (m["conversation"], m["name"], m["state"]) == (conversation, name, state)

    return match


def mentions(messages: list[Message], *, conversation: int, mailbox: int) -> list[Message]:
    return [m for m in messages if m.get("conversation") == conversation or m.get("mailbox") == mailbox]


# --- one process -----------------------------------------------------------------------------------------------


def test_sockets_need_a_session_and_our_own_origin(one_process: tuple[Desk, str]) -> None:
    _desk, url = one_process
    anonymous = LiveSocket(url, None)
    with pytest.raises(ConnectionClosed) as closed:
        anonymous.connection.recv(timeout=WAIT_SECONDS)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

    cookie = sign_in(url, "ann")
    for foreign in ("http://evil.test", url.replace("127.0.0.1", "localhost")):
        with pytest.raises(InvalidStatus) as refused:
            LiveSocket(url, cookie, origin=foreign)
        assert refused.value.response.status_code == 403, foreign

    signed_in = LiveSocket(url, cookie)
    assert signed_in.expect(lambda m: m["type"] == "hello", "hello")["name"] == "Ann Archer"
    signed_in.send(type="shout")
    assert "Unknown message type" in signed_in.expect(lambda m: m["type"] == "error", "an error")["message"]
    signed_in.close()


def test_new_mail_and_presence_reach_the_team_and_nobody_else(one_process: tuple[Desk, str]) -> None:
    desk, url = one_process
    mx, my = desk.mailbox_ids[X], desk.mailbox_ids[Y]

    ann_list = opened(url, "ann")
    assert ann_list.subscribe(mailboxes=[mx, my]) == {"type": "subscribed", "conversations": [], "mailboxes": [mx]}

    # New mail shows on the list of the team's mailbox, with the conversation's id and number.
    subject = f"Order lost {uuid.uuid4().hex[:6]}"
    first_id = desk.deliver(subject, X)
    event = ann_list.expect(changed(mailbox=mx), "the new conversation on Ann's list")
    assert event["number"] == desk.number_of(url, "ann", subject)
    cx = event["conversation"]

    # Yan (team Y) asks for X's conversation and mailbox too: both are refused, Y's mailbox is granted.
    yan = opened(url, "yan")
    assert yan.subscribe(conversations=[cx], mailboxes=[mx, my]) == {
        "type": "subscribed",
        "conversations": [],
        "mailboxes": [my],
    }
    yan.send(type="presence", conversation=cx, state="viewing")
    assert "Subscribe to a conversation" in yan.expect(lambda m: m["type"] == "error", "a refusal")["message"]

    # Bob opens the conversation: Ann's list shows him on it.
    bob_page = opened(url, "bob")
    assert bob_page.subscribe(conversations=[cx])["conversations"] == [cx]
    bob_page.send(type="presence", conversation=cx, state="viewing")
    seen = ann_list.expect(presence(cx, "Bob Baker", "viewing"), "Bob viewing, on Ann's list")
    assert seen["mailbox"] == mx and seen["ttl"] > seen["typing_ttl"] > 0

    # Ann opens it later: the roll call tells her Bob is there; Bob sees her arrive.
    ann_page = opened(url, "ann")
    assert ann_page.subscribe(conversations=[cx])["conversations"] == [cx]
    ann_page.expect(presence(cx, "Bob Baker", "viewing"), "Bob viewing, on Ann's page")
    ann_page.send(type="presence", conversation=cx, state="viewing")
    bob_page.expect(presence(cx, "Ann Archer", "viewing"), "Ann viewing, on Bob's page")

    # Bob types, then stops: typing shows, then expires back to viewing (the heartbeat says so).
    bob_page.send(type="presence", conversation=cx, state="typing")
    ann_page.expect(presence(cx, "Bob Baker", "typing"), "Bob typing, on Ann's page")
    ann_list.expect(presence(cx, "Bob Baker", "typing"), "Bob typing, on Ann's list")
    ann_page.expect(presence(cx, "Bob Baker", "viewing"), "Bob's typing to expire")

    # The customer answers: the conversation's own page hears of it.
    desk.deliver(f"Re: {subject}", X, in_reply_to=first_id)
    ann_page.expect(changed(cx), "the customer's answer on Ann's page")
    bob_page.expect(changed(cx), "the customer's answer on Bob's page")

    # Bob takes it through the API: the change made in a view reaches Ann's page and list, naming Bob.
    desk.take(url, "bob", event["number"])
    bob_id = bob_page.received[0]["user"]
    ann_page.expect(changed(cx, kind="*", actor=bob_id), "Bob taking it, on Ann's page")
    ann_list.expect(changed(cx, kind="*", actor=bob_id), "Bob taking it, on Ann's list")

    # Bob closes his page: he leaves.
    bob_page.close()
    ann_page.expect(presence(cx, "Bob Baker", "left"), "Bob leaving")

    # Y's own mail reaches Yan; nothing about X's conversation or mailbox came before it.
    desk.deliver(f"Refund {uuid.uuid4().hex[:6]}", Y)
    yan.expect(changed(mailbox=my), "Y's new mail on Yan's list")
    assert mentions(yan.received, conversation=cx, mailbox=mx) == []
    for live in (ann_list, ann_page, yan):
        live.close()


# --- live.js in the browser --------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    # The contract pages below are handed to chromium by Playwright, so they have no address; chromium then
    # treats them as public and blocks their socket to loopback. Real pages come from the server itself.
    "--disable-features=LocalNetworkAccessChecks",
]
# The CSP our pages have (web/views.py): live.js must work under it.
PAGE_CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'"


def contract_page(body_attributes: str, content: str) -> str:
    """A page at the server's origin, laid out the way the page contract says (see live.js)."""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><script src="/static/postdesk/live.js" defer></script>'
        f"</head><body {body_attributes}>{content}</body></html>"
    )


def test_live_js_shows_presence_typing_and_new_mail(one_process: tuple[Desk, str]) -> None:
    from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

    desk, url = one_process
    mx = desk.mailbox_ids[X]
    # Learn the conversation's id the way a list page would: from its socket.
    watcher = opened(url, "ann")
    watcher.subscribe(mailboxes=[mx])
    desk.deliver(f"Broken zipper {uuid.uuid4().hex[:6]}", X)
    cx = watcher.expect(changed(mailbox=mx), "the new conversation")["conversation"]
    watcher.close()

    conversation_page = contract_page(
        f'data-live-conversation="{cx}" data-live-number="1" data-agent-name="Ann Archer"',
        '<div id="presence" data-text-viewing="%s looks at it"></div><textarea data-typing></textarea>',
    )
    list_page = contract_page(
        f'data-live-mailboxes="{mx}" data-agent-name="Bob Baker"',
        f'<table><tr><td>#{cx}</td><td><span data-presence-for="{cx}"></span></td></tr></table>',
    )

    def signed_in_page(context: BrowserContext, who: str, html: str) -> Page:
        page = context.new_page()
        page.goto(f"{url}/login/")
        page.get_by_label("Email address").fill(AGENTS[who][0])
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"^(?!.*/login/).*$"))

        show(page, html)
        return page

    def show(page: Page, html: str) -> None:
        """Open `html` at the server's origin, under our pages' CSP."""
        headers = {"Content-Type": "text/html", "Content-Security-Policy": PAGE_CSP}
        page.route(f"{url}/live-contract/", lambda route: route.fulfill(status=200, body=html, headers=headers))
        page.goto(f"{url}/live-contract/")
        expect_connected(page)

    def expect_connected(page: Page) -> None:
        page.wait_for_function("() => window.postdeskLive && window.postdeskLive.status().connected === true")
        page.wait_for_function(
            "() => { const s = window.postdeskLive.status(); return s.conversations.length + s.mailboxes.length > 0 }"
        )

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            ann_context, bob_context = browser.new_context(), browser.new_context()
            for context in (ann_context, bob_context):
                context.set_default_timeout(UI_MS)
            errors: list[str] = []
            bob = signed_in_page(bob_context, "bob", list_page)
            bob.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            bob.evaluate(
                "() => { window.changes = [];"
                " document.body.addEventListener('pd:changed', e => window.changes.push(e.detail)); }"
            )
            ann = signed_in_page(ann_context, "ann", conversation_page)

            badge = bob.locator(f'[data-presence-for="{cx}"]')
            expect(badge).to_have_text("Ann Archer", timeout=UI_MS)
            expect(badge).to_have_attribute("data-presence-state", "viewing", timeout=UI_MS)
            seen = bob.evaluate(f"() => window.postdeskLive.presence()['{cx}']")
            assert [(p["name"], p["state"]) for p in seen] == [("Ann Archer", "viewing")]

            ann.locator("textarea[data-typing]").press_sequentially("Hello, we are on it")
            expect(badge).to_have_attribute("data-presence-state", "typing", timeout=UI_MS)
            expect(badge).to_have_text("Ann Archer ✎", timeout=UI_MS)
            # Ann stops typing: a few seconds later she is only viewing again.
            expect(badge).to_have_attribute("data-presence-state", "viewing", timeout=UI_MS)

            # Bob opens the conversation too; Ann's page names him with the page's own wording.
            bob_reading = bob_context.new_page()
            show(bob_reading, conversation_page)
            expect(ann.locator("#presence")).to_have_text("Bob Baker looks at it", timeout=UI_MS)
            bob_reading.close()
            expect(ann.locator("#presence")).to_have_text("", timeout=UI_MS)

            # New mail to the mailbox: Bob's list page gets a pd:changed event for it.
            desk.deliver(f"Second question {uuid.uuid4().hex[:6]}", X)
            bob.wait_for_function("() => window.changes.some(e => e.kind === 'received')")

            ann.close()
            expect(badge).to_have_text("", timeout=UI_MS)
            assert errors == []
        finally:
            browser.close()


# --- scale-out: Redis, two web processes, a worker ---------------------------------------------------------------


def _redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(7) == b"+PONG\r\n"
    except OSError:
        return False


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A Redis prefix of this test's own, deleted afterwards."""
    import redis

    name = f"postdesk-live-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis(host="127.0.0.1", port=6379)
    for key in client.scan_iter(f"{name}*"):
        client.delete(key)


def test_events_and_presence_cross_web_processes_through_redis(
    tmp_path: Path, fresh_database_url: str | None, processes: Callable[[Desk], Processes], queue_name: str
) -> None:
    if not _redis_available():
        pytest.fail("Redis is not running on 127.0.0.1:6379 (make services)")
    desk = install(
        tmp_path / "data", fresh_database_url, REDIS_URL="redis://127.0.0.1:6379/0", POSTDESK_QUEUE_NAME=queue_name
    )
    mx = desk.mailbox_ids[X]
    port_1, port_2 = free_port(), free_port()
    web_1, web_2 = f"http://127.0.0.1:{port_1}", f"http://127.0.0.1:{port_2}"
    running = processes(desk)
    running.start("web", http_port=port_1)
    running.start("web", http_port=port_2)
    running.start("worker")
    running.start("smtpd")
    running.wait_ready(http_ports=[port_1, port_2], smtp=True)

    ann_list, bob_list = opened(web_1, "ann"), opened(web_2, "bob")
    ann_list.subscribe(mailboxes=[mx])
    bob_list.subscribe(mailboxes=[mx])

    # The worker processes the mail and publishes; both web processes' sockets hear it.
    subject = f"Where is my parcel {uuid.uuid4().hex[:6]}"
    desk.deliver(subject, X)
    cx = ann_list.expect(changed(mailbox=mx), "the new mail on web 1")["conversation"]
    assert bob_list.expect(changed(mailbox=mx), "the new mail on web 2")["conversation"] == cx
    assert desk.number_of(web_2, "bob", subject) > 0

    # Bob on web 2 opens it: Ann's list on web 1 shows him; Ann, joining on web 1, gets him in the roll call.
    bob_page = opened(web_2, "bob")
    bob_page.subscribe(conversations=[cx])
    bob_page.send(type="presence", conversation=cx, state="viewing")
    ann_list.expect(presence(cx, "Bob Baker", "viewing"), "Bob (web 2) on Ann's list (web 1)")
    ann_page = opened(web_1, "ann")
    ann_page.subscribe(conversations=[cx])
    ann_page.expect(presence(cx, "Bob Baker", "viewing"), "Bob in the roll call across processes")

    # Ann types on web 1; Bob sees it on web 2.
    ann_page.send(type="presence", conversation=cx, state="typing")
    bob_page.expect(presence(cx, "Ann Archer", "typing"), "Ann typing, across processes")

    # Ann takes it through web 1's API: Bob's page on web 2 hears of it.
    desk.take(web_1, "ann", desk.number_of(web_1, "ann", subject))
    ann_id = ann_page.received[0]["user"]
    bob_page.expect(changed(cx, kind="*", actor=ann_id), "Ann taking it (web 1), on Bob's page (web 2)")
    for live in (ann_list, bob_list, bob_page, ann_page):
        live.close()


# --- publishing never fails a write ------------------------------------------------------------------------------


def test_an_unreachable_channel_layer_never_fails_the_caller(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    from postdesk.desk import live

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},  # nothing listens there
        }
    }
    event = {"type": "conversation.changed", "id": "x", "conversation": 1, "number": 1, "mailbox": 1, "kind": "note"}
    with caplog.at_level(logging.WARNING, logger="postdesk.desk.live"):
        live._publish(event)  # returns at once, without raising
        wait_for(lambda: "live event dropped" in caplog.text, 30, "the dropped event to be logged")


# --- open sockets follow sign-out and team changes -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_open_socket_loses_what_its_agent_may_no_longer_see(monkeypatch: pytest.MonkeyPatch) -> None:
    """The periodic re-check, sped up: a team taken away is dropped from the socket, a sign-out closes it (4401).
    The real ASGI application runs in this process (asgiref's ApplicationCommunicator), on the test database."""
    from asgiref.sync import async_to_sync
    from asgiref.testing import ApplicationCommunicator
    from channels.db import database_sync_to_async
    from django.test import Client

    from factories import make_agent, make_mailbox, make_team
    from postdesk.asgi import application
    from postdesk.web import consumers

    monkeypatch.setattr(consumers, "HEARTBEAT_SECONDS", 0.1)
    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.3)
    team_x, team_y = make_team("X"), make_team("Y")
    mx, my = make_mailbox(X, team=team_x).pk, make_mailbox(Y, team=team_y).pk
    ann = make_agent(AGENTS["ann"][0], teams=(team_x, team_y))
    browser = Client()
    browser.force_login(ann)
    headers = [
        (b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode()),
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
    ]

    scope = {"type": "websocket", "path": "/ws/live/", "headers": headers, "query_string": b"", "subprotocols": []}

    async def scenario() -> None:
        socket = ApplicationCommunicator(application, scope)

        async def receive() -> Message:
            output = await socket.receive_output(timeout=WAIT_SECONDS)
            assert output["type"] == "websocket.send", output
            received: Message = json.loads(output["text"])
            return received

        await socket.send_input({"type": "websocket.connect"})
        assert (await socket.receive_output(timeout=WAIT_SECONDS))["type"] == "websocket.accept"
        assert (await receive())["type"] == "hello"
        subscribe = {"type": "subscribe", "mailboxes": [mx, my]}
        await socket.send_input({"type": "websocket.receive", "text": json.dumps(subscribe)})
        assert (await receive())["mailboxes"] == sorted([mx, my])

        await database_sync_to_async(ann.agent.teams.remove)(team_y)
        assert await receive() == {"type": "subscribed", "conversations": [], "mailboxes": [mx]}

        await database_sync_to_async(browser.logout)()
        assert await socket.receive_output(timeout=WAIT_SECONDS) == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_events_reach_the_in_memory_layer_from_the_server_loop_and_from_job_threads(settings: Any) -> None:
    """`postdesk run`'s case in small: an event published on the server's loop itself, and one from another thread
    (a huey job, a sync view), both reach a channel of the groups through the one loop the layer belongs to."""
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from postdesk.desk import live

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()

    def event(kind: str) -> dict[str, Any]:
        return {"type": "conversation.changed", "id": kind, "conversation": 3, "number": 3, "mailbox": 7, "kind": kind}

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        live.use_server_loop(loop)
        try:
            page, a_list = await layer.new_channel(), await layer.new_channel()
            await layer.group_add(live.conversation_group(3), page)
            await layer.group_add(live.mailbox_group(7), a_list)
            live._publish(event("on-the-loop"))
            await loop.run_in_executor(None, live._publish, event("from-a-thread"))
            heard = [await asyncio.wait_for(layer.receive(channel), WAIT_SECONDS) for channel in (page, page)]
            heard += [await asyncio.wait_for(layer.receive(channel), WAIT_SECONDS) for channel in (a_list, a_list)]
            return sorted(message["kind"] for message in heard)
        finally:
            live.use_server_loop(None)

    assert async_to_sync(scenario)() == ["from-a-thread"] * 2 + ["on-the-loop"] * 2
