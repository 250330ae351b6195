"""API v1 reads: conversation list and detail, timeline, drafts, folder counts, raw mail and attachment downloads.

Every read goes through `desk/access.py`: what the caller may not see is a 404, exactly like what does not exist.
"""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import User
from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from postdesk.api.downloads import attachment_response, raw_mail_response
from postdesk.api.serializers import (
    ConversationDetailSerializer,
    ConversationPageSerializer,
    DraftSerializer,
    ErrorSerializer,
    EventPageSerializer,
    FolderListSerializer,
)
from postdesk.desk import access, folders
from postdesk.desk.errors import BadRequest
from postdesk.desk.pagination import DEFAULT_LIMIT, MAX_LIMIT, keyset_page, parse_limit

LIST_PARAMETERS = frozenset({*folders.FILTER_KEYS, "limit", "cursor"})

_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="no token, or a token that is not valid"),
    404: OpenApiResponse(ErrorSerializer, description="does not exist, or you may not see it"),
}
_BAD = {400: OpenApiResponse(ErrorSerializer, description="a query parameter is unknown or malformed")}
_FILE = OpenApiResponse(OpenApiTypes.BINARY, description="the file, as an attachment download")


def refuse_unknown_parameters(request: Request, known: frozenset[str]) -> None:
    """A query parameter we do not know is a mistake (a typo would otherwise silently widen the answer)."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise BadRequest(
            _("Unknown parameter %(names)s; this takes: %(valid)s.")
            % {"names": ", ".join(unknown), "valid": ", ".join(sorted(known)) or _("no parameters")},
            code="bad_filter",
        )


def parse_id(raw: str | None, *, name: str) -> int | None:
    """A keyset position (`?after=`, `?before=`): a whole number, or None when absent."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise BadRequest(
            _("%(name)s must be an id from a previous answer, got %(raw)r.") % {"name": name, "raw": raw[:50]},
            code="bad_cursor",
        )
    return int(raw)


class ConversationListView(APIView):
    """Visible conversations narrowed by the inbox's filters and folders, one keyset page at a time.

    The filters are parsed by the inbox's own parser, so a saved view or a link means the same in
    the browser and here. Unlike the inbox page, no status filter means every status (spam and merged
    too) unless a folder is given.
    """

    @extend_schema(
        operation_id="conversations_list",
        parameters=[
            OpenApiParameter("folder", str, description="a folder key from /api/v1/folders/ (mine, unassigned, …)"),
            OpenApiParameter("mailbox", str, description="mailbox address"),
            OpenApiParameter("status", str, description="status, or several separated by commas"),
            OpenApiParameter("priority", str, description="urgent, high, normal or low; several separated by commas"),
            OpenApiParameter("tag", str, description="tag name"),
            OpenApiParameter("assignee", str, description="me, nobody, or an agent's user id"),
            OpenApiParameter("contact", str, description="contact id, or one of the contact's addresses"),
            OpenApiParameter("after", OpenApiTypes.DATE, description="last activity on or after this day"),
            OpenApiParameter("before", OpenApiTypes.DATE, description="last activity on or before this day"),
            OpenApiParameter("q", str, description="text in subject, contact name or address, or message text"),
            OpenApiParameter("sort", str, description="newest (default), waiting (oldest waiting first) or priority"),
            OpenApiParameter("limit", int, description=f"page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"),
            OpenApiParameter("cursor", str, description="next_cursor of the previous page (with the same sort)"),
        ],
        responses={200: ConversationPageSerializer, **_BAD, **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        refuse_unknown_parameters(request, LIST_PARAMETERS)
        user = cast(User, request.user)  # IsAuthenticated let only signed-in users this far
        listing = folders.parse_list_query(user, params)
        rows = access.filter_conversations(user, listing.wanted)
        if "folder" in listing.params:
            rows = folders.in_folder(user, listing.folder, rows)
        limit = parse_limit(params.get("limit"))
        rows = rows.select_related("mailbox", "team", "assignee").prefetch_related("tags")
        page = keyset_page(rows, cursor=params.get("cursor"), limit=limit, sort=listing.sort)
        body = ConversationPageSerializer(
            {"results": page.rows, "next_cursor": page.next_cursor}, context={"request": request}
        ).data
        return Response(body)


class FolderListView(APIView):
    """The inbox folders with how many visible conversations each holds (counts stop at the cap)."""

    @extend_schema(operation_id="folders_list", responses={200: FolderListSerializer, **_BAD, **_ERRORS})
    def get(self, request: Request) -> Response:
        refuse_unknown_parameters(request, frozenset())
        user = cast(User, request.user)
        user_folders = folders.folders_for(user)
        counts = folders.folder_counts(user, user_folders)
        body = {
            "cap": folders.COUNT_CAP,
            "folders": [
                {"key": folder.key, "name": folder.label, "count": count, "capped": count >= folders.COUNT_CAP}
                for folder, count in zip(user_folders, counts, strict=True)
            ],
        }
        return Response(FolderListSerializer(body).data)


class ConversationDetailView(APIView):
    """One conversation with all its messages in order."""

    @extend_schema(operation_id="conversations_retrieve", responses={200: ConversationDetailSerializer, **_ERRORS})
    def get(self, request: Request, number: int) -> Response:
        conversation = access.access_conversation_by_number(request.user, number)
        return Response(ConversationDetailSerializer(conversation, context={"request": request}).data)


class MessageRawView(APIView):
    """The original mail bytes of a received message, as `message/rfc822`."""

    @extend_schema(operation_id="messages_raw", responses={(200, "message/rfc822"): _FILE, **_ERRORS})
    def get(self, request: Request, message_id: int) -> FileResponse:
        return raw_mail_response(access.access_message(request.user, message_id))


class AttachmentDownloadView(APIView):
    """An attachment's bytes, always as a download."""

    @extend_schema(operation_id="attachments_download", responses={(200, "application/octet-stream"): _FILE, **_ERRORS})
    def get(self, request: Request, attachment_id: int) -> FileResponse:
        return attachment_response(access.access_attachment(request.user, attachment_id))


class EventListView(APIView):
    """The conversation's timeline, oldest first, by id (ids only grow, so `?after=` also polls for what is new)."""

    @extend_schema(
        operation_id="conversations_events",
        parameters=[
            OpenApiParameter("after", int, description="only events with a larger id (e.g. your seen_event_id)"),
            OpenApiParameter("limit", int, description=f"page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"),
        ],
        responses={200: EventPageSerializer, **_BAD, **_ERRORS},
    )
    def get(self, request: Request, number: int) -> Response:
        conversation = access.access_conversation_by_number(request.user, number)
        refuse_unknown_parameters(request, frozenset({"after", "limit"}))
        after = parse_id(request.query_params.get("after"), name="after") or 0
        limit = parse_limit(request.query_params.get("limit"))
        # One extra row tells whether another page exists without counting.
        found = list(conversation.events.filter(id__gt=after).select_related("actor").order_by("id")[: limit + 1])
        more = len(found) > limit
        body = {"results": found[:limit], "next_after": found[limit - 1].pk if more else None}
        return Response(EventPageSerializer(body).data)


class DraftListView(APIView):
    """Everyone's unsent drafts on the conversation (yours included), most recently edited first."""

    @extend_schema(operation_id="conversations_drafts", responses={200: DraftSerializer(many=True), **_BAD, **_ERRORS})
    def get(self, request: Request, number: int) -> Response:
        conversation = access.access_conversation_by_number(request.user, number)
        refuse_unknown_parameters(request, frozenset())
        drafts = conversation.drafts.select_related("author").order_by("-updated_at", "-id")
        return Response(DraftSerializer(drafts, many=True).data)
