"""Sign-in throttling: after repeated wrong passwords, an account (from one address) and an address
stop getting answers for a while, so passwords cannot be guessed at speed.

Counts live in Django's cache: Redis when `REDIS_URL` is set (shared by every web process), else
the process's own memory (enough for `postdesk run`, which is one process). The same form serves
the agent login page and the admin's.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# Wrong passwords allowed within WINDOW: for one account from one address, and from one address in all.
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20
WINDOW_SECONDS = 15 * 60
THROTTLED = "throttled"


def client_address(request: HttpRequest | None) -> str:
    # REMOTE_ADDR, not X-Forwarded-For: a client can write any header it likes. Behind a reverse
    # proxy, let the ASGI server set REMOTE_ADDR from the proxy's header (uvicorn --forwarded-allow-ips).
    return str(request.META.get("REMOTE_ADDR", "")) if request is not None else ""


def _counters(username: str, address: str) -> list[tuple[str, int]]:
    return [
        (f"login-failures:account:{username}:{address}", MAX_FAILURES_PER_ACCOUNT),
        (f"login-failures:address:{address}", MAX_FAILURES_PER_ADDRESS),
    ]


def seconds_blocked(username: str, address: str) -> int:
    """How long sign-in stays refused for this account from this address; 0 when it is allowed."""
    now = time.time()
    waits = [float(cache.get(f"{key}:until", 0)) - now for key, _limit in _counters(username, address)]
    return max(0, math.ceil(max(waits)))


def record_failure(username: str, address: str) -> None:
    now = time.time()
    for key, limit in _counters(username, address):
        cache.add(key, 0, WINDOW_SECONDS)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, WINDOW_SECONDS)
            failures = 1
        if failures >= limit:
            cache.set(f"{key}:until", now + WINDOW_SECONDS, WINDOW_SECONDS)


def record_success(username: str, address: str) -> None:
    key, _limit = _counters(username, address)[0]
    cache.delete_many([key, f"{key}:until"])


class ThrottledLoginMixin:
    """For Django's authentication forms: refuse while throttled, count wrong passwords."""

    request: HttpRequest | None
    data: Any

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username") or "").strip().lower()
        address = client_address(self.request)
        wait = seconds_blocked(username, address)
        if wait:
            minutes = math.ceil(wait / 60)
            raise ValidationError(
                ngettext(
                    "Too many wrong passwords. Try again in %(minutes)d minute.",
                    "Too many wrong passwords. Try again in %(minutes)d minutes.",
                    minutes,
                )
                % {"minutes": minutes},
                code=THROTTLED,
            )
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except ValidationError:
            record_failure(username, address)
            raise
        record_success(username, address)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("Your email address and password did not match. Please try again."),
    }


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
