"""Ingest benchmark: generated support mail through the whole path, accept → processed conversation.

Prints, for SQLite and PostgreSQL with 1 and 2 worker processes: messages/s, p50/p95
accept-to-processed latency, peak RSS of a worker, and how many of the generator's replies were
threaded into their thread's conversation; and, in the same run, the raw stdlib parse rate
(`email` with `policy.default`, one core) so the figures compare on any machine.

    python bench/ingest.py [--count 5000] [--seed 1] [--backends sqlite,postgres] [--workers 1,2]

Figures, not pass/fail. Needs ../shared/tools/gen_mail.py; PostgreSQL on 127.0.0.1:5432 for the
PostgreSQL rows (skipped loudly when it is down).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import shutil
import signal
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GEN_MAIL = REPO.parent / "shared" / "tools" / "gen_mail.py"
POSTDESK = [sys.executable, "-m", "postdesk.cli"]
PG_SERVER = os.environ.get("BENCH_PG_SERVER", f"postgres://{os.environ.get('USER', 'root')}@127.0.0.1:5432")
MAILBOX = "support@example.com"
LIVE_MAILBOX = "live@example.com"
LIVE_COUNT = 1000  # mails sent over SMTP for the latency figures


@dataclass
class Result:
    backend: str
    workers: int
    count: int
    accept_rate: float  # durable accepts per second (import path, no workers running)
    process_rate: float  # processed per second by the workers from a full queue
    live_rate: float  # mail sent per second over SMTP while the workers run (half the process rate)
    p50_ms: float  # SMTP accept → processed latency at that rate
    p95_ms: float
    peak_rss_mb: float
    replies: int
    threaded: int
    merged_threads: int
    failed: int


def generate(count: int, seed: int, work: Path) -> tuple[Path, list[dict[str, object]]]:
    out = work / f"mail-{count}-{seed}"
    manifest = work / f"manifest-{count}-{seed}.jsonl"
    if not manifest.exists():
        subprocess.run(
            [sys.executable, str(GEN_MAIL), str(out), str(count), str(seed), "--manifest", str(manifest)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out, rows


def stdlib_parse_rate(files: list[Path]) -> float:
    """Full stdlib parse with policy.default, every leaf's content decoded, on one core."""
    blobs = [f.read_bytes() for f in files]
    start = time.perf_counter()
    for raw in blobs:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for part in msg.walk():
            if not part.is_multipart():
                try:
                    part.get_content()  # type: ignore[attr-defined]
                except Exception:
                    continue
    return len(blobs) / (time.perf_counter() - start)


def postdesk_parse_rate(files: list[Path]) -> float:
    sys.path.insert(0, str(REPO / "src"))
    from postdesk.mail.analysis import analyse

    blobs = [f.read_bytes() for f in files]
    start = time.perf_counter()
    for raw in blobs:
        analyse(raw)
    return len(blobs) / (time.perf_counter() - start)


def _env(data_dir: Path, database_url: str | None, queue: str, redis: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(POSTDESK_DATA_DIR=str(data_dir), POSTDESK_QUEUE_NAME=queue, PYTHONPATH=str(REPO / "src"))
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis:
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    return env


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3):
            return True
    except Exception:
        return False


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _rows(backend: str, data_dir: Path, database_url: str | None, sql: str) -> list[tuple[object, ...]]:
    if backend == "sqlite":
        with sqlite3.connect(data_dir / "postdesk.sqlite3") as conn:
            return list(conn.execute(sql))
    import psycopg

    assert database_url
    with psycopg.connect(database_url) as conn:
        return list(conn.execute(sql))  # type: ignore[arg-type]


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _when(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    text = str(value).replace(" ", "T")
    return datetime.fromisoformat(text).timestamp()


def _wait_until_processed(backend: str, data_dir: Path, database_url: str | None, mailbox: str) -> None:
    deadline = time.monotonic() + 1800
    sql = (
        "SELECT COUNT(*) FROM desk_receivedmail r JOIN desk_mailbox m ON m.id = r.mailbox_id "
        f"WHERE r.state = 'waiting' AND m.address = '{mailbox}'"
    )
    while time.monotonic() < deadline:
        if _rows(backend, data_dir, database_url, sql)[0][0] == 0:
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {mailbox} to be processed")


def _ingest(env: dict[str, str], mailbox: str, mail_dir: Path) -> float:
    start = time.perf_counter()
    feeder = subprocess.run(
        [*POSTDESK, "ingest", "--queue-only", "--no-progress", "--mailbox", mailbox, str(mail_dir)],
        env=env,
        capture_output=True,
        text=True,
    )
    if feeder.returncode != 0:
        print(feeder.stdout, feeder.stderr, file=sys.stderr)
    return time.perf_counter() - start


def _times(backend: str, data_dir: Path, database_url: str | None, mailbox: str) -> list[tuple[float, float]]:
    rows = _rows(
        backend,
        data_dir,
        database_url,
        "SELECT r.received_at, r.processed_at FROM desk_receivedmail r JOIN desk_mailbox m ON m.id = r.mailbox_id "
        f"WHERE r.state = 'processed' AND m.address = '{mailbox}'",
    )
    return [(_when(got), _when(done)) for got, done in rows]


def _send_paced(env: dict[str, str], files: list[Path], rate: float) -> None:
    """Send `files` to the live mailbox through a real `postdesk smtpd`, `rate` mails per second."""
    port = _free_port()
    smtpd = subprocess.Popen(
        [*POSTDESK, "smtpd"],
        env={**env, "POSTDESK_SMTP_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        start = time.monotonic()
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            for index, path in enumerate(files):
                pause = start + index / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                client.sendmail("customer@example.net", [LIVE_MAILBOX], path.read_bytes())
    finally:
        smtpd.send_signal(signal.SIGTERM)
        smtpd.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_one(backend: str, workers: int, mail_dir: Path, manifest: list[dict[str, object]], work: Path) -> Result:
    """Two phases on one database: a full queue drained by the workers (throughput), then mail arriving over
    SMTP while the workers run (latency), into a second mailbox so it is processed afresh."""
    data_dir = work / f"data-{backend}-{workers}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    database_url = None
    if backend == "postgres":
        name = f"postdesk_bench_{uuid.uuid4().hex[:8]}"
        _pg_admin(f"CREATE DATABASE {name}")
        database_url = f"{PG_SERVER}/{name}"
    env = _env(data_dir, database_url, queue, redis=backend == "postgres")
    try:
        subprocess.run([*POSTDESK, "migrate", "--quiet"], env=env, check=True)
        for address in (MAILBOX, LIVE_MAILBOX):
            subprocess.run([*POSTDESK, "mailbox", "add", address], env=env, check=True, stdout=subprocess.DEVNULL)
        accept_seconds = _ingest(env, MAILBOX, mail_dir)
        procs = [
            subprocess.Popen(
                [*POSTDESK, "worker", "--workers", "1", *([] if i == 0 else ["-n"])],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(workers)
        ]
        try:
            _wait_until_processed(backend, data_dir, database_url, MAILBOX)
            batch = _times(backend, data_dir, database_url, MAILBOX)
            process_rate = len(batch) / (max(done for _, done in batch) - min(done for _, done in batch))
            live_rate = process_rate / 2
            _send_paced(env, sorted(mail_dir.glob("*.eml"))[:LIVE_COUNT], live_rate)
            _wait_until_processed(backend, data_dir, database_url, LIVE_MAILBOX)
            rss = max(_peak_rss_mb(p.pid) for p in procs)
        finally:
            for p in procs:
                p.send_signal(signal.SIGINT)
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        live = _times(backend, data_dir, database_url, LIVE_MAILBOX)
        failed = _rows(backend, data_dir, database_url, "SELECT COUNT(*) FROM desk_receivedmail WHERE state = 'failed'")
        latencies = sorted((done - got) * 1000 for got, done in live)
        replies, threaded, merged = _threading(backend, data_dir, database_url, manifest)
        return Result(
            backend=backend,
            workers=workers,
            count=len(batch),
            accept_rate=len(manifest) / accept_seconds,
            process_rate=process_rate,
            live_rate=live_rate,
            p50_ms=statistics.median(latencies),
            p95_ms=latencies[int(len(latencies) * 0.95) - 1],
            peak_rss_mb=rss,
            replies=replies,
            threaded=threaded,
            merged_threads=merged,
            failed=int(str(failed[0][0])),
        )
    finally:
        if database_url:
            _pg_admin(f"DROP DATABASE IF EXISTS {database_url.rsplit('/', 1)[1]} WITH (FORCE)")


def _threading(
    backend: str, data_dir: Path, database_url: str | None, manifest: list[dict[str, object]]
) -> tuple[int, int, int]:
    """(replies, replies in their thread's conversation, conversations holding two or more threads)."""
    conversation_of = dict(
        _rows(
            backend,
            data_dir,
            database_url,
            "SELECT g.message_id, g.conversation_id FROM desk_message g JOIN desk_mailbox m ON m.id = g.mailbox_id "
            f"WHERE m.address = '{MAILBOX}'",
        )
    )
    replies = threaded = 0
    thread_conversations: dict[str, set[object]] = {}
    for row in manifest:
        message_id = str(row["message_id"]).strip("<>")
        root = str(row["thread"]).strip("<>")
        conversation = conversation_of.get(message_id)
        thread_conversations.setdefault(root, set()).add(conversation)
        if row["reply"]:
            replies += 1
            if conversation is not None and conversation == conversation_of.get(root):
                threaded += 1
    owners: dict[object, set[str]] = {}
    for root, conversations in thread_conversations.items():
        for conversation in conversations:
            owners.setdefault(conversation, set()).add(root)
    return replies, threaded, sum(1 for roots in owners.values() if len(roots) > 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--work-dir", default="", help="keep generated mail here between runs")
    args = parser.parse_args()
    if not GEN_MAIL.exists():
        print(f"!!! {GEN_MAIL} not found: cannot generate the benchmark mail", file=sys.stderr)
        return 2
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="postdesk-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    mail_dir, manifest = generate(args.count, args.seed, work)
    files = sorted(mail_dir.glob("*.eml"))
    sample = files[: min(len(files), 1500)]
    raw_rate = stdlib_parse_rate(sample)
    ours_rate = postdesk_parse_rate(sample)
    print(f"mail: {len(files)} generated (seed {args.seed}), {sum(1 for r in manifest if r['reply'])} replies")
    print(f"baseline: stdlib policy.default full parse   {raw_rate:8.1f} msg/s (one core)")
    print(
        f"          postdesk analyse (parse+automated+reply split) {ours_rate:8.1f} msg/s  "
        f"= {ours_rate / raw_rate:.2f}x stdlib"
    )
    print(
        f"{'backend':<9} {'workers':>7} {'accept/s':>9} {'process/s':>9} {'per worker':>10} {'vs stdlib':>9} "
        f"{'live/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'peak RSS':>9} {'threaded':>11} {'merged':>6} {'failed':>6}"
    )
    for backend in args.backends.split(","):
        if backend == "postgres" and not _pg_available():
            print(f"!!! PostgreSQL not reachable at {PG_SERVER}: postgres rows NOT measured")
            continue
        for workers in (int(w) for w in args.workers.split(",")):
            r = run_one(backend, workers, mail_dir, manifest, work)
            per_worker = r.process_rate / workers
            print(
                f"{r.backend:<9} {r.workers:>7} {r.accept_rate:9.1f} {r.process_rate:9.1f} {per_worker:10.1f} "
                f"{per_worker / raw_rate:9.2f} {r.live_rate:7.1f} {r.p50_ms:7.0f} {r.p95_ms:7.0f} "
                f"{r.peak_rss_mb:7.0f}MB {r.threaded:>5}/{r.replies:<5} {r.merged_threads:>6} {r.failed:>6}",
                flush=True,
            )
    print("accept/s: durable accepts (fsync + commit) by `postdesk ingest`, no workers running")
    print("process/s: workers draining the full queue; vs stdlib = per worker / stdlib parse rate")
    print(
        f"live/s, p50/p95: {LIVE_COUNT} mails sent over SMTP to `postdesk smtpd` at half the process rate; "
        "latency = SMTP accept → processed"
    )
    print("jobs: huey on SQLite for the sqlite rows, huey on Redis for the postgres rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
