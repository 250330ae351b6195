"""Tests of `postdesk.sla.policy`: which SLA policy applies to a conversation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postdesk.sla.clock import Targets
from postdesk.sla.errors import PolicyError
from postdesk.sla.policy import PolicyFacts, SlaPolicy, choose_policy

pytestmark = pytest.mark.pure

TARGETS = Targets.from_minutes(first_response=60)
URGENT_VIP = SlaPolicy(
    1, "Urgent VIP", TARGETS, order=1, priorities=frozenset({"urgent"}), contact_tiers=frozenset({"vip"})
)
BILLING = SlaPolicy(
    2, "Billing mailbox", TARGETS, order=2, mailbox_ids=frozenset({7}), categories=frozenset({"Billing"})
)
DEFAULT = SlaPolicy(3, "Everyone else", TARGETS, order=10)
POLICIES = [DEFAULT, BILLING, URGENT_VIP]


def test_the_first_policy_by_order_whose_conditions_all_match_wins() -> None:
    assert choose_policy(POLICIES, PolicyFacts("urgent", 7, "billing", "vip")) is URGENT_VIP
    assert choose_policy(POLICIES, PolicyFacts("urgent", 7, "billing", "standard")) is BILLING
    assert choose_policy(POLICIES, PolicyFacts("normal", 8, "billing", "vip")) is DEFAULT


def test_categories_and_tiers_match_regardless_of_case_and_empty_matches_only_any() -> None:
    assert BILLING.matches(PolicyFacts("low", 7, " BILLING ", None))
    assert not BILLING.matches(PolicyFacts("low", 7, "", None))
    assert not BILLING.matches(PolicyFacts("low", 7, None, None))
    assert not BILLING.matches(PolicyFacts("low", None, "billing", None))
    assert DEFAULT.matches(PolicyFacts("low"))


def test_no_policy_when_none_matches_and_disabled_ones_are_skipped() -> None:
    disabled = SlaPolicy(4, "Off", TARGETS, order=0, enabled=False)
    assert choose_policy([URGENT_VIP, BILLING], PolicyFacts("low", 1)) is None
    assert choose_policy([disabled, DEFAULT], PolicyFacts("low", 1)) is DEFAULT


def test_equal_order_is_broken_by_id_not_by_list_position() -> None:
    first = SlaPolicy(5, "A", TARGETS, order=3)
    second = SlaPolicy(6, "B", TARGETS, order=3)
    assert choose_policy([second, first], PolicyFacts("normal")) is first


def test_a_negative_warning_time_is_refused() -> None:
    with pytest.raises(PolicyError, match="Late: the warning time cannot be negative"):
        SlaPolicy(7, "Late", TARGETS, warn_before=-timedelta(minutes=5))
