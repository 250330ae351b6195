"""URL routes: the agent pages, the REST API v1 with its OpenAPI schema, and the admin."""

from django.contrib import admin
from django.urls import include, path

from postdesk.web.login_throttle import ThrottledAdminAuthenticationForm

# The admin's sign-in counts wrong passwords like the agent login does.
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("postdesk.api.urls")),
    path("", include("postdesk.web.urls")),
]

# Errors under /api/ answer JSON; the rest get Django's pages.
handler404 = "postdesk.api.errors.page_not_found"
handler500 = "postdesk.api.errors.server_error"
