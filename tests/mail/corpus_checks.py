"""Corpus checks: one CaseResult per corpus case, from which the tests take failures and bench/corpus.py figures.

Each `<corpus>_cases()` reads one corpus and says, per case, whether it meets the corpus's
expectations (`failure`, "" when it does) and which kinds of expectation it met (subject, sender,
attachments, bounce verdict, ...). The functions named after a corpus (`stalwart()`, ...) return
{case: why it failed} for tests/mail/test_corpora.py; bench/corpus.py counts the per-kind fields and
runs the same checks with a baseline passed in as `read` (raw bytes → ParsedMessage) or `split`
(text → ReplyParts), so Postdesk and the baseline are judged by the very same code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Any

from mail_factory import CORPORA, make_mail, multipart, part

from postdesk.cli import iter_raw_mails
from postdesk.mail.analysis import analyse
from postdesk.mail.automated import detect_automated
from postdesk.mail.body import html_to_text, split_reply, split_reply_html
from postdesk.mail.model import Address, AutomatedKind, ParsedMessage, ReplyParts
from postdesk.mail.parse import parse

Reader = Callable[[bytes], ParsedMessage]
Splitter = Callable[[str], ReplyParts]

MAIL_FOLDERS = (
    "stalwart-mail-parser", "zbateson-mail-mime-parser", "flanker", "spamscope-mail-parser",
    "mimekit-tnef", "flufl-bounce", "sisimai-bounces", "talon", "perl-mail-thread",
)  # fmt: skip
_METADATA = {".json", ".md", ".list", ".csv", ".rtf", ".html"}
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?")


@dataclass(frozen=True, slots=True)
class CaseResult:
    """How one corpus case came out; a kind of expectation the case does not assert is None."""

    case: str
    failure: str = ""  # why the case misses its corpus's expectations; "" when it meets them
    _: KW_ONLY
    parsed_without_problem: bool | None = None  # no exception and no internal-error problem
    subject_ok: bool | None = None
    sender_ok: bool | None = None
    attachments_ok: bool | None = None
    bounce_ok: bool | None = None  # bounce or not, as expected
    recipients_found: bool | None = None  # the expected bounced recipients (or status) were found
    auto_reply_ok: bool | None = None  # an expected auto-reply was recognised as one
    visible_ok: bool | None = None  # the visible part of a reply is the expected text


def failures(results: Iterable[CaseResult]) -> dict[str, str]:
    return {r.case: r.failure for r in results if r.failure}


def load(corpus: str) -> Any:
    return json.loads((CORPORA / corpus / "expectations.json").read_text(encoding="utf-8"))


def mail_files(folder: str | None = None) -> list[Path]:
    """Every mail-like file of the mail corpora, or of one (licences, manifests and reference files left out)."""
    files: list[Path] = []
    for name in MAIL_FOLDERS if folder is None else (folder,):
        for path in sorted((CORPORA / name).rglob("*")):
            if not path.is_file() or path.suffix in _METADATA or path.name.startswith(("LICENSE", "COPYING", "NOTICE")):
                continue
            if name == "zbateson-mail-mime-parser" and "files" in path.parts:
                continue
            if name == "mimekit-tnef" and path.suffix != ".tnef" and path.suffix != ".eml":
                continue
            files.append(path)
    return files


def wrap_tnef(raw: bytes) -> bytes:
    """A bare TNEF stream as Outlook sends it: a winmail.dat attachment of a mail."""
    ctype, body = multipart(
        "mixed", part("application/ms-tnef", raw, "Content-Disposition: attachment; filename=winmail.dat", b64=True)
    )
    return make_mail(body, content_type=ctype)


def analyse_fully(raw: bytes) -> ParsedMessage:
    """Everything Postdesk does to a mail without a database: parse, automated detection, reply split."""
    return analyse(raw).parsed


def robustness_cases(folder: str, read: Reader = analyse_fully) -> list[CaseResult]:
    """Every mail file of `folder`: no exception and no internal-error problem."""
    results: list[CaseResult] = []
    for path in mail_files(folder):
        raw = path.read_bytes()
        if path.suffix == ".tnef":
            raw = wrap_tnef(raw)
        name = str(path.relative_to(CORPORA))
        try:
            msg = read(raw)
        except Exception as exc:
            results.append(CaseResult(name, f"raised {type(exc).__name__}: {exc}", parsed_without_problem=False))
            continue
        internal = [p.detail for p in msg.problems if p.code == "internal-error"]
        failure = f"internal-error: {internal[0]}" if internal else ""
        results.append(CaseResult(name, failure, parsed_without_problem=not internal))
    return results


def never_raises() -> dict[str, str]:
    return failures(r for folder in MAIL_FOLDERS for r in robustness_cases(folder))


def _same_address(got: Address | None, want: dict[str, str], key: str = "address") -> str:
    if got is None:
        return f"no address, want {want[key]}"
    if got.address.lower() != (want[key] or "").lower():
        return f"address {got.address!r} != {want[key]!r}"
    if " ".join((want.get("name") or "").split()) != got.name:
        return f"name {got.name!r} != {want.get('name')!r}"
    return ""


def _norm(text: str) -> str:
    return " ".join(text.split())


def _read(read: Reader, raw: bytes) -> ParsedMessage | str:
    """The parsed mail, or why reading it raised (the check then fails with that reason)."""
    try:
        return read(raw)
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc}"


def _fits(got: str, want: str) -> bool:
    """`got` equals `want` after whitespace normalisation, where each U+FFFD in `want` (the reference
    decoder gave up on a byte) stands for any one character."""
    got, want = _norm(got), _norm(want)
    if "\ufffd" not in want:
        return got == want
    return re.fullmatch(".".join(re.escape(piece) for piece in want.split("\ufffd")), got) is not None


def _contains(text: str, want: str) -> bool:
    text, want = _norm(text), _norm(want)
    if "\ufffd" not in want:
        return want in text
    return re.search(".".join(re.escape(piece) for piece in want.split("\ufffd")), text) is not None


def stalwart_cases(read: Reader = parse) -> list[CaseResult]:
    results: list[CaseResult] = []
    for case in load("stalwart-mail-parser"):
        msg = _read(read, (CORPORA / "stalwart-mail-parser" / case["file"]).read_bytes().replace(b"\r\n", b"\n"))
        if isinstance(msg, str):
            results.append(CaseResult(case["file"], msg))
            continue
        why: list[str] = []
        subject_ok = sender_ok = attachments_ok = None
        if case.get("subject") is not None:
            subject_ok = _fits(msg.subject, case["subject"])
            if not subject_ok:
                why.append(f"subject {msg.subject!r} != {case['subject']!r}")
        if case.get("from") and case["from"][0].get("address"):
            problem = _same_address(msg.from_, case["from"][0])
            sender_ok = not problem
            if problem:
                why.append(f"from: {problem}")
        if case.get("to") is not None and [a.address.lower() for a in msg.to] != [
            t["address"].lower() for t in case["to"] if t.get("address")
        ]:
            why.append(f"to {[a.address for a in msg.to]} != {[t['address'] for t in case['to']]}")
        if case.get("date"):
            want = datetime.fromisoformat(case["date"].replace("Z", "+00:00"))
            if msg.date != want:
                why.append(f"date {msg.date} != {want}")
        if case.get("message_id") and msg.message_id != case["message_id"]:
            why.append(f"message_id {msg.message_id!r} != {case['message_id']!r}")
        for line in case.get("body_contains") or []:
            if not _contains(msg.text, line) and not _contains(msg.html, line):
                why.append(f"body lacks {line[:40]!r}")
                break
        wanted = sorted(n for n in (case.get("attachments") or []) if n)
        got = sorted(a.filename for a in msg.attachments)
        if wanted:
            lacking = sorted(w for w in wanted if not any(_fits(g, w) for g in got))
            attachments_ok = not lacking
            if not attachments_ok:
                why.append(f"attachments {got} lack {lacking}")
        results.append(
            CaseResult(
                case["file"], "; ".join(why), subject_ok=subject_ok, sender_ok=sender_ok, attachments_ok=attachments_ok
            )
        )
    return results


def stalwart() -> dict[str, str]:
    return failures(stalwart_cases())


def zbateson_cases(read: Reader = parse) -> list[CaseResult]:
    results: list[CaseResult] = []
    root = CORPORA / "zbateson-mail-mime-parser"
    for case in load("zbateson-mail-mime-parser"):
        path = root / case["file"]
        if not path.exists():
            continue
        msg = _read(read, path.read_bytes())
        if isinstance(msg, str):
            results.append(CaseResult(case["file"], msg))
            continue
        why: list[str] = []
        subject_ok = sender_ok = attachments_ok = None
        if case.get("subject") is not None:
            subject_ok = _norm(msg.subject) == _norm(case["subject"])
            if not subject_ok:
                why.append(f"subject {msg.subject!r} != {case['subject']!r}")
        if case.get("from"):
            problem = _same_address(msg.from_, case["from"], "email")
            sender_ok = not problem
            if problem:
                why.append(f"from: {problem}")
        if case.get("to"):
            problem = _same_address(msg.to[0] if msg.to else None, case["to"], "email")
            if problem:
                why.append(f"to: {problem}")
        if case.get("message_id") and msg.message_id != case["message_id"]:
            why.append(f"message_id {msg.message_id!r}")
        if case.get("text_matches_file"):
            want = (root / case["text_matches_file"]).read_bytes().decode("latin-1")
            if _norm(msg.text) != _norm(want):
                why.append("text differs from file")
        if case.get("attachment_count") is not None:
            count = len(msg.attachments)
            attachments_ok = count == case["attachment_count"]
            if not attachments_ok:
                why.append(f"attachment_count {count} != {case['attachment_count']}")
        results.append(
            CaseResult(
                case["file"], "; ".join(why), subject_ok=subject_ok, sender_ok=sender_ok, attachments_ok=attachments_ok
            )
        )
    return results


def zbateson() -> dict[str, str]:
    return failures(zbateson_cases())


def tnef_cases(read: Reader = parse) -> list[CaseResult]:
    results: list[CaseResult] = []
    root = CORPORA / "mimekit-tnef"
    for case in load("mimekit-tnef"):
        if not case["file"].endswith(".tnef"):
            continue
        msg = _read(read, wrap_tnef((root / case["file"]).read_bytes()))
        if isinstance(msg, str):
            results.append(CaseResult(case["file"], msg, attachments_ok=False))
            continue
        wanted = [n for n in case.get("expected_attachment_names", []) if n not in ("body.rtf", "body.html")]
        got = {a.filename: a for a in msg.attachments}
        missing = [n for n in wanted if n not in got]
        why: list[str] = []
        if missing:
            why.append(f"missing {missing}; got {sorted(got)}")
        for extracted in case.get("expected_extracted_files", []):
            name = extracted["path"].split("/", 1)[-1]
            # The reference files were checked in with text normalisation (CRLF became LF).
            if name in got and extracted["md5"] not in {
                hashlib.md5(got[name].content).hexdigest(),
                hashlib.md5(got[name].content.replace(b"\r\n", b"\n")).hexdigest(),
            }:
                why.append(f"{name}: bytes differ")
        results.append(CaseResult(case["file"], "; ".join(why), attachments_ok=not why))
    return results


def tnef() -> dict[str, str]:
    return failures(tnef_cases())


def _same_mailbox(got: Address | None, want: dict[str, str]) -> str:
    """Like `_same_address`, but a display name that only repeats the address counts as no name.

    mail-parser (spamscope) reports `"x@y" <x@y>` with an empty name; showing it or not tells the
    agent nothing either way, while a name that differs from the address must be kept exactly.
    """
    if got is None:
        return f"no address, want {want['address']}"
    if got.address.lower() != want["address"].lower():
        return f"address {got.address!r} != {want['address']!r}"
    got_name = "" if got.name.lower() == got.address.lower() else _norm(got.name)
    if got_name != _norm(want.get("name") or ""):
        return f"name {got.name!r} != {want.get('name')!r}"
    return ""


def _same_mailboxes(field: str, got: tuple[Address, ...], want: list[dict[str, str]]) -> str:
    if len(got) != len(want):
        return f"{field} {[a.address for a in got]} != {[w['address'] for w in want]}"
    for got_one, want_one in zip(got, want, strict=True):
        problem = _same_mailbox(got_one, want_one)
        if problem:
            return f"{field}: {problem}"
    return ""


def _has_attachment(msg: ParsedMessage, name: str) -> bool:
    """mail-parser names an attachment without a filename by its Content-ID in brackets."""
    if name.startswith("<") and name.endswith(">"):
        return any(a.content_id == name[1:-1] for a in msg.attachments)
    return any(a.filename == name for a in msg.attachments)


def spamscope_cases(read: Reader = parse) -> list[CaseResult]:
    """mail-parser's asserted facts per mail; entries with no asserted values only have to parse.

    Upstream's mail-parser-specific values are left out: the md5 of its own body join, the
    details of its first attachment's MIME headers, its `text_not_managed` list, and `has_defects`
    (the stdlib's defect flag: Postdesk also records problems that are no MIME defect, such as a
    missing Message-ID). A mail with stdlib MIME defects, or one that is no RFC 822 mail at all
    (`format`), must have at least one recorded problem.
    """
    results: list[CaseResult] = []
    root = CORPORA / "spamscope-mail-parser"
    for case in load("spamscope-mail-parser"):
        msg = _read(read, (root / case["file"]).read_bytes())
        if isinstance(msg, str):
            results.append(CaseResult(case["file"], msg))
            continue
        why: list[str] = []
        subject_ok = sender_ok = attachments_ok = None
        if case.get("subject") is not None:
            subject_ok = _norm(msg.subject) == _norm(case["subject"])
            if not subject_ok:
                why.append(f"subject {msg.subject!r} != {case['subject']!r}")
        if case.get("from"):
            problem = _same_mailbox(msg.from_, case["from"][0])
            sender_ok = not problem
            if problem:
                why.append(f"from: {problem}")
        elif case.get("from_email"):
            sender_ok = msg.from_ is not None and msg.from_.key == case["from_email"].lower()
            if not sender_ok:
                why.append(f"from {msg.from_} != {case['from_email']!r}")
        for field, got_list in (("to", msg.to), ("cc", msg.cc), ("reply_to", msg.reply_to)):
            if case.get(field) is not None:
                problem = _same_mailboxes(field, got_list, case[field])
                if problem:
                    why.append(problem)
        if case.get("to_count") is not None and len(msg.to) != case["to_count"]:
            why.append(f"to_count {len(msg.to)} != {case['to_count']}")
        if case.get("to_first_email") and (not msg.to or msg.to[0].key != case["to_first_email"].lower()):
            why.append(f"to[0] {msg.to[:1]} != {case['to_first_email']!r}")
        if case.get("message_id") and msg.message_id != case["message_id"].strip("<>"):
            why.append(f"message_id {msg.message_id!r} != {case['message_id']!r}")
        if case.get("date_utc"):
            want = datetime.fromisoformat(case["date_utc"])
            if msg.date != want:
                why.append(f"date {msg.date} != {want}")
        if case.get("received_hops") is not None:
            hops = sum(1 for name, _ in msg.headers if name.lower() == "received")
            if hops != case["received_hops"]:
                why.append(f"received hops {hops} != {case['received_hops']}")
        for name, value in (case.get("headers") or {}).items():
            if _norm(msg.header(name) or "") != _norm(value):
                why.append(f"header {name} {msg.header(name)!r} != {value!r}")
        if case.get("html_part_count") and not msg.html:
            why.append("no HTML body")
        if (case.get("expected_defects") or case.get("format")) and not msg.problems:
            why.append(f"no problem recorded (want {case.get('expected_defects') or case['format']})")
        attachment_why: list[str] = []
        if case.get("attachment_count") is not None and len(msg.attachments) != case["attachment_count"]:
            attachment_why.append(f"attachment_count {len(msg.attachments)} != {case['attachment_count']}")
        if "attachment_0" in case and not msg.attachments:
            attachment_why.append("no attachment, want at least one")
        missing = [n for n in case.get("attachments") or [] if not _has_attachment(msg, n)]
        if missing:
            attachment_why.append(f"attachments {[a.filename for a in msg.attachments]} lack {missing}")
        for name, md5 in (case.get("attachment_md5") or {}).items():
            found = [a for a in msg.attachments if a.filename == name]
            if found and hashlib.md5(found[0].content).hexdigest() != md5:
                attachment_why.append(f"{name}: bytes differ")
        # Upstream's regression tests for RFC 2047 / 2231 filenames: a name must never stay encoded.
        encoded = [a.filename for a in msg.attachments if _ENCODED_WORD.search(a.filename)]
        if encoded:
            attachment_why.append(f"filenames still encoded: {encoded}")
        if {"attachment_count", "attachment_0", "attachments", "attachment_md5"} & set(case):
            attachments_ok = not attachment_why
        why.extend(attachment_why)
        results.append(
            CaseResult(
                case["file"], "; ".join(why), subject_ok=subject_ok, sender_ok=sender_ok, attachments_ok=attachments_ok
            )
        )
    return results


def spamscope() -> dict[str, str]:
    return failures(spamscope_cases())


def flanker_cases() -> list[CaseResult]:
    results: list[CaseResult] = []
    for case in load("flanker"):
        if case.get("is_bounce") is None:
            continue
        verdict = detect_automated(parse((CORPORA / "flanker" / case["file"]).read_bytes()))
        is_bounce = verdict.kind is AutomatedKind.BOUNCE
        statuses = [r.status for r in verdict.bounce_recipients]
        bounce_ok = is_bounce == case["is_bounce"]
        status_found = (bounce_ok and case["status"] in statuses) if case.get("status") else None
        failure = ""
        if not bounce_ok:
            failure = f"bounce {is_bounce} != {case['is_bounce']} ({verdict.reason})"
        elif status_found is False:
            failure = f"status {statuses} lacks {case['status']}"
        results.append(CaseResult(case["file"], failure, bounce_ok=bounce_ok, recipients_found=status_found))
    return results


def flanker() -> dict[str, str]:
    return failures(flanker_cases())


def flufl_cases() -> list[CaseResult]:
    results: list[CaseResult] = []
    for case in load("flufl-bounce"):
        if case.get("is_bounce") is None:
            continue
        verdict = detect_automated(parse((CORPORA / "flufl-bounce" / case["file"]).read_bytes()))
        if verdict.kind is not AutomatedKind.BOUNCE:
            failure = f"not a bounce: {verdict.kind} {verdict.reason}"
            results.append(CaseResult(case["file"], failure, bounce_ok=False, recipients_found=False))
            continue
        kind = case.get("failure_type")
        got = {
            r.address.lower() for r in verdict.bounce_recipients if kind is None or r.permanent == (kind == "permanent")
        }
        missing = sorted({a.lower() for a in case.get("expected_recipients") or []} - got)
        failure = ""
        if missing:
            failure = (
                f"missing {kind} {missing}; got {[(r.address, r.permanent) for r in verdict.bounce_recipients][:4]}"
            )
        results.append(CaseResult(case["file"], failure, bounce_ok=True, recipients_found=not missing))
    return results


def flufl() -> dict[str, str]:
    return failures(flufl_cases())


def sisimai_cases() -> list[CaseResult]:
    results: list[CaseResult] = []
    for case in load("sisimai-bounces"):
        path = CORPORA / "sisimai-bounces" / case["file"]
        if not path.exists():
            continue
        verdict = detect_automated(parse(path.read_bytes()))
        is_bounce = verdict.kind is AutomatedKind.BOUNCE
        bounce_ok = is_bounce == case["is_bounce"]
        recognised = verdict.kind in (AutomatedKind.AUTO_REPLY, AutomatedKind.OUT_OF_OFFICE)
        auto_reply_ok = recognised if case.get("is_auto_reply") else None
        recipients_found = (is_bounce and bool(verdict.bounce_recipients)) if case["is_bounce"] else None
        failure = ""
        if not bounce_ok:
            failure = f"bounce {is_bounce} != {case['is_bounce']} ({verdict.kind}: {verdict.reason})"
        elif auto_reply_ok is False:
            failure = f"auto-reply missed ({verdict.kind})"
        elif recipients_found is False:
            failure = "no bounced recipient found"
        results.append(
            CaseResult(
                case["file"],
                failure,
                bounce_ok=bounce_ok,
                recipients_found=recipients_found,
                auto_reply_ok=auto_reply_ok,
            )
        )
    return results


def sisimai() -> dict[str, str]:
    return failures(sisimai_cases())


def discourse_cases(split: Splitter = split_reply) -> list[CaseResult]:
    results: list[CaseResult] = []
    root = CORPORA / "discourse-email-reply-trimmer"
    for case in load("discourse-email-reply-trimmer"):
        text = (root / case["file"]).read_text(encoding="utf-8").strip()
        got = split(text).visible.strip()
        visible_ok = _norm(got) == _norm(case["expected_trimmed"])
        failure = "" if visible_ok else f"visible {got[:60]!r} != {case['expected_trimmed'][:60]!r}"
        results.append(CaseResult(case["file"], failure, visible_ok=visible_ok))
    return results


def discourse() -> dict[str, str]:
    return failures(discourse_cases())


def talon_cases(split: Splitter = split_reply) -> list[CaseResult]:
    """talon's plain-text cases; the standard replies' text comes from Postdesk's parser for every splitter."""
    results: list[CaseResult] = []
    data = load("talon")
    for index, case in enumerate(data["plain_inline"]):
        parts = split(case["input"])
        want = "".join(case["expected_reply"].split())
        # talon keeps the signature in the reply; Postdesk shows it apart, so either form is right.
        visible_ok = want in ("".join(parts.visible.split()), "".join((parts.visible + parts.signature).split()))
        name = f"plain_inline[{index}] {case['source'].split()[-1]}"
        results.append(CaseResult(name, "" if visible_ok else f"visible {parts.visible[:50]!r}", visible_ok=visible_ok))
    for case in data["standard_replies"]:
        msg = parse((CORPORA / "talon" / case["file"]).read_bytes())
        parts = split(msg.text)
        want = "".join(case["expected_reply"].split())
        visible_ok = want in ("".join(parts.visible.split()), "".join((parts.visible + parts.signature).split()))
        failure = "" if visible_ok else f"visible {parts.visible[:50]!r}"
        results.append(CaseResult(case["file"], failure, visible_ok=visible_ok))
    return results


def talon() -> dict[str, str]:
    return failures(talon_cases())


def _postdesk_html_split(html: str) -> ReplyParts:
    return ReplyParts(visible=html_to_text(split_reply_html(html).visible), quoted="", signature="")


def talon_html_cases(split: Splitter = _postdesk_html_split) -> list[CaseResult]:
    """talon's HTML replies: the visible part of the HTML, as text, against talon's expected reply text.

    `split` gets the raw HTML; a text-only splitter can be given `html_to_text` of it first.
    """
    results: list[CaseResult] = []
    for case in load("talon")["html_replies"]:
        got = split((CORPORA / "talon" / case["file"]).read_text(encoding="utf-8")).visible
        visible_ok = "".join(got.split()) == "".join(case["expected_reply_text"].split())
        results.append(CaseResult(case["file"], "" if visible_ok else f"visible {got[:50]!r}", visible_ok=visible_ok))
    return results


def talon_html() -> dict[str, str]:
    return failures(talon_html_cases())


# --- threading: perl-mail-thread ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadCase:
    """One mbox of perl-mail-thread with the thread trees Mail::Thread expects for it."""

    mbox: str
    mails: tuple[bytes, ...]  # in mbox (arrival) order
    tree_of: dict[str, int]  # Message-ID (no brackets) of each real message → index of its expected tree
    subject_grouping: bool  # False for `nosubject` cases: the expected trees come from references only


def thread_cases() -> list[ThreadCase]:
    """Every mbox; `tree_of` is empty where upstream asserts no tree (it only has to thread at all)."""
    root = CORPORA / "perl-mail-thread"
    cases: list[ThreadCase] = []
    for case in load("perl-mail-thread")["cases"]:
        mails: list[bytes] = []
        for _, raw in iter_raw_mails(root / case["mbox"]):  # split as `postdesk ingest` splits an mbox
            if isinstance(raw, OSError):
                raise raw
            mails.append(raw)
        tree_of: dict[str, int] = {}
        tree = -1
        for node in case.get("expected_tree_preorder") or []:
            if node["depth"] == 0:
                tree += 1
            if node["subject"] is not None:  # None: a referenced message that is not in the mbox
                tree_of[node["message_id"]] = tree
        options = case.get("options") or {}
        cases.append(ThreadCase(case["mbox"], tuple(mails), tree_of, subject_grouping=not options.get("nosubject")))
    return cases


@dataclass(frozen=True, slots=True)
class PairCounts:
    """Pairs of messages: in one conversation, in one expected tree, and both."""

    same_conversation: int = 0
    same_tree: int = 0
    both: int = 0

    def __add__(self, other: PairCounts) -> PairCounts:
        return PairCounts(
            self.same_conversation + other.same_conversation, self.same_tree + other.same_tree, self.both + other.both
        )

    @property
    def precision(self) -> float:
        """Of the pairs put together, the share that belong together."""
        return self.both / self.same_conversation if self.same_conversation else 1.0

    @property
    def recall(self) -> float:
        """Of the pairs that belong together, the share put together."""
        return self.both / self.same_tree if self.same_tree else 1.0


def pair_counts(tree_of: dict[str, int], conversation_of: dict[str, int]) -> PairCounts:
    """Compare two groupings of the messages in `tree_of` (Message-ID → group) pair by pair."""
    counts = PairCounts()
    for first, second in combinations(sorted(tree_of), 2):
        together = first in conversation_of and conversation_of[first] == conversation_of.get(second)
        same_tree = tree_of[first] == tree_of[second]
        counts += PairCounts(int(together), int(same_tree), int(together and same_tree))
    return counts
