"""Agent page routes: login/logout, the conversation list, a thread and a message's HTML frame."""

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, path

from postdesk.web import inbox, thread, views
from postdesk.web.login_throttle import ThrottledAuthenticationForm

app_name = "web"

urlpatterns: list[URLPattern] = [
    path(
        "login/",
        views.LoginView.as_view(
            template_name="web/login.html",
            redirect_authenticated_user=True,
            authentication_form=ThrottledAuthenticationForm,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="web:login"), name="logout"),
    path("", inbox.conversation_list, name="conversation-list"),
    path("inbox/refresh/", inbox.conversation_list_refresh, name="inbox-refresh"),
    path("inbox/bulk/", inbox.bulk_action, name="inbox-bulk"),
    path("inbox/views/", inbox.save_view, name="inbox-save-view"),
    path("inbox/views/<int:view_id>/delete/", inbox.delete_view, name="inbox-delete-view"),
    path("me/availability/", views.availability, name="availability"),
    *thread.urlpatterns,
]
