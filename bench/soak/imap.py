"""A small IMAP client for the soak: commands one at a time, responses framed
(lines and literals), and the few response codes the soak reads (APPENDUID,
COPYUID, UIDVALIDITY). Any failure of the connection is an ``ImapDown``."""

from __future__ import annotations

import re

import attrs
import trio

_LITERAL = re.compile(rb"\{(\d+)\+?\}$")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
_COPYUID = re.compile(rb"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH = re.compile(rb"^\* (\d+) FETCH \((.*)\)$", re.S)
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_UID = re.compile(rb"UID (\d+)")
#: The soak's message identifier (in Subject and Message-ID).
SOAK_ID = re.compile(rb"sk[0-9a-f]{10}x")


class ImapDown(Exception):
    """The connection failed or timed out: the command's outcome is unknown."""


@attrs.define
class Reply:
    """A tagged reply and the untagged responses before it."""

    status: str
    text: bytes
    untagged: list[bytes]

    @property
    def ok(self) -> bool:
        """True for a tagged OK."""
        return self.status == "OK"


def uid_set(text: bytes) -> list[int]:
    """Expand an IMAP sequence set of numbers (``1:3,7``)."""
    out: list[int] = []
    for part in text.split(b","):
        lo, _, hi = part.partition(b":")
        a, b = int(lo), int(hi or lo)
        out.extend(range(min(a, b), max(a, b) + 1))
    return out


def appenduid(reply: Reply) -> tuple[int, int] | None:
    """(uidvalidity, uid) from an APPENDUID response code."""
    m = _APPENDUID.search(reply.text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def copyuid(reply: Reply) -> tuple[int, dict[int, int]] | None:
    """(destination uidvalidity, {source uid: destination uid}) from COPYUID, in the
    tagged reply (COPY) or an untagged OK (MOVE)."""
    for line in [reply.text, *reply.untagged]:
        m = _COPYUID.search(line)
        if m:
            return int(m.group(1)), dict(zip(uid_set(m.group(2)), uid_set(m.group(3)),
                                             strict=True))
    return None


def uidvalidity(reply: Reply) -> int | None:
    """UIDVALIDITY from a SELECT's untagged responses."""
    for line in reply.untagged:
        m = _UIDVALIDITY.search(line)
        if m:
            return int(m.group(1))
    return None


def fetch_items(line: bytes) -> tuple[int, int | None, frozenset[str] | None] | None:
    """(sequence number, UID, flags) of an untagged FETCH; None for other lines."""
    m = _FETCH.match(line)
    if not m:
        return None
    items = m.group(2)
    uid = _UID.search(items)
    flags = _FLAGS.search(items)
    return (int(m.group(1)), int(uid.group(1)) if uid else None,
            None if flags is None else clean_flags(flags.group(1)))


def clean_flags(text: bytes) -> frozenset[str]:
    """Flags as a set, without the session-only \\Recent."""
    return frozenset(f for f in text.decode().split() if f.lower() != "\\recent")


class Imap:
    """One IMAP connection."""

    def __init__(self, stream: trio.SocketStream, timeout: float) -> None:
        self.stream = stream
        self.timeout = timeout
        self._buf = bytearray()
        self._tag = 0

    @classmethod
    async def connect(cls, port: int, timeout: float) -> Imap:
        """Connect to 127.0.0.1:port and read the greeting."""
        try:
            with trio.fail_after(timeout):
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                client = cls(stream, timeout)
                await client.response()
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
            raise ImapDown(f"connect: {exc!r}") from exc
        return client

    async def aclose(self) -> None:
        """Close the connection (never raises)."""
        with trio.move_on_after(2):
            try:
                await self.stream.aclose()
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def _fill(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ImapDown(f"receive: {exc!r}") from exc
        if not data:
            raise ImapDown("connection closed by the server")
        self._buf += data

    async def response(self) -> bytes:
        """The next response, literals inlined."""
        out = bytearray()
        while True:
            while (end := self._buf.find(b"\r\n")) < 0:
                await self._fill()
            line = bytes(self._buf[:end])
            del self._buf[:end + 2]
            out += line
            m = _LITERAL.search(line)
            if not m:
                return bytes(out)
            size = int(m.group(1))
            while len(self._buf) < size:
                await self._fill()
            out += b"\r\n" + bytes(self._buf[:size])
            del self._buf[:size]

    async def send(self, data: bytes) -> None:
        """Send raw bytes."""
        try:
            await self.stream.send_all(data)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ImapDown(f"send: {exc!r}") from exc

    def next_tag(self) -> bytes:
        """A fresh tag."""
        self._tag += 1
        return b"t%d" % self._tag

    async def _until_tagged(self, tag: bytes) -> Reply:
        untagged: list[bytes] = []
        while True:
            line = await self.response()
            if line.startswith(tag + b" "):
                status, _, text = line[len(tag) + 1:].partition(b" ")
                return Reply(status.decode(), text, untagged)
            untagged.append(line)

    async def command(self, text: str | bytes, literal: bytes | None = None) -> Reply:
        """Run one command (with one trailing synchronizing literal if given)."""
        tag = self.next_tag()
        raw = text.encode() if isinstance(text, str) else text
        try:
            with trio.fail_after(self.timeout):
                if literal is None:
                    await self.send(tag + b" " + raw + b"\r\n")
                    return await self._until_tagged(tag)
                await self.send(tag + b" " + raw + b" {%d}\r\n" % len(literal))
                first = await self.response()
                if not first.startswith(b"+"):
                    status, _, rest = first[len(tag) + 1:].partition(b" ")
                    return Reply(status.decode(), rest, [])
                await self.send(literal + b"\r\n")
                return await self._until_tagged(tag)
        except (trio.TooSlowError, OSError, trio.BrokenResourceError) as exc:
            raise ImapDown(f"{raw[:40]!r}: {exc!r}") from exc
