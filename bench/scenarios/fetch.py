"""FETCH: first sync, header fields, BODYSTRUCTURE, whole bodies, a partial part."""

from __future__ import annotations

import random
from typing import Any

from duck.store import metrics

from ..harness import Bench, repeat, round_trips, summary_ms

FIRST_SYNC = "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)"
HEADERS = "FETCH 1:{n} (UID BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"
STRUCTURE = "FETCH 1:{n} (UID BODYSTRUCTURE)"


async def run(bench: Bench) -> dict[str, Any]:
    """Per mailbox size: rates of the FETCH shapes a client uses, and round trips."""
    out: dict[str, Any] = {"sizes": {}}
    for size, path in sorted(bench.mailboxes.items()):
        out["sizes"][str(size)] = await _size(bench, size, path)
    out["partial"] = await _partial(bench)
    return out


async def _size(bench: Bench, size: int, path: str) -> dict[str, Any]:
    s = bench.settings
    metrics.reset()
    client = await bench.client(path, readonly=True)
    row: dict[str, Any] = {}
    try:
        # A client's first sync of the whole mailbox.
        async def first_sync() -> float:
            reply = await client.command(FIRST_SYNC, keep=False)
            assert reply.count >= size, (reply.count, size)
            return reply.seconds

        runs = await repeat(first_sync, max(1, s.reps // 4), s.rep_budget)
        row["first_sync"] = summary_ms(runs) | {
            "messages_per_s": round(size / min(runs), 1)}

        n = min(size, 1000)
        for key, line in (("headers_1000", HEADERS), ("bodystructure_1000", STRUCTURE)):
            async def fetch_range(line: str = line) -> float:
                reply = await client.command(line.format(n=n), keep=False)
                return reply.seconds

            runs = await repeat(fetch_range, max(1, s.reps // 4), s.rep_budget)
            row[key] = summary_ms(runs) | {"messages": n,
                                           "messages_per_s": round(n / min(runs), 1)}

        # Whole messages, picked at random (seeded): MB/s.
        rng = random.Random(size)
        picks = [rng.randint(1, size) for _ in range(min(50, size))]
        total = 0
        times = []
        for seq in picks:
            reply = await client.command(f"FETCH {seq} (BODY.PEEK[])", keep=False)
            total += reply.received
            times.append(reply.seconds)
        row["body_random"] = summary_ms(times) | {
            "messages": len(picks), "mb_per_s": round(total / sum(times) / 1e6, 2)}
        row["round_trips"] = round_trips()
    finally:
        await client.aclose()
    return row


async def _partial(bench: Bench) -> dict[str, Any]:
    """One 64 KB slice of the attachment of the largest message in the seed."""
    seed = bench.seed
    big = max(range(len(seed.uids)), key=lambda i: seed.sizes[i])
    uid = seed.uids[big]
    metrics.reset()
    client = await bench.client("seed", readonly=True)
    try:
        async def partial() -> float:
            reply = await client.command(f"UID FETCH {uid} (BODY.PEEK[2]<0.65536>)", keep=False)
            return reply.seconds

        runs = await repeat(partial, bench.settings.reps, bench.settings.rep_budget)
        whole = await client.command(f"UID FETCH {uid} (BODY.PEEK[])", keep=False)
    finally:
        await client.aclose()
    return summary_ms(runs) | {
        "message_bytes": seed.sizes[big],
        "kind": seed.kinds[big],
        "whole_ms": round(whole.seconds * 1000, 2),
        "whole_mb_per_s": round(whole.received / whole.seconds / 1e6, 2),
        "round_trips": round_trips(),
    }
