"""IMAP listener: greets and answers the connection-level commands.

The full session (duck/imap/session.py) replaces the command loop here once the
IMAP server issue lands; this keeps ``duck serve`` honest meanwhile: it listens,
greets correctly and answers CAPABILITY, NOOP and LOGOUT.
"""

from __future__ import annotations

import logging
import ssl

import trio

from ..net import serve_tcp

log = logging.getLogger(__name__)

CAPABILITIES = "IMAP4rev1"
MAX_LINE = 8192


async def _handle(stream: trio.abc.Stream, shutdown: trio.Event) -> None:
    await stream.send_all(f"* OK [CAPABILITY {CAPABILITIES}] duck ready\r\n".encode())
    buffer = b""
    while True:
        data = b""
        with trio.move_on_after(30 * 60):
            async with trio.open_nursery() as nursery:
                async def bye() -> None:
                    await shutdown.wait()
                    await stream.send_all(b"* BYE server shutting down\r\n")
                    nursery.cancel_scope.cancel()

                nursery.start_soon(bye)
                data = await stream.receive_some(4096)
                nursery.cancel_scope.cancel()
        if not data or shutdown.is_set():
            return
        buffer += data
        while b"\r\n" in buffer:
            line, buffer = buffer.split(b"\r\n", 1)
            parts = line.split(b" ", 2)
            tag = parts[0].decode("ascii", "replace") if parts and parts[0] else "*"
            verb = parts[1].upper() if len(parts) > 1 else b""
            if verb == b"CAPABILITY":
                out = f"* CAPABILITY {CAPABILITIES}\r\n{tag} OK CAPABILITY completed\r\n"
            elif verb == b"NOOP":
                out = f"{tag} OK NOOP completed\r\n"
            elif verb == b"LOGOUT":
                bye = f"* BYE logging out\r\n{tag} OK LOGOUT completed\r\n"
                await stream.send_all(bye.encode())
                return
            else:
                out = f"{tag} BAD command not available\r\n"
            await stream.send_all(out.encode())
        if len(buffer) > MAX_LINE:
            await stream.send_all(b"* BYE line too long\r\n")
            return


async def serve_imap(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    shutdown: trio.Event,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve IMAP on ``host:port`` (implicit TLS when ``ssl_context`` is given)."""

    async def handler(stream: trio.abc.Stream) -> None:
        await _handle(stream, shutdown)

    name = "IMAPS" if ssl_context else "IMAP"
    await serve_tcp(
        handler, host, port, name=name, shutdown=shutdown, ssl_context=ssl_context,
        task_status=task_status,
    )
