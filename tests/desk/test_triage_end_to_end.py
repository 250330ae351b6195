# ruff: noqa: RUF001
"""Issue 5 end to end, with real processes: mail in by SMTP → language, category and priority set, the right agent
assigned, and the acknowledgement with the promised time received at a real SMTP sink.

The installation is set up as an operator would: the category model trained from a CSV with `postdesk train
--csv … --activate`, the rest through Postdesk's own models (this file doubles as the helper run in a subprocess,
`python test_triage_end_to_end.py setup|report`). Then `postdesk run` (web, jobs and the SMTP listener in one
process) takes a Russian customer's mail about a failed payment.
"""

from __future__ import annotations

import csv
import email
import email.policy
import json
import os
import smtplib
import subprocess
import sys
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as the helper: find tests/ (factories) and tests/transports (smtp_sink)
    sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

import pytest

from processes import POSTDESK, free_port, postdesk, postdesk_env, smtp_ready, stop, wait_for

pytestmark = pytest.mark.slow

HELPER = [sys.executable, str(Path(__file__).resolve())]
MAILBOX = "support@example.com"
CUSTOMER = "olga@klient.test"
BERLIN = "Europe/Berlin"

# Labelled history in two languages, as an installation exports it from its old helpdesk.
HISTORY = {
    "billing": [
        "I was charged twice on my invoice this month",
        "My card payment failed but the money was taken",
        "Please refund the double charge on my card",
        "Why is my invoice higher than the price",
        "Не проходит оплата картой, деньги списали дважды",
        "Верните деньги за двойное списание по карте",
        "Счёт выставлен неправильно, оплата не прошла",
        "Оплата картой не работает, платёж отклонён",
    ],
    "delivery": [
        "My parcel has not arrived yet",
        "The tracking number of my parcel does not work",
        "The courier left the parcel at the wrong address",
        "How long does delivery take",
        "Посылка до сих пор не пришла",
        "Курьер не доставил заказ по адресу",
        "Трек-номер посылки не работает",
        "Сколько идёт доставка заказа",
    ],
    "account": [
        "How do I change the password of my account",
        "Please delete my account",
        "I cannot change the email of my profile",
        "How can I add a second user to my account",
        "Как сменить пароль от аккаунта",
        "Удалите мой аккаунт и профиль",
        "Не могу поменять почту в профиле",
        "Как добавить второго пользователя в аккаунт",
    ],
}


# --- the helper, run in subprocesses --------------------------------------------------------------


def helper_setup(sink_port: str) -> None:
    from django.core.management import call_command

    from factories import make_agent, make_team
    from postdesk.desk.models import (
        AgentProfile,
        AssignmentMode,
        BusinessCalendar,
        Mailbox,
        ReplyTemplate,
        SlaPolicy,
    )

    call_command("migrate", verbosity=0, interactive=False)
    office = BusinessCalendar.objects.create(
        name="Berlin office",
        time_zone=BERLIN,
        weekly_hours={day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    )
    team = make_team("Support")
    team.assignment_mode, team.language_strict, team.calendar = AssignmentMode.ROUND_ROBIN, True, office
    team.save()
    Mailbox.objects.create(
        address=MAILBOX,
        name="Acme Support",
        team=team,
        smtp_host="127.0.0.1",
        smtp_port=int(sink_port),
        smtp_starttls=False,
        acknowledge=True,
        acknowledgement_template="received",
    )
    anna = make_agent("anna@example.org", teams=(team,))
    boris = make_agent("boris@example.org", teams=(team,))
    AgentProfile.objects.filter(user=anna).update(languages=["en", "de"])
    AgentProfile.objects.filter(user=boris).update(languages=["ru", "uk"])
    SlaPolicy.objects.create(name="Urgent", order=1, priorities=["urgent"], first_response_minutes=60)
    SlaPolicy.objects.create(name="Standard", order=2, first_response_minutes=480)
    ReplyTemplate.objects.create(
        key="received", name="Received", body="We got your mail (#{number}); expect an answer by {promised_time}."
    )
    ReplyTemplate.objects.create(
        key="received",
        language="ru",
        name="Получено",
        body="Мы получили ваше письмо (#{number}). Ответим до {promised_time}.",
    )


def helper_report() -> None:
    from postdesk.desk.models import Conversation, Event, EventKind

    conversation = Conversation.objects.select_related("assignee", "sla_policy").get()
    acknowledged = Event.objects.filter(conversation=conversation, kind=EventKind.ACKNOWLEDGED).first()
    print(
        json.dumps(
            {
                "number": conversation.number,
                "language": conversation.language,
                "category": conversation.category,
                "category_source": conversation.category_source,
                "priority": conversation.priority,
                "priority_source": conversation.priority_source,
                "assignee": conversation.assignee.email if conversation.assignee else None,
                "policy": conversation.sla_policy.name if conversation.sla_policy else None,
                "created_at": conversation.created_at.isoformat(),
                "first_response_due_at": _iso(conversation.first_response_due_at),
                "promised_text": acknowledged.data.get("promised_text") if acknowledged else None,
                "promised": acknowledged.data.get("promised") if acknowledged else None,
            }
        )
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def helper_main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
    import django

    django.setup()
    {"setup": helper_setup, "report": helper_report}[argv[1]](*argv[2:])
    return 0


# --- the test -------------------------------------------------------------------------------------


def helper(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([*HELPER, *args], env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_a_russian_payment_failure_is_triaged_routed_and_acknowledged_with_the_right_promise(
    tmp_path: Path, fresh_database_url: str | None
) -> None:
    from postdesk.sla.business_hours import BusinessCalendar
    from postdesk.sla.promise import readable_promise
    from transports.smtp_sink import SmtpSink

    smtp_port = free_port()
    with SmtpSink() as sink:
        env = postdesk_env(
            tmp_path / "data",
            fresh_database_url,
            PYTHONUNBUFFERED="1",
            POSTDESK_SMTP_PORT=str(smtp_port),
            POSTDESK_HTTP_PORT=str(free_port()),
            POSTDESK_LANGUAGES="en,de,ru,uk",
            POSTDESK_TRIAGE_MIN_CONFIDENCE="0.4",
        )
        helper(env, "setup", str(sink.port))
        history = tmp_path / "history.csv"
        with history.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["text", "label"])
            writer.writerows((text, label) for label, texts in HISTORY.items() for text in texts)
        trained = postdesk(
            env, "train", "--csv", str(history), "--model", str(tmp_path / "category.model"),
            "--target", "category", "--activate",
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr

        log = (tmp_path / "run.log").open("w")
        server = subprocess.Popen([*POSTDESK, "run"], env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: smtp_ready(smtp_port), 60, "the SMTP listener")
            mail = EmailMessage()
            mail["From"] = f"Ольга <{CUSTOMER}>"
            mail["To"] = MAILBOX
            mail["Subject"] = "Не проходит оплата"
            mail.set_content("Здравствуйте! Не проходит оплата картой, а деньги списали дважды. Помогите, пожалуйста.")
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
                client.send_message(mail)
            (acknowledgement,) = sink.wait_for(1, timeout=90)
        finally:
            stop(server)
            log.close()

    report = helper(env, "report")
    assert report["language"] == "ru"
    assert (report["category"], report["category_source"]) == ("billing", "model")
    assert (report["priority"], report["priority_source"]) == ("urgent", "lexicon")  # a failed payment
    assert report["assignee"] == "boris@example.org"  # the only agent who speaks Russian, in a strict team
    assert report["policy"] == "Urgent"

    # The promise: the first response due one business hour after the mail came, in Berlin office hours.
    office = BusinessCalendar.from_hours(BERLIN, {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")})
    arrived = datetime.fromisoformat(report["created_at"])
    due = office.add_business_time(arrived, timedelta(minutes=60))
    assert datetime.fromisoformat(report["first_response_due_at"]) == due
    assert datetime.fromisoformat(report["promised"]) == readable_promise(arrived, due, office.zone)

    assert acknowledgement.rcpt_tos == (CUSTOMER,)
    received = email.message_from_bytes(acknowledgement.data, policy=email.policy.default)
    assert received["Auto-Submitted"] == "auto-replied"
    body = received.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    assert f"Мы получили ваше письмо (#{report['number']}). Ответим до {report['promised_text']}." in text
    assert "(Europe/Berlin)" in report["promised_text"]


if __name__ == "__main__":
    raise SystemExit(helper_main(sys.argv))
