"""The long-running processes: everything in one (`postdesk run`), or web, worker, SMTP and fetch apart.

In one process, uvicorn owns the main thread and its signal handling (SIGINT and SIGTERM both stop it
gracefully); the huey consumer runs as worker threads beside it, started from a subclass that sets no
signal handlers, since only the main thread may (DESIGN.md §2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from types import FrameType
from typing import Any

from django.conf import settings
from huey.consumer import Consumer

log = logging.getLogger(__name__)

# An idle consumer otherwise backs off to 10 s between polls; 0.25 s keeps new mail under a second.
CONSUMER_MAX_DELAY = 0.25


class EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A huey consumer that runs beside another main loop: it leaves signals to the host process."""

    def _set_signal_handlers(self) -> None:
        return None


class ShutdownRequested(Exception):
    """SIGINT or SIGTERM arrived; raised once uvicorn has shut the web server down."""


def _stop_on_signals() -> None:
    # uvicorn handles SIGINT/SIGTERM while it serves, then restores these handlers and re-raises the
    # signal; without them SIGTERM would kill the process before the consumer finishes its jobs.
    def request_shutdown(signum: int, frame: FrameType | None) -> None:
        raise ShutdownRequested(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, request_shutdown)
    signal.signal(signal.SIGTERM, request_shutdown)


def _serve_web() -> None:
    _stop_on_signals()
    with contextlib.suppress(ShutdownRequested):
        _uvicorn_server().run()


def _consumer(cls: type[Consumer], *, workers: int, scheduler: bool) -> Any:
    from huey.contrib.djhuey import HUEY

    return cls(
        HUEY,
        workers=workers,
        worker_type="thread",
        periodic=scheduler,
        initial_delay=0.05,
        max_delay=CONSUMER_MAX_DELAY,
        check_worker_health=True,
    )


def _uvicorn_server() -> Any:
    import uvicorn

    from postdesk.desk import live

    class Server(uvicorn.Server):
        """uvicorn, telling live updates which loop its pages' sockets live on (DESIGN.md §2)."""

        async def serve(self, sockets: list[Any] | None = None) -> None:
            # Jobs in huey threads reach the in-memory channel layer only through this loop.
            live.use_server_loop(asyncio.get_running_loop())
            try:
                await super().serve(sockets)
            finally:
                live.use_server_loop(None)

    config = uvicorn.Config(
        "postdesk.asgi:application",
        host=settings.CONFIG.bind,
        port=settings.CONFIG.http_port,
        lifespan="off",  # Django's ASGI handler has no lifespan support
        log_level="warning",
        workers=1,
    )
    return Server(config)


def _banner(smtp_port: int | None) -> None:
    from postdesk.desk.models import Mailbox

    config = settings.CONFIG
    database = "PostgreSQL" if config.database_url else f"SQLite {config.sqlite_path}"
    print(f"Postdesk is running: http://{config.bind}:{config.http_port}/", flush=True)
    if smtp_port is not None:
        print(f"  SMTP listener:  {config.bind}:{smtp_port}", flush=True)
    print(f"  database:       {database}", flush=True)
    print(f"  jobs:           {'huey on Redis' if config.redis_url else 'huey on SQLite (in this process)'}")
    for address in Mailbox.objects.filter(active=True).values_list("address", flat=True):
        print(f"  mailbox:        {address}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)


def _pick_up_after_a_crash() -> None:
    """Mail a crash left waiting, and replies whose send job was lost, go now rather than at the next sweep."""
    from postdesk.desk import outbox
    from postdesk.jobs import queue_waiting

    queue_waiting(older_than=None, at_start=True)
    outbox.sweep()


def run_all_in_one() -> int:
    from postdesk.transports.imap_fetcher import start_fetchers
    from postdesk.transports.smtp_listener import start_smtp_listener

    config = settings.CONFIG
    consumer = _consumer(EmbeddedConsumer, workers=2, scheduler=True)
    consumer.start()
    smtp = start_smtp_listener(config.bind, config.smtp_port)
    fetchers = start_fetchers()
    _pick_up_after_a_crash()
    _banner(smtp.port)
    try:
        _serve_web()
    finally:
        print("stopping…", flush=True)
        fetchers.stop()
        smtp.stop()
        consumer.stop(graceful=True)
        print("stopped", flush=True)
    return 0


def run_web() -> int:
    _serve_web()
    return 0


def run_worker(*, workers: int, scheduler: bool) -> int:
    _pick_up_after_a_crash()
    consumer = _consumer(Consumer, workers=workers, scheduler=scheduler)
    consumer.run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_all_in_one())
