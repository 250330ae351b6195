"""Issue 4's scenario, in two browsers: Ann and Bob open the same conversation and see each other; Bob types and Ann
sees it; Ann replies; Bob's send is held with the reason until he confirms; the replies reach the customer's
server with threading headers; the customer's answer comes back into the same conversation and shows up on
Ann's page without a reload.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

import pytest
from e2e_harness import (
    ALPHA,
    AgentBrowser,
    Desk,
    SmtpSink,
    customer_mail,
    mark_page,
    poll,
    same_document,
    unique,
    wait_until_live,
)
from playwright.sync_api import Locator, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CUSTOMER = "alice@customer.test"


def open_reply(page: Page) -> Locator:
    """Open the reply editor (templates/web/thread_composer.html); its text box, which reports typing."""
    editor = page.get_by_test_id("reply-text")
    if not editor.is_visible():
        page.get_by_test_id("compose-reply").click()
    expect(editor).to_be_visible()
    expect(editor).to_have_attribute("data-typing", "")
    return editor


def send_reply(page: Page) -> None:
    page.get_by_test_id("send-reply").click()


def in_thread(page: Page, text: str) -> Locator:
    return page.get_by_test_id("thread").get_by_text(text).first


def plain_text(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None, "a reply has a text/plain part"
    return str(body.get_content())


def sent_replies(sink: SmtpSink, subject: str) -> Callable[[], list[EmailMessage]]:
    def replies() -> list[EmailMessage]:
        return [mail.message for mail in sink.matching(lambda m: m["Subject"] == f"Re: {subject}")]

    return replies


@pytest.mark.parametrize("choice", ["send anyway", "review, then send"])
def test_two_agents_collide_and_the_answer_comes_back_live(
    choice: str, desk: Desk, sink: SmtpSink, signed_in: Callable[[str], AgentBrowser]
) -> None:
    subject = unique("Where is my parcel")
    customer_id = make_msgid(domain="customer.test")
    desk.deliver(customer_mail(subject=subject, to=ALPHA, sender=f"Alice <{CUSTOMER}>", message_id=customer_id))
    number = desk.find_conversation("ann", subject)["number"]

    ann, bob = signed_in("ann"), signed_in("bob")
    for session in (ann, bob):
        session.page.goto(f"/c/{number}/")
        wait_until_live(session.page)
    mark_page(ann.page)

    # Each sees the other on the conversation.
    expect(ann.page.locator("#presence")).to_contain_text("Bob Alpha")
    expect(bob.page.locator("#presence")).to_contain_text("Ann Alpha")
    seen_by_ann = ann.page.evaluate("() => window.postdeskLive.presence()")
    assert [person["name"] for people in seen_by_ann.values() for person in people] == ["Bob Alpha"]

    # Bob starts a reply: Ann sees him typing.
    bob_editor = open_reply(bob.page)
    bob_editor.press_sequentially("Hello Alice, I am looking into it", delay=20)
    expect(ann.page.locator("#presence")).to_have_attribute("data-presence-state", "typing")
    expect(ann.page.locator("#presence")).to_contain_text("Bob Alpha")

    # Ann answers first.
    ann_text = unique("Ann says: your parcel left our warehouse today")
    open_reply(ann.page).fill(ann_text)
    send_reply(ann.page)
    expect(in_thread(ann.page, ann_text)).to_be_visible()

    # Bob's send is held, and he is told why.
    bob_text = unique("Bob says: sorry for the wait")
    bob_editor.fill(bob_text)
    send_reply(bob.page)
    held = bob.page.get_by_test_id("held")
    expect(held).to_be_visible()
    expect(held).to_have_attribute("role", "alert")
    expect(held.get_by_test_id("held-changes")).to_have_text("Ann Alpha replied")
    outbound = [m for m in desk.conversation("bob", number)["messages"] if m["direction"] == "outbound"]
    assert [m["text"].split("\n")[0] for m in outbound] == [ann_text], "nothing of Bob's was written while held"
    expect(bob.page.get_by_test_id("reply-text")).to_have_value(bob_text)  # his words are still there

    if choice == "send anyway":
        held.get_by_role("button", name="Send anyway").click()
    else:
        # He reviews: Ann's reply shows up in his thread, the warning goes, his text stays; then he sends.
        held.get_by_role("button", name="Review the conversation").click()
        expect(in_thread(bob.page, ann_text)).to_be_visible()
        expect(bob.page.get_by_test_id("held")).to_have_count(0)
        expect(bob.page.get_by_test_id("reply-text")).to_have_value(bob_text)
        send_reply(bob.page)
    expect(in_thread(bob.page, bob_text)).to_be_visible()
    expect(in_thread(bob.page, ann_text)).to_be_visible()
    expect(bob.page.get_by_test_id("held")).to_have_count(0)

    # Both replies reach the customer's mail server, once each, threaded under her mail, from the mailbox.
    replies = poll(lambda: len(sent_replies(sink, subject)()) >= 2 and sent_replies(sink, subject)(), 30, "2 replies")
    assert len(replies) == 2, [r["Message-ID"] for r in replies]
    by_text = {plain_text(reply).split("\n")[0].strip(): reply for reply in replies}
    assert set(by_text) == {ann_text, bob_text}
    tokens = set()
    for reply in replies:
        assert parseaddr(reply["From"])[1] == ALPHA
        assert [parseaddr(a)[1] for a in reply.get_all("To", [])] == [CUSTOMER]
        assert reply["In-Reply-To"] == customer_id
        assert reply["References"].split()[0] == customer_id
        match = re.fullmatch(r"<pd\.([a-z0-9]+)\.[0-9a-f]+@alpha\.test>", reply["Message-ID"].strip())
        assert match, reply["Message-ID"]
        assert parseaddr(reply["Reply-To"])[1] == f"help+{match.group(1)}@alpha.test", reply["Reply-To"]
        assert "The Alpha team" in plain_text(reply), "the mailbox signature is in the mail"
        tokens.add(match.group(1))
    assert len(tokens) == 1, "one conversation, one reply token"
    ours = by_text[ann_text]["Message-ID"].strip()
    assert by_text[bob_text]["Message-ID"].strip() != ours
    assert ours[1:-1] in by_text[bob_text]["References"], "Bob's reply also refers to Ann's"
    reply_to = parseaddr(by_text[ann_text]["Reply-To"])[1]

    # The customer answers Ann's reply; it lands in the same conversation, live on Ann's page.
    expect(ann.page.get_by_test_id("reply-text")).to_have_value("")  # sent: her editor is empty again
    expect(ann.page.get_by_test_id("new-activity")).to_be_hidden()
    answer = unique("Alice answers: thank you, it just arrived")
    desk.deliver(
        customer_mail(
            subject=f"Re: {subject}",
            sender=f"Alice <{CUSTOMER}>",
            to=reply_to,
            body=answer + "\n",
            in_reply_to=ours,
            references=f"{customer_id} {ours}",
        )
    )
    expect(in_thread(ann.page, answer)).to_be_visible()
    assert same_document(ann.page), "the answer appeared without a reload"
    thread = desk.conversation("ann", number)
    assert thread["messages"][-1]["direction"] == "inbound" and answer in thread["messages"][-1]["text"]
    assert not [r for r in desk.api("ann", "conversations/?limit=200")["results"] if r["subject"] == f"Re: {subject}"]
    assert ann.traffic.dialogs == [] and bob.traffic.dialogs == []
