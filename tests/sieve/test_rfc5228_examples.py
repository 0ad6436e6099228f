"""The examples of RFC 5228 run as tests."""

from __future__ import annotations

import pytest

from duck.sieve import Discard, FileInto, Keep, Redirect

from .helpers import message, outcome

EXAMPLE_9_1 = """#
# Example Sieve Filter
# Declare any optional features or extension used by the script
#
require ["fileinto"];

#
# Handle messages from known mailing lists
# Move messages from IETF filter discussion list to filter mailbox
#
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
#
# Keep all messages to or from people in my company
#
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }

#
# Try and catch unsolicited email.  If a message is not to me,
# or it contains a subject known to be spam, file it away.
#
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        # Move all other (non-company) mail to "personal"
        # mailbox.
        fileinto "personal";
        }
"""


@pytest.mark.parametrize(("headers", "expected"), [
    ("Sender: owner-ietf-mta-filters@imc.org\nFrom: a@b.org\nTo: me@example.com",
     FileInto("filter")),
    ("From: boss@EXAMPLE.com\nTo: someone@else.org", Keep()),
    ("From: x@y.org\nTo: other@else.org", FileInto("spam")),
    ("From: x@y.org\nCc: me@example.com\nSubject: MAKE your MONEY very FAST",
     FileInto("spam")),
    ("From: x@y.org\nCc: Me <me@example.com>\nSubject: a real University diplomas",
     FileInto("spam")),
    ("From: x@y.org\nBcc: me@example.com\nSubject: lunch", FileInto("personal")),
])
def test_example_9_1(headers: str, expected: object) -> None:
    result = outcome(EXAMPLE_9_1, message(headers))
    assert result.error is None
    assert result.actions == (expected,)


REDIRECT_CHAIN = """
if header :contains ["From"] ["coyote"] {
   redirect "acm@example.com";
} elsif header :contains "Subject" "$$$" {
   redirect "postmaster@example.com";
} else {
   redirect "field@example.com";
}
"""


@pytest.mark.parametrize(("headers", "address"), [
    ("From: Wile E. Coyote <coyote@desert.example.org>", "acm@example.com"),
    ("From: a@b.c\nSubject: get $$$ now", "postmaster@example.com"),
    ("From: a@b.c\nSubject: hi", "field@example.com"),
])
def test_section_3_1_if_elsif_else(headers: str, address: str) -> None:
    assert outcome(REDIRECT_CHAIN, message(headers)).actions == (Redirect(address),)


def test_section_4_1_fileinto() -> None:
    script = 'require "fileinto";\nif header :contains ["from"] "coyote" {\n' \
             '   fileinto "INBOX.harassment";\n}'
    assert outcome(script, message("From: coyote@x.org")).actions == (
        FileInto("INBOX.harassment"),)
    assert outcome(script, message("From: roadrunner@x.org")).actions == (
        Keep(implicit=True),)


def test_section_4_3_keep_and_size() -> None:
    script = "if size :under 1M { keep; } else { discard; }"
    assert outcome(script, message("From: a@b.c")).actions == (Keep(),)
    big = message("From: a@b.c", "x" * (1024 * 1024 + 10))
    assert outcome(script, big).actions == (Discard(),)


def test_section_4_4_discard() -> None:
    script = 'if header :contains ["from"] ["idiot@example.com"] {\n  discard;\n}'
    assert outcome(script, message("From: The Idiot <idiot@example.com>")).actions == (
        Discard(),)


def test_section_5_1_address_all() -> None:
    script = 'if address :is :all "from" "tim@example.com" {\n   discard;\n}'
    assert outcome(script, message("From: Tim <TIM@example.com>")).actions == (Discard(),)
    assert outcome(script, message("From: tom@example.com")).actions == (
        Keep(implicit=True),)


def test_section_5_2_allof_5_3_anyof_5_8_not() -> None:
    script = ('if allof (header :contains "From" "Cat", header :contains "to" "Dog") '
              '{ discard; }\nif anyof (false, not true) { keep; }')
    assert outcome(script, message("From: Cat\nTo: Dog")).actions == (Discard(),)
    assert outcome(script, message("From: Cat\nTo: Mouse")).actions == (
        Keep(implicit=True),)


def test_section_5_4_envelope() -> None:
    script = 'require "envelope";\nif envelope :all :is "from" "tim@example.com" {\n' \
             '   discard;\n}'
    assert outcome(script, message("From: x@y", sender="tim@example.com")).actions == (
        Discard(),)
    null_sender = 'require "envelope"; if envelope :localpart :is "from" "" { discard; }'
    assert outcome(null_sender, message("From: x@y", sender="")).actions == (Discard(),)


def test_section_5_5_exists() -> None:
    script = 'if not exists ["From","Date"] { discard; }'
    assert outcome(script, message("From: a@b\nDate: today")).actions == (
        Keep(implicit=True),)
    assert outcome(script, message("From: a@b")).actions == (Discard(),)


def test_section_5_9_size() -> None:
    script = "if size :over 500K { discard; }"
    assert outcome(script, message("X: y", "z" * 600_000)).actions == (Discard(),)
    assert outcome(script, message("X: y", "z" * 400_000)).actions == (Keep(implicit=True),)


def test_section_2_7_1_matches_wildcards_and_escapes() -> None:
    script = ('if header :matches "Subject" "*money*" { discard; }\n'
              'if header :matches "X" "a\\\\*b?" { keep; }')
    assert outcome(script, message("Subject: more MONEY please")).actions == (Discard(),)
    assert outcome(script, message("Subject: hi\nX: a*bc")).actions == (Keep(),)
    assert outcome(script, message("Subject: hi\nX: axbc")).actions == (Keep(implicit=True),)


def test_comparators() -> None:
    octet = 'if header :is :comparator "i;octet" "X" "Abc" { discard; }'
    assert outcome(octet, message("X: abc")).actions == (Keep(implicit=True),)
    assert outcome(octet, message("X: Abc")).actions == (Discard(),)
    numeric = ('require "comparator-i;ascii-numeric";\n'
               'if header :is :comparator "i;ascii-numeric" "X" "42" { discard; }')
    assert outcome(numeric, message("X: 0042 apples")).actions == (Discard(),)
    assert outcome(numeric, message("X: 43")).actions == (Keep(implicit=True),)


def test_header_rfc2047_is_decoded() -> None:
    script = 'if header :contains "Subject" "Grüße" { discard; }'
    assert outcome(script, message("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus")).actions == (
        Discard(),)


def test_stop_ends_the_script() -> None:
    script = 'require "fileinto"; fileinto "a"; stop; fileinto "b";'
    assert outcome(script, message("X: y")).actions == (FileInto("a"),)


def test_duplicate_deliveries_to_one_mailbox_are_one() -> None:
    # RFC 5228 section 2.10.3: keep and fileinto "INBOX" store one copy.
    script = 'require "fileinto"; keep; fileinto "INBOX"; fileinto "a"; fileinto "a";'
    assert outcome(script, message("X: y")).actions == (Keep(), FileInto("a"))


def test_runtime_error_keeps() -> None:
    script = 'require ["variables"]; set "a" "not an address"; redirect "${a}";'
    result = outcome(script, message("X: y"))
    assert result.error is not None and result.error.line == 1
    assert result.actions == (Keep(implicit=True),)
