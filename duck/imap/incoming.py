"""The message literals of the APPEND being read, streamed into the store as they
arrive (the grammar's reader hands them out: ``CommandReader.stream_append``).

Each message's octets go through the store's ingest as LMTP's do (the MIME
indexer, large leaf bodies to GridFS chunk by chunk), so what a session holds
while a literal arrives is a chunk, the indexer's state and the header block,
not the message. What comes out is an ``Ingested`` held until the command has
been read to its end: APPEND then delivers it (durable before the tagged OK), or
the message is discarded (a bad command, a dropped connection, a failed
MULTIAPPEND) and its bodies with it.

Two kinds of literal are still kept whole, under the process's literal budget
(``literal_memory``): small ones (at most ``KEEP_MAX``: one worker-thread call
stores them, as before) and literal8 data not wrapped in ``UTF8 (...)`` (RFC 3516
§4.3 as APPEND applies it: NUL octets anywhere make the whole message be kept
base64-encoded, which is only known at its end).
"""

from __future__ import annotations

import logging

import trio

from duck.store import Ingest, Ingested, Store, StoreError

from .grammar.cmd_append import AppendHead
from .grammar.reader import AppendLiteral, LiteralChunk, LiteralEnd, LiteralEvent
from .limits import LITERAL_FREE

log = logging.getLogger(__name__)

#: Literals up to this many octets are kept whole and stored in one call.
KEEP_MAX = LITERAL_FREE

#: One message as read: its octets (kept), the store's ingest of it (streamed), or
#: why it could not be stored (told when the command runs).
Received = bytes | Ingested | StoreError


def keeps(size: int, binary: bool, head: AppendHead) -> bool:
    """Whether the literal of this message is kept whole rather than streamed."""
    return size <= KEEP_MAX or (binary and not head.utf8)


class Incoming:
    """The literals of one session's APPEND in reading (one at a time, in order)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._received: dict[int, Received] = {}
        self._index = -1
        self._kept: bytearray | None = None
        self._ingest: Ingest | None = None
        self._error: StoreError | None = None
        #: Octets kept whole for this command (the session's literal budget share).
        self.kept = 0
        #: Whether a literal of this command streams into the store (a share).
        self.streaming = False

    async def on_event(self, event: LiteralEvent, max_size: int) -> None:
        """Take the reader's next event of a streamed literal."""
        if isinstance(event, AppendLiteral):
            self._start(event, max_size)
        elif isinstance(event, LiteralChunk):
            await self._write(event.data)
        elif isinstance(event, LiteralEnd):
            await self._end()

    def _start(self, event: AppendLiteral, max_size: int) -> None:
        self._index = event.head.index
        self._error = None
        self._kept = None
        self._ingest = None
        if keeps(event.size, event.binary, event.head):
            self._kept = bytearray()
            self.kept += event.size
        else:
            self.streaming = True
            self._ingest = self._store.messages.ingest(max_size=max_size)

    async def _write(self, data: bytes) -> None:
        if self._kept is not None:
            self._kept += data
        elif self._ingest is not None and self._error is None:
            try:
                await self._ingest.write(data)
            except StoreError as exc:
                # (The ingest dropped what it had.) The rest is read and ignored;
                # the command tells why when it runs.
                self._error = exc

    async def _end(self) -> None:
        received: Received
        if self._kept is not None:
            received = bytes(self._kept)
            self._kept = None
        elif self._error is not None:
            received = self._error
        else:
            assert self._ingest is not None
            try:
                received = await self._ingest.finish()
            except StoreError as exc:
                received = exc
        self._ingest = None
        self._received[self._index] = received

    def take(self, index: int) -> Received:
        """Message ``index`` of the command as read (the caller now owns it)."""
        try:
            return self._received.pop(index)
        except KeyError:
            # (A message of an APPEND is streamed or not as the reader read it.)
            raise StoreError("message data missing") from None

    @property
    def idle(self) -> bool:
        """Whether nothing is held (``discard`` would have nothing to do): the case
        after most commands, checked without a call of it."""
        return (not self._received and self._ingest is None and self._kept is None
                and not self.kept and not self.streaming)

    async def discard(self) -> None:
        """Drop everything read and not taken: bodies of unfinished and undelivered
        messages are freed. Safe to call at any time, also when cancelled."""
        ingest, self._ingest, self._kept = self._ingest, None, None
        received, self._received = self._received, {}
        self.kept = 0
        self.streaming = False
        held = [r for r in received.values() if isinstance(r, Ingested)]
        if ingest is None and not held:
            return
        with trio.CancelScope(shield=True):
            try:
                if ingest is not None:
                    await ingest.abort()
                for ingested in held:
                    await self._store.messages.discard(ingested)
            except StoreError as exc:
                # The body sweep collects what an outage kept us from freeing.
                log.warning("could not free a discarded APPEND's bodies: %r", exc)
