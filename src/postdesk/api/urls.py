"""API v1 routes; any other address under /api/v1/ answers a JSON 404."""

from django.urls import URLPattern, path, re_path
from drf_spectacular.views import SpectacularAPIView

from postdesk.api import views
from postdesk.api.errors import api_not_found

app_name = "api"

urlpatterns: list[URLPattern] = [
    path("conversations/", views.ConversationListView.as_view(), name="conversation-list"),
    path("conversations/<int:number>/", views.ConversationDetailView.as_view(), name="conversation-detail"),
    path("messages/<int:message_id>/raw", views.MessageRawView.as_view(), name="message-raw"),
    path(
        "attachments/<int:attachment_id>/download", views.AttachmentDownloadView.as_view(), name="attachment-download"
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Last: without it an unknown API address would get Django's HTML 404 page.
    re_path(r"^.*$", api_not_found, name="not-found"),
]
