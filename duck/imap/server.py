"""The IMAP listeners: plain (with STARTTLS) and implicit TLS, one session per connection."""

from __future__ import annotations

import logging
import ssl

import trio

from ..net import is_tls, peer_address, serve_tcp
from . import ordering, render
from .grammar.resp_codes import Code
from .grammar.responses import UntaggedStatus
from .session import ServerContext, Session
from .wire import Wire

log = logging.getLogger(__name__)


async def serve_imap(
    ctx: ServerContext,
    host: str,
    port: int,
    *,
    implicit_tls: bool = False,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve IMAP on ``host:port``; with ``implicit_tls`` the whole connection is TLS
    (the IMAPS port), otherwise STARTTLS is offered when ``ctx.ssl_context`` is set."""
    if implicit_tls and ctx.ssl_context is None:
        raise ValueError("implicit TLS needs an SSL context")
    render.register(ctx.store)  # ENVELOPE/BODYSTRUCTURE rendered once, at delivery
    ordering.register(ctx.store)  # SORT/THREAD keys made once, at delivery

    async def handler(stream: trio.abc.Stream) -> None:
        peer, _ = peer_address(stream)
        if not ctx.limits.per_ip.try_acquire(peer):
            await _refuse(stream, "too many connections from your address")
            return
        try:
            await Session(ctx, stream, peer=peer, tls=is_tls(stream)).run()
        finally:
            ctx.limits.per_ip.release(peer)

    tls_context: ssl.SSLContext | None = ctx.ssl_context if implicit_tls else None
    await serve_tcp(
        handler, host, port, name="IMAPS" if implicit_tls else "IMAP", shutdown=ctx.shutdown,
        ssl_context=tls_context, task_status=task_status,
    )


async def _refuse(stream: trio.abc.Stream, text: str) -> None:
    async with trio.open_nursery() as nursery:
        wire = Wire(stream, nursery)
        await wire.send([UntaggedStatus("BYE", Code("LIMIT"), text)])
