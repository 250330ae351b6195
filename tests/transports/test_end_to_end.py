"""The whole way in, through the real entry points: a scripted install, `postdesk run`, mail by IMAP
and by SMTP, read back through the API with a token, and the health an operator sees."""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import urllib.request
from pathlib import Path

import pytest
from dovecot import Dovecot

from factories import make_raw_mail
from processes import POSTDESK, free_port, postdesk, postdesk_env, status, stop, wait_for

pytestmark = pytest.mark.slow

ADDRESS = "help@acme.test"
PASSWORD = "imap-Secret-42"


def add_imap_mailbox(env: dict[str, str], dovecot: Dovecot, *extra: str) -> subprocess.CompletedProcess[str]:
    """`postdesk mailbox add` for ADDRESS on the test Dovecot, password from $IMAP_PW."""
    return postdesk(
        env, "mailbox", "add", ADDRESS, *extra, "--imap-host", dovecot.host, "--imap-port", str(dovecot.port),
        "--imap-user", ADDRESS, "--imap-password-env", "IMAP_PW", "--imap-no-ssl",
    )  # fmt: skip


def test_mail_by_imap_and_smtp_reaches_the_api_of_a_scripted_install(
    tmp_path: Path, dovecot: Dovecot, fresh_database_url: str | None
) -> None:
    http_port, smtp_port = free_port(), free_port()
    env = postdesk_env(
        tmp_path / "data",
        fresh_database_url,
        POSTDESK_HTTP_PORT=str(http_port),
        POSTDESK_SMTP_PORT=str(smtp_port),
        IMAP_PW=PASSWORD,
    )
    dovecot.add_user(ADDRESS, PASSWORD)
    dovecot.deliver(ADDRESS, make_raw_mail(subject="Waiting in IMAP before we started", to=ADDRESS))

    assert postdesk(env, "migrate", "--quiet").returncode == 0
    added = add_imap_mailbox(env, dovecot, "--team", "Support")
    assert added.returncode == 0, added.stderr
    check = postdesk(env, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert postdesk(env, "admin", "add", "boss@acme.test", "--password", "x").returncode == 0
    token = postdesk(env, "token", "boss@acme.test").stdout.strip()

    server = subprocess.Popen([*POSTDESK, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: status(env)["conversations"] == 1, 60, "the IMAP mail to become a conversation")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            client.sendmail("bob@customer.test", [ADDRESS], make_raw_mail(subject="Sent by SMTP", to=ADDRESS))
        dovecot.deliver(ADDRESS, make_raw_mail(subject="Delivered while we run", to=ADDRESS))
        wait_for(lambda: status(env)["conversations"] == 3, 60, "SMTP and live IMAP mail")

        request = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/api/v1/conversations/", headers={"Authorization": f"Token {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            listed = json.loads(response.read())
        assert {c["subject"] for c in listed["results"]} == {
            "Waiting in IMAP before we started",
            "Sent by SMTP",
            "Delivered while we run",
        }
        assert dovecot.status(ADDRESS)["unseen"] == 0, "fetched mail is marked seen on the server"
        health = status(env)["mailboxes"]
        assert isinstance(health, list) and health[0]["last_fetch_at"] and not health[0]["last_error"]
    finally:
        output = stop(server)
    assert server.returncode == 0, output


def test_a_wrong_imap_password_shows_in_check_and_status(
    tmp_path: Path, dovecot: Dovecot, fresh_database_url: str | None
) -> None:
    env = postdesk_env(tmp_path / "data", fresh_database_url, IMAP_PW="not-the-password")
    dovecot.add_user(ADDRESS, PASSWORD)
    assert postdesk(env, "migrate", "--quiet").returncode == 0
    assert add_imap_mailbox(env, dovecot).returncode == 0
    check = postdesk(env, "check")
    assert check.returncode == 1
    assert f"{ADDRESS}: login failed" in check.stdout
    assert "not-the-password" not in check.stdout + check.stderr
    fetch = subprocess.Popen([*POSTDESK, "fetch"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: status(env)["mailboxes"][0]["last_error"], 60, "the fetcher to record the error")  # type: ignore[index]
    finally:
        fetch.send_signal(signal.SIGTERM)
        fetch.wait(timeout=30)
    shown = postdesk(env, "status")
    assert "login failed" in shown.stdout and "not-the-password" not in shown.stdout
