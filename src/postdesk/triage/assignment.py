"""Assignment: which agent of a team takes a conversation (manual, round robin, least loaded), and the reason why.

An agent is eligible when online, on shift, below capacity and holding every required skill.
Among the eligible, speakers of the conversation's language come first; a team with
`language_strict` lets the conversation wait in its queue rather than give it to someone who
does not speak the language. Round robin picks the eligible agent assigned least recently
(never assigned first); least loaded picks the lowest open/capacity ratio. Every choice comes
with a short English reason the edge stores on the conversation.

There is no `release` function: releasing an agent's queue when they go offline is the edge
unassigning their open conversations (a query) and calling `hand_out` again with the agent
now offline; there is no decision in it to keep pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from fractions import Fraction


class RoutingError(ValueError):
    """Routing input that cannot be right (negative capacity, a naive datetime); the message names the value."""


class Mode(StrEnum):
    """A team's assignment mode."""

    MANUAL = "manual"
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


class Availability(StrEnum):
    """What an agent set as their status; off shift is separate (it comes from their schedule)."""

    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


# Same order as desk.models.PRIORITY_RANK; an unknown priority is handed out like "normal".
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
_NORMAL_RANK = PRIORITY_RANK["normal"]

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def _require_aware(value: datetime | None, what: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise RoutingError(f"{what} must be timezone-aware, got {value.isoformat()}")


def language_key(code: str) -> str:
    """The primary language subtag, case-folded: agents who speak "zh" take "zh-Hant" and "ZH" mail."""
    return code.strip().casefold().replace("_", "-").split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class AgentState:
    """One agent of the team as routing sees them now; `on_shift` comes from their schedule (computed by the caller)."""

    agent_id: int
    name: str
    skills: frozenset[str]
    languages: frozenset[str]
    capacity: int | None  # None: no limit
    open_count: int
    availability: Availability
    on_shift: bool
    last_assigned_at: datetime | None

    def __post_init__(self) -> None:
        if self.capacity is not None and self.capacity < 0:
            raise RoutingError(f"agent {self.name!r}: capacity must be empty or at least 0, got {self.capacity}")
        if self.open_count < 0:
            raise RoutingError(f"agent {self.name!r}: open conversations cannot be negative, got {self.open_count}")
        _require_aware(self.last_assigned_at, f"agent {self.name!r}: last assigned time")


@dataclass(frozen=True, slots=True)
class Need:
    """What a conversation asks of its agent; `language` is the detected language code or None when unknown."""

    language: str | None
    skills: frozenset[str]
    priority: str


@dataclass(frozen=True, slots=True)
class Choice:
    """The agent chosen (None: the conversation waits in the team queue), why, and why each other agent was not."""

    agent_id: int | None
    reason: str
    excluded: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class Waiting:
    """A conversation in the team queue; `due_at` is its earliest SLA deadline, if any."""

    conversation_id: int
    need: Need
    waiting_since: datetime
    due_at: datetime | None

    def __post_init__(self) -> None:
        _require_aware(self.waiting_since, f"conversation {self.conversation_id}: waiting since")
        _require_aware(self.due_at, f"conversation {self.conversation_id}: due time")


@dataclass(frozen=True, slots=True)
class Assignment:
    """One conversation handed to one agent, with the reason to store on the conversation.

    `assigned_at` is the hand-out's `now` plus the assignment's position in microseconds: store
    it as the agent's `last_assigned_at`, so the next hand-out continues round robin in the
    order this one assigned (equal times would fall back to agent ids).
    """

    conversation_id: int
    agent_id: int
    reason: str
    assigned_at: datetime


class _Slot:
    """An agent's mutable routing state during one decision or one hand-out."""

    __slots__ = ("agent", "languages", "open_count", "recency")

    def __init__(self, agent: AgentState) -> None:
        self.agent = agent
        self.languages = frozenset(language_key(code) for code in agent.languages)
        self.open_count = agent.open_count
        # Round robin order: never assigned first, then by the last assignment, and whoever this
        # hand-out assigned after everyone it has not (even if a stored time lies in the future).
        if agent.last_assigned_at is None:
            self.recency: tuple[int, datetime, int] = (0, _EARLIEST, 0)
        else:
            self.recency = (1, agent.last_assigned_at, 0)

    def is_present(self) -> bool:
        return self.agent.availability == Availability.ONLINE and self.agent.on_shift

    def has_room(self) -> bool:
        capacity = self.agent.capacity
        return capacity is None or self.open_count < capacity

    def load(self) -> Fraction:
        # Exact fractions so 3 of 10 and 6 of 20 tie (and fall through to recency) instead of
        # differing in the last bit of a float. Unlimited agents count their open conversations.
        capacity = self.agent.capacity
        return Fraction(self.open_count) if capacity is None else Fraction(self.open_count, capacity)

    def load_text(self) -> str:
        if self.agent.capacity is None:
            return f"{self.open_count} open, no limit"
        return f"{self.open_count} of {self.agent.capacity} open"


def _unfit(slot: _Slot, need: Need) -> str | None:
    """Why this agent cannot take the conversation at all, or None."""
    agent = slot.agent
    if agent.availability != Availability.ONLINE:
        return str(agent.availability)
    if not agent.on_shift:
        return "off shift"
    if not slot.has_room():
        return f"at capacity ({slot.load_text()})"
    missing = need.skills - agent.skills
    if missing:
        return "missing skill: " + ", ".join(sorted(missing))
    return None


@dataclass(frozen=True, slots=True)
class _Pick:
    slot: _Slot | None
    reason: str
    excluded: tuple[tuple[int, str], ...]


def _pick(mode: Mode, slots: Sequence[_Slot], need: Need, *, language_strict: bool, explain: bool) -> _Pick:
    excluded: list[tuple[int, str]] = []
    fit: list[_Slot] = []
    for slot in slots:
        why = _unfit(slot, need)
        if why is None:
            fit.append(slot)
        elif explain:
            excluded.append((slot.agent.agent_id, why))
    if not fit:
        return _Pick(None, "waiting: no agent is available", tuple(excluded))

    notes: list[str] = []
    if need.language:
        wanted = language_key(need.language)
        speakers = [slot for slot in fit if wanted in slot.languages]
        if speakers or language_strict:
            if explain:
                not_speaking = f"does not speak {need.language}"
                excluded.extend((slot.agent.agent_id, not_speaking) for slot in fit if wanted not in slot.languages)
            if not speakers:
                return _Pick(None, f"waiting: no available agent speaks {need.language}", tuple(excluded))
            fit = speakers
            notes.append(f"speaks {need.language}")
        else:
            notes.append(f"nobody available speaks {need.language}")
    if need.skills:
        notes.append("has " + ", ".join(sorted(need.skills)))

    if mode == Mode.ROUND_ROBIN:
        chosen = min(fit, key=lambda slot: (slot.recency, slot.agent.agent_id))
        if chosen.recency[0] == 0:
            head = f"round robin: {chosen.agent.name} has not been assigned yet"
        else:
            head = f"round robin: {chosen.agent.name} was assigned least recently"
    else:
        chosen = min(fit, key=lambda slot: (slot.load(), slot.recency, slot.agent.agent_id))
        head = f"least loaded: {chosen.agent.name} has the lowest load"
    notes.append(chosen.load_text())
    return _Pick(chosen, "; ".join([head, *notes]), tuple(excluded))


def choose_agent(mode: Mode, agents: Sequence[AgentState], need: Need, *, language_strict: bool) -> Choice:
    """Choose the agent for one conversation, or None (manual team, or nobody fits: it waits in the team queue).

    Ties are broken deterministically: round robin by agent id among the never-assigned;
    least loaded by who was assigned least recently, then by agent id. The reason's "N of M
    open" is the agent's load before this conversation.
    """
    if mode == Mode.MANUAL:
        return Choice(None, "manual team", ())
    pick = _pick(mode, [_Slot(agent) for agent in agents], need, language_strict=language_strict, explain=True)
    return Choice(None if pick.slot is None else pick.slot.agent.agent_id, pick.reason, pick.excluded)


def _urgency(waiting: Waiting) -> tuple[bool, datetime, int, datetime, int]:
    return (
        waiting.due_at is None,
        waiting.due_at or _LATEST,
        PRIORITY_RANK.get(waiting.need.priority, _NORMAL_RANK),
        waiting.waiting_since,
        waiting.conversation_id,
    )


def hand_out(
    queue: Sequence[Waiting],
    agents: Sequence[AgentState],
    mode: Mode,
    now: datetime,
    *,
    language_strict: bool,
) -> list[Assignment]:
    """Hand the team queue out to agents with free capacity, most urgent first.

    Urgency: the earliest SLA deadline first (conversations without one after all that have
    one), then priority, then the longest waiting, then the conversation id. Each assignment
    counts against the agent's capacity and makes them the most recently assigned, so round
    robin rotates within one hand-out. Conversations nobody fits stay in the queue and are left
    out of the result; a manual team gets nothing handed out.
    """
    _require_aware(now, "now")
    if mode == Mode.MANUAL:
        return []
    slots = [_Slot(agent) for agent in agents]
    free = sum(1 for slot in slots if slot.is_present() and slot.has_room())
    assignments: list[Assignment] = []
    for waiting in sorted(queue, key=_urgency):
        if free == 0:
            break  # everyone present is full: the rest waits for capacity to free up
        pick = _pick(mode, slots, waiting.need, language_strict=language_strict, explain=False)
        if pick.slot is None:
            continue
        slot = pick.slot
        slot.open_count += 1
        assigned_at = now + timedelta(microseconds=len(assignments))
        slot.recency = (2, assigned_at, 0)
        if not slot.has_room():
            free -= 1
        assignments.append(Assignment(waiting.conversation_id, slot.agent.agent_id, pick.reason, assigned_at))
    return assignments
