"""COMPRESS=DEFLATE (RFC 4978): a ``trio.abc.Stream`` that deflates what it sends
and inflates what it receives, over any stream (plain TCP or TLS).

Both directions are raw DEFLATE (RFC 1951, no zlib header: ``wbits=-15``, RFC 4978
§3). Every ``send_all`` ends with a ``Z_SYNC_FLUSH``: the session's writer calls it
once per burst of responses (duck/imap/wire.py buffers a burst), so the client can
inflate all of it without waiting for more (RFC 4978 §4).
"""

from __future__ import annotations

import zlib

import trio

#: Inflated octets returned per ``receive_some`` at most. A small compressed input can
#: inflate to a great deal (a decompression bomb); what is not yet inflated stays in
#: the decompressor's ``unconsumed_tail`` until the reader asks again.
MAX_INFLATE = 64 * 1024


class DeflateStream(trio.abc.Stream):
    """Raw DEFLATE both ways over ``inner`` (which it owns from now on)."""

    def __init__(self, inner: trio.abc.Stream, pending: bytes = b"") -> None:
        self.inner = inner
        # Compressed octets the client sent right after its COMPRESS command, read
        # before the switch (RFC 4978 §3: its compression starts after that CRLF).
        self._pending = pending
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)
        # The compressor's state is shared: two sends at once would interleave its
        # output out of order, so sends take turns.
        self._send_lock = trio.Lock()
        self.raw_in = 0
        self.raw_out = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Deflate ``data`` and flush it so the peer can inflate all of it now."""
        async with self._send_lock:
            out = self._deflate.compress(bytes(data)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            self.raw_out += len(out)
            await self.inner.send_all(out)

    async def wait_send_all_might_not_block(self) -> None:
        """As the inner stream."""
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Inflated octets (at most ``max_bytes`` or :data:`MAX_INFLATE`); b"" at EOF.

        Raises ``trio.BrokenResourceError`` on a corrupt DEFLATE stream."""
        limit = min(max_bytes or MAX_INFLATE, MAX_INFLATE)
        while True:
            tail = self._inflate.unconsumed_tail
            if tail:
                data = tail
            elif self._pending:
                data, self._pending = self._pending, b""
            else:
                data = bytes(await self.inner.receive_some())
                if not data:
                    return b""
                self.raw_in += len(data)
            try:
                out = self._inflate.decompress(data, limit)
            except zlib.error as exc:
                raise trio.BrokenResourceError(f"bad DEFLATE data: {exc}") from exc
            if out:
                return out
            if self._inflate.eof:
                # The client ended its DEFLATE stream: nothing more can follow.
                return b""
            # A flush marker alone inflates to nothing: read on.

    async def aclose(self) -> None:
        """Close the inner stream."""
        await self.inner.aclose()
