# ruff: noqa: RUF001, RUF002, RUF003  (Cyrillic, Persian and full-width punctuation on purpose)
"""Full-text search over conversations: one interface over SQLite FTS5 and PostgreSQL.

What is searched: each conversation has one search document (table `desk_search`, migration 0005) with
its subject, its contact's name and address, and the text of every message — inbound, outbound and
internal notes (everyone who may see a conversation may read its notes). Database triggers keep it
current on every insert, edit, move (merge, split) and delete, COPY included, so no caller has to.

Query language, the same on both databases:
- words separated by spaces must all occur, each anywhere in the conversation (subject, contact, any
  message); `"quoted phrases"` must occur as written (runs of spaces and line breaks count as one space);
- matching is case-insensitive and by substring, like the old `icontains` filter: `refund` finds
  "refunds", `заказ` finds "заказа" and "заказом" (the word forms of Russian and Ukrainian share a
  stem), `b.test` finds "bob@b.test", `订单` finds "我的订单还没有收到" (Chinese has no spaces);
- Persian/Arabic yeh and kaf, Russian ё/е, apostrophe variants and zero-width joiners (ZWNJ) are
  normalised on both sides, so "میخواهم" finds "می‌خواهم" and "пришел" finds "пришёл";
- no operators: quotes only group a phrase, and `*`, `-`, `^`, `:`, `NEAR`, `OR` are plain text, so
  any string is a valid query. A trailing `*` is dropped (every word already matches as a prefix);
- words of one or two characters: Chinese/Japanese/Korean characters are looked up in an index of
  single characters and pairs on PostgreSQL; other 1–2 letter words match at the start of a word on
  PostgreSQL (the `simple` text-search index) and anywhere on SQLite (a scan, fine at SQLite's size).

Order: `filter_matching` narrows a conversation list and keeps the list's own order (newest activity
first, keyset pagination on (last_message_at, id)), so pages are stable and complete. `ranked` gives
the best matches: it takes the `RANK_WINDOW` most recent matching conversations and ranks only those
by relevance, so a common word never means scoring a million documents.

Common words: finding every match costs about one index entry and one document per match, fine for
thousands and too slow for the hundreds of thousands a word like "order" has in a million
conversations. So a search first counts its matches among the newest SAMPLE documents; when that
predicts COMMON_MATCHES or more, the candidates are the newest COMMON_WINDOW matching conversations
(by creation), found by reading the newest documents until there are enough — a few thousand rows for
a common word. Rarer queries always find every match.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext as _

from postdesk.desk.errors import BadRequest
from postdesk.desk.models import Conversation

MAX_QUERY_LENGTH = 200  # as access.MAX_QUERY_LENGTH
MAX_TERMS = 8  # more words than this: the longest (most selective) ones are used
RANK_WINDOW = 200  # `ranked` scores at most this many of the most recent matches
# A query expected to match this many conversations or more (from a sample of the SAMPLE newest documents)
# is a common word: only the newest COMMON_WINDOW matching conversations are candidates. See filter_matching.
COMMON_MATCHES = 8_000  # measured at a million conversations: about where both ways cost the same
COMMON_WINDOW = 1_000
SAMPLE = 2_000

# The same normalisation as the migration's desk_search_norm(); change both together.
CHARACTER_MAP = {
    "\u0451": "\u0435",  # ё → е
    "\u0401": "\u0415",  # Ё → Е
    "\u064a": "\u06cc",  # Arabic yeh → Persian yeh
    "\u0649": "\u06cc",  # alef maksura → Persian yeh
    "\u0643": "\u06a9",  # Arabic kaf → Persian kaf (keheh)
    "\u2019": "'",  # right single quotation mark (Ukrainian apostrophe)
    "\u02bc": "'",  # modifier letter apostrophe
    "\u200c": "",  # zero-width non-joiner (Persian)
    "\u200d": "",  # zero-width joiner
    "\u00ad": "",  # soft hyphen
    "\ufeff": "",  # byte-order mark
}
_TRANSLATION = str.maketrans(CHARACTER_MAP)
# The spaces the documents turn into one space (the migration's list), and control characters, which
# documents do not hold and NUL cannot even be sent to PostgreSQL.
_SPACES = re.compile(r"[ \t\n\r\f\v\u00a0\u2028\u2029\u3000\u200b\x00-\x1f\x7f]+")
_TOKENS = re.compile(r'"([^"]*)"?|([^\s"]+)')
# Punctuation around a word that is part of the sentence, not of the word: "refund," "(order)" «заказ».
_WRAPPING = ".,;:!?()[]{}<>'\"«»“”„‘’`*،؛؟。，、；：！？（）【】「」《》"
_CJK = re.compile(
    r"[\u3005\u3007\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002fa1f]"
)
_SHORT = 3  # trigram indexes need at least this many characters
Params = list[str | int]

# Bulk loaders (bench/seed.py) may run this in their loading transaction on PostgreSQL so that COPY does
# not update the search index row by row, and must then call rebuild().
PAUSE_SQL = "SET LOCAL postdesk.search_paused = 'on'"


def normalise(text: str) -> str:
    """`text` as the search document stores it: characters mapped, spaces collapsed, NFC, valid UTF-8."""
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates (from JSON) cannot be sent
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATION)
    return _SPACES.sub(" ", text).strip()


def parse(q: str) -> tuple[str, ...]:
    """The terms of a query: words and phrases, each to be found as a case-insensitive substring.

    Never fails on any text; too long a query is a `BadRequest`.
    """
    if len(q) > MAX_QUERY_LENGTH:
        raise BadRequest(_("The search text is too long (at most %(max)s characters).") % {"max": MAX_QUERY_LENGTH})
    terms: list[str] = []
    for match in _TOKENS.finditer(q):
        phrase, word = match.group(1), match.group(2)
        if phrase is not None:
            term = normalise(phrase)
        else:
            term = normalise(word)
            term = term.strip(_WRAPPING) or term
        if term:
            terms.append(term)
    unique = list(dict.fromkeys(terms))
    if len(unique) > MAX_TERMS:
        keep = set(sorted(unique, key=len, reverse=True)[:MAX_TERMS])
        unique = [term for term in unique if term in keep][:MAX_TERMS]
    return tuple(unique)


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _is_cjk(term: str) -> bool:
    return all(_CJK.match(ch) for ch in term)


def _fts5_string(term: str) -> str:
    """`term` as an FTS5 string: inside double quotes everything is literal, and `"` is doubled."""
    return '"' + term.replace('"', '""') + '"'


class _Backend:
    """How one database finds the conversations that match every term, in two forms:

    - `indexed`: every match, found through the full-text indexes; costs about one row per match;
    - `newest`: the newest `limit` matches by conversation id, found by reading the newest documents
      until there are enough; costs about `limit / share of documents that match` rows, cheap exactly
      when the indexed form is expensive (a common word).
    """

    key = ""

    def indexed(self, terms: Sequence[str]) -> tuple[str, Params]:
        raise NotImplementedError

    def scanned(self, terms: Sequence[str]) -> tuple[str, Params]:
        """Conditions that test the terms on each document read (the `newest` form and the sample)."""
        raise NotImplementedError

    def newest(self, terms: Sequence[str], limit: int) -> tuple[str, Params]:
        where, params = self.scanned(terms)
        sql = f"SELECT {self.key} FROM desk_search WHERE {where} ORDER BY {self.key} DESC LIMIT %s"  # noqa: S608
        return sql, [*params, limit]

    def sample(self, terms: Sequence[str], size: int) -> tuple[str, Params]:
        """(SQL, params) of one row: how many of the newest `size` documents match, and the highest id."""
        raise NotImplementedError

    def matching(self, terms: Sequence[str]) -> tuple[str, Params]:
        where, params = self.indexed(terms)
        return f"SELECT {self.key} FROM desk_search WHERE {where}", params  # noqa: S608


class _SQLite(_Backend):
    key = "rowid"

    def indexed(self, terms: Sequence[str]) -> tuple[str, Params]:
        return self.scanned(terms)  # FTS5 uses its index for MATCH whichever way the rows are read

    def scanned(self, terms: Sequence[str]) -> tuple[str, Params]:
        where: list[str] = []
        params: Params = []
        long = [term for term in terms if len(term) >= _SHORT]
        if long:
            # The trigram tokenizer matches each quoted string as a case-insensitive substring.
            where.append("desk_search MATCH %s")
            params.append(" ".join(_fts5_string(term) for term in long))
        for term in terms:
            if len(term) >= _SHORT:
                continue
            # Too short for a trigram: a scan. SQLite's lower()/LIKE fold ASCII only, so try the usual casings.
            variants = list(dict.fromkeys((term, term.lower(), term.upper(), term.title())))
            alternatives = [f"instr({column}, %s) > 0" for variant in variants for column in _COLUMNS]
            params += [variant for variant in variants for _column in _COLUMNS]
            where.append("(" + " OR ".join(alternatives) + ")")
        return " AND ".join(where), params

    def sample(self, terms: Sequence[str], size: int) -> tuple[str, Params]:
        where, params = self.scanned(terms)
        newest = "rowid > (SELECT coalesce(max(rowid), 0) FROM desk_search) - %s"
        sql = (
            f"SELECT (SELECT count(*) FROM desk_search WHERE {where} AND {newest}),"  # noqa: S608
            " (SELECT coalesce(max(rowid), 0) FROM desk_search)"
        )
        return sql, [*params, size]


class _PostgreSQL(_Backend):
    """The document is stored lowercased (desk_search_norm), so terms are lowercased by the same lower()."""

    key = "conversation_id"
    _DOCUMENT = "desk_search_document(subject, contact, body)"

    def indexed(self, terms: Sequence[str]) -> tuple[str, Params]:
        where: list[str] = []
        params: Params = []
        for term in terms:
            word = "".join(ch for ch in term if ch.isalnum())
            if len(term) < _SHORT and _is_cjk(term):
                # CJK text is indexed as its single characters and pairs of characters (see the migration).
                where.append("words @@ to_tsquery('simple', %s)")
                params.append(term)
            elif len(term) < _SHORT and word:
                # Only letters and digits reach to_tsquery, so no input can be a tsquery syntax error.
                where.append("words @@ to_tsquery('simple', %s)")
                params.append(f"{word}:*")
            else:
                where.append(f"{self._DOCUMENT} LIKE lower(%s)")
                params.append(_like_pattern(term))
        return " AND ".join(where), params

    def scanned(self, terms: Sequence[str]) -> tuple[str, Params]:
        # strpos, not LIKE: the planner must not take the trigram index for this form, and a function
        # compared with 0 is estimated to keep a third of the rows, so it reads the newest rows first.
        where = " AND ".join(f"strpos({self._DOCUMENT}, lower(%s)) > 0" for _term in terms)
        return where, list(terms)

    def sample(self, terms: Sequence[str], size: int) -> tuple[str, Params]:
        where, params = self.scanned(terms)
        sql = (
            "SELECT (SELECT count(*) FROM (SELECT subject, contact, body FROM desk_search"  # noqa: S608
            f" ORDER BY conversation_id DESC LIMIT %s) newest WHERE {where}),"
            " (SELECT coalesce(max(conversation_id), 0) FROM desk_search)"
        )
        return sql, [size, *params]


_COLUMNS = ("subject", "contact", "body")


def _backend(using: str) -> _SQLite | _PostgreSQL:
    vendor = connections[using].vendor
    if vendor == "sqlite":
        return _SQLite()
    if vendor == "postgresql":
        return _PostgreSQL()
    raise NotImplementedError(f"full-text search is not implemented for {vendor}")


def expected_matches(terms: Sequence[str], using: str = DEFAULT_DB_ALIAS) -> int:
    """About how many conversations match, from the share of matches among the newest SAMPLE documents."""
    backend = _backend(using)
    sql, params = backend.sample(terms, SAMPLE)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        hits, highest = cursor.fetchone()
    sampled = min(SAMPLE, int(highest))
    return int(hits) if sampled <= 0 or sampled >= int(highest) else round(int(hits) * int(highest) / sampled)


def filter_matching(rows: QuerySet[Conversation], q: str) -> QuerySet[Conversation]:
    """`rows` narrowed to the conversations that match `q`; their order is left alone.

    `rows` is the user's list query (visible conversations and the list's filters), so a search never
    reaches further than the list. A query without terms (only spaces or quotes) does not narrow.

    When about COMMON_MATCHES or more conversations match (a common word in a big database), only the
    newest COMMON_WINDOW matching conversations (by creation) are candidates: finding them costs a few
    thousand rows, where all the matches would cost hundreds of thousands. Fewer words, never more.
    """
    terms = parse(q)
    if not terms:
        return rows
    backend = _backend(rows.db)
    if expected_matches(terms, rows.db) >= COMMON_MATCHES:
        sql, params = backend.newest(terms, COMMON_WINDOW)
    else:
        sql, params = backend.matching(terms)
    return rows.filter(pk__in=RawSQL(sql, params))  # noqa: S611 — our SQL; the user's text is in params


def score(subject: str, contact: str, body: str, weights: dict[str, float], *, average_length: float) -> float:
    """Relevance of one case-folded document for case-folded terms with their weights: BM25-like for the
    body, plus fixed amounts for a hit in the subject or the contact, which say most about a conversation."""
    total = 0.0
    length_factor = 1.2 * (0.25 + 0.75 * len(body) / max(average_length, 1.0))
    for term, weight in weights.items():
        frequency = body.count(term)
        body_score = frequency * 2.2 / (frequency + length_factor)
        total += weight * (3.0 * (term in subject) + 2.0 * (term in contact) + body_score)
    return total


def ranked(rows: QuerySet[Conversation], q: str, *, limit: int = 20, window: int = RANK_WINDOW) -> list[Conversation]:
    """The `limit` best matches for `q` among the `window` most recent matching conversations of `rows`.

    Recency first keeps a common word cheap: the database finds the newest matches through the list's
    own order, and only those are scored. Equal scores keep the newer conversation first.
    """
    terms = parse(q)
    newest = filter_matching(rows, q).order_by("-last_message_at", "-id")
    if not terms:
        return list(newest[:limit])
    ids = list(newest.values_list("pk", flat=True)[:window])
    if not ids:
        return []
    key = _backend(rows.db).key
    placeholders = ", ".join(["%s"] * len(ids))
    with connections[rows.db].cursor() as cursor:
        sql = f"SELECT {key}, subject, contact, body FROM desk_search WHERE {key} IN ({placeholders})"  # noqa: S608
        cursor.execute(sql, ids)
        documents = {row[0]: (row[1].casefold(), row[2].casefold(), row[3].casefold()) for row in cursor.fetchall()}
    # Rarer terms weigh more: inverse document frequency within the window.
    weights = {
        term: math.log(1 + len(documents) / (1 + sum(term in " ".join(doc) for doc in documents.values())))
        for term in (term.casefold() for term in terms)
    }
    average = sum(len(doc[2]) for doc in documents.values()) / max(len(documents), 1)
    scores = {pk: score(*doc, weights, average_length=average) for pk, doc in documents.items()}
    recency = {pk: position for position, pk in enumerate(ids)}
    best = sorted(ids, key=lambda pk: (-scores.get(pk, 0.0), recency[pk]))[:limit]
    found = rows.filter(pk__in=best).in_bulk()
    return [found[pk] for pk in best if pk in found]


def rebuild(using: str = DEFAULT_DB_ALIAS, *, workers: int = 2) -> int:
    """Rewrite the whole search index from the tables; returns how many conversations it holds.

    For bulk loads that paused the triggers (PAUSE_SQL), and as a repair; callable from any script.
    A maintenance operation: on PostgreSQL new mail waits until it is done (minutes at a million
    conversations). There the GIN indexes are dropped and built again afterwards, much faster than
    filling them row by row, and, outside a transaction, the filling and the index builds each run on
    `workers` connections at once (GIN indexes are not built in parallel by PostgreSQL 15 itself).
    """
    connection = connections[using]
    if connection.vendor == "sqlite":
        with transaction.atomic(using), connection.cursor() as cursor:
            cursor.execute("DELETE FROM desk_search")
            cursor.execute("INSERT INTO desk_search (rowid, subject, contact, body) SELECT * FROM desk_search_source")
            count = int(cursor.rowcount)
            cursor.execute("INSERT INTO desk_search (desk_search) VALUES ('optimize')")
        return count
    if connection.vendor != "postgresql":
        raise NotImplementedError(f"full-text search is not implemented for {connection.vendor}")

    with transaction.atomic(using), connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = 'desk_search' AND indexname <> 'desk_search_pkey'"
        )
        indexes = [str(definition) for _name, definition in cursor.fetchall()]
        names = [definition.split()[2] for definition in indexes]  # CREATE INDEX <name> ON …
        cursor.execute("TRUNCATE desk_search")
        for name in names:
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute("SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM desk_conversation")
        low, high = (int(value) for value in cursor.fetchone())
    fill = (
        "INSERT INTO desk_search (conversation_id, subject, contact, body)"
        " SELECT * FROM desk_search_source WHERE conversation_id BETWEEN %s AND %s"
    )
    step = (high - low) // max(workers, 1) + 1
    fills: list[tuple[str, Params]] = [(fill, [start, start + step - 1]) for start in range(low, high + 1, step)]
    builds: list[tuple[str, Params]] = [(definition, []) for definition in indexes]
    if connection.in_atomic_block:  # the caller's transaction: other connections would not see its rows
        counts = [_execute(using, sql, params) for sql, params in fills + builds]
    else:
        counts = _in_parallel(using, fills, workers) + _in_parallel(using, builds, workers)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE desk_search")
    return sum(counts[: len(fills)])


def _execute(using: str, sql: str, params: Params) -> int:
    with connections[using].cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")  # for the index builds; this session only
        cursor.execute(sql, params)
        return max(int(cursor.rowcount), 0)


def _in_parallel(using: str, statements: list[tuple[str, Params]], workers: int) -> list[int]:
    """Run each statement in autocommit on a connection of its own thread; the rows each one wrote."""

    def run(sql: str, params: Params) -> int:
        try:
            return _execute(using, sql, params)
        finally:
            connections[using].close()  # this thread's connection

    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        return list(pool.map(lambda statement: run(*statement), statements))
