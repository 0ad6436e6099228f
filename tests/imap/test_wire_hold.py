"""A command's responses leave in one write (duck/imap/wire.py ``hold``).

The wire runs over a stream that records each write; the session-level rules
(continuations, tagged responses and BYE are never held) are exercised end to end
by the IDLE, AUTHENTICATE, STARTTLS and COMPRESS tests.
"""

from __future__ import annotations

from typing import Any

import trio

from duck.imap.grammar.responses import TaggedStatus, UntaggedStatus
from duck.imap.wire import SEND_BUFFER, Wire
from tests.imap.conftest import PASSWORD, USER
from tests.imap.raw import RawClient


class RecordingStream(trio.abc.Stream):
    """Keeps every ``send_all`` as one write; never has anything to receive."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        pass

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.sleep_forever()
        raise AssertionError

    async def aclose(self) -> None:
        pass


async def test_held_responses_leave_in_one_write() -> None:
    stream = RecordingStream()
    async with trio.open_nursery() as nursery:
        wire = Wire(stream, nursery)
        await wire.send([UntaggedStatus("OK", None, "at once")])
        assert stream.writes == [b"* OK at once\r\n"]
        wire.hold()
        assert wire.holding
        await wire.send([UntaggedStatus("OK", None, "one")])
        await wire.send([UntaggedStatus("OK", None, "two")])
        assert len(stream.writes) == 1  # nothing more written yet
        await wire.send([TaggedStatus("a1", "OK", None, "done")])
        await wire.release()
        assert not wire.holding
        assert stream.writes[1:] == [b"* OK one\r\n* OK two\r\na1 OK done\r\n"]
        await wire.release()  # nothing held: no empty write
        assert len(stream.writes) == 2
        nursery.cancel_scope.cancel()


async def test_a_large_held_output_is_written_as_it_grows() -> None:
    """Holding never keeps more than SEND_BUFFER octets back."""
    stream = RecordingStream()
    async with trio.open_nursery() as nursery:
        wire = Wire(stream, nursery)
        wire.hold()
        line = UntaggedStatus("OK", None, "x" * 1000)
        for _ in range(2 * SEND_BUFFER // 1000 + 2):
            await wire.send([line])
        assert len(stream.writes) >= 2
        assert all(len(w) <= SEND_BUFFER + 1100 for w in stream.writes)
        await wire.release()
        assert b"".join(stream.writes).count(b"* OK ") == 2 * SEND_BUFFER // 1000 + 2
        nursery.cancel_scope.cancel()


async def test_pipelined_commands_are_answered_in_one_write(imap_server: Any) -> None:
    """Responses wait while more commands are already in: three pipelined commands
    cost the client one wake-up, not three (and their order is kept)."""
    context = imap_server.context

    async def session(pipelined: bytes) -> tuple[int, bytes]:
        before = context.writes
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await c.command(b"s", b"SELECT INBOX")
        got = b""
        if pipelined:
            await c.send(pipelined)
            got = b"".join(await c.until_tagged(b"p3"))
        await c.command(b"z", b"LOGOUT")
        await c.aclose()
        with trio.fail_after(10):
            while context.writes == before:  # (the session's end adds its count)
                await trio.sleep(0.01)
        return context.writes - before, got

    with trio.fail_after(30):
        alone, _ = await session(b"")
        writes, got = await session(b"p1 NOOP\r\np2 FETCH 1:* (FLAGS)\r\np3 CAPABILITY\r\n")
        assert writes == alone + 1, (alone, writes)
        assert got.index(b"p1 OK") < got.index(b"p2 OK") < got.index(b"* CAPABILITY") \
            < got.index(b"p3 OK"), got
