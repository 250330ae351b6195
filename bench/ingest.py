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


@dataclass
class Result:
    backend: str
    workers: int
    count: int
    seconds: float
    p50_ms: float
    p95_ms: float
    peak_rss_mb: float
    replies: int
    threaded: int
    merged_threads: int
    failed: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


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


def run_one(backend: str, workers: int, mail_dir: Path, manifest: list[dict[str, object]], work: Path) -> Result:
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
        subprocess.run([*POSTDESK, "mailbox", "add", MAILBOX], env=env, check=True, stdout=subprocess.DEVNULL)
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
            time.sleep(1.5)
            feeder = subprocess.run(
                [*POSTDESK, "ingest", "--queue-only", "--no-progress", "--mailbox", MAILBOX, str(mail_dir)],
                env=env,
                capture_output=True,
                text=True,
            )
            if feeder.returncode != 0:
                print(feeder.stdout, feeder.stderr, file=sys.stderr)
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                left = _rows(
                    backend,
                    data_dir,
                    database_url,
                    "SELECT COUNT(*) FROM desk_receivedmail WHERE state = 'waiting'",
                )[0][0]
                if left == 0:
                    break
                time.sleep(0.5)
            rss = max(_peak_rss_mb(p.pid) for p in procs)
        finally:
            for p in procs:
                p.send_signal(signal.SIGINT)
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        times = _rows(
            backend,
            data_dir,
            database_url,
            "SELECT received_at, processed_at FROM desk_receivedmail WHERE state = 'processed'",
        )
        failed = _rows(
            backend, data_dir, database_url, "SELECT COUNT(*) FROM desk_receivedmail WHERE state = 'failed'"
        )[0][0]
        latencies = sorted((_when(done) - _when(got)) * 1000 for got, done in times)
        first = min(_when(got) for got, _ in times)
        last = max(_when(done) for _, done in times)
        conversation_of = dict(
            _rows(backend, data_dir, database_url, "SELECT message_id, conversation_id FROM desk_message")
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
        merged = sum(1 for roots in owners.values() if len(roots) > 1)
        return Result(
            backend=backend,
            workers=workers,
            count=len(times),
            seconds=last - first,
            p50_ms=statistics.median(latencies),
            p95_ms=latencies[int(len(latencies) * 0.95) - 1],
            peak_rss_mb=rss,
            replies=replies,
            threaded=threaded,
            merged_threads=merged,
            failed=int(str(failed)),
        )
    finally:
        if database_url:
            _pg_admin(f"DROP DATABASE IF EXISTS {database_url.rsplit('/', 1)[1]} WITH (FORCE)")


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
    header = (
        f"{'backend':<9} {'workers':>7} {'msg/s':>8} {'per worker':>10} {'vs stdlib':>9} {'p50 ms':>9} "
        f"{'p95 ms':>9} {'peak RSS':>9} {'threaded':>13} {'merged':>6} {'failed':>6}"
    )
    print(header)
    for backend in args.backends.split(","):
        if backend == "postgres" and not _pg_available():
            print(f"!!! PostgreSQL not reachable at {PG_SERVER}: postgres rows NOT measured")
            continue
        for workers in (int(w) for w in args.workers.split(",")):
            r = run_one(backend, workers, mail_dir, manifest, work)
            per_worker = r.rate / workers
            print(
                f"{r.backend:<9} {r.workers:>7} {r.rate:8.1f} {per_worker:10.1f} {per_worker / raw_rate:9.2f} "
                f"{r.p50_ms:9.0f} {r.p95_ms:9.0f} {r.peak_rss_mb:7.0f}MB {r.threaded:>6}/{r.replies:<6} "
                f"{r.merged_threads:>6} {r.failed:>6}",
                flush=True,
            )
    print("latency is accept → processed under a burst of all mails at once (queueing included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
