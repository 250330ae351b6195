"""The ASGI application served by uvicorn in `postdesk run` and `postdesk web`: Django's pages and the live socket.

WebSockets must come from our own pages (same origin) and carry a signed-in session; the consumer
closes anonymous sockets with code 4401 (see postdesk.web.consumers).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
# Set Django up before anything imports models (the consumers do).
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # type: ignore[import-untyped]  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # type: ignore[import-untyped]  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # type: ignore[import-untyped]  # noqa: E402

from postdesk.web.consumers import SameOriginValidator  # noqa: E402
from postdesk.web.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(
            SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
