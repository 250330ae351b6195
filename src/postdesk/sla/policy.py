"""SLA policies as data and the choice of the one that applies to a conversation: the first match by order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from postdesk.sla.clock import Targets
from postdesk.sla.errors import PolicyError


def _folded(values: Iterable[str]) -> frozenset[str]:
    # Priorities, categories and tiers are labels typed by admins or predicted by a model: "Billing" is "billing".
    return frozenset(value.strip().casefold() for value in values if value.strip())


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """What a policy's conditions look at; an empty category or tier ("" or None) matches only "any"."""

    priority: str
    mailbox_id: int | None = None
    category: str | None = None
    contact_tier: str | None = None


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Targets and warning time for conversations matching every non-empty condition set (empty set = any).

    `calendar_id` names the business calendar to count in (None = the mailbox's, as the app decides); disabled
    policies are never chosen.
    """

    id: int
    name: str
    targets: Targets
    order: int = 0
    priorities: frozenset[str] = frozenset()
    mailbox_ids: frozenset[int] = frozenset()
    categories: frozenset[str] = frozenset()
    contact_tiers: frozenset[str] = frozenset()
    warn_before: timedelta = timedelta(minutes=30)
    calendar_id: int | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.warn_before < timedelta(0):
            raise PolicyError(f"{self.name}: the warning time cannot be negative, got {self.warn_before}")
        object.__setattr__(self, "priorities", _folded(self.priorities))
        object.__setattr__(self, "categories", _folded(self.categories))
        object.__setattr__(self, "contact_tiers", _folded(self.contact_tiers))
        object.__setattr__(self, "mailbox_ids", frozenset(self.mailbox_ids))

    def matches(self, facts: PolicyFacts) -> bool:
        """Whether every condition holds for `facts` (a disabled policy still answers; `choose_policy` skips it)."""
        return (
            _holds(self.priorities, facts.priority)
            and (not self.mailbox_ids or facts.mailbox_id in self.mailbox_ids)
            and _holds(self.categories, facts.category)
            and _holds(self.contact_tiers, facts.contact_tier)
        )


def _holds(allowed: frozenset[str], value: str | None) -> bool:
    if not allowed:
        return True
    return value is not None and value.strip().casefold() in allowed


def choose_policy(policies: Iterable[SlaPolicy], facts: PolicyFacts) -> SlaPolicy | None:
    """The enabled policy with the lowest (order, id) whose conditions all match `facts`; None when none does."""
    for policy in sorted(policies, key=lambda policy: (policy.order, policy.id)):
        if policy.enabled and policy.matches(facts):
            return policy
    return None
