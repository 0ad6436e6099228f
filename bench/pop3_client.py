"""A minimal raw-socket POP3 client for timing (trio).

Like ``imap_client.py``: it only frames replies (status lines, multi-line bodies
up to the lone "."), counts bytes and measures wall time from the first byte sent
to the end of the reply, so the figures are the server's.
"""

from __future__ import annotations

import time

import attrs
import trio

RECV = 256 * 1024


class Pop3Error(RuntimeError):
    """The server answered -ERR, or closed the connection."""


@attrs.define
class Reply:
    """The outcome of one command."""

    status: bytes
    #: Octets of the multi-line body (stuffed, terminator included); 0 for none.
    received: int
    #: Lines of the multi-line body (terminator excluded).
    lines: int
    seconds: float


class Pop3Client:
    """One connection; commands are sent one at a time."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buf = bytearray()

    @classmethod
    async def connect(cls, host: str, port: int) -> Pop3Client:
        """Connect and read the greeting."""
        client = cls(await trio.open_tcp_stream(host, port))
        await client._status()
        return client

    async def _fill(self) -> None:
        data = await self.stream.receive_some(RECV)
        if not data:
            raise Pop3Error("connection closed by the server")
        self._buf += data

    async def _status(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            await self._fill()
        line = bytes(self._buf[:end])
        del self._buf[:end + 2]
        if not line.startswith(b"+OK"):
            raise Pop3Error(line.decode(errors="replace"))
        return line

    async def _body(self) -> tuple[int, int]:
        start = 0
        if self._buf.startswith(b".\r\n"):
            del self._buf[:3]
            return 3, 0
        while (end := self._buf.find(b"\r\n.\r\n", start)) < 0:
            start = max(len(self._buf) - 4, 0)
            await self._fill()
        size = end + 5
        lines = self._buf.count(b"\r\n", 0, end + 2)
        del self._buf[:size]
        return size, lines

    async def command(self, line: str, *, multiline: bool = False) -> Reply:
        """Send one command and read its reply (and body, for a multi-line one)."""
        started = time.perf_counter()
        await self.stream.send_all(line.encode() + b"\r\n")
        status = await self._status()
        received, lines = await self._body() if multiline else (0, 0)
        return Reply(status, received, lines, time.perf_counter() - started)

    async def login(self, user: str, password: str) -> Reply:
        """USER and PASS; the reply to PASS (whose time includes taking the maildrop)."""
        await self.command(f"USER {user}")
        return await self.command(f"PASS {password}")

    async def aclose(self) -> None:
        """QUIT (nothing deleted) and close."""
        try:
            await self.command("QUIT")
        finally:
            await self.stream.aclose()
