"""Full-text search: one search document per conversation, kept current by database triggers.

The document holds the conversation's subject, its contact's name and address, and the text of every
message (inbound, outbound and notes; not events). Triggers on desk_conversation and desk_message keep
it current, so no caller has to remember: new mail, replies, notes, merges and splits (a message whose
conversation_id changes) and deletions all reach the index, and so do bulk loads with COPY on PostgreSQL
(statement-level triggers see the copied rows). See postdesk/desk/search.py for how it is queried.

SQLite: an FTS5 table with the `trigram` tokenizer (case-insensitive substrings in every script,
Chinese included), rowid = conversation id, rewritten from the tables by row-level triggers.

PostgreSQL: a plain table `desk_search` with two GIN indexes: pg_trgm trigrams over the whole document
(substrings of 3+ characters), and words with the `simple` text-search configuration, where CJK text
counts as its single characters and pairs of characters (queries of 1–2 characters have no trigram).

Both normalise the text the same way as search.normalise() does with the query: Persian/Arabic yeh and
kaf, Russian ё, apostrophe variants, invisible joiners, and runs of whitespace. PostgreSQL also stores
it lowercased (FTS5's tokenizer folds case itself).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from django.db import migrations

# (character, replacement) — the same table as search.CHARACTER_MAP; kept here too because a migration
# must not change when the code does.
_MAP = (
    ("\u0451", "\u0435"),  # ё → е
    ("\u0401", "\u0415"),  # Ё → Е
    ("\u064a", "\u06cc"),  # Arabic yeh → Persian yeh
    ("\u0649", "\u06cc"),  # alef maksura → Persian yeh
    ("\u0643", "\u06a9"),  # Arabic kaf → Persian kaf (keheh)
    ("\u2019", "'"),  # right single quotation mark (Ukrainian apostrophe) → '
    ("\u02bc", "'"),  # modifier letter apostrophe → '
    ("\t", " "),
    ("\n", " "),
    ("\r", " "),
    ("\f", " "),
    ("\v", " "),
    ("\u00a0", " "),  # no-break space
    ("\u2028", " "),
    ("\u2029", " "),
    ("\u3000", " "),  # ideographic space
    ("\u200b", " "),  # zero-width space separates words
)
_DROP = ("\u200c", "\u200d", "\u00ad", "\ufeff")  # ZWNJ, ZWJ, soft hyphen, BOM
# Han, kana, Hangul: scripts written without spaces between words (Hangul has them, but its
# two-syllable words are common queries); their 1–2 character queries have no trigram.
_CJK_RANGES = r"\u3005\u3007\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002fa1f"
_CJK_CLASS = f"[{_CJK_RANGES}]"
_CJK_NOT = f"[^{_CJK_RANGES}]"


def _pg_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pg_replace_chain(expression: str) -> str:
    for source, target in _MAP:
        if target != " ":
            expression = f"replace({expression}, {_pg_literal(source)}, {_pg_literal(target)})"
    for source in _DROP:
        expression = f"replace({expression}, {_pg_literal(source)}, '')"
    return expression


def _pg_space_class() -> str:
    """The characters _MAP turns into spaces, as escapes inside a regular expression bracket."""
    named = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\v": "\\v"}
    return "".join(named.get(source, f"\\u{ord(source):04x}") for source, target in _MAP if target == " ")


# --- PostgreSQL ------------------------------------------------------------------------------------------

PG_FUNCTIONS = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Lowercased once here, so a search is a plain LIKE: ILIKE lowercases every document it looks at again.
-- Nested replace() calls and one regexp_replace: translate() with this many characters was 3x slower.
CREATE FUNCTION desk_search_norm(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT lower(regexp_replace({_pg_replace_chain("t")}, '[{_pg_space_class()} ]+', ' ', 'g'))
$$;

-- What the trigram index covers. Newlines cannot occur in normalised text or queries, so no phrase
-- matches across the three parts.
CREATE FUNCTION desk_search_document(subject text, contact text, body text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT subject || E'\\n' || contact || E'\\n' || body
$$;

-- Words, for queries of one or two characters, which have no trigram. Chinese (and Japanese, Korean)
-- text is a run of characters without spaces, which the parser would keep as one long word: each run
-- is given as its single characters and as its overlapping pairs of characters ("订单号" → 订 单 号 订单
-- 单号), pairs at even offsets then at odd ones, with regexp_replace; one index serves both kinds.
-- Cut at 100,000 characters: a tsvector may not exceed 1 MB.
CREATE FUNCTION desk_search_words(subject text, contact text, body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT strip(CASE WHEN d !~ '{_CJK_CLASS}' THEN to_tsvector('simple'::regconfig, d) ELSE
        to_tsvector('simple'::regconfig, regexp_replace(d, '({_CJK_CLASS})', ' \\1 ', 'g'))
        || to_tsvector('simple'::regconfig, regexp_replace(
               regexp_replace(d, '{_CJK_NOT}+', ' ', 'g'),
               '({_CJK_CLASS}{_CJK_CLASS})', ' \\1 ', 'g'))
        || to_tsvector('simple'::regconfig, regexp_replace(
               regexp_replace(regexp_replace(d, '{_CJK_NOT}+', ' ', 'g'), '(^| )({_CJK_CLASS})', '\\1\\2 ', 'g'),
               '({_CJK_CLASS}{_CJK_CLASS})', ' \\1 ', 'g'))
    END)
    FROM (SELECT left(subject || ' ' || contact || ' ' || body, 100000) AS d) doc
$$;

CREATE TABLE desk_search (
    conversation_id bigint PRIMARY KEY,  -- desk_conversation.id; no foreign key, so TRUNCATE stays simple
    subject text NOT NULL DEFAULT '',
    contact text NOT NULL DEFAULT '',
    body text NOT NULL DEFAULT '',
    -- Stored, not an index expression: computing it takes about 0.3 ms for a Chinese document, and a
    -- plan that walks a list in order would compute it again for every conversation it passes.
    words tsvector GENERATED ALWAYS AS (desk_search_words(subject, contact, body)) STORED
);

-- What each conversation's document is; the triggers and search.rebuild() copy rows from it.
CREATE VIEW desk_search_source (conversation_id, subject, contact, body) AS
SELECT c.id, desk_search_norm(c.subject), desk_search_norm(c.contact_name || ' ' || c.contact_address),
       coalesce((SELECT desk_search_norm(string_agg(m.text, ' ' ORDER BY m.id))
                 FROM desk_message m
                 WHERE m.conversation_id = c.id AND m.direction <> 'event' AND m.text <> ''), '')
FROM desk_conversation c;

-- Rewrite the documents of these conversations from the tables. Rows are locked first, so the query
-- that follows (a new snapshot) sees what a concurrent writer of the same conversation committed.
CREATE FUNCTION desk_search_refresh(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM desk_search WHERE conversation_id = ANY(ids) ORDER BY conversation_id FOR UPDATE;
    INSERT INTO desk_search AS s (conversation_id, subject, contact, body)
    SELECT * FROM desk_search_source WHERE conversation_id = ANY(ids)
    ON CONFLICT (conversation_id) DO UPDATE
        SET subject = EXCLUDED.subject, contact = EXCLUDED.contact, body = EXCLUDED.body;
    DELETE FROM desk_search s WHERE s.conversation_id = ANY(ids)
        AND NOT EXISTS (SELECT 1 FROM desk_conversation c WHERE c.id = s.conversation_id);
END $$;

-- Bulk loaders may `SET LOCAL postdesk.search_paused = 'on'` and call search.rebuild() afterwards.
CREATE FUNCTION desk_search_paused() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('postdesk.search_paused', true), '') = 'on'
$$;

CREATE FUNCTION desk_search_conversations_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF desk_search_paused() THEN RETURN NULL; END IF;
    INSERT INTO desk_search AS s (conversation_id, subject, contact)
    SELECT n.id, desk_search_norm(n.subject), desk_search_norm(n.contact_name || ' ' || n.contact_address)
    FROM new_rows n
    ON CONFLICT (conversation_id) DO UPDATE SET subject = EXCLUDED.subject, contact = EXCLUDED.contact;
    RETURN NULL;
END $$;

CREATE FUNCTION desk_search_conversation_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF desk_search_paused() THEN RETURN NULL; END IF;
    PERFORM desk_search_refresh(ARRAY[NEW.id]);
    RETURN NULL;
END $$;

CREATE FUNCTION desk_search_conversations_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM desk_search WHERE conversation_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE FUNCTION desk_search_conversations_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM desk_search;
    RETURN NULL;
END $$;

-- New messages are appended to their conversation's document: one statement per INSERT or COPY,
-- and safe against concurrent appends (ON CONFLICT works on the newest row version).
CREATE FUNCTION desk_search_messages_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF desk_search_paused() THEN RETURN NULL; END IF;
    INSERT INTO desk_search AS s (conversation_id, subject, contact, body)
    SELECT c.id, desk_search_norm(c.subject), desk_search_norm(c.contact_name || ' ' || c.contact_address), n.body
    FROM (SELECT conversation_id, desk_search_norm(string_agg(text, ' ' ORDER BY id)) AS body
          FROM new_rows WHERE direction <> 'event' AND text <> '' GROUP BY conversation_id) n
    JOIN desk_conversation c ON c.id = n.conversation_id
    ON CONFLICT (conversation_id) DO UPDATE
        SET body = CASE WHEN s.body = '' THEN EXCLUDED.body ELSE s.body || ' ' || EXCLUDED.body END;
    RETURN NULL;
END $$;

-- Edited, moved (merge, split) or re-typed messages: rewrite both conversations' documents.
CREATE FUNCTION desk_search_messages_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF desk_search_paused() THEN RETURN NULL; END IF;
    SELECT array_agg(DISTINCT x) INTO ids FROM (
        SELECT unnest(ARRAY[o.conversation_id, n.conversation_id]) AS x
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.text IS DISTINCT FROM n.text OR o.conversation_id IS DISTINCT FROM n.conversation_id
           OR o.direction IS DISTINCT FROM n.direction
    ) changed;
    IF ids IS NOT NULL THEN PERFORM desk_search_refresh(ids); END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION desk_search_messages_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF desk_search_paused() THEN RETURN NULL; END IF;
    PERFORM desk_search_refresh(ARRAY(SELECT DISTINCT conversation_id FROM old_rows));
    RETURN NULL;
END $$;

CREATE TRIGGER desk_search_conversation_insert AFTER INSERT ON desk_conversation
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION desk_search_conversations_inserted();
CREATE TRIGGER desk_search_conversation_update AFTER UPDATE OF subject, contact_name, contact_address
    ON desk_conversation FOR EACH ROW
    WHEN (OLD.subject IS DISTINCT FROM NEW.subject OR OLD.contact_name IS DISTINCT FROM NEW.contact_name
          OR OLD.contact_address IS DISTINCT FROM NEW.contact_address)
    EXECUTE FUNCTION desk_search_conversation_changed();
CREATE TRIGGER desk_search_conversation_delete AFTER DELETE ON desk_conversation
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION desk_search_conversations_deleted();
CREATE TRIGGER desk_search_conversation_truncate AFTER TRUNCATE ON desk_conversation
    FOR EACH STATEMENT EXECUTE FUNCTION desk_search_conversations_truncated();
CREATE TRIGGER desk_search_message_insert AFTER INSERT ON desk_message
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION desk_search_messages_inserted();
CREATE TRIGGER desk_search_message_update AFTER UPDATE ON desk_message
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION desk_search_messages_updated();
CREATE TRIGGER desk_search_message_delete AFTER DELETE ON desk_message
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION desk_search_messages_deleted();
"""

PG_FILL = """
INSERT INTO desk_search (conversation_id, subject, contact, body) SELECT * FROM desk_search_source;
"""

PG_INDEXES = """
CREATE INDEX desk_search_trigrams ON desk_search USING gin (desk_search_document(subject, contact, body) gin_trgm_ops);
CREATE INDEX desk_search_words ON desk_search USING gin (words);
ANALYZE desk_search;
"""

PG_REVERSE = """
DROP TRIGGER IF EXISTS desk_search_conversation_insert ON desk_conversation;
DROP TRIGGER IF EXISTS desk_search_conversation_update ON desk_conversation;
DROP TRIGGER IF EXISTS desk_search_conversation_delete ON desk_conversation;
DROP TRIGGER IF EXISTS desk_search_conversation_truncate ON desk_conversation;
DROP TRIGGER IF EXISTS desk_search_message_insert ON desk_message;
DROP TRIGGER IF EXISTS desk_search_message_update ON desk_message;
DROP TRIGGER IF EXISTS desk_search_message_delete ON desk_message;
DROP VIEW IF EXISTS desk_search_source;
DROP TABLE IF EXISTS desk_search;
DROP FUNCTION IF EXISTS desk_search_conversations_inserted(), desk_search_conversation_changed(),
    desk_search_conversations_deleted(), desk_search_conversations_truncated(), desk_search_messages_inserted(),
    desk_search_messages_updated(), desk_search_messages_deleted(), desk_search_paused(),
    desk_search_refresh(bigint[]), desk_search_words(text, text, text),
    desk_search_document(text, text, text), desk_search_norm(text);
"""


# --- SQLite ----------------------------------------------------------------------------------------------


def _sqlite_literal(text: str) -> str:
    """A SQL expression for `text`; control and invisible characters through char() so the SQL stays readable."""
    if text.isprintable() and text.isascii():
        return "'" + text.replace("'", "''") + "'"
    return "char(" + ", ".join(str(ord(ch)) for ch in text) + ")"


def _sqlite_replace(expression: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for source, target in pairs:
        expression = f"replace({expression}, {_sqlite_literal(source)}, {_sqlite_literal(target)})"
    return expression


_SPACE_PAIRS = tuple(pair for pair in _MAP if pair[1] == " ")
_LETTER_PAIRS = tuple(pair for pair in _MAP if pair[1] != " ") + tuple((source, "") for source in _DROP)
# Each pass halves a run of spaces: runs of up to 32 become one.
_COLLAPSE_PAIRS = (("  ", " "),) * 5

_SQLITE_BODY = (
    "coalesce((SELECT group_concat(m.text, ' ') FROM desk_message m"
    " WHERE m.conversation_id = c.id AND m.direction <> 'event' AND m.text <> ''), '')"
)


def _stage(pairs: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(_sqlite_replace(column, pairs) + f" AS {column}" for column in ("subject", "contact", "body"))


# What each conversation's document is (desk_search_norm() as nested replace() calls, in three stages:
# SQLite has no translate() or regexp_replace(), and its parser limits how deeply calls nest).
# The triggers and search.rebuild() copy rows from it.
SQLITE_SOURCE = f"""
CREATE VIEW desk_search_source (conversation_id, subject, contact, body) AS
SELECT conversation_id, {_stage(_COLLAPSE_PAIRS)} FROM (
    SELECT conversation_id, {_stage(_SPACE_PAIRS)} FROM (
        SELECT conversation_id, {_stage(_LETTER_PAIRS)} FROM (
            SELECT c.id AS conversation_id, c.subject AS subject,
                   c.contact_name || ' ' || c.contact_address AS contact, {_SQLITE_BODY} AS body
            FROM desk_conversation c
        )
    )
);
"""


def _sqlite_refresh(conversation: str) -> str:
    """Statements that rewrite the document of the conversation whose id is the SQL expression `conversation`."""
    return (
        f"DELETE FROM desk_search WHERE rowid = {conversation};\n"
        "INSERT INTO desk_search (rowid, subject, contact, body)"
        f" SELECT * FROM desk_search_source WHERE conversation_id = {conversation};"
    )


SQLITE_FORWARD = f"""
CREATE VIRTUAL TABLE desk_search USING fts5(subject, contact, body, tokenize = 'trigram');
{SQLITE_SOURCE}
CREATE TRIGGER desk_search_conversation_insert AFTER INSERT ON desk_conversation BEGIN
{_sqlite_refresh("NEW.id")}
END;
CREATE TRIGGER desk_search_conversation_update AFTER UPDATE OF subject, contact_name, contact_address
ON desk_conversation
WHEN OLD.subject IS NOT NEW.subject OR OLD.contact_name IS NOT NEW.contact_name
     OR OLD.contact_address IS NOT NEW.contact_address
BEGIN
{_sqlite_refresh("NEW.id")}
END;
CREATE TRIGGER desk_search_conversation_delete AFTER DELETE ON desk_conversation BEGIN
DELETE FROM desk_search WHERE rowid = OLD.id;
END;
CREATE TRIGGER desk_search_message_insert AFTER INSERT ON desk_message
WHEN NEW.direction <> 'event' AND NEW.text <> ''
BEGIN
{_sqlite_refresh("NEW.conversation_id")}
END;
CREATE TRIGGER desk_search_message_update AFTER UPDATE OF text, conversation_id, direction ON desk_message
WHEN OLD.text IS NOT NEW.text OR OLD.conversation_id IS NOT NEW.conversation_id OR OLD.direction IS NOT NEW.direction
BEGIN
{_sqlite_refresh("NEW.conversation_id")}
{_sqlite_refresh("OLD.conversation_id")}
END;
CREATE TRIGGER desk_search_message_delete AFTER DELETE ON desk_message BEGIN
{_sqlite_refresh("OLD.conversation_id")}
END;
INSERT INTO desk_search (rowid, subject, contact, body) SELECT * FROM desk_search_source;
"""

SQLITE_REVERSE = """
DROP TRIGGER IF EXISTS desk_search_conversation_insert;
DROP TRIGGER IF EXISTS desk_search_conversation_update;
DROP TRIGGER IF EXISTS desk_search_conversation_delete;
DROP TRIGGER IF EXISTS desk_search_message_insert;
DROP TRIGGER IF EXISTS desk_search_message_update;
DROP TRIGGER IF EXISTS desk_search_message_delete;
DROP VIEW IF EXISTS desk_search_source;
DROP TABLE IF EXISTS desk_search;
"""


def _sqlite_statements(script: str) -> list[str]:
    """`script` cut into statements; trigger bodies hold semicolons, so ask sqlite3 where each one ends."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending!r}")
    return statements


def _run(schema_editor: Any, script: str) -> None:
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "sqlite":
            # Not executescript(): it would commit the migration's transaction first.
            for statement in _sqlite_statements(script):
                cursor.execute(statement)
        else:
            cursor.execute(script)


def forward(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, PG_FUNCTIONS + PG_FILL + PG_INDEXES)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_FORWARD)
    else:
        raise RuntimeError(f"full-text search is not implemented for {vendor}")


def backward(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, PG_REVERSE)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("desk", "0004_workspace")]

    operations = [migrations.RunPython(forward, backward)]
