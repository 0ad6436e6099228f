"""The notifier of a process that is the deployment's only writer (``sole``): no
change stream; every journal entry this process commits reaches it through the
store's local feed, one a transaction took back never does, and another process's
write is found by asking the watched mailboxes, after which the stream is opened."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from duck.store import Notifier, Store, User, mailbox_key
from duck.store.errors import OverQuota
from duck.store.push import notify

pytestmark = pytest.mark.store

MESSAGE = b"Subject: x\r\n\r\nx\r\n"
LocalNotifier = Callable[..., Awaitable[Notifier]]


async def test_this_process_commits_wake_without_a_change_stream(
        store: Store, user: User, local_notifier: LocalNotifier) -> None:
    inbox = await store.mailboxes.get(user.id, "INBOX")
    notifier = await local_notifier(store)
    sub = notifier.subscribe(mailbox_key(inbox.id))
    with trio.fail_after(10):
        done = await store.messages.append(user.id, "INBOX", MESSAGE)
        # Nobody but the feed announced it (a session would publish it itself).
        while not sub.behind(done.modseq - 1):
            await trio.sleep(0.01)
        flagged = await store.messages.store_flags(inbox.id, [done.uid], "add",
                                                   ["\\Flagged"])
        while not sub.behind(flagged.changed[0].modseq - 1):
            await trio.sleep(0.01)
        await store.messages.expunge(inbox.id)  # (nothing \Deleted: no entry)
        await trio.testing.wait_all_tasks_blocked()
    assert notifier.events_seen == 2
    assert notifier.stream_takes == 0 and notifier.mode == "local"
    sub.close()


async def test_a_transaction_taken_back_feeds_nothing(
        store: Store, local_notifier: LocalNotifier) -> None:
    small = await store.users.create("small@example.com", "pw", quota=100)
    inbox = await store.mailboxes.get(small.id, "INBOX")
    notifier = await local_notifier(store)
    sub = notifier.subscribe(mailbox_key(inbox.id))
    with pytest.raises(OverQuota):
        # (Its journal entry was written in the transaction the refusal took back.)
        await store.messages.append(small.id, "INBOX", MESSAGE + b"x" * 200)
    await trio.testing.wait_all_tasks_blocked()
    assert notifier.events_seen == 0 and not sub.pending()
    done = await store.messages.append(small.id, "INBOX", MESSAGE)
    with trio.fail_after(10):
        while not sub.behind(done.modseq - 1):
            await trio.sleep(0.01)
    assert notifier.events_seen == 1
    sub.close()


async def test_another_process_write_is_found_and_opens_the_stream(
        store: Store, user: User, mongo_uri: str, db_name: str,
        local_notifier: LocalNotifier, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "QUIET_CHECK", 0.05)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    notifier = await local_notifier(store)
    sub = notifier.subscribe(mailbox_key(inbox.id))
    other = await Store.open(mongo_uri, db_name)
    try:
        with trio.fail_after(30):
            # This process's own writes, busy at every check, are never taken for
            # another's.
            for _ in range(5):
                await store.messages.append(user.id, "INBOX", MESSAGE)
                await trio.sleep(0.06)
            assert notifier.mode == "local"
            first = await other.messages.append(user.id, "INBOX", MESSAGE)
            # Found by a check (no stream yet), then confirmed by the next.
            while not sub.behind(first.modseq - 1):
                await trio.sleep(0.01)
            assert notifier.caught_up >= 1
            while notifier.mode != "change-stream":
                await trio.sleep(0.01)
            seen = notifier.events_seen
            second = await other.messages.append(user.id, "INBOX", MESSAGE)
            while not sub.behind(second.modseq - 1):
                await trio.sleep(0.01)
            while notifier.events_seen == seen:  # (through the stream now)
                await trio.sleep(0.01)
            assert notifier.stream_takes >= 1
            # And this process's own writes still wake, through the stream.
            own = await store.messages.append(user.id, "INBOX", MESSAGE)
            while not sub.behind(own.modseq - 1):
                await trio.sleep(0.01)
    finally:
        await other.aclose()
    sub.close()


async def test_without_an_oplog_another_process_write_turns_it_to_polling(
        store: Store, user: User, mongo_uri: str, db_name: str, nursery: trio.Nursery,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # (The embedded server duck serve starts for itself keeps no oplog: no stream.)
    monkeypatch.setattr(notify, "QUIET_CHECK", 0.05)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    notifier = Notifier(store.database, journal=store.journal, sole=True,
                        change_streams=False, poll_interval=0.05)
    await nursery.start(notifier.run)
    sub = notifier.subscribe(mailbox_key(inbox.id))
    other = await Store.open(mongo_uri, db_name)
    try:
        with trio.fail_after(30):
            while notifier.mode != "local":
                await trio.sleep(0.01)
            own = await store.messages.append(user.id, "INBOX", MESSAGE)
            while not sub.behind(own.modseq - 1):
                await trio.sleep(0.01)
            first = await other.messages.append(user.id, "INBOX", MESSAGE)
            while not sub.behind(first.modseq - 1):
                await trio.sleep(0.01)
            while notifier.mode != "poll":
                await trio.sleep(0.01)
            # Written right as the polling begins, or after: either way it wakes.
            for _ in range(3):
                later = await other.messages.append(user.id, "INBOX", MESSAGE)
                while not sub.behind(later.modseq - 1):
                    await trio.sleep(0.01)
            assert notifier.stream_takes == 0
    finally:
        await other.aclose()
    sub.close()
