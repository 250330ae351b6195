"""Many agents at once: simulated agents working through real `postdesk web` processes restricted to two cores.

    python bench/seed.py --conversations 1000000           # once; see that script
    python bench/load.py [--agents 100] [--duration 120] [--processes 2] [--cores 0,1] [--think 2.0]

Each simulated agent is a thread with its own session (cookies, keep-alive connection), signed in as
one of the seeded agents through the login form (spread over five seconds; "login" is that burst).
Once all are in, the measured period starts; each works in a loop, pausing a random "think time"
(exponential, mean --think seconds) between steps: open a folder list (mine, unassigned, its
team, all open; newest, oldest waiting or priority), open a conversation from that list, and on it add
an internal note, take it, change its status or reply. The write forms and their CSRF tokens are read
from the conversation page, as a browser would submit them (no htmx header: the answer is a redirect).

Replies are written to the outbox with POSTDESK_UNDO_SEND_SECONDS set to a day and no worker running,
so nothing is sent. The writes stay in the bench database (seed it again for a clean run).

Each web process borrows its PostgreSQL connections from a pool of POSTDESK_DB_POOL_SIZE (--pool-size;
the app's default when not given); the run prints the most connections the bench database had open at
once (sampled every half second), which without a pool grew with the requests in flight until PostgreSQL
refused clients.

Prints p50/p95 per action, throughput and errors (5xx, unexpected 4xx, connection failures); a 409
(the reply was held because someone else acted since the page was read) is counted apart, it is the
collision check doing its job. The baseline, measured in the same run, is the same pages for a single
agent on an idle server: what the load adds is the difference. The simulated agents run in this
process on the same two cores as the server (the machine has no others), so the figures include the
client's own share of CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed import DEFAULT_DATABASE_URL
from workspace import Session, p50_p95, postdesk_processes, read_forms, server_errors

LINK = re.compile(r'href="/c/(\d+)/"')
FOLDERS = ("mine", "unassigned", "team", "open")
SORTS = ("newest", "waiting", "priority")
# What an agent does next, with weights: mostly reading, some writing.
STEPS = (("list", 30), ("conversation", 35), ("note", 10), ("take", 7), ("status", 8), ("reply", 10))
NOTE_TEXTS = ("Checked the order history, looks fine.", "Asked the warehouse.", "Customer called too, same issue.")
REPLY_TEXTS = ("Thank you, we are looking into it.", "Your refund is on its way.", "Could you send a photo, please?")


@dataclass(slots=True)
class Tally:
    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    held: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, action: str, seconds: float) -> None:
        with self.lock:
            self.seconds[action].append(seconds)

    def error(self, action: str, what: str) -> None:
        with self.lock:
            self.errors[action][what] += 1


@dataclass(slots=True)
class Agent:
    email: str
    team: int


def seeded_agents(database_url: str) -> list[Agent]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT u.email, min(pt.team_id) FROM auth_user u JOIN desk_agentprofile p ON p.user_id = u.id"
            " JOIN desk_agentprofile_teams pt ON pt.agentprofile_id = p.id"
            " WHERE p.role IN ('agent', 'supervisor') GROUP BY u.email ORDER BY u.email"
        ).fetchall()
    if not rows:
        raise SystemExit("no seeded agents: run bench/seed.py first")
    return [Agent(str(email), int(team)) for email, team in rows]


class Worker:
    """One simulated agent."""

    def __init__(self, agent: Agent, port: int, tally: Tally, rng: random.Random, think: float) -> None:
        self.agent, self.tally, self.rng, self.think = agent, tally, rng, think
        self.session = Session("127.0.0.1", port)
        self.numbers: list[int] = []  # conversations in the last list it opened
        self.page: str = ""  # the last conversation page
        self.page_number = 0

    def timed(self, action: str, method: str, path: str, form: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        try:
            response = self.session.request(method, path, form)
        except OSError as exc:
            self.tally.error(action, type(exc).__name__)
            self.session.close()
            return None
        if response.status in ok:
            self.tally.ok(action, response.seconds)
            return response
        if response.status == 409:
            with self.tally.lock:
                self.tally.held[action] += 1
            return response
        self.tally.error(action, f"HTTP {response.status}")
        return None

    def login(self) -> bool:
        started = time.perf_counter()
        try:
            self.session.login(self.agent.email)
        except (OSError, RuntimeError) as exc:
            self.tally.error("login", str(exc)[:60])
            return False
        self.tally.ok("login", time.perf_counter() - started)
        return True

    def open_list(self) -> None:
        folder = self.rng.choice(FOLDERS)
        if folder == "team":
            folder = f"team-{self.agent.team}"
        sort = self.rng.choice(SORTS)
        response = self.timed("list", "GET", f"/?folder={folder}&sort={sort}")
        if response is not None:
            found = [int(n) for n in LINK.findall(response.body)]
            if found:
                self.numbers = found

    def open_conversation(self) -> bool:
        if not self.numbers:
            self.open_list()
        if not self.numbers:
            return False
        number = self.rng.choice(self.numbers)
        response = self.timed("conversation", "GET", f"/c/{number}/")
        if response is None:
            return False
        self.page, self.page_number = response.body, number
        return True

    def post_form(self, action: str, suffix: str, fill: dict[str, str], pick: bool = False) -> None:
        if not self.page and not self.open_conversation():
            return
        forms = [
            f
            for f in read_forms(self.page)
            if f.method == "post" and f.action.split("?")[0].rstrip("/").endswith(suffix)
        ]
        if not forms:
            # Not offered on this page (e.g. "take" on one's own conversation): open another one next time.
            self.page = ""
            return
        form = self.rng.choice(forms) if pick else forms[0]
        fields = {**form.fields, **fill}
        for name, options in form.selects.items():
            fields.setdefault(name, next((o for o in options if o), ""))
        self.timed(action, "POST", form.action, fields, ok=(200, 302, 303))
        self.page = ""  # the page is stale now: its seen_event_id and forms are older than our write

    def step(self) -> None:
        choice = self.rng.choices([s for s, _w in STEPS], weights=[w for _s, w in STEPS])[0]
        if choice == "list":
            self.open_list()
        elif choice == "conversation":
            self.open_conversation()
        elif choice == "note":
            self.post_form("note", "/note", {"text": self.rng.choice(NOTE_TEXTS)})
        elif choice == "take":
            self.post_form("take", "/take", {})
        elif choice == "status":
            self.post_form("status", "/status", {}, pick=True)
        elif choice == "reply":
            self.post_form("reply", "/reply", {"text": self.rng.choice(REPLY_TEXTS)})

    def run(self, signed_in: threading.Barrier, start: threading.Event, until: list[float]) -> None:
        # Agents sign in spread over the first seconds, as a shift starting, not all in the same millisecond;
        # the measured work starts when everyone is in, so the sign-in burst (argon2) is not mixed into it.
        time.sleep(self.rng.random() * 5.0)
        ok = self.login()
        signed_in.wait()
        start.wait()
        if not ok:
            return
        # Each agent starts after its own first pause, so the first lists do not all arrive at once.
        time.sleep(self.rng.random() * self.think)
        self.open_list()
        while time.monotonic() < until[0]:
            time.sleep(self.rng.expovariate(1 / self.think) if self.think > 0 else 0)
            if time.monotonic() >= until[0]:
                break
            self.step()
        self.session.close()


def baseline(port: int, agent: Agent, repeat: int, rng: random.Random) -> dict[str, tuple[float, float]]:
    """The same reads for one agent alone on the idle server: p50/p95 of a list and a conversation page."""
    tally = Tally()
    worker = Worker(agent, port, tally, rng, think=0)
    worker.login()
    for _ in range(repeat):
        worker.open_list()
        worker.open_conversation()
    worker.session.close()
    return {action: p50_p95(seconds) for action, seconds in tally.seconds.items() if action != "login"}


class ConnectionSampler:
    """Counts the bench database's open connections every half second in a thread; `peak` is the most seen."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                self.peak = max(self.peak, int(row.fetchone()[0]))  # type: ignore[index]
                self._stop.wait(0.5)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--agents", type=int, default=100, help="simulated agents working at once")
    parser.add_argument("--duration", type=float, default=120, help="seconds of work after the start")
    parser.add_argument("--processes", type=int, default=2, help="`postdesk web` processes")
    parser.add_argument("--cores", default="0,1", help="CPU list for the web processes (taskset -c)")
    parser.add_argument("--think", type=float, default=2.0, help="mean pause between an agent's steps, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool-size", type=int, help="POSTDESK_DB_POOL_SIZE of each web process (0: no pool)")
    args = parser.parse_args(argv)
    pool_env = {} if args.pool_size is None else {"POSTDESK_DB_POOL_SIZE": str(args.pool_size)}
    rng = random.Random(args.seed)
    agents = seeded_agents(args.database_url)
    load_before = os.getloadavg()
    log_dir = Path(tempfile.mkdtemp(prefix="postdesk-bench-load-logs-"))
    with (
        postdesk_processes(
            "web",
            args.processes,
            args.database_url,
            cores=args.cores,
            log_dir=log_dir,
            POSTDESK_UNDO_SEND_SECONDS="86400",
            **pool_env,
        ) as ports,
        ConnectionSampler(args.database_url) as connections,
    ):
        alone = baseline(ports[0], agents[0], 20, random.Random(args.seed))
        tally = Tally()
        workers = [
            Worker(agents[i % len(agents)], ports[i % len(ports)], tally, random.Random(rng.random()), args.think)
            for i in range(args.agents)
        ]
        signed_in, start, until = threading.Barrier(len(workers) + 1), threading.Event(), [0.0]
        threads = [threading.Thread(target=w.run, args=(signed_in, start, until), daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        signed_in.wait(timeout=600)
        started = time.monotonic()
        until[0] = started + args.duration
        start.set()
        for thread in threads:
            thread.join(timeout=args.duration + 120)
        elapsed = time.monotonic() - started
    load_after = os.getloadavg()

    total = sum(len(s) for action, s in tally.seconds.items() if action != "login")
    print(
        f"load: {args.agents} agents ({len(agents)} seeded accounts) for {args.duration:.0f} s, think time "
        f"{args.think} s; {args.processes} x `postdesk web` on cores {args.cores}; "
        f"after signing in, {total:,} requests answered in {elapsed:.0f} s = {total / elapsed:.1f}/s; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(f"\n{'action':<14}{'count':>8}{'p50 ms':>9}{'p95 ms':>9}{'alone p50':>11}{'alone p95':>11}  held  errors")
    for action in ("login", "list", "conversation", "note", "take", "status", "reply"):
        seconds = tally.seconds.get(action, [])
        errors = dict(tally.errors.get(action, {}))
        p50, p95 = p50_p95(seconds) if seconds else (float("nan"), float("nan"))
        a50, a95 = alone.get(action, (float("nan"), float("nan")))
        print(
            f"{action:<14}{len(seconds):>8}{p50:>9.1f}{p95:>9.1f}{a50:>11.1f}{a95:>11.1f}"
            f"{tally.held.get(action, 0):>6}  {errors or '-'}"
        )
    print("alone: the same list and conversation pages for one agent on the idle server, in the same run")
    print("held: replies answered 409 because another agent acted on the conversation since it was read")
    pool = "the default" if args.pool_size is None else str(args.pool_size)
    print(
        f"PostgreSQL connections to the bench database: at most {connections.peak} at once "
        f"(pool size {pool} per web process, {args.processes} processes; this script's own connections included)"
    )
    errors = server_errors(log_dir)
    print(f"\nserver logs: {log_dir}" + ("".join(f"\n{line}" for line in errors) if errors else " (no errors)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
