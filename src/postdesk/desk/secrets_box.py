"""Mailbox credentials encrypted at rest with Fernet, keyed by POSTDESK_ENCRYPTION_KEY."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class CredentialError(Exception):
    """A stored credential cannot be decrypted with the configured key."""


def _fernet() -> Fernet:
    return Fernet(settings.CONFIG.encryption_key.encode("ascii"))


def encrypt(plain: str) -> str:
    if not plain:
        return ""
    return _fernet().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise CredentialError(
            "a stored mailbox credential does not match POSTDESK_ENCRYPTION_KEY; set the key it was saved with"
        ) from None
