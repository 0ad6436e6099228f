"""RFC examples: APPEND, MULTIAPPEND, CATENATE, BINARY and UTF8 append data."""

from __future__ import annotations

import datetime as dt

import duck.imap.grammar as g

from .helpers import drive, parse_one, roundtrip

MSG = (b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nFrom: Fred Foobar <foobar@Blurdybloop.COM>"
       b"\r\nSubject: afternoon meeting\r\n\r\nHello Joe, do you think we can meet at 3:30?\r\n")


def test_append_rfc3501_with_continuation() -> None:
    r = g.CommandReader()
    head = b'A003 APPEND saved-messages (\\Seen) {%d}\r\n' % len(MSG)
    events = drive(r, [head, MSG, b"\r\n"])
    assert events[0] == ("continue", "A003", len(MSG), False)
    assert events[1] == g.Append("A003", "saved-messages", (g.AppendMessage(MSG, ("\\Seen",)),))
    assert g.serialize_command(events[1]) == head + MSG + b"\r\n"  # type: ignore[arg-type]


def test_append_with_date() -> None:
    cmd = roundtrip(b'A1 APPEND INBOX (\\Seen \\Draft) " 7-Feb-1994 21:52:25 -0800" {5+}\r\nhello')
    assert isinstance(cmd, g.Append)
    expected = dt.datetime(1994, 2, 7, 21, 52, 25, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    assert cmd.messages[0].date == expected
    assert cmd.messages[0].flags == ("\\Seen", "\\Draft")


def test_multiappend_rfc3502() -> None:
    cmd = roundtrip(b"A003 APPEND saved-messages (\\Seen) {4+}\r\nmsg1 (\\Seen) {4+}\r\nmsg2")
    assert isinstance(cmd, g.Append)
    assert [m.data for m in cmd.messages] == [b"msg1", b"msg2"]


def test_catenate_rfc4469() -> None:
    cmd = roundtrip(
        b'A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE '
        b'(URL "/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER" TEXT {4+}\r\n\r\n\r\n '
        b'URL "/Drafts;UIDVALIDITY=385759045/;UID=20'
        b'/;section=1.MIME" URL "/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1")',
        canonical=False,
    )
    assert isinstance(cmd, g.Append)
    data = cmd.messages[0].data
    assert isinstance(data, g.Catenate)
    assert data.parts[1] == g.CatText(b"\r\n\r\n")
    assert isinstance(data.parts[0], g.CatUrl) and data.parts[0].url.endswith("section=HEADER")


def test_binary_and_utf8_append() -> None:
    cmd = roundtrip(b"A1 APPEND INBOX ~{3+}\r\na\x00b")
    assert isinstance(cmd, g.Append) and cmd.messages[0] == g.AppendMessage(b"a\x00b", binary=True)
    cmd = roundtrip(b"A2 APPEND INBOX UTF8 (~{4+}\r\n\xc3\xa4xy)")  # RFC 6855 §4
    assert isinstance(cmd, g.Append) and cmd.messages[0].utf8


def test_append_literal_data_never_parsed_even_if_it_looks_like_syntax() -> None:
    data = b'") A2 LOGOUT\r\n{5}\r\n'
    cmd = parse_one(b"A1 APPEND x {%d+}\r\n" % len(data) + data + b"\r\n")
    assert isinstance(cmd, g.Append) and cmd.messages[0].data == data
