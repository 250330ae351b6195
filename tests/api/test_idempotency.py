"""Idempotency-Key on the API writes that send or store mail: a client retrying after a lost answer sends once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from test_actions_api import Desk, assert_error, latest
from test_actions_api import desk as desk  # the fixture, shared

from postdesk.desk.models import Direction, IdempotentRequest, Message, OutboundMail

pytestmark = pytest.mark.django_db


def post(client: Client, url: str, body: Any, key: str | None) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(url, json.dumps(body), content_type="application/json", headers=headers)


def outbound_count(desk: Desk) -> int:
    return Message.objects.filter(conversation=desk.conversation, direction=Direction.OUTBOUND).count()


def test_a_retried_reply_with_the_same_key_sends_once_and_answers_the_same(desk):  # type: ignore[no-untyped-def]
    body = {"text": "Your parcel left today.", "seen_event_id": latest(desk.ann_api, desk)}
    first = post(desk.ann_api, desk.url + "replies", body, "retry-1")
    again = post(desk.ann_api, desk.url + "replies", body, "retry-1")
    assert first.status_code == again.status_code == 201, again.content
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert outbound_count(desk) == 1
    assert OutboundMail.objects.filter(message__conversation=desk.conversation).count() == 1


def test_without_a_key_each_post_is_a_new_reply(desk):  # type: ignore[no-untyped-def]
    for _ in range(2):
        body = {"text": "Another word.", "seen_event_id": latest(desk.ann_api, desk)}
        assert post(desk.ann_api, desk.url + "replies", body, None).status_code == 201
    assert outbound_count(desk) == 2


def test_the_same_key_with_a_different_body_is_refused(desk):  # type: ignore[no-untyped-def]
    seen = latest(desk.ann_api, desk)
    assert post(desk.ann_api, desk.url + "replies", {"text": "One", "seen_event_id": seen}, "k").status_code == 201
    refused = post(desk.ann_api, desk.url + "replies", {"text": "Two", "seen_event_id": seen}, "k")
    assert "different request" in assert_error(refused, 422, "idempotency_key_reused")
    assert outbound_count(desk) == 1


def test_keys_belong_to_one_agent(desk):  # type: ignore[no-untyped-def]
    body = {"text": "Ann's answer.", "seen_event_id": latest(desk.ann_api, desk)}
    assert post(desk.ann_api, desk.url + "replies", body, "shared").status_code == 201
    # Bob's request with the same key is his own: it is held (Ann replied since), not Ann's answer replayed.
    held = post(desk.bob_api, desk.url + "replies", body, "shared")
    assert held.status_code == 409
    assert "Idempotent-Replayed" not in held


def test_a_refused_request_keeps_no_key_so_the_fixed_retry_goes_through(desk):  # type: ignore[no-untyped-def]
    stale = {"text": "Hello", "seen_event_id": 0}
    post(desk.bob_api, desk.url + "notes", {"text": "bump"}, None)
    held = post(desk.ann_api, desk.url + "replies", stale, "fix-me")
    assert held.status_code == 409
    assert not IdempotentRequest.objects.filter(key="fix-me").exists()
    fixed = {"text": "Hello", "seen_event_id": latest(desk.ann_api, desk)}
    assert post(desk.ann_api, desk.url + "replies", fixed, "fix-me").status_code == 201
    assert outbound_count(desk) == 1


def test_notes_and_forwards_are_idempotent_too(desk):  # type: ignore[no-untyped-def]
    note = {"text": "Checked with the warehouse."}
    assert post(desk.ann_api, desk.url + "notes", note, "n1").status_code == 201
    assert post(desk.ann_api, desk.url + "notes", note, "n1").status_code == 201
    assert Message.objects.filter(conversation=desk.conversation, direction=Direction.NOTE).count() == 1
    forward = {"text": "FYI", "to": "ops@example.org"}
    assert post(desk.ann_api, desk.url + "forwards", forward, "f1").status_code == 201
    assert post(desk.ann_api, desk.url + "forwards", forward, "f1").status_code == 201
    assert Message.objects.filter(conversation=desk.conversation, forwarded=True).count() == 1


@pytest.mark.parametrize("key", ["", " ", "x" * 201, "bad\nkey"])
def test_a_malformed_key_is_a_clear_400(desk, key):  # type: ignore[no-untyped-def]
    body = {"text": "Hi", "seen_event_id": latest(desk.ann_api, desk)}
    headers = {"Idempotency-Key": key}
    response = desk.ann_api.post(
        desk.url + "replies", json.dumps(body), content_type="application/json", headers=headers
    )
    assert "Idempotency-Key" in assert_error(response, 400)
    assert outbound_count(desk) == 0
