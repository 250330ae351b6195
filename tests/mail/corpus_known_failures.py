"""Corpus cases that fail today, each with the reason; tests fail when a new case breaks or one starts passing."""

# Multilingual mail text is the point here: confusable letters are intentional.
# ruff: noqa: RUF001, E501

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
        "emails/delimiters.txt": "visible 'This is not a ---------- delimiter.\\n\\nBut there should be no",
        "emails/embedded_email_11.txt": "visible 'Before\\n\\n2016-03-03 17:21 GMT+01:00 Some One\\n\\nAfter' != 'B",
        "emails/embedded_email_12.txt": "visible 'One 1\\n\\nOn Thu, 31 Mar 2016 at 11:16 Some One\\n\\n<\\nmailto:S",
        "emails/embedded_email_17.txt": "visible 'On 15 May 2017 19:32, \"Nomadic Sprite\" <nomadic.sprite01@gma'",
        "emails/embedded_email_18.txt": "visible 'On 8 May 2017 17:34, \"Andy Jones\" <Andy.Jones@jameshall.co.u'",
        "emails/embedded_email_2.txt": "visible 'I have checked the available documentation/links to find out'",
        "emails/embedded_email_4.txt": 'visible "If I do exactly that, then the test group won\'t be saved aft"',
        "emails/embedded_email_7.txt": "visible 'This is a line before the embedded email.' != 'This is a line",
        "emails/embedded_email_9.txt": "visible 'Bar\\n\\n*-------- Original Message --------*\\n\\nTHE END.' != '",
        "emails/embedded_email_french_2.txt": "visible 'Le 2016-11-16 02:22, Erlend Sogge Heggen a écrit\\xa0:\\n> erle",
        "emails/embedded_email_german_4.txt": "visible 'Hi there! I am replying from my german Google Inbox.\\n\\nMax M",
        "emails/embedded_email_german_5.txt": "visible 'Okay. Will give it a whirl.\\n\\nErlend Sogge Heggen <meta@disc",
        "emails/embedded_email_norwegian.txt": "visible 'Thanx :-)\\n\\nSendt fra min iPad' != 'Thanx :-)'",
        "emails/embedded_email_quote_text.txt": "visible 'On Mon, Aug 19, 2013 at 2:36 AM, SomeOne via Discourse Meta '",
        "emails/forwarded_message.txt": "visible '---------- Forwarded message ----------\\nFrom: Some One <foo@",
        "emails/signatures.txt": "visible 'This email was sent from way too much different devices ;)\\n\\",
        "emails/spam_1.txt": "visible '> On Thu, Apr 30, 2020 at 10:07 AM, \"someone\" <someone@examp'",
    },
    "talon": {
        "plain_inline[0] test_too_many_lines": "visible 'Test reply\\nHi'",
        "plain_inline[2] test_pattern_on_date_polymail": "visible 'Test reply\\n\\nOn Tue, Apr 11, 2017 at 10:07 PM John '",
        "plain_inline[13] test_reply_and_quotation_splitter_share_line": "visible 'reply'",
        "plain_inline[14] test_reply_after_quotations": "visible 'On 04/19/2011 07:10 AM, Roman Tkachenko wrote:\\n\\n>\\n'",
        "plain_inline[15] test_android_wrote": "visible 'Test reply\\n\\n---- John Smith wrote ----'",
        "plain_inline[16] test_reply_wraps_quotations": "visible 'Test reply'",
        "plain_inline[17] test_reply_wraps_nested_quotations": "visible 'Test reply'",
        "plain_inline[18] test_quotation_separator_takes_2_lines": "visible 'Test reply'",
        "plain_inline[21] test_with_indent": "visible 'YOLO salvia cillum kogi typewriter mumblecore card'",
        "plain_inline[23] test_pattern_date_email_with_unicode": "visible 'Replying ok\\n2011/4/7 Nathan Ð¸ova <support@example'",
        "plain_inline[33] test_dutch_from_block": "visible 'Gluten-free culpa lo-fi et nesciunt nostrud.\\n\\nOp 1'",
        "plain_inline[42] test_dont_parse_quotations_for_forwarded_messages": "visible 'FYI'",
        "standard_replies/iphone.eml": "visible 'Hello'",
        "standard_replies/sparrow.eml": "visible 'Hello'",
        "standard_replies/thunderbird.eml": "visible 'On 04/02/2012 06:26 PM, Megan One wrote:\\n> Hi \\nHel'",
    },
}
