"""The extensions: vacation (RFC 5230 examples), variables, imap4flags, relational,
subaddress, date/index, body, include, duplicate, mailbox, reject, copy."""

from __future__ import annotations

import pytest

from duck.sieve import Discard, FileInto, Keep, NoHooks, Redirect, Reject, Vacation

from .helpers import message, outcome


def _vacation(result: object) -> Vacation:
    actions = result.actions  # type: ignore[attr-defined]
    found = [a for a in actions if isinstance(a, Vacation)]
    assert len(found) == 1, actions
    return found[0]


def test_rfc5230_subject_choice() -> None:
    script = ('require "vacation";\nif header :contains "subject" "cyrus" {\n'
              '    vacation "I\'m out -- send mail to cyrus-bugs";\n} else {\n'
              '    vacation "I\'m out -- call me at 321-1234";\n}')
    assert _vacation(outcome(script, message("Subject: cyrus bug"))).reason == (
        "I'm out -- send mail to cyrus-bugs")
    result = outcome(script, message("Subject: hi"))
    assert _vacation(result).reason == "I'm out -- call me at 321-1234"
    assert Keep(implicit=True) in result.actions  # vacation does not cancel the keep


def test_rfc5230_days_and_addresses() -> None:
    script = ('require "vacation";\nvacation :days 23 :addresses ["tjs@example.edu",\n'
              '                              "ts4z@landru.example.edu"]\n'
              '   "I\'m away until October 19.\n'
              '   If it\'s an emergency, call 911, I guess." ;')
    v = _vacation(outcome(script, message("Subject: x")))
    assert v.period == 23 * 86400
    assert v.addresses == ("tjs@example.edu", "ts4z@landru.example.edu")
    assert "October 19.\r\n   If it's" in v.reason


def test_rfc5230_redirect_or_vacation() -> None:
    script = ('require "vacation";\nif header :contains "from" "boss@example.edu" {\n'
              '    redirect "pleeb@xanadu.example.edu";\n} else {\n'
              '    vacation "Sorry, I\'m away, I\'ll read your\nmessage when I get around '
              'to it.";\n}')
    assert outcome(script, message("From: boss@example.edu")).actions == (
        Redirect("pleeb@xanadu.example.edu"),)
    assert _vacation(outcome(script, message("From: a@b.c"))).period == 7 * 86400


def test_rfc5230_subject_and_mime_and_handle() -> None:
    script = ('require "vacation";\nif address :matches "from" "*@ourdivision.example.com"\n'
              '{\n    vacation :subject "Gone fishing"\n'
              '             "Having lots of fun! Back in a day or two!";\n} else {\n'
              '    vacation :subject "Je suis parti cette semaine"\n'
              '             "Je lis mon courrier quand je rentre.";\n}')
    assert _vacation(outcome(script, message("From: a@ourdivision.example.com"))
                     ).subject == "Gone fishing"
    mime = ('require "vacation";\nvacation :mime text:\n'
            'Content-Type: multipart/alternative; boundary=foo\n\n--foo\n\n'
            "I'm at the beach relaxing.  Mmmm, surf...\n\n--foo--\n.\n;")
    v = _vacation(outcome(mime, message("From: a@b.c")))
    assert v.mime and v.reason.startswith("Content-Type: multipart/alternative")
    handles = ('require "vacation";\nif header :contains "subject" "lunch" {\n'
               '    vacation :handle "ran-away" "I\'m out and can\'t meet for lunch";\n'
               '} else {\n    vacation :handle "ran-away" "I\'m out";\n}')
    assert _vacation(outcome(handles, message("Subject: lunch"))).handle == "ran-away"
    assert _vacation(outcome(handles, message("Subject: x"))).handle == "ran-away"


def test_vacation_seconds_and_variables_in_subject() -> None:
    script = ('require ["vacation", "vacation-seconds", "variables"];\n'
              'if header :matches "subject" "*" {\n'
              '  vacation :seconds 1800 :subject "Automatic response to: ${1}" "I\'m away";\n}')
    v = _vacation(outcome(script, message("Subject: Your order")))
    assert v.period == 1800 and v.subject == "Automatic response to: Your order"


def test_vacation_days_clamped_and_one_per_message() -> None:
    v = _vacation(outcome('require "vacation"; vacation :days 0 "x";', message("X: y")))
    assert v.period == 86400
    twice = outcome('require "vacation"; vacation "x"; vacation "y";', message("X: y"))
    assert twice.error is not None and twice.actions == (Keep(implicit=True),)


def test_variables_and_modifiers() -> None:
    script = ('require ["variables", "fileinto"];\n'
              'if header :matches "List-ID" "*<*@*" {\n'
              '  set :lower :upperfirst "name" "${2}";\n'
              '  set :length "len" "${name}";\n'
              '  fileinto "lists.${name}.${len}";\n}')
    result = outcome(script, message("List-ID: Sieve <SIEVE.lists@example.org>"))
    assert result.actions == (FileInto("lists.Sieve.lists.11"),)
    quoted = ('require "variables"; set :quotewildcard "q" "a*b?"; '
              'if string :is "${q}" "a\\\\*b\\\\?" { discard; }')
    assert outcome(quoted, message("X: y")).actions == (Discard(),)
    unknown = 'require "variables"; if string :is "${nope}x${1}" "x" { discard; }'
    assert outcome(unknown, message("X: y")).actions == (Discard(),)


def test_imap4flags() -> None:
    script = ('require ["imap4flags", "fileinto", "copy"];\n'
              'setflag "\\\\seen";\naddflag ["$Label1", "\\\\Flagged junk"];\n'
              'removeflag "junk";\n'
              'if hasflag :contains "label" { fileinto :copy :flags "\\\\Answered" "a"; }\n'
              'addflag "flagvar" "x";\n')
    result = outcome(script, message("X: y"))
    assert result.actions == (FileInto("a", ("\\Answered",)),
                              Keep(("\\Seen", "$Label1", "\\Flagged"), implicit=True))
    keep = 'require "imap4flags"; keep :flags ["\\\\Deleted", "bad(flag", "\\\\Recent"];'
    assert outcome(keep, message("X: y")).actions == (Keep(("\\Deleted",)),)


def test_relational() -> None:
    script = ('require ["relational", "comparator-i;ascii-numeric"];\n'
              'if header :value "gt" :comparator "i;ascii-numeric" "X-Spam" "5" { discard; }\n'
              'if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "3" '
              '{ keep; }')
    assert outcome(script, message("X-Spam: 7")).actions == (Discard(),)
    assert outcome(script, message("X-Spam: 3\nTo: a@b, c@d\nCc: e@f")).actions == (Keep(),)
    assert outcome(script, message("X-Spam: 3\nTo: a@b")).actions == (Keep(implicit=True),)


def test_subaddress() -> None:
    script = ('require ["envelope", "subaddress", "fileinto"];\n'
              'if envelope :detail "to" "lists" { fileinto "lists"; }\n'
              'elsif envelope :user "to" "me" { keep; }')
    assert outcome(script, message("X: y", recipient="me+lists@example.com")).actions == (
        FileInto("lists"),)
    assert outcome(script, message("X: y", recipient="me@example.com")).actions == (Keep(),)
    empty = 'require ["subaddress"]; if address :detail "to" "" { discard; }'
    assert outcome(empty, message("To: me+@x.org")).actions == (Discard(),)
    assert outcome(empty, message("To: me@x.org")).actions == (Keep(implicit=True),)


def test_date_index_and_currentdate() -> None:
    script = ('require ["date", "index", "relational"];\n'
              'if date :zone "+0000" "date" "hour" "09" { discard; }\n'
              'if date :originalzone :index 2 "received" "date" "2026-01-02" { keep; }\n'
              'if currentdate :value "ge" "date" "2026-12-01" { redirect "a@b.cc"; }')
    headers = ("Date: Fri, 4 Dec 2026 10:15:00 +0100\n"
               "Received: from a; Thu, 01 Jan 2026 23:00:00 +0000\n"
               "Received: from b; Fri, 02 Jan 2026 01:00:00 +0200")
    result = outcome(script, message(headers))
    assert Discard() in result.actions and Keep() in result.actions
    assert Redirect("a@b.cc") in result.actions
    bad = 'require "date"; if date "date" "year" "2026" { discard; }'
    assert outcome(bad, message("Date: not a date")).actions == (Keep(implicit=True),)


def test_body() -> None:
    multipart = ('Content-Type: multipart/alternative; boundary="b"\n')
    body = ("--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "VGhlIFNFQ1JFVCB3b3Jk\r\n--b\r\nContent-Type: image/png\r\n\r\nsecretpng\r\n"
            "--b--\r\n")
    text = 'require "body"; if body :text :contains "secret word" { discard; }'
    assert outcome(text, message(multipart, body)).actions == (Discard(),)
    content = 'require "body"; if body :content "image" :contains "secret" { discard; }'
    assert outcome(content, message(multipart, body)).actions == (Discard(),)
    raw = 'require "body"; if body :raw :contains "VGhlIFNFQ1JF" { discard; }'
    assert outcome(raw, message(multipart, body)).actions == (Discard(),)
    assert outcome(text, message("X: y", "nothing here")).actions == (Keep(implicit=True),)


def test_body_of_parameters_the_email_package_cannot_read() -> None:
    # RFC 2231 pieces of one parameter in both continued and plain forms: the email
    # package raises TypeError on them (parsing the boundary, or the charset), which
    # made the delivery fail; the body tests still see the text.
    script = 'require "body"; if body :text :contains "secret" { discard; }'
    charset = "Content-Type: text/plain; charset*0*=utf-8''a; charset*1=b; charset*=x"
    assert outcome(script, message(charset, "a secret\r\n")).actions == (Discard(),)
    boundary = ("Content-Type: multipart/mixed; boundary*0*=utf-8''a; boundary*1=b; "
                "boundary*=c")
    body = "--ab\r\nContent-Type: text/plain\r\n\r\nsecret\r\n--ab--\r\n"
    assert outcome(script, message(boundary, body)).actions == (Discard(),)


def test_include_once_optional_global_and_cycles() -> None:
    hooks = NoHooks(scripts={
        "personal:lists": ('require ["fileinto", "variables", "include"]; global "box"; '
                           'if header :contains "List-Id" "x" { fileinto "${box}"; return; } '
                           'discard;'),
        "personal:loop": 'require "include"; include "loop";',
        "global:spam": 'require "fileinto"; fileinto "spam";',
    })
    script = ('require ["include", "variables"];\nset "global.box" "lists";\n'
              'include :once "lists";\ninclude :once "lists";\n'
              'include :optional "missing";\ninclude :global "spam";')
    assert outcome(script, message("List-Id: x"), hooks).actions == (
        FileInto("lists"), FileInto("spam"))
    looped = outcome('require "include"; include "loop";', message("X: y"), hooks)
    assert looped.error is not None and "loop" in str(looped.error)
    missing = outcome('require "include"; include "missing";', message("X: y"), hooks)
    assert missing.error is not None and missing.actions == (Keep(implicit=True),)


def test_duplicate() -> None:
    hooks = NoHooks()
    script = 'require "duplicate"; if duplicate { discard; }'
    msg = message("Message-ID: <abc@x>")
    assert outcome(script, msg, hooks).actions == (Keep(implicit=True),)
    assert outcome(script, msg, hooks).actions == (Discard(),)
    no_id = message("X: y")
    assert outcome(script, no_id, hooks).actions == (Keep(implicit=True),)
    unique = 'require "duplicate"; if duplicate :uniqueid "k" :handle "h" { discard; }'
    assert outcome(unique, no_id, hooks).actions == (Keep(implicit=True),)
    assert outcome(unique, no_id, hooks).actions == (Discard(),)


def test_mailbox_create_and_exists_and_copy() -> None:
    hooks = NoHooks(mailboxes=["INBOX", "Work"])
    script = ('require ["mailbox", "fileinto", "copy"];\n'
              'if mailboxexists "Work" { fileinto :copy "Work"; }\n'
              'if not mailboxexists ["Work", "New"] { fileinto :create "New"; }\n'
              'redirect :copy "x@example.org";')
    assert outcome(script, message("X: y"), hooks).actions == (
        FileInto("Work"), FileInto("New", create=True), Redirect("x@example.org"))


@pytest.mark.parametrize("word", ["reject", "ereject"])
def test_reject(word: str) -> None:
    script = f'require "{word}"; if header :contains "From" "spam" {{ {word} "go away"; }}'
    assert outcome(script, message("From: spam@x.org")).actions == (
        Reject("go away", word == "ereject"),)
    both = outcome(f'require ["{word}", "fileinto"]; fileinto "a"; {word} "no";',
                   message("X: y"))
    assert both.error is not None and both.actions == (Keep(implicit=True),)


def test_limits() -> None:
    many = 'require "copy";' + "".join(f'redirect :copy "a{i}@x.org";' for i in range(6))
    result = outcome(many, message("X: y"))
    assert result.error is not None and "redirects" in str(result.error)
    assert result.actions == (Keep(implicit=True),)
