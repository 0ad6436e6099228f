"""Leases (one holder across processes), removal by UID, the POP3 folder setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio
from store_samples import multipart_message

from duck.store import InvalidInput, Lease, NotFound, Refusal, Store, User

pytestmark = pytest.mark.store


async def test_lease_is_exclusive_until_released(store: Store) -> None:
    first = await store.leases.acquire("pop3:x", 30)
    assert isinstance(first, Lease)
    second = await store.leases.acquire("pop3:x", 30)
    assert isinstance(second, Refusal) and not second.too_soon
    assert second.until == first.expires
    await store.leases.release(first)
    third = await store.leases.acquire("pop3:x", 30)
    assert isinstance(third, Lease) and third.holder != first.holder
    # A released-then-retaken lease is no longer the first holder's.
    assert await store.leases.renew(first, 30) is None
    await store.leases.release(first)  # a no-op: it does not free the new holder's
    assert isinstance(await store.leases.acquire("pop3:x", 30), Refusal)


async def test_lease_expires_and_renewal_keeps_it(store: Store) -> None:
    # The sleeps are measured from the expiry times the store handed out, with
    # wide margins, so a slow database call (the Python engine on a loaded CI
    # machine) cannot move a step to the other side of an expiry.
    held = await store.leases.acquire("pop3:y", 1.0)
    assert isinstance(held, Lease)
    renewed = await store.leases.renew(held, 4.0)
    assert renewed is not None and renewed.expires > held.expires
    await _sleep_until(held.expires, 0.3)  # past the first expiry
    assert _now() < renewed.expires - timedelta(seconds=1)  # well within the renewed one
    assert isinstance(await store.leases.acquire("pop3:y", 1.0), Refusal)
    await _sleep_until(renewed.expires, 0.3)
    taken = await store.leases.acquire("pop3:y", 5)
    assert isinstance(taken, Lease)
    assert await store.leases.renew(held, 5) is None


def _now() -> datetime:
    return datetime.now(UTC)


async def _sleep_until(moment: datetime, margin: float) -> None:
    await trio.sleep(max(0.0, (moment - _now()).total_seconds()) + margin)


async def test_concurrent_takers_get_one_lease(store: Store) -> None:
    results: list[Lease | Refusal] = []

    async def take() -> None:
        results.append(await store.leases.acquire("pop3:z", 30))

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(take)
    assert sum(isinstance(r, Lease) for r in results) == 1


async def test_min_delay_between_takes(store: Store) -> None:
    # A delay wide enough that a slow release (a loaded CI machine) stays inside it.
    held = await store.leases.acquire("pop3:d", 30, min_delay=2.0)
    assert isinstance(held, Lease)
    await store.leases.release(held)
    again = await store.leases.acquire("pop3:d", 30, min_delay=2.0)
    assert isinstance(again, Refusal) and again.too_soon
    await trio.sleep(2.2)
    assert isinstance(await store.leases.acquire("pop3:d", 30, min_delay=2.0), Lease)


async def test_bad_lease_arguments(store: Store) -> None:
    with pytest.raises(InvalidInput):
        await store.leases.acquire("", 30)
    with pytest.raises(InvalidInput):
        await store.leases.acquire("a", 0)


async def test_remove_takes_exact_uids_and_journals(store: Store, user: User) -> None:
    for i in range(4):
        await store.messages.append(user.id, "INBOX", multipart_message(b"x", f"m{i}"))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    removed = await store.messages.remove(inbox.id, [2, 4, 9])
    assert [uid for uid, _ in removed] == [2, 4]
    left = await store.messages.view(inbox.id)
    assert [s.uid for s in left] == [1, 3]
    entries = await store.journal.changes_since(inbox.id, inbox.highest_modseq)
    assert [(e.kind, e.uid) for e in entries] == [("expunge", 2), ("expunge", 4)]
    after = await store.mailboxes.get(user.id, "INBOX")
    assert after.message_count == 2
    assert await store.messages.remove(inbox.id, []) == []


async def test_pop3_folder_setting(store: Store, user: User) -> None:
    assert user.pop3_folder == "INBOX"
    assert await store.admin.set_pop3_folder(user.id, "Archive") == "Archive"
    assert (await store.users.get(user.id)).pop3_folder == "Archive"
    with pytest.raises(NotFound):
        await store.admin.set_pop3_folder(user.id, "Nope")
    assert await store.admin.set_pop3_folder(user.id, "inbox") == "INBOX"
