"""The sans-IO pieces of POP3: command parsing, the state machine, replies, the
maildrop's numbering, and the multi-line transforms (no sockets, no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.pop3 import commands as c
from duck.pop3.maildrop import Entry, Maildrop, NoSuchMessage
from duck.pop3.multiline import DotStuffer, TopFilter
from duck.pop3.protocol import (
    NEED_DATA,
    ConnectionClosed,
    Pop3Protocol,
    ProtocolConfig,
    Refused,
    SaslResponse,
    State,
)
from duck.pop3.replies import MAX_REPLY_LINE, err, listing, ok

# -- commands -------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "expected"), [
    (b"STAT", c.Stat()),
    (b"stat", c.Stat()),
    (b"LIST", c.List()),
    (b"LIST 3", c.List(3)),
    (b"uidl 12", c.Uidl(12)),
    (b"RETR 1", c.Retr(1)),
    (b"DELE 2", c.Dele(2)),
    (b"TOP 4 0", c.Top(4, 0)),
    (b"TOP 4 10", c.Top(4, 10)),
    (b"USER alice@example.com", c.User("alice@example.com")),
    (b"PASS with spaces  inside", c.Pass("with spaces  inside")),
    (b"AUTH PLAIN", c.Auth("PLAIN")),
    (b"AUTH plain AGFsaWNlAHB3", c.Auth("PLAIN", "AGFsaWNlAHB3")),
    (b"AUTH", c.Auth()),
    (b"CAPA", c.Capa()),
    (b"STLS", c.Stls()),
    (b"QUIT", c.Quit()),
])
def test_parse_command(line: bytes, expected: c.Command) -> None:
    assert c.parse_command(line) == expected


@pytest.mark.parametrize("line", [
    b"", b"RETR", b"RETR 0", b"RETR x", b"RETR 1 2", b"RETR -1", b"RETR 99999999999",
    b"TOP 1", b"TOP 1 -1", b"STAT 1", b"LIST 1 2", b"XYZZY", b"PASS", b"USER",
    b"USER a b", b"RETR \xff", b"NOOP\x00", b"RETR  1", b"RETR \xd9\xa1",
])
def test_bad_commands_are_refused(line: bytes) -> None:
    with pytest.raises(c.CommandError):
        c.parse_command(line)


@given(st.binary(max_size=100))
def test_any_line_parses_or_is_a_command_error(line: bytes) -> None:
    try:
        assert isinstance(c.parse_command(line), c.Command)
    except c.CommandError:
        pass


# -- the machine ----------------------------------------------------------------------


def _events(proto: Pop3Protocol) -> list[object]:
    out = []
    while (event := proto.next_event()) is not NEED_DATA:
        out.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return out


def test_pipelined_commands_come_out_in_order_byte_by_byte() -> None:
    proto = Pop3Protocol()
    proto.logged_in()
    got: list[object] = []
    for byte in b"STAT\r\nLIST\r\nRETR 1\r\nQUIT\r\n":
        proto.receive_data(bytes([byte]))
        got += _events(proto)
    assert got == [c.Stat(), c.List(), c.Retr(1), c.Quit()]


def test_state_rules() -> None:
    proto = Pop3Protocol()

    def feed(line: bytes) -> object:
        proto.receive_data(line + b"\r\n")
        return proto.next_event()

    refused = feed(b"STAT")
    assert isinstance(refused, Refused) and "AUTHORIZATION" in refused.reply.text
    assert isinstance(feed(b"PASS x"), Refused)  # PASS before USER
    assert feed(b"USER a") == c.User("a")
    proto.user = "a"  # the server accepted USER
    assert feed(b"PASS b c") == c.Pass("b c")
    assert feed(b"USER a") == c.User("a")
    proto.user = "a"
    assert isinstance(feed(b"NOOP"), Refused)  # a TRANSACTION command
    assert isinstance(feed(b"PASS x"), Refused)  # no longer right after USER
    proto.logged_in()
    assert [type(feed(line)) for line in (b"USER a", b"STLS", b"NOOP")] == [
        Refused, Refused, c.Noop]
    assert proto.state is State.TRANSACTION


def test_over_long_line_is_refused_and_discarded() -> None:
    proto = Pop3Protocol(ProtocolConfig(max_command_line=32))
    proto.receive_data(b"X" * 20)
    assert proto.next_event() is NEED_DATA
    proto.receive_data(b"Y" * 100)
    assert proto.next_event() is NEED_DATA
    assert proto.buffered == 0  # nothing of it is kept
    proto.receive_data(b"Z\r\nCAPA\r\n")
    events = _events(proto)
    assert isinstance(events[0], Refused) and "too long" in events[0].reply.text
    assert events[1] == c.Capa()


def test_sasl_line_and_eof() -> None:
    proto = Pop3Protocol()
    proto.expect_sasl()
    proto.receive_data(b"QUIT\r\n")
    assert proto.next_event() == SaslResponse(b"QUIT")  # not taken as a command
    proto.receive_data(b"")
    assert isinstance(proto.next_event(), ConnectionClosed)


def test_errors_accumulate_until_the_limit() -> None:
    proto = Pop3Protocol(ProtocolConfig(max_errors=3))
    proto.receive_data(b"A\r\nB\r\nCAPA\r\nC\r\nD\r\n")
    _events(proto)
    assert not proto.too_many_errors  # CAPA reset the count
    proto.receive_data(b"E\r\n")
    _events(proto)
    assert proto.too_many_errors


def test_nothing_is_read_after_quit() -> None:
    proto = Pop3Protocol()
    proto.quit()
    proto.receive_data(b"STAT\r\n")
    assert isinstance(proto.next_event(), ConnectionClosed)


# -- replies --------------------------------------------------------------------------


def test_reply_lines() -> None:
    assert ok("2 320").encode() == b"+OK 2 320\r\n"
    assert err("in use", "IN-USE").encode() == b"-ERR [IN-USE] in use\r\n"
    assert err("[fake] code").encode() == b"-ERR fake] code\r\n"
    assert err("a\r\nb").encode() == b"-ERR a  b\r\n"
    assert len(ok("x" * 2000).encode()) == MAX_REPLY_LINE
    with pytest.raises(ValueError):
        err("x", "MADE-UP")
    assert listing(ok(), ["1 .x", "2 y"]) == b"+OK\r\n1 .x\r\n2 y\r\n.\r\n"
    assert listing(ok(), [".hidden"]) == b"+OK\r\n..hidden\r\n.\r\n"


# -- maildrop -------------------------------------------------------------------------


def test_maildrop_numbering_and_marks() -> None:
    drop = Maildrop([Entry(10, 100, "a"), Entry(11, 200, "b"), Entry(15, 300, "c")])
    assert drop.stat() == (3, 600)
    drop.delete(2)
    with pytest.raises(NoSuchMessage, match="is deleted"):
        drop.get(2)
    with pytest.raises(NoSuchMessage, match="no message 4"):
        drop.get(4)
    assert [n for n, _ in drop.listing()] == [1, 3]
    assert drop.stat() == (2, 400)
    drop.gone(3)
    with pytest.raises(NoSuchMessage, match="another session"):
        drop.delete(3)
    assert drop.deleted_numbers() == [2]
    drop.reset()
    assert drop.stat() == (2, 300)  # the gone message stays gone
    assert drop.get(2).uid == 11


# -- multi-line transforms -------------------------------------------------------------


def _unstuff(wire: bytes) -> bytes:
    """What a client does: lines up to the lone ".", one leading dot removed each."""
    lines = wire.split(b"\r\n")
    assert lines[-2:] == [b".", b""]
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n"
                    for line in lines[:-2])


def _stuff(message: bytes, size: int) -> bytes:
    stuffer = DotStuffer()
    out = b"".join(stuffer.feed(message[i:i + size]) for i in range(0, len(message), size))
    return out + stuffer.end()


def test_dot_stuffing() -> None:
    assert _stuff(b".a\r\nb\r\n..c\r\n.\r\n", 100) == b"..a\r\nb\r\n...c\r\n..\r\n.\r\n"
    assert _stuff(b"no end", 3) == b"no end\r\n.\r\n"
    assert _stuff(b"", 3) == b".\r\n"
    assert _stuff(b"bare\nlf\n.x\n", 1) == b"bare\r\nlf\r\n..x\r\n.\r\n"
    assert _stuff(b"cr at end\r", 4) == b"cr at end\r\n.\r\n"


_LINES = st.lists(st.sampled_from([b"", b".", b"..", b".x", b"x.", b"abc", b"\r", b" . "]),
                  max_size=12)


@given(_LINES, st.booleans(), st.integers(1, 9))
def test_stuffing_round_trips_crlf_messages(lines: list[bytes], final: bool, size: int) -> None:
    message = b"\r\n".join(line.replace(b"\r", b"") for line in lines) + (
        b"\r\n" if final and lines else b"")
    wire = _stuff(message, size)
    assert wire == _stuff(message, 1000)  # chunking never matters
    expected = message if message.endswith(b"\r\n") or not message else message + b"\r\n"
    assert _unstuff(wire) == expected


def _top(message: bytes, lines: int, size: int) -> bytes:
    top = TopFilter(lines)
    out = b""
    for i in range(0, len(message), size):
        out += top.feed(message[i:i + size])
        if top.done:
            break
    return out


MESSAGE = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 100])
def test_top(size: int) -> None:
    assert _top(MESSAGE, 0, size) == b"A: 1\r\nB: 2\r\n\r\n"
    assert _top(MESSAGE, 2, size) == b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n"
    assert _top(MESSAGE, 10, size) == MESSAGE
    assert _top(b"\r\nbody\r\nmore\r\n", 1, size) == b"\r\nbody\r\n"
    assert _top(b"A: 1\r\n", 0, size) == b"A: 1\r\n"  # no body at all


@given(st.binary(max_size=2000), st.integers(1, 64), st.booleans())
def test_any_input_gives_typed_events_and_bounded_buffers(
        data: bytes, size: int, logged_in: bool) -> None:
    config = ProtocolConfig(max_command_line=64)
    proto = Pop3Protocol(config)
    if logged_in:
        proto.logged_in()
    for i in range(0, len(data), size):
        proto.receive_data(data[i:i + size])
        while (event := proto.next_event()) is not NEED_DATA:
            assert isinstance(event, (c.Command, Refused)), event
            assert proto.buffered <= len(data)
        assert proto.buffered < config.max_command_line + size
    proto.receive_data(b"")
    assert isinstance(proto.next_event(), (ConnectionClosed, c.Command, Refused))
