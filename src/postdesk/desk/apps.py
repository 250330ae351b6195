"""Django app configuration for `postdesk.desk`."""

from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "postdesk.desk"
    label = "desk"
    verbose_name = "Postdesk"
    default_auto_field = "django.db.models.BigAutoField"
