"""The trio LMTP server: one task per connection, driving ``LmtpProtocol`` against a backend.

Replies are collected while pipelined commands are processed and written when the
protocol needs more input (RFC 2920 section 3.2), so a pipelined batch costs one
write. Each recipient's reply after the message is sent only once the backend
reported that copy stored (RFC 2033 section 4.2, in RCPT order).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import ssl
import time
from collections.abc import Sequence

import attrs
import trio

from duck import observe
from duck.lmtp.address import normalize
from duck.lmtp.backend import (
    Accepted,
    AcceptedRecipient,
    BackendUnavailable,
    Delivery,
    Envelope,
    LmtpBackend,
    RecipientOutcome,
    Refused,
    Stored,
    trace_headers,
)
from duck.lmtp.events import (
    PAUSED,
    Bdat,
    ChunkEnd,
    ConnectionClosed,
    DataAbort,
    DataChunk,
    DataEnd,
    DataStart,
    Event,
    Lhlo,
    MailFrom,
    Noop,
    ProtocolError,
    Quit,
    RcptTo,
    Rset,
    Sentinel,
    StartTls,
    Vrfy,
)
from duck.lmtp.protocol import LmtpProtocol, ProtocolConfig
from duck.lmtp.replies import (
    CANNOT_VRFY,
    OK,
    READY_FOR_TLS,
    START_MAIL_INPUT,
    Failure,
    Reply,
    failure_reply,
    reply,
)
from duck.net import peer_address, read_socket, socket_fd, write_socket
from duck.tls import HandshakeFailed, start_tls

log = logging.getLogger("duck.lmtp")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Loopback only, as the issue asks: an LMTP listener is for the local MTA.
LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)

_UNAVAILABLE = failure_reply(Failure.UNAVAILABLE)


@attrs.frozen
class LmtpServerConfig:
    """Settings of the LMTP listener."""

    hostname: str = "localhost"
    max_message_size: int | None = 64 * 1024 * 1024
    max_recipients: int = 1000
    #: Peers outside these networks get 421 and a close. Unix-socket peers are
    #: always allowed: the socket file's permissions guard them.
    allowed_networks: tuple[IPNetwork, ...] = LOOPBACK_NETWORKS
    tls_context: ssl.SSLContext | None = None
    #: RFC 5321 section 4.5.3.2.7: a server should wait at least 5 minutes for a command.
    idle_timeout: float = 300.0
    tls_handshake_timeout: float = 30.0
    #: How long in-flight transactions may run on after shutdown starts.
    grace_period: float = 30.0
    max_connections: int = 1000
    read_size: int = 64 * 1024
    #: How long ``Delivery.abort`` may take when a connection ends badly.
    abort_timeout: float = 10.0
    #: Consecutive refused commands before the connection is closed with 421
    #: (a client that is not speaking LMTP at all; Postfix's smtpd_hard_error_limit).
    max_errors: int = 20

    def protocol_config(self) -> ProtocolConfig:
        """The sans-IO machine's share of the settings."""
        return ProtocolConfig(
            max_message_size=self.max_message_size,
            max_recipients=self.max_recipients,
            starttls=self.tls_context is not None,
        )


@attrs.frozen
class LmtpServerStatistics:
    """Counters of an LmtpServer (trio's ``statistics()`` convention)."""

    connections_open: int
    connections_total: int
    connections_refused: int
    messages_delivered: int
    messages_failed: int
    shutting_down: bool


class _Closed(Exception):
    """The connection is over (peer gone, timeout, QUIT, fatal error)."""


class LmtpServer:
    """Accepts LMTP connections on listeners and delivers into an ``LmtpBackend``."""

    def __init__(self, backend: LmtpBackend, config: LmtpServerConfig | None = None) -> None:
        self.backend = backend
        self.config = config or LmtpServerConfig()
        self.listeners: list[trio.SocketListener] = []
        self._connections: set[_Connection] = set()
        self._accept_scope = trio.CancelScope()
        self._shutting_down = False
        self._changed = trio.Event()
        self._total = 0
        self._refused = 0
        self._delivered = 0
        self._failed = 0

    def statistics(self) -> LmtpServerStatistics:
        """Connection and delivery counters."""
        return LmtpServerStatistics(
            connections_open=len(self._connections),
            connections_total=self._total,
            connections_refused=self._refused,
            messages_delivered=self._delivered,
            messages_failed=self._failed,
            shutting_down=self._shutting_down,
        )

    def ports(self) -> list[int]:
        """The TCP ports the listeners are bound to (after ``serve`` has started)."""
        return [
            listener.socket.getsockname()[1] for listener in self.listeners
            if listener.socket.family in (socket.AF_INET, socket.AF_INET6)
        ]

    def shutdown(self) -> None:
        """Begin a graceful shutdown: stop accepting, close idle connections,
        let transactions in flight finish within ``grace_period``. Idempotent."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self._accept_scope.cancel()
        for conn in list(self._connections):
            conn.shutdown()
        self._notify()

    async def serve(
        self,
        listeners: Sequence[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[LmtpServer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until ``shutdown`` has drained the connections, or until cancelled."""
        self.listeners = list(listeners)
        async with trio.open_nursery() as handlers:
            with self._accept_scope:
                if self._shutting_down:
                    self._accept_scope.cancel()
                async with trio.open_nursery() as acceptors:
                    for listener in self.listeners:
                        acceptors.start_soon(self._accept_loop, listener, handlers)
                    task_status.started(self)
            for listener in self.listeners:
                await trio.aclose_forcefully(listener)
            with trio.move_on_after(self.config.grace_period):
                while self._connections:
                    await self._wait_changed()
            if self._connections:
                log.warning("LMTP grace period over, cancelling %d connections",
                            len(self._connections))
            handlers.cancel_scope.cancel()

    async def _accept_loop(self, listener: trio.SocketListener,
                           handlers: trio.Nursery) -> None:
        await trio.serve_listeners(self._handle, [listener], handler_nursery=handlers)

    def _count_message(self, delivered: bool) -> None:
        if delivered:
            self._delivered += 1
        else:
            self._failed += 1

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _handle(self, stream: trio.SocketStream) -> None:
        observer = observe.current()
        host, port = peer_address(stream)
        peer = f"{host}:{port}"
        observer.connection_opened("lmtp", peer)
        opened = trio.current_time()
        try:
            await self._serve_connection(stream)
        finally:
            observer.connection_closed("lmtp", peer, trio.current_time() - opened)

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        self._total += 1
        refusal = self._refusal(stream)
        if refusal is not None:
            self._refused += 1
            with trio.move_on_after(5):
                try:
                    await stream.send_all(refusal.to_bytes())
                except trio.BrokenResourceError:
                    pass  # the peer left first; nothing to tell it
            await trio.aclose_forcefully(stream)
            return
        conn = _Connection(self, stream)
        self._connections.add(conn)
        try:
            await conn.run()
        except Exception:
            # A bug in one connection closes that connection only (docs/architecture.md).
            log.exception("LMTP connection failed")
        finally:
            self._connections.discard(conn)
            await trio.aclose_forcefully(conn.stream)
            self._notify()

    def _refusal(self, stream: trio.SocketStream) -> Reply | None:
        host = self.config.hostname
        if self._shutting_down:
            return reply(421, "4.3.2", f"{host} Service shutting down")
        if len(self._connections) >= self.config.max_connections:
            return reply(421, "4.3.2", f"{host} Too many connections")
        if not _peer_allowed(stream, self.config.allowed_networks):
            return reply(421, "4.7.0", f"{host} Access denied")
        return None


def _peer_allowed(stream: trio.SocketStream, networks: Sequence[IPNetwork]) -> bool:
    sock = stream.socket
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return True
    addr = ipaddress.ip_address(sock.getpeername()[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


#: LMTP events timed as commands (duck_command_seconds), by the verb they report;
#: the end of a message's data is its delivery.
_VERBS: dict[type, str] = {
    Lhlo: "LHLO", MailFrom: "MAIL", RcptTo: "RCPT", DataStart: "DATA", DataEnd: "DATA END",
    Bdat: "BDAT", ChunkEnd: "BDAT END", Rset: "RSET", Noop: "NOOP", Quit: "QUIT",
    Vrfy: "VRFY", StartTls: "STARTTLS",
}


class _Connection:
    """One client: reads, feeds the protocol, talks to the backend, writes replies."""

    def __init__(self, server: LmtpServer, stream: trio.SocketStream) -> None:
        self.server = server
        self.config = server.config
        self.backend = server.backend
        self.stream: trio.abc.Stream = stream
        self.proto = LmtpProtocol(self.config.protocol_config())
        self._out = bytearray()
        self._receive_scope: trio.CancelScope | None = None
        self._closing = False
        self._errors = 0
        # The transaction, as the server side sees it.
        self._mail: MailFrom | None = None
        self._recipients: list[AcceptedRecipient] = []
        self._delivery: Delivery | None = None
        self._failed: Reply | None = None  # the backend failed mid-message
        #: The message's id in log lines and in its 250 replies (the MTA logs them).
        self._queue_id = ""
        self._size = 0
        self._observer = observe.current()

    def shutdown(self) -> None:
        """Close as soon as no transaction is in progress."""
        self._closing = True
        if self._receive_scope is not None and not self.proto.in_transaction:
            self._receive_scope.cancel()

    async def run(self) -> None:
        host = self.config.hostname
        try:
            self._out += self.proto.send_unsolicited(reply(220, None, f"{host} LMTP duck ready"))
            while True:
                event = self.proto.next_event()
                if isinstance(event, Sentinel):
                    if event is PAUSED:
                        raise AssertionError("LMTP protocol paused without a pending reply")
                    await self._flush()
                    await self._receive()
                    continue
                if isinstance(event, ConnectionClosed):
                    break
                verb = _VERBS.get(type(event))
                if verb is None:
                    await self._dispatch(event)
                    continue
                started = time.perf_counter()
                try:
                    await self._dispatch(event)
                finally:
                    self._observer.command("lmtp", verb, time.perf_counter() - started)
            await self._flush()
        except _Closed:
            pass
        finally:
            await self._drop_delivery()

    # -- I/O ---------------------------------------------------------------------------

    async def _receive(self) -> None:
        if self._closing and not self.proto.in_transaction:
            await self._say_goodbye(reply(421, "4.3.2", f"{self.config.hostname} "
                                           "Service shutting down"))
        data: bytes | bytearray | None = None
        fd = socket_fd(self.stream)
        with trio.CancelScope() as scope:
            self._receive_scope = scope
            scope.deadline = trio.current_time() + self.config.idle_timeout
            try:
                if fd is not None:
                    data = await read_socket(fd, self.config.read_size)
                else:
                    data = await self.stream.receive_some(self.config.read_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
        self._receive_scope = None
        if data is None:
            if self._closing and not self.proto.in_transaction:
                await self._say_goodbye(reply(421, "4.3.2", f"{self.config.hostname} "
                                               "Service shutting down"))
            # RFC 5321 section 4.5.3.2.7 timeouts; 4.4.2 is "bad connection".
            await self._say_goodbye(reply(421, "4.4.2", f"{self.config.hostname} "
                                           "Timeout, closing connection"))
        self.proto.receive_data(data or b"")

    async def _say_goodbye(self, answer: Reply) -> None:
        self._out += self.proto.send_unsolicited(answer)
        await self._flush()
        raise _Closed

    async def _flush(self) -> None:
        if not self._out:
            return
        data = bytes(self._out)
        self._out.clear()
        fd = socket_fd(self.stream)
        with trio.move_on_after(self.config.idle_timeout) as scope:
            try:
                if fd is not None:
                    await write_socket(fd, data)
                else:
                    await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _Closed from exc
        if scope.cancelled_caught:
            raise _Closed  # the client stopped reading its replies

    def _send(self, answer: Reply) -> None:
        self._out += self.proto.send(answer)

    # -- events --------------------------------------------------------------------------

    async def _dispatch(self, event: Event) -> None:
        if not isinstance(event, ProtocolError | DataChunk):
            self._errors = 0
        if isinstance(event, DataChunk):
            await self._write(event.data)
        elif isinstance(event, Lhlo):
            await self._reset()
            self._send(reply(250, None, self.config.hostname, *self.proto.extensions()))
        elif isinstance(event, MailFrom):
            self._mail = event
            # The transaction's id from MAIL on: a recipient refused at RCPT is
            # logged with the id its transaction's stored copies get.
            self._queue_id = secrets.token_hex(6).upper()
            self._send(reply(250, "2.1.0", "Sender OK"))
        elif isinstance(event, RcptTo):
            self._send(await self._rcpt(event))
        elif isinstance(event, DataStart):
            self._send(START_MAIL_INPUT if await self._open() else self._failure())
        elif isinstance(event, Bdat):
            if self._delivery is None and self._failed is None:
                await self._open()
        elif isinstance(event, DataAbort):
            await self._drop_delivery()
        elif isinstance(event, DataEnd):
            await self._end_message(event.replies, event.rejected)
        elif isinstance(event, ChunkEnd):
            if event.last:
                await self._end_message(event.replies, event.rejected)
            elif event.rejected is not None:
                self._send(event.rejected)
            elif self._failed is not None:
                self._send(self._failed)
            else:
                self._send(reply(250, "2.0.0", "Chunk received"))
        elif isinstance(event, Rset):
            await self._reset()
            self._send(OK)
        elif isinstance(event, Noop):
            self._send(OK)
        elif isinstance(event, Vrfy):
            # RFC 5321 section 3.5.3 / 7.3: 252 without confirming the address,
            # which would otherwise help address harvesting.
            self._send(CANNOT_VRFY)
        elif isinstance(event, Quit):
            self._send(reply(221, "2.0.0", f"{self.config.hostname} closing connection"))
            await self._flush()
            raise _Closed
        elif isinstance(event, StartTls):
            await self._starttls()
        elif isinstance(event, ProtocolError):
            self._send(event.reply)
            self._errors += 1
            if event.fatal:
                await self._flush()
                raise _Closed
            if self._errors >= self.config.max_errors:
                await self._say_goodbye(reply(421, "4.7.0", f"{self.config.hostname} "
                                               "Too many errors, closing connection"))
        else:
            raise AssertionError(f"unhandled LMTP event {event!r}")

    async def _rcpt(self, event: RcptTo) -> Reply:
        address = normalize(event.address)
        try:
            check = await self.backend.check_recipient(address)
        except BackendUnavailable:
            return self._refused_at_rcpt(event, Failure.UNAVAILABLE, _UNAVAILABLE)
        except Exception:
            log.exception("check_recipient(%r) failed", address.lookup)
            return self._refused_at_rcpt(event, Failure.UNAVAILABLE, _UNAVAILABLE)
        if isinstance(check, Refused):
            return self._refused_at_rcpt(event, check.failure,
                                         failure_reply(check.failure, check.text))
        assert isinstance(check, Accepted)
        assert self._mail is not None
        forward = str(event.address)
        self._recipients.append(AcceptedRecipient(
            address=forward,
            lookup=address.lookup,
            detail=address.detail,
            user=check.user,
            header_prefix=trace_headers(self._mail.reverse_path, forward),
        ))
        return reply(250, "2.1.5", "Recipient OK")

    def _refused_at_rcpt(self, event: RcptTo, failure: Failure, answer: Reply) -> Reply:
        """``answer`` to a recipient refused at RCPT (unknown, disabled, over quota,
        or the store unreachable), counted and logged as a delivery outcome like one
        refused after the message: otherwise the MTA's log would be the only record
        of mail turned away (size 0: nothing of the message was received for it)."""
        self._observer.delivery(self._queue_id or "-", str(event.address),
                                failure.name.lower(), 0)
        return answer

    async def _open(self) -> bool:
        """Open the delivery for the transaction; False (and ``_failed`` set) on failure."""
        assert self._mail is not None
        envelope = Envelope(
            reverse_path=self._mail.reverse_path,
            recipients=tuple(self._recipients),
            declared_size=self._mail.size,
            body=self._mail.body,
            smtputf8=self._mail.smtputf8,
        )
        self._queue_id = self._queue_id or secrets.token_hex(6).upper()
        self._size = 0
        try:
            self._delivery = await self.backend.open_delivery(envelope)
        except BackendUnavailable:
            self._failed = _UNAVAILABLE
            return False
        except Exception:
            log.exception("open_delivery failed")
            self._failed = _UNAVAILABLE
            return False
        self._failed = None
        return True

    def _failure(self) -> Reply:
        failed, self._failed = self._failed or _UNAVAILABLE, None
        return failed

    async def _write(self, data: bytes) -> None:
        self._size += len(data)
        if self._delivery is None:
            return  # the delivery failed earlier; the rest of the message is dropped
        try:
            await self._delivery.write(data)
        except Exception as exc:
            if not isinstance(exc, BackendUnavailable):
                log.exception("Delivery.write failed")
            self._failed = _UNAVAILABLE
            await self._drop_delivery()

    async def _end_message(self, replies: int, rejected: Reply | None) -> None:
        outcomes = await self._outcomes(replies, rejected)
        self.server._count_message(all(isinstance(o, Stored) for o in outcomes))
        queue_id = self._queue_id or "-"
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, Stored):
                text = f"<{queue_id}> {outcome.text or 'Delivered'}"
                self._send(reply(250, "2.0.0", text))
                label = "stored"
            elif isinstance(outcome, _ReplyOutcome):
                self._send(outcome.reply)
                label = "rejected" if outcome.reply.code >= 500 else "deferred"
            else:
                self._send(failure_reply(outcome.failure, outcome.text))
                label = outcome.failure.name.lower()
            rcpt = self._recipients[i].address if i < len(self._recipients) else "-"
            self._observer.delivery(queue_id, rcpt, label, self._size)
        self._clear_transaction()

    async def _outcomes(self, replies: int, rejected: Reply | None
                        ) -> list[RecipientOutcome | _ReplyOutcome]:
        if rejected is not None:
            await self._drop_delivery()
            return [_ReplyOutcome(rejected)] * replies
        delivery, self._delivery = self._delivery, None
        if delivery is None:
            return [_ReplyOutcome(self._failed or _UNAVAILABLE)] * replies
        try:
            outcomes = list(await delivery.finish())
        except Exception as exc:
            if not isinstance(exc, BackendUnavailable):
                log.exception("Delivery.finish failed")
            await self._abort(delivery)
            return [_ReplyOutcome(_UNAVAILABLE)] * replies
        if len(outcomes) != replies:
            # A backend bug: we cannot tell which copies are safe, so none is
            # acknowledged; the MTA retries (a duplicate beats a loss).
            log.error("Delivery.finish returned %d outcomes for %d recipients",
                      len(outcomes), replies)
            return [_ReplyOutcome(_UNAVAILABLE)] * replies
        return list(outcomes)

    async def _starttls(self) -> None:
        context = self.config.tls_context
        assert context is not None  # the protocol only offers STARTTLS with a context
        self._send(READY_FOR_TLS)
        await self._flush()
        try:
            self.stream = await start_tls(self.stream, context,
                                          self.config.tls_handshake_timeout)
        except HandshakeFailed as exc:
            log.info("LMTP %s", exc)
            raise _Closed from exc

    async def _reset(self) -> None:
        await self._drop_delivery()
        self._clear_transaction()

    def _clear_transaction(self) -> None:
        self._queue_id = ""
        self._size = 0
        self._mail = None
        self._recipients = []
        self._delivery = None
        self._failed = None

    async def _drop_delivery(self) -> None:
        delivery, self._delivery = self._delivery, None
        if delivery is not None:
            await self._abort(delivery)

    async def _abort(self, delivery: Delivery) -> None:
        # Shielded: this runs on the way out of a cancelled connection too, and a
        # delivery left half-written would leak stored data.
        with trio.CancelScope(shield=True), trio.move_on_after(self.config.abort_timeout):
            try:
                await delivery.abort()
            except Exception:
                log.exception("Delivery.abort failed")


@attrs.frozen
class _ReplyOutcome:
    """A per-recipient reply decided by the server rather than the backend."""

    reply: Reply


async def serve_lmtp(
    backend: LmtpBackend,
    *,
    host: str | None = "127.0.0.1",
    port: int = 24,
    listeners: Sequence[trio.SocketListener] | None = None,
    config: LmtpServerConfig | None = None,
    task_status: trio.TaskStatus[LmtpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run an LMTP server on ``listeners`` (or on ``host``:``port``) until cancelled
    or until ``shutdown()`` on the started LmtpServer (``task_status`` value) drained it."""
    server = LmtpServer(backend, config)
    if listeners is None:
        listeners = await trio.open_tcp_listeners(port, host=host)
    await server.serve(listeners, task_status=task_status)
