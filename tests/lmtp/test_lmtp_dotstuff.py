"""Streaming dot-unstuffing: every split point, any content, bounded hold-back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from duck.lmtp.dotstuff import DotUnstuffer

from .client import dot_stuff

# Lines built from the octets that matter to the unstuffer, so the tricky cases
# (dots at line starts, CR/LF fragments, "." lines) come up often.
_line = st.lists(st.sampled_from([b".", b"..", b"\r", b"\n", b"a", b"\x00", b"\xff", b" "]),
                 max_size=8).map(b"".join)
_message = st.lists(_line, max_size=12).map(lambda lines: b"".join(ln + b"\r\n" for ln in lines))


def unstuff(pieces: list[bytes]) -> tuple[bytes, bool, bytes]:
    u = DotUnstuffer()
    buf = bytearray()
    out = bytearray()
    for piece in pieces:
        buf += piece
        if u.done:
            continue  # what follows the terminator stays in the buffer
        out += u.feed(buf)
        assert len(buf) <= 2 or u.done  # never more than two octets held back
    return bytes(out), u.done, bytes(buf)


def test_reference_cases() -> None:
    assert unstuff([b".\r\n"]) == (b"", True, b"")
    assert unstuff([b"a\r\n.\r\nNEXT"]) == (b"a\r\n", True, b"NEXT")
    assert unstuff([b"..\r\n.\r\n"]) == (b".\r\n", True, b"")
    assert unstuff([b".x\r\n.\r\n"]) == (b"x\r\n", True, b"")
    # Not terminators: LF-only variants and a dot inside a line.
    assert unstuff([b"\n.\n", b"a.\r\n"]) == (b"\n.\na.\r\n", False, b"")
    assert unstuff([b".\r"])[1] is False
    assert unstuff([b".\rx\r\n.\r\n"]) == (b"\rx\r\n", True, b"")


@given(_message, st.binary(max_size=20))
def test_unstuff_inverts_stuff_at_every_split_point(message: bytes, trailer: bytes) -> None:
    wire = dot_stuff(message) + trailer
    for cut in range(len(wire) + 1):
        out, done, rest = unstuff([wire[:cut], wire[cut:]])
        assert done
        assert out == message
        assert rest == trailer


@given(_message, st.lists(st.integers(min_value=1, max_value=7), max_size=40))
def test_unstuff_with_many_splits(message: bytes, sizes: list[int]) -> None:
    wire = dot_stuff(message)
    pieces = []
    pos = 0
    for size in sizes:
        pieces.append(wire[pos:pos + size])
        pos += size
    pieces.append(wire[pos:])
    out, done, rest = unstuff(pieces)
    assert (out, done, rest) == (message, True, b"")


def test_byte_by_byte() -> None:
    message = b".a\r\n..\r\n\r\n.\r\r\n\r.\n.\r\nx\r\n"
    wire = dot_stuff(message)
    out, done, rest = unstuff([bytes([b]) for b in wire])
    assert (out, done, rest) == (message, True, b"")


@given(st.binary(max_size=500))
def test_any_bytes_never_more_than_two_held(data: bytes) -> None:
    u = DotUnstuffer()
    buf = bytearray(data)
    out = u.feed(buf)
    if not u.done:
        assert len(buf) <= 2
        # Only stuffing dots are removed, nothing is added.
        removed = len(data) - len(out) - len(buf)
        assert 0 <= removed <= data.count(b".")
        assert out.replace(b".", b"") + bytes(buf).replace(b".", b"") == data.replace(b".", b"")


def test_large_input_is_linear_enough() -> None:
    # 4 MB of short lines in one feed: one pass, no quadratic rescans (this would
    # take minutes if each line re-searched the buffer from the start).
    message = b"ab\r\n" * 1_000_000
    u = DotUnstuffer()
    buf = bytearray(dot_stuff(message))
    assert u.feed(buf) == message and u.done
