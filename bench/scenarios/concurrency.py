"""Concurrency: N clients each running a client's sync loop; total commands/s."""

from __future__ import annotations

import random
import time
from typing import Any

import trio

from duck.store import metrics

from ..harness import Bench, round_trips, summary_ms

#: One iteration of a polling client's sync loop on its selected mailbox.
LOOP = (
    "NOOP",
    "UID FETCH 1:* (FLAGS)",
    "UID SEARCH UNSEEN",
    "UID FETCH {uid} (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])",
    "UID STORE {uid} +FLAGS.SILENT (\\Seen)",
)


async def _loop(bench: Bench, path: str, clients: int, seconds: float) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {}
    done = 0

    async def client(i: int) -> None:
        nonlocal done
        rng = random.Random(i)
        conn = await bench.client(path)
        try:
            size = min(bench.mailboxes)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for template in LOOP:
                    line = template.format(uid=rng.randint(1, size))
                    reply = await conn.command(line, keep=False)
                    latencies.setdefault(template.split(" (")[0].split(" {")[0], []).append(
                        reply.seconds)
                    done += 1
        finally:
            await conn.aclose()

    metrics.reset()
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(clients):
            nursery.start_soon(client, i)
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "commands": done,
        "commands_per_s": round(done / elapsed, 1),
        "latency": {k: summary_ms(v) for k, v in latencies.items()},
        "round_trips": round_trips(),
    }


async def run(bench: Bench) -> dict[str, Any]:
    """The loop on the smallest mailbox with 1 client, then with N."""
    s = bench.settings
    path = bench.mailboxes[min(bench.mailboxes)]
    out: dict[str, Any] = {"mailbox_messages": min(bench.mailboxes)}
    for clients in sorted({1, s.concurrency_clients}):
        out[f"clients_{clients}"] = await _loop(bench, path, clients, s.concurrency_seconds)
    out["round_trips"] = {}
    return out
