"""The wire over a plain TCP connection reads and writes its socket directly
(duck/imap/wire.py): no task per read, nothing lost to a cancelled read, the end of
the stream and a broken peer reported as StreamClosed, large writes whole."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from duck.imap.wire import SEND_BUFFER, StreamClosed, Wire


@asynccontextmanager
async def connected() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """A server-side and a client-side stream of one loopback TCP connection."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    try:
        yield server, client
    finally:
        await server.aclose()
        await client.aclose()
        await listeners[0].aclose()


async def test_a_receive_reads_the_socket_in_the_callers_task() -> None:
    async with (connected() as (server, client), trio.open_nursery() as helpers,
                trio.open_nursery() as nursery):
        wire = Wire(server, nursery)
        await client.send_all(b"a1 NOOP\r\n")
        assert await wire.receive() == b"a1 NOOP\r\n"

        async def later() -> None:
            await trio.sleep(0.05)
            await client.send_all(b"a2 NOOP\r\n")

        helpers.start_soon(later)
        assert await wire.receive() == b"a2 NOOP\r\n"
        assert wire.bytes_in == 18
        # (The stream-generic pump starts a reader task in the wire's nursery.)
        assert not nursery.child_tasks
        nursery.cancel_scope.cancel()


async def test_a_cancelled_receive_loses_nothing() -> None:
    async with connected() as (server, client), trio.open_nursery() as nursery:
        wire = Wire(server, nursery)
        with trio.move_on_after(0.05) as scope:
            await wire.receive()
        assert scope.cancelled_caught
        assert not wire.receiving
        await client.send_all(b"after the cancel\r\n")
        assert await wire.receive() == b"after the cancel\r\n"
        nursery.cancel_scope.cancel()


async def test_the_end_of_the_stream_is_stream_closed() -> None:
    async with connected() as (server, client), trio.open_nursery() as nursery:
        wire = Wire(server, nursery)
        await client.send_all(b"last")
        await client.send_eof()
        assert await wire.receive() == b"last"
        with pytest.raises(StreamClosed):
            await wire.receive()
        with pytest.raises(StreamClosed):  # (and stays closed)
            await wire.receive()
        nursery.cancel_scope.cancel()


async def test_two_receivers_at_once_are_refused() -> None:
    async with connected() as (server, _client), trio.open_nursery() as nursery:
        wire = Wire(server, nursery)
        nursery.start_soon(wire.receive)
        await trio.testing.wait_all_tasks_blocked()
        assert wire.receiving
        with pytest.raises(trio.BusyResourceError):
            await wire.receive()
        nursery.cancel_scope.cancel()


async def test_a_large_write_arrives_whole_through_a_slow_reader() -> None:
    payload = bytes(range(256)) * (4 * SEND_BUFFER // 256 + 7)
    async with connected() as (server, client), trio.open_nursery() as nursery:
        wire = Wire(server, nursery)
        got = bytearray()

        async def slow_reader() -> None:
            while len(got) < len(payload):
                await trio.sleep(0.001)
                got.extend(await client.receive_some(16 * 1024))

        nursery.start_soon(slow_reader)
        await wire.send_raw(payload)
        assert wire.bytes_out == len(payload)
        while len(got) < len(payload):
            await trio.sleep(0.01)
        assert bytes(got) == payload
        nursery.cancel_scope.cancel()


async def test_a_write_to_a_reset_connection_is_stream_closed() -> None:
    async with connected() as (server, client), trio.open_nursery() as nursery:
        wire = Wire(server, nursery)
        client.socket.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        await client.aclose()  # (linger 0: a reset)
        await trio.sleep(0.05)
        with pytest.raises(StreamClosed):
            for _ in range(100):
                await wire.send_raw(b"* OK anyone there?\r\n" * 100)
        nursery.cancel_scope.cancel()
