"""Background maintenance (issue 19): the crash-repair pass puts counters, quota and
body references right; one process at a time holds the pass; serving goes on."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
import trio
from bson import ObjectId
from store_samples import multipart_message, simple_message

from duck.store import Store, User
from duck.store.mail.mailboxes import record_purge
from duck.store.maintenance import LEASE_NAME, Maintenance

pytestmark = pytest.mark.store

ATTACHMENT = os.urandom(100_000).hex().encode()


def _coll(store: Store, name: str) -> Any:
    return store.database.collection(name)


async def _corrupt(store: Store, name: str, filter_: dict[str, Any],
                   update: dict[str, Any]) -> None:
    result = await store.database.run(_coll(store, name).update_many, filter_, update)
    assert result.modified_count >= 1


async def _fill(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", simple_message("a"), ["\\Seen"])
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    await store.messages.append(user.id, "Drafts", simple_message("c"))


async def test_repair_fixes_counters_quota_and_references(store: Store, user: User) -> None:
    await _fill(store, user)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    drafts = await store.mailboxes.get(user.id, "Drafts")
    used = (await store.quota(user.id))[0]
    oid = ObjectId(inbox.id)
    # What a crash between writes (or a bug) could leave behind.
    await _corrupt(store, "mailboxes", {"_id": oid},
                   {"$set": {"count": 7, "unseen": 0, "size": 1, "uid_next": 2, "modseq": 1}})
    await _corrupt(store, "mailboxes", {"_id": ObjectId(drafts.id)}, {"$inc": {"unseen": 3}})
    await _corrupt(store, "users", {"_id": ObjectId(user.id)},
                   {"$set": {"storage_used": used * 5}})
    await _corrupt(store, "bodies", {}, {"$inc": {"refs": 4}})

    maintenance = Maintenance(store)
    maintenance.sweep_grace = dt.timedelta(0)
    maintenance.pause = 0
    done = await maintenance.run_pass(repair=True)
    assert done.ran and done.repair is not None
    assert (done.repair.counters_fixed, done.repair.quota_fixed) == (2, 1)
    assert done.sweep.repaired_refs == 1

    fixed = await store.mailboxes.get(user.id, "INBOX")
    assert (fixed.message_count, fixed.unseen_count, fixed.size) == (
        inbox.message_count, inbox.unseen_count, inbox.size)
    # UIDNEXT and the modseq are back above every message's (never below where they were).
    assert fixed.uid_next == 3 and fixed.highest_modseq >= 3
    assert (await store.mailboxes.get(user.id, "Drafts")).unseen_count == 1
    assert (await store.quota(user.id))[0] == used
    body = await store.database.run(_coll(store, "bodies").find_one, {})
    assert body["refs"] == 1
    # The next delivery gets a fresh UID (no clash with the unique index).
    result = await store.messages.append(user.id, "INBOX", simple_message("d"))
    assert result.uid == 3
    # A second pass finds nothing to do.
    again = await maintenance.run_pass(repair=True)
    assert again.repair is not None
    assert (again.repair.counters_fixed, again.repair.quota_fixed) == (0, 0)
    assert again.repair.mailboxes == 6 and again.repair.users == 1


async def test_repair_counts_archived_references_and_frees_leaks(store: Store,
                                                                  user: User) -> None:
    """A body referenced only by an archived message is kept, with its count
    repaired; the references of a message a crash left out are freed."""
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    await _corrupt(store, "bodies", {}, {"$set": {"refs": 0}})  # (a bug: too low)
    maintenance = Maintenance(store)
    maintenance.sweep_grace = dt.timedelta(0)
    maintenance.pause = 0
    done = await maintenance.run_pass()
    assert done.sweep.repaired_refs == 1 and done.sweep.freed_bodies == 0
    body = await store.database.run(_coll(store, "bodies").find_one, {})
    assert body["refs"] == 1
    # Now the archived copy goes behind the store's back: the body is freed.
    await store.database.run(_coll(store, "archive").delete_many, {})
    done = await maintenance.run_pass()
    assert done.sweep.freed_bodies == 1
    assert await store.database.run(_coll(store, "attachments.files").count_documents, {}) == 0


async def test_repair_finishes_an_interrupted_mailbox_delete(store: Store, user: User) -> None:
    await store.mailboxes.create(user.id, "Old")
    await store.messages.append(user.id, "Old", multipart_message(ATTACHMENT))
    await store.messages.append(user.id, "Old", simple_message())
    box = await store.mailboxes.get(user.id, "Old")
    # A crash right after the DELETE's transaction: the mailbox document is gone
    # and the purge noted, its messages (and their quota) are still there.
    await store.database.run(_coll(store, "mailboxes").delete_one, {"_id": ObjectId(box.id)})
    await store.database.run(record_purge, store.database, ObjectId(box.id),
                             ObjectId(user.id), "Old")
    maintenance = Maintenance(store)
    maintenance.pause = 0
    done = await maintenance.run_pass(repair=True)
    assert done.repair is not None and done.repair.orphan_messages == 2
    assert await store.database.run(_coll(store, "messages").count_documents, {}) == 0
    assert (await store.quota(user.id))[0] == 0
    assert await store.archive.count(user.id) == 2
    items, _ = await store.archive.page(user.id)
    assert {i.path for i in items} == {"Old"}
    assert await store.database.run(_coll(store, "purges").count_documents, {}) == 0
    restored = await store.archive.restore(user.id, None)
    assert {r.path for r in restored} == {"INBOX"}  # (Old is gone)


async def test_purge_runs_in_the_pass(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    maintenance = Maintenance(store)
    maintenance.pause = 0
    assert (await maintenance.run_pass()).purged == 0
    start = store.archive.clock()
    store.archive.clock = lambda: start + dt.timedelta(days=15)
    done = await maintenance.run_pass()
    assert (done.purged, done.purged_bytes) == (1, len(ATTACHMENT))
    assert await store.database.run(_coll(store, "bodies").count_documents, {}) == 0


async def test_one_process_at_a_time(store: Store, user: User) -> None:
    await _fill(store, user)
    other = Maintenance(store)  # as another process would, through the database
    lease = await store.leases.acquire(LEASE_NAME, 60)
    assert not (await other.run_pass(repair=True)).ran
    await store.leases.release(lease)  # type: ignore[arg-type]
    assert (await other.run_pass(repair=True)).ran


async def test_serving_goes_on_during_the_pass(store: Store, user: User) -> None:
    """Deliveries made while the pass runs (a pause between its steps) are neither
    blocked nor counted wrong."""
    for i in range(3):
        await store.mailboxes.create(user.id, f"Box{i}")
    await _fill(store, user)
    await _corrupt(store, "users", {"_id": ObjectId(user.id)}, {"$inc": {"storage_used": 99}})
    maintenance = Maintenance(store)
    maintenance.pause = 0.05
    delivered = 0
    finished = trio.Event()

    async def pass_() -> None:
        await maintenance.run_pass(repair=True)
        finished.set()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pass_)
            while not finished.is_set():
                await store.messages.append(user.id, "INBOX", simple_message(f"m{delivered}"))
                delivered += 1
    assert delivered >= 3  # the pass took several steps, deliveries went on between
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert inbox.message_count == 2 + delivered
    used = await store.database.run(lambda: sum(
        d["size"] for d in _coll(store, "messages").find({}, {"size": 1})))
    assert (await store.quota(user.id))[0] == used
