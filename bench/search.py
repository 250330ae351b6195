"""Search latency on whatever data the database holds, against the old `icontains` filter on the same data.

    python bench/seed.py --conversations 1000000          # once, for the issue's figures (PostgreSQL)
    python bench/search.py [--database-url URL] [--runs 20] [--baseline-runs 5] [--explain]
                           [--query "en common=order" ...]

DATABASE_URL (or --database-url) picks the database, as for the app; unset = the SQLite file in
POSTDESK_DATA_DIR. For each query — a rare word, a common word and a phrase, in English and in
Chinese (the seed's vocabulary by default; --query LABEL=TEXT replaces them) — and for two users (an
admin, who sees every conversation, and an agent of one team, if there is one), in-process through the
service layer as the pages call it:

- search: `access.filter_conversations(q=…)` then the first page of 50 by keyset (`keyset_page`): what the
  inbox and the API run;
- ranked: `search.ranked()`, the 20 best of the 200 most recent matches;
- baseline: the filter this replaced (subject, contact name or address, or any message's text
  `icontains` the query, as one substring) on the same visible conversations, first page of 50.

p50/p95 in milliseconds over --runs runs (--baseline-runs for the slow baseline; a statement timeout of
--timeout seconds applies to it on PostgreSQL), after one warm-up run each. "matches" is how many
conversations the search finds for that user. Figures, not pass/fail; target: search p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

DEFAULT_QUERIES = (
    ("en rare", "quokka"),
    ("en common", "order"),
    ("en phrase", '"tracking number"'),
    ("zh rare", "麒麟"),
    ("zh common", "订单"),
    ("zh phrase", '"快递单号"'),
)
PAGE = 50


def setup_django(url: str | None) -> None:
    if url:
        os.environ["DATABASE_URL"] = url
    os.environ.setdefault("POSTDESK_DATA_DIR", str(REPO / "var"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
    import django

    django.setup()


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return statistics.median(ordered), p95


def timed(action: Callable[[], object], runs: int) -> list[float]:
    action()  # warm-up: caches, plans, connection
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def users() -> list[tuple[str, Any]]:
    from django.contrib.auth import get_user_model

    from postdesk.desk.models import AgentProfile, Role

    found: list[tuple[str, Any]] = []
    admin = (
        get_user_model().objects.filter(is_superuser=True, is_active=True).first()
        or get_user_model().objects.filter(agent__role=Role.ADMIN, is_active=True).first()
    )
    if admin is not None:
        found.append(("admin", admin))
    for profile in AgentProfile.objects.filter(role=Role.AGENT, user__is_active=True).select_related("user"):
        if profile.teams.count() == 1:
            found.append((f"agent ({profile.teams.get().name})", profile.user))
            break
    return found


def baseline_rows(user: Any, q: str) -> Any:
    """The filter search.py replaced, exactly as access.filter_conversations had it."""
    from django.db.models import Exists, OuterRef, Q

    from postdesk.desk import access
    from postdesk.desk.models import Message

    in_messages = Message.objects.filter(conversation_id=OuterRef("pk"), text__icontains=q)
    return access.visible_conversations(user).filter(
        Q(subject__icontains=q) | Q(contact_name__icontains=q) | Q(contact_address__icontains=q) | Exists(in_messages)
    )


def statement_timeout(seconds: float) -> None:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(seconds * 1000)}"])


def explain(rows: Any) -> str:
    from django.db import connection

    from postdesk.desk.pagination import LIST_ORDER

    query = rows.order_by(*LIST_ORDER)[: PAGE + 1]
    sql, params = query.query.sql_with_params()
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql, params)
        return "\n".join("    " + " ".join(str(part) for part in row) for row in cursor.fetchall())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--baseline-runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds, for one baseline query (PostgreSQL)")
    parser.add_argument("--query", action="append", default=[], metavar="LABEL=TEXT")
    parser.add_argument("--explain", action="store_true", help="print the search's plan for every query")
    args = parser.parse_args(argv)
    queries = [tuple(item.split("=", 1)) for item in args.query] or list(DEFAULT_QUERIES)

    setup_django(args.database_url)
    from django.db import connection
    from django.db.utils import OperationalError

    from postdesk.desk import access, search
    from postdesk.desk.models import Conversation, Message
    from postdesk.desk.pagination import keyset_page

    conversations, messages = Conversation.objects.count(), Message.objects.count()
    print(
        f"search on {connection.vendor} ({connection.settings_dict['NAME']}): {conversations:,} conversations, "
        f"{messages:,} messages; {args.runs} runs (baseline {args.baseline_runs}), first page of {PAGE}, ms"
    )
    people = users()
    if not people:
        print("no active superuser, admin or agent in this database: nothing to measure")
        return 1
    print(
        f"\n{'query':<30}{'user':<22}{'matches':>9}  {'search p50/p95':>16}  {'ranked p50/p95':>16}"
        f"  {'icontains p50/p95':>18}  {'speed-up':>8}"
    )
    for label, text in queries:
        for who, user in people:
            rows = access.filter_conversations(user, access.ConversationFilter(q=text))
            matches = rows.count()
            fts = percentiles(timed(lambda rows=rows: keyset_page(rows, cursor=None, limit=PAGE), args.runs))
            visible = access.visible_conversations(user)
            ranked = percentiles(timed(lambda v=visible, t=text: search.ranked(v, t), args.runs))
            # The old filter took the query as one substring; a phrase's quotes were part of it, so drop them.
            plain = text.strip('"')
            statement_timeout(args.timeout)
            try:
                old = baseline_rows(user, plain)
                base = percentiles(timed(lambda old=old: keyset_page(old, cursor=None, limit=PAGE), args.baseline_runs))
                base_text = f"{base[0]:>8.1f}/{base[1]:<9.1f}"
                speedup = f"{base[1] / max(fts[1], 0.001):>7.0f}x"
            except OperationalError:
                base_text, speedup = f"{'>' + str(int(args.timeout)) + ' s':>18}", "-"
            finally:
                statement_timeout(0)
            print(
                f"{label + ' ' + repr(text):<30}{who:<22}{matches:>9,}  {fts[0]:>7.1f}/{fts[1]:<8.1f}"
                f"  {ranked[0]:>7.1f}/{ranked[1]:<8.1f}  {base_text}  {speedup}"
            )
            if args.explain:
                print(explain(rows))
    print(
        "\nsearch: filter_conversations(q) + first keyset page · ranked: search.ranked() top 20 of the 200 most recent"
        "\nicontains: the replaced filter (subject, contact, or any message's text icontains the text), same page"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
