"""UID/modseq allocation and \\Recent under concurrency: every value handed out once."""

from __future__ import annotations

import threading

import pytest
import trio
from store_samples import simple_message

from duck.store import Store, User
from duck.store.engine.ids import parse_id
from duck.store.mail.mailboxes import allocate

pytestmark = pytest.mark.store


async def test_concurrent_appends_get_unique_uids(store: Store, user: User) -> None:
    uids: list[int] = []

    async def worker(n: int) -> None:
        for i in range(8):
            result = await store.messages.append(user.id, "INBOX", simple_message(f"{n}-{i}"))
            uids.append(result.uid)

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(worker, n)
    assert sorted(uids) == list(range(1, 81))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert inbox.uid_next == 81 and inbox.message_count == 80
    view = await store.messages.view(inbox.id)
    assert len({s.modseq for s in view}) == 80
    entries = await store.messages.changes_since(inbox.id, 1)
    assert [e.modseq for e in entries] == list(range(2, 82))


async def test_allocate_from_many_threads(store: Store, user: User) -> None:
    """Raw $inc/AFTER allocation from threads (the stale pre-image trap)."""
    inbox = await store.mailboxes.get(user.id, "INBOX")
    oid = parse_id(inbox.id)
    got: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(50):
            uid, _, _ = allocate(store.database, oid, uids=1)
            with lock:
                got.append(uid)

    def hammer() -> None:
        threads = [threading.Thread(target=work) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    await trio.to_thread.run_sync(hammer)
    assert sorted(got) == list(range(1, 501))


async def test_recent_claimed_by_exactly_one(store: Store, user: User) -> None:
    for i in range(5):
        await store.messages.append(user.id, "INBOX", simple_message(str(i)))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    firsts: list[int] = []

    async def claim() -> None:
        firsts.append(await store.messages.claim_recent(inbox.id, 5))

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(claim)
    assert sorted(firsts) == [1] + [6] * 7
