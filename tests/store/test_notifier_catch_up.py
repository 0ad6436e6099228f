"""The notifier's look at the mailboxes (``Notifier._catch_up``), which covers for a
change stream that brings nothing (held back behind a transaction a killed process
left open: tests/imap/test_idle_held_back.py) or was opened again after an outage:
a watched mailbox whose modseq went past the last one told wakes its subscribers
with that modseq, one told already wakes nobody, and a deleted one wakes them once.

The notifier is not running here (its stream would tell the same changes): the
look is made by hand, on the real database.
"""

from __future__ import annotations

import pytest

from duck.store import Notifier, Store, User, mailbox_key, user_key

pytestmark = pytest.mark.store


async def test_a_look_wakes_whom_a_change_was_not_told(store: Store, user: User) -> None:
    await store.mailboxes.create(user.id, "Lists")
    inbox = await store.mailboxes.get(user.id, "INBOX")
    lists = await store.mailboxes.get(user.id, "Lists")
    notifier = Notifier(store.database, journal=store.journal)
    sub = notifier.subscribe(mailbox_key(inbox.id))
    feed = notifier.subscribe(user_key(user.id))
    gone = notifier.subscribe(mailbox_key(lists.id))

    # First sight: told with the modseq it has (its sessions, already there, read
    # nothing), not counted as caught up.
    await notifier._catch_up()
    assert sub.pending() and not sub.behind(inbox.highest_modseq)
    assert notifier.caught_up == 0
    for s in (sub, feed, gone):
        s.clear()
    await notifier._catch_up()
    assert not sub.pending() and not feed.pending() and not gone.pending()

    # A change nobody told here: its mailbox's and its user's subscribers wake.
    await store.messages.append(user.id, "INBOX", b"Subject: x\r\n\r\nx\r\n")
    await notifier._catch_up()
    assert sub.behind(inbox.highest_modseq) and sub.high == inbox.highest_modseq + 1
    assert feed.pending() and not gone.pending()
    assert notifier.caught_up == 1
    sub.clear()
    feed.clear()
    # Told already (by the change stream, or by this process's own write).
    await store.messages.append(user.id, "INBOX", b"Subject: y\r\n\r\ny\r\n")
    notifier.publish_nowait(mailbox_key(inbox.id), modseq=inbox.highest_modseq + 2)
    sub.clear()
    await notifier._catch_up()
    assert not sub.pending()
    assert notifier.caught_up == 1

    # Deleted: its subscribers read the journal once (blind), and only once.
    await store.mailboxes.delete(user.id, "Lists")
    feed.clear()
    await notifier._catch_up()
    assert gone.pending() and gone.behind(10**9)
    gone.clear()
    await notifier._catch_up()
    assert not gone.pending()
    for s in (sub, feed, gone):
        s.close()
