"""COMPRESS (RFC 4978): switch both directions of the connection to raw DEFLATE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..compress import DeflateStream
from ..context import ANSWERED
from ..errors import bad, no
from ..grammar.cmd_any import Compress
from .registry import command
from .states import AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext


@command(Compress, AUTHENTICATED, updates=False)
async def compress(s: CommandContext, cmd: Compress) -> object:
    """RFC 4978 §3: OK, then everything after the OK's CRLF (ours) and after the
    command's CRLF (the client's) is DEFLATE; inside TLS when TLS is on."""
    if cmd.mechanism != "DEFLATE":
        raise bad(f"unknown compression mechanism {cmd.mechanism}")
    assert s.wire is not None
    if isinstance(s.wire.stream, DeflateStream):
        raise no("DEFLATE is already active", "COMPRESSIONACTIVE")
    if s.wire.in_flight:
        # A read of the uncompressed stream is under way (after an abandoned
        # receive): whatever it returns is compressed but would not be inflated.
        raise no("cannot switch while input is pending, retry", "UNAVAILABLE")
    await s.send_tagged(cmd.tag, "OK", "DEFLATE active")
    await s.wire.release()  # (in the old stream, before the new one starts)
    # Octets the client pipelined after COMPRESS are already compressed.
    pending = s.reader.take_buffered() + s.wire.take_received()
    s.wire.replace_stream(DeflateStream(s.wire.stream, pending))
    return ANSWERED
