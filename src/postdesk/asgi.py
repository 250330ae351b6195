"""The ASGI application served by uvicorn in `postdesk run` and `postdesk web`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postdesk.settings")
application = get_asgi_application()
