"""Tests of `postdesk.triage.auto_reply`: automatic mail never goes to robots, lists, bounces or ourselves."""

from __future__ import annotations

import pytest

from postdesk.mail.model import AutomatedKind
from postdesk.triage.auto_reply import AutoReplyDecision, may_auto_reply

pytestmark = pytest.mark.pure

OURS = frozenset({"Support@Example.com", "sales@example.com"})


def decide(
    sender: str = "jo@customer.example.org",
    kind: AutomatedKind | None = None,
    *,
    is_list: bool = False,
    is_bounce: bool = False,
    sent: int = 0,
    limit: int = 3,
) -> AutoReplyDecision:
    return may_auto_reply(
        sender,
        kind,
        is_list=is_list,
        is_bounce=is_bounce,
        sent_to_sender_today=sent,
        daily_limit=limit,
        our_addresses=OURS,
    )


def test_a_person_under_the_limit_gets_a_reply() -> None:
    assert decide() == AutoReplyDecision(True, "the sender is a person and under today's limit", "allowed")
    assert decide(sent=2, limit=3).allowed


@pytest.mark.parametrize("sender", ["", "   ", "<>", "jo", "@example.com", "jo@"])
def test_no_sender_address_means_no_reply(sender: str) -> None:
    assert decide(sender) == AutoReplyDecision(False, "the mail has no sender address to answer", "no-sender")


@pytest.mark.parametrize("sender", ["support@example.com", "SUPPORT@EXAMPLE.COM", "support+t0k3n@example.com"])
def test_never_to_our_own_addresses(sender: str) -> None:
    decision = decide(sender)
    assert (decision.allowed, decision.code) == (False, "own-address")
    assert decision.reason == f"{sender.lower()} is one of our own addresses (a reply would loop)"


def test_a_colleague_at_our_domain_is_not_our_mailbox() -> None:
    assert decide("ana@example.com").allowed


@pytest.mark.parametrize(
    ("kind", "is_list", "is_bounce", "code", "reason"),
    [
        (None, False, True, "bounce", "the mail is a bounce"),
        (AutomatedKind.BOUNCE, False, False, "bounce", "the mail is a bounce"),
        (None, True, False, "list", "the mail came from a mailing list"),
        (AutomatedKind.LIST, False, False, "list", "the mail came from a mailing list"),
        (AutomatedKind.BULK, False, False, "bulk", "the mail is bulk mail"),
        (AutomatedKind.AUTO_REPLY, False, False, "automated", "the mail is automatic (auto_reply)"),
        (AutomatedKind.OUT_OF_OFFICE, False, False, "automated", "the mail is automatic (out_of_office)"),
    ],
)
def test_never_to_automated_mail(
    kind: AutomatedKind | None, is_list: bool, is_bounce: bool, code: str, reason: str
) -> None:
    assert decide(kind=kind, is_list=is_list, is_bounce=is_bounce) == AutoReplyDecision(False, reason, code)


@pytest.mark.parametrize(
    "sender",
    [
        "noreply@shop.example",
        "no-reply@accounts.example",
        "No_Reply@x.example",
        "noreply-billing@x.example",
        "donotreply@bank.example",
        "do-not-reply@bank.example",
        "MAILER-DAEMON@mx.example",
        "postmaster@example.net",
        "bounces+123-abc@mail.example",
        "users-request@lists.example",
        "owner-users@lists.example",
        "users-bounces@lists.example",
    ],
)
def test_never_to_robot_addresses(sender: str) -> None:
    decision = decide(sender)
    assert (decision.allowed, decision.code, decision.reason) == (
        False,
        "robot-address",
        f"{sender.lower()} is a robot address",
    )


@pytest.mark.parametrize("sender", ["noreen@example.org", "replyguy@example.org", "bouncer@club.example"])
def test_people_whose_names_look_a_little_like_robots_still_get_replies(sender: str) -> None:
    assert decide(sender).allowed


def test_at_most_the_daily_limit_per_sender() -> None:
    decision = decide(sent=3, limit=3)
    assert decision == AutoReplyDecision(
        False, "jo@customer.example.org already got 3 automatic replies today (limit 3)", "daily-limit"
    )
    assert decide(sent=5, limit=3).code == "daily-limit"


def test_a_limit_of_zero_sends_nothing() -> None:
    assert decide(sent=0, limit=0).code == "daily-limit"
    assert decide(sent=0, limit=-1).reason.endswith("(limit 0)")


def test_the_loop_check_comes_before_everything_else() -> None:
    """Our own address bouncing back is reported as the loop it would be, not just as a bounce."""
    assert decide("support@example.com", AutomatedKind.BOUNCE, is_bounce=True, sent=99).code == "own-address"
