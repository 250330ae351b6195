"""What every agent page shares: the page decorators, the Content-Security-Policies, and the login view.

Every page needs a login and reads only through `postdesk.desk.access`; what the user may not see
is a 404, exactly like what does not exist. Mail HTML is never inlined into our pages: it is served
on its own address with a Content-Security-Policy that forbids scripts and remote loads, and
shown in an `<iframe sandbox>` without `allow-scripts` or `allow-same-origin`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST, require_safe

from postdesk.api.errors import postdesk_error_status
from postdesk.desk.errors import PostdeskError

# Our own pages: scripts and styles only from our static files (nothing inline, no eval: htmx is configured
# for it in base.html), fetches and the live WebSocket only to us, frames only from us.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Mail HTML: nothing runs, nothing loads from outside (remote images are trackers); inline CSS is allowed.
MAIL_HTML_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; frame-ancestors 'self'"


View = Callable[..., HttpResponse]


class LoginView(auth_views.LoginView):
    """Django's login, answering 429 while wrong passwords have throttled the account or address."""

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "throttled"):
            response.status_code = 429
        return response


def agent_page(view: View) -> View:
    """Login required, GET/HEAD only, our CSP, and `PostdeskError` rendered as a page with its status."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except PostdeskError as exc:
            response = render(
                request,
                "web/error.html",
                {"message": exc.user_message},
                status=postdesk_error_status(exc),
            )
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = PAGE_CSP
        return response

    return login_required(require_safe(wrapped))


def agent_action(view: View) -> View:
    """Login required, POST only (CSRF-checked), our CSP; `PostdeskError` becomes a page (or, for htmx, a fragment)
    with its message and status, never a stack trace."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except PostdeskError as exc:
            template = "web/error_fragment.html" if getattr(request, "htmx", False) else "web/error.html"
            response = render(
                request, template, {"message": exc.user_message, "code": exc.code}, status=postdesk_error_status(exc)
            )
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = PAGE_CSP
        return response

    return login_required(require_POST(wrapped))
