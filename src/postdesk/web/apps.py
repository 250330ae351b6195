"""Django app configuration for `postdesk.web` (templates and static files)."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "postdesk.web"
    label = "web"
