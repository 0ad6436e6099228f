"""What the embedded engine spends on one write of a message document, by the
document's size and the number of indexes on its collection.

    python -m bench.engine_write_cost [--messages 60] [--ops 2000]

Why: under imaptest's load duck's write commands wait for the database far more
than for duck (docs/architecture.md, "Where a write's time goes under load"). This
measures the engine's CPU for the three writes imaptest's mix makes of a message
document: a flag change (STORE), an insert (APPEND), a delete (EXPUNGE). Less of
it buys commands/s there: fewer indexes and a smaller message document did
(docs/architecture.md, "Facts about the embedded database (measured)").

How: a store on a fresh embedded server (as ``duck serve`` starts it: synced
commits, no oplog) APPENDs ``--messages`` generated messages (bench/search_bench.py's
corpus) the real way. Their documents, as stored, are copied into four collections:

- ``stored``: the documents whole, with every index the store keeps on ``messages``;
- ``stored, 3 indexes``: the documents whole, with only (mailbox, uid), (mailbox,
  modseq) and (mailbox, deleted), what the writes themselves need;
- ``lean``: the documents without the fields no write or view needs (the part
  tree, envelope, header fields, renderings, references: a FETCH's, a SEARCH's),
  with every index;
- ``lean, 3 indexes``.

On each, ``--ops`` writes of each kind, ten to a transaction committed as duck
commits a group's (one client-level bulkWrite, then the commit); the server's CPU
per write (from /proc) and the wall time. Prints a table and writes
``bench/results/engine_write_cost.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bson
import pymongo
import trio
from bson import ObjectId
from pymongo import DeleteOne, InsertOne, UpdateOne

from bench.search_bench import Corpus
from duck.store import Store
from duck.store.engine.embedded import BlockingEmbeddedDatabase

OUT = Path(__file__).resolve().parent / "results" / "engine_write_cost.json"
#: The fields a lean document keeps: what a STORE, an EXPUNGE, a view and SEARCH's
#: prefilters read (duck/store/index/layout.py names them all).
LEAN = ("_id", "user", "mailbox", "uid", "modseq", "flags", "kw", "seen", "deleted",
        "flagged", "idate", "sdate", "date", "dtz", "size", "emailid", "threadid",
        "msgid", "bodies", "cid")
#: Writes per transaction: a group commit's few members' worth
#: (duck/store/engine/groupcommit.py), so that a transaction's own cost (its start,
#: its synced commit) weighs little on the figure per write.
PER_TRANSACTION = 10
#: The indexes a write itself needs (by the store's names).
FEW = ("_id_", "mailbox_uid", "mailbox_modseq", "mailbox_deleted")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _stored_documents(uri: str, messages: int) -> list[dict[str, Any]]:
    """The message documents of ``messages`` APPENDs, as the store wrote them."""
    store = await Store.open(uri, "bench")
    try:
        user = await store.users.create("writecost@example.com", "pw", quota=10**12)
        corpus = Corpus(seed=5)
        for i in range(messages):
            await store.messages.append(user.id, "INBOX", corpus.message(i))
    finally:
        await store.aclose()
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    try:
        return list(client.bench.messages.find({}))
    finally:
        client.close()


def _variant(client: pymongo.MongoClient[dict[str, Any]], name: str,
             docs: list[dict[str, Any]], lean: bool, few: bool) -> pymongo.collection.Collection:
    db = client.bench
    source = db.messages.index_information()
    coll = db[name]
    coll.drop()
    for index, spec in source.items():
        if index == "_id_" or (few and index not in FEW):
            continue
        options = {k: v for k, v in spec.items() if k in ("unique", "sparse")}
        coll.create_index(spec["key"], name=index, **options)
    coll.insert_many([{k: v for k, v in d.items() if not lean or k in LEAN} for d in docs])
    return coll


def _timed(client: pymongo.MongoClient[dict[str, Any]], pid: int, ops: int,
           write: Callable[[int], Any]) -> dict[str, float]:
    cpu, start = _cpu_seconds(pid), time.perf_counter()
    for first in range(0, ops, PER_TRANSACTION):
        with client.start_session() as session:
            session.start_transaction()
            client.bulk_write([write(i) for i in range(first, first + PER_TRANSACTION)],
                              session=session)
            session.commit_transaction()
    wall = time.perf_counter() - start
    return {"server_ms": 1000 * (_cpu_seconds(pid) - cpu) / ops, "wall_ms": 1000 * wall / ops}


def _writes(ns: str, template: dict[str, Any], box: Any, uids: list[int],
            top: int) -> dict[str, Callable[[int], Any]]:
    """The i-th write of each kind on the collection ``ns``."""

    def flag(i: int) -> UpdateOne:
        # (A STORE's change as flags.py makes it: the flag fields and the modseq.)
        seen = bool(i % 2)
        return UpdateOne({"mailbox": box, "uid": uids[i % len(uids)]},
                         {"$set": {"seen": seen, "flags": ["\\Seen"] if seen else [],
                                   "modseq": 10**6 + i}}, namespace=ns)

    def insert(i: int) -> InsertOne[dict[str, Any]]:
        return InsertOne({**template, "_id": ObjectId(), "uid": top + 1 + i,
                          "modseq": 2 * 10**6 + i, "sdate": dt.datetime.now(dt.UTC)},
                         namespace=ns)

    def delete(i: int) -> DeleteOne:
        return DeleteOne({"mailbox": box, "uid": top + 1 + i}, namespace=ns)

    return {"flag update": flag, "insert": insert, "delete": delete}


def measure(uri: str, pid: int, docs: list[dict[str, Any]], ops: int) -> list[dict[str, Any]]:
    """Each variant's server CPU and wall time per write of each kind."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, w=1, journal=True)
    box, uids = docs[0]["mailbox"], [d["uid"] for d in docs]
    rows = []
    try:
        for lean in (False, True):
            for few in (False, True):
                name = f"{'lean' if lean else 'stored'}_{'few' if few else 'all'}"
                coll = _variant(client, name, docs, lean, few)
                template = {k: v for k, v in docs[0].items() if not lean or k in LEAN}
                row: dict[str, Any] = {
                    "documents": "lean" if lean else "stored",
                    "indexes": len(coll.index_information()),
                    "bson_bytes_per_document": sum(
                        len(bson.encode(d)) for d in coll.find({})) // len(docs),
                }
                writes = _writes(f"bench.{name}", template, box, uids, max(uids))
                for kind, write in writes.items():
                    row[kind] = _timed(client, pid, ops, write)
                rows.append(row)
    finally:
        client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    # (As ``duck serve`` starts it for itself: store/engine/embedded.py, ``oplog``.)
    os.environ["SECANTUS_DISABLE_OPLOG"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        server = BlockingEmbeddedDatabase(Path(tmp))
        with server as uri:
            assert server.process is not None
            docs = trio.run(_stored_documents, uri, args.messages)
            rows = measure(uri, server.process.pid, docs, args.ops)
    for row in rows:
        cells = ", ".join(f"{kind} {row[kind]['server_ms']:.3f} ms "
                          f"({row[kind]['wall_ms']:.2f} wall)"
                          for kind in ("flag update", "insert", "delete"))
        print(f"{row['documents']:6s} documents ({row['bson_bytes_per_document']:5d} B), "
              f"{row['indexes']:2d} indexes: server CPU per write: {cells}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"messages": args.messages, "ops": args.ops,
                                    "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
