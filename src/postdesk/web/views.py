"""What every agent page shares: the page decorators, the Content-Security-Policies, the login view, availability.

Every page needs a login and reads only through `postdesk.desk.access`; what the user may not see
is a 404, exactly like what does not exist. Mail HTML is never inlined into our pages: it is served
on its own address with a Content-Security-Policy that forbids scripts and remote loads, and
shown in an `<iframe sandbox>` without `allow-scripts` or `allow-same-origin`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST, require_safe

from postdesk.api.errors import postdesk_error_status
from postdesk.desk import routing
from postdesk.desk.errors import PostdeskError
from postdesk.desk.models import Availability

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


def _show_availability(request: HttpRequest) -> HttpResponse:
    # htmx asks for the control again when the agent picks a state: "offline" offers giving conversations back.
    routing.availability_of(cast(User, request.user))  # collaborators and non-agents have none: 403
    chosen = request.GET.get("availability", "")
    context = {"chosen": chosen if chosen in Availability.values else "", "next_url": _safe_next(request)}
    return render(request, "web/availability.html", context)


def _set_availability(request: HttpRequest) -> HttpResponse:
    availability = request.POST.get("availability", "")
    # The box only means something when going offline; left ticked after choosing another state, it is ignored.
    release = availability == Availability.OFFLINE and bool(request.POST.get("release"))
    released = routing.set_availability(cast(User, request.user), availability, release=release)
    result = {
        Availability.ONLINE: _("You are online."),
        Availability.AWAY: _("You are away: no new conversations for you."),
        Availability.OFFLINE: _("You are offline: no new conversations for you."),
    }[Availability(availability)]
    if released:
        result += " " + ngettext(
            "%(count)s conversation went back to the queue.",
            "%(count)s conversations went back to the queue.",
            released,
        ) % {"count": released}
    if not getattr(request, "htmx", False):
        messages.success(request, result)
        return HttpResponseRedirect(_safe_next(request) or reverse("web:conversation-list"), status=303)
    context = {"chosen": availability, "result": result, "next_url": _safe_next(request)}
    response = render(request, "web/availability.html", context)
    if released:
        response["HX-Trigger"] = json.dumps({"pd:changed": {"kind": "routed", "own": True}})
    return response


def _safe_next(request: HttpRequest) -> str:
    """The page the control was on (for a plain POST's redirect), if it is one of ours."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return ""


_show_availability_page = agent_page(_show_availability)
_set_availability_action = agent_action(_set_availability)


def availability(request: HttpRequest) -> HttpResponse:
    """The header's availability control: GET renders it (for a chosen state), POST sets it (routing.set_availability).

    Collaborators and users without an agent profile are refused (403); anonymous users go to the login page.
    """
    if request.method == "POST":
        return _set_availability_action(request)
    return _show_availability_page(request)
