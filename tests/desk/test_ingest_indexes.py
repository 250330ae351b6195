"""Every lookup on the ingest path uses an index, so threading costs the same at a million conversations as at ten.

The planners are asked directly: SQLite must SEARCH (never SCAN) a table, and PostgreSQL, with
sequential scans discouraged, must find an index for every query.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from factories import make_mailbox, make_raw_mail
from postdesk.desk.intake import accept_raw
from postdesk.desk.models import Source
from postdesk.desk.processing import process_received_mail

pytestmark = pytest.mark.django_db

# Configuration an administrator edits by hand (rules, SLA policies, calendars, templates, terms, models, teams
# and agents): tens of rows, not millions, read whole on purpose. Everything that grows with mail must be indexed.
CONFIGURATION_TABLES = (
    "desk_rule",
    "desk_slapolicy",
    "desk_slapolicy_mailboxes",
    "desk_businesscalendar",
    "desk_holiday",
    "desk_replytemplate",
    "desk_urgencyterm",
    "desk_classifiermodel",
    "desk_team",
    "desk_agentprofile",
    "desk_agentprofile_teams",
)


def _scanned_table(line: str) -> str:
    """The table a plan line scans: "SCAN desk_rule" (SQLite), "Seq Scan on desk_rule  (cost=…)" (PostgreSQL)."""
    return line.split("SCAN ", 1)[-1].split("Seq Scan on ", 1)[-1].split()[0]


def full_scans(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = [str(row[-1]) for row in cursor.fetchall()]
            scans = [line for line in plan if line.startswith("SCAN ") and "desk_" in line]
            return [line for line in scans if _scanned_table(line) not in CONFIGURATION_TABLES]
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = [str(row[0]) for row in cursor.fetchall()]
        scans = [line.strip() for line in plan if "Seq Scan on desk_" in line]
        return [line for line in scans if _scanned_table(line) not in CONFIGURATION_TABLES]


def test_accepting_and_threading_a_reply_never_scans_a_table() -> None:
    mailbox = make_mailbox()
    first = make_raw_mail(message_id="<root@customer.test>", subject="Broken login")
    accepted = accept_raw(mailbox, first, source=Source.SMTP, enqueue=lambda _id: None)
    process_received_mail(accepted.received_mail_id)

    reply = make_raw_mail(
        subject="Re: Broken login", in_reply_to="<root@customer.test>", references="<root@customer.test>"
    )
    with CaptureQueriesContext(connection) as captured:
        accepted = accept_raw(mailbox, reply, source=Source.SMTP, enqueue=lambda _id: None)
        process_received_mail(accepted.received_mail_id)
    # Mail with no thread headers falls through to the subject lookup: that one must be indexed too.
    stranger = make_raw_mail(subject="Re: Something else entirely")
    with CaptureQueriesContext(connection) as captured_subject:
        accepted = accept_raw(mailbox, stranger, source=Source.SMTP, enqueue=lambda _id: None)
        process_received_mail(accepted.received_mail_id)

    selects = [
        q["sql"]
        for q in [*captured.captured_queries, *captured_subject.captured_queries]
        if q["sql"].lstrip().upper().startswith("SELECT")
    ]
    assert len(selects) >= 8, "the ingest path should have been captured"
    scans = {sql[:200]: found for sql in selects if (found := full_scans(sql))}
    assert scans == {}
