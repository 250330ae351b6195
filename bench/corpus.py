"""Corpus benchmark: how much of each public corpus's expectations Postdesk meets, beside baselines run alike.

For every corpus in ../shared/corpora it prints one row per engine: how many mails parse without a
problem, how many cases meet all their expectations, and per kind of expectation (subject, sender,
attachments, bounce verdict, bounced recipients, auto-replies, visible reply text) how many of the
cases that assert it are right. The baselines run through the very same checks in the same run:
the stdlib (`email` with `policy.default`) for the parser corpora, and mail-parser-reply alone
(as in bench/parse.py) for the reply corpora. Then the perl-mail-thread mboxes go through the
real intake and processing on a throw-away SQLite database, and "same conversation" is compared
with "same expected thread tree" pair by pair.

    python bench/corpus.py

Figures, not pass/fail (tests/mail/test_corpora.py and tests/desk/test_threading_corpus.py are the
tests). The checks are tests/mail/corpus_checks.py.
"""

from __future__ import annotations

import email
import email.policy
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "mail"))

import corpus_checks  # noqa: E402
from corpus_checks import CaseResult, PairCounts, ThreadCase, analyse_fully  # noqa: E402

from parse import mpr_visible  # noqa: E402  (bench/parse.py: mail-parser-reply as Postdesk once used it)
from postdesk.mail.body import html_to_text  # noqa: E402
from postdesk.mail.model import Address, Attachment, ParsedMessage, ParseProblem, ReplyParts  # noqa: E402

T = TypeVar("T")
Reader = Callable[[bytes], ParsedMessage]
Checks = Callable[[], list[CaseResult]]

# The per-kind columns: CaseResult field → column title.
COLUMNS = {
    "subject_ok": "subject",
    "sender_ok": "sender",
    "attachments_ok": "attach",
    "bounce_ok": "bounce",
    "recipients_found": "recips",
    "auto_reply_ok": "autorepl",
    "visible_ok": "visible",
}


def stdlib_read(raw: bytes) -> ParsedMessage:
    """The stdlib baseline in Postdesk's result type; whatever raises is an internal-error problem."""
    problems: list[ParseProblem] = []

    def attempt(what: str, get: Callable[[], T], default: T) -> T:
        try:
            return get()
        except Exception as exc:
            problems.append(ParseProblem("internal-error", f"{what}: {type(exc).__name__}: {exc}"))
            return default

    msg: EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[assignment]

    def addresses(name: str) -> tuple[Address, ...]:
        header: Any = msg.get(name)
        if header is None:
            return ()
        return tuple(Address(a.addr_spec, a.display_name) for a in header.addresses)

    def body(subtype: str) -> str:
        part = msg.get_body((subtype,))
        return str(part.get_content()) if part is not None else ""

    def attachments() -> tuple[Attachment, ...]:
        found: list[Attachment] = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            filename = part.get_filename()
            if part.is_attachment() or filename:
                content = part.get_payload(decode=True)
                found.append(
                    Attachment(
                        filename or "",
                        part.get_content_type(),
                        content if isinstance(content, bytes) else b"",
                        content_id=str(part.get("content-id") or "").strip().strip("<>") or None,
                        inline=part.get_content_disposition() == "inline",
                    )
                )
        return tuple(found)

    def date() -> Any:
        header: Any = msg.get("date")
        when = header.datetime if header is not None else None
        return when.astimezone(UTC) if when is not None and when.tzinfo is not None else None

    senders = attempt("from", lambda: addresses("from"), ())
    return ParsedMessage(
        message_id=attempt("message-id", lambda: str(msg.get("message-id") or "").strip().strip("<>") or None, None),
        in_reply_to=(),
        references=(),
        subject=attempt("subject", lambda: str(msg.get("subject") or ""), ""),
        from_=senders[0] if senders else None,
        to=attempt("to", lambda: addresses("to"), ()),
        cc=attempt("cc", lambda: addresses("cc"), ()),
        reply_to=attempt("reply-to", lambda: addresses("reply-to"), ()),
        date=attempt("date", date, None),
        text=attempt("text body", lambda: body("plain"), ""),
        html=attempt("html body", lambda: body("html"), ""),
        attachments=attempt("attachments", attachments, ()),
        headers=attempt("headers", lambda: tuple((k, str(v)) for k, v in msg.items()), ()),
        thread_index=None,
        problems=tuple(problems),
    )


def mpr_split(text: str) -> ReplyParts:
    """mail-parser-reply alone: its newest reply's body is the visible text."""
    return ReplyParts(visible=mpr_visible(text), quoted="", signature="")


@dataclass(frozen=True, slots=True)
class Engine:
    name: str
    read: Reader | None  # for "parsed without a problem"; None: the engine parses no mail here
    checks: Checks


@dataclass(frozen=True, slots=True)
class Corpus:
    label: str
    folder: str | None  # the folder of its mail files; None: the cases are plain text, not mail
    engines: tuple[Engine, ...]


def _beside_stdlib(name: str, folder: str, cases: Callable[..., list[CaseResult]]) -> Corpus:
    """A parser corpus: Postdesk's parse and the stdlib's through the same checks."""
    return Corpus(
        name,
        folder,
        (
            Engine("postdesk", analyse_fully, cases),
            Engine("stdlib", stdlib_read, lambda: cases(stdlib_read)),
        ),
    )


def corpora() -> tuple[Corpus, ...]:
    c = corpus_checks
    return (
        _beside_stdlib("stalwart", "stalwart-mail-parser", c.stalwart_cases),
        _beside_stdlib("zbateson", "zbateson-mail-mime-parser", c.zbateson_cases),
        _beside_stdlib("spamscope", "spamscope-mail-parser", c.spamscope_cases),
        _beside_stdlib("mimekit-tnef", "mimekit-tnef", c.tnef_cases),
        Corpus("flanker", "flanker", (Engine("postdesk", analyse_fully, c.flanker_cases),)),
        Corpus("flufl-bounce", "flufl-bounce", (Engine("postdesk", analyse_fully, c.flufl_cases),)),
        Corpus("sisimai", "sisimai-bounces", (Engine("postdesk", analyse_fully, c.sisimai_cases),)),
        Corpus(
            "discourse",
            None,
            (
                Engine("postdesk", None, c.discourse_cases),
                Engine("mail-parser-reply", None, lambda: c.discourse_cases(mpr_split)),
            ),
        ),
        Corpus(
            "talon",
            "talon",
            (
                Engine("postdesk", analyse_fully, c.talon_cases),
                Engine("mail-parser-reply", None, lambda: c.talon_cases(mpr_split)),
            ),
        ),
        Corpus(
            "talon-html",
            None,
            (
                Engine("postdesk", None, c.talon_html_cases),
                Engine("mail-parser-reply", None, lambda: c.talon_html_cases(lambda h: mpr_split(html_to_text(h)))),
            ),
        ),
    )


@dataclass(frozen=True, slots=True)
class Row:
    corpus: str
    engine: str
    mails: int | None
    parsed: int | None
    results: tuple[CaseResult, ...]
    seconds: float

    def count(self, field: str) -> tuple[int, int]:
        """(right, asserted) over the cases that assert this kind of expectation."""
        values = [getattr(r, field) for r in self.results if getattr(r, field) is not None]
        return sum(values), len(values)


def run(corpus: Corpus, engine: Engine) -> Row:
    start = time.perf_counter()
    mails = parsed = None
    if corpus.folder is not None and engine.read is not None:
        robustness = corpus_checks.robustness_cases(corpus.folder, engine.read)
        mails, parsed = len(robustness), sum(bool(r.parsed_without_problem) for r in robustness)
    results = tuple(engine.checks())
    return Row(corpus.label, engine.name, mails, parsed, results, time.perf_counter() - start)


def fraction(right: int | None, total: int | None) -> str:
    return "-" if right is None or not total else f"{right}/{total}"


def print_table(rows: list[Row]) -> None:
    header = f"{'corpus':16} {'engine':17} {'mails':>5} {'parsed':>9} {'all met':>9}"
    header += "".join(f" {title:>9}" for title in COLUMNS.values()) + f" {'seconds':>8}"
    print(header)
    for row in rows:
        met = sum(1 for r in row.results if not r.failure)
        line = f"{row.corpus:16} {row.engine:17} {row.mails if row.mails is not None else '-':>5}"
        line += f" {fraction(row.parsed, row.mails):>9} {fraction(met, len(row.results)):>9}"
        line += "".join(f" {fraction(*row.count(field)):>9}" for field in COLUMNS)
        print(line + f" {row.seconds:8.2f}")


# --- threading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Threaded:
    case: ThreadCase
    processed: int
    conversations: int
    pairs: PairCounts


def thread_all(cases: list[ThreadCase]) -> list[Threaded]:
    """Every mbox into its own mailbox of a fresh SQLite database, through accept_raw and the worker's step.

    In-process rather than through `postdesk ingest` + a worker: the figures are about which
    conversation each mail lands in, not speed, and a direct call needs no queue to drain.
    """
    with tempfile.TemporaryDirectory(prefix="postdesk-bench-corpus-") as data_dir:
        for name in ("DATABASE_URL", "REDIS_URL"):  # SQLite in the temporary data dir, no job queue
            os.environ.pop(name, None)
        os.environ["POSTDESK_DATA_DIR"] = data_dir
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
        import django

        django.setup()
        from django.core.management import call_command

        from postdesk.desk.intake import accept_raw
        from postdesk.desk.models import Mailbox, Message, ReceivedMail, ReceivedState, Source
        from postdesk.desk.processing import process_received_mail

        call_command("migrate", verbosity=0)
        outcomes: list[Threaded] = []
        for index, case in enumerate(cases):
            mailbox = Mailbox.objects.create(address=f"list{index}@example.com", name=case.mbox)
            for raw in case.mails:
                accepted = accept_raw(mailbox, raw, source=Source.IMPORT, enqueue=lambda _id: None)
                process_received_mail(accepted.received_mail_id)
            processed = ReceivedMail.objects.filter(mailbox=mailbox, state=ReceivedState.PROCESSED).count()
            conversation_of = {
                m.message_id: m.conversation_id for m in Message.objects.filter(mailbox=mailbox) if m.message_id
            }
            pairs = corpus_checks.pair_counts(case.tree_of, conversation_of)
            outcomes.append(Threaded(case, processed, len(set(conversation_of.values())), pairs))
        return outcomes


def print_threading(outcomes: list[Threaded]) -> dict[str, PairCounts]:
    groups = {
        "references only (nosubject)": [o for o in outcomes if o.case.tree_of and not o.case.subject_grouping],
        "JWZ + subject grouping": [o for o in outcomes if o.case.tree_of and o.case.subject_grouping],
        "no tree asserted": [o for o in outcomes if not o.case.tree_of],
    }
    print(
        f"{'perl-mail-thread':29} {'mboxes':>6} {'mails':>5} {'processed':>9} {'convs':>5} {'trees':>5}"
        f" {'pairs':>5} {'precision':>9} {'recall':>6}"
    )
    totals: dict[str, PairCounts] = {}
    for label, group in groups.items():
        pairs = sum((o.pairs for o in group), PairCounts())
        totals[label] = pairs
        mails = sum(len(o.case.mails) for o in group)
        trees = sum(len(set(o.case.tree_of.values())) for o in group)
        asserted = any(o.case.tree_of for o in group)
        print(
            f"{label:29} {len(group):6} {mails:5} {fraction(sum(o.processed for o in group), mails):>9}"
            f" {sum(o.conversations for o in group):5} {trees if asserted else '-':>5} {pairs.same_tree:5}"
            f" {f'{pairs.precision:.1%}' if asserted else '-':>9} {f'{pairs.recall:.1%}' if asserted else '-':>6}"
        )
    return totals


def main() -> int:
    if not corpus_checks.CORPORA.is_dir():
        print(f"no corpora at {corpus_checks.CORPORA}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    rows = [run(corpus, engine) for corpus in corpora() for engine in corpus.engines]
    print_table(rows)
    print(
        "parsed: no exception and no internal-error problem; all met: cases meeting every expectation of the"
        " corpus;\nother columns: right/asserted among the cases that assert that kind of expectation"
    )
    print()
    thread_start = time.perf_counter()
    outcomes = thread_all(corpus_checks.thread_cases())
    totals = print_threading(outcomes)
    print(
        f"pairs: message pairs in one expected tree; precision/recall of 'same conversation' vs 'same tree'"
        f" ({time.perf_counter() - thread_start:.1f} s incl. migrate)"
    )
    print()

    def summed(engine: str, field: str) -> tuple[int, int]:
        right = total = 0
        for row in rows:
            if row.engine == engine:
                got, asserted = row.count(field)
                right, total = right + got, total + asserted
        return right, total

    ours = [r for r in rows if r.engine == "postdesk"]
    met = sum(1 for row in ours for r in row.results if not r.failure)
    cases = sum(len(row.results) for row in ours)
    parser_fields = ("subject_ok", "sender_ok", "attachments_ok")
    parser = [summed(engine, f) for engine in ("postdesk", "stdlib") for f in parser_fields]
    pd_facts = sum(r for r, _ in parser[:3]), sum(t for _, t in parser[:3])
    std_facts = sum(r for r, _ in parser[3:]), sum(t for _, t in parser[3:])
    visible = summed("postdesk", "visible_ok")
    mpr = summed("mail-parser-reply", "visible_ok")
    refs = totals["references only (nosubject)"]
    print(
        f"summary: postdesk meets {met}/{cases} corpus cases; subject/sender/attachments {fraction(*pd_facts)}"
        f" (stdlib {fraction(*std_facts)}); visible reply {fraction(*visible)} (mail-parser-reply {fraction(*mpr)});"
        f" reference threads P/R {refs.precision:.0%}/{refs.recall:.0%}; {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
