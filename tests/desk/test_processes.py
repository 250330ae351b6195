"""The real processes: `postdesk run` in one process, and workers taking jobs from Redis."""

from __future__ import annotations

import signal
import smtplib
import socket
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest

from factories import make_raw_mail
from processes import POSTDESK, free_port, postdesk, postdesk_env, status, stop, wait_for

pytestmark = pytest.mark.slow


def test_postdesk_run_is_one_process_with_web_smtp_and_jobs(tmp_path: Path, fresh_database_url: str | None) -> None:
    http_port, smtp_port = free_port(), free_port()
    env = postdesk_env(
        tmp_path / "data", fresh_database_url, POSTDESK_HTTP_PORT=str(http_port), POSTDESK_SMTP_PORT=str(smtp_port)
    )
    assert postdesk(env, "migrate", "--quiet").returncode == 0
    demo = postdesk(env, "demo")
    assert "support@example.com" in demo.stdout and "admin@example.com" in demo.stdout
    server = subprocess.Popen([*POSTDESK, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = wait_for(lambda: _port_open(http_port) and _port_open(smtp_port), 60, "web and SMTP ports")
        assert banner
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            client.sendmail("alice@customer.test", ["support@example.com"], make_raw_mail(subject="Live from SMTP"))
        wait_for(lambda: status(env)["conversations"] == 1, 30, "the mail to become a conversation")
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/v1/schema/", timeout=30) as response:
            assert response.status == 200
    finally:
        output = stop(server)
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{http_port}/" in output
    assert f"127.0.0.1:{smtp_port}" in output
    assert "support@example.com" in output
    assert "stopped" in output


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _redis_or_fail() -> str:
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:
        pytest.fail(f"!!! Redis is not reachable at {url} ({exc}); start it (make services) — this test needs it")
    return url


def test_workers_take_jobs_from_redis(tmp_path: Path, fresh_database_url: str | None) -> None:
    import redis

    redis_url = _redis_or_fail()
    queue = f"postdesk-test-{uuid.uuid4().hex[:8]}"
    env = postdesk_env(tmp_path / "data", fresh_database_url, REDIS_URL=redis_url, POSTDESK_QUEUE_NAME=queue)
    assert postdesk(env, "migrate", "--quiet").returncode == 0
    assert postdesk(env, "mailbox", "add", "support@example.com").returncode == 0
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    for i in range(20):
        (mail_dir / f"{i:02}.eml").write_bytes(make_raw_mail(subject=f"question {i}"))
    queued = postdesk(env, "ingest", "--queue-only", "--mailbox", "support@example.com", str(mail_dir))
    assert queued.returncode == 0, queued.stderr
    assert status(env)["received_mail"] == {"waiting": 20, "processed": 0, "failed": 0}
    workers = [
        subprocess.Popen(
            [*POSTDESK, "worker", "--workers", "1", *(["-n"] if i else [])],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    try:
        wait_for(lambda: status(env)["conversations"] == 20, 60, "two workers to process 20 mails")
        assert status(env)["received_mail"] == {"waiting": 0, "processed": 20, "failed": 0}
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{queue}*"):
            client.delete(key)
