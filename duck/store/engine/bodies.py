"""Large bodies: content-addressed GridFS files with a reference count.

A body is uploaded to a GridFS file under a fresh id while it streams in (its
SHA-256 is known only at the end), then registered in ``bodies`` under ``_id`` =
its SHA-256. If that hash was already there, the new upload is deleted and the
existing file gains a reference: the same attachment in 1,000 mailboxes is stored
once.

Crash safety of garbage collection rests on one ordering rule: a reference is
added *before* the message that holds it is inserted, and dropped only *after*
that message is deleted. So ``refs`` is never below the number of messages that
reference a body; a crash can only leave it too high (a leak), never too low.
An ingest holds one reference per body from registration until ``deliver`` (or
``abort``) hands it over, so a body cannot vanish between upload and delivery.
When ``refs`` reaches zero the body document is deleted with a filter on
``refs <= 0`` (atomic against a concurrent increment) and then its file. Leaks are
repaired by ``sweep``: it recounts references of bodies untouched for a grace
period (with an optimistic check on ``touched``, so it never races a delivery),
frees unreferenced ones, and deletes GridFS files no body document names
(uploads interrupted by a crash).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import Counter
from typing import Any

import attrs
import pymongo.errors
from bson import ObjectId
from pymongo import ReturnDocument

from ..errors import NotFound
from . import schema
from .clock import now
from .database import Database
from .pages import Pages, pages
from .upsert import upsert_returning

log = logging.getLogger(__name__)

#: GridFS chunk size: a partial read fetches whole chunks, an upload writes them.
CHUNK_SIZE = 1024 * 1024
#: Sweep leaves bodies and files younger than this alone (in-flight deliveries).
SWEEP_GRACE = dt.timedelta(hours=1)

schema.register(
    schema.BODIES,
    [schema.IndexModel([("file", schema.ASCENDING)], name="file"),
     schema.IndexModel([("refs", schema.ASCENDING), ("touched", schema.ASCENDING)],
                       name="refs_touched")],
)
# The indexes GridFS drivers create, under the names they give them.
schema.register(
    f"{schema.ATTACHMENTS}.chunks",
    [schema.IndexModel([("files_id", schema.ASCENDING), ("n", schema.ASCENDING)],
                       unique=True, name="files_id_1_n_1")],
)
schema.register(
    f"{schema.ATTACHMENTS}.files",
    [schema.IndexModel([("filename", schema.ASCENDING), ("uploadDate", schema.ASCENDING)],
                       name="filename_1_uploadDate_1")],
)
#: The collections whose documents hold body references (``bodies``: hashes, the
#: field left out where there are none): the messages, and the archive of deleted
#: ones (mail/archive.py).
REFERRERS = (schema.MESSAGES, schema.ARCHIVE)
for _referrer in REFERRERS:
    # Sparse: only documents with a body in GridFS have an entry (the sweep's count
    # asks for hashes, which a document without the field cannot match). The index
    # of every document that earlier versions made cost each APPEND, EXPUNGE and
    # archived message an entry (measured: docs/architecture.md, "Facts about the
    # embedded database (measured)").
    schema.register(_referrer, [schema.IndexModel(
        [("bodies", schema.ASCENDING)], name="bodies_sparse", sparse=True)])
    schema.retire(_referrer, ["bodies"])
#: Bodies one sweep step looks at (one count query per referring collection).
SWEEP_PAGE = 200


@attrs.define
class SweepReport:
    """What a sweep found and did."""

    freed_bodies: int = 0
    repaired_refs: int = 0
    orphan_files: int = 0
    freed_bytes: int = 0


class Upload:
    """One body being streamed into GridFS (blocking methods; run in a worker thread).

    Chunks are written one by one as they fill (pymongo's GridIn buffers 32 MB
    before writing, which would break the memory bound of a streaming ingest).
    The layout is GridFS's own, so GridFS tools and ``GridFSBucket`` read it. The
    files document is written first (as pending) so that an upload interrupted by
    a crash is a file that ``sweep`` finds and deletes with its chunks.
    """

    def __init__(self, bodies: Bodies, offset: int) -> None:
        self.bodies = bodies
        self.offset = offset
        self.file_id = ObjectId()
        self.size = 0
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._n = 0
        bodies.files.insert_one({
            "_id": self.file_id, "length": 0, "chunkSize": CHUNK_SIZE,
            "uploadDate": now(), "filename": "body", "metadata": {"pending": True},
        })

    def write(self, data: bytes) -> None:
        """Append bytes to the body."""
        self._hash.update(data)
        self.size += len(data)
        # Whole chunks go out straight from ``data``; only the remainder is kept, in
        # a buffer never larger than a chunk (many uploads at once each hold one).
        view = memoryview(data)
        if self._buffer:
            need = CHUNK_SIZE - len(self._buffer)
            self._buffer += view[:need]
            view = view[need:]
            if len(self._buffer) < CHUNK_SIZE:
                return
            self._put(bytes(self._buffer))
            self._buffer = bytearray()
        while len(view) >= CHUNK_SIZE:
            self._put(bytes(view[:CHUNK_SIZE]))
            view = view[CHUNK_SIZE:]
        if len(view):
            self._buffer = bytearray(view)

    def _put(self, data: bytes) -> None:
        self.bodies.chunks.insert_one({"files_id": self.file_id, "n": self._n, "data": data})
        self._n += 1

    def finish(self) -> tuple[str, ObjectId]:
        """Close the file and register it; returns (sha256, id of the file kept).

        The caller now holds one reference to the body.
        """
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        self.bodies.files.update_one(
            {"_id": self.file_id}, {"$set": {"length": self.size, "metadata": {}}}
        )
        sha = self._hash.hexdigest()
        return sha, self.bodies.register(sha, self.file_id, self.size)

    def abort(self) -> None:
        """Discard what was uploaded."""
        self.bodies.delete_file(self.file_id)


class Bodies:
    """The content-addressed body store (blocking methods; callers use Database.run)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _coll(self) -> Any:
        return self._database.collection(schema.BODIES)

    @property
    def files(self) -> Any:
        """The GridFS files collection."""
        return self._database.collection(f"{schema.ATTACHMENTS}.files")

    @property
    def chunks(self) -> Any:
        """The GridFS chunks collection."""
        return self._database.collection(f"{schema.ATTACHMENTS}.chunks")

    def upload(self, offset: int) -> Upload:
        """Start streaming a body that begins at ``offset`` of its message."""
        return Upload(self, offset)

    def register(self, sha: str, file_id: ObjectId, size: int) -> ObjectId:
        """Record an uploaded file under its hash, holding one reference.

        Returns the file that now backs ``sha``: ours, or the one already there
        (then ours is deleted: deduplication).
        """
        for _ in range(3):
            try:
                doc = upsert_returning(
                    self._coll, {"_id": sha},
                    {"$inc": {"refs": 1}, "$set": {"touched": now()},
                     "$setOnInsert": {"file": file_id, "size": size, "created": now()}})
            except pymongo.errors.DuplicateKeyError:
                continue  # a concurrent upsert of the same hash won; try again
            kept: ObjectId = doc["file"]
            if kept != file_id:
                self.delete_file(file_id)
            return kept
        raise RuntimeError("could not register body")  # pragma: no cover

    def claim(self, sha: str) -> ObjectId | None:
        """One more reference to the body with this hash, if it is stored: the file
        that backs it (the caller now holds the reference), or None. A whole message
        in memory (APPEND) asks this before uploading a body: a known attachment
        then costs one round trip, not an upload and its deletion. (Against a
        concurrent last ``drop_refs``: the increment either comes first, and the
        guarded delete leaves the body, or finds nothing, and the caller uploads.)"""
        doc = self._coll.find_one_and_update(
            {"_id": sha}, {"$inc": {"refs": 1}, "$set": {"touched": now()}},
            projection={"file": 1}, return_document=ReturnDocument.AFTER)
        return None if doc is None else doc["file"]

    def add_refs(self, counts: Counter[str], session: Any = None) -> set[str]:
        """Add references (sha -> how many); returns the hashes that no longer exist.

        References to the hashes that do exist are kept, the caller undoes them
        (``drop_refs``) if it gives up.
        """
        missing: set[str] = set()
        for n, shas in _by_count(counts).items():
            result = self._coll.update_many(
                {"_id": {"$in": shas}}, {"$inc": {"refs": n}, "$set": {"touched": now()}},
                session=session,
            )
            if result.matched_count != len(shas):
                found = {d["_id"] for d in self._coll.find({"_id": {"$in": shas}}, {"_id": 1},
                                                           session=session)}
                missing |= set(shas) - found
        return missing

    def drop_refs(self, counts: Counter[str]) -> int:
        """Drop references and free bodies nobody references any more; bytes freed."""
        if not counts:
            return 0
        for n, shas in _by_count(counts).items():
            self._coll.update_many(
                {"_id": {"$in": shas}}, {"$inc": {"refs": -n}, "$set": {"touched": now()}}
            )
        freed = 0
        for doc in self._coll.find({"_id": {"$in": list(counts)}, "refs": {"$lte": 0}}):
            freed += self._free(doc, {"_id": doc["_id"], "refs": {"$lte": 0}})
        return freed

    def _free(self, doc: dict[str, Any], guard: dict[str, Any]) -> int:
        # The guard makes the delete lose against a concurrent new reference.
        if self._coll.delete_one(guard).deleted_count:
            self.delete_file(doc["file"])
            return int(doc.get("size", 0))
        return 0

    def delete_file(self, file_id: ObjectId) -> None:
        """Delete a GridFS file and its chunks (missing is fine). Chunks go first."""
        self.chunks.delete_many({"files_id": file_id})
        self.files.delete_one({"_id": file_id})

    def read(self, file_id: str | ObjectId, start: int, end: int,
             chunk_size: int = CHUNK_SIZE) -> bytes:
        """Bytes ``[start, end)`` of a body: one query for exactly the chunks covered."""
        if end <= start:
            return b""
        first, last = start // chunk_size, (end - 1) // chunk_size
        docs = list(self.chunks.find(
            {"files_id": ObjectId(file_id), "n": {"$gte": first, "$lte": last}},
            {"_id": 0, "n": 1, "data": 1},
        ).sort("n", 1))
        if [d["n"] for d in docs] != list(range(first, last + 1)):
            raise NotFound("message body no longer exists")
        data = b"".join(d["data"] for d in docs)
        lo = start - first * chunk_size
        out = data[lo:lo + end - start]
        if len(out) != end - start:
            raise NotFound("message body is incomplete")
        return out

    def sweep(self, grace: dt.timedelta = SWEEP_GRACE) -> SweepReport:
        """Repair reference counts and free what nothing references (blocking; the
        whole sweep: ``sweep_bodies`` and ``sweep_files`` a page at a time).

        Only bodies and files untouched for ``grace`` are considered, so in-flight
        ingests and deliveries (which touch what they reference) are never raced.
        """
        report = SweepReport()
        cutoff = now() - grace
        bodies = self.body_pages()
        while self.sweep_bodies(report, cutoff, bodies):
            pass
        files = self.file_pages()
        while self.sweep_files(report, cutoff, files):
            pass
        return report

    def body_pages(self) -> Pages:
        """Every body document, a sweep page at a time."""
        return pages(self._coll, {}, None, SWEEP_PAGE)

    def file_pages(self) -> Pages:
        """Every GridFS file document, a sweep page at a time."""
        return pages(self.files, {}, {"_id": 1, "length": 1, "uploadDate": 1}, SWEEP_PAGE)

    def references(self, shas: list[str]) -> Counter[str]:
        """How many documents reference each of ``shas`` (messages and archive).

        A message moves between the two collections (archived, restored) without
        changing its body's count, so both are counted in one snapshot (a read-only
        transaction) where there are transactions: counted one after the other, a
        move between the two reads could hide it from both. Without transactions the
        messages are counted before and after the archive and the larger count kept
        (a single move then shows in one of the three reads).
        """

        def count(collection: str, session: Any = None) -> Counter[str]:
            found: Counter[str] = Counter()
            for row in self._database.collection(collection).aggregate([
                {"$match": {"bodies": {"$in": shas}}},
                {"$project": {"_id": 0, "bodies": 1}},
                {"$unwind": "$bodies"},
                {"$match": {"bodies": {"$in": shas}}},
                {"$group": {"_id": "$bodies", "n": {"$sum": 1}}},
            ], session=session):
                found[row["_id"]] = int(row["n"])
            return found

        if self._database.transactions:
            return self._database.in_transaction(
                lambda session: sum((count(c, session) for c in REFERRERS), Counter()))
        first = count(schema.MESSAGES)
        archived = count(schema.ARCHIVE)
        again = count(schema.MESSAGES)
        return (first | again) + archived

    def sweep_bodies(self, report: SweepReport, cutoff: dt.datetime, bodies: Pages) -> bool:
        """The next page of ``body_pages``: of its bodies untouched since ``cutoff``,
        recount the references, repair or free; False when there was none left.
        Blocking."""
        docs = bodies.next_page()
        if docs is None:
            return False
        old = [d for d in docs if _utc(d["touched"]) <= cutoff]
        counted = self.references([d["_id"] for d in old]) if old else Counter()
        for doc in old:
            actual = counted[doc["_id"]]
            guard = {"_id": doc["_id"], "refs": doc["refs"], "touched": doc["touched"]}
            if actual == 0:
                freed = self._free(doc, guard)
                if freed or doc.get("size") == 0:
                    report.freed_bodies += 1
                    report.freed_bytes += freed
            elif actual != doc["refs"]:
                # Only ever repairs a leak (refs too high); refs below the count
                # would be a bug, and is repaired the same way rather than freed.
                result = self._coll.update_one(guard, {"$set": {"refs": actual}})
                report.repaired_refs += result.modified_count
        return True

    def sweep_files(self, report: SweepReport, cutoff: dt.datetime, files: Pages) -> bool:
        """The next page of ``file_pages``: delete the files no body names (uploads a
        crash interrupted); False when there was none left. Blocking."""
        batch = files.next_page()
        if batch is None:
            return False
        old = [f for f in batch if _utc(f["uploadDate"]) <= cutoff]
        ids = [f["_id"] for f in old]
        known = {d["file"] for d in self._coll.find({"file": {"$in": ids}}, {"file": 1})}
        for f in old:
            if f["_id"] not in known:
                self.delete_file(f["_id"])
                report.orphan_files += 1
                report.freed_bytes += int(f.get("length", 0))
        return True

    def statistics(self) -> dict[str, int]:
        """Count and total size of stored bodies (blocking)."""
        docs = list(self._coll.aggregate(
            [{"$group": {"_id": None, "n": {"$sum": 1}, "bytes": {"$sum": "$size"},
                         "refs": {"$sum": "$refs"}}}]
        ))
        if not docs:
            return {"bodies": 0, "bytes": 0, "refs": 0}
        return {"bodies": docs[0]["n"], "bytes": docs[0]["bytes"], "refs": docs[0]["refs"]}


def _by_count(counts: Counter[str]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for sha, n in counts.items():
        if n:
            groups.setdefault(n, []).append(sha)
    return groups


def _utc(value: dt.datetime) -> dt.datetime:
    # Clients made without tz_aware hand back naive UTC datetimes.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
