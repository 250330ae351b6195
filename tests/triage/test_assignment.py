"""Tests of `postdesk.triage.assignment`: who gets a conversation, who waits, and the reason shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postdesk.triage.assignment import (
    AgentState,
    Assignment,
    Availability,
    Mode,
    Need,
    RoutingError,
    Waiting,
    choose_agent,
    hand_out,
)

pytestmark = pytest.mark.pure

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ANY = Need(language=None, skills=frozenset(), priority="normal")


def agent(
    agent_id: int,
    name: str,
    *,
    skills: tuple[str, ...] = (),
    languages: tuple[str, ...] = ("en",),
    capacity: int | None = 10,
    open_count: int = 0,
    availability: Availability = Availability.ONLINE,
    on_shift: bool = True,
    last_assigned_at: datetime | None = None,
) -> AgentState:
    return AgentState(
        agent_id=agent_id,
        name=name,
        skills=frozenset(skills),
        languages=frozenset(languages),
        capacity=capacity,
        open_count=open_count,
        availability=availability,
        on_shift=on_shift,
        last_assigned_at=last_assigned_at,
    )


def need(language: str | None = None, skills: tuple[str, ...] = (), priority: str = "normal") -> Need:
    return Need(language=language, skills=frozenset(skills), priority=priority)


def waiting(
    conversation_id: int,
    *,
    minutes_ago: int = 0,
    due_in: int | None = None,
    priority: str = "normal",
    language: str | None = None,
    skills: tuple[str, ...] = (),
) -> Waiting:
    return Waiting(
        conversation_id=conversation_id,
        need=need(language, skills, priority),
        waiting_since=NOW - timedelta(minutes=minutes_ago),
        due_at=None if due_in is None else NOW + timedelta(minutes=due_in),
    )


def ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


# --- who may take a conversation ------------------------------------------------------------


def test_full_agent_is_passed_over_and_the_reason_says_so() -> None:
    agents = [agent(1, "Ana", capacity=3, open_count=3), agent(2, "Bo", capacity=3, open_count=2)]
    choice = choose_agent(Mode.ROUND_ROBIN, agents, ANY, language_strict=False)
    assert choice.agent_id == 2
    assert dict(choice.excluded) == {1: "at capacity (3 of 3 open)"}


def test_everyone_full_means_the_conversation_waits() -> None:
    agents = [agent(1, "Ana", capacity=1, open_count=1), agent(2, "Bo", capacity=0)]
    choice = choose_agent(Mode.LEAST_LOADED, agents, ANY, language_strict=False)
    assert choice.agent_id is None
    assert choice.reason == "waiting: no agent is available"
    assert dict(choice.excluded) == {1: "at capacity (1 of 1 open)", 2: "at capacity (0 of 0 open)"}


def test_unlimited_capacity_never_fills() -> None:
    choice = choose_agent(
        Mode.ROUND_ROBIN, [agent(1, "Ana", capacity=None, open_count=500)], ANY, language_strict=False
    )
    assert choice.agent_id == 1
    assert choice.reason.endswith("500 open, no limit")


@pytest.mark.parametrize(
    ("availability", "on_shift", "why"),
    [
        (Availability.OFFLINE, True, "offline"),
        (Availability.AWAY, True, "away"),
        (Availability.ONLINE, False, "off shift"),
        (Availability.OFFLINE, False, "offline"),
    ],
)
def test_absent_agents_get_nothing(availability: Availability, on_shift: bool, why: str) -> None:
    absent = agent(1, "Ana", availability=availability, on_shift=on_shift, last_assigned_at=None)
    present = agent(2, "Bo", last_assigned_at=ago(1))
    choice = choose_agent(Mode.ROUND_ROBIN, [absent, present], ANY, language_strict=False)
    assert choice.agent_id == 2
    assert dict(choice.excluded) == {1: why}


def test_required_skills_must_all_be_held() -> None:
    agents = [
        agent(1, "Ana", skills=("billing",)),
        agent(2, "Bo", skills=("billing", "vat", "refunds")),
        agent(3, "Cy", skills=()),
    ]
    choice = choose_agent(Mode.ROUND_ROBIN, agents, need(skills=("billing", "vat")), language_strict=False)
    assert choice.agent_id == 2
    assert "has billing, vat" in choice.reason
    assert dict(choice.excluded) == {1: "missing skill: vat", 3: "missing skill: billing, vat"}


def test_nobody_with_the_skill_means_waiting() -> None:
    choice = choose_agent(Mode.LEAST_LOADED, [agent(1, "Ana")], need(skills=("legal",)), language_strict=True)
    assert choice.agent_id is None
    assert dict(choice.excluded) == {1: "missing skill: legal"}


# --- language ---------------------------------------------------------------------------------


def test_a_speaker_of_the_language_is_preferred_even_when_others_are_next_in_turn() -> None:
    agents = [
        agent(1, "Ana", languages=("en",), last_assigned_at=None),
        agent(2, "Boris", languages=("en", "ru"), last_assigned_at=ago(1)),
    ]
    choice = choose_agent(Mode.ROUND_ROBIN, agents, need("ru"), language_strict=False)
    assert choice.agent_id == 2
    assert choice.reason == "round robin: Boris was assigned least recently; speaks ru; 0 of 10 open"
    assert dict(choice.excluded) == {1: "does not speak ru"}


def test_language_codes_match_on_the_primary_subtag_and_ignore_case() -> None:
    agents = [agent(1, "Ana", languages=("en",)), agent(2, "Li", languages=("ZH",), last_assigned_at=ago(5))]
    assert choose_agent(Mode.ROUND_ROBIN, agents, need("zh-Hant"), language_strict=True).agent_id == 2


def test_without_strictness_someone_else_answers_when_no_speaker_is_available() -> None:
    agents = [
        agent(1, "Ana", languages=("en",)),
        agent(2, "Oksana", languages=("uk",), availability=Availability.AWAY),
    ]
    choice = choose_agent(Mode.ROUND_ROBIN, agents, need("uk"), language_strict=False)
    assert choice.agent_id == 1
    assert "nobody available speaks uk" in choice.reason
    assert dict(choice.excluded) == {2: "away"}


def test_strict_language_waits_in_the_queue_when_no_speaker_is_available() -> None:
    agents = [
        agent(1, "Ana", languages=("en",)),
        agent(2, "Oksana", languages=("uk",), on_shift=False),
    ]
    choice = choose_agent(Mode.LEAST_LOADED, agents, need("uk"), language_strict=True)
    assert choice.agent_id is None
    assert choice.reason == "waiting: no available agent speaks uk"
    assert dict(choice.excluded) == {1: "does not speak uk", 2: "off shift"}


def test_unknown_language_goes_to_anyone() -> None:
    agents = [agent(1, "Ana", languages=("en",))]
    choice = choose_agent(Mode.ROUND_ROBIN, agents, need(None), language_strict=True)
    assert choice.agent_id == 1
    assert "speak" not in choice.reason


# --- modes ------------------------------------------------------------------------------------


def test_manual_team_never_assigns() -> None:
    choice = choose_agent(Mode.MANUAL, [agent(1, "Ana")], ANY, language_strict=False)
    assert choice == choose_agent(Mode.MANUAL, [], ANY, language_strict=True)
    assert choice.agent_id is None
    assert choice.reason == "manual team"
    assert hand_out([waiting(1)], [agent(1, "Ana")], Mode.MANUAL, NOW, language_strict=False) == []


def test_round_robin_gives_the_never_assigned_first_lowest_id_on_ties() -> None:
    agents = [
        agent(5, "Eve", last_assigned_at=ago(60)),
        agent(3, "Cy"),
        agent(2, "Bo"),
    ]
    choice = choose_agent(Mode.ROUND_ROBIN, agents, ANY, language_strict=False)
    assert choice.agent_id == 2
    assert choice.reason == "round robin: Bo has not been assigned yet; 0 of 10 open"


def test_round_robin_picks_the_least_recently_assigned() -> None:
    agents = [
        agent(1, "Ana", last_assigned_at=ago(5), open_count=0),
        agent(2, "Bo", last_assigned_at=ago(30), open_count=9),
        agent(3, "Cy", last_assigned_at=ago(10), open_count=1),
    ]
    assert choose_agent(Mode.ROUND_ROBIN, agents, ANY, language_strict=False).agent_id == 2


def test_least_loaded_compares_the_share_of_capacity_not_the_count() -> None:
    agents = [
        agent(1, "Ana", capacity=4, open_count=2),  # half full
        agent(2, "Bo", capacity=20, open_count=6),  # 30 %
        agent(3, "Cy", capacity=10, open_count=4),  # 40 %
    ]
    choice = choose_agent(Mode.LEAST_LOADED, agents, ANY, language_strict=False)
    assert choice.agent_id == 2
    assert choice.reason == "least loaded: Bo has the lowest load; 6 of 20 open"


def test_least_loaded_ties_go_to_the_least_recently_assigned() -> None:
    agents = [
        agent(1, "Ana", capacity=10, open_count=3, last_assigned_at=ago(1)),
        agent(2, "Bo", capacity=20, open_count=6, last_assigned_at=ago(50)),
        agent(3, "Cy", capacity=10, open_count=3, last_assigned_at=ago(20)),
    ]
    assert choose_agent(Mode.LEAST_LOADED, agents, ANY, language_strict=False).agent_id == 2


def test_least_loaded_counts_an_unlimited_agents_open_conversations_as_their_load() -> None:
    agents = [agent(1, "Ana", capacity=None, open_count=1), agent(2, "Bo", capacity=10, open_count=9)]
    # 1 open with no limit weighs as much as a full share, so 9 of 10 is still lighter.
    assert choose_agent(Mode.LEAST_LOADED, agents, ANY, language_strict=False).agent_id == 2
    agents = [agent(1, "Ana", capacity=None, open_count=0), agent(2, "Bo", capacity=10, open_count=1)]
    assert choose_agent(Mode.LEAST_LOADED, agents, ANY, language_strict=False).agent_id == 1


# --- handing out the queue --------------------------------------------------------------------


def test_round_robin_rotates_within_and_across_hand_outs() -> None:
    agents = [agent(1, "Ana"), agent(2, "Bo", last_assigned_at=ago(90)), agent(3, "Cy", last_assigned_at=ago(30))]
    first = hand_out([waiting(i, minutes_ago=100 - i) for i in range(1, 6)], agents, Mode.ROUND_ROBIN, NOW,
                     language_strict=False)  # fmt: skip
    assert [a.agent_id for a in first] == [1, 2, 3, 1, 2]

    # The edge stores each agent's new count and last assignment time; the next hand-out
    # continues the rotation where this one stopped: Cy, then Ana, then Bo.
    last = {a.agent_id: a.assigned_at for a in first}
    assert len(set(last.values())) == 3
    agents = [
        agent(1, "Ana", open_count=2, last_assigned_at=last[1]),
        agent(2, "Bo", open_count=2, last_assigned_at=last[2]),
        agent(3, "Cy", open_count=1, last_assigned_at=last[3]),
    ]
    later = NOW + timedelta(minutes=5)
    second = hand_out([waiting(i) for i in range(6, 10)], agents, Mode.ROUND_ROBIN, later, language_strict=False)
    assert [a.agent_id for a in second] == [3, 1, 2, 3]


def test_hand_out_serves_the_earliest_deadline_then_priority_then_the_oldest() -> None:
    queue = [
        waiting(1, minutes_ago=300, priority="low"),
        waiting(2, minutes_ago=10, due_in=90, priority="low"),
        waiting(3, minutes_ago=20, due_in=30, priority="normal"),
        waiting(4, minutes_ago=5, priority="urgent"),
        waiting(5, minutes_ago=50, priority="normal"),
        waiting(6, minutes_ago=60, priority="normal"),
        waiting(7, minutes_ago=1, due_in=30, priority="high"),
    ]
    agents = [agent(1, "Ana", capacity=None)]
    result = hand_out(queue, agents, Mode.ROUND_ROBIN, NOW, language_strict=False)
    assert [a.conversation_id for a in result] == [7, 3, 2, 4, 6, 5, 1]


def test_hand_out_stops_when_capacity_is_used_up_and_the_rest_keeps_waiting() -> None:
    agents = [agent(1, "Ana", capacity=3, open_count=1), agent(2, "Bo", capacity=2, open_count=1)]
    queue = [waiting(i, minutes_ago=i) for i in range(1, 8)]
    result = hand_out(queue, agents, Mode.LEAST_LOADED, NOW, language_strict=False)
    # Three free places; the three who waited longest get them.
    assert sorted(a.conversation_id for a in result) == [5, 6, 7]
    assert sorted(a.agent_id for a in result) == [1, 1, 2]


def test_least_loaded_hand_out_evens_out_the_load() -> None:
    agents = [agent(1, "Ana", capacity=10, open_count=5), agent(2, "Bo", capacity=20, open_count=0)]
    result = hand_out([waiting(i, minutes_ago=100 - i) for i in range(1, 11)], agents, Mode.LEAST_LOADED, NOW,
                      language_strict=False)  # fmt: skip
    # Bo takes everything until his share reaches Ana's half; at 10 of 20 they tie and Ana,
    # assigned less recently, gets the eleventh.
    assert [a.agent_id for a in result] == [2] * 10
    assert result[0] == Assignment(1, 2, "least loaded: Bo has the lowest load; 0 of 20 open", NOW)
    more = hand_out([waiting(i) for i in range(1, 12)], agents, Mode.LEAST_LOADED, NOW, language_strict=False)
    assert [a.agent_id for a in more][10] == 1


def test_hand_out_skips_what_nobody_can_take_and_serves_the_next() -> None:
    agents = [agent(1, "Ana", languages=("en",), capacity=2)]
    queue = [
        waiting(1, due_in=5, language="fa"),
        waiting(2, due_in=10, language="en"),
        waiting(3, due_in=20, skills=("legal",)),
        waiting(4, due_in=30),
        waiting(5, due_in=40),
    ]
    result = hand_out(queue, agents, Mode.ROUND_ROBIN, NOW, language_strict=True)
    assert [(a.conversation_id, a.agent_id) for a in result] == [(2, 1), (4, 1)]


def test_hand_out_with_nobody_present_assigns_nothing() -> None:
    agents = [agent(1, "Ana", availability=Availability.OFFLINE), agent(2, "Bo", on_shift=False)]
    assert hand_out([waiting(1)], agents, Mode.ROUND_ROBIN, NOW, language_strict=False) == []


def test_hand_out_does_not_change_the_callers_agents() -> None:
    agents = [agent(1, "Ana", open_count=0)]
    hand_out([waiting(1), waiting(2)], agents, Mode.ROUND_ROBIN, NOW, language_strict=False)
    assert agents[0].open_count == 0
    assert agents[0].last_assigned_at is None


# --- bad input --------------------------------------------------------------------------------


def test_bad_agent_data_is_refused_with_a_clear_message() -> None:
    with pytest.raises(RoutingError, match="capacity must be empty or at least 0"):
        agent(1, "Ana", capacity=-1)
    with pytest.raises(RoutingError, match="must be timezone-aware"):
        agent(1, "Ana", last_assigned_at=datetime(2026, 1, 1))
    with pytest.raises(RoutingError, match="now must be timezone-aware"):
        hand_out([], [], Mode.ROUND_ROBIN, datetime(2026, 1, 1), language_strict=False)
