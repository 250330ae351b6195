"""Database settings as operators set them: the PostgreSQL connection pool of web processes and its size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.pure

POSTGRES = "postgres://someone@db.example:5432/postdesk"


def database_settings(tmp_path: Path, **env: str) -> dict[str, Any]:
    """DATABASES["default"] as a fresh process with this environment reads it (settings load once, at start)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POSTDESK_", "DATABASE_URL"))}
    clean.update(POSTDESK_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="postdesk.settings", **env)
    code = "import json; from django.conf import settings; print(json.dumps(settings.DATABASES['default']))"
    done = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_web_processes_on_postgresql_share_a_pool_of_ten_connections(tmp_path: Path) -> None:
    db = database_settings(tmp_path, DATABASE_URL=POSTGRES)
    assert db["OPTIONS"]["pool"]["max_size"] == 10
    assert db["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections


def test_the_pool_size_is_the_operators_choice_and_zero_turns_it_off(tmp_path: Path) -> None:
    assert database_settings(tmp_path, DATABASE_URL=POSTGRES, POSTDESK_DB_POOL_SIZE="3")["OPTIONS"]["pool"] == {
        "min_size": 2,
        "max_size": 3,
        "timeout": 30,
    }
    assert "pool" not in database_settings(tmp_path, DATABASE_URL=POSTGRES, POSTDESK_DB_POOL_SIZE="0").get(
        "OPTIONS", {}
    )


def test_a_worker_keeps_its_own_connections_instead_of_a_pool(tmp_path: Path) -> None:
    # `postdesk worker` sets POSTDESK_DB_CONN_MAX_AGE=600 for its few long-lived threads.
    db = database_settings(tmp_path, DATABASE_URL=POSTGRES, POSTDESK_DB_CONN_MAX_AGE="600")
    assert "pool" not in db.get("OPTIONS", {})
    assert db["CONN_MAX_AGE"] == 600


def test_a_pool_size_that_is_not_a_number_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        database_settings(tmp_path, DATABASE_URL=POSTGRES, POSTDESK_DB_POOL_SIZE="ten")
    assert "POSTDESK_DB_POOL_SIZE must be a whole number (0 or more), got 'ten'." in failed.value.stderr


def test_sqlite_has_no_pool(tmp_path: Path) -> None:
    db = database_settings(tmp_path)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert "pool" not in db.get("OPTIONS", {})
