"""STORE +FLAGS / -FLAGS on 1:* of the largest mailbox."""

from __future__ import annotations

from typing import Any

from duck.store import metrics

from ..harness import Bench, merge_round_trips, round_trips


async def run(bench: Bench) -> dict[str, Any]:
    """Set then clear a keyword on every message of the largest mailbox."""
    size = max(bench.mailboxes)
    client = await bench.client(bench.mailboxes[size])
    out: dict[str, Any] = {"messages": size}
    total_rt: dict[str, Any] = {}
    try:
        for name, line in (("add_silent", "STORE 1:* +FLAGS.SILENT ($BenchMark)"),
                           ("remove_silent", "STORE 1:* -FLAGS.SILENT ($BenchMark)"),
                           ("add_verbose", "STORE 1:* +FLAGS ($BenchMark)"),
                           ("remove_verbose", "STORE 1:* -FLAGS ($BenchMark)")):
            metrics.reset()
            reply = await client.command(line, keep=False)
            merge_round_trips(total_rt, round_trips())
            out[name] = {
                "ms": round(reply.seconds * 1000, 1),
                "messages_per_s": round(size / reply.seconds, 1),
                "untagged": reply.count,
                "round_trips": round_trips().get("STORE", {}).get("round_trips"),
            }
    finally:
        await client.aclose()
    out["round_trips"] = total_rt
    return out
