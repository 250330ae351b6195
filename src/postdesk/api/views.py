"""API v1 endpoints: conversation list and detail, raw mail and attachment downloads; all reads go through access.py."""

from __future__ import annotations

from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from postdesk.api.downloads import attachment_response, raw_mail_response
from postdesk.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, keyset_page, parse_limit
from postdesk.api.serializers import ConversationDetailSerializer, ConversationPageSerializer, ErrorSerializer
from postdesk.desk import access
from postdesk.desk.errors import BadRequest

LIST_PARAMETERS = frozenset({"mailbox", "status", "contact", "q", "limit", "cursor"})

_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="no token, or a token that is not valid"),
    404: OpenApiResponse(ErrorSerializer, description="does not exist, or you may not see it"),
}
_FILE = OpenApiResponse(OpenApiTypes.BINARY, description="the file, as an attachment download")


class ConversationListView(APIView):
    """Visible conversations, newest activity first, one keyset page at a time."""

    @extend_schema(
        operation_id="conversations_list",
        parameters=[
            OpenApiParameter("mailbox", str, description="mailbox address"),
            OpenApiParameter("status", str, description="status, or several separated by commas"),
            OpenApiParameter("contact", str, description="contact id, or one of the contact's addresses"),
            OpenApiParameter("q", str, description="text in subject, contact name or address, or message text"),
            OpenApiParameter("limit", int, description=f"page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"),
            OpenApiParameter("cursor", str, description="next_cursor of the previous page"),
        ],
        responses={200: ConversationPageSerializer, 400: ErrorSerializer, **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        unknown = sorted(set(params) - LIST_PARAMETERS)
        if unknown:
            raise BadRequest(
                _("Unknown parameter %(names)s; this list takes: %(valid)s.")
                % {"names": ", ".join(unknown), "valid": ", ".join(sorted(LIST_PARAMETERS))},
                code="bad_filter",
            )
        wanted = access.ConversationFilter(
            mailbox=params.get("mailbox", ""),
            statuses=access.parse_statuses(params.get("status", "")),
            contact=params.get("contact", ""),
            q=params.get("q", ""),
        )
        limit = parse_limit(params.get("limit"))
        rows = access.filter_conversations(request.user, wanted).select_related("mailbox", "team", "assignee")
        page = keyset_page(rows, cursor=params.get("cursor"), limit=limit)
        body = ConversationPageSerializer(
            {"results": page.rows, "next_cursor": page.next_cursor}, context={"request": request}
        ).data
        return Response(body)


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
