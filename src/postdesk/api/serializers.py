"""Output shapes of API v1: list rows, a conversation with its messages, attachments, and the error body."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from postdesk.desk.models import Attachment, Conversation, Message


class ErrorDetailSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="stable machine-readable name, e.g. not_found, bad_cursor")
    message = serializers.CharField(help_text="what went wrong, for people")


class ErrorSerializer(serializers.Serializer[Any]):
    """Every error answer: `{"error": {"code": ..., "message": ...}}`."""

    error = ErrorDetailSerializer()


class ContactRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="contact_id")
    name = serializers.CharField(source="contact_name")
    address = serializers.CharField(source="contact_address")


class ConversationRowSerializer(serializers.ModelSerializer[Conversation]):
    """What a list row shows; read from the conversation row only (no message bodies)."""

    mailbox = serializers.CharField(source="mailbox.address")
    contact = ContactRefSerializer(source="*")
    team = serializers.CharField(source="team.name", allow_null=True)
    assignee = serializers.CharField(source="assignee.get_username", allow_null=True)

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
            "message_count",
            "snippet",
            "has_attachments",
            "created_at",
            "last_message_at",
        ]
        read_only_fields = fields


class ConversationPageSerializer(serializers.Serializer[Any]):
    results = ConversationRowSerializer(many=True)
    next_cursor = serializers.CharField(
        allow_null=True, help_text="pass as ?cursor= for the next page; null on the last page"
    )


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


class MessageSerializer(serializers.ModelSerializer[Message]):
    from_ = serializers.SerializerMethodField(method_name="get_from")
    to = AddressSerializer(many=True)
    cc = AddressSerializer(many=True)
    reply_to = AddressSerializer(many=True)
    problems = serializers.SerializerMethodField()
    attachments = AttachmentSerializer(many=True)
    html = serializers.CharField(help_text="sanitised HTML body; show it only in a sandboxed frame")
    raw_url = serializers.SerializerMethodField(help_text="the original mail; null for replies and notes")

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "message_id",
            "from_",
            "to",
            "cc",
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


class ConversationDetailSerializer(ConversationRowSerializer):
    messages = serializers.SerializerMethodField()

    class Meta(ConversationRowSerializer.Meta):
        fields = [*ConversationRowSerializer.Meta.fields, "messages"]
        read_only_fields = fields

    @extend_schema_field(MessageSerializer(many=True))
    def get_messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        messages = (
            conversation.messages.order_by("created_at", "id")
            .select_related("received_mail")
            .prefetch_related("attachments")
        )
        return list(MessageSerializer(messages, many=True, context=self.context).data)
