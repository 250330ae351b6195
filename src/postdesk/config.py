"""Typed configuration read once from the environment (12-factor); `postdesk check` validates it."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """The environment names something unusable; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    database_url: str | None
    redis_url: str | None
    secret_key: str
    encryption_key: str
    http_port: int
    smtp_port: int
    bind: str
    smtp_max_bytes: int
    queue_name: str
    debug: bool

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "postdesk.sqlite3"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def _key_from_file(path: Path, make: str) -> str:
    """Read a generated key, creating it on first run so restarts keep sessions and credentials."""
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(make)
    return make


def load_config() -> Config:
    data_dir = Path(os.environ.get("POSTDESK_DATA_DIR", "./var")).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret_key = os.environ.get("POSTDESK_SECRET_KEY") or _key_from_file(
        data_dir / "secret.key", secrets.token_urlsafe(48)
    )
    encryption_key = os.environ.get("POSTDESK_ENCRYPTION_KEY") or _key_from_file(
        data_dir / "encryption.key", _new_fernet_key()
    )
    return Config(
        data_dir=data_dir,
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        secret_key=secret_key,
        encryption_key=encryption_key,
        http_port=_int_env("POSTDESK_HTTP_PORT", 8000),
        smtp_port=_int_env("POSTDESK_SMTP_PORT", 2525),
        bind=os.environ.get("POSTDESK_BIND", "127.0.0.1"),
        queue_name=os.environ.get("POSTDESK_QUEUE_NAME", "postdesk"),
        smtp_max_bytes=_int_env("POSTDESK_SMTP_MAX_BYTES", 25 * 1024 * 1024),
        debug=os.environ.get("POSTDESK_DEBUG", "") in {"1", "true", "yes"},
    )


def _new_fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
