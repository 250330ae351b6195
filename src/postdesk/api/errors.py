"""Every API failure as JSON `{"error": {"code": ..., "message": ...}}` with the right status, never a stack trace.

`handle_exception` is DRF's EXCEPTION_HANDLER; `page_not_found` and `server_error` are Django's
handler404/handler500 (set in the root urls.py): JSON under /api/, Django's own pages elsewhere.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from postdesk.desk import errors
from postdesk.desk.actions import Collision

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

_STATUS_OF: dict[type[errors.PostdeskError], int] = {
    Collision: status.HTTP_409_CONFLICT,
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.PermissionDenied: status.HTTP_403_FORBIDDEN,
    errors.BadRequest: status.HTTP_400_BAD_REQUEST,
}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def collision_body(exc: Collision, latest_event_id: int | None = None) -> dict[str, dict[str, object]]:
    """The 409 body: the usual error plus what changed, and (when known) the event id to confirm against."""
    detail: dict[str, object] = {"code": exc.code, "message": exc.user_message, "changes": list(exc.changes)}
    if latest_event_id is not None:
        detail["latest_event_id"] = latest_event_id
    return {"error": detail}


def postdesk_error_status(exc: errors.PostdeskError) -> int:
    for kind, code in _STATUS_OF.items():
        if isinstance(exc, kind):
            return code
    return status.HTTP_400_BAD_REQUEST


def flatten(detail: Any) -> str:
    """One readable sentence from DRF's nested error details (`{"field": ["msg"]}` → "field: msg")."""
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(flatten(item) for item in detail)
    return str(detail)


def handle_exception(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: map every exception to the JSON error body and a status."""
    # Like DRF's own handler: an error answer must not commit half of a request's writes.
    set_rollback()
    if isinstance(exc, Collision):
        return Response(collision_body(exc), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, errors.PostdeskError):
        return Response(error_body(exc.code, exc.user_message), status=postdesk_error_status(exc))
    if isinstance(exc, Http404):
        return Response(error_body("not_found", _("Not found.")), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("permission_denied", _("You may not do this.")), status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "invalid"
        response = Response(error_body(code, flatten(exc.detail)), status=exc.status_code)
        # 401 must name the scheme (RFC 9110 §11.6.1); 429 says when to come back.
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            response["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait is not None:
            response["Retry-After"] = str(int(wait))
        return response
    view = context.get("view")
    log.exception("API error in %s", type(view).__name__ if view is not None else "unknown view", exc_info=exc)
    return Response(
        error_body("internal_error", _("Something went wrong on our side; it has been logged.")),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The answer for an address under /api/ that names no endpoint."""
    return JsonResponse(
        error_body("not_found", _("There is no API endpoint at %(path)s.") % {"path": request.path}),
        status=status.HTTP_404_NOT_FOUND,
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: JSON for API addresses, Django's page for the rest."""
    if is_api_request(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: JSON for API addresses, Django's page for the rest (the error is already logged)."""
    if is_api_request(request):
        return JsonResponse(
            error_body("internal_error", _("Something went wrong on our side; it has been logged.")),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request)
