"""Real mailing-list mboxes (perl-mail-thread) through the real intake: a reply thread is one conversation.

Mail::Thread's expected trees for the `nosubject` mboxes come from In-Reply-To/References alone,
which is what Postdesk must honour whatever the subject says; the other mboxes expect JWZ's subject
grouping across different senders, which Postdesk deliberately does not do (a stranger's "Re: X"
is not the customer's conversation), so for them only completion is asserted here and the overlap
is measured in bench/corpus.py.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

# corpus_checks reads every corpus for the mail tests next door; pytest puts only src/ and tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "mail"))

import corpus_checks
from mail_factory import CORPORA

from factories import make_mailbox
from postdesk.desk.intake import accept_raw
from postdesk.desk.models import Message, ReceivedMail, ReceivedState, Source
from postdesk.mail import thread_keys
from postdesk.mail.parse import parse

pytestmark = pytest.mark.django_db

if not CORPORA.is_dir():  # pragma: no cover - depends on the machine
    pytest.skip(f"!!! CORPORA MISSING: {CORPORA} does not exist; threading corpus NOT run !!!", allow_module_level=True)

CASES = {case.mbox: case for case in corpus_checks.thread_cases()}
REFERENCES_ONLY = sorted(mbox for mbox, case in CASES.items() if not case.subject_grouping and case.tree_of)


def deliver_mbox(
    case: corpus_checks.ThreadCase, run_on_commit: Callable[..., AbstractContextManager[object]]
) -> dict[str, int]:
    """Accept every mail of the mbox in order as an import would, letting the queued processing run.

    Returns the conversation of each processed message, by Message-ID.
    """
    mailbox = make_mailbox()
    for raw in case.mails:
        with run_on_commit(execute=True):  # the queue job runs after commit; huey is immediate in tests
            accept_raw(mailbox, raw, source=Source.IMPORT)
    stuck = list(ReceivedMail.objects.exclude(state=ReceivedState.PROCESSED).values_list("state", "error"))
    assert stuck == [], f"{case.mbox}: mail not processed"
    return {
        m.message_id: m.conversation_id
        for m in Message.objects.filter(mailbox=mailbox).only("message_id", "conversation_id")
        if m.message_id
    }


@pytest.mark.parametrize("mbox", sorted(CASES))
def test_every_mail_of_every_mbox_is_processed(mbox: str, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    # testbox-6 holds a References loop, others have parents that never arrive: none may leave mail stuck.
    case = CASES[mbox]
    conversation_of = deliver_mbox(case, django_capture_on_commit_callbacks)
    assert Message.objects.count() == len(case.mails)
    assert set(case.tree_of) <= set(conversation_of)


@pytest.mark.parametrize("mbox", REFERENCES_ONLY)
def test_each_reference_thread_is_exactly_one_conversation(mbox: str, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    case = CASES[mbox]
    # Postdesk also joins a reply to an earlier conversation by subject, but only for the same sender with
    # the same normalised subject (docs/adr/0001, processing._find_thread). Such a join of two trees would be
    # legitimate, so the expected conversations would no longer be the trees. In these mboxes no two trees
    # share a (sender, normalised subject) pair, so the rule cannot legitimately join any two of them and the
    # trees must come out exactly; this premise is checked first, so a changed corpus fails loudly here
    # instead of being judged against the wrong expectation.
    keys_by_tree: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for raw in case.mails:
        parsed = parse(raw)
        if parsed.message_id in case.tree_of and parsed.from_ is not None:
            keys_by_tree[case.tree_of[parsed.message_id]].add(
                (parsed.from_.key, thread_keys.normalize_subject(parsed.subject))
            )
    trees = sorted(keys_by_tree)
    for index, first in enumerate(trees):
        for second in trees[index + 1 :]:
            assert not keys_by_tree[first] & keys_by_tree[second], "the subject rule could join these trees"

    conversation_of = deliver_mbox(case, django_capture_on_commit_callbacks)

    conversations_of_tree: dict[int, set[int]] = defaultdict(set)
    trees_of_conversation: dict[int, set[int]] = defaultdict(set)
    for message_id, tree in case.tree_of.items():
        conversations_of_tree[tree].add(conversation_of[message_id])
        trees_of_conversation[conversation_of[message_id]].add(tree)
    split = {tree: sorted(c) for tree, c in conversations_of_tree.items() if len(c) > 1}
    mixed = {conversation: sorted(t) for conversation, t in trees_of_conversation.items() if len(t) > 1}
    assert split == {}, "a reply thread was split over several conversations"
    assert mixed == {}, "one conversation holds several reply threads"
    assert len(trees_of_conversation) == len(conversations_of_tree)
