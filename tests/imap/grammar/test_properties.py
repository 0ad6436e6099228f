"""Hypothesis properties over every command and response: totality, value and byte
round trips, chunking invariance. Example counts come from the global profile."""

from __future__ import annotations

import itertools

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import duck.imap.grammar as g

from . import strategies as gs
from .helpers import drive

relaxed = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = []
    last = 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


# -- commands ----------------------------------------------------------------------


@relaxed
@given(gs.commands, st.booleans(), st.booleans())
def test_command_value_round_trip(cmd: g.Command, literal_plus: bool, utf8: bool) -> None:
    wire = g.serialize_command(cmd, literal_plus=literal_plus, utf8=utf8)
    assert g.parse_command(wire[:-2], utf8=utf8) == cmd
    reader = g.CommandReader(utf8_enabled=utf8)
    events = drive(reader, [wire])
    assert events[-1] == cmd
    assert all(isinstance(e, tuple) and e[0] == "continue" for e in events[:-1])


@relaxed
@given(gs.commands, gs.tags, st.booleans())
def test_command_parsed_again_is_the_same_with_its_tag(cmd: g.Command, tag: str,
                                                       utf8: bool) -> None:
    """A command's bytes parsed a second time (remembered: commands.py) give the same
    command, with the second tag, as a first parse would."""
    wire = g.serialize_command(cmd, utf8=utf8)[:-2]
    first = g.parse_command(wire, utf8=utf8)
    again = g.parse_command(tag.encode() + wire[len(cmd.tag):], utf8=utf8)
    assert first == cmd
    assert again == attrs.evolve(cmd, tag=tag)
    assert type(again) is type(cmd) and again is not first


def test_credentials_and_literals_are_not_remembered() -> None:
    from duck.imap.grammar import commands

    commands._PARSED.clear()
    g.parse_command(b'a LOGIN "user" "secret"')
    g.parse_command(b"b APPEND INBOX {3+}\r\nabc")
    g.parse_command(b"c FETCH 1 (FLAGS)")
    assert [key[2] for key in commands._PARSED] == [b" 1 (FLAGS)"]


@relaxed
@given(gs.commands)
def test_command_byte_round_trip(cmd: g.Command) -> None:
    wire = g.serialize_command(cmd, literal_plus=True)
    assert g.serialize_command(g.parse_command(wire[:-2]), literal_plus=True) == wire


@relaxed
@given(st.lists(gs.commands, min_size=1, max_size=4), st.lists(st.integers(0, 10_000),
                                                                max_size=8), st.booleans())
def test_reader_chunking_invariance(cmds: list[g.Command], cuts: list[int], plus: bool) -> None:
    stream = b"".join(g.serialize_command(c, literal_plus=plus) for c in cmds)
    whole = drive(g.CommandReader(), [stream])
    assert [e for e in whole if isinstance(e, g.Command)] == cmds
    assert drive(g.CommandReader(), [bytes([b]) for b in stream]) == whole
    assert drive(g.CommandReader(), _split(stream, cuts)) == whole
    # Trailing data of an incomplete next command changes nothing before it.
    trailing = drive(g.CommandReader(), [stream + b"z1 LOGIN {5}\r\nab"])
    assert trailing[: len(whole)] == whole
    assert trailing[len(whole):] == [("continue", "z1", 5, False)]


@relaxed
@given(st.binary(max_size=400), st.lists(st.integers(0, 1000), max_size=6), st.booleans())
def test_reader_totality_on_any_bytes(data: bytes, cuts: list[int], accept: bool) -> None:
    limits = g.Limits(max_line=200, max_literal=300, max_command=600, max_depth=8)
    events = drive(g.CommandReader(limits), _split(data, cuts), accept=accept)
    for e in events:
        assert isinstance(e, g.Command | tuple)


@relaxed
@given(st.binary(max_size=300))
def test_parse_command_totality(data: bytes) -> None:
    try:
        cmd = g.parse_command(data)
    except g.ImapProtocolError:
        return
    assert isinstance(cmd, g.Command)


@relaxed
@given(gs.commands, st.data())
def test_mutated_commands_parse_or_raise_protocol_errors(
    cmd: g.Command, data: st.DataObject
) -> None:
    wire = bytearray(g.serialize_command(cmd, literal_plus=True))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(wire) - 1))
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = data.draw(st.sampled_from(b' ()[]{}<>"\\*%+-~.:,0123456789\r\nNILax\x00\xff'))
        if op == "flip":
            wire[pos] = byte
        elif op == "insert":
            wire.insert(pos, byte)
        elif len(wire) > 1:
            del wire[pos]
    events = drive(g.CommandReader(), [bytes(wire)])
    for e in events:
        assert isinstance(e, g.Command | tuple)


# -- responses ---------------------------------------------------------------------


@relaxed
@given(gs.responses, st.booleans())
def test_response_value_and_byte_round_trip(resp: g.Response, utf8: bool) -> None:
    wire = g.serialize(resp, utf8=utf8)
    parsed = g.parse_response(wire, utf8=utf8, sasl=isinstance(resp, g.SaslChallenge))
    assert parsed == resp
    assert g.serialize(parsed, utf8=utf8) == wire


@relaxed
@given(st.lists(gs.responses, min_size=1, max_size=4), st.lists(st.integers(0, 5000),
                                                                 max_size=6))
def test_response_reader_chunking_invariance(resps: list[g.Response], cuts: list[int]) -> None:
    stream = b"".join(g.serialize(r) for r in resps)
    reader = g.ResponseReader()
    got = []
    for piece in _split(stream, cuts):
        reader.receive_data(piece)
        while (r := reader.next_response()) is not g.NEED_DATA:
            got.append(r)
    assert got == resps


@relaxed
@given(st.binary(max_size=300), st.booleans())
def test_parse_response_totality(data: bytes, sasl: bool) -> None:
    try:
        g.parse_response(data, sasl=sasl)
    except g.ImapProtocolError:
        pass


@relaxed
@given(gs.fetch_data())
def test_chunks_concatenate_to_serialize(resp: g.FetchData) -> None:
    assert b"".join(g.serialize_chunks(resp)) == g.serialize(resp)  # type: ignore[arg-type]


# -- values ------------------------------------------------------------------------


@given(gs.texts)
def test_mutf7_round_trip(name: str) -> None:
    wire = g.encode_mailbox_name(name)
    assert wire.isascii()
    assert g.decode_mailbox_name(wire) == name


@given(st.binary(max_size=50))
def test_mutf7_decoder_is_total_and_canonical(data: bytes) -> None:
    try:
        name = g.decode_mailbox_name(data)
    except ValueError:
        return
    if all(0x20 <= b < 0x7F for b in data):  # raw controls and 8-bit are leniently taken
        assert g.encode_mailbox_name(name) == data


_small = st.one_of(st.just(g.STAR), st.integers(1, 100))
small_sets = st.lists(st.tuples(_small, _small), min_size=1, max_size=4).map(
    lambda items: g.SequenceSet(tuple(items)))


@given(small_sets, st.integers(0, 60))
def test_sequence_set_resolution_matches_brute_force(s: g.SequenceSet, largest: int) -> None:
    brute: set[int] = set()
    for lo, hi in s.items:
        lo = largest if lo == g.STAR else lo
        hi = largest if hi == g.STAR else hi
        brute.update(range(min(lo, hi), max(lo, hi) + 1))
    assert set(s.resolve(largest)) == brute
    assert list(s.resolve(largest)) == sorted(brute)
    matcher = s.matcher(largest)
    for n in range(0, 102):
        assert s.contains(n, largest) == (n in brute) == (n in matcher)
    ranges = s.ranges(largest)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ranges))


@given(gs.sequence_sets)
def test_sequence_set_text_round_trip(s: g.SequenceSet) -> None:
    assert g.SequenceSet.parse(str(s)) == s


@given(st.sets(st.integers(1, 500), min_size=1))
def test_sequence_set_from_ints(numbers: set[int]) -> None:
    s = g.SequenceSet.from_ints(numbers)
    assert set(s.resolve(0)) == numbers
    assert len(s.items) == len(s.ranges(0))


def test_resolving_star_on_a_large_mailbox_is_cheap() -> None:
    s = g.SequenceSet.parse("1:*")
    assert s.ranges(100_000) == [(1, 100_000)]
    assert s.contains(99_999, 100_000) and not s.contains(100_001, 100_000)


@pytest.mark.parametrize("text", ["", "0", "1:", ",1", "1,,2", "a", "$,1", "4294967296"])
def test_sequence_set_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        g.SequenceSet.parse(text)
