"""WebSocket routes: the one live socket every page opens (static/postdesk/live.js)."""

from typing import Any

from django.urls import path

from postdesk.web.consumers import LiveConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
