"""Reservations from a known mailbox document (mail/counters.py): one round trip
fewer per write when this process wrote the mailbox last, and the same values as
``allocate`` whatever happened in between."""

from __future__ import annotations

import time
from typing import Any

import pytest
import trio
from store_samples import simple_message

from duck.store import Store, User
from duck.store.engine import metrics, schema
from duck.store.engine.batch import WriteBatch
from duck.store.engine.ids import parse_id
from duck.store.mail import counters
from duck.store.mail.flags import store_flags_sync
from duck.store.models import FlagsSnapshot

pytestmark = pytest.mark.store


def mailbox_doc(store: Store, mailbox_id: str) -> dict[str, Any]:
    doc = store.database.collection(schema.MAILBOXES).find_one({"_id": parse_id(mailbox_id)})
    assert doc is not None
    return doc


async def appended(store: Store, user: User, subject: str, **kw: Any) -> tuple[Any, int]:
    """APPEND to INBOX; the result and the round trips it made."""
    with metrics.command_scope("counters-test") as scope:
        result = await store.messages.append(user.id, "INBOX", simple_message(subject), **kw)
    return result, scope.round_trips


async def test_a_write_after_this_process_wrote_costs_one_round_trip_less(
        store: Store, user: User) -> None:
    boxes = counters.known(store.database)
    first, classic = await appended(store, user, "a")
    hits = boxes.hits
    second, optimistic = await appended(store, user, "b", flags=["\\Seen"])
    assert boxes.hits == hits + 1
    # The reservation went into the change's bulkWrite: bulkWrite and commit only.
    assert optimistic == 2 and classic >= 3
    assert (second.uid, second.modseq) == (first.uid + 1, first.modseq + 1)
    assert second.uid_validity == first.uid_validity
    doc = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)
    assert (doc["uid_next"], doc["modseq"], doc["count"], doc["unseen"]) == (3, 3, 2, 1)
    assert doc["size"] == len(simple_message("a")) + len(simple_message("b"))

    # STORE with the session's snapshot: no read, no findAndModify.
    snapshot = FlagsSnapshot(doc["modseq"], {1: ((), 2), 2: (("\\Seen",), 3)})
    with metrics.command_scope("counters-test") as scope:
        stored = await store.messages.store_flags(first.mailbox_id, [1], "add",
                                                  ["\\Seen"], snapshot=snapshot)
    assert scope.round_trips == 2
    assert [(c.uid, c.modseq) for c in stored.changed] == [(1, 4)]

    # EXPUNGE: the read of what it removes, then bulkWrite and commit.
    await store.messages.store_flags(first.mailbox_id, [2], "add", ["\\Deleted"])
    with metrics.command_scope("counters-test") as scope:
        gone = await store.messages.expunge_journaled(first.mailbox_id, expected=True)
    assert scope.round_trips == 3
    assert gone == [(2, 6)]
    doc = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)
    assert (doc["uid_next"], doc["modseq"], doc["count"], doc["unseen"]) == (3, 6, 1, 0)
    assert doc["size"] == len(simple_message("a"))
    entries = await store.messages.changes_since(first.mailbox_id, 1)
    assert [e.modseq for e in entries] == [2, 3, 4, 5, 6]


async def test_a_store_whose_snapshot_is_behind_reads_and_reserves_from_the_known_box(
        store: Store, user: User) -> None:
    """Another session of this process wrote the mailbox after the view was read:
    the STORE reads the messages and reserves from the known document (find,
    bulkWrite, commit), not with a findAndModify of its own and a read to correct it."""
    first, _ = await appended(store, user, "a")
    doc = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)
    snapshot = FlagsSnapshot(doc["modseq"], {1: ((), first.modseq)})
    second, _ = await appended(store, user, "b")  # (the other session's write)
    with metrics.command_scope("counters-behind") as scope:
        stored = await store.messages.store_flags(first.mailbox_id, [1], "add",
                                                  ["\\Flagged"], snapshot=snapshot)
    by_command = metrics.statistics()["counters-behind"]["by_db_command"]
    assert by_command == {"find": 1, "bulkWrite": 1, "commitTransaction": 1}, by_command
    assert scope.round_trips == 3
    assert [(c.uid, c.modseq) for c in stored.changed] == [(1, second.modseq + 1)]
    doc = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)
    assert doc["modseq"] == second.modseq + 1


async def test_another_process_writing_between_makes_a_miss_with_the_right_values(
        store: Store, user: User, mongo_uri: str, db_name: str) -> None:
    boxes = counters.known(store.database)
    first, _ = await appended(store, user, "a")
    other = await Store.open(mongo_uri, db_name)  # another process on the database
    try:
        theirs = await other.messages.append(user.id, "INBOX", simple_message("b"))
        misses = boxes.misses
        mine, _ = await appended(store, user, "c")
        assert boxes.misses == misses + 1
        assert theirs.uid == 2 and mine.uid == 3 and mine.modseq == theirs.modseq + 1
        # For a while the mailbox is written the usual way (writers take turns on
        # it): no bulkWrite to take back.
        hits, misses = boxes.hits, boxes.misses
        _, trips = await appended(store, user, "d")
        assert (boxes.hits, boxes.misses, trips) == (hits, misses, 3)
        # Then it is tried again, with what the miss and that write refreshed.
        boxes.clock = lambda: time.monotonic() + counters.CONTENDED_FOR
        again, trips = await appended(store, user, "e")
        assert boxes.hits == hits + 1 and trips == 2 and again.uid == 5
        # A STORE from the other process, then one from this one with a snapshot
        # that is behind: the values still come from the database.
        await other.messages.store_flags(first.mailbox_id, [1], "add", ["$a"])
        stale = FlagsSnapshot(again.modseq, {1: ((), first.modseq)})
        result = await store.messages.store_flags(first.mailbox_id, [1], "add",
                                                  ["$b"], snapshot=stale)
        assert [c.flags for c in result.changed] == [("$a", "$b")]
        assert result.changed[0].modseq == again.modseq + 2
    finally:
        await other.aclose()


async def test_a_counter_moved_without_the_modseq_stays_right(
        store: Store, user: User) -> None:
    first, _ = await appended(store, user, "a")
    coll = store.database.collection(schema.MAILBOXES)
    # (What a best-effort undo or a repair does: the counters, not the modseq.)
    await trio.to_thread.run_sync(lambda: coll.update_one(
        {"_id": parse_id(first.mailbox_id)}, {"$inc": {"size": 7, "count": 1}}))
    hits = counters.known(store.database).hits
    await appended(store, user, "b")
    assert counters.known(store.database).hits == hits + 1
    doc = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)
    assert doc["count"] == 3
    assert doc["size"] == len(simple_message("a")) + len(simple_message("b")) + 7


async def test_a_reservation_moves_exactly_its_counters_or_leaves_the_document(
        store: Store, user: User) -> None:
    first, _ = await appended(store, user, "a")
    box = parse_id(first.mailbox_id)
    before = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)

    def reserve(known: dict[str, Any], **moves: Any) -> tuple[int, dict[str, Any]]:
        batch = WriteBatch(store.database)
        made = counters.reserve(batch, known, **moves)
        done = batch.flush()
        return done.modified.get(made.index, 0), made.box

    # Known as it is: the counters move by the amounts asked, the \Recent mark
    # with the claim, and nothing else of the document changes.
    modified, after = await trio.to_thread.run_sync(lambda: reserve(
        before, uids=2, modseqs=3, count=2, unseen=1, size=10,
        claim_recent=(box, before["modseq"])))
    doc = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)
    assert modified == 1
    assert doc == after
    assert {k: doc[k] - before[k] for k in counters.COUNTERS} == {
        "uid_next": 2, "modseq": 3, "count": 2, "unseen": 1, "size": 10}
    assert (doc["recent"], doc["rp"]) == (before["uid_next"] + 1, before.get("recent", 0))
    # Known as it was (another write came between): nothing of it changes.
    modified, _ = await trio.to_thread.run_sync(lambda: reserve(before, uids=1, count=1))
    assert modified == 0
    assert await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id) == doc


async def test_recent_claims_through_a_reservation(store: Store, user: User,
                                                   mongo_uri: str, db_name: str) -> None:
    first, _ = await appended(store, user, "a")
    box = first.mailbox_id
    # A session that has INBOX selected at the current modseq claims what it
    # appends (and what nobody claimed before it: UID 1).
    second, trips = await appended(store, user, "b", claim_recent=(box, first.modseq))
    assert trips == 2 and second.recent_from == 1
    doc = await trio.to_thread.run_sync(mailbox_doc, store, box)
    assert (doc["recent"], doc["rp"]) == (2, 0)
    third, _ = await appended(store, user, "c")
    # A session of another process claims \Recent (the mark moves, the modseq does
    # not): the next claiming APPEND here misses and claims from the new mark.
    other = await Store.open(mongo_uri, db_name)
    try:
        assert await other.messages.claim_recent(box, 3) == 3
    finally:
        await other.aclose()
    misses = counters.known(store.database).misses
    fourth, _ = await appended(store, user, "d", claim_recent=(box, third.modseq))
    assert counters.known(store.database).misses == misses + 1
    assert fourth.recent_from == 4
    # At a modseq the session has not caught up with, every earlier message
    # claimed: the session claims its own message, and only that (once the
    # mailbox is tried again).
    counters.known(store.database).clock = lambda: time.monotonic() + counters.CONTENDED_FOR
    fifth, trips = await appended(store, user, "e", claim_recent=(box, first.modseq))
    assert trips == 2 and fifth.recent_from == 5
    doc = await trio.to_thread.run_sync(mailbox_doc, store, box)
    assert (doc["recent"], doc["rp"]) == (5, 4)
    # With a message nobody claimed yet (UID 6, delivered without a claim), a
    # session behind claims nothing: UID 6 is for the first session told of it.
    await appended(store, user, "f")
    seventh, trips = await appended(store, user, "g", claim_recent=(box, first.modseq))
    assert trips == 2 and seventh.recent_from is None
    doc = await trio.to_thread.run_sync(mailbox_doc, store, box)
    assert (doc["recent"], doc["rp"]) == (5, -1)


async def claimed(store: Store, box: str, up_to: int) -> tuple[int, int]:
    """claim_recent's first UID and round trips."""
    with metrics.command_scope("NOOP") as scope:
        first = await store.messages.claim_recent(box, up_to)
    return first, scope.round_trips


async def test_a_recent_claim_reads_no_mark_this_process_knows(
        store: Store, user: User, mongo_uri: str, db_name: str) -> None:
    first, _ = await appended(store, user, "a")
    box = first.mailbox_id
    # Claimed by the APPEND of a session that has the mailbox selected: another
    # session here that sees it arrive has nothing to claim, and asks nothing.
    second, _ = await appended(store, user, "b", claim_recent=(box, first.modseq))
    assert await claimed(store, box, second.uid) == (second.uid + 1, 0)
    # Appended without a claim: the known mark is below, so the claim is written
    # at once (no read first), and the mark it leaves is known.
    third, _ = await appended(store, user, "c")
    assert await claimed(store, box, third.uid) == (third.uid, 1)
    assert await claimed(store, box, third.uid) == (third.uid + 1, 0)
    doc = await trio.to_thread.run_sync(mailbox_doc, store, box)
    assert doc["recent"] == third.uid
    # ... and the next claiming APPEND compares that mark: no miss.
    misses = counters.known(store.database).misses
    fourth, trips = await appended(store, user, "d", claim_recent=(box, third.modseq))
    assert (trips, fourth.recent_from, counters.known(store.database).misses) == (
        2, fourth.uid, misses)
    # A known mark left behind by another process's claim: the write still claims
    # exactly what nobody did (the mark it replaced), never a UID twice.
    fifth, _ = await appended(store, user, "e")
    other = await Store.open(mongo_uri, db_name)
    try:
        assert await other.messages.claim_recent(box, fifth.uid) == fifth.uid
    finally:
        await other.aclose()
    assert await claimed(store, box, fifth.uid) == (fifth.uid + 1, 1)
    # A mailbox this process never wrote: the mark is read first, as before.
    counters.known(store.database).missed(parse_id(box))
    sixth, _ = await appended(store, user, "f")
    counters.known(store.database).missed(parse_id(box))
    assert await claimed(store, box, sixth.uid) == (sixth.uid, 2)


async def test_claims_here_do_not_make_this_process_s_appends_miss(
        store: Store, user: User) -> None:
    """Sessions of one process claim \\Recent while another APPENDs to the
    mailbox it has selected (claiming too): the claims wait for the user's writes,
    as writes wait for each other, so no reservation misses (a miss costs two
    round trips and makes the mailbox go the long way for CONTENDED_FOR)."""
    first, _ = await appended(store, user, "a")
    box = first.mailbox_id
    boxes = counters.known(store.database)
    misses, hits = boxes.misses, boxes.hits
    top = [first.uid]

    async def claimer() -> None:
        while top[0] < 40:
            await store.messages.claim_recent(box, top[0])
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(claimer)
        for i in range(40):
            known = boxes.get(parse_id(box))
            modseq = known["modseq"] if known is not None else first.modseq
            # (Every other one unclaimed: the sessions' claims of it go to the
            # database.)
            claim = (box, modseq) if i % 2 else None
            done, _ = await appended(store, user, f"m{i}", claim_recent=claim)
            top[0] = done.uid
        top[0] = 40
    assert boxes.misses == misses
    assert boxes.hits >= hits + 40
    assert (await store.messages.claim_recent(box, top[0])) == top[0] + 1


async def test_two_processes_writing_one_mailbox_hand_out_every_value_once(
        store: Store, user: User, mongo_uri: str, db_name: str) -> None:
    other = await Store.open(mongo_uri, db_name)
    uids: list[int] = []
    try:
        async def worker(s: Store, n: int) -> None:
            for i in range(6):
                done = await s.messages.append(user.id, "INBOX", simple_message(f"{n}-{i}"))
                uids.append(done.uid)
                await s.messages.store_flags(done.mailbox_id, [done.uid], "add",
                                             ["\\Seen"] if i % 2 else ["\\Deleted"])
                if i % 3 == 2:
                    await s.messages.expunge(done.mailbox_id)

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for n in range(6):
                    nursery.start_soon(worker, store if n % 2 else other, n)
    finally:
        await other.aclose()
    assert sorted(uids) == list(range(1, 37))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    view = await store.messages.view(inbox.id)
    doc = await trio.to_thread.run_sync(mailbox_doc, store, inbox.id)
    # The counters are what the messages say.
    assert doc["count"] == len(view) == inbox.message_count
    assert doc["unseen"] == sum(1 for s in view if "\\Seen" not in s.flags)
    entries = await store.messages.changes_since(inbox.id, 1)
    modseqs = [e.modseq for e in entries]
    assert len(modseqs) == len(set(modseqs)) and max(modseqs) == doc["modseq"]
    assert doc["uid_next"] == 37


async def test_a_known_value_that_looks_like_a_field_is_compared_as_text(
        store: Store, user: User) -> None:
    first, _ = await appended(store, user, "a")
    doc = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)

    def reserve(box: dict[str, Any]) -> None:
        def body(session: Any) -> None:
            batch = WriteBatch(store.database)
            reservation = counters.reserve(batch, box, modseqs=1)
            counters.check(batch.flush(session), reservation)
        store.database.in_transaction(body)

    # Known as at "$path" (read as a field, "$path" would equal any path): a miss.
    with pytest.raises(counters.Missed):
        await trio.to_thread.run_sync(reserve, {**doc, "path": "$path"})
    await trio.to_thread.run_sync(reserve, doc)  # as it is: the condition holds
    after = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)
    assert after["modseq"] == doc["modseq"] + 1


async def test_an_expunge_removes_what_its_look_found_when_the_reservation_holds(
        store: Store, user: User) -> None:
    """EXPUNGE without a known \\Deleted message: the read that looks for them
    (outside the transaction) gives the messages, the reservation on the known
    mailbox document proves them current, and the write is the bulkWrite and the
    commit (no read again inside)."""
    first, _ = await appended(store, user, "a")
    await appended(store, user, "b")
    await store.messages.store_flags(first.mailbox_id, [1], "add", ["\\Deleted"])
    hits = counters.known(store.database).hits
    with metrics.command_scope("expunge-looked") as scope:
        gone = await store.messages.expunge_journaled(first.mailbox_id)
    by_command = metrics.statistics()["expunge-looked"]["by_db_command"]
    assert by_command == {"find": 1, "bulkWrite": 1, "commitTransaction": 1}, by_command
    assert scope.round_trips == 3 and counters.known(store.database).hits == hits + 1
    assert [uid for uid, _ in gone] == [1]
    assert [m.uid for m in await store.messages.view(first.mailbox_id)] == [2]
    # Archived whole, as a transaction's read would have given it (but its text).
    (item,), _ = await store.archive.page(user.id)
    assert (item.uid, item.subject) == (1, "a")


@pytest.mark.parametrize("writer", ["another process", "this process"])
async def test_a_change_between_an_expunges_look_and_its_write_is_read_again(
        store: Store, user: User, monkeypatch: pytest.MonkeyPatch, writer: str) -> None:
    """\\Deleted is taken off a message after the EXPUNGE looked and before it
    writes: by another process (the write's reservation misses, the change having
    moved the mailbox's modseq), or by this one, without the user's lock (its
    reservation would hold on the document that write left, which is newer than
    the look): either way the transaction reads the messages again, and the message
    stays."""
    first, _ = await appended(store, user, "a")
    await appended(store, user, "b")
    await store.messages.store_flags(first.mailbox_id, [1, 2], "add", ["\\Deleted"])
    mailbox = parse_id(first.mailbox_id)
    original = store.messages._expunge_batch
    interfered: list[bool] = []

    def elsewhere(session: Any) -> None:
        # (As another process's STORE -FLAGS \Deleted writes: the message and the
        # mailbox's modseq, in one transaction.)
        store.database.collection(schema.MESSAGES).update_one(
            {"mailbox": mailbox, "uid": 2},
            {"$set": {"flags": [], "kw": [], "deleted": False}}, session=session)
        store.database.collection(schema.MAILBOXES).update_one(
            {"_id": mailbox}, {"$inc": {"modseq": 1}}, session=session)

    def interfering(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if not interfered:
            interfered.append(True)
            if writer == "another process":
                store.database.in_transaction(elsewhere)
            else:
                store_flags_sync(store.database, first.mailbox_id, [2], "remove",
                                 ["\\Deleted"], None)
        return original(*args, **kwargs)

    monkeypatch.setattr(store.messages, "_expunge_batch", interfering)
    gone = await store.messages.expunge_journaled(first.mailbox_id)
    assert interfered
    assert [uid for uid, _ in gone] == [1]
    assert [m.uid for m in await store.messages.view(first.mailbox_id)] == [2]
    doc = await trio.to_thread.run_sync(mailbox_doc, store, first.mailbox_id)
    assert doc["count"] == 1
