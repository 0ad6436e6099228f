"""Store benchmarks: ingest+store throughput, a 1 GB message, attachment dedup.

Starts its own embedded database (duck.store.engine.embedded.BlockingEmbeddedDatabase) in a
temporary directory, prints the figures and writes them as JSON to
``bench/results/store.json`` (git-ignored).

    python bench/store_bench.py                 # everything, full sizes
    python bench/store_bench.py --quick         # small sizes, for a smoke run
    python bench/store_bench.py --only big --big-mb 1024

Figures:

- throughput: a realistic mix (plain text, text+HTML alternatives, messages with
  base64 attachments up to 2 MB) ingested in 64 KB chunks and delivered to one
  user by 8 concurrent tasks: MB/s, messages/s, database commands per message;
  then one FETCH of headers for 100 messages and a few SEARCHes over the mailbox.
- big: one generated message with a single huge base64 attachment streamed in
  1 MB chunks through ingest → deliver, then streamed back out; SHA-256 of what
  went in and what came out are compared (never held whole). Peak RSS of this
  process above the baseline taken just before, sampled every 10 ms.
- dedup: the same 5 MB attachment delivered to N users in one deliver call;
  logical bytes versus bodies/GridFS bytes and growth of the data directory.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pymongo.monitoring
import trio

from duck.store import DeliveryTarget, Store
from duck.store import query as q
from duck.store.engine.embedded import BlockingEmbeddedDatabase
from duck.store.models import Delivered

RESULTS = Path(__file__).parent / "results" / "store.json"
MB = 1024 * 1024


class CommandCounter(pymongo.monitoring.CommandListener):
    """Counts database commands (round trips) issued by this process."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        self.count += 1

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass


COMMANDS = CommandCounter()
pymongo.monitoring.register(COMMANDS)


def rss() -> int:
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples RSS in a thread; ``peak - baseline`` is the growth during the block."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def du(path: Path) -> int:
    """Bytes used by the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- message generators -------------------------------------------------------------

WORDS = [
    "mail", "store", "server", "imap", "lmtp", "mongo", "byte", "exact", "stream", "index",
    "skeleton", "body", "part", "header", "quota", "journal", "modseq", "uid", "search",
    "flag", "copy", "move", "expunge", "thread",
]


def _text(rng: random.Random, size: int) -> bytes:
    lines = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        lines.append(line)
        total += len(line) + 2
    return ("\r\n".join(lines) + "\r\n").encode()


def _headers(rng: random.Random, i: int, content_type: str) -> bytes:
    return (
        f"From: Sender {i % 50} <sender{i % 50}@example.com>\r\n"
        f"To: alice@example.com\r\nSubject: message {i} about {rng.choice(WORDS)}\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <m{i}.{rng.random()}@ex>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n"
    ).encode()


def mixed_message(rng: random.Random, i: int) -> bytes:
    """One message of the realistic mix."""
    kind = rng.random()
    if kind < 0.6:
        return _headers(rng, i, "text/plain; charset=utf-8") + _text(rng, rng.randint(2, 20) * 1024)
    if kind < 0.85:
        body = _text(rng, rng.randint(5, 30) * 1024)
        html = (b"<html><body><p>" + body.replace(b"\r\n", b"</p>\r\n<p>")
                + b"</p></body></html>\r\n")
        return (_headers(rng, i, 'multipart/alternative; boundary="alt"')
                + b"--alt\r\nContent-Type: text/plain\r\n\r\n" + body
                + b"\r\n--alt\r\nContent-Type: text/html\r\n\r\n" + html + b"\r\n--alt--\r\n")
    attachment = base64.encodebytes(rng.randbytes(rng.randint(100, 1500) * 1024))
    return (_headers(rng, i, 'multipart/mixed; boundary="mix"')
            + b"--mix\r\nContent-Type: text/plain\r\n\r\n" + _text(rng, 2048)
            + b"\r\n--mix\r\nContent-Type: application/pdf; name=doc.pdf\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n"
            + attachment.replace(b"\n", b"\r\n") + b"\r\n--mix--\r\n")


def big_message(size: int, piece: int = MB) -> Iterator[bytes]:
    """A message of about ``size`` bytes with one base64 attachment, in pieces."""
    yield (b"From: big@example.com\r\nTo: alice@example.com\r\nSubject: big\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BIG\"\r\n\r\n"
           b"--BIG\r\nContent-Type: text/plain\r\n\r\nA big one.\r\n"
           b"--BIG\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n")
    raw = piece * 3 // 4 // 57 * 57  # whole base64 lines
    produced = 0
    while produced < size:
        chunk = base64.encodebytes(os.urandom(raw)).replace(b"\n", b"\r\n")
        produced += len(chunk)
        yield chunk
    yield b"--BIG--\r\n"


# -- benchmarks ---------------------------------------------------------------------


async def bench_throughput(store: Store, messages: int) -> dict[str, Any]:
    """Ingest + deliver a realistic mix with 8 concurrent tasks."""
    user = await store.users.create("throughput@example.com", "pw", quota=10**12)
    rng = random.Random(4)
    corpus = [mixed_message(rng, i) for i in range(messages)]
    total = sum(map(len, corpus))
    queue = list(enumerate(corpus))
    commands_before = COMMANDS.count

    async def worker() -> None:
        while queue:
            _, data = queue.pop()
            ingest = store.messages.ingest()
            for i in range(0, len(data), 65536):
                await ingest.write(data[i:i + 65536])
            ingested = await ingest.finish()
            (result,) = await store.messages.deliver(ingested, [DeliveryTarget(user.id)])
            assert isinstance(result, Delivered), result

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(worker)
    elapsed = time.perf_counter() - start
    commands = COMMANDS.count - commands_before
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert inbox.message_count == messages

    t = time.perf_counter()
    view = await store.messages.view(inbox.id)
    view_s = time.perf_counter() - t
    uids = [s.uid for s in view[:100]]
    t = time.perf_counter()
    c0 = COMMANDS.count
    records = await store.messages.fetch(inbox.id, uids, ["envelope", "flags", "size",
                                                          "structure", "content"])
    headers = [await store.messages.read(r, 0, r.structure.header_end)  # type: ignore[union-attr]
               for r in records]
    fetch_s = time.perf_counter() - t
    fetch_cmds = COMMANDS.count - c0
    assert len(headers) == len(uids)
    searches = {}
    for name, query in [("flag-unseen", q.Flag("\\Seen", present=False)),
                        ("subject", q.Subject("expunge")),
                        ("from", q.Address("from", "sender7@")),
                        ("body", q.Body("skeleton quota"))]:
        t = time.perf_counter()
        found = await store.messages.search(inbox.id, query)
        searches[name] = {"ms": round((time.perf_counter() - t) * 1000, 1), "hits": len(found)}
    return {
        "messages": messages,
        "bytes": total,
        "seconds": round(elapsed, 2),
        "mb_per_s": round(total / MB / elapsed, 2),
        "messages_per_s": round(messages / elapsed, 1),
        "commands_per_message": round(commands / messages, 1),
        "view_ms": round(view_s * 1000, 1),
        "fetch_100_headers_ms": round(fetch_s * 1000, 1),
        "fetch_100_headers_commands": fetch_cmds,
        "search_ms": searches,
    }


async def bench_big(store: Store, size: int) -> dict[str, Any]:
    """Stream a ``size``-byte message in and out; peak RSS and SHA-256 comparison."""
    user = await store.users.create("big@example.com", "pw", quota=10**12)
    sha_in = hashlib.sha256()
    total = 0
    with PeakRss() as mem_in:
        start = time.perf_counter()
        ingest = store.messages.ingest(max_size=size + 16 * MB)
        for piece in big_message(size):
            sha_in.update(piece)
            total += len(piece)
            await ingest.write(piece)
        ingested = await ingest.finish()
        (result,) = await store.messages.deliver(ingested, [DeliveryTarget(user.id)])
        assert isinstance(result, Delivered), result
        store_s = time.perf_counter() - start
        del ingested
    with PeakRss() as mem_out:
        start = time.perf_counter()
        (record,) = await store.messages.fetch(result.mailbox_id, [result.uid], ["content"])
        sha_out = hashlib.sha256()
        out = 0
        async for chunk in store.messages.stream(record):
            sha_out.update(chunk)
            out += len(chunk)
        fetch_s = time.perf_counter() - start
        # A partial fetch in the middle of the attachment reads only its chunk(s).
        c0 = COMMANDS.count
        t = time.perf_counter()
        middle = await store.messages.read(record, total // 2, total // 2 + 4096)
        partial_ms = (time.perf_counter() - t) * 1000
        partial_cmds = COMMANDS.count - c0
        assert len(middle) == 4096
    same = sha_in.hexdigest() == sha_out.hexdigest() and out == total
    return {
        "bytes": total,
        "byte_exact": same,
        "sha256": sha_in.hexdigest(),
        "store_seconds": round(store_s, 1),
        "store_mb_per_s": round(total / MB / store_s, 1),
        "fetch_seconds": round(fetch_s, 1),
        "fetch_mb_per_s": round(total / MB / fetch_s, 1),
        "peak_rss_above_baseline_mb_store": round((mem_in.peak - mem_in.baseline) / MB, 1),
        "peak_rss_above_baseline_mb_fetch": round((mem_out.peak - mem_out.baseline) / MB, 1),
        "baseline_rss_mb": round(mem_in.baseline / MB, 1),
        "partial_4k_read_ms": round(partial_ms, 1),
        "partial_4k_read_commands": partial_cmds,
    }


async def bench_dedup(store: Store, users: int, data_dir: Path) -> dict[str, Any]:
    """The same 5 MB attachment delivered to ``users`` users in one deliver call."""
    # Password hashing (scrypt, ~0.35 s each) is not what this measures.
    with mock.patch("duck.store.accounts.users.hash_password", lambda _password: "$bench$"):
        ids = []
        limiter = trio.CapacityLimiter(8)

        async def make(i: int) -> None:
            async with limiter:
                ids.append((await store.users.create(f"u{i}@dedup.example", "pw",
                                                     quota=10**12)).id)

        async with trio.open_nursery() as nursery:
            for i in range(users):
                nursery.start_soon(make, i)
    attachment = base64.encodebytes(random.Random(5).randbytes(5 * MB * 3 // 4))
    attachment = attachment.replace(b"\n", b"\r\n")
    data = (b"From: dedup@example.com\r\nSubject: the report\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"D\"\r\n\r\n--D\r\n"
            b"Content-Type: text/plain\r\n\r\nAttached.\r\n--D\r\n"
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + attachment + b"\r\n--D--\r\n")
    files = store.database.collection("attachments.files")

    async def gridfs_bytes() -> int:
        docs = await store.database.run(lambda: list(files.find({}, {"length": 1})))
        return sum(int(d["length"]) for d in docs)

    stats_before = await store.database.run(store.bodies.statistics)
    gridfs_before = await gridfs_bytes()
    disk_before = du(data_dir)
    start = time.perf_counter()
    ingest = store.messages.ingest()
    for i in range(0, len(data), MB):
        await ingest.write(data[i:i + MB])
    ingested = await ingest.finish()
    targets = [DeliveryTarget(uid, prepend=f"Delivered-To: u{n}@dedup.example\r\n".encode())
               for n, uid in enumerate(ids)]
    results = await store.messages.deliver(ingested, targets)
    elapsed = time.perf_counter() - start
    assert all(isinstance(r, Delivered) for r in results)
    logical = sum(r.size for r in results if isinstance(r, Delivered))
    stats = await store.database.run(store.bodies.statistics)
    time.sleep(2)  # let the server flush before measuring its files
    disk_after = du(data_dir)
    return {
        "users": users,
        "message_bytes": len(data),
        "deliver_seconds": round(elapsed, 1),
        "copies_per_s": round(users / elapsed, 1),
        "logical_bytes": logical,
        "new_bodies": stats["bodies"] - stats_before["bodies"],
        "new_body_refs": stats["refs"] - stats_before["refs"],
        "new_gridfs_bytes": await gridfs_bytes() - gridfs_before,
        "data_dir_growth_bytes": disk_after - disk_before,
    }


async def main_async(args: argparse.Namespace, uri: str, data_dir: Path) -> dict[str, Any]:
    store = await Store.open(uri, "bench")
    results: dict[str, Any] = {}
    try:
        if "big" in args.only:
            print(f"big: {args.big_mb} MB message ...", flush=True)
            results["big"] = await bench_big(store, args.big_mb * MB)
            print(json.dumps(results["big"], indent=2), flush=True)
        if "throughput" in args.only:
            print(f"throughput: {args.messages} messages ...", flush=True)
            results["throughput"] = await bench_throughput(store, args.messages)
            print(json.dumps(results["throughput"], indent=2), flush=True)
        if "dedup" in args.only:
            print(f"dedup: 5 MB attachment to {args.users} users ...", flush=True)
            results["dedup"] = await bench_dedup(store, args.users, data_dir)
            print(json.dumps(results["dedup"], indent=2), flush=True)
    finally:
        await store.aclose()
    return results


def main() -> None:
    """Run the selected benchmarks and write bench/results/store.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["big", "throughput", "dedup"],
                        choices=["big", "throughput", "dedup"])
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--engine", default="rust", choices=["rust", "python"])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.big_mb, args.messages, args.users = 64, 150, 50
    with tempfile.TemporaryDirectory(prefix="duck-bench-") as tmp:
        data_dir = Path(tmp)
        with BlockingEmbeddedDatabase(data_dir, engine=args.engine) as uri:
            results = trio.run(main_async, args, uri, data_dir / "db")
    results["settings"] = {"engine": args.engine, "quick": args.quick}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
