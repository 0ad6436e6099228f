"""The record cache (duck/store/index/cache.py): what never changes of a message is
read from the database once; what changes (flags, modseqs) and existence never come
from it; it stays under its cap."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from store_samples import multipart_message, simple_message

from duck.store import Delivered, DeliveryTarget, NotFound, Store, User, metrics
from duck.store.index.cache import IMMUTABLE, RecordCache

pytestmark = pytest.mark.store

FIELDS = ["size", "internal_date", "envelope", "structure", "headers", "content"]
#: Every field the cache keeps.
ALL = sorted(IMMUTABLE)


async def _appended(store: Store, user: User, n: int) -> tuple[str, list[int]]:
    box = await store.mailboxes.get(user.id, "INBOX")
    uids = [(await store.messages.append(user.id, "INBOX", simple_message(subject=f"s{i}")))
            .uid for i in range(n)]
    return box.id, uids


async def test_a_second_fetch_is_answered_without_a_query(store: Store, user: User) -> None:
    box, uids = await _appended(store, user, 5)
    store.messages.cache.clear()
    with metrics.command_scope("first") as first:
        read = await store.messages.fetch(box, uids, FIELDS)
    with metrics.command_scope("second") as second:
        again = await store.messages.fetch(box, uids, FIELDS)
    # (Two: the message documents, then their contents' bytes: index/contents.py.)
    assert first.round_trips == 2 and second.round_trips == 0
    assert again == read and [r.uid for r in again] == uids
    assert [await store.messages.read(r) for r in again] == [
        await store.messages.read(r) for r in read]
    # A subset of what was read is a hit too; a field not yet read is a query for
    # the missing messages only, and the answer has both.
    with metrics.command_scope("subset") as subset:
        assert [r.size for r in await store.messages.fetch(box, uids[1:3], ["size"])] == [
            r.size for r in read[1:3]]
    assert subset.round_trips == 0
    with metrics.command_scope("more") as more:
        mixed = await store.messages.fetch(box, uids, ["size", "emailid"])
    assert more.round_trips == 1
    assert all(r.emailid and r.size for r in mixed)
    assert len(store.messages.cache) == 5 and store.messages.cache.hits > 0


async def test_flags_modseqs_and_existence_come_from_the_database(store: Store,
                                                                  user: User) -> None:
    box, uids = await _appended(store, user, 3)
    await store.messages.fetch(box, uids, FIELDS)
    await store.messages.store_flags(box, [uids[0]], "add", ["\\Flagged"])
    (rec,) = await store.messages.fetch(box, [uids[0]], ["flags", "modseq", "size"])
    assert rec.flags is not None and "\\Flagged" in rec.flags
    await store.messages.store_flags(box, [uids[1]], "add", ["\\Deleted"])
    assert await store.messages.expunge(box) == [uids[1]]
    # No field asked: an existence check, answered by the database.
    assert [r.uid for r in await store.messages.fetch(box, uids, [])] == [uids[0], uids[2]]
    assert [r.uid for r in await store.messages.fetch(box, uids, ["flags"])] == [
        uids[0], uids[2]]


async def test_a_freed_body_read_through_a_cached_record_is_not_found(
        store: Store, user: User) -> None:
    big = os.urandom(100_000).hex().encode()  # above the inline threshold: GridFS
    store.set_archive_days(0)  # the expunge frees the body at once
    box = await store.mailboxes.get(user.id, "INBOX")
    uid = (await store.messages.append(user.id, "INBOX", multipart_message(big, "m"))).uid
    (rec,) = await store.messages.fetch(box.id, [uid], ["structure", "content"])
    assert any(s.file_id for s in rec.segments or ())
    await store.messages.store_flags(box.id, [uid], "add", ["\\Deleted"])
    assert await store.messages.expunge(box.id) == [uid]
    with metrics.command_scope("again") as again:
        (cached,) = await store.messages.fetch(box.id, [uid], ["structure", "content"])
    assert again.round_trips == 0 and cached.segments == rec.segments
    # The header is inline; the attachment's body was freed with the last reference.
    assert (await store.messages.read(cached, 0, 50)).startswith(b"From: ")
    with pytest.raises(NotFound):
        await store.messages.read(cached)


async def test_the_cache_stays_under_its_cap(store: Store, user: User) -> None:
    box, uids = await _appended(store, user, 40)
    small = RecordCache(max_bytes=20_000)
    records = await store.messages.fetch(box, uids, FIELDS)
    small.add(records, frozenset(FIELDS), frozenset())
    assert 0 < len(small) < 40 and small.size <= 20_000
    # The most recent stay.
    found, missing = small.lookup(box, uids, frozenset(FIELDS), frozenset())
    assert missing == uids[: len(missing)] and sorted(found) == uids[len(missing):]
    off = RecordCache(max_bytes=0)
    off.add(records, frozenset(FIELDS), frozenset())
    assert len(off) == 0


async def test_batches_merge_cached_and_read_records_in_uid_order(store: Store,
                                                                  user: User) -> None:
    box, uids = await _appended(store, user, 30)
    store.messages.cache.clear()
    await store.messages.fetch(box, uids[::2], ["size"])  # every other one cached
    got = [r async for b in store.messages.fetch_batches(box, uids, ["size"]) for r in b]
    assert [r.uid for r in got] == uids and all(r.size for r in got)


#: Messages of several shapes: MIME parts, a body in GridFS, encoded words and
#: an address group, no Date: header, a bare body.
DELIVERED = [
    multipart_message(os.urandom(300_000)),
    simple_message(subject="=?utf-8?q?caf=C3=A9?= \u00fcber", body="x" * 5000 + "\r\n"),
    (b"From: a@example.com\r\nTo: undisclosed:;\r\nSubject: no date\r\n"
     b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>\r\n"),
    b"\r\nno header at all\r\n",
]


@pytest.mark.parametrize("message", range(len(DELIVERED)))
@pytest.mark.parametrize("when", [
    dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-7))),
    dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    None,
])
async def test_a_delivered_copy_is_cached_as_a_read_would_give_it(
        store: Store, user: User, message: int, when: dt.datetime | None) -> None:
    """APPEND and LMTP delivery put the stored copy's immutable facts in the cache:
    the FETCH that follows a delivery asks the database nothing, and what it answers
    equals what the database gives (dates at BSON's millisecond precision, in UTC)."""
    store.messages.register_renderer("probe", lambda m: b"rendered")
    box = await store.mailboxes.get(user.id, "INBOX")
    appended = await store.messages.append(user.id, "INBOX", DELIVERED[message],
                                           internal_date=when)
    with metrics.command_scope("after append") as scope:
        (cached,) = await store.messages.fetch(box.id, [appended.uid], ALL, ["probe"])
    assert scope.round_trips == 0
    store.messages.cache.clear()
    (read,) = await store.messages.fetch(box.id, [appended.uid], ALL, ["probe"])
    assert cached == read
    assert cached.renderings == {"probe": b"rendered"}
    assert await store.messages.read(cached) == await store.messages.read(read)


@pytest.mark.parametrize("message", range(len(DELIVERED)))
async def test_a_copy_delivered_with_a_prepend_is_cached_as_a_read_would_give_it(
        store: Store, user: User, message: int) -> None:
    """An LMTP delivery's copies, each with its own prepended lines (its part tree's
    offsets moved by them), are cached as the database gives them back."""
    store.messages.register_renderer("probe", lambda m: b"rendered")
    ingest = store.messages.ingest()
    await ingest.write(DELIVERED[message])
    ingested = await ingest.finish()
    prepends = [b"Delivered-To: a@example.com\r\n",
                b"Return-Path: <x@example.org>\r\nDelivered-To: bb@example.com\r\n"]
    targets = [DeliveryTarget(user.id, path, prepend=p)
               for path, p in zip(["INBOX", "Other"], prepends, strict=True)]
    await store.mailboxes.create(user.id, "Other")
    results = await store.messages.deliver(ingested, targets)
    cached = []
    for done in results:
        assert isinstance(done, Delivered)
        with metrics.command_scope("after delivery") as scope:
            cached += await store.messages.fetch(done.mailbox_id, [done.uid], ALL, ["probe"])
        assert scope.round_trips == 0
    store.messages.cache.clear()
    for done, record, prepend in zip(results, cached, prepends, strict=True):
        assert isinstance(done, Delivered)
        (read,) = await store.messages.fetch(done.mailbox_id, [done.uid], ALL, ["probe"])
        assert record == read
        assert record.structure is not None and record.structure.header_end > len(prepend)
        assert (await store.messages.read(record)).startswith(prepend)
