"""The digest build in the background (issue 19): start-up does not wait for it,
readers use the messages meanwhile, and a message expunged during the build leaves
no entry behind."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from bson import ObjectId
from store_samples import simple_message

from duck.store import Store, User
from duck.store import query as q
from duck.store.engine import schema
from duck.store.index import digest

pytestmark = pytest.mark.store


def _entries(store: Store, mailbox: str) -> set[int]:
    docs = store.database.collection(digest.COLLECTION).find(
        {"mailbox": ObjectId(mailbox), "k": digest.META})
    return {int(k) for d in docs for k in (d.get("m") or {})}


def _live(store: Store, mailbox: str) -> set[int]:
    docs = store.database.collection(schema.MESSAGES).find(
        {"mailbox": ObjectId(mailbox)}, {"uid": 1})
    return {int(d["uid"]) for d in docs}


def _strip(store: Store, layout: Any) -> None:
    """The digest as a server of an older layout (or none) left it."""
    store.database.collection(digest.COLLECTION).delete_many({})
    update = {"$unset": {"dg": ""}} if layout is None else {"$set": {"dg": layout}}
    store.database.collection(schema.MAILBOXES).update_many({}, update)
    if layout is not None:  # a document of that layout, which must not be read
        inbox = store.database.collection(schema.MAILBOXES).find_one({"path": "INBOX"})
        store.database.collection(digest.COLLECTION).insert_one(
            {"mailbox": inbox["_id"], "k": digest.META, "c": 0, "L": -1,
             "m": {"1": "old"}, "f": {"1": ["\\Deleted"]}, "q": {"1": 1}})


@pytest.mark.parametrize("layout", [None, digest.VERSION - 1])
async def test_readers_use_the_messages_while_the_digest_is_built(
        store: Store, user: User, mongo_uri: str, layout: Any) -> None:
    for i in range(140):  # three chunks; enough for FETCH's digest path
        await store.messages.append(user.id, "INBOX", simple_message(subject=f"s{i}"),
                                    ["\\Seen"] if i % 2 else [])
    await store.database.run(_strip, store, layout)
    other = await Store.open(mongo_uri, store.database.name, digest_in_background=True)
    try:
        inbox = await other.mailboxes.get(user.id, "INBOX")
        assert ObjectId(inbox.id) in other.database.digest_pending
        # Every reader answers from the messages meanwhile.
        view = await other.messages.view(inbox.id, inbox)
        assert [m.uid for m in view] == list(range(1, 141)) and "\\Deleted" not in view[0].flags
        assert await other.messages.search(inbox.id, q.Subject("s139")) == [140]
        assert len(await other.messages.search(inbox.id, q.Flag("\\Seen", False))) == 70
        assert await other.messages.count_recent(inbox) == 140
        records = await other.messages.fetch(inbox.id, range(1, 141), ["size"])
        assert [r.uid for r in records] == list(range(1, 141))

        # The build goes on beside writes: an expunge and a delivery between steps.
        build = other.maintenance
        build.pause = 0
        steps = 0
        after: int | None = 0
        box = ObjectId(inbox.id)
        while after is not None:
            after = await other.database.run(digest.build_step, other.database, box,
                                             after, 50)
            steps += 1
            if steps == 1:
                await other.messages.store_flags(inbox.id, [10, 120], "add", ["\\Deleted"])
                assert await other.messages.expunge(inbox.id) == [10, 120]
                await other.messages.append(user.id, "INBOX", simple_message(subject="new"))
        assert steps >= 3
        assert box not in other.database.digest_pending
        live = await other.database.run(_live, other, inbox.id)
        assert await other.database.run(_entries, other, inbox.id) == live
        assert 10 not in live and 120 not in live and 141 in live
        # Read from the digest again: the same answers.
        assert await other.messages.search(inbox.id, q.Subject("new")) == [141]
        fresh = await other.mailboxes.get(user.id, "INBOX")
        assert [m.uid for m in await other.messages.view(inbox.id, fresh)] == sorted(live)
    finally:
        await other.aclose()


async def test_build_digests_finishes_and_a_second_process_waits(
        store: Store, user: User, mongo_uri: str) -> None:
    for i in range(5):
        await store.messages.append(user.id, "Drafts", simple_message(subject=f"d{i}"))
    await store.database.run(_strip, store, None)
    a = await Store.open(mongo_uri, store.database.name, digest_in_background=True)
    b = await Store.open(mongo_uri, store.database.name, digest_in_background=True)
    try:
        assert len(a.database.digest_pending) == len(b.database.digest_pending) == 6
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.maintenance.build_digests)
                nursery.start_soon(b.maintenance.build_digests)
        assert not a.database.digest_pending and not b.database.digest_pending
        drafts = await store.mailboxes.get(user.id, "Drafts")
        assert await store.database.run(_entries, store, drafts.id) == {1, 2, 3, 4, 5}
        dg = await store.database.run(
            lambda: {d["dg"] for d in store.database.collection(schema.MAILBOXES).find()})
        assert dg == {digest.VERSION}
    finally:
        await a.aclose()
        await b.aclose()
