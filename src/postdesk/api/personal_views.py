"""API v1 for the caller's own: saved views, notifications, availability. Nobody, not even an admin, sees another's."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from postdesk.api import requests as shapes
from postdesk.api.action_views import WRITE_ERRORS, acting_user
from postdesk.api.serializers import (
    ErrorSerializer,
    NotificationPageSerializer,
    NotificationSerializer,
    SavedViewSerializer,
)
from postdesk.api.views import parse_id, refuse_unknown_parameters
from postdesk.desk import access, actions, routing
from postdesk.desk.errors import BadRequest
from postdesk.desk.models import Notification, SavedView
from postdesk.desk.pagination import DEFAULT_LIMIT, MAX_LIMIT, parse_limit

_READ_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="a query parameter is unknown or malformed"),
    401: OpenApiResponse(ErrorSerializer, description="no token, or a token that is not valid"),
}


class SavedViewListView(APIView):
    """Your saved views (named list filters), by name; POST saves one."""

    parser_classes = [JSONParser]

    @extend_schema(operation_id="views_list", responses={200: SavedViewSerializer(many=True), **_READ_ERRORS})
    def get(self, request: Request) -> Response:
        refuse_unknown_parameters(request, frozenset())
        views = SavedView.objects.filter(owner_id=request.user.pk).order_by("name", "id")
        return Response(SavedViewSerializer(views, many=True).data)

    @extend_schema(
        operation_id="views_save",
        request=shapes.SavedViewRequestSerializer,
        responses={201: SavedViewSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = shapes.read_body(shapes.SavedViewRequestSerializer, request)
        view = actions.do_save_view(acting_user(request), body["name"], body["filters"])
        return Response(SavedViewSerializer(view).data, status=status.HTTP_201_CREATED)


class SavedViewDetailView(APIView):
    @extend_schema(
        operation_id="views_delete",
        request=None,
        responses={204: OpenApiResponse(description="deleted"), **WRITE_ERRORS},
    )
    def delete(self, request: Request, view_id: int) -> Response:
        actions.do_delete_view(acting_user(request), view_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _my_notifications(request: Request) -> QuerySet[Notification]:
    # Only about conversations the caller still sees: one moved to another team takes its notifications along.
    return Notification.objects.filter(
        recipient_id=request.user.pk, conversation__in=access.visible_conversations(request.user)
    )


def _parse_unread(raw: str | None) -> bool | None:
    if raw in (None, ""):
        return None
    if raw in ("true", "false"):
        return raw == "true"
    raise BadRequest(_("unread must be true or false, got %(raw)r.") % {"raw": str(raw)[:50]}, code="bad_filter")


class NotificationListView(APIView):
    """Your notifications (mentions, failed sends), newest first."""

    @extend_schema(
        operation_id="notifications_list",
        parameters=[
            OpenApiParameter("unread", bool, description="true: only unread; false: only read"),
            OpenApiParameter("before", int, description="next_before of the previous page"),
            OpenApiParameter("limit", int, description=f"page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"),
        ],
        responses={200: NotificationPageSerializer, **_READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        refuse_unknown_parameters(request, frozenset({"unread", "before", "limit"}))
        unread = _parse_unread(params.get("unread"))
        before = parse_id(params.get("before"), name="before")
        limit = parse_limit(params.get("limit"))
        rows = _my_notifications(request).select_related("conversation").order_by("-id")
        if unread is not None:
            rows = rows.filter(read_at__isnull=unread)
        if before is not None:
            rows = rows.filter(id__lt=before)
        found = list(rows[: limit + 1])
        more = len(found) > limit
        body = {"results": found[:limit], "next_before": found[limit - 1].pk if more else None}
        return Response(NotificationPageSerializer(body).data)


class NotificationReadView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="notifications_read", request=None, responses={200: NotificationSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, notification_id: int) -> Response:
        shapes.read_body(shapes.NoBodySerializer, request)
        return Response(
            NotificationSerializer(actions.do_mark_notification_read(acting_user(request), notification_id)).data
        )


class AvailabilitySerializer(serializers.Serializer[Any]):
    availability = serializers.CharField(help_text="online, away or offline: what you set")
    on_shift = serializers.BooleanField(help_text="your shift schedule is open now (always, without one)")
    open_count = serializers.IntegerField(help_text="your new and open conversations: what your capacity counts")
    capacity = serializers.IntegerField(allow_null=True, help_text="at most this many open; null: no limit")
    released = serializers.IntegerField(help_text="conversations this request gave back to the team queue")


def _availability_body(request: Request, released: int = 0) -> dict[str, object]:
    state = routing.availability_of(acting_user(request))
    return {
        "availability": state.availability,
        "on_shift": state.on_shift,
        "open_count": state.open_count,
        "capacity": state.capacity,
        "released": released,
    }


class AvailabilityView(APIView):
    """Your availability for routing: online, away (no new conversations) or offline. Collaborators have none (403)."""

    parser_classes = [JSONParser]

    @extend_schema(operation_id="me_availability", responses={200: AvailabilitySerializer, **_READ_ERRORS})
    def get(self, request: Request) -> Response:
        refuse_unknown_parameters(request, frozenset())
        return Response(AvailabilitySerializer(_availability_body(request)).data)

    @extend_schema(
        operation_id="me_availability_set",
        request=shapes.AvailabilityRequestSerializer,
        responses={200: AvailabilitySerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = shapes.read_body(shapes.AvailabilityRequestSerializer, request)
        released = routing.set_availability(acting_user(request), body["availability"], release=body["release"])
        return Response(AvailabilitySerializer(_availability_body(request, released)).data)
