"""TCP listeners shared by the protocol servers: one task per connection.

A crash in one connection's handler is logged and closes that connection only
(docs/architecture.md); the listener keeps accepting.

With ``duck serve --workers N`` the parent binds the listening sockets and each
worker process serves the ones it inherited (:func:`inherit_listeners`,
:func:`open_listeners`); :func:`bind_tcp` binds them.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import attrs
import trio

from . import observe

log = logging.getLogger(__name__)

Handler = Callable[[trio.abc.Stream], Awaitable[None]]


def peer_address(stream: trio.abc.Stream) -> tuple[str, int]:
    """(host, port) of the remote end of a TCP (or TLS-over-TCP) stream."""
    inner: Any = stream
    while isinstance(inner, trio.SSLStream):
        inner = inner.transport_stream
    try:
        addr = inner.socket.getpeername()
        return str(addr[0]), int(addr[1])
    except (AttributeError, OSError):
        return "unknown", 0


def socket_fd(stream: trio.abc.Stream) -> int | None:
    """The socket of a plain TCP stream, to be read and written directly; None for
    any other stream (TLS, COMPRESS), which goes through its own methods.

    trio's stream methods wrap each ``recv``/``send`` in a helper, a checkpoint and
    an exception translation: for a protocol that answers many short commands, a
    direct ``os.read``/``os.write`` with ``wait_readable``/``wait_writable`` only
    when the socket is not ready costs measurably less per command.
    """
    if isinstance(stream, trio.SocketStream):
        return stream.socket.fileno()
    return None


def quickack(stream: trio.abc.Stream) -> None:
    """Have the kernel acknowledge what the peer sends on ``stream`` (a plain TCP
    stream) at once, and what it has sent already, instead of after the delayed-ACK
    timer (Linux ``TCP_QUICKACK``; nothing elsewhere).

    For a server waiting for the rest of a command: a client that sends a literal
    and then, in a write of its own, the CRLF that ends the command (Python's
    imaplib does) has Nagle's algorithm hold the CRLF until the literal is
    acknowledged, and the server, which answers nothing before the CRLF, would
    acknowledge only when its delayed-ACK timer fires: ~40 ms lost per APPEND.
    """
    option = getattr(socket, "TCP_QUICKACK", None)
    if option is None or not isinstance(stream, trio.SocketStream):
        return
    try:
        stream.socket.setsockopt(socket.IPPROTO_TCP, option, 1)
    except OSError:
        pass


def read_ready(fd: int, size: int) -> bytes | None:
    """Up to ``size`` bytes the peer has already sent on the non-blocking socket
    ``fd``; None when there are none yet; b"" at its end (or when it broke)."""
    try:
        return os.read(fd, size)
    except BlockingIOError:
        return None
    except OSError as exc:
        log.debug("receive failed: %r", exc)
        return b""


async def read_socket(fd: int, size: int, *,
                      before_wait: Callable[[], None] | None = None,
                      wait_first: bool = False) -> bytes:
    """Up to ``size`` bytes from the non-blocking socket ``fd``, waiting until some
    arrive (``before_wait`` called each time before it waits); b"" at its end (or
    when it broke). A cancelled wait has read nothing. ``wait_first``: the caller
    has just found the socket empty (``read_ready``), so no read is tried before
    the first wait."""
    waited = wait_first
    data = None if wait_first else read_ready(fd, size)
    while data is None:
        if before_wait is not None:
            before_wait()
        try:
            await trio.lowlevel.wait_readable(fd)
        except trio.ClosedResourceError:
            return b""
        waited = True
        data = read_ready(fd, size)
    if not waited:
        # Bytes that were already there (a pipelining client): the other tasks run
        # before this one goes on, without a cancellation that would lose them.
        await trio.lowlevel.cancel_shielded_checkpoint()
    return data


async def write_socket(fd: int, data: bytes) -> None:
    """All of ``data`` to the non-blocking socket ``fd``, waiting for room when it is
    full; trio.BrokenResourceError when the peer is gone."""
    view = memoryview(data)
    try:
        while view:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(fd)
    except (OSError, trio.ClosedResourceError) as exc:
        raise trio.BrokenResourceError(str(exc)) from exc


def is_tls(stream: trio.abc.Stream) -> bool:
    """True when the stream is TLS-wrapped."""
    return isinstance(stream, trio.SSLStream)


#: The kernel caps it at net.core.somaxconn; trio asks for the same.
LISTEN_BACKLOG = 0xFFFF

#: Listening sockets handed down by the parent process, as file descriptors by port.
_INHERITED: ContextVar[Mapping[int, Sequence[int]] | None] = ContextVar(
    "duck_inherited_listeners", default=None
)


@contextlib.contextmanager
def inherit_listeners(fds: Mapping[int, Sequence[int]]) -> Iterator[None]:
    """Within this block (and in the tasks started from it), a listener asked for one
    of these ports serves the given already-listening sockets instead of binding.

    A context variable rather than a parameter, so that the protocol servers
    (``serve_imap``) need not know how a worker came by its sockets.
    """
    token = _INHERITED.set(fds)
    try:
        yield
    finally:
        _INHERITED.reset(token)


def inherited_fds(port: int) -> Sequence[int] | None:
    """The inherited listening sockets for ``port`` (see :func:`inherit_listeners`)."""
    fds = _INHERITED.get()
    return None if fds is None else fds.get(port)


async def open_listeners(port: int, host: str | None) -> list[trio.SocketListener]:
    """Listeners on ``host:port``: the inherited sockets for the port if there are
    any, else new ones (``trio.open_tcp_listeners``)."""
    fds = inherited_fds(port)
    if fds is None:
        return await trio.open_tcp_listeners(port, host=host)
    return [
        trio.SocketListener(trio.socket.from_stdlib_socket(socket.socket(fileno=fd)))
        for fd in fds
    ]


def bind_tcp(
    host: str | None, port: int, *, reuse_port: bool, probe: bool = True
) -> list[socket.socket]:
    """Bind and listen on every address of ``host:port`` as ``trio.open_tcp_listeners``
    does, blocking; with port 0 every address gets the same free port.

    With ``reuse_port`` the sockets have SO_REUSEPORT, so that the same call again
    (same user, same port) adds sockets to the group and the kernel spreads new
    connections over the group's sockets. ``probe`` first binds the port without
    SO_REUSEPORT, so that a port some other process already serves, even one of
    this user with SO_REUSEPORT, is refused (EADDRINUSE) instead of shared (and
    port 0 picks a port no such group holds).
    """
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                               socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, type_, proto, _, sockaddr in infos:
            try:
                sock = socket.socket(family, type_, proto)
            except OSError as exc:
                if exc.errno == errno.EAFNOSUPPORT:
                    continue
                raise
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                # The first address picked the port; the others follow it.
                sockaddr = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
            if probe:
                with socket.socket(family, type_, proto) as probing:
                    probing.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        probing.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    probing.bind(sockaddr)
                    # Port 0: the probe's free port, never one a reuse-port group holds.
                    sockaddr = (sockaddr[0], probing.getsockname()[1], *sockaddr[2:])
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(sockaddr)
            sock.listen(LISTEN_BACKLOG)
        if not sockets:
            raise OSError(errno.EAFNOSUPPORT, f"no usable address for {host!r}")
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@attrs.define
class ConnectionStats:
    """Live figures of one listener."""

    active: int = 0
    accepted: int = 0


#: What a peer that went away (a reset, a closed socket, a broken TLS stream) raises.
_ENDED = (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError)


def connection_ended(exc: BaseException) -> bool:
    """Whether ``exc`` only says that the peer went away: one of ``_ENDED``, or a group
    of nothing else (a handler's nursery wraps what its tasks raise in one; a client
    that resets a POP3 session was logged as a crash)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(connection_ended(e) for e in exc.exceptions)
    return isinstance(exc, _ENDED)


async def serve_tcp(
    handler: Handler,
    host: str,
    port: int,
    *,
    name: str,
    shutdown: trio.Event,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout: float = 30.0,
    stats: ConnectionStats | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` and run ``handler(stream)`` per connection.

    Reports the bound port (useful with port 0) through ``task_status``. When
    ``shutdown`` is set it stops accepting and returns once every connection's
    handler has finished (handlers watch ``shutdown`` themselves to end politely;
    the caller cancels after its grace period).
    """
    listeners = await open_listeners(port, host)
    bound = listeners[0].socket.getsockname()[1]
    stats = stats if stats is not None else ConnectionStats()

    observer = observe.current()
    protocol = name.lower()

    async def guarded(stream: trio.abc.Stream) -> None:
        stats.active += 1
        stats.accepted += 1
        host, port = peer_address(stream)
        peer = f"{host}:{port}"
        observer.connection_opened(protocol, peer)
        opened = trio.current_time()
        try:
            if ssl_context is not None:
                tls = trio.SSLStream(stream, ssl_context, server_side=True)
                with trio.move_on_after(handshake_timeout) as scope:
                    await tls.do_handshake()
                if scope.cancelled_caught:
                    return
                stream = tls
            await handler(stream)
        except Exception as exc:
            if connection_ended(exc):
                log.debug("%s: connection ended: %r", name, exc)
            else:
                log.exception("%s: connection handler crashed", name)
        finally:
            stats.active -= 1
            observer.connection_closed(protocol, peer, trio.current_time() - opened)
            await trio.aclose_forcefully(stream)

    async def accept_loop(listener: trio.SocketListener, handlers: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                # EMFILE and friends: back off instead of spinning (trio does the same).
                log.warning("%s: accept failed: %r", name, exc)
                await trio.sleep(0.1)
                continue
            handlers.start_soon(guarded, stream)

    log.info("%s listening on %s:%d%s", name, host, bound, " (TLS)" if ssl_context else "")
    task_status.started(bound)
    async with trio.open_nursery() as handlers:
        async with trio.open_nursery() as accepting:
            for listener in listeners:
                accepting.start_soon(accept_loop, listener, handlers)
            await shutdown.wait()
            accepting.cancel_scope.cancel()
        for listener in listeners:
            await listener.aclose()
        log.info("%s: stopped accepting; %d connection(s) finishing", name, stats.active)
