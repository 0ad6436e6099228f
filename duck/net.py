"""TCP listeners shared by the protocol servers: one task per connection.

A crash in one connection's handler is logged and closes that connection only
(DESIGN.md); the listener keeps accepting.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

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


def is_tls(stream: trio.abc.Stream) -> bool:
    """True when the stream is TLS-wrapped."""
    return isinstance(stream, trio.SSLStream)


@attrs.define
class ConnectionStats:
    """Live figures of one listener."""

    active: int = 0
    accepted: int = 0


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
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    stats = stats if stats is not None else ConnectionStats()

    async def guarded(stream: trio.abc.Stream) -> None:
        stats.active += 1
        stats.accepted += 1
        try:
            if ssl_context is not None:
                tls = trio.SSLStream(stream, ssl_context, server_side=True)
                with trio.move_on_after(handshake_timeout) as scope:
                    await tls.do_handshake()
                if scope.cancelled_caught:
                    return
                stream = tls
            await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError) as exc:
            log.debug("%s: connection ended: %r", name, exc)
        except Exception:
            log.exception("%s: connection handler crashed", name)
        finally:
            stats.active -= 1
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
