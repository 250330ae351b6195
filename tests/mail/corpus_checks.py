"""Corpus checks: each returns {case name: why it failed}; tests compare that with KNOWN_FAILURES."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from mail_factory import CORPORA, make_mail, multipart, part

from postdesk.mail.analysis import MailAnalysis, analyse
from postdesk.mail.automated import detect_automated
from postdesk.mail.body import split_reply
from postdesk.mail.model import AutomatedKind, ParsedMessage
from postdesk.mail.parse import parse

_METADATA = {".json", ".md", ".list", ".csv", ".rtf", ".html"}


def load(corpus: str) -> Any:
    return json.loads((CORPORA / corpus / "expectations.json").read_text(encoding="utf-8"))


def mail_files() -> list[Path]:
    """Every mail-like file of the mail corpora (licences, manifests and reference files left out)."""
    files: list[Path] = []
    for folder in (
        "stalwart-mail-parser", "zbateson-mail-mime-parser", "flanker", "spamscope-mail-parser",
        "mimekit-tnef", "flufl-bounce", "sisimai-bounces", "talon", "perl-mail-thread",
    ):  # fmt: skip
        for path in sorted((CORPORA / folder).rglob("*")):
            if not path.is_file() or path.suffix in _METADATA or path.name.startswith(("LICENSE", "COPYING", "NOTICE")):
                continue
            if folder == "zbateson-mail-mime-parser" and "files" in path.parts:
                continue
            if folder == "mimekit-tnef" and path.suffix != ".tnef" and path.suffix != ".eml":
                continue
            files.append(path)
    return files


def never_raises() -> dict[str, str]:
    failures: dict[str, str] = {}
    for path in mail_files():
        raw = path.read_bytes()
        if path.suffix == ".tnef":
            ctype, body = multipart(
                "mixed",
                part("application/ms-tnef", raw, "Content-Disposition: attachment; filename=winmail.dat", b64=True),
            )
            raw = make_mail(body, content_type=ctype)
        name = str(path.relative_to(CORPORA))
        try:
            result: MailAnalysis = analyse(raw)
        except Exception as exc:
            failures[name] = f"raised {type(exc).__name__}: {exc}"
            continue
        internal = [p.detail for p in result.parsed.problems if p.code == "internal-error"]
        if internal:
            failures[name] = f"internal-error: {internal[0]}"
    return failures


def _same_address(got: Any, want: dict[str, str], key: str = "address") -> str:
    if got is None:
        return f"no address, want {want[key]}"
    if got.address.lower() != (want[key] or "").lower():
        return f"address {got.address!r} != {want[key]!r}"
    if " ".join((want.get("name") or "").split()) != got.name:
        return f"name {got.name!r} != {want.get('name')!r}"
    return ""


def _norm(text: str) -> str:
    return " ".join(text.split())


def stalwart() -> dict[str, str]:
    failures: dict[str, str] = {}
    for case in load("stalwart-mail-parser"):
        msg = parse((CORPORA / "stalwart-mail-parser" / case["file"]).read_bytes().replace(b"\r\n", b"\n"))
        why: list[str] = []
        if case.get("subject") is not None and _norm(msg.subject) != _norm(case["subject"]):
            why.append(f"subject {msg.subject!r} != {case['subject']!r}")
        if case.get("from") and case["from"][0].get("address"):
            problem = _same_address(msg.from_, case["from"][0])
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
            if _norm(line) not in _norm(msg.text) and _norm(line) not in _norm(msg.html):
                why.append(f"body lacks {line[:40]!r}")
                break
        wanted = sorted(n for n in (case.get("attachments") or []) if n)
        got = sorted(a.filename for a in msg.attachments)
        if wanted and not set(wanted) <= set(got):
            why.append(f"attachments {got} lack {sorted(set(wanted) - set(got))}")
        if why:
            failures[case["file"]] = "; ".join(why)
    return failures


def zbateson() -> dict[str, str]:
    failures: dict[str, str] = {}
    root = CORPORA / "zbateson-mail-mime-parser"
    for case in load("zbateson-mail-mime-parser"):
        path = root / case["file"]
        if not path.exists():
            continue
        msg = parse(path.read_bytes())
        why: list[str] = []
        if case.get("subject") is not None and _norm(msg.subject) != _norm(case["subject"]):
            why.append(f"subject {msg.subject!r} != {case['subject']!r}")
        if case.get("from"):
            problem = _same_address(msg.from_, case["from"], "email")
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
            if count != case["attachment_count"]:
                why.append(f"attachment_count {count} != {case['attachment_count']}")
        if why:
            failures[case["file"]] = "; ".join(why)
    return failures


def tnef() -> dict[str, str]:
    failures: dict[str, str] = {}
    root = CORPORA / "mimekit-tnef"
    for case in load("mimekit-tnef"):
        if not case["file"].endswith(".tnef"):
            continue
        raw = (root / case["file"]).read_bytes()
        ctype, body = multipart(
            "mixed", part("application/ms-tnef", raw, "Content-Disposition: attachment; filename=winmail.dat", b64=True)
        )
        msg = parse(make_mail(body, content_type=ctype))
        wanted = [n for n in case.get("expected_attachment_names", []) if n not in ("body.rtf", "body.html")]
        got = {a.filename: a for a in msg.attachments}
        missing = [n for n in wanted if n not in got]
        why: list[str] = []
        if missing:
            why.append(f"missing {missing}; got {sorted(got)}")
        for extracted in case.get("expected_extracted_files", []):
            name = extracted["path"].split("/", 1)[-1]
            if name in got and hashlib.md5(got[name].content).hexdigest() != extracted["md5"]:
                why.append(f"{name}: bytes differ")
        if why:
            failures[case["file"]] = "; ".join(why)
    return failures


def flanker() -> dict[str, str]:
    failures: dict[str, str] = {}
    for case in load("flanker"):
        if case.get("is_bounce") is None:
            continue
        verdict = detect_automated(parse((CORPORA / "flanker" / case["file"]).read_bytes()))
        is_bounce = verdict.kind is AutomatedKind.BOUNCE
        if is_bounce != case["is_bounce"]:
            failures[case["file"]] = f"bounce {is_bounce} != {case['is_bounce']} ({verdict.reason})"
        elif case.get("status") and case["status"] not in [r.status for r in verdict.bounce_recipients]:
            failures[case["file"]] = f"status {[r.status for r in verdict.bounce_recipients]} lacks {case['status']}"
    return failures


def flufl() -> dict[str, str]:
    failures: dict[str, str] = {}
    for case in load("flufl-bounce"):
        if case.get("is_bounce") is None:
            continue
        verdict = detect_automated(parse((CORPORA / "flufl-bounce" / case["file"]).read_bytes()))
        if verdict.kind is not AutomatedKind.BOUNCE:
            failures[case["file"]] = f"not a bounce: {verdict.kind} {verdict.reason}"
            continue
        kind = case.get("failure_type")
        got = {
            r.address.lower() for r in verdict.bounce_recipients if kind is None or r.permanent == (kind == "permanent")
        }
        missing = sorted({a.lower() for a in case.get("expected_recipients") or []} - got)
        if missing:
            failures[case["file"]] = (
                f"missing {kind} {missing}; got {[(r.address, r.permanent) for r in verdict.bounce_recipients][:4]}"
            )
    return failures


def sisimai() -> dict[str, str]:
    failures: dict[str, str] = {}
    for case in load("sisimai-bounces"):
        path = CORPORA / "sisimai-bounces" / case["file"]
        if not path.exists():
            continue
        verdict = detect_automated(parse(path.read_bytes()))
        is_bounce = verdict.kind is AutomatedKind.BOUNCE
        if is_bounce != case["is_bounce"]:
            failures[case["file"]] = f"bounce {is_bounce} != {case['is_bounce']} ({verdict.kind}: {verdict.reason})"
            continue
        if case.get("is_auto_reply") and verdict.kind not in (AutomatedKind.AUTO_REPLY, AutomatedKind.OUT_OF_OFFICE):
            failures[case["file"]] = f"auto-reply missed ({verdict.kind})"
            continue
        if is_bounce and not verdict.bounce_recipients:
            failures[case["file"]] = "no bounced recipient found"
    return failures


def discourse() -> dict[str, str]:
    failures: dict[str, str] = {}
    root = CORPORA / "discourse-email-reply-trimmer"
    for case in load("discourse-email-reply-trimmer"):
        text = (root / case["file"]).read_text(encoding="utf-8").strip()
        got = split_reply(text).visible.strip()
        if _norm(got) != _norm(case["expected_trimmed"]):
            failures[case["file"]] = f"visible {got[:60]!r} != {case['expected_trimmed'][:60]!r}"
    return failures


def talon() -> dict[str, str]:
    failures: dict[str, str] = {}
    data = load("talon")
    for index, case in enumerate(data["plain_inline"]):
        parts = split_reply(case["input"])
        want = "".join(case["expected_reply"].split())
        if want not in ("".join(parts.visible.split()), "".join((parts.visible + parts.signature).split())):
            failures[f"plain_inline[{index}] {case['source'].split()[-1]}"] = f"visible {parts.visible[:50]!r}"
    for case in data["standard_replies"]:
        msg: ParsedMessage = parse((CORPORA / "talon" / case["file"]).read_bytes())
        parts = split_reply(msg.text)
        if parts.visible.strip() != case["expected_reply"].strip():
            failures[case["file"]] = f"visible {parts.visible[:50]!r}"
    return failures
