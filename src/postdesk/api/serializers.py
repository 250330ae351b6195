"""Output shapes of API v1: list rows, a conversation with its messages and timeline, drafts, the personal things
(saved views, notifications, folder counts) and the error bodies. Request bodies are in `requests.py`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from postdesk.desk import actions
from postdesk.desk.models import (
    Attachment,
    Conversation,
    Draft,
    Event,
    Message,
    Notification,
    OutboundMail,
    SavedView,
)


class ErrorDetailSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="stable machine-readable name, e.g. not_found, bad_cursor")
    message = serializers.CharField(help_text="what went wrong, for people")


class ErrorSerializer(serializers.Serializer[Any]):
    """Every error answer: `{"error": {"code": ..., "message": ...}}`."""

    error = ErrorDetailSerializer()


class CollisionDetailSerializer(ErrorDetailSerializer):
    changes = serializers.ListField(
        child=serializers.CharField(), help_text="what others did since seen_event_id, oldest first"
    )
    latest_event_id = serializers.IntegerField(
        help_text="the conversation's newest event now; send it as seen_event_id after checking the changes"
    )


class CollisionSerializer(serializers.Serializer[Any]):
    """409: the reply was held because someone else acted since `seen_event_id`; nothing was sent."""

    error = CollisionDetailSerializer()


def _username(user: User | None) -> str | None:
    return user.get_username() if user is not None else None


class ContactRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="contact_id")
    name = serializers.CharField(source="contact_name")
    address = serializers.CharField(source="contact_address")


class ConversationRowSerializer(serializers.ModelSerializer[Conversation]):
    """What a list row shows; read from the conversation row only (no message bodies), tags prefetched."""

    mailbox = serializers.CharField(source="mailbox.address")
    contact = ContactRefSerializer(source="*")
    team = serializers.CharField(source="team.name", allow_null=True)
    assignee = serializers.CharField(
        source="assignee.get_username", allow_null=True, help_text="the assigned agent's user name (their email)"
    )
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "number",
            "subject",
            "status",
            "priority",
            "mailbox",
            "contact",
            "team",
            "assignee",
            "tags",
            "message_count",
            "snippet",
            "has_attachments",
            "snoozed_until",
            "waiting_since",
            "created_at",
            "last_message_at",
            "language",
            "category",
            "sla_due_at",
        ]
        read_only_fields = fields

    def get_tags(self, conversation: Conversation) -> list[str]:
        # .all() so a prefetch_related("tags") serves every row of a page from one query.
        return sorted(tag.name for tag in conversation.tags.all())


class ConversationPageSerializer(serializers.Serializer[Any]):
    results = ConversationRowSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="pass as ?cursor= for the next page; null on the last page"
    )


class IncidentRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    title = serializers.CharField()


class ConversationSerializer(ConversationRowSerializer):
    """A conversation's state without its messages: what every action answers with."""

    followers = serializers.SerializerMethodField(help_text="user names of the agents who follow it")
    merged_into = serializers.SerializerMethodField(help_text="the number of the conversation this one went into")
    latest_event_id = serializers.SerializerMethodField(
        help_text="the newest timeline event; send it as seen_event_id with a reply"
    )
    duplicate_of = serializers.SerializerMethodField(
        help_text="the number of the customer's open conversation this one asks again about"
    )
    incident = serializers.SerializerMethodField(help_text="the incident it is grouped into: id and title")
    sla_policy = serializers.CharField(source="sla_policy.name", allow_null=True, default=None)

    class Meta(ConversationRowSerializer.Meta):
        fields = [
            *ConversationRowSerializer.Meta.fields,
            "followers",
            "merged_into",
            "latest_event_id",
            "category_confidence",
            "category_source",
            "priority_source",
            "priority_confidence",
            "duplicate_of",
            "incident",
            "sla_policy",
            "first_response_due_at",
            "next_response_due_at",
            "resolution_due_at",
            "first_responded_at",
            "acknowledged_at",
        ]
        read_only_fields = fields

    def get_duplicate_of(self, conversation: Conversation) -> int | None:
        original = conversation.duplicate_of
        return original.number if original is not None else None

    @extend_schema_field(IncidentRefSerializer(allow_null=True))
    def get_incident(self, conversation: Conversation) -> dict[str, object] | None:
        incident = conversation.incident
        return {"id": incident.pk, "title": incident.title} if incident is not None else None

    def get_followers(self, conversation: Conversation) -> list[str]:
        return sorted(user.get_username() for user in conversation.followers.all())

    def get_merged_into(self, conversation: Conversation) -> int | None:
        return conversation.merged_into.number if conversation.merged_into is not None else None

    def get_latest_event_id(self, conversation: Conversation) -> int:
        return actions.latest_event_id(conversation)


class AddressSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    address = serializers.CharField()


def _absolute(context: dict[str, Any], path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class AttachmentSerializer(serializers.ModelSerializer[Attachment]):
    url = serializers.SerializerMethodField(help_text="download address (served as an attachment)")

    class Meta:
        model = Attachment
        fields = ["id", "filename", "content_type", "size", "sha256", "content_id", "inline", "enclosed_in", "url"]
        read_only_fields = fields

    def get_url(self, attachment: Attachment) -> str:
        return _absolute(self.context, reverse("api:attachment-download", args=[attachment.pk]))


class OutboundSerializer(serializers.ModelSerializer[OutboundMail]):
    """Where a mail we send is: queued (undo window, or waiting to retry), sending, sent, failed or cancelled."""

    class Meta:
        model = OutboundMail
        fields = ["state", "attempts", "last_error", "send_after", "sent_at"]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer[Message]):
    from_ = serializers.SerializerMethodField(method_name="get_from")
    in_reply_to = serializers.ListField(child=serializers.CharField(), help_text="Message-IDs, without <>")
    references = serializers.ListField(child=serializers.CharField(), help_text="Message-IDs, without <>")
    to = AddressSerializer(many=True)
    cc = AddressSerializer(many=True)
    bcc = AddressSerializer(many=True, help_text="only on mail we send")
    reply_to = AddressSerializer(many=True)
    problems = serializers.SerializerMethodField()
    attachments = AttachmentSerializer(many=True)
    html = serializers.CharField(help_text="sanitised HTML body; show it only in a sandboxed frame")
    raw_url = serializers.SerializerMethodField(help_text="the original mail; null for replies and notes")
    author = serializers.SerializerMethodField(help_text="user name of the agent who wrote a reply or note")
    outbound = serializers.SerializerMethodField(help_text="delivery of a reply or forward; null for other messages")

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "message_id",
            "in_reply_to",
            "references",
            "from_",
            "to",
            "cc",
            "bcc",
            "reply_to",
            "date",
            "subject",
            "text",
            "html",
            "visible_text",
            "visible_html",
            "quoted_text",
            "signature",
            "automated_kind",
            "problems",
            "attachments",
            "raw_url",
            "author",
            "forwarded",
            "outbound",
            "created_at",
        ]
        read_only_fields = fields

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "from" is a Python keyword, so the field is declared as from_ and renamed here, in place.
        return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}

    @extend_schema_field(AddressSerializer)
    def get_from(self, message: Message) -> dict[str, str]:
        return {"name": message.from_name, "address": message.from_address}

    @extend_schema_field(
        {
            "type": "array",
            "items": {"type": "object", "properties": {"code": {"type": "string"}, "detail": {"type": "string"}}},
        }
    )
    def get_problems(self, message: Message) -> list[dict[str, str]]:
        return [
            {"code": str(p.get("code", "")), "detail": str(p.get("detail", ""))}
            for p in message.problems
            if isinstance(p, dict)
        ]

    def get_raw_url(self, message: Message) -> str | None:
        if message.received_mail_id is None:
            return None
        return _absolute(self.context, reverse("api:message-raw", args=[message.pk]))

    def get_author(self, message: Message) -> str | None:
        return _username(message.author)

    @extend_schema_field(OutboundSerializer(allow_null=True))
    def get_outbound(self, message: Message) -> dict[str, Any] | None:
        try:
            outbound = message.outbound
        except OutboundMail.DoesNotExist:
            return None
        return dict(OutboundSerializer(outbound).data)


def thread_messages(conversation: Conversation) -> list[Message]:
    """The conversation's messages in order, with what the serializer reads fetched in a fixed number of queries."""
    return list(
        conversation.messages.order_by("created_at", "id")
        .select_related("received_mail", "author", "outbound")
        .prefetch_related("attachments")
    )


class ConversationDetailSerializer(ConversationSerializer):
    messages = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages"]
        read_only_fields = fields

    @extend_schema_field(MessageSerializer(many=True))
    def get_messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        return list(MessageSerializer(thread_messages(conversation), many=True, context=self.context).data)


class EventSerializer(serializers.ModelSerializer[Event]):
    """One timeline entry: who (null: the customer or the system) did what, when; `data` depends on `kind`."""

    actor = serializers.SerializerMethodField(help_text="user name of the agent; null for the customer or the system")
    message = serializers.IntegerField(source="message_id", allow_null=True, help_text="the message it is about")

    class Meta:
        model = Event
        fields = ["id", "kind", "actor", "message", "data", "created_at"]
        read_only_fields = fields
        extra_kwargs = {
            "data": {"help_text": "details by kind, e.g. status: {before, after}; assigned: {assignee, assignee_name}"}
        }

    def get_actor(self, event: Event) -> str | None:
        return _username(event.actor)


class EventPageSerializer(serializers.Serializer[Any]):
    results = EventSerializer(many=True)
    next_after = serializers.IntegerField(
        allow_null=True, help_text="pass as ?after= for the next page; null when there are no more events yet"
    )


class DraftSerializer(serializers.ModelSerializer[Draft]):
    author = serializers.SerializerMethodField(help_text="user name of the agent writing it")
    to = serializers.ListField(child=serializers.CharField())
    cc = serializers.ListField(child=serializers.CharField())
    bcc = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Draft
        fields = ["id", "author", "kind", "to", "cc", "bcc", "text", "updated_at"]
        read_only_fields = fields

    def get_author(self, draft: Draft) -> str:
        return draft.author.get_username()


class BulkResultSerializer(serializers.Serializer[Any]):
    changed = serializers.IntegerField(help_text="how many conversations the action changed")
    # DRF's metaclass moves declared fields off the class, so Serializer.errors itself stays untouched.
    errors = serializers.ListField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text="one sentence per conversation that was not changed, and why"
    )


class SavedViewSerializer(serializers.ModelSerializer[SavedView]):
    filters = serializers.DictField(child=serializers.CharField(), help_text="the list filters, as query parameters")

    class Meta:
        model = SavedView
        fields = ["id", "name", "filters", "created_at"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    conversation = serializers.IntegerField(source="conversation.number", help_text="the conversation's number")
    event = serializers.IntegerField(source="event_id", allow_null=True, help_text="the timeline event it is about")

    class Meta:
        model = Notification
        fields = ["id", "conversation", "event", "text", "read_at", "created_at"]
        read_only_fields = fields


class NotificationPageSerializer(serializers.Serializer[Any]):
    results = NotificationSerializer(many=True)
    next_before = serializers.IntegerField(allow_null=True, help_text="pass as ?before= for the next (older) page")


class FolderSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(
        help_text="pass as ?folder= to the list: unassigned, mine, team-<id>, open, pending, snoozed, resolved, "
        "spam, or '' for all conversations"
    )
    name = serializers.CharField()
    count = serializers.IntegerField(help_text="exact unless capped")
    capped = serializers.BooleanField(help_text="the count stopped at the cap: there are at least this many")


class FolderListSerializer(serializers.Serializer[Any]):
    folders = FolderSerializer(many=True)
    cap = serializers.IntegerField(help_text="counts stop at this number")
