"""Corpus cases that fail today, each with the reason; tests fail when a new case breaks or one starts passing."""

# Reasons quote corpus cases at length.
# ruff: noqa: E501

from __future__ import annotations

KNOWN_FAILURES: dict[str, dict[str, str]] = {
    "never_raises": {},
    "stalwart": {
        "rfc/001.eml": "a file name keeps only its last path component: '/u/nsb/writing/rfcs/RFC-MIME.ps' is 'RFC-MIME.ps'",
        "legacy/034.eml": "raw UTF-7 subject of a UTF-7 mail: we decode 'Frösche' (as zbateson m1011 expects), stalwart keeps 'Fr+APY-sche'",
        "thirdparty/007.eml": "From '<moderator>' has no domain (RFC 5322 §3.4.1): skipped as invalid-address",
        "malformed/015.eml": "a multipart/signed detached signature (signature.asc) is not an attachment (zbateson m4002/m4004 agree)",
        "malformed/020.eml": "two Content-Type headers: we take the first (multipart/alternative, as Dovecot and Python do); stalwart takes the last and expects the raw MIME as text",
        "malformed/021.eml": "two Content-Type headers: we take the first (multipart/alternative, as Dovecot and Python do); stalwart takes the last and expects the raw MIME as text",
    },
    "zbateson": {
        "emails/m1009.txt": "a named inline text part after the body is an attachment for us (JMAP rule, stalwart legacy/030); zbateson never counts inline text parts",
        "emails/m1011.txt": "the sample's UTF-7 body is corrupt ('Fr+XKM-he'); upstream comments this test out",
        "emails/m4007.txt": "the two digest messages inside the enclosed message are listed too (enclosed_in set); zbateson counts only the top-level message/rfc822",
    },
    "tnef": {},
    "flanker": {},
    "flufl": {
        "data/yale_01.txt": "Yale's directory bounce names only 'thomas.dtankengine'; we complete it from the returned mail to @yale.edu, Mailman's detector also guesses @cs.yale.edu",
    },
    "sisimai": {
        "maildir/bsd/lhost-sendmail-14.eml": "a person's 'Fwd:' of a bounce with the notice quoted ('>'): kept as human mail on purpose, the helpdesk should see their question",
    },
    "spamscope": {
        "mails/mail_malformed_1": "the zip after a nested multipart that reuses its parent's boundary is lost (no attachment)",
    },
    "discourse": {
        "emails/forwarded_apple.txt": "kept on purpose: Postdesk shows forwarded messages (Apple '> Begin forwarded message:'); the trimmer cuts them",
        "emails/forwarded_gmail.txt": "kept on purpose: Postdesk shows forwarded messages; the trimmer cuts them",
        "emails/forwarded_message.txt": "kept on purpose: the forwarded header block stays visible with the body; the trimmer keeps only the body",
        "emails/spam_1.txt": "nothing but quotes: Postdesk never leaves the visible part empty and shows the whole text; the trimmer returns ''",
    },
    "talon": {
        "plain_inline[0] test_too_many_lines": "upstream patches MAX_LINES_COUNT=1 for this case; unpatched, 'Test reply\\nHi' is right",
        "plain_inline[11] test_reply_and_quotation_splitter_share_line": "same input as plain_inline[13] with a contradicting expectation; Postdesk keeps 'bla-bla - bla' as [13] expects",
        "plain_inline[12] test_reply_and_quotation_splitter_share_line": "same input as plain_inline[13] with a contradicting expectation; Postdesk keeps 'bla-bla - bla' as [13] expects",
    },
    "talon_html": {},
}
