"""LMTP delivery benchmark (issue 6): rates over 1, 4 and 16 connections, and the
peak memory of delivering a 1 GB message; beside the rates, the same deliveries to
users whose active Sieve script has 20 rules (issue 14).

    python bench/lmtp_bench.py [--messages 300] [--huge-mb 1024] [--sieve-rules 20]

Runs its own embedded database and an in-process ``duck serve``; the message mix is
the benchmark corpus (bench/corpus.py, attachments capped at 1 MB so that a run
stays short). The 1 GB delivery runs in a child process of its own so that its peak
RSS is not mixed with the rest; the message is generated while it is sent and is
never held whole by the client or the server. Writes bench/results/lmtp.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench import corpus
from bench.scenarios.delivery import LmtpClient
from duck.config import Config
from duck.server import Server
from duck.store.engine.embedded import BlockingEmbeddedDatabase

RESULTS = Path(__file__).resolve().parent / "results"
PARALLEL = (1, 4, 16)
USERS = 16


def sieve_script(rules: int) -> str:
    """A Sieve script of ``rules`` rules of the kinds people write (list folders,
    refused domains, flags, size, sub-address, spam score); most messages of the
    corpus match none of them and end in the implicit keep."""
    kinds = [
        lambda i: f'if header :contains "List-Id" "list{i}.example.org" '
                  f'{{ fileinto "Lists/{i}"; stop; }}',
        lambda i: f'if address :domain :is "from" "spam{i}.example" {{ discard; stop; }}',
        lambda i: f'if header :matches "subject" "*[tag{i}]*" {{ addflag "\\\\Flagged"; }}',
        lambda i: f'if envelope :detail "to" "folder{i}" {{ fileinto "Lists/{i}"; stop; }}',
        lambda i: (f'if header :value "ge" :comparator "i;ascii-numeric" "X-Spam-Score" '
                   f'"{i + 5}" {{ fileinto "Junk"; stop; }}'),
    ]
    body = "\n".join(kinds[i % len(kinds)](i) for i in range(rules))
    return ('require ["fileinto", "imap4flags", "envelope", "subaddress", "relational", '
            '"comparator-i;ascii-numeric"];\n' + body + "\n")


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _server(nursery: trio.Nursery, uri: str, data_dir: Path, max_size: int) -> Server:
    config = Config(
        data_dir=data_dir, imap_port=0, imaps_port=0, lmtp_port=0, api_port=0,
        pop3_port=0, pop3s_port=0, managesieve_port=0,
        mongo_uri=uri, database="lmtpbench", max_message_size=max_size,
    )
    server: Server = await nursery.start(Server(config).run)
    return server


async def _rates(uri: str, data_dir: Path, count: int, sieve_rules: int = 0,
                 parallels: tuple[int, ...] = PARALLEL) -> dict[str, Any]:
    messages = [m.data for m in corpus.generate(count, seed=6, max_large=1024 * 1024)]
    total = sum(len(m) for m in messages)
    results: dict[str, Any] = {"messages": count, "mean_size": total // count}
    async with trio.open_nursery() as nursery:
        server = await _server(nursery, uri, data_dir, 64 * 1024 * 1024)
        assert server.store is not None
        users = [await server.store.users.create(f"bench{i}@example.com", "pw")
                 for i in range(USERS)]
        await _measure(server, messages, total, parallels, results, "")
        if sieve_rules:
            script = sieve_script(sieve_rules)
            for user in users:
                await server.store.sieve.put(user.id, "rules", script)
                await server.store.sieve.activate(user.id, "rules")
            await _measure(server, messages, total, parallels, results,
                           f"sieve_{sieve_rules}_rules_")
            for parallel in parallels:
                plain = results[f"parallel_{parallel}"]["deliveries_per_s"]
                ruled = results[f"sieve_{sieve_rules}_rules_parallel_{parallel}"]
                ruled["rate_vs_no_script"] = round(ruled["deliveries_per_s"] / plain, 2)
        server.request_shutdown()
    return results


async def _measure(server: Server, messages: list[bytes], total: int,
                   parallels: tuple[int, ...], results: dict[str, Any], prefix: str) -> None:
    """Deliver ``messages`` over each number of connections; rates into ``results``."""
    count = len(messages)
    for parallel in parallels:
        queue = list(enumerate(messages))
        latencies: list[float] = []

        async def worker(queue: list[tuple[int, bytes]] = queue,
                         latencies: list[float] = latencies) -> None:
            client = await LmtpClient.connect(server.ports["lmtp"])
            try:
                while queue:
                    i, data = queue.pop()
                    latencies.append(
                        await client.deliver(f"bench{i % USERS}@example.com", data)
                    )
            finally:
                await client.aclose()

        started = time.perf_counter()
        async with trio.open_nursery() as workers:
            for _ in range(parallel):
                workers.start_soon(worker)
        elapsed = time.perf_counter() - started
        latencies.sort()
        key = f"{prefix}parallel_{parallel}"
        results[key] = {
            "deliveries_per_s": round(count / elapsed, 1),
            "mb_per_s": round(total / elapsed / 1e6, 2),
            "median_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 1),
        }
        print(f"LMTP {prefix}x{parallel:<2}: {results[key]}", flush=True)


async def _huge(uri: str, data_dir: Path, megabytes: int) -> dict[str, Any]:
    """Deliver one message of ``megabytes`` MB; report this process's peak RSS."""
    async with trio.open_nursery() as nursery:
        size = megabytes * 1024 * 1024
        server = await _server(nursery, uri, data_dir, size + 1024 * 1024)
        assert server.store is not None
        await server.store.users.create("huge@example.com", "pw", quota=4 * size)
        baseline = _rss_kb()
        client = await LmtpClient.connect(server.ports["lmtp"])
        await client.send(b"MAIL FROM:<s@example.org>\r\nRCPT TO:<huge@example.com>\r\nDATA\r\n")
        await client.reply(250)
        await client.reply(250)
        await client.reply(354)
        started = time.perf_counter()
        head = (b"Subject: huge\r\nMIME-Version: 1.0\r\n"
                b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
                b"Content-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\n"
                b"Content-Type: application/octet-stream\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n")
        await client.send(head)
        line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
        block = line * (1024 * 1024 // len(line))
        sent = len(head)
        while sent < size:
            await client.send(block)
            sent += len(block)
        await client.send(b"--b--\r\n.\r\n")
        await client.reply(250)
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await client.aclose()
        server.request_shutdown()
    return {
        "message_mb": round(sent / 1e6, 1),
        "seconds": round(elapsed, 1),
        "mb_per_s": round(sent / elapsed / 1e6, 1),
        "baseline_rss_mb": round(baseline / 1024, 1),
        "peak_rss_mb": round(peak / 1024, 1),
        "peak_above_baseline_mb": round((peak - baseline) / 1024, 1),
    }


def _run(fn: Any, *args: Any) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        BlockingEmbeddedDatabase(Path(tmp) / "db") as uri,
    ):
        result: dict[str, Any] = trio.run(fn, uri, Path(tmp) / "data", *args)
        return result


def main() -> None:
    """Run both parts and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--huge-mb", type=int, default=1024)
    parser.add_argument("--sieve-rules", type=int, default=20,
                        help="rules of the Sieve script measured beside (0: none)")
    parser.add_argument("--only-huge", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only_huge:
        print(json.dumps(_run(_huge, args.huge_mb)))
        return
    results: dict[str, Any] = {"rates": _run(_rates, args.messages, args.sieve_rules)}
    if args.huge_mb:
        # A fresh process, so that the peak RSS is this delivery's alone.
        child = subprocess.run(
            [sys.executable, "-m", "bench.lmtp_bench", "--only-huge",
             "--huge-mb", str(args.huge_mb)],
            capture_output=True, text=True, check=True,
        )
        results["huge"] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"LMTP {args.huge_mb} MB message: {results['huge']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lmtp.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
