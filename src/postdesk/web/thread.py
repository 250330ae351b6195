"""One conversation: the page and its live fragments, a message's HTML frame, image previews, and every action on it.

Reads go through `postdesk.desk.access` and writes through `postdesk.desk.actions`; this module only turns
forms into calls and results into HTML. Every action is a plain POST form (it works without script) that
htmx upgrades: an htmx request gets a fragment and an `HX-Trigger: pd:changed` so the page's live regions
refresh themselves, a plain one is redirected back to the page (or, for a refused reply, gets the whole
page with the agent's text still in the editor).

Collision detection: the reply and forward forms carry `seen_event_id`, the newest timeline event when the
thread the agent is looking at was rendered. It moves only when the thread fragment is rendered again
(the thread fragment sends the new value out of band), never merely because something happened; and
static/postdesk/thread.js does not refresh the thread under an agent who is writing a reply, it tells them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin

from postdesk.api.downloads import SAFE_TYPES, content_disposition
from postdesk.api.errors import postdesk_error_status
from postdesk.desk import access, actions, outbox, triage_step
from postdesk.desk.blobs import default_store
from postdesk.desk.errors import BadRequest, NotFound, PermissionDenied, PostdeskError
from postdesk.desk.models import (
    Attachment,
    ClassifierModel,
    ClassifierTarget,
    Conversation,
    Direction,
    Draft,
    DraftKind,
    Event,
    EventKind,
    Message,
    OutboundMail,
    OutboundState,
    Priority,
    Role,
    Status,
)
from postdesk.desk.people import display_name
from postdesk.web.due import DueTexts
from postdesk.web.views import MAIL_HTML_CSP, View, agent_action, agent_page

log = logging.getLogger(__name__)

# Inline (cid:) images are embedded as data: URIs up to these sizes; larger ones stay broken.
MAX_INLINE_IMAGE = 2 * 1024 * 1024
MAX_INLINE_TOTAL = 8 * 1024 * 1024
_CID_SRC = re.compile(r'src="cid:([^"]+)"', re.IGNORECASE)
# nh3 keeps remote image sources (the frame's CSP blocks them); this finds them to offer "Show remote images".
_REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc=\"(?:https?:)?//", re.IGNORECASE)
# The same shape as the mentions actions.do_note notifies: "@ann", "@ann.smith", "@ann@example.org".
_MENTION = re.compile(r"(?<![\w.@])@([\w.+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)")

# Only after the agent asked, for that one response: the mail may load images from anywhere (and nothing else).
MAIL_HTML_CSP_WITH_IMAGES = MAIL_HTML_CSP.replace("img-src data: cid:", "img-src data: cid: https: http:")
# Thumbnails: raster images only (SVG is a document that can carry script), as their declared type, never sniffed.
PREVIEW_TYPES = SAFE_TYPES - {"application/pdf"}
MAX_PREVIEW_SIZE = 10 * 1024 * 1024
# Statuses offered after sending a reply, the first being the default (waiting on the customer).
STATUS_AFTER_REPLY = (Status.PENDING, Status.OPEN, Status.RESOLVED)
MAX_OTHER_CONVERSATIONS = 20
MAX_ASSIGNEES = 200
SNOOZE_PRESETS = ("1h", "3h", "tomorrow", "monday")


# --- small readers ------------------------------------------------------------------------------------


def _user(request: HttpRequest) -> User:
    # Every view here is behind login_required, so the user is a real one.
    return cast(User, request.user)


def _may_act(user: User) -> bool:
    """actions.can_act, asked once per request (a page asks it for every part); the actions check it again."""
    cached: bool | None = getattr(user, "_postdesk_may_act", None)
    if cached is None:
        cached = actions.can_act(user)
        user._postdesk_may_act = cached  # type: ignore[attr-defined]
    return cached


def _conversation(request: HttpRequest, number: int) -> Conversation:
    return access.access_conversation_by_number(request.user, number)


def _message_in(request: HttpRequest, number: int, message_id: int) -> Message:
    conversation = _conversation(request, number)
    message = access.access_message(request.user, message_id)
    if message.conversation_id != conversation.pk:
        raise NotFound(_("There is no message %(id)s.") % {"id": message_id})
    return message


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _page_url(conversation: Conversation) -> str:
    return reverse("web:conversation", args=[conversation.number])


def _int_field(raw: str | None, *, label: str) -> int:
    try:
        value = int((raw or "").strip())
    except ValueError:
        raise BadRequest(_("%(field)s must be a number.") % {"field": label}) from None
    if value < 0:
        raise BadRequest(_("%(field)s must be a number.") % {"field": label})
    return value


# --- what the page shows ------------------------------------------------------------------------------


@dataclass(slots=True)
class AttachmentItem:
    attachment: Attachment
    previewable: bool


@dataclass(slots=True)
class ThreadItem:
    """One message as the thread shows it, with what the template needs worked out here."""

    message: Message
    frame_url: str = ""
    frame_size: str = "frame-m"
    has_quoted_html: bool = False
    has_remote_images: bool = False
    note_html: SafeString | None = None
    outbound: OutboundMail | None = None
    undo_seconds: int = 0
    send_after_iso: str = ""
    can_split: bool = False
    attachments: list[AttachmentItem] = field(default_factory=list)


@dataclass(slots=True)
class TimelineEntry:
    kind: str
    text: str
    actor: str
    created_at: datetime
    link_number: int | None = None
    details: tuple[str, ...] = ()  # why: a rule's matched conditions and what it did, a routing decision's reasons


@dataclass(slots=True)
class SentNotice:
    """'Sending in N s — Undo' after a reply or forward was queued."""

    message_id: int
    seconds: int
    send_after_iso: str
    forwarded: bool


@dataclass(slots=True)
class Composer:
    """The state of one editor (reply, forward or note): what the form shows, and what happened to the last send."""

    kind: str  # a DraftKind
    open: bool = False
    mode: str = "reply"  # reply | reply_all, for the reply editor
    to: str = ""
    cc: str = ""
    bcc: str = ""
    text: str = ""
    status_after: str = Status.PENDING
    seen_event_id: int = 0
    error: str = ""
    held: list[str] = field(default_factory=list)
    sent: SentNotice | None = None
    notice: str = ""
    # Default recipients for the reply / reply-all switch (thread.js swaps them while the agent has not edited them).
    reply_to: str = ""
    reply_cc: str = ""
    all_to: str = ""
    all_cc: str = ""


def _highlight_mentions(text: str) -> SafeString:
    """The note text, escaped, with each @mention wrapped in <mark class="mention">."""
    parts: list[str] = []
    last = 0
    for match in _MENTION.finditer(text):
        parts.append(escape(text[last : match.start()]))
        parts.append(f'<mark class="mention">{escape(match.group(0))}</mark>')
        last = match.end()
    parts.append(escape(text[last:]))
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped


def _frame_size(message: Message) -> str:
    lines = (message.visible_text or message.text).count("\n") + 1
    if lines <= 8:
        return "frame-s"
    return "frame-m" if lines <= 30 else "frame-l"


def _thread_items(user: User, conversation: Conversation) -> list[ThreadItem]:
    messages = list(
        conversation.messages.order_by("created_at", "id")
        .select_related("received_mail", "outbound")
        .prefetch_related("attachments")
    )
    now = timezone.now()
    may_act = _may_act(user)
    items: list[ThreadItem] = []
    for message in messages:
        item = ThreadItem(message=message)
        if message.html:
            item.frame_url = reverse("web:message-html", args=[conversation.number, message.pk])
            item.frame_size = _frame_size(message)
            item.has_quoted_html = bool(message.visible_html)
            item.has_remote_images = bool(_REMOTE_IMG.search(message.html))
        if message.direction == Direction.NOTE:
            item.note_html = _highlight_mentions(message.visible_text or message.text)
        if message.direction == Direction.OUTBOUND:
            item.outbound = getattr(message, "outbound", None)
            if (
                item.outbound is not None
                and item.outbound.state == OutboundState.QUEUED
                and message.author_id == user.pk
                and item.outbound.send_after > now
            ):
                item.undo_seconds = max(1, int((item.outbound.send_after - now).total_seconds() + 0.999))
                item.send_after_iso = item.outbound.send_after.isoformat()
        item.can_split = (
            may_act
            and message.direction == Direction.INBOUND
            and len(messages) > 1
            and conversation.status != Status.MERGED
        )
        item.attachments = [
            AttachmentItem(a, a.content_type.split(";", 1)[0].strip().lower() in PREVIEW_TYPES)
            for a in message.attachments.all()
        ]
        items.append(item)
    return items


def _thread_context(user: User, conversation: Conversation) -> dict[str, Any]:
    # The event id is read BEFORE the messages: anything newer than it may or may not be on the page, so a
    # collision check against it errs towards holding a reply, never towards letting one through unseen.
    seen = actions.latest_event_id(conversation)
    return {
        "conversation": conversation,
        "items": _thread_items(user, conversation),
        "seen_event_id": seen,
        "can_act": _may_act(user),
    }


def _status_label(value: object) -> str:
    try:
        return str(Status(str(value)).label)
    except ValueError:
        return str(value)


def _priority_label(value: object) -> str:
    try:
        return str(Priority(str(value)).label)
    except ValueError:
        return str(value)


def _when(iso: object) -> str:
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _explain(event: Event) -> tuple[str, tuple[str, ...]] | None:
    """The timeline text and its "why" lines for the events of triage, rules, routing and SLAs; None for others."""
    data: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
    kind = event.kind
    if kind == EventKind.RULE_FIRED:
        if "rule" not in data:
            stopped = [
                _("%(rule)s not run again on %(trigger)s: %(reason)s")
                % {"rule": s.get("rule") or _("a rule"), "trigger": s.get("trigger", ""), "reason": s.get("reason", "")}
                for s in data.get("suppressed", [])
                if isinstance(s, dict)
            ]
            return _("The loop guard stopped rules from running again"), tuple(stopped)
        why = tuple(_("because %(reason)s") % {"reason": r} for r in _strings(data.get("reasons")))
        did = tuple(_("then %(action)s") % {"action": a} for a in _strings(data.get("actions")))
        return _("Rule “%(name)s” (%(rule)s) applied") % {"name": data.get("name", ""), "rule": data["rule"]}, why + did
    if kind == EventKind.ROUTED:
        reason = str(data.get("reason") or "")
        if data.get("agent"):
            text = _("Routed to %(who)s") % {"who": data["agent"]}
        elif data.get("team"):
            text = _("Moved to team %(team)s") % {"team": data["team"]}
        elif data.get("released"):
            text = _("Released to the team queue")
        else:
            text = _("Waiting in the team queue")
        excluded = [
            f"{e[1]}" if isinstance(e, list | tuple) and len(e) > 1 else str(e) for e in data.get("excluded", [])
        ]
        return text, ((reason,) if reason else ()) + tuple(excluded)
    if kind == EventKind.CATEGORY:
        before = data.get("before") or _("none")
        after = data.get("after") or _("none")
        return _("Changed the category from %(before)s to %(after)s") % {"before": before, "after": after}, ()
    if kind == EventKind.TRIAGED:
        return _("Triaged"), _triage_lines(data)
    if kind == EventKind.SLA:
        return _sla_line(data)
    if kind == EventKind.ACKNOWLEDGED:
        promised = str(data.get("promised_text") or "")
        text = _("Sent the acknowledgement to %(to)s") % {"to": data.get("to", "")}
        return text, ((_("promised an answer by %(when)s") % {"when": promised},) if promised else ())
    if kind == EventKind.LINKED:
        return _linked_line(data)
    return None


def _percent(value: object) -> str:
    return f"{round(float(value) * 100)}%" if isinstance(value, int | float) else "?"


def _triage_lines(data: dict[str, Any]) -> tuple[str, ...]:
    lines = []
    if data.get("language"):
        lines.append(
            _("language %(language)s (%(sure)s sure)")
            % {"language": data["language"], "sure": _percent(data.get("language_confidence"))}
        )
    if data.get("category"):
        values = {"category": data["category"], "sure": _percent(data.get("category_confidence"))}
        if data.get("category_applied"):
            lines.append(_("category %(category)s (%(sure)s sure)") % values)
        else:
            values["needed"] = _percent(data.get("threshold"))
            lines.append(_("category %(category)s not set: %(sure)s sure, %(needed)s needed") % values)
    if data.get("priority_applied") and data.get("priority"):
        lines.append(
            _("priority %(priority)s: %(reason)s")
            % {"priority": _priority_label(data["priority"]), "reason": data.get("priority_reason", "")}
        )
    if data.get("automated"):
        lines.append(_("automatic mail: no urgency or category guessed"))
    return tuple(lines)


_TARGET_NAMES = {
    "first_response": gettext_lazy("first response"),
    "next_response": gettext_lazy("next response"),
    "resolution": gettext_lazy("resolution"),
}


def _sla_line(data: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    if data.get("breach") or data.get("warning"):
        target = str(_TARGET_NAMES.get(str(data.get("breach") or data.get("warning")), ""))
        values = {"target": target, "when": _when(data.get("due"))}
        if data.get("breach"):
            return _("SLA breached: the %(target)s was due %(when)s") % values, ()
        return _("SLA warning: the %(target)s is due %(when)s") % values, ()
    if not data.get("policy"):
        return _("No SLA policy applies any more"), ((str(data["reason"]),) if data.get("reason") else ())
    due = data.get("due")
    if not isinstance(due, dict):
        due = {}
    lines = tuple(
        _("%(target)s due %(when)s") % {"target": _TARGET_NAMES.get(target, target), "when": _when(when)}
        for target, when in due.items()
    )
    return _("SLA policy %(policy)s applied") % {"policy": data["policy"]}, lines


def _linked_line(data: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    reason = (str(data["reason"]),) if data.get("reason") else ()
    if data.get("repeat_of"):
        return _("The customer asks again about #%(number)s") % {"number": data["repeat_of"]}, reason
    if data.get("repeated_by"):
        return _("The customer asked about this again in #%(number)s") % {"number": data["repeated_by"]}, reason
    if data.get("incident"):
        title = data.get("title", "")
        if data.get("joined_by"):
            text = _("#%(number)s reports the same: incident “%(title)s”")
            return text % {"number": data["joined_by"], "title": title}, reason
        return _("Grouped into the incident “%(title)s”") % {"title": title}, reason
    return _("Linked"), reason


def _describe(event: Event, senders: dict[int, str]) -> tuple[str, int | None]:
    """What the timeline says about one event, and the conversation number it links to (if any)."""
    data: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
    kind = event.kind
    if kind == EventKind.RECEIVED:
        who = senders.get(event.message_id or 0) or _("The customer")
        return _("%(who)s wrote") % {"who": who}, None
    if kind in (EventKind.REPLIED, EventKind.FORWARDED):
        to = ", ".join(str(a) for a in data.get("to", []))
        if kind == EventKind.REPLIED:
            return _("Replied to %(to)s") % {"to": to}, None
        return _("Forwarded to %(to)s") % {"to": to}, None
    if kind == EventKind.NOTED:
        return _("Added an internal note"), None
    if kind == EventKind.ASSIGNED:
        if not data.get("assignee"):
            return _("Unassigned it"), None
        if data.get("assignee") == event.actor_id:
            return _("Took it"), None
        return _("Assigned it to %(who)s") % {"who": data.get("assignee_name", "")}, None
    if kind == EventKind.STATUS:
        return _("Changed the status from %(before)s to %(after)s") % {
            "before": _status_label(data.get("before")),
            "after": _status_label(data.get("after")),
        }, None
    if kind == EventKind.PRIORITY:
        return _("Changed the priority from %(before)s to %(after)s") % {
            "before": _priority_label(data.get("before")),
            "after": _priority_label(data.get("after")),
        }, None
    if kind == EventKind.SNOOZED:
        return _("Snoozed it until %(until)s") % {"until": _when(data.get("until"))}, None
    if kind == EventKind.WOKE:
        if data.get("reason") == "time":
            return _("Woke up: the snooze time came"), None
        return _("Woke up: the customer wrote"), None
    if kind == EventKind.TAGGED:
        pieces = []
        if data.get("added"):
            pieces.append(_("added the tags %(tags)s") % {"tags": ", ".join(data["added"])})
        if data.get("removed"):
            pieces.append(_("removed the tags %(tags)s") % {"tags": ", ".join(data["removed"])})
        return (_("Changed the tags: %(what)s") % {"what": "; ".join(pieces)}), None
    if kind == EventKind.FOLLOWED:
        return (_("Followed it") if data.get("follow") else _("Stopped following it")), None
    if kind == EventKind.MERGED:
        if data.get("into"):
            return _("Merged this conversation into #%(number)s") % {"number": data["into"]}, int(data["into"])
        return _("Merged #%(number)s into this conversation") % {"number": data.get("merged")}, _opt_int(
            data.get("merged")
        )
    if kind == EventKind.SPLIT:
        if data.get("into"):
            return _("Split a message into #%(number)s") % {"number": data["into"]}, int(data["into"])
        return _("Split from #%(number)s") % {"number": data.get("source")}, _opt_int(data.get("source"))
    if kind == EventKind.SPAM:
        if data.get("blocked"):
            return _("Marked it as spam and blocked %(sender)s") % {"sender": data["blocked"]}, None
        return _("Marked it as spam"), None
    if kind == EventKind.SEND_FAILED:
        error = str(data.get("error") or "")
        refused = data.get("refused") or {}
        if data.get("partial") and isinstance(refused, dict):
            return _("Not delivered to %(addresses)s: %(error)s") % {
                "addresses": ", ".join(refused),
                "error": error,
            }, None
        return (_("Sending failed: %(error)s") % {"error": error} if error else _("Sending failed")), None
    if kind == EventKind.SEND_CANCELLED:
        return _("Undid sending a reply"), None
    return str(EventKind(kind).label) if kind in EventKind.values else str(kind), None


def _opt_int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _timeline(conversation: Conversation) -> list[TimelineEntry]:
    events = list(conversation.events.select_related("actor").order_by("id"))
    message_ids = [e.message_id for e in events if e.kind == EventKind.RECEIVED and e.message_id]
    senders = {
        pk: name or address
        for pk, name, address in Message.objects.filter(pk__in=message_ids).values_list(
            "pk", "from_name", "from_address"
        )
    }
    entries = []
    for event in events:
        explained = _explain(event)
        details: tuple[str, ...] = ()
        if explained is not None:
            (text, details), link = explained, None
        else:
            text, link = _describe(event, senders)
        entries.append(TimelineEntry(event.kind, text, _actor(event), event.created_at, link, details))
    return entries


def _actor(event: Event) -> str:
    """Who did it: the agent, the rule that did it on its own, Postdesk itself, or no one for the customer's mail."""
    if event.actor is not None:
        return display_name(event.actor)
    if event.kind == EventKind.RECEIVED:
        return ""
    rule = event.data.get("rule") if isinstance(event.data, dict) else None
    if rule and event.kind != EventKind.RULE_FIRED:
        return _("Rule %(rule)s") % {"rule": rule}
    return "Postdesk"


def _known_categories() -> list[str]:
    """The labels of the active category model: what the agent's correction should usually be one of."""
    labels = (
        ClassifierModel.objects.filter(target=ClassifierTarget.CATEGORY, active=True)
        .order_by("-trained_at")
        .values_list("labels", flat=True)
        .first()
    )
    return sorted(str(label) for label in labels) if isinstance(labels, list) else []


def _assignable(conversation: Conversation) -> list[User]:
    """Agents who can answer this conversation: hands-on roles that see its mailbox."""
    model = get_user_model()
    sees = Q(is_superuser=True) | Q(agent__role=Role.ADMIN)
    team_id = conversation.mailbox.team_id
    if team_id is not None:
        sees |= Q(agent__role__in=[Role.SUPERVISOR, Role.AGENT], agent__teams=team_id)
    found = model.objects.filter(sees, is_active=True).distinct().order_by("email", "username")[:MAX_ASSIGNEES]
    return list(found)


def _header_context(user: User, conversation: Conversation) -> dict[str, Any]:
    conversation = (
        Conversation.objects.select_related("mailbox", "team", "assignee", "merged_into", "previous")
        .prefetch_related("tags", "followers")
        .get(pk=conversation.pk)
    )
    followers = list(conversation.followers.all())
    return {
        "conversation": conversation,
        "tags": [t.name for t in conversation.tags.all()],
        "followers": [display_name(f) for f in followers],
        "following": any(f.pk == user.pk for f in followers),
        "assignee_name": display_name(conversation.assignee) if conversation.assignee else "",
        "is_mine": conversation.assignee_id == user.pk,
        "can_act": _may_act(user),
        "settable_statuses": [(s.value, s.label) for s in actions.SETTABLE_STATUSES],
        "triage": triage_step.explain(conversation),
        "due": DueTexts(timezone.now()).label(conversation),
        "incident_size": (
            access.visible_conversations(user)
            .filter(incident_id=conversation.incident_id)
            .exclude(status__in=[Status.MERGED, Status.SPAM])
            .count()
            if conversation.incident_id is not None
            else 0
        ),
    }


def _drafts_context(user: User, conversation: Conversation) -> dict[str, Any]:
    drafts = Draft.objects.filter(conversation=conversation).exclude(author_id=user.pk).select_related("author")
    return {
        "conversation": conversation,
        "drafts": [
            {
                "author": display_name(d.author),
                "kind": d.kind,
                "kind_label": DraftKind(d.kind).label if d.kind in DraftKind.values else d.kind,
                "text": d.text,
                "updated_at": d.updated_at,
            }
            for d in drafts.order_by("-updated_at")
        ],
    }


def _contact_context(user: User, conversation: Conversation) -> dict[str, Any]:
    contact = conversation.contact
    others = (
        access.visible_conversations(user)
        .filter(contact_id=contact.pk)
        .exclude(pk=conversation.pk)
        .order_by("-last_message_at", "-id")
    )
    shown = list(others[: MAX_OTHER_CONVERSATIONS + 1])
    return {
        "contact": contact,
        "addresses": list(contact.addresses.order_by("address")),
        "other_conversations": shown[:MAX_OTHER_CONVERSATIONS],
        "more_conversations": len(shown) > MAX_OTHER_CONVERSATIONS,
    }


def _neighbours(user: User, conversation: Conversation) -> tuple[int | None, int | None]:
    """(newer, older) conversation numbers in the default list's order (last message first), for k and j."""
    visible = access.visible_conversations(user)
    at, pk = conversation.last_message_at, conversation.pk
    # Written as a range on last_message_at plus a tie-break, never as a bare OR: only a range lets the
    # database walk the (last_message_at, id) index instead of filtering every row.
    newer = (
        visible.filter(Q(last_message_at__gte=at) & (Q(last_message_at__gt=at) | Q(id__gt=pk)))
        .order_by("last_message_at", "id")
        .values_list("number", flat=True)
        .first()
    )
    older = (
        visible.filter(Q(last_message_at__lte=at) & (Q(last_message_at__lt=at) | Q(id__lt=pk)))
        .order_by("-last_message_at", "-id")
        .values_list("number", flat=True)
        .first()
    )
    return newer, older


def _joined(addresses: list[Any] | tuple[str, ...]) -> str:
    out = []
    for entry in addresses:
        address = entry.get("address", "") if isinstance(entry, dict) else str(entry)
        if address:
            out.append(address)
    return ", ".join(out)


def _composers(user: User, conversation: Conversation, *, compose: str, seen: int) -> dict[str, Composer]:
    """The three editors as a fresh page shows them, filled from the agent's own saved draft if there is one."""
    may_act = _may_act(user)
    # One lookup of the customer's last mail: a plain reply goes to the same people as reply-all, without its Cc.
    all_defaults = actions.reply_recipients(conversation, reply_all=True)
    reply_defaults = actions.Recipients(to=all_defaults.to)
    own_drafts = Draft.objects.filter(conversation=conversation, author_id=user.pk)
    reply = Composer(
        kind=DraftKind.REPLY,
        open=may_act and compose in ("", "reply", "reply_all"),
        mode="reply_all" if compose == "reply_all" else "reply",
        seen_event_id=seen,
        reply_to=_joined(reply_defaults.to),
        reply_cc=_joined(reply_defaults.cc),
        all_to=_joined(all_defaults.to),
        all_cc=_joined(all_defaults.cc),
    )
    chosen = all_defaults if compose == "reply_all" else reply_defaults
    reply.to, reply.cc = _joined(chosen.to), _joined(chosen.cc)
    forward = Composer(kind=DraftKind.FORWARD, open=may_act and compose == "forward", seen_event_id=seen)
    note = Composer(kind=DraftKind.NOTE, open=compose == "note" or not may_act, seen_event_id=seen)
    boxes: dict[str, Composer] = {DraftKind.REPLY: reply, DraftKind.FORWARD: forward, DraftKind.NOTE: note}
    for own in own_drafts:
        if own.kind not in boxes or not (may_act or own.kind == DraftKind.NOTE):
            continue
        box = boxes[own.kind]
        box.text, box.open = own.text, True
        if own.kind != DraftKind.NOTE and (own.to or own.cc or own.bcc):
            box.to, box.cc, box.bcc = _joined(own.to), _joined(own.cc), _joined(own.bcc)
    return boxes


def _page(
    request: HttpRequest,
    conversation: Conversation,
    *,
    replace: Composer | None = None,
    status: int = 200,
) -> HttpResponse:
    """The whole conversation page; `replace` puts one editor in a given state (an error, a held reply)."""
    user = _user(request)
    compose = request.GET.get("compose", "")
    thread = _thread_context(user, conversation)
    composers = _composers(user, conversation, compose=compose, seen=thread["seen_event_id"])
    if replace is not None:
        defaults = composers[replace.kind]
        replace.reply_to, replace.reply_cc = defaults.reply_to, defaults.reply_cc
        replace.all_to, replace.all_cc = defaults.all_to, defaults.all_cc
        # The whole page, thread included, is in front of the agent again: that is what they have now seen.
        replace.seen_event_id = thread["seen_event_id"]
        composers[replace.kind] = replace
    newer, older = _neighbours(user, conversation)
    context = {
        **thread,
        **_header_context(user, conversation),
        **_contact_context(user, conversation),
        **_drafts_context(user, conversation),
        "timeline": _timeline(conversation),
        "reply_box": composers[DraftKind.REPLY],
        "forward_box": composers[DraftKind.FORWARD],
        "note_box": composers[DraftKind.NOTE],
        "assignable": _assignable(conversation) if _may_act(user) else [],
        "priorities": Priority.choices,
        "known_categories": _known_categories() if _may_act(user) else [],
        "status_after_choices": [(s.value, s.label) for s in STATUS_AFTER_REPLY],
        "snooze_presets": _snooze_preset_labels(),
        "newer_number": newer,
        "older_number": older,
        "undo_seconds": _undo_window(),
    }
    return render(request, "web/conversation.html", context, status=status)


def _undo_window() -> int:
    return int(settings.POSTDESK_UNDO_SEND_SECONDS)


# --- pages and fragments ------------------------------------------------------------------------------


def _fragment(view: View) -> View:
    """For htmx fragment requests, a `PostdeskError` becomes the error fragment (agent_page makes it a page)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except PostdeskError as exc:
            if not _is_htmx(request):
                raise
            return render(
                request,
                "web/error_fragment.html",
                {"message": exc.user_message, "code": exc.code},
                status=postdesk_error_status(exc),
            )

    return wrapped


@agent_page
def conversation_detail(request: HttpRequest, number: int) -> HttpResponse:
    return _page(request, _conversation(request, number))


@agent_page
@_fragment
def thread_fragment(request: HttpRequest, number: int) -> HttpResponse:
    """The messages, with the new `seen_event_id` for the reply and forward forms sent out of band."""
    conversation = _conversation(request, number)
    context = {**_thread_context(_user(request), conversation), "oob": True}
    return render(request, "web/conversation_thread.html", context)


@agent_page
@_fragment
def header_fragment(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    return render(request, "web/conversation_header.html", _header_context(_user(request), conversation))


@agent_page
@_fragment
def timeline_fragment(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    return render(request, "web/conversation_timeline.html", {"timeline": _timeline(conversation)})


@agent_page
@_fragment
def drafts_fragment(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    return render(request, "web/conversation_drafts.html", _drafts_context(_user(request), conversation))


def _inline_images(message: Message, html: str) -> str:
    """Replace `cid:` image sources with data: URIs of the message's own inline images (CSP allows data:)."""
    if "cid:" not in html.lower():
        return html
    by_cid: dict[str, Attachment] = {}
    for attachment in message.attachments.all():
        if attachment.content_id and attachment.content_type.lower() in PREVIEW_TYPES:
            by_cid[attachment.content_id.strip("<>").lower()] = attachment
    store = default_store()
    budget = MAX_INLINE_TOTAL

    def replace(match: re.Match[str]) -> str:
        nonlocal budget
        attachment = by_cid.get(match.group(1).strip("<>").lower())
        if attachment is None or attachment.size > min(MAX_INLINE_IMAGE, budget) or not store.exists(attachment.sha256):
            return match.group(0)
        budget -= attachment.size
        encoded = base64.b64encode(store.get(attachment.sha256)).decode("ascii")
        return f'src="data:{attachment.content_type.lower()};base64,{encoded}"'

    return _CID_SRC.sub(replace, html)


@xframe_options_sameorigin
@agent_page
def message_html(request: HttpRequest, number: int, message_id: int) -> HttpResponse:
    """The sanitised HTML body as its own document, for the sandboxed frame on the thread page.

    Without its quoted history unless `?full=1` asks for the whole mail; remote images stay blocked by the
    CSP unless `?images=1` (the agent clicked "Show remote images"), which widens img-src for this response only.
    """
    message = _message_in(request, number, message_id)
    html = message.html if request.GET.get("full") == "1" else (message.visible_html or message.html)
    body = _inline_images(message, html)
    document = (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        '<base target="_blank"></head><body>' + body + "</body></html>"
    )
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = (
        MAIL_HTML_CSP_WITH_IMAGES if request.GET.get("images") == "1" else MAIL_HTML_CSP
    )
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@agent_page
def attachment_preview(request: HttpRequest, number: int, attachment_id: int) -> HttpResponse:
    """A raster image attachment shown inline as a thumbnail: same origin, its own declared type, never sniffed."""
    conversation = _conversation(request, number)
    attachment = access.access_attachment(request.user, attachment_id)
    if attachment.message.conversation_id != conversation.pk:
        raise NotFound(_("There is no attachment %(id)s.") % {"id": attachment_id})
    kind = attachment.content_type.split(";", 1)[0].strip().lower()
    if kind not in PREVIEW_TYPES or attachment.size > MAX_PREVIEW_SIZE:
        raise NotFound(_("Attachment %(id)s has no preview; download it instead.") % {"id": attachment_id})
    store = default_store()
    if not store.exists(attachment.sha256):
        log.error("blob %s of attachment %s is missing from %s", attachment.sha256, attachment.pk, store.root)
        raise NotFound(_("The stored file is missing; the administrator has been told in the log."))
    response = HttpResponse(store.get(attachment.sha256), content_type=kind)
    response["Content-Disposition"] = content_disposition(attachment.filename).replace("attachment;", "inline;", 1)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- action answers -----------------------------------------------------------------------------------


def _changed(response: HttpResponse, kind: str) -> HttpResponse:
    """Tell the page (through htmx) that the conversation changed, so its live regions refresh now."""
    response["HX-Trigger"] = json.dumps({"pd:changed": {"kind": kind, "own": True}})
    return response


def _done(
    request: HttpRequest, conversation: Conversation, message: str, kind: str, *, go_to: str | None = None
) -> HttpResponse:
    """After an action: htmx gets a one-line result (or a redirect), a plain form post goes back to the page."""
    target = go_to or _page_url(conversation)
    if not _is_htmx(request):
        return HttpResponseRedirect(target, status=303)
    response = render(request, "web/thread_action_result.html", {"message": message})
    if go_to:
        response["HX-Redirect"] = go_to
    return _changed(response, kind)


def _composer_answer(
    request: HttpRequest, conversation: Conversation, box: Composer, *, status: int = 200
) -> HttpResponse:
    """One editor re-rendered (htmx), or the whole page with that editor in this state (plain post)."""
    if not _is_htmx(request):
        return _page(request, conversation, replace=box, status=status)
    defaults = _composers(_user(request), conversation, compose="", seen=box.seen_event_id)[box.kind]
    box.reply_to, box.reply_cc, box.all_to, box.all_cc = (
        defaults.reply_to,
        defaults.reply_cc,
        defaults.all_to,
        defaults.all_cc,
    )
    context = {
        "conversation": conversation,
        "box": box,
        "can_act": _may_act(_user(request)),
        "status_after_choices": [(s.value, s.label) for s in STATUS_AFTER_REPLY],
    }
    return render(request, "web/thread_composer.html", context, status=status)


def _keep_draft(user: User, conversation: Conversation, box: Composer) -> None:
    """Save what the agent wrote as their draft, so that a reload (or another device) still has it."""
    try:
        recipients = actions.Recipients(
            to=actions.parse_addresses(box.to, label="To"),
            cc=actions.parse_addresses(box.cc, label="Cc"),
            bcc=actions.parse_addresses(box.bcc, label="Bcc"),
        )
    except PostdeskError:
        recipients = actions.Recipients(to=())
    try:
        actions.do_save_draft(user, conversation, kind=box.kind, text=box.text, recipients=recipients)
    except PostdeskError:
        log.info("could not keep the draft of user %s on #%s", user.pk, conversation.number)


def _recipients(box: Composer) -> actions.Recipients:
    return actions.Recipients(
        to=actions.parse_addresses(box.to, label=_("To")),
        cc=actions.parse_addresses(box.cc, label=_("Cc")),
        bcc=actions.parse_addresses(box.bcc, label=_("Bcc")),
    )


def _posted_box(request: HttpRequest, kind: str) -> Composer:
    post = request.POST
    seen_raw = post.get("seen_event_id", "")
    return Composer(
        kind=kind,
        open=True,
        mode="reply_all" if post.get("mode") == "reply_all" else "reply",
        to=post.get("to", ""),
        cc=post.get("cc", ""),
        bcc=post.get("bcc", ""),
        text=post.get("text", ""),
        status_after=post.get("status_after", Status.PENDING),
        seen_event_id=int(seen_raw) if seen_raw.isdigit() else 0,
    )


# --- replying, forwarding, notes, drafts, undo --------------------------------------------------------


def _send(request: HttpRequest, number: int, *, forward: bool) -> HttpResponse:
    user = _user(request)
    conversation = _conversation(request, number)
    kind = DraftKind.FORWARD if forward else DraftKind.REPLY
    box = _posted_box(request, kind)
    if not _may_act(user):
        raise PermissionDenied(_("Collaborators may read conversations and add internal notes, nothing else."))
    try:
        if not request.POST.get("seen_event_id", "").isdigit():
            raise BadRequest(_("The form is missing what you have seen of the conversation; reload the page."))
        message = actions.do_reply(
            user,
            conversation,
            text=box.text,
            recipients=_recipients(box),
            seen_event_id=box.seen_event_id,
            confirm=request.POST.get("confirm") == "1",
            status_after=box.status_after if not forward else Status.PENDING,
            forward=forward,
        )
    except actions.Collision as exc:
        _keep_draft(user, conversation, box)
        box.held, box.error = exc.changes, exc.user_message
        return _composer_answer(request, conversation, box, status=409)
    except BadRequest as exc:
        box.error = exc.user_message
        return _composer_answer(request, conversation, box, status=400)
    if not _is_htmx(request):
        return HttpResponseRedirect(_page_url(conversation) + f"#m{message.pk}", status=303)
    outbound = OutboundMail.objects.filter(message=message).first()
    # A fresh editor (do_reply removed the draft); the seen id moves when the thread fragment is refreshed.
    fresh = _composers(user, conversation, compose="", seen=box.seen_event_id)[kind]
    fresh.open = True
    if outbound is not None:
        seconds = max(0, int((outbound.send_after - timezone.now()).total_seconds() + 0.999))
        fresh.sent = SentNotice(message.pk, seconds, outbound.send_after.isoformat(), forward)
    return _changed(_composer_answer(request, conversation, fresh), "forwarded" if forward else "replied")


@agent_action
def reply(request: HttpRequest, number: int) -> HttpResponse:
    """Send a reply (or reply-all: the To/Cc fields say who); held with 409 when others acted since."""
    return _send(request, number, forward=False)


@agent_action
def forward(request: HttpRequest, number: int) -> HttpResponse:
    """Forward the conversation to any address, with a note to them."""
    return _send(request, number, forward=True)


@agent_action
def note(request: HttpRequest, number: int) -> HttpResponse:
    user = _user(request)
    conversation = _conversation(request, number)
    box = _posted_box(request, DraftKind.NOTE)
    try:
        actions.do_note(user, conversation, text=box.text)
    except BadRequest as exc:
        box.error = exc.user_message
        return _composer_answer(request, conversation, box, status=400)
    if not _is_htmx(request):
        return HttpResponseRedirect(_page_url(conversation), status=303)
    fresh = Composer(kind=DraftKind.NOTE, open=True, notice=_("Note added."), seen_event_id=box.seen_event_id)
    return _changed(_composer_answer(request, conversation, fresh), "noted")


@agent_action
def save_draft(request: HttpRequest, number: int) -> HttpResponse:
    """Autosave while typing. One draft per agent and conversation: a note never overwrites a reply or forward."""
    user = _user(request)
    conversation = _conversation(request, number)
    kind = request.POST.get("kind", DraftKind.REPLY)
    if kind not in DraftKind.values:
        raise BadRequest(_("Unknown draft kind %(kind)r.") % {"kind": kind})
    box = _posted_box(request, kind)
    existing = Draft.objects.filter(conversation=conversation, author_id=user.pk, kind=kind).first()
    recipients: actions.Recipients | None = None
    if kind != DraftKind.NOTE:
        # Half-typed addresses must not cost the text: keep the fields that parse.
        parsed = {}
        for name in ("to", "cc", "bcc"):
            try:
                parsed[name] = actions.parse_addresses(getattr(box, name), label=name)
            except BadRequest:
                parsed[name] = tuple(getattr(existing, name, []) or [])
        recipients = actions.Recipients(**parsed)
    seen = request.POST.get("seen_event_id", "")
    draft = actions.do_save_draft(
        user,
        conversation,
        kind=kind,
        text=box.text,
        recipients=recipients,
        # A save the browser sent before this editor's text went out arrives after it: it is dropped.
        seen_event_id=int(seen) if seen.isdigit() else None,
    )
    if draft is None and box.text.strip():
        message = ""
    elif draft is None:
        message = _("Draft discarded.")
    else:
        message = _("Draft saved at %(time)s.") % {"time": timezone.localtime(draft.updated_at).strftime("%H:%M:%S")}
    return render(request, "web/thread_draft_status.html", {"message": message})


@agent_action
def undo_send(request: HttpRequest, number: int, message_id: int) -> HttpResponse:
    """Take back a reply or forward still in its undo window; its text goes back into the editor (and the draft)."""
    user = _user(request)
    message = _message_in(request, number, message_id)
    conversation = message.conversation
    if message.direction != Direction.OUTBOUND:
        raise BadRequest(_("Only a reply or forward can be undone."))
    if message.author_id != user.pk:
        raise PermissionDenied(_("Only the agent who sent it can undo a reply."))
    kind = DraftKind.FORWARD if message.forwarded else DraftKind.REPLY
    box = Composer(
        kind=kind,
        open=True,
        to=_joined(message.to),
        cc=_joined(message.cc),
        bcc=_joined(message.bcc),
        text=message.visible_text or message.text,
        seen_event_id=actions.latest_event_id(conversation),
    )
    # outbox.cancel also gives the text back to the author as their draft, so a reload finds it too.
    if not outbox.cancel(user, message):
        # Already handed to the relay: the text is sent, so the editor stays empty rather than invite a double.
        box.text = box.to = box.cc = box.bcc = ""
        box.error = _("Too late to undo: the mail is already on its way.")
        if not _is_htmx(request):
            return _page(request, conversation, replace=box, status=409)
        return _composer_answer(request, conversation, box, status=409)
    if not _is_htmx(request):
        return HttpResponseRedirect(_page_url(conversation) + f"?compose={kind}#{kind}-box", status=303)
    box.notice = _("Sending undone; your text is back in the editor.")
    return _changed(_composer_answer(request, conversation, box), "send_cancelled")


@agent_action
def retry_send(request: HttpRequest, number: int, message_id: int) -> HttpResponse:
    """Send a failed reply or forward again, the very same mail (after the cause was fixed)."""
    message = _message_in(request, number, message_id)
    if not _may_act(_user(request)):
        raise PermissionDenied(_("Collaborators may read conversations and add internal notes, nothing else."))
    outbound = OutboundMail.objects.filter(message=message).first()
    if outbound is None or outbound.state != OutboundState.FAILED:
        raise BadRequest(_("Only a mail whose sending failed can be sent again."))
    outbox.retry(outbound.pk)
    return _done(request, message.conversation, _("Sending again."), "retried")


# --- assignment, status, priority, snooze, tags, following --------------------------------------------


@agent_action
def take(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    actions.do_take(_user(request), conversation)
    return _done(request, conversation, _("You took this conversation."), "assigned")


@agent_action
def assign(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    raw = request.POST.get("assignee", "").strip()
    assignee: User | None = None
    if raw:
        found = get_user_model().objects.filter(pk=_int_field(raw, label=_("Assignee")), is_active=True).first()
        if found is None:
            raise BadRequest(_("There is no agent %(who)s.") % {"who": raw})
        assignee = found
    actions.do_assign(_user(request), conversation, assignee)
    text = _("Assigned to %(who)s.") % {"who": display_name(assignee)} if assignee else _("Nobody is assigned now.")
    return _done(request, conversation, text, "assigned")


@agent_action
def set_status(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    status = request.POST.get("status", "")
    actions.do_set_status(_user(request), conversation, status)
    return _done(request, conversation, _("Status: %(status)s.") % {"status": _status_label(status)}, "status")


@agent_action
def incident_reply(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    result = actions.do_reply_incident(_user(request), conversation, text=request.POST.get("text", ""))
    message = ngettext(
        "Answered %(count)s customer of the incident.", "Answered %(count)s customers of the incident.", result.changed
    ) % {"count": result.changed}
    if result.errors:
        message += " " + _("Not answered: %(errors)s") % {"errors": "; ".join(result.errors[:10])}
    return _done(request, conversation, message, "replied")


@agent_action
def set_category(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    category = request.POST.get("category", "")
    actions.do_set_category(_user(request), conversation, category)
    text = _("Category: %(category)s.") % {"category": category.strip()} if category.strip() else _("Category cleared.")
    return _done(request, conversation, text, "category")


@agent_action
def set_priority(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    priority = request.POST.get("priority", "")
    actions.do_set_priority(_user(request), conversation, priority)
    return _done(
        request, conversation, _("Priority: %(priority)s.") % {"priority": _priority_label(priority)}, "priority"
    )


def _snooze_preset_labels() -> list[tuple[str, str]]:
    return [
        ("1h", _("In 1 hour")),
        ("3h", _("In 3 hours")),
        ("tomorrow", _("Tomorrow 9:00")),
        ("monday", _("Next Monday 9:00")),
    ]


def _agent_zone(raw: str) -> Any:
    """The agent's time zone as the browser reported it (IANA name); the server's when the form did not say."""
    name = raw.strip()
    if not name:
        return timezone.get_default_timezone()
    if len(name) > 64:
        raise BadRequest(_("Unknown time zone."))
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError; odd names raise ValueError
        raise BadRequest(_("Unknown time zone %(zone)r.") % {"zone": name}) from None


def snooze_until(preset: str, custom: str, zone_name: str, now: datetime) -> datetime:
    """When a snooze ends: a preset (1h, 3h, tomorrow and next Monday at 9:00 in the agent's zone) or a
    datetime-local value ("2026-11-21T09:00", read in the agent's zone)."""
    zone = _agent_zone(zone_name)
    local_now = now.astimezone(zone)
    if preset == "1h":
        return now + timedelta(hours=1)
    if preset == "3h":
        return now + timedelta(hours=3)
    if preset in ("tomorrow", "monday"):
        days = 1 if preset == "tomorrow" else (7 - local_now.weekday()) or 7
        day = (local_now + timedelta(days=days)).date()
        return datetime(day.year, day.month, day.day, 9, 0, tzinfo=zone)
    if preset:
        raise BadRequest(
            _("Unknown snooze choice %(preset)r; use one of: %(valid)s.")
            % {"preset": preset, "valid": ", ".join(SNOOZE_PRESETS)}
        )
    if not custom.strip():
        raise BadRequest(_("Choose when the conversation should come back."))
    try:
        until = datetime.fromisoformat(custom.strip())
    except ValueError:
        raise BadRequest(_("The snooze time must look like 2026-11-21T09:00.")) from None
    return until.replace(tzinfo=zone) if until.tzinfo is None else until


@agent_action
def snooze(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    post = request.POST
    until = snooze_until(post.get("preset", ""), post.get("until", ""), post.get("tz", ""), timezone.now())
    actions.do_snooze(_user(request), conversation, until)
    shown = until.astimezone(_agent_zone(post.get("tz", ""))).strftime("%Y-%m-%d %H:%M %Z").strip()
    return _done(request, conversation, _("Snoozed until %(until)s.") % {"until": shown}, "snoozed")


@agent_action
def tags(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    add = [t for t in request.POST.get("add", "").split(",") if t.strip()]
    remove = request.POST.getlist("remove")
    if not add and not remove:
        raise BadRequest(_("Type a tag to add."))
    actions.do_tag(_user(request), conversation, add=add, remove=remove)
    return _done(request, conversation, _("Tags saved."), "tagged")


@agent_action
def follow(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    wanted = request.POST.get("follow", "1")
    if wanted not in ("0", "1"):
        raise BadRequest(_("follow must be 1 or 0."))
    actions.do_follow(_user(request), conversation, follow=wanted == "1")
    text = _("You follow this conversation.") if wanted == "1" else _("You no longer follow this conversation.")
    return _done(request, conversation, text, "followed")


# --- merge, split, spam -------------------------------------------------------------------------------


@agent_action
def merge(request: HttpRequest, number: int) -> HttpResponse:
    """Merge this conversation into another one (by its number); the page moves to the survivor."""
    conversation = _conversation(request, number)
    raw = request.POST.get("into", "").strip().lstrip("#")
    if not raw:
        raise BadRequest(_("Give the number of the conversation to merge into."))
    target = _conversation(request, _int_field(raw, label=_("The conversation number")))
    survivor = actions.do_merge(_user(request), conversation, target)
    return _done(
        request,
        conversation,
        _("Merged into #%(number)s.") % {"number": survivor.number},
        "merged",
        go_to=_page_url(survivor),
    )


@agent_action
def split(request: HttpRequest, number: int, message_id: int) -> HttpResponse:
    """Move one customer message into a new conversation; the page moves to it."""
    message = _message_in(request, number, message_id)
    new = actions.do_split(_user(request), message)
    return _done(
        request,
        message.conversation,
        _("Split into #%(number)s.") % {"number": new.number},
        "split",
        go_to=_page_url(new),
    )


@agent_action
def spam(request: HttpRequest, number: int) -> HttpResponse:
    conversation = _conversation(request, number)
    block = request.POST.get("block_sender") == "1"
    actions.do_mark_spam(_user(request), conversation, block_sender=block)
    if block and conversation.contact_address:
        text = _("Marked as spam; mail from %(sender)s goes to spam from now on.") % {
            "sender": conversation.contact_address
        }
    else:
        text = _("Marked as spam.")
    return _done(request, conversation, text, "spam")


# Spliced into web/urls.py; every route starts with the conversation number.
_C = "c/<int:number>/"
urlpatterns: list[URLPattern] = [
    path(_C, conversation_detail, name="conversation"),
    path(_C + "thread", thread_fragment, name="conversation-thread"),
    path(_C + "header", header_fragment, name="conversation-header"),
    path(_C + "timeline", timeline_fragment, name="conversation-timeline"),
    path(_C + "drafts", drafts_fragment, name="conversation-drafts"),
    path(_C + "m/<int:message_id>/html", message_html, name="message-html"),
    path(_C + "a/<int:attachment_id>/preview", attachment_preview, name="attachment-preview"),
    path(_C + "reply", reply, name="conversation-reply"),
    path(_C + "forward", forward, name="conversation-forward"),
    path(_C + "note", note, name="conversation-note"),
    path(_C + "draft", save_draft, name="conversation-draft"),
    path(_C + "m/<int:message_id>/undo", undo_send, name="message-undo"),
    path(_C + "m/<int:message_id>/retry", retry_send, name="message-retry"),
    path(_C + "take", take, name="conversation-take"),
    path(_C + "assign", assign, name="conversation-assign"),
    path(_C + "status", set_status, name="conversation-status"),
    path(_C + "priority", set_priority, name="conversation-priority"),
    path(_C + "category", set_category, name="conversation-category"),
    path(_C + "incident-reply", incident_reply, name="conversation-incident-reply"),
    path(_C + "snooze", snooze, name="conversation-snooze"),
    path(_C + "tags", tags, name="conversation-tags"),
    path(_C + "follow", follow, name="conversation-follow"),
    path(_C + "merge", merge, name="conversation-merge"),
    path(_C + "m/<int:message_id>/split", split, name="message-split"),
    path(_C + "spam", spam, name="conversation-spam"),
]
