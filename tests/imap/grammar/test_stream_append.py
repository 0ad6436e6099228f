"""The reader's streamed APPEND literals (``stream_append``): chunks handed out as
they come, the same commands whatever the chunking, the caps kept."""

from __future__ import annotations

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import duck.imap.grammar as g

from . import strategies as gs
from .helpers import drive

relaxed = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def _merged(events: list[object]) -> list[object]:
    """Consecutive chunks joined: what must not depend on how the input was cut."""
    out: list[object] = []
    for e in events:
        if isinstance(e, g.LiteralChunk) and out and isinstance(out[-1], g.LiteralChunk):
            out[-1] = g.LiteralChunk(out[-1].data + e.data)
        else:
            out.append(e)
    return out


def _rebuilt(events: list[object]) -> list[g.Command]:
    """The commands with each streamed message's octets put back."""
    commands: list[g.Command] = []
    literals: dict[int, bytes] = {}
    current: tuple[int, bytearray] | None = None
    for e in events:
        if isinstance(e, g.AppendLiteral):
            current = (e.head.index, bytearray())
        elif isinstance(e, g.LiteralChunk):
            assert current is not None and e.data
            current[1].extend(e.data)
        elif isinstance(e, g.LiteralEnd):
            assert current is not None and len(current[1]) == e.size
            literals[current[0]] = bytes(current[1])
            current = None
        elif isinstance(e, g.Append):
            messages = tuple(
                attrs.evolve(m, data=literals.pop(i), streamed=False) if m.streamed else m
                for i, m in enumerate(e.messages))
            assert not literals
            commands.append(attrs.evolve(e, messages=messages))
        elif isinstance(e, g.Command):
            commands.append(e)
    return commands


def _stream_reader(**kwargs: object) -> g.CommandReader:
    return g.CommandReader(stream_append=True, **kwargs)  # type: ignore[arg-type]


@relaxed
@given(st.lists(gs.commands, min_size=1, max_size=4),
       st.lists(st.integers(0, 10_000), max_size=8), st.booleans())
def test_streamed_reader_chunking_invariance(cmds: list[g.Command], cuts: list[int],
                                             plus: bool) -> None:
    stream = b"".join(g.serialize_command(c, literal_plus=plus) for c in cmds)
    whole = _merged(drive(_stream_reader(), [stream]))
    assert _rebuilt(whole) == cmds
    assert _merged(drive(_stream_reader(), [bytes([b]) for b in stream])) == whole
    assert _merged(drive(_stream_reader(), _split(stream, cuts))) == whole
    # Every plain or UTF8-wrapped APPEND message is streamed; CATENATE is kept.
    for e in whole:
        if isinstance(e, g.Append):
            assert all(m.streamed != isinstance(m.data, g.Catenate) for m in e.messages)


@relaxed
@given(st.binary(max_size=400), st.lists(st.integers(0, 1000), max_size=6), st.booleans())
def test_streamed_reader_totality_on_any_bytes(data: bytes, cuts: list[int],
                                               accept: bool) -> None:
    limits = g.Limits(max_line=200, max_literal=300, max_command=600, max_depth=8)
    for prefix in (b"", b"a APPEND INBOX {3+}\r\n", b"a APPEND INBOX (\\Seen) {9}\r\n"):
        events = drive(_stream_reader(limits=limits), _split(prefix + data, cuts),
                       accept=accept)
        chunks = [e for e in events if isinstance(e, g.LiteralChunk)]
        assert all(c.data for c in chunks)


def test_chunks_are_handed_out_before_the_literal_is_complete() -> None:
    r = _stream_reader()
    r.receive_data(b"a APPEND Drafts (\\Draft) {1000000}\r\n")
    event = r.next_event()
    assert isinstance(event, g.ContinuationNeeded) and event.size == 1_000_000
    r.accept_literal()
    start = r.next_event()
    assert start == g.AppendLiteral(g.AppendHead("a", "Drafts", 0, ("\\Draft",)), 1_000_000,
                                    False)
    assert r.next_event() is g.NEED_DATA
    r.receive_data(b"x" * 70_000)
    assert r.next_event() == g.LiteralChunk(b"x" * 70_000)
    assert r.next_event() is g.NEED_DATA
    # The streamed octets are not held: nothing of them stays buffered or announced.
    assert r.statistics().buffered == 0
    assert r.announced == len(b"a APPEND Drafts (\\Draft) {1000000}\r\n")
    r.receive_data(b"y" * 930_000 + b"\r\nb NOOP\r\n")
    assert r.next_event() == g.LiteralChunk(b"y" * 930_000)
    assert r.next_event() == g.LiteralEnd(1_000_000)
    cmd = r.next_event()
    assert isinstance(cmd, g.Append) and cmd.messages[0].streamed
    assert cmd.messages[0].data == b"" and cmd.messages[0].flags == ("\\Draft",)
    assert r.next_event() == g.Noop("b")


def test_literal_octets_are_never_commands() -> None:
    body = b"x\r\nb LOGOUT\r\nc APPEND INBOX {5+}\r\n"
    events = _merged(drive(_stream_reader(), [
        b"a APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\nd NOOP\r\n"]))
    assert [type(e) for e in events] == [g.AppendLiteral, g.LiteralChunk, g.LiteralEnd,
                                         g.Append, g.Noop]
    assert events[1] == g.LiteralChunk(body)


def test_over_limit_literal_is_refused_before_streaming() -> None:
    r = _stream_reader(limits=g.Limits(max_literal=100))
    events = drive(r, [b"a APPEND INBOX {101}\r\n"])
    assert events == [("error", "LiteralTooLarge", "a", False)]
    # Non-synchronizing: swallowed (never streamed), then the next command.
    events = drive(r, [b"b APPEND INBOX {200+}\r\n" + b"z" * 200 + b"\r\nc NOOP\r\n"])
    assert events == [("error", "LiteralTooLarge", "b", False), g.Noop("c")]


def test_literal_minus_caps_streamed_literals_too() -> None:
    r = _stream_reader(limits=g.Limits(literal_plus=False))
    events = drive(r, [b"a APPEND INBOX {4097+}\r\n" + b"q" * 4097 + b"\r\nb NOOP\r\n"])
    assert events == [("error", "LiteralTooLarge", "a", False), g.Noop("b")]


def test_streamed_literals_count_towards_the_command_cap() -> None:
    r = _stream_reader(limits=g.Limits(max_command=300))
    events = drive(r, [b"a APPEND INBOX {200}\r\n"])
    assert isinstance(events[-1], g.AppendLiteral)
    events = drive(r, [b"z" * 200 + b" {200}\r\n"])
    assert events[-2:] == [g.LiteralEnd(200), ("error", "CommandTooLarge", "a", False)]


def test_rejected_synchronizing_literal_streams_nothing() -> None:
    events = drive(_stream_reader(), [b"a APPEND INBOX {10}\r\nb NOOP\r\n"], accept=False)
    assert events == [("continue", "a", 10, False), g.Noop("b")]


def test_bad_line_after_a_streamed_literal_fails_the_command_only() -> None:
    events = _merged(drive(_stream_reader(), [b"a APPEND INBOX {3+}\r\nabc junk\r\nb NOOP\r\n"]))
    assert events[:3] == [g.AppendLiteral(g.AppendHead("a", "INBOX", 0), 3, False),
                          g.LiteralChunk(b"abc"), g.LiteralEnd(3)]
    assert events[3] == ("error", "ParseError", "a", False)
    assert events[4] == g.Noop("b")


def test_catenate_text_and_mailbox_literals_are_kept() -> None:
    wire = (b"a APPEND {5+}\r\nSent~ CATENATE (TEXT ~{2+}\r\nhi URL \"/INBOX;UID=1\")"
            b" ~{3+}\r\nb\x00c\r\n")
    events = _merged(drive(_stream_reader(), [wire]))
    assert events[0] == g.AppendLiteral(g.AppendHead("a", "Sent~", 1), 3, True)
    cmd = events[-1]
    assert isinstance(cmd, g.Append) and cmd.mailbox == "Sent~"
    assert cmd.messages[0].data == g.Catenate((g.CatText(b"hi", True),
                                               g.CatUrl("/INBOX;UID=1")))
    assert cmd.messages[1].streamed and cmd.messages[1].binary


def test_without_stream_append_nothing_changes() -> None:
    events = drive(g.CommandReader(), [b"a APPEND INBOX {3+}\r\nabc\r\n"])
    assert events == [g.Append("a", "INBOX", (g.AppendMessage(b"abc"),))]


def test_every_message_of_a_long_multiappend_is_streamed() -> None:
    # Each head is parsed from what followed the previous literal: linear work.
    wire = b"a APPEND INBOX" + b" (\\Seen) {1+}\r\nx" * 3000 + b"\r\n"
    events = drive(_stream_reader(), [wire])
    starts = [e for e in events if isinstance(e, g.AppendLiteral)]
    assert [s.head.index for s in starts] == list(range(3000))
    cmd = events[-1]
    assert isinstance(cmd, g.Append) and len(cmd.messages) == 3000
    assert all(m.streamed and m.flags == ("\\Seen",) for m in cmd.messages)


def test_a_long_skeleton_ends_streaming_for_the_rest_of_the_command() -> None:
    parts = b" ".join([b"TEXT {1+}\r\ny"] * 2000)
    wire = b"a APPEND INBOX CATENATE (" + parts + b") {3+}\r\nabc\r\n"
    events = drive(_stream_reader(), [wire])
    assert not any(isinstance(e, g.AppendLiteral) for e in events)
    cmd = events[-1]
    assert isinstance(cmd, g.Append) and cmd.messages[1] == g.AppendMessage(b"abc")
