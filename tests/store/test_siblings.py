"""The workers of one ``duck serve --workers N`` tell each other their journal
entries (duck/store/push/siblings.py): the parent's hub forwards each worker's
frames to every other, a queue that overflows is replaced by a LOST frame, and the
marks tell any worker at once what another committed, before its entries come."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from bson import ObjectId
from bson.codec_options import CodecOptions

from duck.store import Notifier, Store, User, mailbox_key
from duck.store.push import siblings
from duck.store.push.siblings import BATCH, Hub, Link, Marks

pytestmark = pytest.mark.store

MESSAGE = b"Subject: x\r\n\r\nx\r\n"
CODEC: CodecOptions[Any] = CodecOptions(tz_aware=True)


def test_marks_are_shared_by_the_rows_and_a_slot_keeps_its_highest() -> None:
    fd = Marks.create(2)
    first, second = Marks(fd, 2, 0), Marks(fd, 2, 1)
    try:
        mailbox, elsewhere = str(ObjectId()), str(ObjectId())
        assert first.high(mailbox) == 0
        first.raise_to(mailbox, 5)
        first.raise_to(mailbox, 3)  # (never lowered)
        assert second.high(mailbox) == 5
        second.raise_to(mailbox, 4)
        assert first.high(mailbox) == 5
        second.raise_to(mailbox, 9)
        assert first.high(mailbox) == 9 and second.high(mailbox) == 9
        assert first.high(elsewhere) == 0
        with pytest.raises(ValueError):
            Marks(fd, 2, 2)
    finally:
        first.close()
        second.close()


def test_a_mailbox_has_one_slot_in_every_process() -> None:
    # (A worker's mark must be found by the others, whatever their hash seed.)
    code = "from duck.store.push.siblings import _slot; print(_slot('not-an-objectid'))"
    slots = {subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
             for seed in ("1", "2", "3")}
    assert len(slots) == 1, slots


async def _linked(hub: Hub, index: int, nursery: trio.Nursery, marks: Marks | None = None,
                  serve: bool = True) -> Link:
    mine, fd = Hub.pair()
    if serve:
        nursery.start_soon(hub.serve, index, mine)
    return Link(fd, marks)


async def test_the_hub_forwards_a_workers_entries_to_every_other_in_order(
        nursery: trio.Nursery) -> None:
    hub = Hub()
    got: dict[int, list[list[dict[str, Any]] | None]] = {1: [], 2: [], 3: []}
    links = {}
    for index in got:
        links[index] = await _linked(hub, index, nursery)

        async def take(docs: list[dict[str, Any]] | None, index: int = index) -> None:
            got[index].append(docs)

        nursery.start_soon(links[index].run, take, CODEC)
    await trio.testing.wait_all_tasks_blocked()
    at = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
    docs = [{"mailbox": ObjectId(), "modseq": n, "kind": "flags", "flags": ["\\Seen"], "at": at}
            for n in range(1, BATCH + 6)]
    links[1].send(docs)
    with trio.fail_after(10):
        while sum(len(b or ()) for b in got[2]) < len(docs) or sum(
                len(b or ()) for b in got[3]) < len(docs):
            await trio.sleep(0.01)
    await trio.testing.wait_all_tasks_blocked()
    assert got[1] == []  # (not back to its sender)
    for index in (2, 3):
        assert len(got[index]) == 2  # (cut into frames of BATCH entries)
        assert [d for batch in got[index] for d in batch or ()] == docs
    assert links[2].received == len(docs) and links[1].sent == len(docs)


async def test_a_queue_that_overflows_becomes_a_lost_frame(
        nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(siblings, "QUEUE_BYTES", 4096)
    hub = Hub()
    sender = await _linked(hub, 1, nursery)
    slow = await _linked(hub, 2, nursery)
    nursery.start_soon(sender.run, _ignore, CODEC)
    # The slow worker reads nothing yet: the hub's queue for it overflows once
    # the socket's buffer is full.
    for n in range(1, 3001):
        sender.send([{"mailbox": ObjectId(), "modseq": n, "pad": "x" * 1000}])
        await trio.sleep(0)
    await trio.testing.wait_all_tasks_blocked()
    got: list[list[dict[str, Any]] | None] = []

    async def take(docs: list[dict[str, Any]] | None) -> None:
        got.append(docs)

    nursery.start_soon(slow.run, take, CODEC)
    with trio.fail_after(10):
        while None not in got:
            await trio.sleep(0.01)
    assert slow.lost >= 1
    received = [d["modseq"] for batch in got if batch is not None for d in batch]
    assert 0 < len(received) < 3000
    assert received == sorted(received)


async def _ignore(docs: list[dict[str, Any]] | None) -> None:
    pass


@asynccontextmanager
async def _two_workers(store: Store, mongo_uri: str, db_name: str, nursery: trio.Nursery,
                       local_notifier: Callable[..., Awaitable[Notifier]], *,
                       feed_second: bool = True) -> AsyncIterator[tuple[Notifier, Notifier, Store]]:
    """The store's notifier and another store's on its database, as two workers
    (rows 0 and 1 of one marks file); ``feed_second=False``: the hub never serves
    the second's feed, only the marks can tell it."""
    hub, fd = Hub(), Marks.create(2)
    other = await Store.open(mongo_uri, db_name)
    try:
        first = await local_notifier(
            store, siblings=await _linked(hub, 1, nursery, Marks(fd, 2, 0)))
        second = await local_notifier(
            other, siblings=await _linked(hub, 2, nursery, Marks(fd, 2, 1), serve=feed_second))
        yield first, second, other
    finally:
        await other.aclose()


async def test_another_workers_commit_is_known_before_its_entries_come(
        store: Store, user: User, mongo_uri: str, db_name: str,
        nursery: trio.Nursery, local_notifier: Callable[..., Awaitable[Notifier]]) -> None:
    async with _two_workers(store, mongo_uri, db_name, nursery, local_notifier,
                            feed_second=False) as (writer, reader, other):
        inbox = await other.mailboxes.get(user.id, "INBOX")
        assert reader.knows_every_change(inbox.id, inbox.highest_modseq)
        done = await store.messages.append(user.id, "INBOX", MESSAGE)
        assert not reader.knows_every_change(inbox.id, inbox.highest_modseq)
        assert reader.knows_every_change(inbox.id, done.modseq)
        assert reader.known_high(inbox.id) == done.modseq
        assert writer.knows_every_change(inbox.id, done.modseq)


async def test_another_workers_entries_wake_and_answer_the_sessions_here(
        store: Store, user: User, mongo_uri: str, db_name: str,
        nursery: trio.Nursery, local_notifier: Callable[..., Awaitable[Notifier]]) -> None:
    async with _two_workers(store, mongo_uri, db_name, nursery, local_notifier) as (
            _, reader, other):
        inbox = await other.mailboxes.get(user.id, "INBOX")
        sub = reader.subscribe(mailbox_key(inbox.id))
        reads = other.journal.reads
        with trio.fail_after(10):
            done = await store.messages.append(user.id, "INBOX", MESSAGE)
            while not sub.behind(done.modseq - 1):
                await trio.sleep(0.01)
            entries = await other.journal.changes_since(
                inbox.id, inbox.highest_modseq, reaching=sub.announced())
        assert [(e.kind, e.uid) for e in entries] == [("exists", done.uid)]
        # Answered by the entries the feed brought, without a read of the database.
        assert other.journal.reads == reads
        # Entries lost on the way wake every session to read for itself.
        sub.clear()
        await reader._from_siblings(None)
        assert sub.pending() and sub.announced() is None
        sub.close()
