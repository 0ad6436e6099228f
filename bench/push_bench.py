"""Benchmark of push: notification latency across processes, SSE fan-out and memory.

Two real ``duck serve`` processes (A and B) on one embedded database:

1. Latency from LMTP 250 in process B to (a) the SSE ``message.new`` event of a
   client of process A and (b) the untagged EXISTS of an IMAP session IDLE on A:
   median and p99 over ``--deliveries`` sequential deliveries. The embedded
   server is a one-node replica set, so the notifier uses change streams.
2. ``--subscribers`` concurrent SSE streams of one user on A (the worst case: one
   event reaches all of them): A's RSS growth per subscriber, and the fan-out time
   from LMTP 250 in B until every stream has the event (median and max).
3. The same number of IMAP sessions IDLE on that user's INBOX in A: RSS per session
   and the fan-out time of one delivery through B to every session's EXISTS.

Prints the figures and writes them to bench/results/push.json.

    python bench/push_bench.py [--deliveries 100] [--subscribers 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from duck.store.engine.embedded import BlockingEmbeddedDatabase  # noqa: E402
from tests.api.conftest import SseReader, message  # noqa: E402
from tests.api.multiproc import LineClient, duck_process, lmtp_deliver  # noqa: E402

ADDRESS = "bench@example.com"
PASSWORD = "bench-password"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _latency(a: Any, b: Any, user: str, client: httpx.AsyncClient,
                   deliveries: int) -> dict[str, Any]:
    imap = await LineClient.connect(a.ports["imap"])
    await imap.line()
    await imap.command("a1", f"LOGIN {ADDRESS} {PASSWORD}")
    await imap.command("a2", "SELECT INBOX")
    await imap.send(b"a3 IDLE\r\n")
    await imap.line()
    sse_at: dict[int, float] = {}
    idle_at: dict[int, float] = {}
    done_at: dict[int, float] = {}

    async def read_sse(response: httpx.Response) -> None:
        reader = SseReader(response)
        while True:
            event = await reader.next()
            if event.get("event") == "message.new":
                sse_at[event["data"]["uid"]] = trio.current_time()

    async def read_idle() -> None:
        while True:
            line = await imap.line()
            if line.endswith(b" EXISTS"):
                idle_at[int(line.split()[1])] = trio.current_time()

    async with client.stream("GET", f"/users/{user}/updates") as response, \
            trio.open_nursery() as nursery:
        nursery.start_soon(read_sse, response)
        nursery.start_soon(read_idle)
        await trio.sleep(0.5)
        for uid in range(1, deliveries + 1):
            await lmtp_deliver(b.ports["lmtp"], ADDRESS, message(f"latency {uid}"))
            done_at[uid] = trio.current_time()
            with trio.fail_after(10):
                while uid not in sse_at or uid not in idle_at:
                    await trio.sleep(0.001)
            await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    await imap.stream.aclose()
    # An event may beat our reading of the 250 (it is pushed as soon as committed).
    sse_ms = [max(0.0, sse_at[u] - done_at[u]) * 1000 for u in done_at]
    idle_ms = [max(0.0, idle_at[u] - done_at[u]) * 1000 for u in done_at]
    return {
        "deliveries": deliveries,
        "sse_median_ms": round(statistics.median(sse_ms), 1),
        "sse_p99_ms": round(_pct(sse_ms, 0.99), 1),
        "idle_median_ms": round(statistics.median(idle_ms), 1),
        "idle_p99_ms": round(_pct(idle_ms, 0.99), 1),
    }


async def _deliver_to_all(a: Any, b: Any, ready: trio.Semaphore, got: list[float],
                          count: int, subject: str, ready_timeout: float
                          ) -> tuple[int, list[float]]:
    """Once ``count`` listeners are ready: A's RSS, then one delivery through B and the
    milliseconds until each listener saw it (``got`` fills with their arrival times)."""
    with trio.fail_after(ready_timeout):
        for _ in range(count):
            await ready.acquire()
    await trio.sleep(2)
    after = _rss_kib(a.process.pid)
    await lmtp_deliver(b.ports["lmtp"], ADDRESS, message(subject))
    start = trio.current_time()
    with trio.fail_after(120):
        while len(got) < count:
            await trio.sleep(0.005)
    return after, [max(0.0, t - start) * 1000 for t in got]


async def _fanout(a: Any, b: Any, user: str, base: str, subscribers: int) -> dict[str, Any]:
    before = _rss_kib(a.process.pid)
    ready = trio.Semaphore(0)
    got: list[float] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)

    async def listen(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", f"/users/{user}/updates") as response:
            reader = SseReader(response)
            await reader.next()
            ready.release()
            await reader.until("message.new")
            got.append(trio.current_time())

    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client, \
            trio.open_nursery() as nursery:
        for _ in range(subscribers):
            nursery.start_soon(listen, client)
        after, spread = await _deliver_to_all(a, b, ready, got, subscribers, "fan-out", 300)
    return {
        "subscribers": subscribers,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_per_subscriber_kib": round((after - before) / subscribers, 1),
        "fanout_median_ms": round(statistics.median(spread), 1),
        "fanout_max_ms": round(max(spread), 1),
    }


async def _idle_fanout(a: Any, b: Any, sessions: int) -> dict[str, Any]:
    """``sessions`` IMAP sessions IDLE on INBOX in A; one delivery through B."""
    before = _rss_kib(a.process.pid)
    ready = trio.Semaphore(0)
    got: list[float] = []
    clients: list[LineClient] = []

    async def idle() -> None:
        imap = await LineClient.connect(a.ports["imap"])
        clients.append(imap)
        await imap.line()
        await imap.command("a1", f"LOGIN {ADDRESS} {PASSWORD}")
        await imap.command("a2", "SELECT INBOX")
        await imap.send(b"a3 IDLE\r\n")
        await imap.until(b"+")
        ready.release()
        while not (await imap.line()).endswith(b"EXISTS"):
            pass
        got.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for _ in range(sessions):
            nursery.start_soon(idle)
        after, spread = await _deliver_to_all(a, b, ready, got, sessions, "idle fan-out", 600)
    for imap in clients:
        await imap.stream.aclose()
    return {
        "sessions": sessions,
        "rss_per_session_kib": round((after - before) / sessions, 1),
        "fanout_median_ms": round(statistics.median(spread), 1),
        "fanout_max_ms": round(max(spread), 1),
    }


async def run(uri: str, deliveries: int, subscribers: int, tmp: Path) -> dict[str, Any]:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    # "duck ready" (with the ports) is logged at INFO.
    env = {"DUCK_SSE_MAX_PER_USER": str(subscribers + 10), "DUCK_LOG_LEVEL": "INFO",
           # One user with many sessions from one address, on purpose.
           "DUCK_IMAP_MAX_CONNECTIONS_PER_USER": str(subscribers + 10),
           "DUCK_IMAP_MAX_CONNECTIONS_PER_IP": str(subscribers + 10)}
    async with duck_process(uri, database, tmp / "a", **env) as a, \
            duck_process(uri, database, tmp / "b") as b:
        base = f"http://127.0.0.1:{a.ports['api']}"
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            r = await client.post("/users", json={"username": ADDRESS, "password": PASSWORD})
            user = r.json()["id"]
            latency = await _latency(a, b, user, client, deliveries)
        fanout = await _fanout(a, b, user, base, subscribers)
        idle = await _idle_fanout(a, b, subscribers)
    return {"latency": latency, "fanout": fanout, "idle_fanout": idle,
            "notifier": "change-stream",
            "database": "embedded (SecantusDB rust engine)"}


def main() -> None:
    """Run the benchmark; print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--mongo-uri", help="use this deployment instead of an embedded one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        if args.mongo_uri:
            result = trio.run(run, args.mongo_uri, args.deliveries, args.subscribers, path)
        else:
            with BlockingEmbeddedDatabase(path / "db") as uri:
                result = trio.run(run, uri, args.deliveries, args.subscribers, path)
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / "push.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
