"""bench/command_latency.py: the latency per IMAP command type of a running duck,
read from its /metrics before and after some commands."""

from __future__ import annotations

from typing import Any

import trio

from bench.command_latency import report, snapshot
from tests.test_prometheus import imap_session


async def test_latency_per_command_type_counts_what_ran(duck_server: Any) -> None:
    await duck_server.store.users.create("lat@example.com", "pw-latency")
    url = f"http://127.0.0.1:{duck_server.ports['api']}"
    with trio.fail_after(30):
        before = await trio.to_thread.run_sync(snapshot, url)
        await imap_session(duck_server.ports["imap"], "a LOGIN lat@example.com pw-latency",
                           *(f"n{i} NOOP" for i in range(7)), "s SELECT INBOX",
                           "z LOGOUT")
        after = await trio.to_thread.run_sync(snapshot, url)
    lines = {line.split()[0]: line for line in report(before, after).splitlines()}
    assert set(lines) >= {"LOGIN", "NOOP", "SELECT", "all"}
    assert " 7 commands " in lines["NOOP"] and " 1 commands " in lines["SELECT"]
    assert after["NOOP"]["count"] - before.get("NOOP", {}).get("count", 0) == 7
    # Nothing ran between two snapshots: nothing is reported.
    assert report(after, after) == ""
