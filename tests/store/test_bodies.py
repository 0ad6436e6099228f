"""Deduplicated bodies: refcounts, freeing, sweep, aborted ingests, ranged reads."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from typing import Any

import pymongo
import pytest
import trio
from bson import ObjectId
from store_samples import multipart_message, simple_message

from duck.mime.sections import SectionSpec, filter_header_fields
from duck.store import DeliveryTarget, NotFound, Store, User, metrics
from duck.store.engine import schema
from duck.store.engine.bodies import Bodies
from duck.store.engine.upsert import upsert_returning
from duck.store.index import reader
from duck.store.mail import ingest as ingest_module
from duck.store.models import Delivered

pytestmark = pytest.mark.store

ATTACHMENT = os.urandom(300_000).hex().encode()  # 600 KB, above the 64 KB threshold


async def _count(store: Store, collection: str, query: dict[str, Any] | None = None) -> int:
    coll = store.database.collection(collection)
    return int(await store.database.run(coll.count_documents, query or {}))


async def _gridfs(store: Store) -> tuple[int, int, int]:
    return (await _count(store, "bodies"), await _count(store, "attachments.files"),
            await _count(store, "attachments.chunks"))


async def test_same_attachment_stored_once_and_freed(store: Store, user: User) -> None:
    store.set_archive_days(0)  # freed at once (the archive's own tests: test_archive.py)
    for i in range(5):
        await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT, f"m{i}"))
    bodies, files, chunks = await _gridfs(store)
    assert (bodies, files) == (1, 1) and chunks == 1  # 600 KB < one 1 MB chunk
    doc = await store.database.run(store.database.collection("bodies").find_one, {})
    assert doc["refs"] == 5 and doc["size"] == len(ATTACHMENT)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.copy(inbox.id, [1, 2], user.id, "Archive")
    doc = await store.database.run(store.database.collection("bodies").find_one, {})
    assert doc["refs"] == 7
    await store.messages.store_flags(inbox.id, range(1, 6), "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    assert await _gridfs(store) == (1, 1, 1)
    await store.mailboxes.delete(user.id, "Archive")
    assert await _gridfs(store) == (0, 0, 0)


def _in_threads(work: Callable[[], None], n: int) -> None:
    """``work`` in ``n`` threads at once; returns when every one has ended."""
    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


async def test_racing_registrations_of_one_hash_keep_one_file(store: Store) -> None:
    """Uploads of one new body finished at once (sessions APPENDing the same new
    attachment) race to register its hash: each gets the one file kept, and the
    body holds a reference per upload. (The embedded engine answered some of the
    race's losers without a document, and their APPENDs failed: engine/upsert.py.)"""
    bodies = Bodies(store.database)
    kept: dict[str, set[ObjectId]] = {f"{i:064x}": set() for i in range(200)}

    def work() -> None:
        for sha in kept:
            kept[sha].add(bodies.register(sha, ObjectId(), 10))

    await trio.to_thread.run_sync(_in_threads, work, 8)
    assert all(len(files) == 1 for files in kept.values())
    docs = await store.database.run(
        lambda: list(store.database.collection("bodies").find({})))
    assert len(docs) == 200 and {d["refs"] for d in docs} == {8}


async def test_upsert_returning_gives_every_racer_the_document(store: Store) -> None:
    """Threads upserting the same missing documents at once each get the document
    back, and each update is applied once. (A client of its own: on the store's,
    already connected, the race was seldom run; on a new one 16 threads lost it
    0-40 times in 4,800 upserts without the helper.)"""
    host, port = store.database.client.address
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(f"mongodb://{host}:{port}")
    coll = client[store.database.db.name]["upsert_race"]
    got: list[int] = []

    def work() -> None:
        for i in range(300):
            doc = upsert_returning(coll, {"_id": i}, {"$inc": {"n": 1}})
            got.append(doc["n"])

    try:
        await trio.to_thread.run_sync(_in_threads, work, 16)
        assert len(got) == 4800 and min(got) >= 1
        assert sorted(d["n"] for d in coll.find({})) == [16] * 300
    finally:
        client.close()


async def test_append_of_a_stored_attachment_uploads_nothing(store: Store, user: User) -> None:
    """APPEND has the whole message: a body whose hash is stored gains a reference
    in one round trip, with no upload to delete afterwards."""
    store.set_archive_days(0)
    one = multipart_message(ATTACHMENT, "first")
    two = multipart_message(ATTACHMENT, "second", subject="another")  # same body
    three = multipart_message(ATTACHMENT[:200_000], "third")  # a new one
    await store.messages.append(user.id, "INBOX", one)
    metrics.reset()
    with metrics.command_scope("APPEND") as scope:
        again = await store.messages.append(user.id, "INBOX", one)
        await store.messages.append(user.id, "INBOX", two)
    writes = metrics.statistics()["APPEND"]["by_db_command"]
    assert "insert" not in writes and "delete" not in writes, writes
    assert scope.round_trips <= 2 * 3
    assert await _gridfs(store) == (1, 1, 1)
    await store.messages.append(user.id, "INBOX", three)
    assert await _gridfs(store) == (2, 2, 2)
    doc = await store.database.run(store.database.collection("bodies").find_one,
                                   {"size": len(ATTACHMENT)})
    assert doc["refs"] == 3
    inbox = await store.mailboxes.get(user.id, "INBOX")
    for uid, data in ((1, one), (again.uid, one), (again.uid + 1, two), (again.uid + 2, three)):
        (record,) = await store.messages.fetch(inbox.id, [uid], ["content"])
        assert await store.messages.read(record) == data
    await store.messages.store_flags(inbox.id, [1, 2, 3, 4], "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    assert await _gridfs(store) == (0, 0, 0)


async def test_a_streamed_delivery_of_a_stored_attachment_uploads_nothing(
        store: Store, user: User) -> None:
    """A delivery written in chunks (LMTP) that all arrive before a feed batch fills
    is handled whole at the end, as APPEND is: a stored body is claimed, not
    uploaded, found a duplicate and deleted."""
    attachment = ATTACHMENT[:100_000]  # above the 64 KB threshold, under FEED_BATCH
    data = multipart_message(attachment, "first")
    assert len(data) < ingest_module.FEED_BATCH

    async def delivered() -> None:
        ingest = store.messages.ingest()
        for start in range(0, len(data), 8192):
            await ingest.write(data[start:start + 8192])
        ingested = await ingest.finish()
        (result,) = await store.messages.deliver(ingested, [DeliveryTarget(user.id)])
        assert isinstance(result, Delivered)

    await delivered()
    assert await _gridfs(store) == (1, 1, 1)
    metrics.reset()
    with metrics.command_scope("LMTP"):
        await delivered()
        await delivered()
    writes = metrics.statistics()["LMTP"]["by_db_command"]
    assert "insert" not in writes and "delete" not in writes, writes
    assert await _gridfs(store) == (1, 1, 1)
    doc = await store.database.run(store.database.collection("bodies").find_one,
                                   {"size": len(attachment)})
    assert doc["refs"] == 3
    inbox = await store.mailboxes.get(user.id, "INBOX")
    for record in await store.messages.fetch(inbox.id, [1, 2, 3], ["content"]):
        assert await store.messages.read(record) == data


async def test_many_targets_one_body(store: Store, user: User) -> None:
    ingest = store.messages.ingest()
    await ingest.write(multipart_message(ATTACHMENT))
    ingested = await ingest.finish()
    targets = [DeliveryTarget(user.id, box) for box in ("INBOX", "Archive", "Junk")] * 4
    results = await store.messages.deliver(ingested, targets)
    assert all(isinstance(r, Delivered) for r in results)
    doc = await store.database.run(store.database.collection("bodies").find_one, {})
    assert doc["refs"] == 12
    assert await _gridfs(store) == (1, 1, 1)


async def test_abort_leaves_nothing(store: Store, user: User) -> None:
    ingest = store.messages.ingest()
    data = multipart_message(ATTACHMENT + ATTACHMENT[::-1])
    await ingest.write(data[: len(data) - 1000])  # first body done, second in flight
    await ingest.abort()
    assert await _gridfs(store) == (0, 0, 0)
    ingest = store.messages.ingest()
    await ingest.write(data)
    ingested = await ingest.finish()
    await store.messages.discard(ingested)
    assert await _gridfs(store) == (0, 0, 0)


async def test_failed_delivery_releases_body(store: Store, user: User) -> None:
    ingest = store.messages.ingest()
    await ingest.write(multipart_message(ATTACHMENT))
    ingested = await ingest.finish()
    (result,) = await store.messages.deliver(ingested, [DeliveryTarget(user.id, "Nope")])
    assert isinstance(result, NotFound)
    assert await _gridfs(store) == (0, 0, 0)


async def test_failed_append_releases_body(store: Store, user: User) -> None:
    # (The body is ingested before the user's lock and the transaction after it.)
    with pytest.raises(NotFound):
        await store.messages.append(user.id, "Nope", multipart_message(ATTACHMENT))
    assert await _gridfs(store) == (0, 0, 0)


async def test_header_read_never_touches_gridfs(store: Store, user: User) -> None:
    data = multipart_message(ATTACHMENT)
    await store.messages.append(user.id, "INBOX", data)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    (record,) = await store.messages.fetch(inbox.id, [1], ["content", "structure"])
    # Remove the GridFS data under the record: header and text parts must still read.
    await store.database.run(store.database.collection("attachments.chunks").delete_many, {})
    header = await store.messages.read_section(record, SectionSpec(text="HEADER"))
    assert header == data[: data.index(b"\r\n\r\n") + 4]
    assert await store.messages.read_section(record, SectionSpec(part=(1,))) == (
        b"See attached.\r\n")
    fields = await store.messages.read_section(
        record, SectionSpec(text="HEADER.FIELDS", fields=("subject",)))
    assert fields == b"Subject: report\r\n\r\n"
    with pytest.raises(NotFound):
        await store.messages.read_section(record, SectionSpec(part=(2,)))


async def test_partial_read_of_large_body(store: Store, user: User) -> None:
    big = os.urandom(1_500_000).hex().encode()  # 3 MB: spans three GridFS chunks
    data = multipart_message(big)
    await store.messages.append(user.id, "INBOX", data)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    (record,) = await store.messages.fetch(inbox.id, [1], ["content", "structure"])
    part = await store.messages.read_section(record, SectionSpec(part=(2,)), (2_500_000, 100))
    assert part == big[2_500_000:2_500_100]
    assert await store.messages.read_section(record, SectionSpec(part=(9,))) == b""


async def test_sweep_repairs_leaks_and_orphans(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    bodies = store.database.collection("bodies")
    # A crash between the reference increment and the insert leaves refs too high.
    await store.database.run(bodies.update_many, {}, {"$inc": {"refs": 3}})
    # A crash during an upload leaves a GridFS file no body names.
    upload = store.bodies.upload(0)
    await store.database.run(upload.write, b"orphan" * 300_000)  # two chunks written
    report = await store.sweep(grace=dt.timedelta(0))
    assert report.repaired_refs == 1 and report.orphan_files == 1
    doc = await store.database.run(bodies.find_one, {})
    assert doc["refs"] == 1
    # Recent bodies are left alone (in-flight deliveries).
    await store.database.run(bodies.update_many, {}, {"$inc": {"refs": 3},
                                                      "$set": {"touched": dt.datetime.now(dt.UTC)}})
    report = await store.sweep()
    assert report.repaired_refs == 0
    # Once the message is gone (here: behind the store's back) the body is freed.
    await store.database.run(store.database.collection("messages").delete_many, {})
    report = await store.sweep(grace=dt.timedelta(0))
    assert report.freed_bodies == 1 and report.freed_bytes == len(ATTACHMENT)
    assert await _gridfs(store) == (0, 0, 0)


async def test_header_fields_of_the_same_message_are_cut_once(store: Store,
                                                             user: User) -> None:
    """HEADER.FIELDS of a message asked again, with other names, answers from the
    block cut the first time (no read), byte for byte what a filter of the block
    gives, for the message's header and an attached message's alike; another
    message is another block."""
    inner = b"Subject: inner\r\nFrom: dan@example.com\r\n\r\nhi\r\n"
    data = (b"Subject: outer\r\nFrom: carol@example.com\r\n folded\r\nTo: alice@example.com\r\n"
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
            b"Content-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--B--\r\n")
    await store.messages.append(user.id, "INBOX", data)
    await store.messages.append(user.id, "INBOX", data.replace(b"outer", b"other"))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    first, second = await store.messages.fetch(inbox.id, [1, 2], ["content", "structure"])
    header = data[: data.index(b"\r\n\r\n") + 4]
    reader._SPLIT.clear()
    for names in (("subject",), ("FROM", "to"), ("absent",)):
        for negate in (False, True):
            spec = SectionSpec(text="HEADER.FIELDS.NOT" if negate else "HEADER.FIELDS",
                               fields=names)
            assert await store.messages.read_section(first, spec) == filter_header_fields(
                header, names, negate)
            nested = SectionSpec(part=(1,), text=spec.text, fields=names)
            assert await store.messages.read_section(first, nested) == filter_header_fields(
                inner[: inner.index(b"\r\n\r\n") + 4], names, negate)
    assert len(reader._SPLIT) == 2  # (the two blocks of the first message, cut once)
    spec = SectionSpec(text="HEADER.FIELDS", fields=("subject",))
    assert await store.messages.read_section(second, spec) == b"Subject: other\r\n\r\n"
    assert len(reader._SPLIT) == 3


async def test_reads_without_the_database_only_where_the_bytes_are_inline(
        store: Store, user: User) -> None:
    big = os.urandom(600_000).hex().encode()  # a body stored apart, in GridFS
    data = multipart_message(big)
    await store.messages.append(user.id, "INBOX", data)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    (record,) = await store.messages.fetch(inbox.id, [1], ["content", "structure"])
    header = data[: data.index(b"\r\n\r\n") + 4]
    messages = store.messages
    # The header (whole, cut to fields, or a window of it) is in the skeleton...
    assert messages.read_section_now(record, SectionSpec(text="HEADER")) == header
    assert messages.read_section_now(record, SectionSpec(text="HEADER"), (2, 5)) == header[2:7]
    fields = SectionSpec(text="HEADER.FIELDS", fields=("subject",))
    assert messages.read_section_now(record, fields) == await messages.read_section(
        record, fields)
    assert messages.read_now(record, 0, 20) == data[:20]
    # ...the attachment is not: the caller is told to read it the long way.
    assert messages.read_section_now(record, SectionSpec(part=(2,))) is None
    assert messages.read_now(record, 0, len(data)) is None
    part = await messages.read_section(record, SectionSpec(part=(2,)), (1000, 50))
    assert part == big[1000:1050]
    assert messages.read_section_now(record, SectionSpec(part=(9,))) == b""


async def test_only_messages_with_a_gridfs_body_have_an_entry_of_the_sweep_index(
        store: Store, user: User) -> None:
    """``bodies`` is left out of a message without a GridFS body and its index is
    sparse, so such a message (most) costs that index no entry; the sweep's count of
    references and the archive's purge still scan an index, not the collection (the
    embedded engine plans a range of ``_id`` as a collection scan unless hinted)."""
    big = await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    small = await store.messages.append(user.id, "INBOX", simple_message())
    messages = store.database.collection(schema.MESSAGES)
    docs = {d["uid"]: d for d in await store.database.run(lambda: list(messages.find({})))}
    assert "bodies" not in docs[small.uid] and len(docs[big.uid]["bodies"]) == 1
    (sha,) = docs[big.uid]["bodies"]
    assert await store.database.run(store.bodies.references, [sha]) == {sha: 1}
    db = store.database.db

    def explain(command: dict[str, Any]) -> str:
        return repr(db.command("explain", command))

    plan = await store.database.run_threaded(explain, {
        "aggregate": schema.MESSAGES, "cursor": {},
        "pipeline": [{"$match": {"bodies": {"$in": [sha]}}}]})
    assert "bodies_sparse" in plan and "COLLSCAN" not in plan
    filter_, hint = store.archive.expired_query()
    plan = await store.database.run_threaded(explain, {
        "find": schema.ARCHIVE, "filter": filter_, "hint": hint})
    assert "IXSCAN" in plan and "COLLSCAN" not in plan
