"""Workspace page latency on a seeded database: folder lists and conversation pages, admin and team agent.

    python bench/seed.py --conversations 1000000          # once; see that script
    python bench/workspace.py [--database-url URL] [--requests 40] [--explain]

Starts one real `postdesk web` process (uvicorn, as operators run it) on the seeded PostgreSQL
database and measures p50/p95 over HTTP, one request at a time, for: folder lists (several folders and
sort orders, the first page and keyset pages deep in the list), and conversation pages (five messages,
a different conversation every request). Beside each page: its number of SQL queries and their time,
captured once in-process through Django's test client, and the CPU time the request costs in this process
(the median of a few repeats, measured with the thread's CPU clock: unlike wall time, it hardly moves when
other work shares the cores, so runs at different load averages can be compared by it).

Baselines in the same run, on the database alone: a page of the list by keyset (what the app does)
against the same page by OFFSET at the same depth, and the folder counts capped at 1,000 rows (what
the app does) against plain COUNT(*). Targets: list and conversation pages p95 < 100 ms. A page over
target gets the EXPLAIN ANALYZE of its slowest query printed (--explain: always, for the slowest page).

This module also holds the small HTTP client and process helpers that load.py and live_latency.py use.
"""

from __future__ import annotations

import argparse
import base64
import html.parser
import http.client
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed import ADMIN_EMAIL, DEFAULT_DATABASE_URL, PASSWORD  # noqa: E402

TARGET_MS = 100.0
PAGE_SIZE = 50  # the app's DEFAULT_LIMIT
COUNT_CAP = 1000  # the inbox's capped folder counts

# --- HTTP: a cookie-keeping keep-alive client and an HTML form reader (stdlib only) ---------------------


@dataclass(slots=True)
class Response:
    status: int
    body: str
    headers: dict[str, str]
    seconds: float

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


class Session:
    """One browser: its own connection (keep-alive) and cookies. Not thread-safe; one per simulated agent."""

    def __init__(self, host: str, port: int, timeout: float = 60) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.cookies: dict[str, str] = {}
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, form: dict[str, str] | list[tuple[str, str]] | None = None) -> Response:
        headers = {"Host": f"{self.host}:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                conn = self._connection()
                conn.request(method, path, body=body, headers=headers)
                raw = conn.getresponse()
                data = raw.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once.
                self.close()
                if attempt == 2:
                    raise
                continue
            seconds = time.perf_counter() - started
            for cookie in raw.headers.get_all("Set-Cookie") or []:
                name, _eq, rest = cookie.partition("=")
                value = rest.split(";", 1)[0]
                if value and "max-age=0" not in cookie.lower():
                    self.cookies[name.strip()] = value
                else:
                    self.cookies.pop(name.strip(), None)
            if raw.getheader("Connection", "").lower() == "close":
                self.close()
            return Response(
                raw.status, data.decode("utf-8", "replace"), {k.lower(): v for k, v in raw.getheaders()}, seconds
            )
        raise AssertionError("unreachable")

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str] | list[tuple[str, str]]) -> Response:
        return self.request("POST", path, form)

    def login(self, email: str, password: str = PASSWORD) -> Response:
        page = self.get("/login/")
        forms = read_forms(page.body)
        token = next((f.fields.get("csrfmiddlewaretoken", "") for f in forms), "") or self.cookies.get("csrftoken", "")
        answer = self.post("/login/", {"username": email, "password": password, "csrfmiddlewaretoken": token})
        if answer.status != 302:
            raise RuntimeError(f"login of {email} failed: HTTP {answer.status}")
        return answer


@dataclass(slots=True)
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # hidden and text inputs, textareas, first option
    selects: dict[str, list[str]] = field(default_factory=dict)  # name → option values
    buttons: list[tuple[str, str]] = field(default_factory=list)  # named submit buttons


class _FormReader(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button"):
                self._form.buttons.append((a["name"], a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form.fields[a["name"]] = a.get("value", "on")
            else:
                self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name"):
            self._form.buttons.append((a["name"], a.get("value", "")))
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._form.selects[self._select] = []
        elif tag == "option" and self._select is not None:
            self._form.selects[self._select].append(a.get("value", ""))
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form.fields[self._textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea is not None:
            self._form.fields[self._textarea] += data


def read_forms(page: str) -> list[Form]:
    reader = _FormReader()
    reader.feed(page)
    return reader.forms


def find_form(forms: list[Form], action_suffix: str) -> Form | None:
    """The POST form whose action ends with `action_suffix` (e.g. "/note"), ignoring any query string."""
    for form in forms:
        if form.method == "post" and urlsplit(form.action).path.rstrip("/").endswith(action_suffix.rstrip("/")):
            return form
    return None


# --- processes -------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 60, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace") if log is not None and log.exists() else ""
            raise RuntimeError(f"{' '.join(map(str, process.args))} exited with {process.returncode}:\n{output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def postdesk_env(data_dir: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "POSTDESK_DATA_DIR"}}
    env.update(POSTDESK_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO / "src"))
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def stop(process: subprocess.Popen[str], timeout: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def postdesk_processes(
    command: str,
    count: int,
    database_url: str | None,
    *,
    cores: str | None = None,
    data_dir: Path | None = None,
    log_dir: Path | None = None,
    **extra_env: str,
) -> Iterator[list[int]]:
    """`count` times `postdesk COMMAND` (web or run) on free HTTP ports, one after the other (they share the keys
    the first one writes to the data directory, so a session is valid on all); yields the ports.

    Their output goes to `<log_dir>/<command>-<n>.log` (a file, never an unread pipe: a full pipe would stall
    the server on its next log line and the benchmark would measure that)."""
    own_dir = data_dir is None
    directory = data_dir or Path(tempfile.mkdtemp(prefix="postdesk-bench-"))
    logs = log_dir or directory
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[str]] = []
    ports: list[int] = []
    try:
        for index in range(count):
            port = free_port()
            env = postdesk_env(directory, database_url, POSTDESK_HTTP_PORT=str(port), **extra_env)
            argv = [sys.executable, "-m", "postdesk.cli", command]
            if cores:
                argv = ["taskset", "-c", cores, *argv]
            log = logs / f"{command}-{index + 1}.log"
            with log.open("w") as output:
                process = subprocess.Popen(
                    argv, env=env, stdout=output, stderr=subprocess.STDOUT, text=True, cwd=directory
                )
            processes.append(process)
            wait_for_port(port, process, log=log)
            ports.append(port)
        yield ports
    finally:
        for process in processes:
            stop(process)
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)


# --- figures ---------------------------------------------------------------------------------------------


def server_errors(log_dir: Path, limit: int = 5) -> list[str]:
    """The most frequent error lines (exception names and messages) in the servers' logs, with their counts."""
    lines: dict[str, int] = {}
    for log in sorted(log_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if re.match(r"^[\w.]+(Error|Exception|Exhausted|Timeout)\b", line) or " ERROR " in line:
                key = re.sub(r"\d+", "N", line.strip())[:160]
                lines[key] = lines.get(key, 0) + 1
    return [f"{count:>5} x {line}" for line, count in sorted(lines.items(), key=lambda kv: -kv[1])[:limit]]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 40 samples is the 38th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


def p50_p95(seconds: list[float]) -> tuple[float, float]:
    ms = [s * 1000 for s in seconds]
    return statistics.median(ms), percentile(ms, 0.95)


# --- the benchmark ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Page:
    who: str
    label: str
    paths: list[str]  # requested in turn
    seconds: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    queries: int = 0
    db_ms: float = 0.0
    slowest_sql: str = ""
    slowest_sql_ms: float = 0.0
    cpu_ms: float = 0.0  # in-process CPU time of the slowest request, made again (median of CPU_REPEATS)
    slowest_path: str = ""  # the request that took longest over HTTP: the one whose SQL is captured


@dataclass(frozen=True, slots=True)
class Folder:
    key: str
    statuses: tuple[str, ...]
    assignee: str = ""  # "me", "nobody"
    team_id: int | None = None


def folders(admin_teams: list[int]) -> dict[str, Folder]:
    """The inbox's folders, as SQL needs them for the baselines (web/inbox.py defines the real ones)."""
    open_ = ("new", "open")
    result = {
        "unassigned": Folder("unassigned", open_, assignee="nobody"),
        "mine": Folder("mine", open_, assignee="me"),
        "open": Folder("open", open_),
        "pending": Folder("pending", ("pending",)),
        "snoozed": Folder("snoozed", ("snoozed",)),
        "resolved": Folder("resolved", ("resolved", "closed")),
        "spam": Folder("spam", ("spam",)),
        "": Folder("", ("new", "open", "pending", "snoozed", "resolved", "closed")),
    }
    for team in admin_teams:
        result[f"team-{team}"] = Folder(f"team-{team}", open_, team_id=team)
    return result


def folder_where(folder: Folder, user_id: int, mailboxes: list[int] | None) -> tuple[str, list[Any]]:
    clauses = ["status = ANY(%s)"]
    params: list[Any] = [list(folder.statuses)]
    if mailboxes is not None:
        clauses.append("mailbox_id = ANY(%s)")
        params.append(mailboxes)
    if folder.assignee == "me":
        clauses.append("assignee_id = %s")
        params.append(user_id)
    elif folder.assignee == "nobody":
        clauses.append("assignee_id IS NULL")
    if folder.team_id is not None:
        clauses.append("team_id = %s")
        params.append(folder.team_id)
    return " AND ".join(clauses), params


def newest_cursor(when: datetime, row_id: int) -> str:
    """The list's cursor for the newest-first order ("<ISO 8601>|<id>", base64; api/pagination.py)."""
    return base64.urlsafe_b64encode(f"{when.isoformat()}|{row_id}".encode("ascii")).decode("ascii").rstrip("=")


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        out.append(time.perf_counter() - started)
    return out


@dataclass(slots=True)
class User:
    id: int
    email: str
    label: str
    mailboxes: list[int] | None  # None: sees every mailbox
    teams: list[int]


def _users(cur: Any) -> tuple[User, User]:
    admin_row = cur.execute("SELECT id FROM auth_user WHERE email = %s", (ADMIN_EMAIL,)).fetchone()
    if admin_row is None:
        raise SystemExit(f"{ADMIN_EMAIL} is missing: seed the database first (python bench/seed.py)")
    # The one-team agent with the most open conversations assigned, so that "Mine" is not empty.
    agent_row = cur.execute(
        "SELECT u.id, u.email, min(pt.team_id) FROM auth_user u JOIN desk_agentprofile p ON p.user_id = u.id"
        " JOIN desk_agentprofile_teams pt ON pt.agentprofile_id = p.id WHERE p.role = 'agent'"
        " GROUP BY u.id, u.email HAVING count(*) = 1"
        " ORDER BY (SELECT count(*) FROM desk_conversation c WHERE c.assignee_id = u.id"
        " AND c.status IN ('new', 'open')) DESC LIMIT 1"
    ).fetchone()
    if agent_row is None:
        raise SystemExit("no agent with one team in the database: seed it with bench/seed.py")
    teams = [int(r[0]) for r in cur.execute("SELECT id FROM desk_team ORDER BY id").fetchall()]
    mailboxes = [
        int(r[0]) for r in cur.execute("SELECT id FROM desk_mailbox WHERE team_id = %s", (agent_row[2],)).fetchall()
    ]
    return (
        User(int(admin_row[0]), ADMIN_EMAIL, "admin", None, teams),
        User(int(agent_row[0]), str(agent_row[1]), "agent", mailboxes, [int(agent_row[2])]),
    )


def deep_cursors(cur: Any, folder: Folder, user: User, depths: list[int]) -> list[tuple[int, str]]:
    """Cursors of the newest-first list at these depths (rows skipped), found once by OFFSET; (depth, cursor)."""
    where, params = folder_where(folder, user.id, user.mailboxes)
    found = []
    for depth in depths:
        row = cur.execute(
            f"SELECT last_message_at, id FROM desk_conversation WHERE {where}"
            " ORDER BY last_message_at DESC, id DESC OFFSET %s LIMIT 1",
            [*params, depth],
        ).fetchone()
        if row is not None:
            found.append((depth, newest_cursor(row[0], row[1])))
    return found


def list_pages(cur: Any, user: User, requests: int, rng: random.Random) -> tuple[list[Page], dict[str, int]]:
    """The list pages to measure, and the depth of the deep pages per folder."""
    team = f"team-{user.teams[0]}"
    plan = [
        ("", "newest"),
        ("open", "newest"),
        ("open", "waiting"),
        ("open", "priority"),
        ("unassigned", "waiting"),
        ("mine", "newest"),
        (team, "priority"),
        ("pending", "newest"),
        ("resolved", "newest"),
    ]
    pages: list[Page] = []
    for key, sort in plan:
        query = {k: v for k, v in (("folder", key), ("sort", sort)) if v and v != "newest"}
        path = "/" + (f"?{urlencode(query)}" if query else "")
        pages.append(Page(user.label, f"list {key or 'all'} {sort}", [path] * requests))
    depths: dict[str, int] = {}
    everything = folders(user.teams)
    for key in ("resolved", ""):
        where, params = folder_where(everything[key], user.id, user.mailboxes)
        total = cur.execute(f"SELECT count(*) FROM desk_conversation WHERE {where}", params).fetchone()[0]
        # Deep pages: cursors spread over the middle of the list, a different one each request.
        spread = [int(total * (0.3 + 0.5 * rng.random())) for _ in range(min(requests, 20))]
        cursors = deep_cursors(cur, everything[key], user, spread)
        if not cursors:
            continue
        depths[key] = int(statistics.median(d for d, _c in cursors))
        prefix = f"folder={key}&" if key else ""
        paths = [f"/?{prefix}cursor={cursors[i % len(cursors)][1]}" for i in range(requests)]
        pages.append(Page(user.label, f"list {key or 'all'} newest, deep (~{depths[key]:,})", paths))
    return pages, depths


def conversation_pages(cur: Any, user: User, requests: int) -> Page:
    where = "TRUE" if user.mailboxes is None else "mailbox_id = ANY(%s)"
    params = [] if user.mailboxes is None else [user.mailboxes]
    numbers = [
        int(r[0])
        for r in cur.execute(
            f"SELECT number FROM desk_conversation TABLESAMPLE SYSTEM (1) WHERE {where} LIMIT %s",
            [*params, requests],
        ).fetchall()
    ]
    if len(numbers) < requests:
        numbers = [
            int(r[0])
            for r in cur.execute(
                f"SELECT number FROM desk_conversation WHERE {where} ORDER BY random() LIMIT %s",
                [*params, requests],
            ).fetchall()
        ]
    return Page(user.label, "conversation page", [f"/c/{n}/" for n in numbers])


def measure(session: Session, page: Page, warmup: int = 3) -> None:
    for path in page.paths[:warmup]:
        session.get(path)
    worst = -1.0
    for path in page.paths:
        response = session.get(path)
        page.statuses[response.status] = page.statuses.get(response.status, 0) + 1
        page.seconds.append(response.seconds)
        if response.seconds > worst:
            worst, page.slowest_path = response.seconds, path


CPU_REPEATS = 5


def capture_queries(user_id: int, page: Page) -> list[dict[str, str]]:
    """The SQL of the slowest request of `page` (made again, in-process, with Django's test client); sets
    `page.cpu_ms` to the median CPU time of that request over CPU_REPEATS more runs."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    path = page.slowest_path or page.paths[-1]
    client.get(path)  # warm
    with CaptureQueriesContext(connection) as captured:
        client.get(path)
    # Copied now: every request clears the connection's query log (Django's request_started signal).
    queries = list(captured.captured_queries)
    cpu = []
    for _ in range(CPU_REPEATS):
        started = time.thread_time()
        client.get(path)
        cpu.append((time.thread_time() - started) * 1000)
    page.cpu_ms = statistics.median(cpu)
    return queries


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(str(row[0]) for row in cursor.fetchall())


def _pair(label: str, seconds: list[float]) -> str:
    p50, p95 = p50_p95(seconds)
    return f"{label} {p50:.1f} / {p95:.1f}"


def baselines(cur: Any, user: User, depths: dict[str, int], repeat: int) -> list[tuple[str, str, str]]:
    """(what, the app's way p50/p95, the naive way p50/p95) on the database alone."""
    rows: list[tuple[str, str, str]] = []
    everything = folders(user.teams)
    for key, depth in depths.items():
        where, params = folder_where(everything[key], user.id, user.mailboxes)
        cut = cur.execute(
            f"SELECT last_message_at, id FROM desk_conversation WHERE {where}"
            " ORDER BY last_message_at DESC, id DESC OFFSET %s LIMIT 1",
            [*params, depth],
        ).fetchone()
        if cut is None:
            continue
        keyset_sql = (
            f"SELECT * FROM desk_conversation WHERE {where} AND last_message_at <= %s"
            " AND (last_message_at < %s OR id < %s) ORDER BY last_message_at DESC, id DESC LIMIT %s"
        )
        offset_sql = (
            f"SELECT * FROM desk_conversation WHERE {where} ORDER BY last_message_at DESC, id DESC LIMIT %s OFFSET %s"
        )
        keyset_args = [*params, cut[0], cut[0], cut[1], PAGE_SIZE + 1]
        offset_args = [*params, PAGE_SIZE + 1, depth]
        keyset = timed(lambda sql=keyset_sql, a=keyset_args: cur.execute(sql, a).fetchall(), repeat)
        offset = timed(lambda sql=offset_sql, a=offset_args: cur.execute(sql, a).fetchall(), repeat)
        rows.append((f"list page {key or 'all'} at depth {depth:,}", _pair("keyset", keyset), _pair("OFFSET", offset)))
    capped_parts, plain_parts, params_all = [], [], []
    for folder in everything.values():
        if folder.team_id is not None and folder.team_id not in user.teams:
            continue
        where, params = folder_where(folder, user.id, user.mailboxes)
        capped_parts.append(
            f"(SELECT count(*) FROM (SELECT id FROM desk_conversation WHERE {where} LIMIT {COUNT_CAP}) c)"
        )
        plain_parts.append(f"(SELECT count(*) FROM desk_conversation WHERE {where})")
        params_all += params
    capped = timed(lambda: cur.execute("SELECT " + ", ".join(capped_parts), params_all).fetchall(), repeat)
    plain = timed(lambda: cur.execute("SELECT " + ", ".join(plain_parts), params_all).fetchall(), max(3, repeat // 4))
    rows.append(
        (
            f"{len(capped_parts)} folder counts",
            _pair("capped", capped),
            _pair("COUNT(*)", plain),
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest page's slowest query")
    parser.add_argument("--explain-max", type=int, default=4, help="at most this many plans (distinct queries)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    url = args.database_url
    rng = random.Random(args.seed)

    from seed import setup_django

    setup_django(url)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.cursor()
        conversations, messages = cur.execute(
            "SELECT (SELECT count(*) FROM desk_conversation), (SELECT count(*) FROM desk_message)"
        ).fetchone()
        admin, agent = _users(cur)
        pages: list[Page] = []
        all_depths: dict[str, dict[str, int]] = {}
        for user in (admin, agent):
            listed, depths = list_pages(cur, user, args.requests, rng)
            pages += listed
            pages.append(conversation_pages(cur, user, args.requests))
            all_depths[user.label] = depths

        print(
            f"load average {os.getloadavg()[0]:.1f}; "
            f"workspace: {conversations:,} conversations, {messages:,} messages; one `postdesk web` process; "
            f"{args.requests} timed requests per page, one at a time; admin {admin.email}, agent {agent.email} "
            f"(team {agent.teams[0]}, mailboxes {agent.mailboxes})",
            flush=True,
        )
        with postdesk_processes("web", 1, url) as ports:
            sessions = {}
            for user in (admin, agent):
                session = Session("127.0.0.1", ports[0])
                session.login(user.email)
                sessions[user.label] = session
            for page in pages:
                measure(sessions[page.who], page)
        users = {"admin": admin, "agent": agent}
        for page in pages:
            queries = capture_queries(users[page.who].id, page)
            page.queries = len(queries)
            page.db_ms = sum(float(q["time"]) for q in queries) * 1000
            slowest = max(queries, key=lambda q: float(q["time"]), default=None)
            if slowest is not None:
                page.slowest_sql, page.slowest_sql_ms = slowest["sql"], float(slowest["time"]) * 1000

        header = (
            f"{'user':<6} {'page':<42} {'p50 ms':>7} {'p95 ms':>7} {'queries':>8} {'db ms':>7} {'slowest q':>10}"
            f" {'cpu ms':>7}"
        )
        print(f"\n{header}  target")
        for page in pages:
            p50, p95 = p50_p95(page.seconds)
            bad = {s: n for s, n in page.statuses.items() if s != 200}
            verdict = "ok" if p95 < TARGET_MS else "OVER"
            if bad:
                verdict += f"  HTTP {bad}"
            print(
                f"{page.who:<6} {page.label:<42} {p50:>7.1f} {p95:>7.1f} {page.queries:>8} {page.db_ms:>7.1f} "
                f"{page.slowest_sql_ms:>10.1f} {page.cpu_ms:>7.1f}  {verdict}"
            )
        print(
            "(queries, db ms, slowest q: the slowest request of that page made again in-process, Django's captured SQL;"
            f" cpu ms: that request's CPU time in-process, median of {CPU_REPEATS})"
        )
        print(f"load average {os.getloadavg()[0]:.1f} after the pages")

        print(f"\nbaseline on the database alone, ms p50 / p95 ({args.requests} runs; COUNT(*) fewer)")
        for user in (admin, agent):
            for what, ours, naive in baselines(cur, user, all_depths[user.label], args.requests):
                print(f"{user.label:<6} {what:<44} {ours:>26} {naive:>28}")

        over = sorted((p for p in pages if p50_p95(p.seconds)[1] >= TARGET_MS), key=lambda p: -p.slowest_sql_ms)
        if args.explain and not over:
            over = [max(pages, key=lambda p: p50_p95(p.seconds)[1])]
        shown: set[str] = set()
        for page in over:
            # One plan per query shape: the same query with other values is the same problem.
            shape = re.sub(r"'[^']*'|\b\d+\b", "?", page.slowest_sql)
            if shape in shown or len(shown) >= args.explain_max:
                continue
            shown.add(shape)
            print(f"\nEXPLAIN ANALYZE, slowest query of '{page.who} {page.label}' ({page.slowest_sql_ms:.1f} ms):")
            print(page.slowest_sql)
            print(explain(page.slowest_sql))
    return 0


if __name__ == "__main__":
    sys.exit(main())
