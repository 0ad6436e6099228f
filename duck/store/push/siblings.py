"""The workers of one ``duck serve --workers N`` tell each other their journal entries.

Why: on the embedded server, workers that heard of each other's changes through a
change stream made the server keep an oplog and read every write's entry of it once
per worker (under imaptest's load with two workers, the database's CPU per command
0.58-0.86 ms against 0.42-0.47 ms for one process, and duck's higher too: journal
reads that the local feed's entries spare a lone process, push/journal.py
``learn``). The workers are the deployment's only writers there (but for
``duck ctl``, which the notifier's quiet check finds, as it does for a lone
process: push/notify.py), so each can be told the others' entries directly, as a
lone process tells itself (its local feed), and the server keeps no oplog.

Two parts, both set up by the parent (duck/workers.py):

- **The feed** (``Hub`` in the parent, ``Link`` in each worker): a worker sends the
  entries it commits, framed (``FRAME`` length, then BSON), over a socket pair to
  the parent, which forwards each frame as it is to every other worker. A worker
  takes the others' entries as its own local feed's: they wake its sessions and
  answer their journal reads (``Journal.learn`` is exact whatever the order or the
  gaps). Nothing waits on it: a queue past ``QUEUE_BYTES`` (a worker that stopped
  reading) is dropped, and an empty frame (``LOST``) tells the worker it missed
  something, which then wakes every session it serves to read for itself.
- **The marks** (``Marks``): a file mapped by every worker, a row per worker and
  in it, per mailbox (hashed into ``SLOTS``), the highest modseq that worker has
  committed, written right after its commit and before its client is answered. A
  session asks them whether its view can be behind anyone's write (NOOP's poll,
  EXPUNGE's look for ``\\Deleted``: ``Notifier.knows_every_change``): the feed is
  fast but comes after the answer, and a client told OK by one worker may ask the
  other at once. A shared slot holds the highest of its mailboxes': it can only
  make a session read when it need not.
"""

from __future__ import annotations

import logging
import mmap
import os
import socket
import struct
import tempfile
import threading
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import bson
import trio

log = logging.getLogger(__name__)

#: A frame's length, before its BSON (``{"d": [entries]}``); 0 is ``LOST``.
FRAME = struct.Struct(">I")
#: An empty frame: what was to be forwarded to you was dropped.
LOST = FRAME.pack(0)
#: Largest frame read (a sender cuts its entries into frames of ``BATCH`` at most:
#: an EXPUNGE of 100,000 messages journals as many).
MAX_FRAME = 16 * 1024 * 1024
BATCH = 1000
#: Bytes queued for one socket at most before the queue is dropped for ``LOST``.
QUEUE_BYTES = 32 * 1024 * 1024
#: Mailbox slots per worker in the marks (8 bytes each).
SLOTS = 1 << 16


def _slot(mailbox_id: str) -> int:
    # An ObjectId ends in a per-process counter: mailboxes made one after another
    # fall in different slots.
    try:
        return int(mailbox_id[-8:], 16) % SLOTS
    except ValueError:
        # (Not an ObjectId: a hash every process computes alike, unlike hash().)
        return zlib.crc32(mailbox_id.encode()) % SLOTS


class Marks:
    """Per worker and mailbox slot, the highest modseq committed (module docstring)."""

    def __init__(self, fd: int, rows: int, row: int) -> None:
        if not 0 <= row < rows:
            raise ValueError(f"row {row} of {rows}")
        self.rows, self.row = rows, row
        self._map = mmap.mmap(fd, rows * SLOTS * 8)
        self._cells = memoryview(self._map).cast("q")
        self._base = row * SLOTS
        #: Commits of this process may come from the trio thread and a worker thread
        #: at once: a raise is a read and a write of one cell.
        self._lock = threading.Lock()

    @staticmethod
    def create(rows: int) -> int:
        """A new, zeroed marks file for ``rows`` workers, unlinked: its descriptor
        (for the workers' ``pass_fds``)."""
        with tempfile.TemporaryFile() as file:
            file.truncate(rows * SLOTS * 8)
            return os.dup(file.fileno())

    def raise_to(self, mailbox_id: str, modseq: int) -> None:
        """This worker committed ``modseq`` of the mailbox."""
        index = self._base + _slot(mailbox_id)
        with self._lock:
            if modseq > self._cells[index]:
                self._cells[index] = modseq

    def high(self, mailbox_id: str) -> int:
        """The highest modseq any worker committed of the mailbox (or of another in
        its slot)."""
        slot, cells = _slot(mailbox_id), self._cells
        return max(cells[row * SLOTS + slot] for row in range(self.rows))

    def close(self) -> None:
        """Unmap the file."""
        self._cells.release()
        self._map.close()


def frames(docs: list[dict[str, Any]]) -> list[bytes]:
    """``docs`` as frames of ``BATCH`` entries at most."""
    out = []
    for start in range(0, len(docs), BATCH):
        body = bson.encode({"d": docs[start:start + BATCH]})
        out.append(FRAME.pack(len(body)) + body)
    return out


async def _read_exactly(stream: trio.SocketStream, size: int, buffer: bytearray) -> bool:
    """Fill ``buffer`` up to ``size`` bytes; False at the stream's end."""
    while len(buffer) < size:
        chunk = await stream.receive_some(max(65536, size - len(buffer)))
        if not chunk:
            return False
        buffer += chunk
    return True


async def read_frames(stream: trio.SocketStream,
                      take: Callable[[bytes], Awaitable[None]]) -> None:
    """Call ``take`` with each whole frame (its length included) until the end of
    ``stream``. Raises ValueError for a frame past ``MAX_FRAME``."""
    buffer = bytearray()
    while True:
        if not await _read_exactly(stream, FRAME.size, buffer):
            return
        (length,) = FRAME.unpack_from(buffer)
        if length > MAX_FRAME:
            raise ValueError(f"a frame of {length} bytes")
        if not await _read_exactly(stream, FRAME.size + length, buffer):
            return
        frame = bytes(buffer[:FRAME.size + length])
        del buffer[:FRAME.size + length]
        await take(frame)


class Outlet:
    """Frames queued for one socket and sent in order by ``run``; past
    ``QUEUE_BYTES`` the queue is dropped and ``LOST`` sent in its place."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._queue: deque[bytes] = deque()
        self._bytes = 0
        self._ready = trio.Event()

    def put(self, frame: bytes) -> None:
        """Queue ``frame`` (never blocks; on the trio thread)."""
        if self._bytes + len(frame) > QUEUE_BYTES:
            self._queue.clear()
            frame = LOST
            self._bytes = 0
        self._queue.append(frame)
        self._bytes += len(frame)
        self._ready.set()

    async def run(self) -> None:
        """Send what is queued until the socket breaks (then return)."""
        while True:
            await self._ready.wait()
            self._ready = trio.Event()
            while self._queue:
                # What gathered while the last send went, in one (under load the
                # commits of several groups: a system call each was ~5% of a
                # worker's CPU).
                data = b"".join(self._queue)
                self._queue.clear()
                self._bytes = 0
                try:
                    await self.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return


class Hub:
    """The parent's side: forwards each worker's frames to every other worker."""

    def __init__(self) -> None:
        self._outlets: dict[int, Outlet] = {}

    @staticmethod
    def pair() -> tuple[socket.socket, int]:
        """A socket pair: the parent's end, and the worker's descriptor (for its
        ``pass_fds``; the caller closes it once the worker has it)."""
        mine, theirs = socket.socketpair()
        return mine, theirs.detach()

    async def serve(self, index: int, sock: socket.socket) -> None:
        """Serve worker ``index``'s end of the feed until it closes (its process
        ended) or the call is cancelled."""
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        outlet = Outlet(stream)
        self._outlets[index] = outlet

        async def forward(frame: bytes) -> None:
            for other, out in self._outlets.items():
                if other != index:
                    out.put(frame)

        try:
            async with stream, trio.open_nursery() as nursery:
                nursery.start_soon(outlet.run)
                try:
                    await read_frames(stream, forward)
                except (ValueError, trio.BrokenResourceError) as exc:
                    log.warning("worker %d's journal feed: %s", index, exc)
                nursery.cancel_scope.cancel()
        finally:
            if self._outlets.get(index) is outlet:
                del self._outlets[index]


class Link:
    """A worker's side of the feed: ``send`` its entries, ``run`` to take the
    others' (see the module docstring)."""

    def __init__(self, fd: int, marks: Marks | None) -> None:
        self._sock = socket.socket(fileno=fd)
        self.marks = marks
        self._stream = trio.SocketStream(trio.socket.from_stdlib_socket(self._sock))
        self._outlet = Outlet(self._stream)
        #: Entries sent and received, and ``LOST`` frames received.
        self.sent = 0
        self.received = 0
        self.lost = 0

    def send(self, docs: list[dict[str, Any]]) -> None:
        """Queue journal entries this worker committed for the others (never
        blocks; on the trio thread)."""
        for frame in frames(docs):
            self._outlet.put(frame)
        self.sent += len(docs)

    async def run(self, take: Callable[[list[dict[str, Any]] | None], Awaitable[None]],
                  codec_options: Any) -> None:
        """Send what is queued and hand ``take`` the others' entries (None: some were
        lost) until the parent closes its end (it is gone)."""

        async def frame(data: bytes) -> None:
            if len(data) == FRAME.size:
                self.lost += 1
                await take(None)
                return
            docs = bson.decode(data[FRAME.size:], codec_options=codec_options)["d"]
            self.received += len(docs)
            await take(docs)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._outlet.run)
            try:
                await read_frames(self._stream, frame)
            except (ValueError, trio.BrokenResourceError) as exc:
                log.warning("journal feed from the other workers: %s", exc)
            nursery.cancel_scope.cancel()

    def statistics(self) -> dict[str, int]:
        """Entries sent and received, frames lost."""
        return {"sent": self.sent, "received": self.received, "lost": self.lost}
