"""Helpers for tests that start real `postdesk` processes: free ports, environments, polling."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

POSTDESK = [sys.executable, "-m", "postdesk.cli"]


def postdesk(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run one `postdesk` command as its own process, as an operator's script would."""
    return subprocess.run([*POSTDESK, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def status(env: dict[str, str]) -> dict[str, object]:
    """`postdesk status --json` of that environment's installation."""
    done = postdesk(env, "status", "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postdesk_env(data_dir: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    """Environment for a `postdesk` subprocess: its own data dir and database, nothing inherited by accident."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "POSTDESK_DATA_DIR"}}
    env["POSTDESK_DATA_DIR"] = str(data_dir)
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def stop(server: subprocess.Popen[str], timeout: float = 60) -> str:
    """SIGTERM, as an operator stops a server; returns its output. Fails if it does not stop in time."""
    server.send_signal(signal.SIGTERM)
    try:
        output, _ = server.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.communicate()
        raise AssertionError(f"{' '.join(map(str, server.args))} did not stop on SIGTERM") from None
    return output


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Poll until `predicate` returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def http_ready(url: str) -> bool:
    """Postdesk's web server at `url` answers its login page."""
    try:
        with urllib.request.urlopen(f"{url}/login/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def smtp_ready(port: int) -> bool:
    """An SMTP server on loopback `port` greets with 220."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            return sock.recv(3) == b"220"
    except OSError:
        return False
