"""Hands conversations to agents by their team's assignment mode (triage/assignment.py); keeps team queues moving.

Three ways in:

- `route` — intake, after the rules: a new or reopened conversation nobody owns goes to an agent of its
  team (the conversation's team, else its mailbox's), or waits in the team queue with the reason.
- `hand_out` — a background job after something frees capacity (a resolve, an unassignment, an agent
  coming online): the team's waiting conversations, most urgent first, to agents with room.
- `set_availability` — an agent sets online / away / offline; going offline can give their open
  conversations back to the queue, which are then handed to the others.

Decisions, so the reasons shown on the conversation hold:

- Who can be chosen: active users with a hands-on role (admin, supervisor, agent; never a collaborator)
  in the conversation's team, who can also see its mailbox (access.py grants sight by the mailbox's
  team, so a rule that moves a conversation to another team never hands it to someone who cannot open it).
- Capacity counts the agent's `new` and `open` conversations, over all their teams. `pending` and
  `snoozed` do not count: they wait on the customer or the clock, not on the agent; when the customer
  answers they come back as `open` to the same agent, who may then briefly hold more than their capacity.
- On shift: the agent's schedule (a BusinessCalendar) is open now; no schedule means always on shift.
  A schedule the SLA code cannot read is logged and treated as on shift, so a typo in the admin shows up
  as "gets mail at night" rather than as an agent who silently never gets any.
- Skills a conversation needs: the names of its tags that are also a skill of some agent of the team
  (compared like tag names: spaces collapsed, lower case). Tags no agent has as a skill are plain labels
  and never hold a conversation back. Category-based routing is a rule that adds a tag.
- Language: the conversation's detected language counts only when some agent of the team lists their
  languages; a team that never set any is not held back (nor told "nobody speaks en") by detection.
- Routing writes a ROUTED event (reason, agent, who was passed over and why) and no ASSIGNED event, so
  the timeline says the system decided, not a person. It does not trigger the rules' "assignee changed":
  on intake the rules already ran before routing (a rule that sets the assignee wins over routing), and
  from the background hand-out a rule that unassigns would re-trigger a hand-out forever, a loop that
  spans transactions where the rules' loop guard cannot see it. Like `actions.do_assign`, taking a `new`
  conversation makes it `open`.
- Stored reasons are English, like the pure module's; the timeline shows them as written.

Locks, so two workers (or intake and a worker) never hand out the same capacity twice: `route` and
`hand_out` lock the team row before counting; `hand_out` then takes each conversation with SKIP LOCKED
(one that intake or an agent holds is left for them), so it never waits on a conversation row while
holding the team, and intake (conversation, then team) cannot deadlock with it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from postdesk.desk import access
from postdesk.desk.errors import BadRequest, PermissionDenied
from postdesk.desk.models import (
    AgentProfile,
    Conversation,
    Event,
    EventKind,
    Holiday,
    Role,
    Status,
    Team,
)
from postdesk.desk.models import Availability as StoredAvailability
from postdesk.desk.models import BusinessCalendar as CalendarRow
from postdesk.desk.people import display_name
from postdesk.sla.business_hours import BusinessCalendar
from postdesk.sla.errors import CalendarError
from postdesk.triage.assignment import (
    AgentState,
    Availability,
    Mode,
    Need,
    Waiting,
    choose_agent,
)
from postdesk.triage.assignment import hand_out as plan_hand_out

log = logging.getLogger(__name__)

# What an agent has on their plate: counted against their capacity, and given back when they go offline.
COUNTED_STATUSES = (Status.NEW, Status.OPEN)
# Conversations routing hands out; pending, snoozed, resolved, spam … wait for something else first.
ROUTABLE_STATUSES = (Status.NEW, Status.OPEN)
# One hand-out reads at most this many waiting conversations; the next run (the next freed slot) continues.
MAX_HAND_OUT = 500


@dataclass(frozen=True, slots=True)
class _Candidates:
    """The agents one conversation (or one mailbox's part of a queue) may go to, as routing sees them now."""

    states: tuple[AgentState, ...]
    skills: frozenset[str]  # every skill some of them has: what a tag must name to become a need
    languages_known: bool  # some of them list their languages: only then does the customer's language count


def _skill_name(name: str) -> str:
    # The same normalisation as Tag.save, so a skill "Billing " matches the tag "billing".
    return " ".join(name.split()).lower()


def _mode(team: Team) -> Mode:
    try:
        return Mode(team.assignment_mode)
    except ValueError:
        log.warning("team %s has an unknown assignment mode %r; treated as manual", team.pk, team.assignment_mode)
        return Mode.MANUAL


def _who_sees(team_id: int, mailbox_team_id: int | None) -> Q:
    """Agents of `team_id` who can answer, and who can see a mailbox of `mailbox_team_id` (access.py's rule)."""
    wanted = Q(teams=team_id, role__in=access.ANSWERING_ROLES, user__is_active=True)
    if mailbox_team_id != team_id:
        sees = Q(role=Role.ADMIN) | Q(user__is_superuser=True)
        if mailbox_team_id is not None:
            members = AgentProfile.teams.through.objects.filter(team_id=mailbox_team_id)
            sees |= Q(pk__in=members.values("agentprofile_id"))
        wanted &= sees
    return wanted


def _on_shift(schedules: dict[int, CalendarRow], now: datetime) -> dict[int, bool]:
    """Per schedule id: is it open at `now`? Holidays are read for the days around now only (any time zone)."""
    if not schedules:
        return {}
    day = now.astimezone(UTC).date()  # the agent's local date is this one, the day before or the day after
    holidays: dict[int, list[date]] = defaultdict(list)
    nearby = Holiday.objects.filter(
        calendar_id__in=list(schedules), date__range=(day - timedelta(days=1), day + timedelta(days=1))
    )
    for calendar_id, holiday in nearby.values_list("calendar_id", "date"):
        holidays[calendar_id].append(holiday)
    open_now: dict[int, bool] = {}
    for calendar_id, row in schedules.items():
        try:
            calendar = BusinessCalendar.from_hours(row.time_zone, row.weekly_hours, holidays[calendar_id])
            open_now[calendar_id] = calendar.is_open(now)
        except (CalendarError, TypeError, AttributeError) as error:
            log.warning("shift schedule %r cannot be read (%s); its agents count as on shift", row.name, error)
            open_now[calendar_id] = True
    return open_now


def _candidates(team_id: int, mailbox_team_id: int | None, now: datetime) -> _Candidates:
    """The team's agents for a mailbox of `mailbox_team_id`, with their load: three queries however many agents."""
    profiles = list(
        AgentProfile.objects.filter(_who_sees(team_id, mailbox_team_id))
        .select_related("user", "schedule")
        .order_by("user_id")
    )
    user_ids = [profile.user_id for profile in profiles]
    open_counts = dict(
        Conversation.objects.filter(assignee_id__in=user_ids, status__in=COUNTED_STATUSES)
        .order_by()
        .values("assignee_id")
        .annotate(n=Count("id"))
        .values_list("assignee_id", "n")
    )
    shifts = _on_shift({p.schedule.pk: p.schedule for p in profiles if p.schedule is not None}, now)
    states: list[AgentState] = []
    skills: set[str] = set()
    languages_known = False
    for profile in profiles:
        agent_skills = frozenset(_skill_name(s) for s in (profile.skills or []) if isinstance(s, str) and s.strip())
        skills |= agent_skills
        languages = frozenset(c for c in (profile.languages or []) if isinstance(c, str) and c.strip())
        languages_known = languages_known or bool(languages)
        try:
            availability = Availability(profile.availability)
        except ValueError:
            availability = Availability.OFFLINE
        states.append(
            AgentState(
                agent_id=profile.user_id,
                name=display_name(profile.user),
                skills=agent_skills,
                languages=languages,
                capacity=profile.capacity,
                open_count=open_counts.get(profile.user_id, 0),
                availability=availability,
                on_shift=shifts.get(profile.schedule_id, True) if profile.schedule_id else True,
                last_assigned_at=profile.last_assigned_at,
            )
        )
    return _Candidates(tuple(states), frozenset(skills), languages_known)


def _tags_of(conversation_ids: Sequence[int]) -> dict[int, set[str]]:
    through = Conversation.tags.through.objects.filter(conversation_id__in=list(conversation_ids))
    found: dict[int, set[str]] = defaultdict(set)
    for conversation_id, name in through.values_list("conversation_id", "tag__name"):
        found[conversation_id].add(_skill_name(name))
    return found


def _need(language: str, priority: str, tags: Iterable[str], candidates: _Candidates) -> Need:
    return Need(
        language=(language.strip() or None) if candidates.languages_known else None,
        skills=frozenset(tags) & candidates.skills,
        priority=priority,
    )


def _assign(
    conversation: Conversation,
    agent: AgentState,
    reason: str,
    *,
    excluded: Sequence[tuple[int, str]],
    names: dict[int, str],
    assigned_at: datetime,
    now: datetime,
) -> None:
    """Give the (locked) conversation to `agent` and write the ROUTED event that says why."""
    from postdesk.desk import actions

    conversation.assignee_id = agent.agent_id
    conversation.updated_at = now
    fields = ["assignee", "updated_at"]
    if conversation.status == Status.NEW:  # as actions.do_assign: someone has it now
        conversation.status = Status.OPEN
        fields.append("status")
    conversation.save(update_fields=fields)
    # Distinct per assignment (the pure hand-out spaces them by a microsecond), so round robin stays fair.
    AgentProfile.objects.filter(user_id=agent.agent_id).update(last_assigned_at=assigned_at)
    actions._event(
        conversation,
        None,
        EventKind.ROUTED,
        reason=reason,
        agent=agent.name,
        assignee=agent.agent_id,
        assignee_name=agent.name,
        excluded=[{"agent_id": i, "agent": names.get(i, str(i)), "why": why} for i, why in excluded],
    )


def _note_waiting(
    conversation: Conversation, reason: str, excluded: Sequence[tuple[int, str]], names: dict[int, str]
) -> None:
    """Say on the conversation why it waits, once: a customer writing again does not repeat the same reason."""
    from postdesk.desk import actions

    last = (
        Event.objects.filter(conversation=conversation, kind=EventKind.ROUTED)
        .order_by("-id")
        .values_list("data", flat=True)
        .first()
    )
    if isinstance(last, dict) and last.get("reason") == reason:
        return
    actions._event(
        conversation,
        None,
        EventKind.ROUTED,
        reason=reason,
        agent=None,
        excluded=[{"agent_id": i, "agent": names.get(i, str(i)), "why": why} for i, why in excluded],
    )


def route(conversation: Conversation, *, now: datetime) -> str:
    """Intake, after the rules: give the conversation to an agent of its team, or leave it in the team queue.

    Returns a one-line description for the intake step log (the reason, when routing decided).
    """
    locked = Conversation.objects.select_for_update().select_related("mailbox").get(pk=conversation.pk)
    try:
        return _route_locked(locked, now=now)
    finally:
        # Later intake steps (SLA, acknowledgement) read the object processing holds.
        conversation.team_id = locked.team_id
        conversation.assignee_id = locked.assignee_id
        conversation.status = locked.status
        conversation.updated_at = locked.updated_at


def _route_locked(conversation: Conversation, *, now: datetime) -> str:
    if conversation.status not in ROUTABLE_STATUSES:
        return f"not routed: the conversation is {conversation.status}"
    if conversation.assignee_id is not None:
        # A rule chose the agent, or the customer wrote again to a conversation someone already has.
        assignee = conversation.assignee
        return f"already assigned to {display_name(assignee) if assignee is not None else conversation.assignee_id}"
    team_id = conversation.team_id or conversation.mailbox.team_id
    if team_id is None:
        return "no team: waits for an agent to take it"
    if conversation.team_id is None:
        conversation.team_id = team_id
        conversation.save(update_fields=["team"])
    # The team row lock makes concurrent intake and hand-outs count each agent's load one at a time.
    team = Team.objects.select_for_update().get(pk=team_id)
    mode = _mode(team)
    if mode == Mode.MANUAL:
        return f"manual team: waits in the {team.name} queue"
    candidates = _candidates(team_id, conversation.mailbox.team_id, now)
    tags = _tags_of([conversation.pk]).get(conversation.pk, set())
    need = _need(conversation.language, conversation.priority, tags, candidates)
    choice = choose_agent(mode, candidates.states, need, language_strict=team.language_strict)
    names = {state.agent_id: state.name for state in candidates.states}
    if choice.agent_id is None:
        _note_waiting(conversation, choice.reason, choice.excluded, names)
        return choice.reason
    agent = next(state for state in candidates.states if state.agent_id == choice.agent_id)
    _assign(conversation, agent, choice.reason, excluded=choice.excluded, names=names, assigned_at=now, now=now)
    return choice.reason


def hand_out_soon(team_id: int | None) -> None:
    """After commit: give waiting conversations of the team to agents who have room (a background job)."""
    if team_id is None:
        return
    from postdesk.jobs import hand_out_team_queue

    hand_out_team_queue(team_id)


def hand_out(team_id: int, *, now: datetime | None = None) -> int:
    """Assign the team's waiting conversations to agents with room, most urgent first; returns how many.

    Urgency: the earliest SLA deadline, then priority, then the longest waiting (triage/assignment.py).
    At most MAX_HAND_OUT waiting conversations are read per run. Safe to run twice at once: the second
    waits for the first (team row lock) and then sees its assignments.
    """
    now = now or timezone.now()
    assigned = 0
    with transaction.atomic():
        team = Team.objects.select_for_update().filter(pk=team_id).first()
        if team is None:
            return 0
        mode = _mode(team)
        if mode == Mode.MANUAL:
            return 0
        rows = list(
            Conversation.objects.filter(team_id=team_id, assignee__isnull=True, status__in=ROUTABLE_STATUSES)
            .order_by(
                F("sla_due_at").asc(nulls_last=True),
                "priority_rank",
                F("waiting_since").asc(nulls_last=True),
                "id",
            )
            .values_list("pk", "language", "priority", "waiting_since", "created_at", "sla_due_at", "mailbox__team_id")[
                :MAX_HAND_OUT
            ]
        )
        if not rows:
            return 0
        tags = _tags_of([row[0] for row in rows])
        # Conversations of the team's own mailboxes first; one a rule moved here from another team's mailbox
        # can only go to agents who see that mailbox too. Each part reads the loads again, so it counts the
        # assignments the parts before it made in this transaction.
        parts: dict[int | None, list[tuple[int, str, str, datetime | None, datetime, datetime | None]]] = {}
        for pk, language, priority, waiting_since, created_at, due_at, owner_team_id in rows:
            parts.setdefault(owner_team_id, []).append((pk, language, priority, waiting_since, created_at, due_at))
        for mailbox_team_id in sorted(parts, key=lambda key: (key != team_id, key or 0)):
            candidates = _candidates(team_id, mailbox_team_id, now)
            queue = [
                Waiting(
                    conversation_id=pk,
                    need=_need(language, priority, tags.get(pk, set()), candidates),
                    waiting_since=waiting_since or created_at,
                    due_at=due_at,
                )
                for pk, language, priority, waiting_since, created_at, due_at in parts[mailbox_team_id]
            ]
            plan = plan_hand_out(queue, candidates.states, mode, now, language_strict=team.language_strict)
            agents = {state.agent_id: state for state in candidates.states}
            names = {state.agent_id: state.name for state in candidates.states}
            for assignment in plan:
                # Skip one an agent took (or that intake is writing to) since the queue was read.
                conversation = (
                    Conversation.objects.select_for_update(skip_locked=True)
                    .filter(
                        pk=assignment.conversation_id,
                        team_id=team_id,
                        assignee__isnull=True,
                        status__in=ROUTABLE_STATUSES,
                    )
                    .first()
                )
                if conversation is None:
                    continue
                _assign(
                    conversation,
                    agents[assignment.agent_id],
                    assignment.reason,
                    excluded=(),
                    names=names,
                    assigned_at=assignment.assigned_at,
                    now=now,
                )
                assigned += 1
    return assigned


def hand_out_all(*, now: datetime | None = None) -> int:
    """Every team that routes: for a periodic job, so a queue moves when shifts start (no event marks that)."""
    team_ids = Team.objects.exclude(assignment_mode=Mode.MANUAL).values_list("pk", flat=True)
    return sum(hand_out(team_id, now=now) for team_id in list(team_ids))


@dataclass(frozen=True, slots=True)
class AgentAvailability:
    """What an agent's availability control and `GET /api/v1/me/availability` show."""

    availability: str  # online, away or offline: what the agent set
    on_shift: bool  # their shift schedule is open now (always, without one)
    open_count: int  # their new and open conversations, what capacity counts
    capacity: int | None  # None: no limit


def _own_profile(user: User) -> AgentProfile:
    from postdesk.desk import actions

    profile = AgentProfile.objects.filter(user_id=user.pk).first() if user.is_authenticated else None
    if profile is None or not actions.can_act(user):
        raise PermissionDenied(_("Only agents who answer mail have an availability."))
    return profile


def availability_of(user: User, *, now: datetime | None = None) -> AgentAvailability:
    """The agent's own availability, shift and load; `PermissionDenied` for collaborators and non-agents."""
    profile = _own_profile(user)
    now = now or timezone.now()
    on_shift = True
    if profile.schedule is not None:
        on_shift = _on_shift({profile.schedule.pk: profile.schedule}, now)[profile.schedule.pk]
    return AgentAvailability(
        availability=profile.availability,
        on_shift=on_shift,
        open_count=Conversation.objects.filter(assignee_id=user.pk, status__in=COUNTED_STATUSES).count(),
        capacity=profile.capacity,
    )


def set_availability(user: User, availability: str, *, release: bool, now: datetime | None = None) -> int:
    """The agent sets their own availability; returns how many conversations they gave back to the queue.

    Going offline with `release` unassigns their `new` and `open` conversations (a ROUTED event on each)
    and hands them to the others after the commit; coming online hands out their teams' queues.
    """
    from postdesk.desk import actions

    profile = _own_profile(user)
    if availability not in StoredAvailability.values:
        raise BadRequest(
            _("Unknown availability %(value)r; use one of: %(valid)s.")
            % {"value": str(availability)[:50], "valid": ", ".join(StoredAvailability.values)},
            code="bad_availability",
        )
    if release and availability != StoredAvailability.OFFLINE:
        raise BadRequest(
            _("Conversations are given back to the queue only when going offline."), code="bad_availability"
        )
    now = now or timezone.now()
    name = display_name(user)
    teams: set[int] = set()
    released = 0
    with transaction.atomic():
        if release:
            mine = Conversation.objects.filter(assignee_id=user.pk, status__in=COUNTED_STATUSES)
            for pk in list(mine.order_by("pk").values_list("pk", flat=True)):
                conversation = mine.select_for_update().filter(pk=pk).first()
                if conversation is None:
                    continue  # resolved or taken over meanwhile
                conversation.assignee_id = None
                conversation.updated_at = now
                conversation.save(update_fields=["assignee", "updated_at"])
                actions._event(
                    conversation,
                    user,
                    EventKind.ROUTED,
                    reason=f"released: {name} went offline",
                    agent=None,
                    assignee=None,
                    assignee_name="",
                    excluded=[],
                )
                released += 1
                if conversation.team_id is not None:
                    teams.add(conversation.team_id)
        # The profile row last: hand-outs lock the team, then update profiles; we never wait on a team.
        before = AgentProfile.objects.filter(pk=profile.pk).values_list("availability", flat=True).get()
        AgentProfile.objects.filter(pk=profile.pk).update(availability=availability)
        if availability == StoredAvailability.ONLINE and before != StoredAvailability.ONLINE:
            teams |= set(profile.teams.values_list("pk", flat=True))
        for team_id in sorted(teams):
            transaction.on_commit(partial(hand_out_soon, team_id))
    return released
