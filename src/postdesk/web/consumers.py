"""The live socket `/ws/live/`: what a page listens to, change events, and who is viewing or typing (DESIGN.md §8).

One socket per page (static/postdesk/live.js). JSON text frames:

client → server
  {"type": "subscribe", "conversations": [id, …], "mailboxes": [id, …]}
      Replaces what this socket listens to. The server keeps only what the user may read
      (`access.visible_conversations` / `visible_mailboxes`) and answers
      {"type": "subscribed", "conversations": [...], "mailboxes": [...]}; the rest is left out
      silently, exactly like ids that do not exist.
  {"type": "presence", "conversation": id, "state": "viewing" | "typing" | "left"}
      This page's agent on a subscribed conversation.

server → client
  {"type": "hello", "user": id, "name": str, "socket": str, "heartbeat": s, "ttl": s, "typing_ttl": s}
  {"type": "conversation.changed", "id", "conversation", "number", "mailbox", "kind", "actor"}
  {"type": "presence", "conversation", "mailbox", "socket", "user", "name", "state", "ttl", "typing_ttl"}
  {"type": "error", "message": str}

Presence is never stored on the server, so it works the same with one process or many behind the
Redis layer. Each socket holds its own page's state and re-broadcasts it every HEARTBEAT_SECONDS;
receivers drop an entry PRESENCE_TTL_SECONDS after they last heard of it (a crashed process's
sockets simply fall silent), and show "typing" only for TYPING_SECONDS after the last keystroke.
A socket that subscribes asks for a roll call, so it sees who is already there at once instead of
after the next heartbeat. Updates go to the conversation's group (its page) and its mailbox's group
(the lists); roll calls for a mailbox go to `presence-mailbox-<id>`, which every socket present on
a conversation of that mailbox joins.

Subscriptions are checked when made and again every RECHECK_SECONDS, with the session: a socket of
an agent who signed out (or was deactivated) is closed with 4401, and conversations or mailboxes no
longer visible are dropped (a new "subscribed" says what remains). Events carry ids only, and pages
fetch content through the permission-checked views, so even in between a socket learns nothing
more than that something changed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from channels.auth import get_user  # type: ignore[import-untyped]
from channels.db import database_sync_to_async  # type: ignore[import-untyped]
from channels.generic.websocket import AsyncWebsocketConsumer  # type: ignore[import-untyped]
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils.translation import gettext as _

from postdesk.desk import access
from postdesk.desk.live import conversation_group, mailbox_group
from postdesk.desk.people import display_name

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10
PRESENCE_TTL_SECONDS = 25  # two heartbeats missed, and a little more
TYPING_SECONDS = 5
# The same state again within this time is not re-broadcast: a client that floods cannot make us flood.
MIN_REPEAT_SECONDS = 1.0
# Sign-out, deactivation and team changes reach open sockets within this time.
RECHECK_SECONDS = 300
MAX_CONVERSATIONS = 50
MAX_MAILBOXES = 500
MAX_FRAME_CHARS = 64 * 1024
CLOSE_UNAUTHENTICATED = 4401

VIEWING, TYPING, LEFT = "viewing", "typing", "left"


def presence_group(mailbox_id: int) -> str:
    """The sockets present on some conversation of that mailbox: a list page's roll call goes here."""
    return f"presence-mailbox-{mailbox_id}"


@dataclass(slots=True)
class Presence:
    """This socket's agent on one conversation."""

    conversation: int
    mailbox: int
    typing_at: float | None = None  # time.monotonic() of the last keystroke reported
    sent_state: str = ""
    sent_at: float = 0.0

    def state(self, now: float) -> str:
        if self.typing_at is not None and now - self.typing_at < TYPING_SECONDS:
            return TYPING
        return VIEWING


@database_sync_to_async  # type: ignore[untyped-decorator]
def _allowed(user: AbstractBaseUser, conversations: list[int], mailboxes: list[int]) -> tuple[dict[int, int], set[int]]:
    """Of the ids asked for, the conversations (id → mailbox id) and mailboxes `user` may read."""
    visible = access.visible_conversations(user).filter(pk__in=conversations)
    allowed_conversations = {pk: mailbox for pk, mailbox in visible.values_list("pk", "mailbox_id")}
    allowed_mailboxes = set(access.visible_mailboxes(user).filter(pk__in=mailboxes).values_list("pk", flat=True))
    return allowed_conversations, allowed_mailboxes


def _ids(value: object, limit: int) -> list[int] | None:
    """A list of positive ids, or None when `value` is not one (or too long)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        return None
    if not all(isinstance(item, int) and not isinstance(item, bool) and item > 0 for item in value):
        return None
    return list(dict.fromkeys(value))


class LiveConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """One page's socket; see the module docstring for the protocol."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user: AbstractBaseUser | None = None
        self.socket_id = secrets.token_hex(8)
        self.name = ""
        self.conversations: dict[int, int] = {}  # subscribed conversation → its mailbox
        self.mailboxes: set[int] = set()
        self.joined: set[str] = set()
        self.present: dict[int, Presence] = {}
        self.seen_events: deque[str] = deque(maxlen=64)
        self.heartbeat: asyncio.Task[None] | None = None

    # --- the socket's life -------------------------------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope.get("user")
        # A close code needs an accepted socket; refusing the handshake would only say "403" to the page.
        await self.accept()
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.name = display_name(user)
        await self._send(
            {
                "type": "hello",
                "user": user.pk,
                "name": self.name,
                "socket": self.socket_id,
                "heartbeat": HEARTBEAT_SECONDS,
                "ttl": PRESENCE_TTL_SECONDS,
                "typing_ttl": TYPING_SECONDS,
            }
        )
        self.heartbeat = asyncio.create_task(self._beat())

    async def disconnect(self, code: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        try:
            for presence in list(self.present.values()):
                await self._broadcast(presence, LEFT)
            for group in self.joined:
                await self.channel_layer.group_discard(group, self.channel_name)
        except Exception:
            # Redis gone: its groups expire, and the others' clients forget us after the TTL.
            log.warning("live socket of %s closed without clean-up", self.name, exc_info=True)
        self.present.clear()
        self.joined.clear()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None:
            return
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            await self._error(_("Send JSON text messages."))
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self._error(_("Send JSON text messages."))
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "subscribe":
            await self._subscribe(content)
        elif kind == "presence":
            await self._presence(content)
        else:
            await self._error(_("Unknown message type; use subscribe or presence."))

    # --- from the page -----------------------------------------------------------------------------------

    async def _subscribe(self, content: dict[str, Any]) -> None:
        assert self.user is not None
        conversations = _ids(content.get("conversations"), MAX_CONVERSATIONS)
        mailboxes = _ids(content.get("mailboxes"), MAX_MAILBOXES)
        if conversations is None or mailboxes is None:
            await self._error(
                _("Subscribe with lists of ids: at most %(conversations)s conversations and %(mailboxes)s mailboxes.")
                % {"conversations": MAX_CONVERSATIONS, "mailboxes": MAX_MAILBOXES}
            )
            return
        allowed_conversations, allowed_mailboxes = await _allowed(self.user, conversations, mailboxes)
        new_conversations = set(allowed_conversations) - set(self.conversations)
        new_mailboxes = allowed_mailboxes - self.mailboxes
        await self._listen_to(allowed_conversations, allowed_mailboxes)
        await self._send_subscribed()

        roll_call = {"type": "presence.rollcall", "reply_to": self.channel_name}
        for conversation in sorted(new_conversations):
            await self.channel_layer.group_send(
                conversation_group(conversation), {**roll_call, "conversation": conversation}
            )
        for mailbox in sorted(new_mailboxes):
            await self.channel_layer.group_send(presence_group(mailbox), {**roll_call, "mailbox": mailbox})

    async def _listen_to(self, conversations: dict[int, int], mailboxes: set[int], *, rejoin: bool = False) -> None:
        """Be in exactly the groups of these (allowed) conversations and mailboxes; leave the rest."""
        for conversation in set(self.present) - set(conversations):
            await self._broadcast(self.present.pop(conversation), LEFT)
        wanted = {conversation_group(c) for c in conversations}
        wanted |= {presence_group(m) for m in conversations.values()}
        wanted |= {mailbox_group(m) for m in mailboxes}
        for group in self.joined - wanted:
            await self.channel_layer.group_discard(group, self.channel_name)
        # Joining again renews the membership, which the channel layer forgets after a day.
        for group in wanted if rejoin else wanted - self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined, self.conversations, self.mailboxes = wanted, conversations, mailboxes

    async def _send_subscribed(self) -> None:
        subscribed = {"conversations": sorted(self.conversations), "mailboxes": sorted(self.mailboxes)}
        await self._send({"type": "subscribed", **subscribed})

    async def _recheck(self) -> bool:
        """Still signed in, and still allowed what we listen to? Closes the socket (4401) if signed out."""
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        # A fresh read of the session: the one in the scope is cached since the socket opened.
        user = await get_user({"session": import_module(settings.SESSION_ENGINE).SessionStore(key)}) if key else None
        if user is None or not user.is_authenticated or self.user is None or user.pk != self.user.pk:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        self.user = user
        conversations, mailboxes = await _allowed(user, list(self.conversations), list(self.mailboxes))
        changed = (conversations, mailboxes) != (self.conversations, self.mailboxes)
        await self._listen_to(conversations, mailboxes, rejoin=True)
        if changed:
            await self._send_subscribed()
        return True

    async def _presence(self, content: dict[str, Any]) -> None:
        conversation, state = content.get("conversation"), content.get("state")
        if not isinstance(conversation, int) or conversation not in self.conversations:
            await self._error(_("Subscribe to a conversation before telling who is on it."))
            return
        if state not in (VIEWING, TYPING, LEFT):
            await self._error(_("Presence is one of: viewing, typing, left."))
            return
        if state == LEFT:
            if conversation in self.present:
                await self._broadcast(self.present.pop(conversation), LEFT)
            return
        now = time.monotonic()
        presence = self.present.setdefault(conversation, Presence(conversation, self.conversations[conversation]))
        presence.typing_at = now if state == TYPING else None
        if presence.state(now) == presence.sent_state and now - presence.sent_at < MIN_REPEAT_SECONDS:
            return
        await self._broadcast(presence)

    # --- from the channel layer (method names follow the message types) --------------------------------------

    async def conversation_changed(self, event: dict[str, Any]) -> None:
        event_id = str(event.get("id", ""))
        if event_id and event_id in self.seen_events:
            return
        self.seen_events.append(event_id)
        fields = ("type", "id", "conversation", "number", "mailbox", "kind", "actor")
        await self._send({name: event.get(name) for name in fields})

    async def presence_update(self, message: dict[str, Any]) -> None:
        if message.get("socket") == self.socket_id:
            return
        await self._send(
            {
                **{key: value for key, value in message.items() if key != "type"},
                "type": "presence",
                "ttl": PRESENCE_TTL_SECONDS,
                "typing_ttl": TYPING_SECONDS,
            }
        )

    async def presence_rollcall(self, message: dict[str, Any]) -> None:
        reply_to = message.get("reply_to")
        if not isinstance(reply_to, str) or reply_to == self.channel_name:
            return
        now = time.monotonic()
        for presence in list(self.present.values()):
            if presence.conversation == message.get("conversation") or presence.mailbox == message.get("mailbox"):
                await self.channel_layer.send(reply_to, self._presence_message(presence, presence.state(now)))

    # --- helpers -----------------------------------------------------------------------------------------

    def _presence_message(self, presence: Presence, state: str) -> dict[str, Any]:
        return {
            "type": "presence.update",
            "conversation": presence.conversation,
            "mailbox": presence.mailbox,
            "socket": self.socket_id,
            "user": self.user.pk if self.user is not None else None,
            "name": self.name,
            "state": state,
        }

    async def _broadcast(self, presence: Presence, state: str | None = None) -> None:
        now = time.monotonic()
        state = state or presence.state(now)
        message = self._presence_message(presence, state)
        presence.sent_state, presence.sent_at = state, now
        await self.channel_layer.group_send(conversation_group(presence.conversation), message)
        await self.channel_layer.group_send(mailbox_group(presence.mailbox), message)

    async def _beat(self) -> None:
        """Re-broadcast this page's presence, so other processes' pages keep (and late ones learn) it; now and
        then check that the agent is still signed in and still allowed what the socket listens to."""
        checked_at, failing = time.monotonic(), False
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                if time.monotonic() - checked_at >= RECHECK_SECONDS:
                    checked_at = time.monotonic()
                    if not await self._recheck():
                        return
                for presence in list(self.present.values()):
                    await self._broadcast(presence)
                failing = False
            except Exception:
                # Once per outage, not every ten seconds for every open page.
                if not failing:
                    log.warning("live heartbeat of %s failed", self.name, exc_info=True)
                failing = True

    async def _send(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))

    async def _error(self, message: str) -> None:
        await self._send({"type": "error", "message": message})


class SameOriginValidator:
    """Accept a socket only from our own pages: its Origin is the host it connects to (or a CSRF-trusted origin).

    ALLOWED_HOSTS is "*" (the operator's proxy decides the host names), which turns Channels'
    AllowedHostsOriginValidator into "any site may connect"; without this check another site's page
    could open a socket with the agent's cookies (cross-site WebSocket hijacking).
    """

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        headers = {name: value.decode("latin-1") for name, value in scope.get("headers", [])}
        if self._same_origin(headers.get(b"origin"), headers.get(b"host")):
            return await self.application(scope, receive, send)
        from channels.security.websocket import WebsocketDenier  # type: ignore[import-untyped]

        return await WebsocketDenier()(scope, receive, send)

    @staticmethod
    def _same_origin(origin: str | None, host: str | None) -> bool:
        if not origin:
            return False
        if origin.rstrip("/") in getattr(settings, "CSRF_TRUSTED_ORIGINS", []):
            return True
        parts = urlsplit(origin)
        return bool(host) and parts.scheme in ("http", "https") and parts.netloc.lower() == str(host).lower()
