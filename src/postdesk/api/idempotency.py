"""Idempotency-Key for API writes that send or store mail: a retry after a lost answer gets the first answer back.

The key's row is inserted in the same transaction as the work, before it: a second request with the same
key waits for the first (PostgreSQL's unique index; SQLite's single writer) and then finds the stored
answer instead of sending again. Only successful answers are kept; a refused request (400, 403, 404, 409)
leaves no row, so the client may fix it and retry with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from postdesk.api.errors import error_body
from postdesk.desk.errors import BadRequest
from postdesk.desk.models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Optional. A retry with the same key and body returns the first answer and sends nothing again.",
)
REUSED = OpenApiResponse(description="the Idempotency-Key was already used for a different request")


class _Refused(Exception):
    """Carries a non-2xx answer out of the transaction so the key's row is rolled back with the work."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def request_digest(request: Request) -> str:
    """What makes two requests "the same": method, path and the parsed JSON body (key order and spacing aside)."""
    canonical = json.dumps([request.method, request.path, request.data], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _valid_key(raw: str) -> str:
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(
            _("The %(header)s header must be 1 to %(max)s printable characters.")
            % {"header": HEADER, "max": MAX_KEY_LENGTH}
        )
    return key


def once(request: Request, work: Callable[[], Response]) -> Response:
    """Run `work` at most once per (user, Idempotency-Key); without the header, just run it."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return work()
    key = _valid_key(raw)
    digest = request_digest(request)
    user_id = request.user.pk
    assert user_id is not None  # the API lets only signed-in users this far
    try:
        with transaction.atomic():
            IdempotentRequest.objects.create(user_id=user_id, key=key, request_sha256=digest, status_code=0)
            response = work()
            if not status.is_success(response.status_code):
                raise _Refused(response)
            IdempotentRequest.objects.filter(user_id=user_id, key=key).update(
                status_code=response.status_code, response=response.data
            )
            return response
    except _Refused as refused:
        return refused.response
    except IntegrityError:
        pass
    earlier = IdempotentRequest.objects.get(user_id=user_id, key=key)
    if earlier.request_sha256 != digest:
        return Response(
            error_body(
                "idempotency_key_reused",
                _("This %(header)s was already used for a different request; use a new key.") % {"header": HEADER},
            ),
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return Response(earlier.response, status=earlier.status_code, headers={"Idempotent-Replayed": "true"})
