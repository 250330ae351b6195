"""The inbox: folders with live counts, filters and sort orders, saved views, the conversation list and bulk actions.

Folders and filters only ever narrow `access.visible_conversations(user)`, so neither a list nor a count
can include a conversation the agent may not see. Counts never scan millions of rows: each one counts at
most COUNT_CAP rows of an indexed query ("999+" beyond), all folders in one database round trip.
The list and the counts refresh themselves (htmx) when live.js reports a change in the agent's mailboxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import avoid_wrapping
from django.utils.http import urlencode
from django.utils.timesince import TIME_STRINGS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from postdesk.desk import access, actions
from postdesk.desk.errors import BadRequest
from postdesk.desk.folders import (
    COUNT_CAP,
    FILTER_KEYS,
    Folder,
    ListQuery,
    folder_counts,
    listed_conversations,
    parse_list_query,
)
from postdesk.desk.models import AgentProfile, Conversation, Priority, Role, SavedView, Status, Team
from postdesk.desk.pagination import DEFAULT_LIMIT, Sort, keyset_page
from postdesk.desk.people import display_name
from postdesk.web.due import DueLabel, DueTexts
from postdesk.web.views import agent_action, agent_page

# How many per-conversation problems of a bulk action are listed one by one.
MAX_LISTED_ERRORS = 10

SORT_LABELS = {
    Sort.NEWEST: gettext_lazy("Newest activity"),
    Sort.WAITING: gettext_lazy("Oldest waiting"),
    Sort.PRIORITY: gettext_lazy("Priority"),
    Sort.DUE: gettext_lazy("SLA due"),
}


@dataclass(frozen=True, slots=True)
class FolderLink:
    folder: Folder
    url: str
    count: int
    active: bool

    @property
    def count_text(self) -> str:
        return f"{COUNT_CAP - 1}+" if self.count >= COUNT_CAP else str(self.count)


@dataclass(frozen=True, slots=True)
class ListRow:
    """One row of the list, every text in it ready to show: the template only places them.

    A new column adds a field here, fills it in `list_row`, and adds a cell to inbox_list.html.
    """

    conversation: Conversation
    # Numbers as text: the template would format each int through the locale's number format, row by row.
    number: str
    id: str
    url: str
    subject: str  # the subject, or "(no subject)"
    select_label: str  # "Select conversation 42"
    message_count: str  # "5", or "" for a lone message (no count shown)
    messages_label: str  # "5 messages"
    tags: list[str]
    status_label: str
    priority_label: str  # "" for normal priority, which the list does not show
    assignee_name: str  # "" when unassigned
    last_activity_iso: str  # for <time datetime>
    last_activity_at: str  # "2026-11-20 09:00", the tooltip
    last_activity: str  # "3 hours ago"
    waiting: str  # "waiting 2 days", or "" when the customer is not waiting
    waiting_title: str  # "Waiting since 2026-11-18 14:05", or ""
    due: DueLabel | None  # the SLA deadline ("due in 23 min"), None without an SLA


class RelativeTime:
    """Django's `timesince(when, now, depth=1)` ("3\xa0hours", "2\xa0months"), for the many rows of one page.

    `timesince` translates three times per call (the unit, its number, the ", " between units); a list of 50
    rows called it twice a row. Here each unit and number is translated once per page (the plural form of
    "%(num)d hours" depends on the number in many languages, so the number is part of the key).
    """

    __slots__ = ("_texts",)

    def __init__(self) -> None:
        self._texts: dict[tuple[str, int], str] = {}

    def _text(self, unit: str, number: int) -> str:
        text = self._texts.get((unit, number))
        if text is None:
            # Django's own (lazy) ngettext strings: the same wording and translations as `timesince`.
            text = self._texts[unit, number] = avoid_wrapping(TIME_STRINGS[unit] % {"num": number})
        return text

    def since(self, when: datetime, now: datetime) -> str:
        """The largest whole unit between `when` and `now`; "0 minutes" when `when` is not in the past."""
        now = now.astimezone(when.tzinfo)
        delta = now - when
        if delta.days * 86400 + delta.seconds <= 0:
            return self._text("minute", 0)
        # Years and months by the calendar, as timesince counts them (a month is not a fixed length).
        months = (now.year - when.year) * 12 + (now.month - when.month)
        if when.day > now.day or (when.day == now.day and when.time() > now.time()):
            months -= 1
        years, months = divmod(months, 12)
        if years:
            return self._text("year", years)
        if months:
            return self._text("month", months)
        seconds = delta.total_seconds()
        for unit, length in _TIME_UNITS:
            if seconds >= length:
                return self._text(unit, int(seconds // length))
        return self._text("minute", 0)


_TIME_UNITS = (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))


@dataclass(frozen=True, slots=True)
class RowTexts:
    """The list's texts that are the same for every row, translated once per page rather than once per row."""

    now: datetime
    no_subject: str
    just_now: str
    ago: str  # "%(age)s ago"
    select: str  # "Select conversation %(number)s"
    waiting: str  # "waiting %(age)s"
    waiting_since: str  # "Waiting since %(since)s"
    statuses: dict[str, str]
    priorities: dict[str, str]
    ages: RelativeTime
    message_counts: dict[int, str]  # filled as rows need them: the plural form depends on the number
    due: DueTexts

    @classmethod
    def for_page(cls, now: datetime) -> RowTexts:
        return cls(
            now=now,
            no_subject=_("(no subject)"),
            just_now=_("just now"),
            ago=_("%(age)s ago"),
            select=_("Select conversation %(number)s"),
            waiting=_("waiting %(age)s"),
            waiting_since=_("Waiting since %(since)s"),
            statuses={str(value): str(label) for value, label in Status.choices},
            priorities={str(value): str(label) for value, label in Priority.choices},
            ages=RelativeTime(),
            message_counts={},
            due=DueTexts(now),
        )

    def messages(self, count: int) -> str:
        text = self.message_counts.get(count)
        if text is None:
            text = self.message_counts[count] = ngettext("%(counter)s message", "%(counter)s messages", count) % {
                "counter": count
            }
        return text

    def age(self, when: datetime) -> str:
        """ "3 hours ago", or "just now" within the minute."""
        if self.now - when < timedelta(minutes=1):
            return self.just_now
        return self.ago % {"age": self.ages.since(when, self.now)}


# The page constants of inbox_list.html's header and rows, for the template to place (not translate) per row.
def list_labels() -> dict[str, str]:
    return {
        "messages": _("messages"),
        "has_attachments": _("Has attachments"),
        "unassigned": _("Unassigned"),
    }


def list_row(conversation: Conversation, tags: list[str], texts: RowTexts) -> ListRow:
    c = conversation
    last = timezone.localtime(c.last_message_at)
    waiting = waiting_title = ""
    if c.waiting_since is not None:
        waiting = texts.waiting % {"age": texts.ages.since(c.waiting_since, texts.now)}
        since = timezone.localtime(c.waiting_since).strftime("%Y-%m-%d %H:%M")
        waiting_title = texts.waiting_since % {"since": since}
    return ListRow(
        conversation=c,
        number=str(c.number),
        id=str(c.pk),
        url=reverse("web:conversation", args=[c.number]),
        subject=c.subject or texts.no_subject,
        select_label=texts.select % {"number": c.number},
        message_count=str(c.message_count) if c.message_count > 1 else "",
        messages_label=texts.messages(c.message_count) if c.message_count > 1 else "",
        tags=tags,
        status_label=texts.statuses.get(c.status, c.status),
        priority_label="" if c.priority == Priority.NORMAL else texts.priorities.get(c.priority, c.priority),
        assignee_name=display_name(c.assignee),
        last_activity_iso=last.isoformat(),
        last_activity_at=last.strftime("%Y-%m-%d %H:%M"),
        last_activity=texts.age(c.last_message_at),
        waiting=waiting,
        waiting_title=waiting_title,
        due=texts.due.label(c),
    )


def folder_links(user: User, listing: ListQuery) -> list[FolderLink]:
    """The sidebar: every folder with its count; a folder link keeps the sort order, not the filters."""
    counts = folder_counts(user, listing.folders)
    base = reverse("web:conversation-list")
    links: list[FolderLink] = []
    for folder, count in zip(listing.folders, counts, strict=True):
        query = {"folder": folder.key} if folder.key else {}
        if listing.sort != Sort.NEWEST:
            query["sort"] = listing.sort.value
        url = base + (f"?{urlencode(query)}" if query else "")
        links.append(FolderLink(folder, url, count, folder.key == listing.folder.key))
    return links


# --- page context -------------------------------------------------------------------------------------


def filters_query(filters: Mapping[str, str]) -> str:
    """`?key=value&…` for a list with these filters, keys always in the same order ("" when none)."""
    query = urlencode({key: filters[key] for key in FILTER_KEYS if filters.get(key)})
    return f"?{query}" if query else ""


def assignable_agents(user: User) -> list[User]:
    """Agents the user may pick as assignee or filter by: those sharing a team, and admins."""
    teams = Team.objects.filter(mailboxes__in=access.visible_mailboxes(user))
    profiles = (
        AgentProfile.objects.filter(user__is_active=True, role__in=[Role.ADMIN, Role.SUPERVISOR, Role.AGENT])
        .filter(Q(role=Role.ADMIN) | Q(teams__in=teams))
        .select_related("user")
        .distinct()
    )
    return sorted((p.user for p in profiles), key=lambda u: display_name(u).lower())


def _list_context(request: HttpRequest) -> dict[str, object]:
    user = request.user
    assert isinstance(user, User)  # agent_page requires a login
    listing = parse_list_query(user, request.GET)
    rows = listed_conversations(user, listing).select_related("assignee").prefetch_related("tags")
    page = keyset_page(rows, cursor=request.GET.get("cursor"), limit=DEFAULT_LIMIT, sort=listing.sort)
    texts = RowTexts.for_page(timezone.now())
    shown = [list_row(c, sorted(t.name for t in c.tags.all()), texts) for c in page.rows]
    query_string = urlencode(listing.params)
    cursor = request.GET.get("cursor", "")
    cursor_param = {"cursor": cursor} if cursor else {}
    return {
        "listing": listing,
        "rows": shown,
        "labels": list_labels(),
        "next_url": f"?{urlencode({**listing.params, 'cursor': page.next_cursor})}" if page.next_cursor else "",
        "first_url": f"?{query_string}" if query_string else "?",
        "is_first_page": not cursor,
        # The list's filters and position, as hidden inputs: the live refresh and the forms send them back.
        "state": {**listing.params, **cursor_param},
        "folders": folder_links(user, listing),
        "can_act": actions.can_act(user),
    }


def _page_context(request: HttpRequest) -> dict[str, object]:
    user = request.user
    assert isinstance(user, User)
    context = _list_context(request)
    listing = context["listing"]
    assert isinstance(listing, ListQuery)
    views = list(SavedView.objects.filter(owner_id=user.pk).order_by("name"))
    agents = assignable_agents(user)
    mailboxes = list(access.visible_mailboxes(user).order_by("address").only("pk", "address"))
    advanced = ("mailbox", "tag", "assignee", "priority", "contact", "after", "before")
    return {
        **context,
        "selected": listing.params,
        "mailboxes": mailboxes,
        "statuses": Status.choices,
        "priorities": Priority.choices,
        "sorts": [(s.value, str(label)) for s, label in SORT_LABELS.items()],
        "agents": [(str(a.pk), display_name(a)) for a in agents],
        "settable_statuses": [(s.value, s.label) for s in actions.SETTABLE_STATUSES],
        "saved_views": [
            {"view": v, "url": filters_query(v.filters) or "?", "active": v.filters == listing.params} for v in views
        ],
        "more_filters_open": any(key in listing.params for key in advanced),
        "live_mailboxes": ",".join(str(m.pk) for m in sorted(mailboxes, key=lambda m: m.pk)),
    }


# --- views --------------------------------------------------------------------------------------------


@agent_page
def conversation_list(request: HttpRequest) -> HttpResponse:
    return render(request, "web/conversation_list.html", _page_context(request))


@agent_page
def conversation_list_refresh(request: HttpRequest) -> HttpResponse:
    """The list and the folder counts only, for htmx to swap in when something changed (no full page)."""
    return render(request, "web/inbox_refresh.html", _list_context(request))


def _back(request: HttpRequest) -> HttpResponseRedirect:
    """Back to the list page the form was on: its filters and cursor came along as hidden inputs."""
    state = {key: request.POST[key] for key in (*FILTER_KEYS, "cursor") if request.POST.get(key)}
    query = urlencode(state)
    return HttpResponseRedirect(reverse("web:conversation-list") + (f"?{query}" if query else ""))


def _bulk_operation(user: User, op: str, tag: str) -> tuple[str, str]:
    """The form's operation (`assign:me`, `status:resolved`, `tag`, …) → do_bulk's (action, value)."""
    if not op and tag.strip():
        op = "tag"  # Enter in the tag field
    action, _sep, value = op.partition(":")
    if action == "assign":
        if value == "me":
            return action, str(user.pk)
        if value == "nobody" or value.isdigit():
            return action, value
    elif action == "status":
        # Checked here, not per conversation: a wrong value is one clear 400, not an error per row.
        if value not in actions.SETTABLE_STATUSES:
            raise BadRequest(
                _("Unknown status %(status)r; use one of: %(valid)s.")
                % {"status": value[:50], "valid": ", ".join(actions.SETTABLE_STATUSES)}
            )
        return action, value
    elif action == "priority":
        if value not in Priority.values:
            raise BadRequest(
                _("Unknown priority %(priority)r; use one of: %(valid)s.")
                % {"priority": value[:50], "valid": ", ".join(Priority.values)}
            )
        return action, value
    elif action == "tag" and not value:
        if not tag.strip():
            raise BadRequest(_("Type the tag to add."))
        return action, tag
    elif action in ("spam", "merge") and not value:
        return action, ""
    raise BadRequest(_("Choose what to do with the selected conversations."), code="bad_action")


@agent_action
def bulk_action(request: HttpRequest) -> HttpResponse:
    """Apply one action to the selected conversations; report how many changed and what failed."""
    user = request.user
    assert isinstance(user, User)
    raw_numbers = request.POST.getlist("n")
    if not all(raw.isdigit() for raw in raw_numbers):
        raise BadRequest(_("The selection is not a list of conversation numbers."))
    action, value = _bulk_operation(
        user, request.POST.get("quick") or request.POST.get("op", ""), request.POST.get("new_tag", "")
    )
    result = actions.do_bulk(user, [int(raw) for raw in raw_numbers], action, value)
    if result.changed:
        messages.success(
            request,
            ngettext("Changed %(count)s conversation.", "Changed %(count)s conversations.", result.changed)
            % {"count": result.changed},
        )
    elif not result.errors:
        messages.info(request, _("Nothing needed changing."))
    for error in result.errors[:MAX_LISTED_ERRORS]:
        messages.error(request, error)
    if len(result.errors) > MAX_LISTED_ERRORS:
        more = len(result.errors) - MAX_LISTED_ERRORS
        messages.error(request, ngettext("… and %(n)s more problem.", "… and %(n)s more problems.", more) % {"n": more})
    return _back(request)


@agent_action
def save_view(request: HttpRequest) -> HttpResponse:
    """Save the list's current filters under a name (the same name again replaces that view)."""
    user = request.user
    assert isinstance(user, User)
    listing = parse_list_query(user, request.POST)  # a view that cannot be opened is not saved
    view = actions.do_save_view(user, request.POST.get("name", ""), listing.params)
    messages.success(request, _("Saved the view “%(name)s”.") % {"name": view.name})
    return redirect(reverse("web:conversation-list") + filters_query(view.filters))


@agent_action
def delete_view(request: HttpRequest, view_id: int) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    actions.do_delete_view(user, view_id)
    messages.success(request, _("Deleted the saved view."))
    return _back(request)
