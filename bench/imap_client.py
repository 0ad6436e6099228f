"""A minimal raw-socket IMAP client for timing (trio).

imapclient parses every response into Python objects, which at 100k messages costs
more than the server's work; this client only frames responses (lines and
literals), counts them and measures wall time from the first byte sent to the
tagged completion, so the figures are the server's.
"""

from __future__ import annotations

import re
import time

import attrs
import trio

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
RECV = 256 * 1024


class ImapError(RuntimeError):
    """The server answered NO/BAD, or closed the connection."""


@attrs.define
class Reply:
    """The outcome of one command."""

    status: str
    text: str
    #: Untagged responses (literals inlined) when kept, else empty.
    untagged: list[bytes]
    #: Number of untagged responses.
    count: int
    #: Bytes received for this command.
    received: int
    seconds: float


class ImapClient:
    """One connection; commands are sent one at a time."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buf = bytearray()
        self._tag = 0
        self.greeting = b""

    @classmethod
    async def connect(cls, host: str, port: int) -> ImapClient:
        """Connect and read the greeting."""
        stream = await trio.open_tcp_stream(host, port)
        client = cls(stream)
        client.greeting = await client._response()
        return client

    async def _fill(self) -> None:
        data = await self.stream.receive_some(RECV)
        if not data:
            raise ImapError("connection closed by the server")
        self._buf += data

    async def _line(self) -> bytes:
        start = 0
        while True:
            end = self._buf.find(b"\r\n", start)
            if end >= 0:
                line = bytes(self._buf[:end + 2])
                del self._buf[:end + 2]
                return line
            start = max(len(self._buf) - 1, 0)
            await self._fill()

    async def _response(self) -> bytes:
        """One whole response: a line plus any literals and the lines that follow."""
        parts = []
        while True:
            line = await self._line()
            parts.append(line)
            m = _LITERAL.search(line)
            if m is None:
                return b"".join(parts)
            size = int(m.group(1))
            while len(self._buf) < size:
                await self._fill()
            parts.append(bytes(self._buf[:size]))
            del self._buf[:size]

    async def command(self, line: str | bytes, *, literal: bytes | None = None,
                      keep: bool = True, check: bool = True) -> Reply:
        """Send ``line`` (without tag or CRLF) and read until its tagged completion.

        With ``literal``, ``line`` must end with ``{N+}`` (LITERAL+) and the bytes
        follow at once. ``keep=False`` only counts untagged responses.
        """
        self._tag += 1
        tag = f"b{self._tag}".encode()
        data = line.encode() if isinstance(line, str) else line
        out = tag + b" " + data + b"\r\n"
        if literal is not None:
            out += literal + b"\r\n"
        started = time.perf_counter()
        await self.stream.send_all(out)
        untagged: list[bytes] = []
        count = received = 0
        while True:
            resp = await self._response()
            received += len(resp)
            if resp.startswith(tag + b" "):
                seconds = time.perf_counter() - started
                status, _, text = resp[len(tag) + 1:].decode("utf-8", "replace").partition(" ")
                reply = Reply(status, text.strip(), untagged, count, received, seconds)
                if check and status != "OK":
                    raise ImapError(f"{data[:80]!r}: {status} {text.strip()}")
                return reply
            if resp.startswith(b"+"):
                raise ImapError("unexpected continuation request")
            count += 1
            if keep:
                untagged.append(resp)

    async def login(self, user: str, password: str) -> None:
        """LOGIN with quoted strings."""
        await self.command(f'LOGIN "{user}" "{password}"')

    async def aclose(self) -> None:
        """Close the socket without LOGOUT."""
        await self.stream.aclose()
