"""A Postfix socketmap server: the MTA asks whether a recipient or a domain is ours.

Protocol (socketmap_table(5)): the client sends netstrings ``<name> <key>``, several
on one connection, and reads one netstring reply per request: ``OK <data>``,
``NOTFOUND ``, ``TEMP <reason>``, ``TIMEOUT <reason>`` or ``PERM <reason>``. Maps:

- ``recipient``: ``OK <address>`` when LMTP would accept the address (the same
  lookup as RCPT: the exact address, else ``user+tag@`` as ``user@``);
- ``domain``: ``OK <domain>`` when some address of a user is in the domain.

Postfix then refuses unknown recipients at its SMTP RCPT instead of accepting the
mail and bouncing it later (backscatter). A database outage answers TEMP (Postfix
defers with 4xx); input that is not a netstring answers PERM and closes the
connection, as does a request that is not ``<name> <key>``; an unknown map name
answers PERM and the connection stays open.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import attrs
import trio

from ..net import serve_tcp
from ..store import Store, StoreUnavailable
from .netstring import NetstringError, NetstringReader, encode

log = logging.getLogger(__name__)

#: Longest request accepted (Postfix keys are addresses: far below this).
MAX_REQUEST = 10000
#: A connection idle this long is closed (Postfix reconnects when it needs to).
IDLE_TIMEOUT = 300.0
#: Seconds a domain answer is remembered (the domain query scans the address index).
DOMAIN_TTL = 30.0
#: The start of the reply to a malformed request (after which the connection closes).
MALFORMED = b"PERM malformed request: "


@attrs.define
class SocketmapServer:
    """Answers socketmap lookups from the store."""

    store: Store
    idle_timeout: float = IDLE_TIMEOUT
    _domains: dict[str, tuple[float, bool]] = attrs.Factory(dict)

    async def answer(self, request: bytes) -> bytes:
        """The reply payload to one request payload (PERM for a malformed one)."""
        try:
            text = request.decode("utf-8")
        except UnicodeDecodeError:
            return MALFORMED + b"not UTF-8"
        name, sep, key = text.partition(" ")
        if not sep or not key or not name:
            return MALFORMED + b"expected <name> <key>"
        try:
            if name == "recipient":
                found = await self.store.users.resolve_address(key)
                return b"NOTFOUND " if found is None else f"OK {found.address}".encode()
            if name == "domain":
                return f"OK {key}".encode() if await self._domain(key) else b"NOTFOUND "
        except StoreUnavailable:
            return b"TEMP the mail store is unavailable"
        return f"PERM unknown map {name[:64]!r}".encode()

    async def _domain(self, domain: str) -> bool:
        key = domain.lower()
        now = time.monotonic()
        cached = self._domains.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self.store.users.has_domain(domain)
        if len(self._domains) > 10000:
            self._domains.clear()
        self._domains[key] = (now + DOMAIN_TTL, found)
        return found

    async def handle(self, stream: trio.abc.Stream) -> None:
        """Serve one client connection until it closes, goes idle or errs."""
        reader = NetstringReader(MAX_REQUEST)
        while True:
            data: bytes | bytearray = b""
            with trio.move_on_after(self.idle_timeout):
                data = await stream.receive_some(65536)
            if not data:
                return  # closed by the client, or idle too long
            try:
                requests = reader.feed(data)
            except NetstringError as exc:
                await stream.send_all(encode(f"PERM {exc}".encode()))
                return  # the stream cannot be resynchronised
            for request in requests:
                reply = await self.answer(request)
                await stream.send_all(encode(reply))
                if reply.startswith(MALFORMED):
                    return  # a client that sends nonsense gets no more answers


async def serve_socketmap(store: Store, host: str, port: int, *, shutdown: trio.Event,
                          task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Listen for socketmap clients on ``host:port`` until ``shutdown``."""
    server = SocketmapServer(store)
    await serve_tcp(server.handle, host, port, name="SOCKETMAP", shutdown=shutdown,
                    task_status=task_status)
