"""Streaming ingest: bytes in, an indexed skeleton plus content-addressed bodies out.

The MIME indexer (duck.mime) splits the stream into skeleton bytes and large leaf
bodies. Large bodies go straight to GridFS as they arrive (bodies.py); skeleton
bytes are kept in memory up to ``INLINE_MAX`` for the message document, and
beyond that they too are written out as bodies (a message of 10,000 small parts
must not overflow MongoDB's 16 MB document). Memory therefore stays bounded by
the indexer's own caps, the inline skeleton, and one GridFS chunk, whatever the
message size.
"""

from __future__ import annotations

import hashlib
from typing import Any

import trio

from duck.mime.events import LargeBodyBytes, LargeBodyEnd, LargeBodyStart, SkeletonBytes
from duck.mime.indexer import MessageIndexer
from duck.mime.model import IndexerLimits

from ..engine.bodies import Bodies, Upload
from ..engine.database import Database
from ..errors import InvalidInput, TooBig
from ..models import Ingested, Segment
from . import parsers

#: Most skeleton bytes kept inside the message document.
INLINE_MAX = 2 * 1024 * 1024
#: Skeleton runs beyond INLINE_MAX are written out in bodies of at most this size.
SKELETON_BLOB_MAX = 64 * 1024 * 1024
#: Default largest message accepted (RFC 1870 SIZE / APPENDLIMIT).
DEFAULT_MAX_SIZE = 1024 * 1024 * 1024 + 64 * 1024 * 1024
#: Large-body bytes are handed to the upload in pieces of at least this many bytes
#: (the upload itself gathers GridFS chunks): one feed's worth normally goes at
#: once, so a streaming ingest holds no megabyte of its own between feeds.
WRITE_BATCH = 64 * 1024
#: Bytes ``write`` gathers before feeding them to the indexer in a worker thread.
FEED_BATCH = 256 * 1024


class Ingest:
    """One message being received: ``write`` chunks, then ``finish`` or ``abort``.

    Not safe for concurrent use by several tasks (one connection feeds it).
    """

    def __init__(
        self,
        database: Database,
        bodies: Bodies,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        limits: IndexerLimits | None = None,
        extras: tuple[str, ...] = (),
    ) -> None:
        """``extras``: functions of the indexed message, by import path, that a parse
        worker that indexes it calls too (``Ingested.made``: mail/parsers.py)."""
        self._database = database
        self._bodies = bodies
        self._extras = extras
        self.max_size = max_size
        self._limits = limits or IndexerLimits()
        # (Made when first fed: a whole message goes to a parse worker instead,
        # and making one costs a good part of what the worker saves.)
        self._made_indexer: MessageIndexer | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self._segments: list[Segment] = []
        self._inline = bytearray()
        self._inline_start = 0
        self._inline_total = 0
        self._upload: Upload | None = None
        self._upload_kind = ""
        self._pending = bytearray()  # large-body bytes not yet written to GridFS
        self._unfed = bytearray()  # bytes written, not yet fed to the indexer
        self._pos = 0  # offset of the next byte the events carry
        self._fed = False  # whether the indexer has been fed any bytes yet
        self._done = False

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self._size

    async def write(self, chunk: bytes) -> None:
        """Feed the next bytes; TooBig (and everything discarded) past ``max_size``."""
        if self._done:
            raise InvalidInput("ingest already finished")
        if not chunk:
            return
        self._size += len(chunk)
        if self._size > self.max_size:
            await self.abort()
            raise TooBig(f"message larger than {self.max_size} octets")
        # Small writes wait here (at most FEED_BATCH bytes) and go to a worker thread
        # together: a message of a few kilobytes arriving in several chunks costs
        # one hand-off (with the finish), not one per chunk.
        self._unfed += chunk
        if len(self._unfed) < FEED_BATCH:
            return
        try:
            await self._database.run(self._feed_unfed_sync)
        except BaseException:
            await self.abort()
            raise

    async def finish(self) -> Ingested:
        """End of message: the indexed, stored skeleton (its bodies are held)."""
        if self._done:
            raise InvalidInput("ingest already finished")
        try:
            result = await self._database.run(self._finish_unfed_sync)
        except BaseException:
            await self.abort()
            raise
        self._done = True
        return result

    async def abort(self) -> None:
        """Discard the message: uploads deleted, holds on finished bodies dropped."""
        if self._done:
            return
        self._done = True
        # Shielded: a write or finish cancelled midway (the client went away) still
        # removes its upload, which nothing else would (but the sweep, much later).
        with trio.CancelScope(shield=True):
            await self._database.run(self._abort_sync)

    def _indexer(self) -> MessageIndexer:
        if self._made_indexer is None:
            self._made_indexer = MessageIndexer(self._limits)
        return self._made_indexer

    def whole_sync(self, data: bytes) -> Ingested:
        """``write(data)`` then ``finish()`` in the calling (worker) thread: a message
        already whole in memory (IMAP APPEND) costs one thread hand-off, not two."""
        if self._done:
            raise InvalidInput("ingest already finished")
        self._size = len(data)
        try:
            if self._size > self.max_size:
                raise TooBig(f"message larger than {self.max_size} octets")
            result = self._all_at_once(bytes(data))
        except BaseException:
            self._done = True
            self._abort_sync()
            raise
        self._done = True
        return result

    # -- blocking internals, run in a worker thread ---------------------------------

    def _feed_unfed_sync(self) -> None:
        data = bytes(self._unfed)
        self._unfed.clear()
        self._feed_sync(data)

    def _finish_unfed_sync(self) -> Ingested:
        if self._unfed and not self._fed:
            # The whole message came before a feed batch filled (FEED_BATCH: most
            # deliveries): it is handled as an APPEND's is.
            data = bytes(self._unfed)
            self._unfed.clear()
            return self._all_at_once(data)
        if self._unfed:
            self._feed_unfed_sync()
        return self._finish_sync()

    def _all_at_once(self, data: bytes) -> Ingested:
        """The whole message, every event at once: each large body's hash is known
        (its end event) before its bytes would be uploaded, so a stored one is only
        claimed, not uploaded, found a duplicate and deleted."""
        self._fed = True
        self._hash.update(data)
        indexed = parsers.index_whole(data, self._limits, self._extras)
        if indexed is None:
            events = self._indexer().feed(data)
            closing, message = self._indexer().close()
            indexed = events + closing, message, {}
        self._handle(indexed[0], whole=True)
        return self._finished(indexed[1], indexed[2])

    def _feed_sync(self, chunk: bytes) -> None:
        self._fed = True
        self._hash.update(chunk)
        self._handle(self._indexer().feed(chunk))

    def _finish_sync(self) -> Ingested:
        events, message = self._indexer().close()
        self._handle(events)
        return self._finished(message)

    def _finished(self, message: Any,
                  made: dict[str, dict[str, bytes] | None] | None = None) -> Ingested:
        self._flush_large()
        self._end_upload()
        self._flush_inline()
        if self._pos != self._size or message.size != self._size:
            raise RuntimeError("indexer events do not cover the message")  # a mime bug
        return Ingested(
            message=message, segments=tuple(self._segments), size=self._size,
            sha256=self._hash.hexdigest(),
            made={name: value for name, value in (made or {}).items() if value is not None},
        )

    def _abort_sync(self) -> None:
        self._unfed.clear()
        if self._upload is not None:
            self._upload.abort()
            self._upload = None
        held = [s.sha256 for s in self._segments if s.sha256 is not None]
        if held:
            from collections import Counter

            self._bodies.drop_refs(Counter(held))
        self._segments.clear()

    def _handle(self, events: list[Any], *, whole: bool = False) -> None:
        """Act on indexer events; ``whole``: they are the whole message's, so a large
        body already stored (by its hash, in its end event) is claimed, not sent."""
        i = 0
        while i < len(events):
            event = events[i]
            i += 1
            if whole and isinstance(event, LargeBodyStart):
                end = next((j for j in range(i, len(events))
                            if isinstance(events[j], LargeBodyEnd)), None)
                stored = None if end is None else self._bodies.claim(events[end].sha256)
                if end is not None and stored is not None:
                    self._end_upload()
                    self._flush_inline()
                    size = events[end].size
                    self._segments.append(Segment(self._pos, size,
                                                  sha256=events[end].sha256,
                                                  file_id=str(stored)))
                    self._pos += size
                    i = end + 1
                    continue
            if isinstance(event, SkeletonBytes):
                self._skeleton(event.data)
            elif isinstance(event, LargeBodyBytes):
                self._pending += event.data
                self._pos += len(event.data)
                if len(self._pending) >= WRITE_BATCH:
                    self._flush_large()
            elif isinstance(event, LargeBodyStart):
                self._end_upload()
                self._flush_inline()
                self._upload = self._bodies.upload(self._pos)
                self._upload_kind = "large"
            elif isinstance(event, LargeBodyEnd):
                self._flush_large()
                self._end_upload()

    def _skeleton(self, data: bytes) -> None:
        if (self._upload is not None and self._upload_kind == "skeleton"
                and self._upload.size + len(data) > SKELETON_BLOB_MAX):
            self._end_upload()
        if self._upload is None and self._inline_total + len(data) <= INLINE_MAX:
            if not self._inline:
                self._inline_start = self._pos
            self._inline += data
            self._inline_total += len(data)
        else:
            if self._upload is None:
                self._flush_inline()
                self._upload = self._bodies.upload(self._pos)
                self._upload_kind = "skeleton"
            self._upload.write(data)
        self._pos += len(data)

    def _flush_large(self) -> None:
        if self._pending and self._upload is not None:
            self._upload.write(bytes(self._pending))
        self._pending.clear()

    def _flush_inline(self) -> None:
        if self._inline:
            self._segments.append(Segment(self._inline_start, len(self._inline),
                                          data=bytes(self._inline)))
            self._inline.clear()

    def _end_upload(self) -> None:
        upload, self._upload = self._upload, None
        if upload is None:
            return
        sha, file_id = upload.finish()
        self._segments.append(Segment(upload.offset, upload.size, sha256=sha,
                                      file_id=str(file_id)))
