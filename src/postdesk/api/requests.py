"""Request bodies of API v1: strict JSON shapes, checked before anything reaches `desk/actions.py`.

Fields are strict on purpose: DRF would turn `42` into `"42"` or `"yes"` into `true`, which hides a
client's mistakes. A body with a key we do not know is refused too, so a typo (`"asignee"`) is an
error rather than a silent no-op. Meaning (is this status settable, is this address valid, is this
time in the future) is checked by the service layer, whose messages the client then sees.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from postdesk.api.errors import flatten
from postdesk.desk.errors import BadRequest
from postdesk.desk.models import DraftKind, Status

MAX_ID = 2**63 - 1  # beyond any database id: larger numbers are refused rather than overflowing a query


class StrictCharField(serializers.CharField):
    """A JSON string, nothing else."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false, nothing else."""

    default_error_messages = {"invalid": gettext_lazy("Must be true or false.")}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class WholeNumberField(serializers.IntegerField):
    """A JSON whole number (not a string, not a boolean, not 1.0)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": 'one string of addresses separated by commas ("Ann <ann@example.com>, bob@example.com"), '
        "or a list of such strings",
    }
)
class AddressesField(serializers.Field[Any, Any, Any, Any]):
    """Addresses as a string or a list of strings; `actions.parse_addresses` checks them (and refuses CR/LF)."""

    default_error_messages = {"invalid": gettext_lazy("Give addresses as a string or a list of strings.")}

    def to_internal_value(self, data: Any) -> str | list[str]:
        if isinstance(data, str):
            return data
        if isinstance(data, list) and all(isinstance(item, str) for item in data):
            return list(data)
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "integer"}],
        "nullable": True,
        "description": "the agent's email (or user name), or their user id; null to unassign",
    }
)
class AgentRefField(serializers.Field[Any, Any, Any, Any]):
    default_error_messages = {"invalid": gettext_lazy("Give an agent's email or user id, or null.")}

    def to_internal_value(self, data: Any) -> str | int:
        if isinstance(data, str) and data.strip():
            return data.strip()
        if isinstance(data, int) and not isinstance(data, bool) and 0 < data <= MAX_ID:
            return data
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field[Any, Any, Any, Any]):
    """ISO 8601 with its offset (`2026-11-24T09:00:00+01:00` or `…Z`): a time without one means nothing here."""

    default_error_messages = {
        "invalid": gettext_lazy("Give a time in ISO 8601, such as 2026-11-24T09:00:00+01:00."),
        "naive": gettext_lazy("Give the time with its offset from UTC, such as +01:00 or Z."),
    }

    def to_internal_value(self, data: Any) -> datetime:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            when = datetime.fromisoformat(data.strip())
        except ValueError:
            self.fail("invalid")
        if when.tzinfo is None:
            self.fail("naive")
        return when

    def to_representation(self, value: Any) -> Any:
        return value


def _text(**kwargs: Any) -> StrictCharField:
    # Bodies keep their whitespace (indentation, signatures); the service layer decides what is empty.
    return StrictCharField(allow_blank=True, trim_whitespace=False, **kwargs)


class ReplyRequestSerializer(serializers.Serializer[Any]):
    text = _text(help_text="the answer, plain text; the mailbox's signature is added")
    to = AddressesField(required=False, help_text="default: the customer (their Reply-To if they gave one)")
    cc = AddressesField(required=False, help_text="default: none, or with reply_all the others the customer wrote to")
    bcc = AddressesField(required=False)
    reply_all = StrictBooleanField(default=False)
    seen_event_id = WholeNumberField(
        help_text="latest_event_id of the conversation as you read it: a reply is held (409) if others acted since"
    )
    confirm = StrictBooleanField(default=False, help_text="send even though others acted since seen_event_id")
    status_after = StrictCharField(default=Status.PENDING, help_text="open, pending (default), resolved or closed")


class ForwardRequestSerializer(serializers.Serializer[Any]):
    to = AddressesField(help_text="who to forward the conversation to")
    cc = AddressesField(required=False)
    bcc = AddressesField(required=False)
    text = _text(help_text="a few words above the forwarded conversation")
    seen_event_id = WholeNumberField(required=False, help_text="give it to be warned (409) if others acted since")
    confirm = StrictBooleanField(default=False)


class NoteRequestSerializer(serializers.Serializer[Any]):
    text = _text(help_text="internal note; @ann or @ann@example.org notifies that agent")


class AssignRequestSerializer(serializers.Serializer[Any]):
    assignee = AgentRefField(allow_null=True)


class StatusRequestSerializer(serializers.Serializer[Any]):
    status = StrictCharField(help_text="open, pending, resolved or closed (snooze, spam and merge have their own)")


class PriorityRequestSerializer(serializers.Serializer[Any]):
    priority = StrictCharField(help_text="urgent, high, normal or low")


class CategoryRequestSerializer(serializers.Serializer[Any]):
    category = StrictCharField(
        allow_blank=True, help_text="at most 100 characters; '' clears it. The classifier learns from it."
    )


class SnoozeRequestSerializer(serializers.Serializer[Any]):
    until = AwareDateTimeField(help_text="ISO 8601 with offset; at most a year ahead")


class TagsRequestSerializer(serializers.Serializer[Any]):
    add = serializers.ListField(child=StrictCharField(), default=list, help_text="tag names to add")
    remove = serializers.ListField(child=StrictCharField(), default=list, help_text="tag names to remove")


class FollowRequestSerializer(serializers.Serializer[Any]):
    follow = StrictBooleanField(default=True, help_text="false to stop following")


class MergeRequestSerializer(serializers.Serializer[Any]):
    into = WholeNumberField(help_text="number of the conversation that stays (same mailbox)")


class SpamRequestSerializer(serializers.Serializer[Any]):
    block_sender = StrictBooleanField(default=False, help_text="file the sender's later mail as spam too")


class DraftRequestSerializer(serializers.Serializer[Any]):
    kind = StrictCharField(default=DraftKind.REPLY, help_text="reply (default), note or forward")
    text = _text(default="", help_text="an empty text deletes the draft")
    to = AddressesField(required=False)
    cc = AddressesField(required=False)
    bcc = AddressesField(required=False)


class BulkRequestSerializer(serializers.Serializer[Any]):
    numbers = serializers.ListField(child=WholeNumberField(), help_text="conversation numbers, at most 500")
    action = StrictCharField(help_text="assign, status, priority, tag, spam or merge")
    value = StrictCharField(
        default="",
        allow_blank=True,
        help_text="assign: agent email or id ('' or 'nobody' unassigns); status, priority, tag: the value",
    )


class SavedViewRequestSerializer(serializers.Serializer[Any]):
    name = StrictCharField(help_text="at most 100 characters; saving under an existing name replaces it")
    filters = serializers.DictField(
        child=StrictCharField(allow_blank=True),
        default=dict,
        help_text="list filters: mailbox, status, tag, assignee, priority, contact, after, before, q, sort, folder",
    )


class NoBodySerializer(serializers.Serializer[Any]):
    """Actions that need nothing more than their address; a body with fields is refused."""


def read_body(shape: type[serializers.Serializer[Any]], request: Request) -> dict[str, Any]:
    """The request's JSON body checked against `shape`; anything wrong is one `BadRequest` naming every problem."""
    data = request.data
    if not isinstance(data, dict):
        raise BadRequest(_("The body must be a JSON object."))
    checked = shape(data=data)
    unknown = sorted(set(data) - set(checked.fields))
    if unknown:
        valid = ", ".join(checked.fields) or _("no fields")
        raise BadRequest(
            _("Unknown field %(names)s; this takes: %(valid)s.") % {"names": ", ".join(unknown), "valid": valid}
        )
    if not checked.is_valid():
        raise BadRequest(flatten(checked.errors))
    return dict(checked.validated_data)


class AvailabilityRequestSerializer(serializers.Serializer[Any]):
    availability = StrictCharField(help_text="online, away or offline")
    release = StrictBooleanField(
        default=False, help_text="only with offline: give your new and open conversations back to the team queue"
    )


class IncidentReplyRequestSerializer(serializers.Serializer[Any]):
    text = _text(
        help_text="the answer every customer of the incident gets, plain text; each mailbox's signature is added"
    )
    status_after = StrictCharField(default=Status.PENDING, help_text="open, pending (default), resolved or closed")
