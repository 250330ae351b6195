"""Shared fixtures: a private data directory per test, huey run inline, factories for the data model."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from corpora_path import CORPORA


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """Point blobs (raw mail, attachments) at a fresh directory; pure tests never look at it."""
    from django.conf import settings

    original = settings.CONFIG
    settings.CONFIG = dataclasses.replace(original, data_dir=tmp_path / "data")
    settings.CONFIG.blob_dir.mkdir(parents=True, exist_ok=True)
    yield settings.CONFIG.data_dir
    settings.CONFIG = original


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Sign-in throttling counts live in the cache: no test inherits another's wrong passwords."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True, scope="session")
def huey_inline() -> None:
    """Jobs queued in tests run at once, in the test's thread, against the test database."""
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = True


@pytest.fixture
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip(f"!!! mail corpora not found at {CORPORA}: corpus tests did NOT run !!!")
    return CORPORA


def _test_database_url() -> str | None:
    """The PostgreSQL URL this test run uses, or None on SQLite."""
    import os

    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


@pytest.fixture
def fresh_database_url() -> Iterator[str | None]:
    """For tests that start real processes: None on SQLite (they use a file in their data dir), else a new
    PostgreSQL database of their own, dropped afterwards."""
    import uuid

    base = _test_database_url()
    if base is None:
        yield None
        return
    import psycopg

    server = base.rsplit("/", 1)[0]
    name = f"postdesk_proc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
