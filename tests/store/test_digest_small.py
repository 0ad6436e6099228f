"""Small mailboxes have no digest (digest.DIGEST_FROM): their writes leave it alone,
their readers read the messages, and the write that makes one big enough starts it
(BUILDING, its own entries written), which the background build then completes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from duck.store import Store, User, query
from duck.store.index import digest

pytestmark = pytest.mark.store

FROM = 5


@pytest.fixture(autouse=True)
def small_from() -> Iterator[None]:
    before = digest.DIGEST_FROM
    digest.DIGEST_FROM = FROM
    try:
        yield
    finally:
        digest.DIGEST_FROM = before


def _message(i: int) -> bytes:
    word = "needle" if i % 2 else "haystack"
    return (f"From: a{i}@example.org\r\nSubject: number {i}\r\n"
            f"Message-ID: <m{i}@example.org>\r\n\r\nbody {word} {i}\r\n").encode()


def _oid(value: str) -> Any:
    from bson import ObjectId
    return ObjectId(value)


async def _digest_docs(store: Store, mailbox_id: str) -> int:
    coll = store.database.collection(digest.COLLECTION)
    return int(await store.database.run(coll.count_documents,
                                        {"mailbox": _oid(mailbox_id)}))


async def _state(store: Store, mailbox_id: str) -> Any:
    coll = store.database.collection("mailboxes")
    doc = await store.database.run(coll.find_one, {"_id": _oid(mailbox_id)}, {"dg": 1})
    return doc["dg"]


async def _searches(store: Store, mailbox_id: str) -> dict[str, list[int]]:
    return {
        "body": await store.messages.search(mailbox_id, query.Body("needle")),
        "subject": await store.messages.search(mailbox_id, query.Subject("number 3")),
        "flag": await store.messages.search(mailbox_id, query.Flag("\\Flagged")),
        "unseen": await store.messages.search(mailbox_id, query.Flag("\\Seen", False)),
    }


async def test_small_mailbox_has_no_digest_and_answers_from_messages(
        store: Store, user: User) -> None:
    await store.mailboxes.create(user.id, "Small")
    uids = [(await store.messages.append(user.id, "Small", _message(i))).uid
            for i in range(1, FROM)]
    box = await store.mailboxes.get(user.id, "Small")
    assert await _state(store, box.id) == digest.NONE and not box.digest
    await store.messages.store_flags(box.id, uids[:2], "add", ["\\Flagged", "\\Seen"])
    await store.messages.store_flags(box.id, uids[:1], "add", ["\\Deleted"])
    await store.messages.expunge(box.id)
    assert await _digest_docs(store, box.id) == 0  # no write touched a digest
    got = await _searches(store, box.id)
    assert got == {"body": [3], "subject": [3], "flag": [2], "unseen": [3, 4]}
    box = await store.mailboxes.get(user.id, "Small")
    assert [m.uid for m in await store.messages.view(box.id, box)] == [2, 3, 4]
    assert await store.messages.count_recent(box) == 3
    report = await store.doctor()
    assert report.healthy, report.findings


async def test_the_write_that_makes_it_big_starts_the_digest(
        store: Store, user: User) -> None:
    await store.mailboxes.create(user.id, "Grows")
    for i in range(1, FROM):
        await store.messages.append(user.id, "Grows", _message(i))
    box = await store.mailboxes.get(user.id, "Grows")
    await store.messages.store_flags(box.id, [2], "add", ["\\Flagged"])
    before = await _searches(store, box.id)
    await store.messages.append(user.id, "Grows", _message(FROM))  # the FROM-th
    assert await _state(store, box.id) == digest.BUILDING
    assert _oid(box.id) in store.database.digest_pending
    assert await _digest_docs(store, box.id) > 0  # its own entry, written with it
    # Meanwhile (being built) its readers read the messages, and are right.
    during = await _searches(store, box.id)
    assert during == {**before, "body": [1, 3, 5], "unseen": [1, 2, 3, 4, 5]}
    await store.maintenance.build_digests()  # what a server runs in the background
    assert await _state(store, box.id) == digest.VERSION
    box = await store.mailboxes.get(user.id, "Grows")
    assert box.digest and _oid(box.id) not in store.database.digest_pending
    assert await _searches(store, box.id) == during  # now from the digest
    assert [m.uid for m in await store.messages.view(box.id, box)] == [1, 2, 3, 4, 5]
    # From now on its writes keep it: a change shows in the digest's answers.
    await store.messages.store_flags(box.id, [5], "add", ["\\Flagged"])
    assert await store.messages.search(box.id, query.Flag("\\Flagged")) == [2, 5]
    report = await store.doctor()
    assert report.healthy, report.findings


async def test_copy_into_a_small_mailbox_can_start_its_digest(
        store: Store, user: User) -> None:
    await store.mailboxes.create(user.id, "Source")
    await store.mailboxes.create(user.id, "Target")
    for i in range(1, FROM + 2):
        await store.messages.append(user.id, "Source", _message(i))
    source = await store.mailboxes.get(user.id, "Source")
    target = await store.mailboxes.get(user.id, "Target")
    await store.messages.copy(source.id, [1, 2], user.id, "Target")
    assert await _state(store, target.id) == digest.NONE
    assert await _digest_docs(store, target.id) == 0
    await store.messages.copy(source.id, [3, 4, 5, 6], user.id, "Target")
    assert await _state(store, target.id) == digest.BUILDING
    await store.maintenance.build_digests()
    assert await _state(store, target.id) == digest.VERSION
    got = await _searches(store, target.id)
    assert got["body"] == [1, 3, 5] and got["subject"] == [3]
    report = await store.doctor()
    assert report.healthy, report.findings
