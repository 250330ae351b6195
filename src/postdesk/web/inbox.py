"""The inbox: folders with live counts, filters and sort orders, saved views, the conversation list and bulk actions.

Folders and filters only ever narrow `access.visible_conversations(user)`, so neither a list nor a count
can include a conversation the agent may not see. Counts never scan millions of rows: each one counts at
most COUNT_CAP rows of an indexed query ("999+" beyond), all folders in one database round trip.
The list and the counts refresh themselves (htmx) when live.js reports a change in the agent's mailboxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from postdesk.api.pagination import DEFAULT_LIMIT, Sort, keyset_page, parse_sort
from postdesk.desk import access, actions
from postdesk.desk.errors import BadRequest
from postdesk.desk.models import AgentProfile, Conversation, Priority, Role, SavedView, Status, Team
from postdesk.web.views import agent_action, agent_page

# Each folder count stops at this many rows; at the cap the sidebar shows "999+".
COUNT_CAP = 1000
# How many per-conversation problems of a bulk action are listed one by one.
MAX_LISTED_ERRORS = 10

OPEN_STATUSES = (Status.NEW, Status.OPEN)
# "All conversations" hides spam and merged ones unless a status filter asks for them.
ALL_STATUSES = tuple(s for s in Status if s not in (Status.SPAM, Status.MERGED))
FILTER_KEYS = actions.VIEW_FILTER_KEYS  # the query parameters links and saved views keep
SORT_LABELS = {
    Sort.NEWEST: gettext_lazy("Newest activity"),
    Sort.WAITING: gettext_lazy("Oldest waiting"),
    Sort.PRIORITY: gettext_lazy("Priority"),
}


@dataclass(frozen=True, slots=True)
class Folder:
    """A fixed view of the inbox: a set of statuses, and possibly "assigned to me / nobody" or one team."""

    key: str  # the ?folder= value; "" is All conversations
    label: str
    statuses: tuple[str, ...]
    assignee: str = ""  # "me", "nobody" or "" (anyone)
    team_id: int | None = None


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
class ListQuery:
    """A parsed, validated list request."""

    params: dict[str, str]  # the non-empty filter parameters as given: for links and saved views
    folder: Folder
    folders: list[Folder]  # every folder the user has
    wanted: access.ConversationFilter
    sort: Sort


@dataclass(frozen=True, slots=True)
class ListRow:
    conversation: Conversation
    tags: list[str]
    assignee_name: str
    last_activity: str  # "3 hours ago"
    waiting: str  # "2 days", or "" when the customer is not waiting


# --- folders ------------------------------------------------------------------------------------------


def my_teams(user: User) -> list[Team]:
    """The teams that get a folder: the agent's own; every team for an admin who belongs to none."""
    profile = AgentProfile.objects.filter(user_id=user.pk).first()
    teams = list(profile.teams.order_by("name")) if profile is not None else []
    if not teams and access.sees_everything(user):
        teams = list(Team.objects.order_by("name"))
    return teams


def folders_for(user: User) -> list[Folder]:
    teams = [
        Folder(f"team-{team.pk}", _("Team %(name)s") % {"name": team.name}, OPEN_STATUSES, team_id=team.pk)
        for team in my_teams(user)
    ]
    return [
        Folder("unassigned", _("Unassigned"), OPEN_STATUSES, assignee="nobody"),
        Folder("mine", _("Mine"), OPEN_STATUSES, assignee="me"),
        *teams,
        Folder("open", _("All open"), OPEN_STATUSES),
        Folder("pending", _("Pending"), (Status.PENDING,)),
        Folder("snoozed", _("Snoozed"), (Status.SNOOZED,)),
        Folder("resolved", _("Resolved"), (Status.RESOLVED, Status.CLOSED)),
        Folder("spam", _("Spam"), (Status.SPAM,)),
        Folder("", _("All conversations"), ALL_STATUSES),
    ]


def _folder(folders: list[Folder], key: str) -> Folder:
    for folder in folders:
        if folder.key == key:
            return folder
    raise BadRequest(_("There is no folder %(folder)r.") % {"folder": key[:50]}, code="bad_filter")


def in_folder(user: User, folder: Folder, rows: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """`rows` narrowed to the folder."""
    rows = rows.filter(status__in=folder.statuses)
    if folder.assignee == "me":
        rows = rows.filter(assignee_id=user.pk)
    elif folder.assignee == "nobody":
        rows = rows.filter(assignee__isnull=True)
    if folder.team_id is not None:
        rows = rows.filter(team_id=folder.team_id)
    return rows


def folder_counts(user: User, folders: list[Folder]) -> list[int]:
    """How many visible conversations each folder holds, each capped at COUNT_CAP, in one query.

    Each count is `SELECT COUNT(*) FROM (SELECT id … LIMIT cap)`: the database stops after `cap` index
    entries, so a folder of a million conversations costs what one of a thousand does.
    """
    visible = access.visible_conversations(user)
    columns: list[str] = []
    params: list[Any] = []  # whatever Django bound into each query
    for folder in folders:
        capped = in_folder(user, folder, visible).order_by().values("id")[:COUNT_CAP]
        try:
            sql, sql_params = capped.query.sql_with_params()
        except EmptyResultSet:  # the user sees no mailbox at all
            columns.append("0")
            continue
        # `sql` is Django's own compiled query; every value in it is a bound parameter.
        columns.append(f"(SELECT COUNT(*) FROM ({sql}) capped)")  # noqa: S608
        params.extend(sql_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(columns), params)
        row = cursor.fetchone()
    return [int(value) for value in row]


def folder_links(user: User, listing: ListQuery) -> list[FolderLink]:
    """The sidebar: every folder with its count; a folder link keeps the sort order, not the filters."""
    counts = folder_counts(user, listing.folders)
    links: list[FolderLink] = []
    for folder, count in zip(listing.folders, counts, strict=True):
        query = {"folder": folder.key} if folder.key else {}
        if listing.sort != Sort.NEWEST:
            query["sort"] = listing.sort.value
        url = reverse("web:conversation-list") + (f"?{urlencode(query)}" if query else "")
        links.append(FolderLink(folder, url, count, folder.key == listing.folder.key))
    return links


# --- parsing a list request ---------------------------------------------------------------------------


def _assignee(user: User, raw: str) -> tuple[int | None, bool]:
    """`me`, `nobody` or an agent's id → (assignee id, unassigned)."""
    if not raw:
        return None, False
    if raw == "me":
        return user.pk, False
    if raw == "nobody":
        return None, True
    if raw.isdigit():
        return int(raw), False
    raise BadRequest(
        _("Unknown assignee %(value)r; use me, nobody or an agent's number.") % {"value": raw[:50]}, code="bad_filter"
    )


def _day_start(raw: str, label: str) -> datetime | None:
    """The start of the day `YYYY-MM-DD` in the current time zone."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            _("%(field)s must be a date like 2026-11-20, got %(value)r.") % {"field": label, "value": raw[:50]},
            code="bad_filter",
        ) from None
    return timezone.make_aware(datetime.combine(day, time.min))


def parse_list_query(user: User, query: QueryDict) -> ListQuery:
    """The filters, folder and sort order of a list request; any bad value is a `BadRequest` saying which."""
    params = {key: query.get(key, "").strip() for key in FILTER_KEYS if query.get(key, "").strip()}
    assignee_id, unassigned = _assignee(user, params.get("assignee", ""))
    until = _day_start(params.get("before", ""), _("Active until"))
    wanted = access.ConversationFilter(
        mailbox=params.get("mailbox", ""),
        statuses=access.parse_statuses(params.get("status", "")),
        contact=params.get("contact", ""),
        q=params.get("q", ""),
        tag=params.get("tag", ""),
        priorities=access.parse_priorities(params.get("priority", "")),
        assignee_id=assignee_id,
        unassigned=unassigned,
        active_from=_day_start(params.get("after", ""), _("Active since")),
        # Until a day means to the end of that day.
        active_until=until + timedelta(days=1) if until is not None else None,
    )
    folders = folders_for(user)
    folder = _folder(folders, params.get("folder", ""))
    return ListQuery(params, folder, folders, wanted, parse_sort(params.get("sort")))


def listed_conversations(user: User, listing: ListQuery) -> QuerySet[Conversation]:
    """The conversations the list shows: the filters within the folder."""
    rows = access.filter_conversations(user, listing.wanted)
    if listing.folder.key or not listing.wanted.statuses:
        # All conversations' status list is only a default: an explicit status filter replaces it.
        rows = in_folder(user, listing.folder, rows)
    return rows


# --- page context -------------------------------------------------------------------------------------


def filters_query(filters: Mapping[str, str]) -> str:
    """`?key=value&…` for a list with these filters, keys always in the same order ("" when none)."""
    query = urlencode({key: filters[key] for key in FILTER_KEYS if filters.get(key)})
    return f"?{query}" if query else ""


def _display(user: User | None) -> str:
    if user is None:
        return ""
    return str(user.get_full_name() or user.email or user.get_username())


def _age(when: datetime, now: datetime) -> str:
    if now - when < timedelta(minutes=1):
        return _("just now")
    return _("%(age)s ago") % {"age": timesince(when, now, depth=1)}


def assignable_agents(user: User) -> list[User]:
    """Agents the user may pick as assignee or filter by: those sharing a team, and admins."""
    teams = Team.objects.filter(mailboxes__in=access.visible_mailboxes(user))
    profiles = (
        AgentProfile.objects.filter(user__is_active=True, role__in=[Role.ADMIN, Role.SUPERVISOR, Role.AGENT])
        .filter(Q(role=Role.ADMIN) | Q(teams__in=teams))
        .select_related("user")
        .distinct()
    )
    return sorted((p.user for p in profiles), key=lambda u: _display(u).lower())


def _list_context(request: HttpRequest) -> dict[str, object]:
    user = request.user
    assert isinstance(user, User)  # agent_page requires a login
    listing = parse_list_query(user, request.GET)
    rows = listed_conversations(user, listing).select_related("assignee").prefetch_related("tags")
    page = keyset_page(rows, cursor=request.GET.get("cursor"), limit=DEFAULT_LIMIT, sort=listing.sort)
    now = timezone.now()
    shown = [
        ListRow(
            conversation=c,
            tags=sorted(t.name for t in c.tags.all()),
            assignee_name=_display(c.assignee),
            last_activity=_age(c.last_message_at, now),
            waiting=timesince(c.waiting_since, now, depth=1) if c.waiting_since else "",
        )
        for c in page.rows
    ]
    query_string = urlencode(listing.params)
    cursor = request.GET.get("cursor", "")
    cursor_param = {"cursor": cursor} if cursor else {}
    return {
        "listing": listing,
        "rows": shown,
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
        "agents": [(str(a.pk), _display(a)) for a in agents],
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
