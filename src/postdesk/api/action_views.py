"""API v1 writes on conversations and messages: each finds its object through `access` (hidden is 404, like missing),
checks the JSON body, and makes exactly one call into `desk/actions.py`, which checks the rights (403) and the meaning.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from postdesk.api import idempotency
from postdesk.api import requests as shapes
from postdesk.api.errors import collision_body
from postdesk.api.serializers import (
    BulkResultSerializer,
    CollisionSerializer,
    ConversationSerializer,
    DraftSerializer,
    ErrorSerializer,
    MessageSerializer,
)
from postdesk.desk import access, actions
from postdesk.desk.errors import BadRequest
from postdesk.desk.models import Conversation, Message, Status

WRITE_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="the body is not valid JSON, or a field is wrong"),
    401: OpenApiResponse(ErrorSerializer, description="no token, or a token that is not valid"),
    403: OpenApiResponse(ErrorSerializer, description="you see it but may not do this (collaborators add notes only)"),
    404: OpenApiResponse(ErrorSerializer, description="does not exist, or you may not see it"),
}
_HELD = OpenApiResponse(CollisionSerializer, description="held: others acted since seen_event_id; nothing was sent")


def acting_user(request: Request) -> User:
    # IsAuthenticated, the default permission, lets only signed-in users this far.
    return cast(User, request.user)


def _conversation(request: Request, number: int) -> Conversation:
    return access.access_conversation_by_number(request.user, number)


def conversation_response(request: Request, number: int, code: int = status.HTTP_200_OK) -> Response:
    """The conversation's state after an action, read again through `access` as the caller sees it now."""
    conversation = access.access_conversation_by_number(request.user, number)
    return Response(ConversationSerializer(conversation, context={"request": request}).data, status=code)


def _message_response(request: Request, message: Message) -> Response:
    fresh = access.access_message(request.user, message.pk)
    return Response(MessageSerializer(fresh, context={"request": request}).data, status=status.HTTP_201_CREATED)


def _addresses(body: dict[str, Any], key: str, label: str, default: tuple[str, ...]) -> tuple[str, ...]:
    return actions.parse_addresses(body[key], label=label) if key in body else default


def _recipients(body: dict[str, Any], defaults: actions.Recipients) -> actions.Recipients:
    return actions.Recipients(
        to=_addresses(body, "to", _("To"), defaults.to),
        cc=_addresses(body, "cc", _("Cc"), defaults.cc),
        bcc=_addresses(body, "bcc", _("Bcc"), defaults.bcc),
    )


def _send(
    request: Request,
    conversation: Conversation,
    *,
    text: str,
    recipients: actions.Recipients,
    seen_event_id: int,
    confirm: bool,
    status_after: str = Status.PENDING,
    forward: bool = False,
) -> Response:
    """do_reply, answering 409 with what changed (and the event id to confirm against) when the send is held."""
    try:
        message = actions.do_reply(
            acting_user(request),
            conversation,
            text=text,
            recipients=recipients,
            seen_event_id=seen_event_id,
            confirm=confirm,
            status_after=status_after,
            forward=forward,
        )
    except actions.Collision as held:
        return Response(collision_body(held, actions.latest_event_id(conversation)), status=status.HTTP_409_CONFLICT)
    return _message_response(request, message)


class ReplyView(APIView):
    """Answer the customer: the reply is queued and sent after the undo window."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_reply",
        parameters=[idempotency.PARAMETER],
        request=shapes.ReplyRequestSerializer,
        responses={201: MessageSerializer, 409: _HELD, 422: idempotency.REUSED, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.ReplyRequestSerializer, request)
        defaults = actions.reply_recipients(conversation, reply_all=body["reply_all"])
        return idempotency.once(
            request,
            lambda: _send(
                request,
                conversation,
                text=body["text"],
                recipients=_recipients(body, defaults),
                seen_event_id=body["seen_event_id"],
                confirm=body["confirm"],
                status_after=body["status_after"],
            ),
        )


class ForwardView(APIView):
    """Forward the conversation to someone else; the customer is not written to and the status does not change."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_forward",
        parameters=[idempotency.PARAMETER],
        request=shapes.ForwardRequestSerializer,
        responses={201: MessageSerializer, 409: _HELD, 422: idempotency.REUSED, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.ForwardRequestSerializer, request)
        seen = body.get("seen_event_id")
        return idempotency.once(
            request,
            lambda: _send(
                request,
                conversation,
                forward=True,
                text=body["text"],
                recipients=_recipients(body, actions.Recipients(to=())),
                seen_event_id=seen or 0,
                # Without seen_event_id there is nothing to compare with: a forward answers no one, so it is not held.
                confirm=body["confirm"] or seen is None,
            ),
        )


class NoteView(APIView):
    """An internal note (collaborators may add them too); @mentions notify."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_note",
        parameters=[idempotency.PARAMETER],
        request=shapes.NoteRequestSerializer,
        responses={201: MessageSerializer, 422: idempotency.REUSED, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.NoteRequestSerializer, request)
        return idempotency.once(
            request,
            lambda: _message_response(request, actions.do_note(acting_user(request), conversation, text=body["text"])),
        )


def _agent(ref: str | int | None) -> User | None:
    """The user an assignment names by email, user name or id; None unassigns."""
    if ref is None:
        return None
    users = get_user_model().objects.order_by("pk")
    by = Q(pk=ref) if isinstance(ref, int) else Q(email__iexact=ref) | Q(username=ref)
    found = users.filter(by).first()
    if found is None:
        raise BadRequest(_("There is no agent %(who)s.") % {"who": ref}, code="unknown_agent")
    return found


class AssignView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_assign",
        request=shapes.AssignRequestSerializer,
        responses={200: ConversationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.AssignRequestSerializer, request)
        actions.do_assign(acting_user(request), conversation, _agent(body["assignee"]))
        return conversation_response(request, number)


class TakeView(APIView):
    """Assign the conversation to yourself."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_take", request=None, responses={200: ConversationSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        shapes.read_body(shapes.NoBodySerializer, request)
        actions.do_take(acting_user(request), conversation)
        return conversation_response(request, number)


class StatusView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_status",
        request=shapes.StatusRequestSerializer,
        responses={200: ConversationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.StatusRequestSerializer, request)
        actions.do_set_status(acting_user(request), conversation, body["status"])
        return conversation_response(request, number)


class PriorityView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_priority",
        request=shapes.PriorityRequestSerializer,
        responses={200: ConversationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.PriorityRequestSerializer, request)
        actions.do_set_priority(acting_user(request), conversation, body["priority"])
        return conversation_response(request, number)


class SnoozeView(APIView):
    """Hide the conversation until a time; it wakes then, or as soon as the customer writes."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_snooze",
        request=shapes.SnoozeRequestSerializer,
        responses={200: ConversationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.SnoozeRequestSerializer, request)
        actions.do_snooze(acting_user(request), conversation, body["until"])
        return conversation_response(request, number)


class TagsView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_tags",
        request=shapes.TagsRequestSerializer,
        responses={200: ConversationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.TagsRequestSerializer, request)
        if not body["add"] and not body["remove"]:
            raise BadRequest(_("Give tags to add or to remove."))
        actions.do_tag(acting_user(request), conversation, add=body["add"], remove=body["remove"])
        return conversation_response(request, number)


class FollowersView(APIView):
    """Follow (or stop following) the conversation yourself; collaborators may too."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_follow",
        request=shapes.FollowRequestSerializer,
        responses={200: ConversationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.FollowRequestSerializer, request)
        actions.do_follow(acting_user(request), conversation, follow=body["follow"])
        return conversation_response(request, number)


class MergeView(APIView):
    """Merge this conversation into another of the same mailbox; answers with the one that stays."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_merge",
        request=shapes.MergeRequestSerializer,
        responses={200: ConversationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        source = _conversation(request, number)
        body = shapes.read_body(shapes.MergeRequestSerializer, request)
        target = _conversation(request, body["into"])
        survivor = actions.do_merge(acting_user(request), source, target)
        return conversation_response(request, survivor.number)


class SpamView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_spam",
        request=shapes.SpamRequestSerializer,
        responses={200: ConversationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.SpamRequestSerializer, request)
        actions.do_mark_spam(acting_user(request), conversation, block_sender=body["block_sender"])
        return conversation_response(request, number)


class DraftView(APIView):
    """Your own draft on the conversation, saved as you type; teammates see it (GET …/drafts)."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_draft_save",
        request=shapes.DraftRequestSerializer,
        responses={
            200: DraftSerializer,
            204: OpenApiResponse(description="the text was empty: the draft is deleted"),
            **WRITE_ERRORS,
        },
    )
    def put(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.DraftRequestSerializer, request)
        given = any(key in body for key in ("to", "cc", "bcc"))
        draft = actions.do_save_draft(
            acting_user(request),
            conversation,
            kind=body["kind"],
            text=body["text"],
            recipients=_recipients(body, actions.Recipients(to=())) if given else None,
        )
        if draft is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(DraftSerializer(draft).data)

    @extend_schema(
        operation_id="conversations_draft_delete",
        request=None,
        responses={204: OpenApiResponse(description="deleted (or there was none)"), **WRITE_ERRORS},
    )
    def delete(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        actions.do_delete_drafts(acting_user(request), conversation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SplitView(APIView):
    """Move a customer's message into a new conversation; answers with the new conversation."""

    parser_classes = [JSONParser]

    @extend_schema(operation_id="messages_split", request=None, responses={201: ConversationSerializer, **WRITE_ERRORS})
    def post(self, request: Request, message_id: int) -> Response:
        message = access.access_message(request.user, message_id)
        shapes.read_body(shapes.NoBodySerializer, request)
        new = actions.do_split(acting_user(request), message)
        return conversation_response(request, new.number, status.HTTP_201_CREATED)


class BulkView(APIView):
    """One action on many conversations; each is checked as if done alone, and those not changed say why."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_bulk",
        request=shapes.BulkRequestSerializer,
        responses={200: BulkResultSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = shapes.read_body(shapes.BulkRequestSerializer, request)
        result = actions.do_bulk(acting_user(request), body["numbers"], body["action"], body["value"])
        return Response(BulkResultSerializer({"changed": result.changed, "errors": result.errors}).data)


class CategoryView(APIView):
    """Set the conversation's category: an agent's decision, recorded as such and used to train the classifier."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_category",
        request=shapes.CategoryRequestSerializer,
        responses={200: ConversationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.CategoryRequestSerializer, request)
        actions.do_set_category(acting_user(request), conversation, body["category"])
        return conversation_response(request, number)


class IncidentReplyView(APIView):
    """Answer every customer of the conversation's incident at once: one reply in each member conversation."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="conversations_incident_reply",
        request=shapes.IncidentReplyRequestSerializer,
        responses={200: BulkResultSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, number: int) -> Response:
        conversation = _conversation(request, number)
        body = shapes.read_body(shapes.IncidentReplyRequestSerializer, request)
        result = actions.do_reply_incident(
            acting_user(request), conversation, text=body["text"], status_after=body["status_after"]
        )
        return Response(BulkResultSerializer({"changed": result.changed, "errors": result.errors}).data)
