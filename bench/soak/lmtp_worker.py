"""LMTP deliveries of the load: one or two recipients per transaction, each
recipient's reply after DATA decides (250: acknowledged; anything else, or no
reply: unknown)."""

from __future__ import annotations

import trio

from .context import Soak
from .model import message, new_id


class _Down(Exception):
    pass


class _Lmtp:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    async def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = await self.stream.receive_some(65536)
            if not data:
                raise _Down("closed")
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    async def reply(self) -> bytes:
        """The last line of a (possibly multi-line) reply."""
        while True:
            line = await self.line()
            if line[3:4] != b"-":
                return line


async def lmtp_worker(soak: Soak) -> None:
    """Deliver until the soak stops."""
    while not soak.stopping:
        await soak.gate.park()
        if soak.stopping:
            break
        recipients = soak.rng.sample(soak.users, soak.rng.choice([1, 1, 2]))
        sid = new_id()
        duck = await soak.duck()
        acked: list[bool] = [False] * len(recipients)
        why = ""
        try:
            with trio.fail_after(soak.timeout):
                stream = await trio.open_tcp_stream("127.0.0.1", duck.ports["lmtp"])
                try:
                    await _deliver(_Lmtp(stream), [u.address for u in recipients], sid, acked)
                finally:
                    with trio.move_on_after(2):
                        await stream.aclose()
        except (OSError, trio.TooSlowError, trio.BrokenResourceError, _Down) as exc:
            why = repr(exc)
        for user, ok in zip(recipients, acked, strict=True):
            soak.stats.done("LMTP", ok, why or "not 250")
            soak.expect.add(user.key("INBOX"), sid, ok)
            soak.expect.note(sid, f"LMTP to {user.address} via {duck.name}#{duck.starts}: "
                                  f"{'250' if ok else why or 'unknown'}")
        if not all(acked):
            await trio.sleep(0.2)


async def _deliver(c: _Lmtp, rcpts: list[str], sid: str, acked: list[bool]) -> None:
    """One transaction; ``acked[i]`` is set for each recipient answered 250."""
    if not (await c.reply()).startswith(b"220"):
        raise _Down("no greeting")
    await c.stream.send_all(b"LHLO soak\r\n")
    await c.reply()
    await c.stream.send_all(b"MAIL FROM:<soak@example.org>\r\n")
    if not (await c.reply()).startswith(b"250"):
        raise _Down("MAIL refused")
    for rcpt in rcpts:
        await c.stream.send_all(f"RCPT TO:<{rcpt}>\r\n".encode())
        if not (reply := await c.reply()).startswith(b"250"):
            raise _Down(f"RCPT: {reply!r}")
    await c.stream.send_all(b"DATA\r\n")
    if not (await c.reply()).startswith(b"354"):
        raise _Down("DATA refused")
    await c.stream.send_all(message(sid) + b".\r\n")
    for i in range(len(rcpts)):
        reply = await c.reply()
        acked[i] = reply.startswith(b"250")
        if not acked[i]:
            raise _Down(f"DATA: {reply!r}")
    await c.stream.send_all(b"QUIT\r\n")
