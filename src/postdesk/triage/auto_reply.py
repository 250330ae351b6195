"""The guard every automatic mail passes: never to robots, lists, bounces or ourselves, and at most N per sender a day.

RFC 3834 §2 asks automatic responders not to answer mail that is itself automatic, from mailing lists, or from
addresses that are obviously not people; answering them is how mail loops start. `may_auto_reply` gives the
answer with a stable `code` (kebab-case, Mailman style) and a short English `reason` the edge records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from postdesk.mail.model import AutomatedKind

# Local parts that no person reads (RFC 2142 role names for mail systems, and the usual "do not reply" senders),
# plus list robots: "-request", "-owner", "owner-", "-bounces" (Mailman, Majordomo, LISTSERV conventions).
_ROBOT_LOCAL = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|mdaemon|"
    r"bounces?|listserv|majordomo|mail[-_.]?delivery[-_.]?(?:sub)?system)(?:[-_.+].*)?$"
    r"|^(?:owner-.+|.+-(?:request|owner|bounces?))$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class AutoReplyDecision:
    """Whether an automatic reply may go out, with a stable `code` and a readable `reason`."""

    allowed: bool
    reason: str
    code: str


def may_auto_reply(
    sender_address: str,
    automated_kind: AutomatedKind | None,
    *,
    is_list: bool,
    is_bounce: bool,
    sent_to_sender_today: int,
    daily_limit: int,
    our_addresses: frozenset[str],
) -> AutoReplyDecision:
    """Whether to send an acknowledgement or a rule's template reply to `sender_address` now.

    `automated_kind` is the mail's verdict from `postdesk.mail.automated`; `is_list` and `is_bounce` let the edge
    add what it knows besides (a List-Id it stored, a null reverse path). `sent_to_sender_today` counts automatic
    mails already sent to this address in the last day; `daily_limit` 0 or less sends none. `our_addresses` are
    the installation's mailbox addresses: a mail from one of them (or a +tag sub-address of one) is our own.
    """
    address = sender_address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return AutoReplyDecision(False, "the mail has no sender address to answer", "no-sender")
    if _base_address(address) in {_base_address(ours.strip().lower()) for ours in our_addresses}:
        return AutoReplyDecision(False, f"{address} is one of our own addresses (a reply would loop)", "own-address")
    if is_bounce or automated_kind is AutomatedKind.BOUNCE:
        return AutoReplyDecision(False, "the mail is a bounce", "bounce")
    if is_list or automated_kind is AutomatedKind.LIST:
        return AutoReplyDecision(False, "the mail came from a mailing list", "list")
    if automated_kind is AutomatedKind.BULK:
        return AutoReplyDecision(False, "the mail is bulk mail", "bulk")
    if automated_kind is not None:
        return AutoReplyDecision(False, f"the mail is automatic ({automated_kind.value})", "automated")
    if _ROBOT_LOCAL.match(local):
        return AutoReplyDecision(False, f"{address} is a robot address", "robot-address")
    if sent_to_sender_today >= daily_limit:
        reason = f"{address} already got {sent_to_sender_today} automatic replies today (limit {max(daily_limit, 0)})"
        return AutoReplyDecision(False, reason, "daily-limit")
    return AutoReplyDecision(True, "the sender is a person and under today's limit", "allowed")


def _base_address(address: str) -> str:
    """support+token@example.com -> support@example.com: sub-addresses reach the same mailbox."""
    local, _, domain = address.rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"
