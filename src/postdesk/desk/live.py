"""Live updates: tell every open page that a conversation changed (DESIGN.md §8).

The service layer calls `conversation_changed` inside its transaction; the event goes out only after
the commit, to the groups of the pages that show that conversation (its own page, and the lists of
its mailbox). Pages re-fetch what changed; events carry ids, never mail content, so a page can only
learn more through the permission-checked views.

Where an event is sent from (DESIGN.md §2). The service layer runs in sync code: a Django view in a
thread of the ASGI server, a huey job in a worker thread, a CLI command. The channel layer is async,
and which event loop may touch it depends on the layer:

- In-memory layer (`postdesk run`): its queues belong to the web server's event loop, so the event
  hops onto that loop with `run_coroutine_threadsafe` (the server captures its loop at start-up with
  `use_server_loop`). `async_to_sync` from a huey thread would run a new loop against those queues
  and lose events. Without a server in the process nobody can listen, and the event is dropped.
- Redis layer (`postdesk web|worker`): channels_redis keeps a connection pool per event loop, so any
  loop will do. A web process uses its server loop; a worker, which has none, gets one long-lived
  loop in a daemon thread (`async_to_sync` would also work, but it starts a thread and a loop, and
  so a new Redis connection, for every event, and blocks the job while Redis answers).

Publishing never blocks the caller and never raises into it: a reply must not fail because a
page could not be told. Failures are logged and the event is dropped; pages catch up on their
next refresh (live.js refreshes after a reconnect).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer  # type: ignore[import-untyped]
from django.db import transaction

from postdesk.desk.models import Conversation

log = logging.getLogger(__name__)

# A Redis that accepts connections but does not answer must not pile up pending sends forever.
PUBLISH_TIMEOUT_SECONDS = 5.0

_server_loop: asyncio.AbstractEventLoop | None = None
_background_loop: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()
_pending: set[asyncio.Task[None]] = set()


def conversation_group(conversation_id: int) -> str:
    return f"conversation-{conversation_id}"


def mailbox_group(mailbox_id: int) -> str:
    return f"mailbox-{mailbox_id}"


def conversation_changed(conversation: Conversation, kind: str, *, actor_id: int | None = None) -> None:
    """Queue a `kind` event (received, replied, assigned, status, note, draft, …) for after the commit."""
    event = {
        "type": "conversation.changed",
        # A socket that listens to both the conversation and its mailbox gets the event twice; the id
        # lets it drop the second copy.
        "id": uuid.uuid4().hex,
        "conversation": conversation.pk,
        "number": conversation.number,
        "mailbox": conversation.mailbox_id,
        "kind": kind,
        "actor": actor_id,
    }
    transaction.on_commit(lambda: _publish(event))


def use_server_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Called by the web server with its running loop at start-up (and None when it stops)."""
    global _server_loop
    _server_loop = loop


def _publish(event: dict[str, Any]) -> None:
    """Send `event` to its conversation's and mailbox's groups, from any thread; never raises."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        groups = [conversation_group(int(event["conversation"]))]
        if event.get("mailbox") is not None:
            groups.append(mailbox_group(int(event["mailbox"])))
        loop = _loop_for(layer)
        if loop is None:
            log.debug("live event %s dropped: no web server in this process", event.get("kind"))
            return
        _run_on(loop, _send(layer, groups, event))
    except Exception:
        log.warning("live event %s dropped", event.get("kind"), exc_info=True)


async def _send(layer: Any, groups: list[str], event: dict[str, Any]) -> None:
    async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
        for group in groups:
            await layer.group_send(group, event)


def _loop_for(layer: Any) -> asyncio.AbstractEventLoop | None:
    """The event loop that may talk to `layer` in this process, or None when no one here can listen."""
    server = _server_loop
    if server is not None and server.is_running():
        return server
    if isinstance(layer, InMemoryChannelLayer):
        return None
    return _publisher_loop()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """One loop in a daemon thread, started on first use, for processes without a web server."""
    global _background_loop
    with _background_lock:
        if _background_loop is None or _background_loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="postdesk-live-publisher", daemon=True)
            thread.start()
            _background_loop = loop
        return _background_loop


def _run_on(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]) -> None:
    """Schedule `coroutine` on `loop` without waiting for it; its failure is logged, not raised."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    try:
        if running is loop:
            task = loop.create_task(coroutine)
            _pending.add(task)  # the loop keeps only a weak reference to its tasks
            task.add_done_callback(_pending.discard)
            task.add_done_callback(_log_failure)
        else:
            asyncio.run_coroutine_threadsafe(coroutine, loop).add_done_callback(_log_failure)
    except Exception:
        coroutine.close()  # the loop is gone: close it rather than leave it "never awaited"
        raise


def _log_failure(done: Future[None] | asyncio.Future[None]) -> None:
    if done.cancelled():
        return
    error = done.exception()
    if error is not None:
        log.warning("live event dropped: %s", str(error) or type(error).__name__, exc_info=error)
