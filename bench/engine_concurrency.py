"""How many write transactions a second the embedded engine commits, from 1, 2, 4
and 8 concurrent writers that never touch the same document.

    python -m bench.engine_concurrency [--seconds 6] [--writers 1,2,4,8]

Each writer is a thread with its own mailbox and user documents and commits, in a
loop, the transaction of an APPEND as duck sends it (one client-level bulkWrite: the
mailbox's counters, the user's quota, a message document, its contents and a journal
entry, then the commit, synced), against a fresh embedded server as ``duck serve``
starts it for itself (``--sync-on-commit``, no oplog). Prints transactions/s, the
server's cores and its CPU per transaction, this client's cores, and the write
conflicts the writers got (and retried) although no two of them write one document;
writes ``bench/results/engine_concurrency.json``.

What it showed on the 2-core machine of bench/README.md (three runs; the machine's
speed moves by ±20% between them): 760-1,050 transactions/s from one writer,
1,230-1,520 from two, 960-1,070 from four and ~800 from eight, the server using at
most ~0.7 of a core and more CPU per transaction the more writers there are
(0.41-0.55 ms alone, ~0.73 ms among eight), with neither it nor this client
(0.4-0.7 of a core) short of a core. Past two at once, concurrent transactions only
slow each other down in this engine: the reason duck sends fewer, fuller ones (group
commit, two groups in flight at most: duck/store/engine/groupcommit.py).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pymongo
from bson import ObjectId
from pymongo import InsertOne, UpdateOne

from duck.store.engine.embedded import BlockingEmbeddedDatabase

OUT = Path(__file__).resolve().parent / "results" / "engine_concurrency.json"


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _writer(client: pymongo.MongoClient[Any], until: float, counts: list[int],
            conflicts: list[int], slot: int) -> None:
    db = client.bench
    box, user = ObjectId(), ObjectId()
    db.mailboxes.insert_one({"_id": box, "uid_next": 1, "modseq": 1})
    db.users.insert_one({"_id": user, "storage_used": 0, "quota": 10**12})
    uid = 1
    while time.monotonic() < until:
        ops: list[InsertOne[Any] | UpdateOne] = [
            UpdateOne({"_id": box}, {"$inc": {"uid_next": 1, "modseq": 1}},
                      namespace="bench.mailboxes"),
            UpdateOne({"_id": user}, {"$inc": {"storage_used": 8000}},
                      namespace="bench.users"),
            InsertOne({"mailbox": box, "uid": uid, "modseq": uid, "flags": [], "seen": False,
                       "deleted": False, "size": 8000, "env": ["x" * 300], "hdr": "h" * 600},
                      namespace="bench.messages"),
            InsertOne({"user": user, "text": "t" * 8000}, namespace="bench.contents"),
            InsertOne({"mailbox": box, "modseq": uid, "kind": "exists"},
                      namespace="bench.journal"),
        ]
        try:
            with client.start_session() as session:
                session.start_transaction()
                client.bulk_write(ops, session=session)
                session.commit_transaction()
        except pymongo.errors.PyMongoError as exc:
            if "WriteConflict" not in str(exc) and not (
                    isinstance(exc, pymongo.errors.OperationFailure)
                    and exc.has_error_label("TransientTransactionError")):
                raise
            conflicts[slot] += 1
            continue
        uid += 1
        counts[slot] += 1


def measure(uri: str, pid: int, writers: int, seconds: float) -> dict[str, float]:
    """One measurement: ``writers`` threads for ``seconds``."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(
        uri, maxPoolSize=writers + 2, w=1, journal=True)
    try:
        client.bench.messages.create_index([("mailbox", 1), ("uid", 1)], unique=True)
        client.bench.journal.create_index([("mailbox", 1), ("modseq", 1)], unique=True)
        counts, conflicts = [0] * writers, [0] * writers
        until = time.monotonic() + seconds
        start, ticks, own = time.monotonic(), _cpu_ticks(pid), time.process_time()
        threads = [threading.Thread(target=_writer, args=(client, until, counts, conflicts, i))
                   for i in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
        cpu = (_cpu_ticks(pid) - ticks) / os.sysconf("SC_CLK_TCK")
        client_cpu = time.process_time() - own
        done = sum(counts)
        return {"writers": writers, "transactions_per_s": done / elapsed,
                "server_cores": cpu / elapsed,
                "server_ms_per_transaction": 1000 * cpu / max(done, 1),
                "client_cores": client_cpu / elapsed, "conflicts": sum(conflicts)}
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--writers", default="1,2,4,8")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = []
    # (As ``duck serve`` starts it for itself: store/engine/embedded.py, ``oplog``.)
    os.environ["SECANTUS_DISABLE_OPLOG"] = "1"
    for writers in (int(w) for w in args.writers.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            server = BlockingEmbeddedDatabase(Path(tmp))
            with server as uri:
                assert server.process is not None
                row = measure(uri, server.process.pid, writers, args.seconds)
        results.append(row)
        print(f"{writers} writers: {row['transactions_per_s']:7.0f} transactions/s, "
              f"server {row['server_cores']:.2f} cores, "
              f"{row['server_ms_per_transaction']:.3f} ms of its CPU each, "
              f"client {row['client_cores']:.2f} cores, "
              f"{row['conflicts']:.0f} write conflicts")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seconds": args.seconds, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
