"""Inbox folders and list requests: which conversations a folder holds, its capped count, and parsing filters.

Shared by the agent pages and the REST API, so a folder or a filter means the same thing in both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from postdesk.desk import access, actions
from postdesk.desk.errors import BadRequest
from postdesk.desk.models import AgentProfile, Conversation, Status, Team
from postdesk.desk.pagination import Sort, parse_sort

# Each folder count stops at this many rows; at the cap the sidebar shows "999+".
COUNT_CAP = 1000
OPEN_STATUSES = (Status.NEW, Status.OPEN)
# "All conversations" hides spam and merged ones unless a status filter asks for them.
ALL_STATUSES = tuple(s for s in Status if s not in (Status.SPAM, Status.MERGED))
FILTER_KEYS = actions.VIEW_FILTER_KEYS  # the query parameters links and saved views keep


@dataclass(frozen=True, slots=True)
class Folder:
    """A fixed view of the inbox: a set of statuses, and possibly "assigned to me / nobody" or one team."""

    key: str  # the ?folder= value; "" is All conversations
    label: str
    statuses: tuple[str, ...]
    assignee: str = ""  # "me", "nobody" or "" (anyone)
    team_id: int | None = None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed, validated list request."""

    params: dict[str, str]  # the non-empty filter parameters as given: for links and saved views
    folder: Folder
    folders: list[Folder]  # every folder the user has
    wanted: access.ConversationFilter
    sort: Sort


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


def find_folder(folders: list[Folder], key: str) -> Folder:
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


def parse_list_query(user: User, query: Mapping[str, str]) -> ListQuery:
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
    folder = find_folder(folders, params.get("folder", ""))
    return ListQuery(params, folder, folders, wanted, parse_sort(params.get("sort")))


def listed_conversations(user: User, listing: ListQuery) -> QuerySet[Conversation]:
    """The conversations the list shows: the filters within the folder."""
    rows = access.filter_conversations(user, listing.wanted)
    if listing.folder.key or not listing.wanted.statuses:
        # All conversations' status list is only a default: an explicit status filter replaces it.
        rows = in_folder(user, listing.folder, rows)
    return rows
