"""The one error tree for user-facing failures; each error carries a message safe to show the user.

    PostdeskError            base; `.user_message` is translated text, `.code` a stable snake_case name
    ├── NotFound             the object does not exist OR the user may not see it (one error, so
    │                        existence never leaks to someone without access)
    ├── PermissionDenied     the user sees the object but may not do this to it
    └── BadRequest           the request itself is wrong (unknown filter value, bad cursor, bad limit)

The web and API layers map these to HTTP statuses (404, 403, 400); the service layer knows no HTTP.
"""

from __future__ import annotations


class PostdeskError(Exception):
    """A failure the user can understand; `user_message` says what went wrong and, where useful, what to do."""

    code = "error"

    def __init__(self, user_message: str, *, code: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        if code is not None:
            self.code = code


class NotFound(PostdeskError):
    code = "not_found"


class PermissionDenied(PostdeskError):
    code = "permission_denied"


class BadRequest(PostdeskError):
    code = "bad_request"
