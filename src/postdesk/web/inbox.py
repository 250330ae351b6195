"""The inbox: folders, saved views, the conversation list and bulk actions."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from postdesk.api.pagination import DEFAULT_LIMIT, keyset_page
from postdesk.desk import access
from postdesk.desk.models import Status
from postdesk.web.views import agent_page


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
