"""MongoDB's wire protocol on trio sockets: the store's database calls without a
worker thread or pymongo's per-call machinery.

Measured on the machine bench/README.md describes, ten trio tasks each reading one
document by ``_id`` in a loop: through pymongo in worker threads (threadpool.py)
~0.45 ms of duck's CPU per read, ~19 context switches per IMAP command under
imaptest; over this module ~0.09 ms, and no thread switch at all. A read is one
``OP_MSG`` out and one in; the encoding is ``bson``'s C extension, pymongo's own.

Only what a plain connection needs: no authentication, no TLS, one server. The
database decides (database.py, ``Database.wire``) whether its deployment is one
this module can reach; any other is served by pymongo in worker threads, as every
call was before. Errors are raised as pymongo's exception classes so that the rest
of the store, and database.py's translation of outages, see one set of errors.
"""

from __future__ import annotations

import itertools
import math
import select
import socket
import struct
import time
from typing import Any

import bson
import pymongo.errors
import trio
from bson.codec_options import CodecOptions

from . import promptly

#: ``OP_MSG`` (MongoDB 3.6+), the only opcode sent or accepted.
OP_MSG = 2013
_HEADER = struct.Struct("<iiii")
_INT = struct.Struct("<i")
#: flagBits 0 and a kind-0 section (one BSON document) follow the header.
_BODY_PREFIX = b"\x00\x00\x00\x00\x00"
#: A reply larger than this is refused (``ProtocolError``), as pymongo refuses one
#: over the server's ``maxMessageSizeBytes``: the embedded server does not split
#: its replies, and index/digest.py asks again in halves on that error.
MAX_REPLY = 48_000_000
#: Seconds a connection may sit idle before it is checked for a close by the
#: server (a restarted database) before its next use, as pymongo checks its own.
CHECK_IDLE = 1.0
#: Most seconds between two looks of a pool's watchdog for a reply overdue by the
#: socket timeout (a quarter of the timeout when that is shorter).
WATCH_EVERY = 1.0
_RECEIVE = 256 * 1024

_request_ids = itertools.count(1)


class Connection:
    """One socket to the server; one command at a time.

    The socket is used directly with ``trio.lowlevel.wait_readable`` rather than
    through a ``SocketStream``: a send that completes at once and a reply read
    after one wait cost no extra trip through trio's scheduler (``send_all`` and
    ``receive_some`` each yield once even when the call did not block). The store
    call around it is shielded (database.py), so no cancellation point is lost.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buffer = bytearray()
        self.broken = False
        self.last_used = time.monotonic()
        #: When the reply being waited for is overdue (``time.monotonic``).
        self.deadline = math.inf
        #: Closed by the watchdog: its reply was overdue.
        self.timed_out = False

    def closed_by_peer(self) -> bool:
        """Whether the server has closed (or written to) this idle connection: an
        idle connection is owed nothing, so anything readable is its end."""
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    async def round_trip(self, message: bytes) -> bytes:
        """Send one ``OP_MSG`` and return its reply's BSON document (raw bytes)."""
        sock = self._sock
        try:
            view = memoryview(message)
            while view:
                try:
                    view = view[sock.send(view):]
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
            buffer = self._buffer
            while True:
                if len(buffer) >= 16:
                    length = _INT.unpack_from(buffer)[0]
                    if not 21 <= length <= MAX_REPLY:
                        raise pymongo.errors.ProtocolError(
                            f"reply of {length} bytes from the database")
                    if len(buffer) >= length:
                        break
                try:
                    chunk = sock.recv(_RECEIVE)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(sock)
                    continue
                if not chunk:
                    raise pymongo.errors.AutoReconnect("the database closed the connection")
                buffer += chunk
            opcode = _INT.unpack_from(buffer, 12)[0]
            if opcode != OP_MSG or buffer[20] != 0:
                raise pymongo.errors.ProtocolError(f"unexpected reply (opcode {opcode})")
            body = bytes(buffer[21:length])
            del buffer[:length]
            return body
        except BaseException:
            # A reply half read, or a request half sent: the socket is out of step.
            self.broken = True
            raise

    def close(self) -> None:
        """Close the socket (waking any task that waits on it)."""
        self.broken = True
        if self._sock.fileno() >= 0:
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()


class Wire:
    """A bounded pool of connections to one server, per ``trio.run``."""

    def __init__(self, host: str, port: int, *, size: int, codec_options: CodecOptions[Any],
                 connect_timeout: float, socket_timeout: float) -> None:
        self.host = host
        self.port = port
        self.codec_options = codec_options
        self.connect_timeout = connect_timeout
        self.socket_timeout = socket_timeout
        self._size = size
        # (A pool per trio.run: a socket waited on belongs to its run, and a run's
        # RunVar values, its sockets with them, go when the run ends.)
        self._pools: trio.lowlevel.RunVar[_Pool] = trio.lowlevel.RunVar("duck_wire_pool")

    def _pool(self) -> _Pool:
        try:
            return self._pools.get()
        except LookupError:
            pool = _Pool(self, self._size)
            self._pools.set(pool)
            return pool

    def encode(self, db: str, command: dict[str, Any]) -> bytes:
        """One ``OP_MSG`` carrying ``command`` for database ``db``."""
        command["$db"] = db
        body = bson.encode(command, codec_options=self.codec_options)
        return _HEADER.pack(21 + len(body), next(_request_ids), 0, OP_MSG) + _BODY_PREFIX + body

    async def command(self, db: str, command: dict[str, Any], *,
                      codec_options: CodecOptions[Any] | None = None) -> dict[str, Any]:
        """Run ``command`` (its first key names it) and return the server's reply;
        a reply with ``ok: 0`` raises ``OperationFailure``, a lost connection
        ``AutoReconnect``."""
        message = self.encode(db, command)
        reply = await self._pool().round_trip(message)
        doc: dict[str, Any] = bson.decode(reply, codec_options or self.codec_options)
        if not doc.get("ok"):
            raise failure(doc)
        return doc

    async def aclose(self) -> None:
        """Close this run's connections."""
        try:
            pool = self._pools.get()
        except LookupError:
            return
        await pool.aclose()


class _Pool:
    def __init__(self, wire: Wire, size: int) -> None:
        self._wire = wire
        self._idle: list[Connection] = []
        self._slots = trio.Semaphore(size)
        #: Connections waiting for a reply; the watchdog closes an overdue one.
        self._waiting: set[Connection] = set()
        # (Made inside a trio.run, by Wire._pool: the watchdog is that run's.)
        trio.lowlevel.spawn_system_task(self._watch, name="duck wire watchdog")

    async def _connect(self) -> Connection:
        wire = self._wire
        try:
            with trio.fail_after(wire.connect_timeout):
                stream = await trio.open_tcp_stream(wire.host, wire.port)
        except (OSError, trio.TooSlowError) as exc:
            raise pymongo.errors.AutoReconnect(
                f"{wire.host}:{wire.port}: {exc or 'connect timed out'}") from exc
        # (trio resolves and connects; the socket is then used directly.)
        return Connection(socket.socket(fileno=stream.socket.detach()))

    async def round_trip(self, message: bytes) -> bytes:
        slots = self._slots
        await promptly.acquire(slots)
        try:
            conn = None
            while self._idle:
                conn = self._idle.pop()
                if (time.monotonic() - conn.last_used < CHECK_IDLE
                        or not conn.closed_by_peer()):
                    break
                conn.close()
                conn = None
            if conn is None:
                conn = await self._connect()
            # (A deadline the watchdog enforces, not a cancel scope per round
            # trip: ~10 µs each, ~1.5% of duck's CPU under imaptest.)
            conn.deadline = time.monotonic() + self._wire.socket_timeout
            self._waiting.add(conn)
            try:
                reply = await conn.round_trip(message)
            except trio.ClosedResourceError as exc:
                if conn.timed_out:
                    raise pymongo.errors.NetworkTimeout(
                        "the database did not answer") from exc
                raise pymongo.errors.AutoReconnect("database connection closed") from exc
            except OSError as exc:
                raise pymongo.errors.AutoReconnect(f"database connection lost: {exc}") from exc
            finally:
                self._waiting.discard(conn)
                if conn.broken:
                    conn.close()
            conn.last_used = time.monotonic()
            self._idle.append(conn)
            return reply
        finally:
            slots.release()

    async def _watch(self) -> None:
        """Close each connection whose reply is overdue by the socket timeout: its
        waiting task then gets ``NetworkTimeout``."""
        every = min(WATCH_EVERY, self._wire.socket_timeout / 4)
        while True:
            await trio.sleep(every)
            now = time.monotonic()
            for conn in [c for c in self._waiting if c.deadline < now]:
                conn.timed_out = True
                conn.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def failure(reply: dict[str, Any]) -> pymongo.errors.OperationFailure:
    """The exception pymongo raises for a command reply with ``ok: 0``."""
    code = reply.get("code")
    message = str(reply.get("errmsg", "command failed"))
    if code in (11000, 11001, 12582):
        return pymongo.errors.DuplicateKeyError(message, code, reply)
    if code == 50:
        return pymongo.errors.ExecutionTimeout(message, code, reply)
    return pymongo.errors.OperationFailure(message, code, reply)


def seconds(value: float | None) -> float:
    """A pymongo pool timeout (seconds; None for none) as a trio deadline's length."""
    return math.inf if value is None or value <= 0 else value
