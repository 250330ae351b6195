"""bench/seed.py fills PostgreSQL with data the app itself can open, list, count and continue.

The benchmarks' figures are only worth something if the seeded rows look like what the app writes; this
seeds 200 conversations into the test database and reads them back through the pages and the mail path.
"""

from __future__ import annotations

import html
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.db.models import Count, Max, Q
from django.test import Client

from factories import make_raw_mail
from postdesk.desk import access
from postdesk.desk.intake import accept_raw
from postdesk.desk.models import (
    Contact,
    Conversation,
    Counter,
    Direction,
    Event,
    EventKind,
    Mailbox,
    Message,
    Source,
    Status,
    ThreadRef,
)
from postdesk.desk.processing import process_received_mail

SEED_PATH = Path(__file__).resolve().parents[2] / "bench" / "seed.py"
COUNT = 200
MESSAGES_PER = 5

# PostgreSQL only: `make test` deselects these from the SQLite pass and runs them in the PostgreSQL one.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _seed_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_seed", SEED_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_seed"] = module
    spec.loader.exec_module(module)
    return module


def _same_meaning(definition: str) -> str:
    """An index definition without casts, brackets and spaces: PostgreSQL prints a partial index's condition
    differently once it has parsed its own output (`ANY (ARRAY[('a'::character varying)::text])` comes back as
    `ANY ((ARRAY['a'::character varying])::text[])`), which is the same index."""
    return re.sub(r"[()\s]", "", re.sub(r"::[a-z ]+(\[\])?", "", definition))


def _schema(cur: psycopg.Cursor[Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    indexes = [
        (table, name, _same_meaning(definition))
        for table, name, definition in cur.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
        ).fetchall()
    ]
    constraints = cur.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), condeferrable, condeferred"
        " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
    ).fetchall()
    return indexes, constraints


@pytest.fixture
def seeded() -> Iterator[tuple[ModuleType, Any, tuple[Any, Any]]]:
    if connection.vendor != "postgresql":
        pytest.fail("bench/seed.py fills PostgreSQL only (COPY): run these with DATABASE_URL=postgres://…")
    module = _seed_module()
    params = connection.get_connection_params()
    conninfo = {key: params[key] for key in ("dbname", "host", "port", "user", "password") if params.get(key)}
    with psycopg.connect(**conninfo) as conn:
        with conn.cursor() as cur:
            before = _schema(cur)
        conn.commit()
        options = module.Options(conversations=COUNT, messages_per=MESSAGES_PER, agents=12, quiet=True)
        result = module.seed(conn, options)
        with conn.cursor() as cur:
            after = _schema(cur)
    yield module, result, (before, after)


def test_seed_rebuilds_every_index_and_constraint_the_migrations_made(seeded: Any) -> None:
    _module, _result, (before, after) = seeded
    assert after == before


def test_counts_and_list_rows_agree_with_the_messages(seeded: Any) -> None:
    _module, result, _schemas = seeded
    assert Conversation.objects.count() == COUNT
    assert Message.objects.count() == COUNT * MESSAGES_PER
    assert Counter.objects.get(name="conversation-number").value == COUNT
    assert set(Conversation.objects.values_list("status", flat=True)) <= set(Status.values) - {Status.MERGED}
    assert sum(result.statuses.values()) == COUNT
    assert Contact.objects.count() == result.rows["desk_contact"]

    rows = Conversation.objects.annotate(
        real_count=Count("messages"),
        last_mail=Max("messages__created_at", filter=~Q(messages__direction=Direction.NOTE)),
    )
    for conversation in rows:
        assert conversation.message_count == conversation.real_count, conversation.number
        assert conversation.last_message_at == conversation.last_mail, conversation.number
        assert conversation.team_id == conversation.mailbox.team_id
        assert conversation.priority_rank == {"urgent": 0, "high": 1, "normal": 2, "low": 3}[conversation.priority]
        mails = list(conversation.messages.exclude(direction=Direction.NOTE).order_by("created_at", "id"))
        waiting = conversation.status in (Status.NEW, Status.OPEN) and mails[-1].direction == Direction.INBOUND
        if waiting:
            # The customer's oldest unanswered mail.
            since = [m for m in mails if m.direction == Direction.OUTBOUND]
            unanswered = [m for m in mails if m.direction == Direction.INBOUND and (not since or m.id > since[-1].id)]
            assert conversation.waiting_since == unanswered[0].created_at, conversation.number
        else:
            assert conversation.waiting_since is None, conversation.number
        # The timeline is in id order and that is time order.
        events = list(Event.objects.filter(conversation=conversation).order_by("id"))
        assert [e.created_at for e in events] == sorted(e.created_at for e in events)
        assert sum(e.kind == EventKind.RECEIVED for e in events) == sum(m.direction == Direction.INBOUND for m in mails)
    # Every Message-ID is a thread key of its own conversation.
    refs = {(r.mailbox_id, r.key): r.conversation_id for r in ThreadRef.objects.all()}
    with_ids = list(Message.objects.exclude(message_id=None))
    assert len(refs) == len(with_ids)
    for message in with_ids:
        assert refs[(message.mailbox_id, message.message_id)] == message.conversation_id


def test_pages_open_for_the_admin_and_stop_at_team_borders(seeded: Any) -> None:
    module, result, _schemas = seeded
    admin = Client()
    assert admin.login(username=module.ADMIN_EMAIL, password=module.PASSWORD)
    newest = Conversation.objects.order_by("-last_message_at", "-id").first()
    assert newest is not None
    listing = admin.get("/")
    assert listing.status_code == 200
    assert html.escape(newest.subject) in listing.content.decode()
    for conversation in Conversation.objects.order_by("?")[:5]:
        page = admin.get(f"/c/{conversation.number}/")
        assert page.status_code == 200, conversation.number
        body = page.content.decode()
        for message in conversation.messages.all():
            assert html.escape(message.visible_text) in body, (conversation.number, message.pk)

    agent = next(a for a in result.accounts if a.role == "agent" and len(a.teams) == 1)
    own = Conversation.objects.filter(mailbox__team_id=agent.teams[0])
    other = Conversation.objects.exclude(mailbox__team_id=agent.teams[0]).first()
    assert own.exists() and other is not None
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=agent.id)
    assert access.visible_conversations(user).count() == own.count()
    client = Client()
    assert client.login(username=agent.email, password=module.PASSWORD)
    assert client.get(f"/c/{own.first().number}/").status_code == 200  # type: ignore[union-attr]
    assert client.get(f"/c/{other.number}/").status_code == 404


def test_new_mail_continues_the_seeded_numbers_and_threads(seeded: Any) -> None:
    pending = Conversation.objects.filter(status=Status.PENDING).order_by("-number").first()
    assert pending is not None
    ours = pending.messages.filter(direction=Direction.OUTBOUND).order_by("-created_at").first()
    assert ours is not None and ours.message_id
    mailbox = Mailbox.objects.get(pk=pending.mailbox_id)

    def deliver(raw: bytes) -> Message:
        accepted = accept_raw(mailbox, raw, source=Source.IMPORT, enqueue=lambda _id: None)
        assert process_received_mail(accepted.received_mail_id) == "processed"
        return Message.objects.select_related("conversation").get(received_mail_id=accepted.received_mail_id)

    answer = deliver(
        make_raw_mail(
            subject=f"Re: {pending.subject}",
            sender=f"Customer <{pending.contact_address}>",
            to=mailbox.address,
            in_reply_to=f"<{ours.message_id}>",
            references=f"<{ours.message_id}>",
            body="Thanks, one more question.\n",
        )
    )
    assert answer.conversation.pk == pending.pk
    assert answer.conversation.status == Status.OPEN

    fresh = deliver(make_raw_mail(subject="Brand new question", sender="New <new@person.test>", to=mailbox.address))
    assert fresh.conversation.number == COUNT + 1
