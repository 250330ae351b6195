"""Live updates: tell every open page that a conversation changed (DESIGN.md §8).

The service layer calls `conversation_changed` inside its transaction; the event goes out only after
the commit, to the groups of the pages that show that conversation (its own page, and the lists of
its mailbox). Pages re-fetch what changed; events carry ids, never mail content, so a page can only
learn more through the permission-checked views.
"""

from __future__ import annotations

from django.db import transaction

from postdesk.desk.models import Conversation


def conversation_group(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


def mailbox_group(mailbox_id: int) -> str:
    return f"mailbox-{mailbox_id}"


def conversation_changed(conversation: Conversation, kind: str, *, actor_id: int | None = None) -> None:
    """Queue a `kind` event (received, replied, assigned, status, note, draft, …) for after the commit."""
    event = {
        "type": "conversation.changed",
        "conversation": conversation.pk,
        "number": conversation.number,
        "mailbox": conversation.mailbox_id,
        "kind": kind,
        "actor": actor_id,
    }
    transaction.on_commit(lambda: _publish(event))


def _publish(event: dict[str, object]) -> None:
    """Send to the channel layer; replaced by the Channels wiring (web/consumers.py)."""
    return None
