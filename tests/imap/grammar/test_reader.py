"""The framing layer: lines, literals, continuations, caps, resynchronisation."""

from __future__ import annotations

import pytest

import duck.imap.grammar as g

from .helpers import drive


def test_simple_commands_and_case_insensitive_verbs() -> None:
    r = g.CommandReader()
    events = drive(r, [b"a1 noop\r\na2 Uid fetch 1:* (flags)\r\nA3 CAPABILITY\r\n"])
    assert events == [
        g.Noop("a1"),
        g.Fetch("a2", g.SequenceSet.parse("1:*"), (g.FetchAttr.FLAGS,), uid=True),
        g.Capability("A3"),
    ]


def test_synchronizing_literal_is_announced_once_and_never_parsed() -> None:
    r = g.CommandReader()
    r.receive_data(b"a1 LOGIN {11}\r\n")
    ev = r.next_event()
    assert ev == g.ContinuationNeeded("a1", 11, False)
    assert r.awaiting_literal_decision
    with pytest.raises(g.ReaderStateError):
        r.next_event()  # asked again without a decision: caller bug
    r.accept_literal()
    assert r.next_event() is g.NEED_DATA
    # The literal holds what looks like a command; it must stay data.
    r.receive_data(b"a2 LOGOUT\r")
    assert r.next_event() is g.NEED_DATA
    r.receive_data(b"\n {3}\r\n")
    assert r.next_event() == g.ContinuationNeeded("a1", 3, False)
    r.accept_literal()
    r.receive_data(b"pw!\r\n")
    assert r.next_event() == g.Login("a1", "a2 LOGOUT\r\n", "pw!")
    assert r.next_event() is g.NEED_DATA


def test_rejected_literal_resets_to_a_new_command() -> None:
    r = g.CommandReader()
    r.receive_data(b"a1 APPEND INBOX {99999}\r\n")
    ev = r.next_event()
    assert isinstance(ev, g.ContinuationNeeded) and ev.size == 99999
    r.reject_literal()
    r.receive_data(b"a2 NOOP\r\n")
    assert r.next_event() == g.Noop("a2")


def test_literal_over_limit_is_refused_before_reading() -> None:
    r = g.CommandReader(g.Limits(max_literal=100))
    r.receive_data(b"a1 APPEND INBOX {101}\r\na2 NOOP\r\n")
    with pytest.raises(g.LiteralTooLarge) as info:
        r.next_event()
    assert info.value.tag == "a1" and not info.value.fatal and info.value.code == "TOOBIG"
    assert r.next_event() == g.Noop("a2")


def test_literal_plus_needs_no_continuation() -> None:
    r = g.CommandReader()
    assert drive(r, [b"a1 LOGIN {4+}\r\nfred {3+}\r\nabc\r\n"]) == [g.Login("a1", "fred", "abc")]


def test_literal_minus_caps_non_synchronizing_literals_at_4096() -> None:
    # RFC 7888 §4: with LITERAL- a {n+} over 4096 octets is refused with TOOBIG; the
    # reader swallows the literal so the stream stays in step.
    r = g.CommandReader(g.Limits(literal_plus=False))
    data = b"a1 APPEND INBOX {4097+}\r\n" + b"x" * 4097 + b"\r\na2 NOOP\r\n"
    assert drive(r, [data]) == [("error", "LiteralTooLarge", "a1", False), g.Noop("a2")]
    ok = b"a3 APPEND INBOX {4096+}\r\n" + b"y" * 4096 + b"\r\n"
    (cmd,) = drive(r, [ok])
    assert isinstance(cmd, g.Append) and cmd.messages[0].data == b"y" * 4096


def test_discarded_literal_may_hold_command_lookalikes() -> None:
    r = g.CommandReader(g.Limits(max_literal=10))
    data = b"a1 APPEND INBOX {20+}\r\na9 LOGOUT\r\nxxxxxxx more {3+}\r\nabc\r\na2 NOOP\r\n"
    assert drive(r, [data]) == [("error", "LiteralTooLarge", "a1", False), g.Noop("a2")]


def test_over_long_line_is_fatal_and_stays_fatal() -> None:
    r = g.CommandReader(g.Limits(max_line=50))
    r.receive_data(b"a1 NOOP " + b"x" * 60)
    with pytest.raises(g.LineTooLong) as info:
        r.next_event()
    assert info.value.fatal
    r.receive_data(b"\r\na2 NOOP\r\n")
    with pytest.raises(g.LineTooLong):
        r.next_event()


def test_command_size_cap_counts_literals() -> None:
    r = g.CommandReader(g.Limits(max_command=100))
    events = drive(r, [b"a1 LOGIN {60+}\r\n" + b"u" * 60 + b" {60+}\r\n" + b"p" * 60
                       + b"\r\na2 NOOP\r\n"])
    assert events == [("error", "CommandTooLarge", "a1", False), g.Noop("a2")]


def test_bad_command_is_not_fatal_and_keeps_its_tag() -> None:
    r = g.CommandReader()
    events = drive(r, [b"a1 FROB x\r\na2 FETCH\r\n+ NOOP\r\na3 NOOP\r\n"])
    assert events == [
        ("error", "UnknownCommand", "a1", False),
        ("error", "ParseError", "a2", False),
        ("error", "ParseError", None, False),
        g.Noop("a3"),
    ]


def test_bad_command_spanning_literals_is_dropped_whole() -> None:
    r = g.CommandReader()
    events = drive(r, [b"a1 FROB {5+}\r\na2 NO\r\n\r\na3 NOOP\r\n"])
    # (The literal's 5 octets are "a2 NO"; the empty line after a1's end is an
    # error of its own.)
    assert events == [("error", "UnknownCommand", "a1", False),
                      ("error", "ParseError", None, False), g.Noop("a3")]


def test_bare_lf_and_empty_lines() -> None:
    """An empty line (CRLF or bare LF) is no command: an untagged error each
    (RFC 3501 §2.2.1: every command starts with a tag), then reading goes on."""
    r = g.CommandReader()
    assert drive(r, [b"\r\n\na1 NOOP\na2 LOGIN {1}\n", b"x y\n"]) == [
        ("error", "ParseError", None, False), ("error", "ParseError", None, False),
        g.Noop("a1"), ("continue", "a2", 1, False), g.Login("a2", "x", "y"),
    ]
    assert r.statistics().errors == 2


def test_next_line_for_idle_done_and_sasl() -> None:
    r = g.CommandReader()
    r.receive_data(b"a1 IDLE\r\nDO")
    assert r.next_event() == g.Idle("a1")
    assert r.next_line() is g.NEED_DATA
    r.receive_data(b"NE\r\na2 AUTHENTICATE PLAIN\r\nAGZyZWQAc2VjcmV0\r\na3 NOOP\r\n")
    assert r.next_line() == b"DONE"
    assert r.next_event() == g.Authenticate("a2", "PLAIN")
    assert r.next_line() == b"AGZyZWQAc2VjcmV0"
    assert r.next_event() == g.Noop("a3")


def test_next_line_is_refused_inside_a_command() -> None:
    r = g.CommandReader()
    r.receive_data(b"a1 LOGIN {3}\r\n")
    assert isinstance(r.next_event(), g.ContinuationNeeded)
    with pytest.raises(g.ReaderStateError):
        r.next_line()


def test_decisions_without_pending_literal_are_state_errors() -> None:
    r = g.CommandReader()
    with pytest.raises(g.ReaderStateError):
        r.accept_literal()
    with pytest.raises(g.ReaderStateError):
        r.reject_literal()


def test_literal8_announcement_is_binary() -> None:
    r = g.CommandReader()
    events = drive(r, [b"a1 APPEND Drafts ~{3}\r\n\x00\x01\x02\r\n"])
    assert events[0] == ("continue", "a1", 3, True)
    append = events[1]
    assert isinstance(append, g.Append)
    assert append.messages[0] == g.AppendMessage(b"\x00\x01\x02", binary=True)


def test_utf8_mailbox_names_after_enable() -> None:
    r = g.CommandReader()
    (plain,) = drive(r, [b"a1 SELECT Entw&APw-rfe\r\n"])
    r.utf8_enabled = True
    (utf8,) = drive(r, ["a2 SELECT \"Entwürfe\"\r\n".encode()])
    assert isinstance(plain, g.Select) and isinstance(utf8, g.Select)
    assert plain.mailbox == utf8.mailbox == "Entwürfe"


def test_line_scan_resumes_where_it_stopped() -> None:
    # No quadratic rescans: feeding a long line in small pieces scans each octet once.
    r = g.CommandReader(g.Limits(max_line=1 << 20))
    r.receive_data(b"a1 LOGIN ")
    for _ in range(2000):
        r.receive_data(b"x" * 64)
        assert r.next_event() is g.NEED_DATA
        assert r._scan == len(r._buf)  # white-box: the next find starts at the end
    r.receive_data(b" y\r\n")
    cmd = r.next_event()
    assert isinstance(cmd, g.Login) and len(cmd.username) == 128000


def test_statistics_count_commands_and_errors() -> None:
    r = g.CommandReader()
    drive(r, [b"a1 NOOP\r\na2 BOGUS\r\na3 NO"])
    stats = r.statistics()
    assert (stats.commands, stats.errors, stats.buffered) == (1, 1, 5)


def test_nesting_depth_is_capped() -> None:
    r = g.CommandReader(g.Limits(max_depth=5))
    deep = b"a1 SEARCH " + b"(" * 6 + b"ALL" + b")" * 6 + b"\r\n"
    assert drive(r, [deep]) == [("error", "NestingTooDeep", "a1", False)]
    ok = b"a2 SEARCH " + b"(" * 5 + b"ALL" + b")" * 5 + b"\r\n"
    assert isinstance(drive(r, [ok])[0], g.Search)


def test_deep_not_chains_are_capped_without_recursion_error() -> None:
    r = g.CommandReader()
    deep = b"a1 SEARCH " + b"NOT " * 5000 + b"ALL\r\n"
    assert drive(r, [deep]) == [("error", "NestingTooDeep", "a1", False)]


def test_command_size_cap_counts_the_final_line() -> None:
    r = g.CommandReader(g.Limits(max_command=40))
    events = drive(r, [b"a1 LOGIN {20+}\r\n" + b"u" * 20 + b" " + b"p" * 20 + b"\r\na2 NOOP\r\n"])
    assert events == [("error", "CommandTooLarge", "a1", False), g.Noop("a2")]


def test_huge_non_synchronizing_literal_is_fatal_beyond_max_discard() -> None:
    r = g.CommandReader(g.Limits(max_literal=10, max_discard=1000))
    r.receive_data(b"a1 APPEND INBOX {5000+}\r\n")
    with pytest.raises(g.LiteralTooLarge) as info:
        r.next_event()
    assert info.value.fatal and info.value.tag == "a1"


def test_synchronizing_literal_over_command_cap_is_refused_before_reading() -> None:
    r = g.CommandReader(g.Limits(max_command=50))
    r.receive_data(b"a1 APPEND INBOX {100}\r\na2 NOOP\r\n")
    with pytest.raises(g.CommandTooLarge) as info:
        r.next_event()
    assert not info.value.fatal and info.value.code == "TOOBIG"
    assert r.next_event() == g.Noop("a2")


def test_zero_length_synchronizing_literal_still_needs_a_continuation() -> None:
    r = g.CommandReader()
    assert drive(r, [b'a1 LOGIN {0}\r\n "x"\r\n']) == [
        ("continue", "a1", 0, False), g.Login("a1", "", "x")]


def test_error_codes_follow_rfc5530() -> None:
    assert g.ParseError("x").code == "PARSE"
    assert g.LiteralTooLarge("x").code == "TOOBIG"
    assert g.NestingTooDeep("x").code == "LIMIT"
    assert g.UnknownCommand("x").code is None
    assert g.ParseError("x", code="CLIENTBUG").code == "CLIENTBUG"


def test_statistics_count_a_fatal_error_once() -> None:
    r = g.CommandReader(g.Limits(max_literal=10, max_discard=100))
    drive(r, [b"a1 APPEND INBOX {500+}\r\n"])
    assert r.statistics().errors == 1
