"""A raw IMAP client over a real socket, for byte-exact and hostile-input tests."""

from __future__ import annotations

import re

import trio

_LITERAL = re.compile(rb"~?\{(\d+)\+?\}\r\n$")


class RawClient:
    """Sends bytes as given; reads responses as lines, literals included inline."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buf = b""

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> RawClient:
        """Connect and read the greeting (kept in ``greeting``)."""
        client = cls(await trio.open_tcp_stream(host, port))
        client.greeting = await client.line()
        return client

    @classmethod
    async def logged_in(cls, port: int, user: str, password: str) -> RawClient:
        """Connect and LOGIN (asserting OK)."""
        client = await cls.open(port)
        await client.login(user, password)
        return client

    greeting: bytes = b""

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(65536)
        if not data:
            return False
        self.buf += data
        return True

    async def line(self) -> bytes:
        """One response line with its literals (CRLF kept); b"" at EOF."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                if not await self._fill():
                    rest, self.buf = self.buf, b""
                    return out + rest
            idx = self.buf.index(b"\r\n") + 2
            part, self.buf = self.buf[:idx], self.buf[idx:]
            out += part
            m = _LITERAL.search(part)
            if m is None:
                return out
            size = int(m.group(1))
            while len(self.buf) < size:
                if not await self._fill():
                    raise EOFError("connection closed inside a literal")
            out += self.buf[:size]
            self.buf = self.buf[size:]

    async def send(self, data: bytes) -> None:
        """Send bytes verbatim."""
        await self.stream.send_all(data)

    async def until_tagged(self, tag: bytes) -> list[bytes]:
        """Every line up to and including the one tagged ``tag``."""
        lines: list[bytes] = []
        while True:
            line = await self.line()
            if not line:
                raise EOFError(f"connection closed before {tag!r}: {lines!r}")
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    async def command(self, tag: bytes, text: bytes) -> list[bytes]:
        """Send ``tag text CRLF`` and collect the answer."""
        await self.send(tag + b" " + text + b"\r\n")
        return await self.until_tagged(tag)

    async def login(self, user: str, password: str) -> None:
        """LOGIN, asserting OK."""
        lines = await self.command(b"L", f'LOGIN "{user}" "{password}"'.encode())
        assert lines[-1].startswith(b"L OK"), lines

    async def eof(self) -> bool:
        """Whether the server closed the connection (reads what is left)."""
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return True
            if not data:
                return True
            self.buf += data

    async def aclose(self) -> None:
        """Close the socket."""
        await self.stream.aclose()
