"""The connection's byte I/O: a receive pump and a response writer.

Receiving runs in its own task and only when asked (``receive``): a caller that
stops waiting (IDLE ends, shutdown, the autologout timer) never cancels a
``receive_some`` half-way, which TLS streams do not survive, and the bytes that
arrive later are kept for the next ``receive``. Nothing is read that was not
asked for, so after STARTTLS no plaintext byte can be mistaken for TLS or the
reverse (RFC 3501 §6.2.1).

Over a plain TCP connection the common case takes a shorter path: a ``receive``
with nothing in flight reads the socket in the caller's task (a read that is
cancelled while it waits has read nothing, so nothing is lost), and a send writes
the socket directly. Each command used to cost a task started for its read, two
events and trio's stream wrappers on both sides: ~15% of a cheap command's CPU.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from duck.net import quickack, read_ready, read_socket, socket_fd, write_socket

from .grammar.encode import Encoder, LiteralBody
from .grammar.responses import Completed

log = logging.getLogger(__name__)

#: Bytes asked of the transport per receive.
RECEIVE_SIZE = 64 * 1024
#: Responses are buffered up to this many bytes before a send.
SEND_BUFFER = 64 * 1024

#: A LiteralBody's ``source``: called with no argument, gives the octets in chunks.
ChunkSource = Callable[[], AsyncIterator[bytes]]


class StreamClosed(Exception):
    """The peer closed the connection (or it broke)."""


class Wire:
    """Receive pump plus response writer over one (replaceable) stream."""

    def __init__(self, stream: trio.abc.Stream, nursery: trio.Nursery) -> None:
        self.stream = stream
        self._fd = socket_fd(stream)
        #: A read in the caller's task is under way (``_receive_inline``).
        self._inline = False
        #: A direct write waits for room (``_send``).
        self._sending = False
        self._nursery = nursery
        self._want = trio.Event()
        self._got: bytes | None = None
        self._got_event = trio.Event()
        self._busy = False
        self._eof = False
        self.bytes_in = 0
        self.bytes_out = 0
        #: Writes to the stream (each a segment and a wake-up of the client).
        self.writes = 0
        self._task_running = False
        #: Responses kept back while a command runs (``hold``), None when not holding.
        self._held: bytearray | None = None
        #: Also set when bytes (or the end of the stream) arrive: see ``poll``.
        self.bell: trio.Event | None = None

    # -- receiving ------------------------------------------------------------------

    async def receive(self, *, prompt: bool = False, ready_checked: bool = False) -> bytes:
        """The next bytes from the peer; StreamClosed at EOF. Cancel-safe.

        ``prompt``: the peer is in the middle of a command (after a literal), so
        what it sent is acknowledged at once (``quickack``). ``ready_checked``:
        ``receive_ready`` has just found nothing, so the socket is not read again
        before the wait.
        """
        if self._inline:
            raise trio.BusyResourceError("another task is receiving")
        fd = self._fd
        if fd is not None and not self._busy and self._got is None and not self._eof:
            return await self._receive_inline(fd, prompt, ready_checked)
        data = self.poll()
        if data is not None:
            return data
        await self._got_event.wait()
        if self._got is None:
            raise StreamClosed()
        data, self._got = self._got, None
        return data

    def interrupt(self) -> None:
        """Make a ``receive`` that waits raise StreamClosed (the session's autologout
        or shutdown); nothing more is read from the connection, what is sent still
        goes. (Not a cancellation: a read in the caller's task wakes from trio's
        wait as for a closed socket, a read in the pump's task is left to it.)"""
        self._eof = True
        if self._inline and self._fd is not None:
            trio.lowlevel.notify_closing(self._fd)
        self._got_event.set()

    def receive_ready(self) -> bytes | None:
        """The next bytes if the peer has sent some already (a pipelining client), at
        once and without a schedule point; None when there are none yet (``receive``
        then waits); StreamClosed at EOF. Over plain TCP only: a TLS stream's bytes
        are not ready until its record is."""
        fd = self._fd
        if fd is None or self._busy or self._inline or self._eof:
            return None
        if self._got is not None:
            data, self._got = self._got, None
            return data
        ready = read_ready(fd, RECEIVE_SIZE)
        return None if ready is None else self._received(ready)

    async def _receive_inline(self, fd: int, prompt: bool, ready_checked: bool) -> bytes:
        stream = self.stream
        self._inline = True
        try:
            data = await read_socket(fd, RECEIVE_SIZE,
                                     before_wait=(lambda: quickack(stream)) if prompt else None,
                                     wait_first=ready_checked)
        finally:
            self._inline = False
        return self._received(data)

    def _received(self, data: bytes) -> bytes:
        """Bytes read directly from the socket (b"": its end), accounted for."""
        if self.bell is not None:
            self.bell.set()
        if not data:
            self._eof = True
            raise StreamClosed()
        self.bytes_in += len(data)
        return data

    async def _receive_one(self) -> None:
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.debug("receive failed: %r", exc)
            data = b""
        except Exception as exc:  # ssl.SSLError and friends: the stream is unusable
            log.debug("receive failed: %r", exc)
            data = b""
        if data:
            self.bytes_in += len(data)
            self._got = bytes(data)
        else:
            self._eof = True
        self._busy = False
        self._got_event.set()
        if self.bell is not None:
            self.bell.set()

    def poll(self) -> bytes | None:
        """The next bytes from the peer if they are here, else None (without
        waiting: a receive is started, whose arrival sets ``bell``); StreamClosed
        at EOF. For a task that waits for input and other things on one event."""
        if self._got is not None:
            data, self._got = self._got, None
            return data
        if self._eof:
            raise StreamClosed()
        if not self._busy and not self._inline:
            self._busy = True
            self._got_event = trio.Event()
            self._nursery.start_soon(self._receive_one)
        return None

    @property
    def receiving(self) -> bool:
        """Whether a receive is in flight (STARTTLS must not begin then)."""
        return self._busy or self._inline or self._got is not None

    @property
    def in_flight(self) -> bool:
        """Whether a transport read is under way (its bytes are not ours to judge yet)."""
        return self._busy or self._inline

    def take_received(self) -> bytes:
        """Remove and return bytes received but not yet given out (none while a
        receive is in flight: check :attr:`receiving` first)."""
        data, self._got = self._got or b"", None
        return data

    def replace_stream(self, stream: trio.abc.Stream) -> None:
        """Continue over another stream (after STARTTLS or COMPRESS)."""
        assert not (self._busy or self._inline or self._sending)
        self.stream = stream
        self._fd = socket_fd(stream)

    # -- sending --------------------------------------------------------------------

    def hold(self) -> None:
        """Keep what is sent from now on until ``release`` (or until SEND_BUFFER
        octets gather): a command's untagged responses then leave in one write with
        its tagged one, one segment and one wake-up of the client instead of two."""
        if self._held is None:
            self._held = bytearray()

    @property
    def holding(self) -> bool:
        """Whether responses are being kept back (``hold``)."""
        return self._held is not None

    async def release(self) -> None:
        """Send what ``hold`` kept back and send at once from now on."""
        held, self._held = self._held, None
        if held:
            await self._send(bytes(held))

    async def send(self, responses: list[Any], *, utf8: bool = False) -> None:
        """Serialize and send responses (kept back while holding); streamed literals
        are copied from their source."""
        held = self._held
        buf = bytearray() if held is None else held
        for resp in responses:
            if resp.__class__ is Completed:  # (the usual tagged OK: bytes made already)
                buf += resp.line
                continue
            e = Encoder(utf8=utf8)
            resp.encode(e)
            e.raw(b"\r\n")
            if not e.streamed:
                # (All bytes: one join, not a step per part; a FETCH of a range
                # makes a few hundred parts.)
                buf += e.join()
                if len(buf) >= SEND_BUFFER:
                    await self._send(bytes(buf))
                    buf.clear()
                continue
            for part in e.out:
                if isinstance(part, bytes):
                    buf += part
                    if len(buf) >= SEND_BUFFER:
                        await self._send(bytes(buf))
                        buf.clear()
                else:
                    if buf:
                        await self._send(bytes(buf))
                        buf.clear()
                    await self._stream_literal(part)
        if buf and held is None:
            await self._send(bytes(buf))

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (after what is held)."""
        await self.release()
        await self._send(data)

    async def _stream_literal(self, body: LiteralBody) -> None:
        source: ChunkSource = body.source  # type: ignore[assignment]
        sent = 0
        chunks = source()
        try:
            async for chunk in chunks:
                if sent + len(chunk) > body.size:
                    chunk = chunk[: body.size - sent]
                if chunk:
                    await self._send(chunk)
                    sent += len(chunk)
                if sent >= body.size:
                    break
        finally:
            # Close the store's reader now (its GridFS handles), also when the
            # client went away mid-literal, rather than whenever GC gets to it.
            closer = getattr(chunks, "aclose", None)
            if closer is not None:
                with trio.CancelScope(shield=True):
                    await closer()
        if sent != body.size:
            # The announced size cannot be taken back: the stream is out of step.
            raise StreamClosed(f"literal source gave {sent} of {body.size} octets")

    async def _send(self, data: bytes) -> None:
        fd = self._fd
        if fd is not None:
            await self._send_direct(fd, data)
            return
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StreamClosed() from exc
        self.bytes_out += len(data)
        self.writes += 1

    async def _send_direct(self, fd: int, data: bytes) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending")
        self._sending = True
        try:
            await write_socket(fd, data)
        except trio.BrokenResourceError as exc:
            raise StreamClosed() from exc
        finally:
            self._sending = False
        self.bytes_out += len(data)
        self.writes += 1
        if len(data) >= SEND_BUFFER:
            # A large response goes out in SEND_BUFFER pieces; a fast reader would
            # take them all without this task ever waiting: let the others run.
            await trio.lowlevel.cancel_shielded_checkpoint()
