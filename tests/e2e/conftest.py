"""Fixtures for the browser end-to-end tests: one `postdesk run` for the session, one chromium per module."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

import pytest
from e2e_harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    UI_TIMEOUT_MS,
    AgentBrowser,
    Canary,
    Desk,
    SmtpSink,
    login,
    running_desk,
)
from playwright.sync_api import Browser, Playwright, expect, sync_playwright


@pytest.fixture(scope="session")
def sink() -> Iterator[SmtpSink]:
    """The SMTP server the mailboxes send through: everything Postdesk sends ends up here."""
    server = SmtpSink()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def canary() -> Iterator[Canary]:
    server = Canary()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def desk(tmp_path_factory: pytest.TempPathFactory, sink: SmtpSink) -> Iterator[Desk]:
    with running_desk(tmp_path_factory.mktemp("e2e") / "data", sink.port) as server:
        yield server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed e2e test shows the end of the server's output (where its own errors are logged)."""
    report = yield
    server: Desk | None = getattr(item, "funcargs", {}).get("desk")
    if report.failed and server is not None and server.log.exists():
        tail = "\n".join(server.log.read_text(errors="replace").splitlines()[-60:])
        report.sections.append(("postdesk run output (last 60 lines)", tail))
    return report


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # One driver per module, stopped at its end: the sync API keeps an asyncio loop running in the main
    # thread while it lives, which would break later tests that start their own (tests/web/test_live.py).
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One Debian chromium per test module (never a downloaded one)."""
    instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield instance
    instance.close()


@pytest.fixture
def signed_in(browser: Browser, desk: Desk) -> Iterator[Callable[[str], AgentBrowser]]:
    """`signed_in("ann")`: a fresh browser context of that agent, signed in through /login/; closed afterwards."""
    opened: list[AgentBrowser] = []

    def open_for(who: str) -> AgentBrowser:
        session = login(browser, desk, who)
        opened.append(session)
        return session

    yield open_for
    for session in opened:
        session.context.close()
