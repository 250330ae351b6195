"""New mail, visible: SMTP 250 → live event on an agent's socket → the row in the inbox, p50/p95.

    python bench/live_latency.py [--mails 50] [--gap 0.3] [--no-browser] [--scale-out]

Sets up a fresh installation with the CLI (a team, its mailbox, an agent), starts `postdesk run` on
SQLite (web, jobs and SMTP listener in one process; --scale-out: `postdesk web`, `postdesk worker` and
`postdesk smtpd` apart on PostgreSQL and Redis instead), signs the agent in, and sends mails to the
SMTP listener one at a time, each a new conversation. For each mail, from the moment the listener
answered 250 to DATA:

- socket: the "conversation.changed" (kind received) frame on a WebSocket to /ws/live/ opened with the
  agent's session and subscribed to the mailbox, as live.js does;
- fetch: that, plus fetching the list fragment the page then asks for (/inbox/refresh/) and finding
  the new subject in it;
- browser: Debian's chromium (Playwright, headless) showing the inbox page: the new row is visible
  there, through live.js and htmx, with no reload.

The baseline in the same run is the durable accept itself (connect → 250 to DATA: what the sender
waits for) and a plain GET of the list fragment on the idle server, which bound from below what the
chain can reach. Target: new mail visible in under one second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import Session, free_port, p50_p95, postdesk_env, stop, wait_for_port

POSTDESK = [sys.executable, "-m", "postdesk.cli"]
PASSWORD = "live-bench-password-1"
AGENT = "ann@live.test"
MAILBOX = "help@live.test"
PG_SERVER = os.environ.get("BENCH_PG_SERVER", f"postgres://{os.environ.get('USER', 'root')}@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGET_MS = 1000.0


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*POSTDESK, *args], env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"postdesk {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _wait_smtp(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                if sock.recv(3) == b"220":
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no SMTP greeting on port {port}")


@contextlib.contextmanager
def installation(scale_out: bool) -> Iterator[tuple[int, int]]:
    """A fresh installation with its processes running; yields (HTTP port, SMTP port)."""
    http_port, smtp_port = free_port(), free_port()
    database_url: str | None = None
    queue_name = f"postdesk-bench-live-{uuid.uuid4().hex[:8]}"
    extra = {
        "POSTDESK_HTTP_PORT": str(http_port),
        "POSTDESK_SMTP_PORT": str(smtp_port),
        "POSTDESK_QUEUE_NAME": queue_name,
        "LIVE_PASSWORD": PASSWORD,
    }
    if scale_out:
        import psycopg

        database_url = f"{PG_SERVER}/postdesk_live_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database_url.rsplit('/', 1)[1]}")  # type: ignore[arg-type]
        extra["REDIS_URL"] = REDIS_URL
    processes: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="postdesk-bench-live-") as tmp:
        env = postdesk_env(Path(tmp), database_url, **extra)
        log = Path(tmp) / "processes.log"
        try:
            _cli(env, "migrate", "--quiet")
            _cli(env, "mailbox", "add", MAILBOX, "--name", "Live Support")
            _cli(env, "team", "add", "Live", "--mailbox", MAILBOX)
            _cli(env, "agent", "add", AGENT, "--team", "Live", "--name", "Ann Live", "--password-env", "LIVE_PASSWORD")
            commands = [["web"], ["worker"], ["smtpd"]] if scale_out else [["run"]]
            with log.open("w") as output:
                for command in commands:
                    processes.append(
                        subprocess.Popen(
                            [*POSTDESK, *command], env=env, stdout=output, stderr=subprocess.STDOUT, text=True
                        )
                    )
            web = processes[0]
            smtpd = processes[-1]
            wait_for_port(http_port, web, log=log)
            _wait_smtp(smtp_port, smtpd)
            yield http_port, smtp_port
        except BaseException:
            print(log.read_text() if log.exists() else "", file=sys.stderr)
            raise
        finally:
            for process in processes:
                stop(process)
            if database_url:
                import psycopg

                with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {database_url.rsplit('/', 1)[1]} WITH (FORCE)")  # type: ignore[arg-type]
                import redis

                client = redis.Redis.from_url(REDIS_URL)
                for key in client.scan_iter(f"*{queue_name}*"):
                    client.delete(key)


def _mail(subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Probe Customer <probe-{uuid.uuid4().hex[:8]}@customer.test>"
    msg["To"] = MAILBOX
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="customer.test")
    msg.set_content("Hello, my parcel has not arrived yet. Could you check, please?\n")
    return bytes(msg)


def send(port: int, raw: bytes) -> tuple[float, float]:
    """Send one mail; returns (perf_counter when the listener answered 250 to DATA, seconds from connect)."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail("probe@customer.test", [MAILBOX], raw)
        accepted = time.perf_counter()
    return accepted, accepted - started


class SocketListener(threading.Thread):
    """The agent's live socket: every frame, stamped with perf_counter when it arrived."""

    def __init__(self, port: int, cookies: dict[str, str], mailboxes: list[int]) -> None:
        super().__init__(daemon=True)
        from websockets.sync.client import connect

        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self._stack = contextlib.ExitStack()
        self.socket = self._stack.enter_context(
            connect(
                f"ws://127.0.0.1:{port}/ws/live/",
                origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
                additional_headers={"Cookie": cookie},
            )
        )
        self.frames: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.socket.send(json.dumps({"type": "subscribe", "conversations": [], "mailboxes": mailboxes}))
        self.stopped = False

    def run(self) -> None:
        with contextlib.suppress(Exception):
            for frame in self.socket:
                self.frames.put((time.perf_counter(), json.loads(frame)))

    def wait_for(self, kind: str, after: float, timeout: float = 10) -> tuple[float, dict[str, Any]] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at, frame = self.frames.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if frame.get("type") == "conversation.changed" and frame.get("kind") == kind and at >= after:
                return at, frame
        return None

    def close(self) -> None:
        self._stack.close()


def _browser(port: int) -> tuple[Any, Any, Any]:
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    )
    page = browser.new_page()
    subscribed = threading.Event()

    def on_socket(ws: Any) -> None:
        ws.on("framereceived", lambda payload: '"subscribed"' in str(payload) and subscribed.set())

    page.on("websocket", on_socket)
    base = f"http://127.0.0.1:{port}"
    page.goto(base + "/login/")
    page.fill("input[name=username]", AGENT)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(base + "/")
    deadline = time.monotonic() + 15
    while not subscribed.is_set() and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    if not subscribed.is_set():
        raise SystemExit("the inbox page never subscribed on its live socket")
    return playwright, browser, page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mails", type=int, default=50)
    # Over a second: the inbox refreshes at once on an event, then at most once a second (static/postdesk/app.js),
    # so mails closer together measure that throttle rather than the path.
    parser.add_argument("--gap", type=float, default=1.5, help="pause between mails, seconds")
    parser.add_argument("--no-browser", action="store_true", help="socket and fetch only, no chromium")
    parser.add_argument("--scale-out", action="store_true", help="web, worker and smtpd apart on PostgreSQL + Redis")
    args = parser.parse_args(argv)
    setup = "web + worker + smtpd on PostgreSQL and Redis" if args.scale_out else "`postdesk run` on SQLite"
    load_before = os.getloadavg()
    accept: list[float] = []
    to_socket: list[float] = []
    to_fetch: list[float] = []
    to_browser: list[float] = []
    idle_fetch: list[float] = []
    missed = {"socket": 0, "fetch": 0, "browser": 0}
    with installation(args.scale_out) as (http_port, smtp_port):
        agent = Session("127.0.0.1", http_port)
        agent.login(AGENT, PASSWORD)
        inbox = agent.get("/")
        found = re.search(r'data-live-mailboxes="([\d,]*)"', inbox.body)
        mailboxes = [int(m) for m in found.group(1).split(",") if m] if found else []
        if not mailboxes:
            raise SystemExit("the inbox page names no mailbox to listen to (data-live-mailboxes)")
        refresh = "/inbox/refresh/" if agent.get("/inbox/refresh/").status == 200 else "/"
        for _ in range(20):
            idle_fetch.append(agent.get(refresh).seconds)
        listener = SocketListener(http_port, agent.cookies, mailboxes)
        listener.start()
        browser = None if args.no_browser else _browser(http_port)
        try:
            time.sleep(1)
            for index in range(args.mails):
                subject = f"Live probe {index + 1} {uuid.uuid4().hex[:8]}"
                accepted_at, took = send(smtp_port, _mail(subject))
                accept.append(took)
                if browser is not None:
                    try:
                        browser[2].get_by_text(subject).first.wait_for(state="visible", timeout=10_000)
                        to_browser.append(time.perf_counter() - accepted_at)
                    except Exception:
                        missed["browser"] += 1
                event = listener.wait_for("received", accepted_at)
                if event is None:
                    missed["socket"] += 1
                else:
                    to_socket.append(event[0] - accepted_at)
                    if browser is None:
                        page = agent.get(refresh)
                        if subject in page.body:
                            to_fetch.append(time.perf_counter() - accepted_at)
                        else:
                            missed["fetch"] += 1
                time.sleep(args.gap)
        finally:
            listener.close()
            if browser is not None:
                browser[1].close()
                browser[0].stop()
    load_after = os.getloadavg()

    print(
        f"live: {args.mails} new mails, one at a time ({args.gap} s apart), {setup}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(f"\n{'from the SMTP 250 to …':<44}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}  target < {TARGET_MS:.0f} ms")
    rows = [
        ("the live event on the agent's socket", to_socket, missed["socket"]),
        ("socket event + list fragment fetched", to_fetch, missed["fetch"]),
        ("the row visible in chromium's inbox page", to_browser, missed["browser"]),
    ]
    for label, values, lost in rows:
        if not values and not lost:
            continue
        p50, p95 = p50_p95(values) if values else (float("nan"), float("nan"))
        verdict = "ok" if p95 < TARGET_MS and not lost else "OVER" if values else "-"
        print(f"{label:<44}{len(values):>7}{p50:>9.1f}{p95:>9.1f}  {verdict}" + (f"  missed {lost}" if lost else ""))
    print("\nbaseline, same run")
    a50, a95 = p50_p95(accept)
    f50, f95 = p50_p95(idle_fetch)
    print(f"{'SMTP connect → 250 to DATA (durable accept)':<44}{len(accept):>7}{a50:>9.1f}{a95:>9.1f}")
    print(f"{'GET of the list fragment, idle server':<44}{len(idle_fetch):>7}{f50:>9.1f}{f95:>9.1f}")
    if args.no_browser:
        print("(fetch: the bench GETs the fragment as soon as the event arrives, as live.js would)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
