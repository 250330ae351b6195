"""The inbox lives: new mail appears in the list of the team that owns the mailbox, with its folder counts, and who
is on it, without a reload; an agent of another team sees nothing of it, not even an event on the live socket."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from e2e_harness import (
    ALPHA,
    BETA,
    AgentBrowser,
    Desk,
    customer_mail,
    mark_page,
    same_document,
    unique,
    wait_until_live,
)
from playwright.sync_api import Locator, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

COUNTED_FOLDERS = ("unassigned", "open", "all")


def folder_count(page: Page, key: str) -> Locator:
    return page.get_by_test_id(f"folder-{key}").locator(".folder-count")


def counts(page: Page) -> dict[str, int]:
    return {key: int(folder_count(page, key).get_attribute("data-count") or "-1") for key in COUNTED_FOLDERS}


def row(page: Page, subject: str) -> Locator:
    return page.get_by_test_id("conversation-row").filter(has_text=subject)


def test_new_mail_appears_live_for_its_team_only(desk: Desk, signed_in: Callable[[str], AgentBrowser]) -> None:
    ann, cat = signed_in("ann"), signed_in("cat")
    for session in (ann, cat):
        session.page.goto("/?folder=open")
        assert wait_until_live(session.page)["mailboxes"], "the list listens to the agent's mailboxes"
        mark_page(session.page)
    ann_before, cat_before = counts(ann.page), counts(cat.page)

    subject = unique("Live: my invoice is wrong")
    desk.deliver(customer_mail(subject=subject, to=ALPHA, sender="Dora <dora@customer.test>"))
    number = desk.find_conversation("ann", subject)["number"]

    # Ann's list shows it, and every folder it belongs to counts it, without a reload.
    expect(row(ann.page, subject)).to_be_visible()
    for key in COUNTED_FOLDERS:
        expect(folder_count(ann.page, key)).to_have_attribute("data-count", str(ann_before[key] + 1))
    assert same_document(ann.page)
    conversation_id = int(row(ann.page, subject).get_attribute("data-conversation") or 0)

    # Bob opens it: Ann's list shows who is on it.
    bob = signed_in("bob")
    bob.page.goto(f"/c/{number}/")
    wait_until_live(bob.page)
    expect(row(ann.page, subject).locator("[data-presence-for]")).to_have_text("Bob Alpha")

    # Cat (team Beta) is told about her own mailbox's mail, which shows she is listening ...
    beta_subject = unique("Live: a question for Beta")
    desk.deliver(customer_mail(subject=beta_subject, to=BETA, sender="Eve <eve@customer.test>"))
    expect(row(cat.page, beta_subject)).to_be_visible()
    for key in COUNTED_FOLDERS:
        expect(folder_count(cat.page, key)).to_have_attribute("data-count", str(cat_before[key] + 1))
    assert same_document(cat.page)

    # ... but was never told of Alpha's: not in her list, not in her counts, not on her socket.
    expect(row(cat.page, subject)).to_have_count(0)
    assert desk.api_status("cat", f"conversations/{number}/") == 404
    changes = [event for event in cat.traffic.received if event.get("type") == "conversation.changed"]
    assert changes, "Cat's socket carried Beta's event"
    assert not [event for event in changes if event.get("conversation") == conversation_id], changes
    assert not [event for event in cat.traffic.received if event.get("type") == "presence"], "nobody is on Beta's"
    assert subject not in cat.page.content()
    assert cat.traffic.foreign(desk.url) == [] and ann.traffic.foreign(desk.url) == []
