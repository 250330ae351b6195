"""A corpus of hostile mail, delivered through the SMTP listener and opened in chromium: no script runs, nothing
loads from anywhere but Postdesk, the mail frame is sandboxed, and the agent still reads the text.

Every payload tries to announce itself: set our page's title, `alert()`, add a `#pwned` element, fetch from or
load images off a canary web server on loopback. The canary must hear nothing (not even a TCP connection)
until the agent asks for remote images; then images load and scripts still do not run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from e2e_harness import (
    ALLOWED_SANDBOX,
    UI_TIMEOUT,
    AgentBrowser,
    Canary,
    Desk,
    login,
    open_context,
    open_mail_frames,
    parent_reach,
    poll,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CORPUS = Path(__file__).parent / "hostile"
# Each file's subject, and the sentence its body shows the agent (the mail's only harmless content).
VISIBLE = {
    "script": "Visible words: script tags survive as text.",
    "handlers": "Visible words: event handlers stripped.",
    "links": "Visible words: dangerous links disarmed.",
    "css": "Visible words: styles kept harmless.",
    "svg": "Visible words: vector graphics tamed.",
    "forms": "Visible words: forms cannot post.",
    "meta": "Visible words: no refresh happened.",
    "frames": "Visible words: no nested frames.",
    "base": "Visible words: base ignored.",
    "images": "Visible words: remote images wait for permission.",
    "headers": "Visible words: markup in plain text stays text.",
}
HOSTILE_SUBJECT = "Hostile <img src=x onerror=alert('PWNED')> subject"
HOSTILE_SENDER = "<script>alert(1)</script> Mallory"
# What a mail offers to click (by its text: the sanitiser drops ids); clicking must not run, post or load anything.
CLICK = {
    "handlers": ["Click me for a prize"],
    "links": ["javascript link", "obfuscated javascript link", "data html link", "vbscript link"],
    "base": ["relative link"],
}
REMOTE_IMAGES_BUTTON = re.compile(r"(show|load|allow).*(remote )?images", re.IGNORECASE)


def _subject(raw: bytes) -> str:
    match = re.search(rb"^Subject: (.*)$", raw, re.MULTILINE)
    assert match
    return match.group(1).decode().strip()


@pytest.fixture(scope="module")
def hostile(desk: Desk, canary: Canary) -> dict[str, int]:
    """Deliver the whole corpus through the SMTP listener; the conversation number of each file."""
    subjects: dict[str, str] = {}
    for path in sorted(CORPUS.glob("*.eml")):
        raw = path.read_bytes().replace(b"CANARY", canary.host.encode())
        subjects[path.stem] = _subject(raw)
        desk.deliver(raw)
    assert set(subjects) == set(VISIBLE), "every corpus file says what the agent should still see"
    return {name: desk.find_conversation("ann", subject)["number"] for name, subject in subjects.items()}


@pytest.mark.parametrize("name", ["script", "handlers", "css", "images"])
def test_the_payloads_are_live_and_the_detectors_see_them(
    name: str, browser: Browser, canary: Canary, desk: Desk
) -> None:
    """Control: the same HTML opened as a plain page, with no Postdesk in between, does run and does load.

    So the corpus really attacks, and the checks below (dialogs, `#pwned`, the canary) really see an attack.
    """
    raw = (CORPUS / f"{name}.eml").read_bytes().replace(b"CANARY", canary.host.encode())
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    html = mail.get_body(("html",))
    assert html is not None
    context, page, traffic = open_context(browser, desk)
    before = canary.connections
    try:
        page.set_content(str(html.get_content()))
        page.hover("body")  # for the handlers that wait for the mouse
        poll(lambda: canary.connections > before, UI_TIMEOUT, f"{name}.eml to reach the canary", page=page)
        if name in ("script", "handlers"):
            poll(lambda: traffic.dialogs, UI_TIMEOUT, f"{name}.eml to open a dialog", page=page)
            assert page.locator("#pwned").count() >= 1
    finally:
        context.close()
    assert [url for url in traffic.foreign(desk.url) if canary.host in url]


@pytest.fixture(scope="module")
def ann(browser: Browser, desk: Desk) -> Iterator[AgentBrowser]:
    """Ann, signed in once for the module; each test gets a new page and an empty traffic record."""
    session = login(browser, desk, "ann")
    yield session
    session.context.close()


@pytest.fixture
def ann_page(ann: AgentBrowser) -> Iterator[Page]:
    ann.traffic.clear()
    page = ann.context.new_page()
    yield page
    page.close()


def _assert_nothing_ran(page: Page, session: AgentBrowser, number: int) -> None:
    assert session.traffic.dialogs == [], "a script in the mail opened a dialog"
    assert page.title() != "PWNED", "a script in the mail retitled our page"
    assert page.title().startswith(f"#{number} ")
    for frame in page.frames:
        assert frame.locator("#pwned").count() == 0, f"a script in the mail changed {frame.url}"


@pytest.mark.parametrize("name", sorted(VISIBLE))
def test_hostile_mail_runs_nothing_and_loads_nothing_remote(
    name: str, hostile: dict[str, int], desk: Desk, canary: Canary, ann: AgentBrowser, ann_page: Page
) -> None:
    number = hostile[name]
    connections = canary.connections
    session, page = ann, ann_page
    page.goto(f"/c/{number}/")

    # The agent reads the mail: its words are on the page (and in the formatted view when it has HTML).
    expect(page.get_by_text(VISIBLE[name]).first).to_be_visible()
    frames = open_mail_frames(page)
    if name != "headers":
        assert frames, "an HTML mail offers its formatted version"
    for element, frame in frames:
        expect(frame.locator("body")).to_contain_text(VISIBLE[name])
        # The frame is a sandbox: no scripts, no same origin, no forms, no top navigation, no dialogs.
        sandbox = element.get_attribute("sandbox")
        assert sandbox is not None, "the mail frame has a sandbox attribute"
        assert set(sandbox.split()) <= ALLOWED_SANDBOX, sandbox
        assert frame.evaluate("() => self.origin") == "null", "the mail document has an opaque origin"
        assert parent_reach(frame) == "blocked: SecurityError"
        for text in CLICK.get(name, []):
            frame.get_by_text(text, exact=True).click()
        for button in frame.get_by_role("button").all():  # any form control the sanitiser kept
            button.click()
        frame.wait_for_load_state("networkidle")

    _assert_nothing_ran(page, session, number)
    assert session.traffic.foreign(desk.url) == [], "the browser requested something from another host"
    if name == "images":
        # The mail really points at remote images: the browser's own policy is what stopped them.
        assert any("/tracker.png" in url for url in session.traffic.stopped_by_csp())
    # A link may open a tab (the frame allows popups), but only to what the checks above allow.
    assert all(popup.startswith((desk.url + "/", "about:blank")) for popup in session.traffic.popups)
    assert canary.connections == connections, f"the canary was contacted: {canary.paths}"


def test_markup_in_headers_and_plain_text_shows_as_text(
    hostile: dict[str, int], ann: AgentBrowser, ann_page: Page
) -> None:
    session, page = ann, ann_page
    number = hostile["headers"]
    page.goto("/")
    expect(page.get_by_role("link", name=HOSTILE_SUBJECT)).to_be_visible()
    page.goto(f"/c/{number}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(HOSTILE_SUBJECT)
    assert HOSTILE_SUBJECT in page.title()
    expect(page.get_by_text(HOSTILE_SENDER).first).to_be_visible()
    expect(page.get_by_text("<script>alert('PWNED')</script>").first).to_be_visible()
    assert page.locator("main img").count() == 0, "no markup from the mail became an element of our page"
    _assert_nothing_ran(page, session, number)


def test_remote_images_load_only_when_the_agent_asks_and_scripts_still_do_not_run(
    hostile: dict[str, int], desk: Desk, canary: Canary, ann: AgentBrowser, ann_page: Page
) -> None:
    session, page = ann, ann_page
    number = hostile["images"]
    page.goto(f"/c/{number}/")
    open_mail_frames(page)
    connections, heard = canary.connections, len(canary.paths)

    button = page.get_by_test_id("show-remote-images")
    if button.count() == 0:
        pytest.fail(
            "NOT BUILT: the conversation page has no 'Show remote images' control "
            "(data-testid='show-remote-images') on a mail with remote images",
            pytrace=False,
        )
    expect(button).to_have_accessible_name(REMOTE_IMAGES_BUTTON)
    button.click()
    # The frame reloads with images allowed: the tracker is fetched from the canary and really renders.
    poll(lambda: "/tracker.png" in canary.paths[heard:], UI_TIMEOUT, "the tracker image from the canary", page=page)
    frame = page.locator("iframe[data-testid=mail-frame]").element_handle().content_frame()
    assert frame is not None
    frame.wait_for_load_state("networkidle")
    expect(frame.locator("img[alt=tracker]")).to_have_js_property("naturalWidth", 1)
    assert canary.connections > connections
    # Images only: the tracker's onload and the mail's <script> still do not run.
    _assert_nothing_ran(page, session, number)
    assert [path for path in canary.paths[heard:] if not path.endswith(".png")] == [], "images only"
    leaked = [url for url in session.traffic.foreign(desk.url) if urlsplit(url).netloc != canary.host]
    assert leaked == [], "with remote images allowed, only the images' own host is contacted"
