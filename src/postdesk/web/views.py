"""Agent pages (read-only for now): the conversation list, a conversation's thread, and a message's HTML frame.

Every page needs a login and reads only through `postdesk.desk.access`; what the user may not see
is a 404, exactly like what does not exist. Mail HTML is never inlined into our pages: it is served
on its own address with a Content-Security-Policy that forbids scripts and remote loads, and
shown in an `<iframe sandbox>` without `allow-scripts` or `allow-same-origin`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe

from postdesk.api.downloads import SAFE_TYPES
from postdesk.api.errors import postdesk_error_status
from postdesk.api.pagination import DEFAULT_LIMIT, keyset_page
from postdesk.desk import access
from postdesk.desk.blobs import default_store
from postdesk.desk.errors import NotFound, PostdeskError
from postdesk.desk.models import Attachment, Message, Status

# Our own pages: no script at all, styles inline in the base template, frames only from us.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Mail HTML: nothing runs, nothing loads from outside (remote images are trackers); inline CSS is allowed.
MAIL_HTML_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; frame-ancestors 'self'"

# Inline (cid:) images are embedded as data: URIs up to these sizes; larger ones stay broken.
MAX_INLINE_IMAGE = 2 * 1024 * 1024
MAX_INLINE_TOTAL = 8 * 1024 * 1024
_CID_SRC = re.compile(r'src="cid:([^"]+)"', re.IGNORECASE)

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


@agent_page
def conversation_list(request: HttpRequest) -> HttpResponse:
    params = request.GET
    wanted = access.ConversationFilter(
        mailbox=params.get("mailbox", ""),
        statuses=access.parse_statuses(params.get("status", "")),
        q=params.get("q", ""),
    )
    rows = access.filter_conversations(request.user, wanted).select_related("mailbox")
    page = keyset_page(rows, cursor=params.get("cursor"), limit=DEFAULT_LIMIT)
    filters = {key: params[key] for key in ("status", "mailbox", "q") if params.get(key)}
    older_url = f"?{urlencode({**filters, 'cursor': page.next_cursor})}" if page.next_cursor else ""
    return render(
        request,
        "web/conversation_list.html",
        {
            "conversations": page.rows,
            "older_url": older_url,
            "newest_url": f"?{urlencode(filters)}" if filters else "?",
            "is_first_page": not params.get("cursor"),
            "mailboxes": access.visible_mailboxes(request.user).order_by("address"),
            "statuses": Status.choices,
            "selected": {"status": params.get("status", ""), "mailbox": params.get("mailbox", ""), "q": wanted.q},
        },
    )


@agent_page
def conversation_detail(request: HttpRequest, number: int) -> HttpResponse:
    conversation = access.access_conversation_by_number(request.user, number)
    messages = list(
        conversation.messages.order_by("created_at", "id")
        .select_related("received_mail")
        .prefetch_related("attachments")
    )
    return render(
        request,
        "web/conversation.html",
        {"conversation": conversation, "messages": messages},
    )


def _message_in(request: HttpRequest, number: int, message_id: int) -> Message:
    conversation = access.access_conversation_by_number(request.user, number)
    message = access.access_message(request.user, message_id)
    if message.conversation_id != conversation.pk:
        raise NotFound(_("There is no message %(id)s.") % {"id": message_id})
    return message


def _inline_images(message: Message, html: str) -> str:
    """Replace `cid:` image sources with data: URIs of the message's own inline images (CSP allows data:)."""
    if "cid:" not in html.lower():
        return html
    by_cid: dict[str, Attachment] = {}
    for attachment in message.attachments.all():
        if attachment.content_id and attachment.content_type.lower() in SAFE_TYPES - {"application/pdf"}:
            by_cid[attachment.content_id.strip("<>").lower()] = attachment
    store = default_store()
    budget = MAX_INLINE_TOTAL

    def replace(match: re.Match[str]) -> str:
        nonlocal budget
        attachment = by_cid.get(match.group(1).strip("<>").lower())
        if attachment is None or attachment.size > min(MAX_INLINE_IMAGE, budget) or not store.exists(attachment.sha256):
            return match.group(0)
        budget -= attachment.size
        encoded = base64.b64encode(store.get(attachment.sha256)).decode("ascii")
        return f'src="data:{attachment.content_type.lower()};base64,{encoded}"'

    return _CID_SRC.sub(replace, html)


@xframe_options_sameorigin
@agent_page
def message_html(request: HttpRequest, number: int, message_id: int) -> HttpResponse:
    """The sanitised HTML body as its own document, for the sandboxed frame on the thread page.

    Without its quoted history unless `?full=1` asks for the whole mail.
    """
    message = _message_in(request, number, message_id)
    html = message.html if request.GET.get("full") == "1" else (message.visible_html or message.html)
    body = _inline_images(message, html)
    document = (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        '<base target="_blank"></head><body>' + body + "</body></html>"
    )
    response = HttpResponse(document, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = MAIL_HTML_CSP
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
