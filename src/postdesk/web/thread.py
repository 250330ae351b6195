"""One conversation: the thread, a message's HTML frame, and the actions taken on it."""

from __future__ import annotations

import base64
import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from postdesk.api.downloads import SAFE_TYPES
from postdesk.desk import access
from postdesk.desk.blobs import default_store
from postdesk.desk.errors import NotFound
from postdesk.desk.models import Attachment, Message
from postdesk.web.views import MAIL_HTML_CSP, agent_page

# Inline (cid:) images are embedded as data: URIs up to these sizes; larger ones stay broken.
MAX_INLINE_IMAGE = 2 * 1024 * 1024
MAX_INLINE_TOTAL = 8 * 1024 * 1024
_CID_SRC = re.compile(r'src="cid:([^"]+)"', re.IGNORECASE)


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
