"""SEARCH benchmark: latency of every key type at growing mailbox sizes, and what
the substring index (duck/store/index/textindex.py) costs.

Starts its own embedded database in a temporary directory, prints a table and
writes ``bench/results/search.json``.

    python bench/search_bench.py                    # 1k and 10k messages
    python bench/search_bench.py --sizes 1000 10000 100000
    python bench/search_bench.py --quick            # 300 messages, few repetitions
    python bench/search_bench.py --engine python

Messages are generated (deterministic: Zipf-distributed words, names, subjects,
plain/QP/base64/HTML bodies of 0.2-20 KB text, a few non-ASCII), indexed by the
real MIME indexer and turned into documents by the real ``documents.content``, then
inserted in bulk (``insert_many``): the point is the query path, not delivery.

Figures:

- per key: median and p95 of ``store.messages.search`` (one aggregate each), and
  the number of matches; at sizes up to ``--scan-max`` also the same query as
  before the index (one ``find`` with the exact filter: a scan of the mailbox);
- cost of the index, measured on the first size: document and index bytes per
  message with and without ``g`` (collStats of two collections holding the same
  messages), the CPU time of computing the grams per message, and the insert
  time per message with and without them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from bson import ObjectId

from duck.mime.indexer import MessageIndexer
from duck.mime.model import IndexerLimits
from duck.store import Store
from duck.store import query as q
from duck.store.engine import schema
from duck.store.engine.embedded import BlockingEmbeddedDatabase
from duck.store.index import contents, textindex
from duck.store.mail.documents import content, message_doc
from duck.store.mail.flags import flag_fields
from duck.store.models import Ingested, Segment

#: Messages per insert_many (the Rust engine slows down on large multikey batches).
BATCH = 50
START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
RESULTS = Path(__file__).parent / "results" / "search.json"
SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "on", "el", "ar", "is", "ut",
             "ber", "gen", "dor", "fal", "qu", "zy", "ph", "st"]
RARE_WORD = "zanzibarian"
NAMES = ["Alice Martin", "Bob Stone", "Carol Diaz", "Dave Kim", "Erin Wolf", "Frank Ode",
         "Grace Hopper", "Heidi Klum", "Ivan Petrov", "Judy Chen", "Élodie Ünal", "Jörg Müller"]


def vocabulary(rnd: random.Random, n: int = 5000) -> list[str]:
    words = {"".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(1, 4))) for _ in range(n)}
    return sorted(words)


class Corpus:
    """Deterministic generated messages (bytes), Zipf words, some rare markers."""

    def __init__(self, seed: int = 8) -> None:
        self.rnd = random.Random(seed)
        self.words = vocabulary(self.rnd)
        weights = [1 / (i + 1) for i in range(len(self.words))]
        self.cum = list(_accumulate(weights))

    def phrase(self, n: int) -> str:
        return " ".join(self.rnd.choices(self.words, cum_weights=self.cum, k=n))

    def message(self, i: int) -> bytes:
        rnd = self.rnd
        sender = rnd.choice(NAMES)
        to = rnd.choice(NAMES)
        subject = self.phrase(rnd.randint(2, 8))
        words = int(rnd.lognormvariate(5.5, 1.0)) + 20  # median ~250 words, long tail
        body = "\n".join(self.phrase(12) for _ in range(min(words, 3000) // 12 + 1))
        if i % 997 == 0:
            body += f"\nthe {RARE_WORD} report\n"
        if i % 50 == 0:
            body += "\nÜbersicht über Größen — ça marche, naïve café\n"
        head = (f"From: {sender} <{sender.split()[0].lower()}@example.com>\r\n"
                f"To: {to} <{to.split()[0].lower()}@example.org>\r\n"
                f"Subject: {subject}\r\n"
                f"Date: Mon, {1 + i % 28} Jan 2024 10:00:00 +0000\r\n"
                f"Message-ID: <{i}.{rnd.randrange(10**9)}@example.com>\r\n"
                f"X-Mailer: {rnd.choice(['Thunderbird 115', 'Outlook 16', 'mutt 2.2'])}\r\n"
                + (f"List-Id: <list{i % 7}.example.com>\r\n" if i % 3 == 0 else "")
                + "Received: from mx1.example.net by mx2.example.org; Mon, 1 Jan 2024\r\n"
                "MIME-Version: 1.0\r\n")
        if i % 4 == 0:
            html = "<html><body><p>" + body.replace("\n", "</p><p>") + "</p></body></html>"
            part = ("Content-Type: multipart/alternative; boundary=b1\r\n\r\n--b1\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n--b1\r\n"
                    "Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n--b1--\r\n")
        else:
            part = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n"
        return (head + part).replace("\r\n", "\n").replace("\n", "\r\n").encode()


def _accumulate(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


def ingested(raw: bytes) -> Ingested:
    indexer = MessageIndexer(IndexerLimits())
    indexer.feed(raw)
    _, message = indexer.close()
    return Ingested(message=message, segments=(Segment(0, len(raw), data=raw),),
                    size=len(raw), sha256="")


def documents(corpus: Corpus, start: int, count: int, user: ObjectId, mailbox: ObjectId,
              timing: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + count):
        ing = ingested(corpus.message(i))
        t = time.perf_counter()
        base, _ = content(ing)
        timing["content"] += time.perf_counter() - t
        flags = [f for f, p in (("\\Seen", 0.8), ("\\Flagged", 0.03)) if corpus.rnd.random() < p]
        idate = START + dt.timedelta(hours=i)  # one message an hour
        out.append(message_doc(base, user=user, mailbox=mailbox, uid=i + 1, modseq=i + 1,
                               flag_fields=flag_fields(flags), internal_date=idate,
                               savedate=idate, emailid=f"M{i}", threadid=f"T{i}"))
    return out


def keys(size: int) -> dict[str, q.Query]:
    """The measured queries; dates relative to the loaded mailbox (one message an hour)."""

    def day(fraction: float) -> dt.date:
        return (START + dt.timedelta(hours=int(size * fraction))).date()

    return {
        "UNSEEN": q.Flag("\\Seen", present=False),
        "FLAGGED": q.Flag("\\Flagged"),
        "SINCE (recent)": q.Date("internal", "since", day(0.99)),
        "ON": q.Date("internal", "on", day(0.5)),
        "BEFORE (old)": q.Date("internal", "before", day(0.02)),
        "LARGER 50000": q.Size("larger", 50000),
        "MODSEQ (recent)": q.ModSeq(size - 20),
        "UID range": q.Uids(((size // 2, size // 2 + 99),)),
        "ALL": q.All(),
        "FROM name": q.Address("from", "grace"),
        "TO name": q.Address("to", "petrov"),
        "SUBJECT word": q.Subject("gendor"),
        "HEADER X-Mailer": q.Header("x-mailer", "mutt"),
        "HEADER List-Id \"\"": q.Header("list-id", ""),
        "BODY rare": q.Body(RARE_WORD),
        "BODY non-ASCII": q.Body("größen"),
        "BODY phrase": q.Body("ka lo"),
        "BODY absent": q.Body("xyzzyq"),
        "BODY 2 chars (scan)": q.Body("zy"),
        "TEXT rare": q.Text(RARE_WORD),
        "TEXT name": q.Text("müller"),
        "UNSEEN BODY": q.And((q.Flag("\\Seen", present=False), q.Body("naïve"))),
        "OR FROM SUBJECT": q.Or((q.Address("from", "hopper"), q.Subject("zanzi"))),
        "NOT BODY": q.Not(q.Body(RARE_WORD)),
    }


async def time_search(store: Store, mailbox_id: str, query: q.Query, reps: int) -> tuple[
        list[float], int]:
    times, n = [], 0
    for _ in range(reps):
        t = time.perf_counter()
        n = len(await store.messages.search(mailbox_id, query))
        times.append(time.perf_counter() - t)
    return times, n


async def time_scan(store: Store, mailbox: ObjectId, query: q.Query, reps: int) -> list[float]:
    """The query as before the index: one find with the exact filter (a mailbox scan)."""
    exact = q.compile_query(query)
    coll = store.database.collection(schema.MESSAGES)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        await store.database.run(
            lambda: list(coll.find({"mailbox": mailbox, **exact}, {"_id": 0, "uid": 1})))
        times.append(time.perf_counter() - t)
    return times


def _ms(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(p95 * 1000, 2)}


async def measure_cost(store: Store, corpus: Corpus, user: ObjectId, count: int) -> dict[str, Any]:
    """Storage and insert time with and without ``g`` on the same messages."""
    timing = {"content": 0.0}
    docs = documents(corpus, 0, count, user, ObjectId(), timing)
    grams_cpu = 0.0
    for d in docs:
        t = time.perf_counter()
        textindex.document_grams(((h["k"], h["v"]) for h in d["hdr"]), d["text"])
        grams_cpu += time.perf_counter() - t
    db = store.database.db
    out: dict[str, Any] = {"messages": count}
    for variant in ("with_index", "without_index"):
        name = f"cost_{variant}"
        coll = db[name]
        models = [m for m in schema.INDEXES[schema.MESSAGES]
                  if variant == "with_index" or m.document["name"] != "mailbox_g"]
        await store.database.run(coll.create_indexes, models)
        batch = [dict(d) for d in docs]
        if variant == "without_index":
            for d in batch:
                d.pop("g"), d.pop("gv")
        t = time.perf_counter()
        for d in batch:  # one insert per message, as a delivery does
            await store.database.run(coll.insert_one, d)
        elapsed = time.perf_counter() - t
        stats = await store.database.run(db.command, "collStats", name)
        out[variant] = {
            "insert_ms_per_message": round(elapsed / count * 1000, 3),
            "doc_bytes_per_message": round(stats["size"] / count),
            "index_bytes_per_message": round(stats["totalIndexSize"] / count),
            "g_index_bytes_per_message": round(
                stats.get("indexSizes", {}).get("mailbox_g", 0) / count),
        }
        await store.database.run(coll.drop)
    sizes = [len(d["g"]) for d in docs]
    out["grams_per_message"] = {"median": statistics.median(sizes), "max": max(sizes),
                                "saturated": sum(g == [textindex.SATURATED] for g in
                                                 (d["g"] for d in docs))}
    out["gram_cpu_ms_per_message"] = round(grams_cpu / count * 1000, 3)
    out["text_chars_per_message"] = statistics.median(len(d["text"]) for d in docs)
    out["message_bytes_median"] = statistics.median(d["size"] for d in docs)
    return out


def save(results: dict[str, Any]) -> None:
    """Write what is measured so far (a long run keeps its figures if cut short)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, default=str))


async def append_cost(store: Store, corpus: Corpus, count: int) -> dict[str, float]:
    """End-to-end APPEND time per message (ingest, transaction, journal) with and
    without the substring index (its index dropped and ``g`` left empty)."""
    coll = store.database.collection(schema.MESSAGES)
    raws = [corpus.message(i) for i in range(count)]
    out: dict[str, float] = {}
    original = textindex.document_grams
    # Without the index first: the index made again after it then covers only
    # messages with no grams. Made again over the grams of the messages appended
    # with it, it outlasted the client's socket timeout on the Rust engine.
    for variant in ("without_index", "with_index"):
        user = await store.users.create(f"{variant.replace('_', '')}@example.com", "pw",
                                        quota=10**13)
        if variant == "without_index":
            await store.database.run(coll.drop_index, "mailbox_g")
            textindex.document_grams = lambda headers, text: []  # type: ignore[assignment]
        try:
            t = time.perf_counter()
            for raw in raws:
                await store.messages.append(user.id, "INBOX", raw)
            out[variant] = round((time.perf_counter() - t) / count * 1000, 2)
        finally:
            textindex.document_grams = original  # type: ignore[assignment]
            if variant == "without_index":
                await store.database.run(coll.create_indexes,
                                         schema.INDEXES[schema.MESSAGES])
    return out


async def run(uri: str, sizes: list[int], reps: int, scan_max: int, cost_n: int,
              drop: bool) -> dict[str, Any]:
    store = await Store.open(uri, "searchbench")
    results: dict[str, Any] = {"sizes": {}}
    try:
        user_obj = await store.users.create("bench@example.com", "pw", quota=10**13)
        mailbox_id = (await store.mailboxes.get(user_obj.id, "INBOX")).id
        user, mailbox = ObjectId(user_obj.id), ObjectId(mailbox_id)
        print(f"index cost on {cost_n} messages ...", flush=True)
        results["cost"] = await measure_cost(store, Corpus(seed=99), user, cost_n)
        results["cost"]["append_ms_per_message"] = await append_cost(
            store, Corpus(seed=7), max(50, cost_n // 2))
        print(json.dumps(results["cost"], indent=1), flush=True)
        corpus = Corpus()
        coll = store.database.collection(schema.MESSAGES)
        loaded = 0
        timing = {"content": 0.0}
        for size in sorted(sizes):
            t = time.perf_counter()
            while loaded < size:
                n = min(BATCH, size - loaded)
                # As the store keeps them: bytes and text in contents documents.
                split = [contents.split(d) for d in documents(corpus, loaded, n, user,
                                                              mailbox, timing)]
                await store.database.run(lambda d=split: (
                    store.database.collection(contents.COLLECTION).insert_many(
                        [c for _, c in d], ordered=False),
                    coll.insert_many([m for m, _ in d], ordered=False)))
                loaded += n
            print(f"loaded {size} messages in {time.perf_counter() - t:.0f} s", flush=True)
            row: dict[str, Any] = {}
            for label, query in keys(size).items():
                times, n = await time_search(store, mailbox_id, query, reps)
                row[label] = {"matches": n, **_ms(times)}
                if size <= scan_max:
                    row[label]["before"] = _ms(await time_scan(
                        store, mailbox, query, 3 if size <= 1000 else 1))
                before = row[label].get("before", {}).get("median_ms", "")
                print(f"{size:>7} {label:<24} {n:>6} {row[label]['median_ms']:>9.1f}"
                      f" {row[label]['p95_ms']:>9.1f} {before:>10}", flush=True)
            results["sizes"][str(size)] = row
            save(results)
    finally:
        if drop:  # an embedded server's directory is deleted whole: no drop needed
            await store.database.run_threaded(store.database.client.drop_database, "searchbench")
        await store.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--scan-max", type=int, default=10000,
                        help="largest size at which the pre-index scan is also timed")
    parser.add_argument("--cost-n", type=int, default=500)
    parser.add_argument("--engine", choices=["rust", "python"], default="rust")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mongo-uri")
    args = parser.parse_args()
    # This benchmark measures the trigram index: on for the whole run.
    textindex.configure(True)
    if args.quick:
        args.sizes, args.reps, args.cost_n = [300], 3, 100
    started = time.time()
    print(f"{'size':>7} {'key':<24} {'hits':>6} {'median_ms':>9} {'p95_ms':>9} {'scan_ms':>10}")
    if args.mongo_uri:
        results = trio.run(run, args.mongo_uri, args.sizes, args.reps, args.scan_max,
                           args.cost_n, True)
    else:
        with tempfile.TemporaryDirectory() as tmp, BlockingEmbeddedDatabase(
                Path(tmp), engine=args.engine) as uri:
            results = trio.run(run, uri, args.sizes, args.reps, args.scan_max, args.cost_n,
                               False)
    results["engine"] = args.engine if not args.mongo_uri else "external"
    results["seconds"] = round(time.time() - started)
    save(results)
    print(f"wrote {RESULTS} in {results['seconds']} s")


if __name__ == "__main__":
    main()
