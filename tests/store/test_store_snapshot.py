"""STORE with the caller's snapshot of the flags: no read of the messages when the
mailbox has not moved, and the right flags when it has (the snapshot is stale)."""

from __future__ import annotations

import pytest

from duck.store import FlagsSnapshot, Store, User, metrics
from duck.store.engine.ids import parse_id
from duck.store.mail import counters

pytestmark = pytest.mark.store


async def _snapshot(store: Store, mailbox_id: str, modseq: int) -> FlagsSnapshot:
    return FlagsSnapshot(modseq, {m.uid: (m.flags, m.modseq)
                                  for m in await store.messages.view(mailbox_id)})


async def test_current_snapshot_saves_the_read(store: Store, user: User) -> None:
    for i in range(3):
        await store.messages.append(user.id, "INBOX", f"Subject: {i}\r\n\r\nx\r\n".encode(),
                                    flags=["\\Seen"] if i == 0 else [])
    inbox = await store.mailboxes.get(user.id, "INBOX")
    snap = await _snapshot(store, inbox.id, inbox.highest_modseq)
    uids = sorted(snap.messages)
    metrics.reset()
    with metrics.command_scope("STORE") as scope:
        result = await store.messages.store_flags(inbox.id, uids, "add", ["\\Seen", "$A"],
                                                  snapshot=snap)
    assert "find" not in metrics.statistics()["STORE"]["by_db_command"]
    # The writes with the modseq reservation (this process wrote the mailbox last:
    # mail/counters.py), and the commit.
    assert scope.round_trips == 2
    assert [c.uid for c in result.changed] == uids
    after = await store.mailboxes.get(user.id, "INBOX")
    assert after.unseen_count == 0
    assert after.highest_modseq == inbox.highest_modseq + 3
    assert all({"\\Seen", "$A"} <= set(m.flags) for m in await store.messages.view(inbox.id))
    entries = await store.messages.changes_since(inbox.id, inbox.highest_modseq)
    assert [e.uid for e in entries] == uids


async def test_stale_snapshot_reads_the_messages(store: Store, user: User) -> None:
    for i in range(2):
        await store.messages.append(user.id, "INBOX", f"Subject: {i}\r\n\r\nx\r\n".encode())
    inbox = await store.mailboxes.get(user.id, "INBOX")
    stale = await _snapshot(store, inbox.id, inbox.highest_modseq)
    first, second = sorted(stale.messages)
    # Another session marks the first \Seen and $B: the snapshot does not know.
    await store.messages.store_flags(inbox.id, [first], "add", ["\\Seen", "$B"])
    # By the stale snapshot, removing \Seen from both would change nothing on the
    # first; in truth it must, and $B must stay.
    result = await store.messages.store_flags(inbox.id, [first, second], "replace",
                                              ["$C"], snapshot=stale)
    assert [c.uid for c in result.changed] == [first, second]
    flags = {m.uid: set(m.flags) for m in await store.messages.view(inbox.id)}
    assert flags == {first: {"$C"}, second: {"$C"}}
    after = await store.mailboxes.get(user.id, "INBOX")
    assert after.unseen_count == 2  # the counter follows the truth, not the snapshot
    # UNCHANGEDSINCE is judged on the stored modseqs, not the snapshot's.
    stale = FlagsSnapshot(stale.modseq, {u: ((), 1) for u in stale.messages})
    result = await store.messages.store_flags(inbox.id, [first], "add", ["$D"],
                                              unchangedsince=inbox.highest_modseq,
                                              snapshot=stale)
    assert result.modified == [first] and result.changed == []


async def test_snapshot_missing_a_message_reads(store: Store, user: User) -> None:
    for i in range(2):
        await store.messages.append(user.id, "INBOX", f"Subject: {i}\r\n\r\nx\r\n".encode())
    inbox = await store.mailboxes.get(user.id, "INBOX")
    snap = await _snapshot(store, inbox.id, inbox.highest_modseq)
    first, second = sorted(snap.messages)
    partial = FlagsSnapshot(snap.modseq, {first: snap.messages[first]})
    metrics.reset()
    with metrics.command_scope("STORE"):
        result = await store.messages.store_flags(inbox.id, [first, second], "add",
                                                  ["\\Flagged"], snapshot=partial)
    assert metrics.statistics()["STORE"]["by_db_command"]["find"] == 1
    assert [c.uid for c in result.changed] == [first, second]


async def test_stale_snapshot_is_corrected_in_the_same_transaction(
        store: Store, user: User) -> None:
    for i in range(3):
        await store.messages.append(user.id, "INBOX", f"Subject: {i}\r\n\r\nx\r\n".encode())
    inbox = await store.mailboxes.get(user.id, "INBOX")
    stale = await _snapshot(store, inbox.id, inbox.highest_modseq)
    first, second, third = sorted(stale.messages)
    # Another session flags the first: by the snapshot, +FLAGS \Flagged changes two
    # messages; in truth one.
    other = await store.messages.store_flags(inbox.id, [first], "add", ["\\Flagged"])
    # This process knows the mailbox document the other STORE left: with it, the
    # STORE would read and reserve from it (test_counters.py). Without it (here as
    # after a missed reservation; likewise when another process wrote last) the
    # stale snapshot is corrected in the transaction:
    counters.known(store.database).missed(parse_id(inbox.id))
    metrics.reset()
    with metrics.command_scope("STORE"):
        result = await store.messages.store_flags(inbox.id, [first, second], "add",
                                                  ["\\Flagged"], snapshot=stale)
    ops = metrics.statistics()["STORE"]["by_db_command"]
    # Read in the transaction that found the snapshot stale, not taken back and
    # started over: the allocation, the read, the correction, the writes, the commit.
    assert "abortTransaction" not in ops and ops["find"] == 1, ops
    assert sum(ops.values()) == 5, ops
    top = other.changed[0].modseq + 1
    assert [(c.uid, c.modseq) for c in result.changed] == [(second, top)]
    # The counter allocated two modseqs and gave one back: no gap, no extra.
    after = await store.mailboxes.get(user.id, "INBOX")
    assert after.highest_modseq == top
    entries = await store.messages.changes_since(inbox.id, inbox.highest_modseq)
    assert [(e.modseq, e.uid) for e in entries] == [(top - 1, first), (top, second)]
    # Stale again, and in truth nothing to change: the counters are taken back.
    metrics.reset()
    with metrics.command_scope("STORE"):
        result = await store.messages.store_flags(inbox.id, [first, second], "add",
                                                  ["\\Flagged"], snapshot=stale)
    assert result.changed == [] and result.modified == []
    assert (await store.mailboxes.get(user.id, "INBOX")).highest_modseq == top
    assert (await store.messages.changes_since(inbox.id, top)) == []
    flags = {m.uid: set(m.flags) for m in await store.messages.view(inbox.id)}
    assert flags == {first: {"\\Flagged"}, second: {"\\Flagged"}, third: set()}


async def test_nothing_to_change_by_a_current_snapshot_is_one_small_read(
        store: Store, user: User) -> None:
    """A STORE that changes nothing by the snapshot (a flag set again, or cleared
    where it is not) reads the mailbox's modseq alone when the snapshot is current;
    when it is not, the messages are read and the truth is stored."""
    for i in range(2):
        await store.messages.append(user.id, "INBOX", f"Subject: {i}\r\n\r\nx\r\n".encode(),
                                    flags=["\\Seen"])
    inbox = await store.mailboxes.get(user.id, "INBOX")
    snap = await _snapshot(store, inbox.id, inbox.highest_modseq)
    uids = sorted(snap.messages)
    for mode, flags in (("add", ["\\Seen"]), ("remove", ["$Absent"])):
        metrics.reset()
        with metrics.command_scope("STORE") as scope:
            result = await store.messages.store_flags(inbox.id, uids, mode,  # type: ignore[arg-type]
                                                      flags, snapshot=snap)
        assert result.changed == [] and result.modified == []
        assert scope.round_trips == 1
        assert metrics.statistics()["STORE"]["by_db_command"] == {"find": 1}
    # UNCHANGEDSINCE is judged on the snapshot's modseqs then, as exact as they.
    result = await store.messages.store_flags(inbox.id, uids, "add", ["\\Seen"],
                                              unchangedsince=snap.messages[uids[0]][1],
                                              snapshot=snap)
    assert result.modified == [uids[1]] and result.changed == []
    # Another session clears \Seen of the first: the same snapshot now claims it
    # is set; the STORE must set it again, and the mailbox's modseq says so.
    await store.messages.store_flags(inbox.id, [uids[0]], "remove", ["\\Seen"])
    result = await store.messages.store_flags(inbox.id, uids, "add", ["\\Seen"],
                                              snapshot=snap)
    assert [c.uid for c in result.changed] == [uids[0]]
    assert all("\\Seen" in m.flags for m in await store.messages.view(inbox.id))
    assert (await store.mailboxes.get(user.id, "INBOX")).unseen_count == 0


async def test_a_snapshot_behind_this_process_writes_is_brought_forward(
        store: Store, user: User) -> None:
    """The writes another session of this process made after the snapshot are in the
    journal's reader (fed as the sole notifier feeds it: Journal.learn): the STORE
    plans from the snapshot brought forward with them, without reading the
    messages, and gets the flags right."""
    for i in range(3):
        await store.messages.append(user.id, "INBOX", f"Subject: {i}\r\n\r\nx\r\n".encode())
    inbox = await store.mailboxes.get(user.id, "INBOX")
    snap = await _snapshot(store, inbox.id, inbox.highest_modseq)
    first, second, third = sorted(snap.messages)
    store.database.journal_feed = store.journal.learn
    try:
        # The other session: a flag on the first, the second removed.
        await store.messages.store_flags(inbox.id, [first], "add", ["\\Flagged"])
        await store.messages.store_flags(inbox.id, [second], "add", ["\\Deleted"])
        await store.messages.expunge(inbox.id)
        metrics.reset()
        with metrics.command_scope("STORE") as scope:
            result = await store.messages.store_flags(inbox.id, [first, third], "add",
                                                      ["$B"], snapshot=snap)
        assert "find" not in metrics.statistics()["STORE"]["by_db_command"]
        assert scope.round_trips == 2
        assert [c.uid for c in result.changed] == [first, third]
        # ("\Flagged" stays: the snapshot alone would have written the first's
        # flags without it.)
        flags = {m.uid: set(m.flags) for m in await store.messages.view(inbox.id)}
        assert flags == {first: {"\\Flagged", "$B"}, third: {"$B"}}
        # A STORE that names the removed message reads, as it must.
        metrics.reset()
        with metrics.command_scope("STORE"):
            result = await store.messages.store_flags(inbox.id, [second, third], "add",
                                                      ["$C"], snapshot=snap)
        assert metrics.statistics()["STORE"]["by_db_command"]["find"] == 1
        assert [c.uid for c in result.changed] == [third]
    finally:
        store.database.journal_feed = None
