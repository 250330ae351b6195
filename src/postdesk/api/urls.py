"""API v1 routes; any other address under /api/v1/ answers a JSON 404.

Collections and items end with "/" (`conversations/`, `conversations/42/`, `views/7/`); what hangs
below an item (its actions, timeline, files) does not (`conversations/42/replies`, `messages/9/raw`).
"""

from django.urls import URLPattern, path, re_path
from drf_spectacular.views import SpectacularAPIView

from postdesk.api import action_views, personal_views, views
from postdesk.api.errors import api_not_found

app_name = "api"

_ONE = "conversations/<int:number>/"

urlpatterns: list[URLPattern] = [
    path("conversations/", views.ConversationListView.as_view(), name="conversation-list"),
    path("conversations/bulk", action_views.BulkView.as_view(), name="conversation-bulk"),
    path(_ONE, views.ConversationDetailView.as_view(), name="conversation-detail"),
    path(_ONE + "events", views.EventListView.as_view(), name="conversation-events"),
    path(_ONE + "drafts", views.DraftListView.as_view(), name="conversation-drafts"),
    path(_ONE + "draft", action_views.DraftView.as_view(), name="conversation-draft"),
    path(_ONE + "replies", action_views.ReplyView.as_view(), name="conversation-replies"),
    path(_ONE + "forwards", action_views.ForwardView.as_view(), name="conversation-forwards"),
    path(_ONE + "notes", action_views.NoteView.as_view(), name="conversation-notes"),
    path(_ONE + "assign", action_views.AssignView.as_view(), name="conversation-assign"),
    path(_ONE + "take", action_views.TakeView.as_view(), name="conversation-take"),
    path(_ONE + "status", action_views.StatusView.as_view(), name="conversation-status"),
    path(_ONE + "priority", action_views.PriorityView.as_view(), name="conversation-priority"),
    path(_ONE + "category", action_views.CategoryView.as_view(), name="conversation-category"),
    path(_ONE + "incident-replies", action_views.IncidentReplyView.as_view(), name="conversation-incident-replies"),
    path(_ONE + "snooze", action_views.SnoozeView.as_view(), name="conversation-snooze"),
    path(_ONE + "tags", action_views.TagsView.as_view(), name="conversation-tags"),
    path(_ONE + "followers", action_views.FollowersView.as_view(), name="conversation-followers"),
    path(_ONE + "merge", action_views.MergeView.as_view(), name="conversation-merge"),
    path(_ONE + "spam", action_views.SpamView.as_view(), name="conversation-spam"),
    path("messages/<int:message_id>/raw", views.MessageRawView.as_view(), name="message-raw"),
    path("messages/<int:message_id>/split", action_views.SplitView.as_view(), name="message-split"),
    path(
        "attachments/<int:attachment_id>/download", views.AttachmentDownloadView.as_view(), name="attachment-download"
    ),
    path("folders/", views.FolderListView.as_view(), name="folder-list"),
    path("views/", personal_views.SavedViewListView.as_view(), name="view-list"),
    path("views/<int:view_id>/", personal_views.SavedViewDetailView.as_view(), name="view-detail"),
    path("notifications/", personal_views.NotificationListView.as_view(), name="notification-list"),
    path(
        "notifications/<int:notification_id>/read",
        personal_views.NotificationReadView.as_view(),
        name="notification-read",
    ),
    path("me/availability", personal_views.AvailabilityView.as_view(), name="me-availability"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Last: without it an unknown API address would get Django's HTML 404 page.
    re_path(r"^.*$", api_not_found, name="not-found"),
]
