"""One call from raw bytes to parse, reply split and automated verdict, plus its stable JSON form."""

from __future__ import annotations

from dataclasses import dataclass

from postdesk.mail.automated import detect_automated
from postdesk.mail.body import split_message_reply
from postdesk.mail.model import Address, AutomatedVerdict, ParsedMessage, ReplyParts
from postdesk.mail.parse import parse


@dataclass(frozen=True, slots=True)
class MailAnalysis:
    """Everything the pure mail package can say about one raw mail."""

    parsed: ParsedMessage
    reply: ReplyParts
    automated: AutomatedVerdict


def analyse(raw: bytes) -> MailAnalysis:
    """Parse `raw`, split the reply and judge whether a machine sent it; never raises."""
    parsed = parse(raw)
    try:
        reply = split_message_reply(parsed)
    except Exception:  # a pattern or HTML bug must not lose the mail: show it all as the reply
        reply = ReplyParts(visible=parsed.text, quoted="", signature="", visible_html=parsed.html)
    try:
        automated = detect_automated(parsed)
    except Exception as exc:
        automated = AutomatedVerdict(None, f"detector error: {type(exc).__name__}")
    return MailAnalysis(parsed=parsed, reply=reply, automated=automated)


def _address(address: Address) -> dict[str, object]:
    return {"name": address.name, "address": address.address}


def analysis_to_json(a: MailAnalysis) -> dict[str, object]:
    """The documented JSON shape of an analysis (docs/parse-json.md); keys and types are stable."""
    p = a.parsed
    return {
        "message_id": p.message_id,
        "in_reply_to": list(p.in_reply_to),
        "references": list(p.references),
        "subject": p.subject,
        "from": _address(p.from_) if p.from_ is not None else None,
        "to": [_address(x) for x in p.to],
        "cc": [_address(x) for x in p.cc],
        "reply_to": [_address(x) for x in p.reply_to],
        "date": p.date.isoformat().replace("+00:00", "Z") if p.date is not None else None,
        "text": p.text,
        "html": p.html,
        "visible_text": a.reply.visible,
        "visible_html": a.reply.visible_html,
        "signature": a.reply.signature,
        "attachments": [
            {
                "filename": att.filename,
                "content_type": att.content_type,
                "size": att.size,
                "sha256": att.sha256,
                "content_id": att.content_id,
                "inline": att.inline,
                "enclosed_in": att.enclosed_in or None,
            }
            for att in p.attachments
        ],
        "automated": {
            "kind": str(a.automated.kind) if a.automated.kind is not None else None,
            "reason": a.automated.reason,
            "bounce": {
                "recipients": [
                    {"address": r.address, "status": r.status, "permanent": r.permanent}
                    for r in a.automated.bounce_recipients
                ]
            },
        },
        "problems": [{"code": pr.code, "detail": pr.detail} for pr in p.problems],
    }
