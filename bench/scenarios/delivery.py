"""APPEND (IMAP) and LMTP delivery rates over 1 and 4 connections."""

from __future__ import annotations

import time
from typing import Any

import trio

from duck.store import metrics

from .. import corpus
from ..harness import USER, Bench, round_trips, summary_ms

PARALLEL = (1, 4)


class LmtpClient:
    """Just enough LMTP (RFC 2033) to deliver to one recipient at a time."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buf = bytearray()

    @classmethod
    async def connect(cls, port: int) -> LmtpClient:
        """Connect, read the greeting, say LHLO."""
        client = cls(await trio.open_tcp_stream("127.0.0.1", port))
        await client.reply(220)
        await client.send(b"LHLO bench.example\r\n")
        await client.reply(250)
        return client

    async def send(self, data: bytes) -> None:
        """Send raw bytes."""
        await self.stream.send_all(data)

    async def reply(self, expect: int) -> bytes:
        """Read one (multi-line) reply; raise unless its code is ``expect``."""
        lines = []
        while True:
            end = self._buf.find(b"\r\n")
            if end < 0:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise RuntimeError("LMTP connection closed")
                self._buf += data
                continue
            line = bytes(self._buf[:end])
            del self._buf[:end + 2]
            lines.append(line)
            if line[3:4] != b"-":
                break
        if int(lines[-1][:3]) != expect:
            raise RuntimeError(f"LMTP: expected {expect}, got {lines[-1]!r}")
        return b"\n".join(lines)

    async def deliver(self, rcpt: str, data: bytes) -> float:
        """One transaction; returns seconds from MAIL FROM to the 250 after DATA."""
        started = time.perf_counter()
        await self.send(f"MAIL FROM:<sender@example.org>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"
                        .encode())
        await self.reply(250)
        await self.reply(250)
        await self.reply(354)
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        if stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        await self.send(stuffed + b".\r\n")
        await self.reply(250)
        return time.perf_counter() - started

    async def aclose(self) -> None:
        """QUIT is not needed for a benchmark; close the socket."""
        await self.stream.aclose()


async def _rate(messages: list[bytes], parallel: int,
                send_one: Any, open_conn: Any) -> dict[str, Any]:
    latencies: list[float] = []
    queue = list(reversed(messages))

    async def worker() -> None:
        conn = await open_conn()
        try:
            while queue:
                latencies.append(await send_one(conn, queue.pop()))
        finally:
            await conn.aclose()

    metrics.reset()
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(parallel):
            nursery.start_soon(worker)
    seconds = time.perf_counter() - started
    total = sum(len(m) for m in messages)
    return summary_ms(latencies) | {
        "messages": len(messages),
        "messages_per_s": round(len(messages) / seconds, 1),
        "mb_per_s": round(total / seconds / 1e6, 2),
        "round_trips": round_trips(),
    }


async def run(bench: Bench) -> dict[str, Any]:
    """Deliver the same realistic mix (no multi-MB messages) by APPEND and by LMTP."""
    n = bench.settings.deliveries
    messages = [m.data for m in corpus.generate(n, seed=99, max_large=0)]
    out: dict[str, Any] = {"mean_message_bytes": round(sum(map(len, messages)) / n)}
    setup = await bench.client()
    await setup.command('CREATE "append"', check=False)
    await setup.aclose()

    async def open_imap() -> Any:
        return await bench.client()

    async def append(conn: Any, data: bytes) -> float:
        reply = await conn.command(f'APPEND "append" (\\Seen) {{{len(data)}+}}', literal=data,
                                   keep=False)
        return float(reply.seconds)

    async def open_lmtp() -> LmtpClient:
        return await LmtpClient.connect(bench.server.ports["lmtp"])

    async def lmtp(conn: LmtpClient, data: bytes) -> float:
        return await conn.deliver(USER, data)

    for parallel in PARALLEL:
        out[f"append_{parallel}"] = await _rate(messages, parallel, append, open_imap)
        out[f"lmtp_{parallel}"] = await _rate(messages, parallel, lmtp, open_lmtp)
    return out
