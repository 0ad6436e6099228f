"""A small ManageSieve client over trio for the protocol tests."""

from __future__ import annotations

import base64
import ssl

import trio


class SieveClient:
    """Send commands, read responses (lines until OK/NO/BYE)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream: trio.abc.Stream = stream
        self.buffer = bytearray()

    @classmethod
    async def connect(cls, port: int, tls: ssl.SSLContext | None = None) -> SieveClient:
        stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
        if tls is not None:
            stream = trio.SSLStream(stream, tls, server_hostname="localhost")
        return cls(stream)

    async def starttls(self, tls: ssl.SSLContext) -> None:
        self.stream = trio.SSLStream(self.stream, tls, server_hostname="localhost")
        await self.stream.do_handshake()  # type: ignore[attr-defined]

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.buffer += data
        end = self.buffer.index(b"\r\n")
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 2]
        if line.endswith(b"}") and b"{" in line:
            size = int(line[line.rindex(b"{") + 1:-1].rstrip(b"+"))
            while len(self.buffer) < size:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError
                self.buffer += data
            line = line[:line.rindex(b"{")] + bytes(self.buffer[:size])
            del self.buffer[:size]
            if self.buffer.startswith(b"\r\n"):
                del self.buffer[:2]
        return line

    async def response(self) -> tuple[list[bytes], bytes]:
        """(data lines, final OK/NO/BYE line)."""
        lines = []
        while True:
            line = await self.line()
            if line.startswith((b"OK", b"NO", b"BYE")):
                return lines, line
            lines.append(line)

    async def command(self, text: bytes) -> tuple[list[bytes], bytes]:
        await self.send(text + b"\r\n")
        return await self.response()

    async def login(self, user: str, password: str) -> bytes:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        _, last = await self.command(f'AUTHENTICATE "PLAIN" "{token}"'.encode())
        return last

    async def aclose(self) -> None:
        await self.stream.aclose()


def literal(data: bytes) -> bytes:
    """A non-synchronizing client literal."""
    return b"{%d+}\r\n" % len(data) + data
