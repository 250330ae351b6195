"""Scripting an installation: teams, agents and their API tokens from the command line."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from factories import make_mailbox, make_raw_mail
from postdesk.cli import main
from postdesk.desk.intake import accept_raw
from postdesk.desk.models import AgentProfile, Mailbox, Role, Source

pytestmark = pytest.mark.django_db(transaction=True)  # mail is processed when its accept commits


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def subjects_seen_with(token: str) -> set[str]:
    response = Client().get("/api/v1/conversations/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200, response.content
    return {row["subject"] for row in response.json()["results"]}


def test_a_scripted_install_gives_each_agent_a_token_scoped_to_their_team(capsys: pytest.CaptureFixture[str]) -> None:
    billing, sales = make_mailbox("billing@acme.test"), make_mailbox("sales@acme.test")
    accept_raw(billing, make_raw_mail(subject="Invoice wrong", to="billing@acme.test"), source=Source.SMTP)
    accept_raw(sales, make_raw_mail(subject="Price for 100 seats", to="sales@acme.test"), source=Source.SMTP)

    assert run(capsys, "team", "add", "Billing", "--mailbox", "BILLING@acme.test")[0] == 0
    assert run(capsys, "team", "add", "Sales", "--mailbox", "sales@acme.test")[0] == 0
    code, token, err = run(capsys, "agent", "add", "Bea@Acme.test", "--team", "Billing", "--name", "Bea Lopez")

    assert code == 0
    assert "added agent bea@acme.test (teams: Billing)" in err
    assert "password: " in err
    assert subjects_seen_with(token.strip()) == {"Invoice wrong"}
    code, fresh, _ = run(capsys, "agent", "token", "bea@acme.test")
    assert code == 0 and fresh.strip() != token.strip()
    assert subjects_seen_with(fresh.strip()) == {"Invoice wrong"}

    # Re-running updates role and teams; the generated password is not replaced.
    code, _, err = run(
        capsys, "agent", "add", "bea@acme.test", "--team", "Billing", "--team", "Sales", "--role", "supervisor"
    )
    assert code == 0 and "updated supervisor bea@acme.test (teams: Billing, Sales)" in err
    assert "password" not in err
    profile = AgentProfile.objects.get(user__username="bea@acme.test")
    assert profile.role == Role.SUPERVISOR and profile.user.get_full_name() == "Bea Lopez"

    code, out, _ = run(capsys, "team", "list", "--json")
    assert json.loads(out) == [
        {"name": "Billing", "mailboxes": ["billing@acme.test"], "agents": ["bea@acme.test"]},
        {"name": "Sales", "mailboxes": ["sales@acme.test"], "agents": ["bea@acme.test"]},
    ]
    code, out, _ = run(capsys, "agent", "list", "--json")
    assert json.loads(out) == [
        {
            "email": "bea@acme.test",
            "name": "Bea Lopez",
            "role": "supervisor",
            "teams": ["Billing", "Sales"],
            "active": True,
        }
    ]


def test_a_given_password_lets_the_agent_log_in(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_mailbox("help@acme.test")
    assert run(capsys, "team", "add", "Help", "--mailbox", "help@acme.test")[0] == 0
    monkeypatch.setenv("AGENT_PW", "a long passphrase 42")
    code, _, err = run(capsys, "agent", "add", "cy@acme.test", "--team", "Help", "--password-env", "AGENT_PW")
    assert code == 0 and "password:" not in err
    assert Client().post("/login/", {"username": "cy@acme.test", "password": "a long passphrase 42"}).status_code == 302


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["team", "add", "Help", "--mailbox", "nope@acme.test"], "no mailbox 'nope@acme.test'; add it first"),
        (["team", "add", "  "], "a team needs a name"),
        (["agent", "add", "dee@acme.test", "--team", "Ghosts"], "no team 'Ghosts'; add it first"),
        (["agent", "add", "dee@acme.test"], "an agent needs at least one team"),
        (["agent", "add", "not-an-address", "--team", "Help"], "is not an email address"),
        (["agent", "add", "dee@acme.test", "--team", "Help", "--password-env", "UNSET_VAR_X"], "UNSET_VAR_X is empty"),
        (["agent", "token", "ghost@acme.test"], "no active agent 'ghost@acme.test'"),
    ],
)
def test_mistakes_get_a_clear_message_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    make_mailbox("help@acme.test")
    main(["team", "add", "Help", "--mailbox", "help@acme.test"])
    capsys.readouterr()
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert out == "" and "Traceback" not in err
    assert Mailbox.objects.get(address="help@acme.test").team is not None
