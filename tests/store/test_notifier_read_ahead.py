"""The notifier reads a mailbox's journal ahead of waking its sessions only for a
change they were not told of already (one made by another process), not for this
process's own writes, which announce themselves with their modseq at once."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from duck.store import Notifier, Store, User, mailbox_key, metrics
from duck.store.push.notify import READ_AHEAD

pytestmark = pytest.mark.store


async def test_no_read_ahead_for_a_change_announced_here(store: Store, user: User,
                                                         nursery: trio.Nursery) -> None:
    done = await store.messages.append(user.id, "INBOX", b"Subject: x\r\n\r\nx\r\n")
    inbox = await store.mailboxes.get(user.id, "INBOX")
    notifier = Notifier(store.database, journal=store.journal)
    await nursery.start(notifier.run)
    with trio.fail_after(30):
        while notifier.mode != "change-stream":  # (the watch is open from now on)
            await trio.sleep(0.01)
        key = mailbox_key(inbox.id)
        sub = notifier.subscribe(key)
        # What came before is known here (an event for it may still come).
        notifier.publish_nowait(key, modseq=inbox.highest_modseq)
        metrics.reset()
        reads = store.journal.statistics()["reads"]
        # This process's own write, announced with its modseq (as a session does
        # once the store returns; here first, so that the event cannot come before).
        notifier.publish_nowait(key, modseq=inbox.highest_modseq + 1)
        own = await store.messages.store_flags(inbox.id, [done.uid], "add", ["\\Flagged"])
        assert own.changed[0].modseq == inbox.highest_modseq + 1
        while notifier.statistics()["events_seen"] < 1:
            await trio.sleep(0.01)
        await trio.testing.wait_all_tasks_blocked()
        assert READ_AHEAD not in metrics.statistics()
        assert store.journal.statistics()["reads"] == reads
        # A change nobody here announced (another process's): read once, ahead.
        other = await store.messages.store_flags(inbox.id, [done.uid], "add", ["\\Seen"])
        while not sub.behind(other.changed[0].modseq - 1):
            await trio.sleep(0.01)
        assert metrics.statistics()[READ_AHEAD]["by_db_command"] == {"find": 1}
        assert store.journal.statistics()["reads"] == reads + 1
        sub.close()


async def test_a_burst_of_changes_is_taken_in_batches_and_each_wakes(
        store: Store, user: User, nursery: trio.Nursery) -> None:
    uids = [(await store.messages.append(user.id, "INBOX", b"Subject: x\r\n\r\nx\r\n")).uid
            for _ in range(40)]
    inbox = await store.mailboxes.get(user.id, "INBOX")
    notifier = Notifier(store.database, journal=store.journal)
    await nursery.start(notifier.run)
    with trio.fail_after(30):
        while notifier.mode != "change-stream":
            await trio.sleep(0.01)
        sub = notifier.subscribe(mailbox_key(inbox.id))
        seen, takes = notifier.events_seen, notifier.stream_takes
        # One STORE of 40 messages: 40 journal entries in one write, so one getMore
        # brings them all.
        done = await store.messages.store_flags(inbox.id, uids, "add", ["\\Flagged"])
        last = max(c.modseq for c in done.changed)
        while notifier.events_seen < seen + 40 or not sub.behind(last - 1):
            await trio.sleep(0.01)  # (woken up to the last of them, after its read)
        # Every change was dispatched, in far fewer worker-thread calls than changes.
        assert notifier.events_seen == seen + 40
        assert notifier.stream_takes - takes < 10, notifier.statistics()
        sub.close()
