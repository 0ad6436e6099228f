"""Delivery, APPEND, FETCH, STORE, EXPUNGE, COPY/MOVE and the journal."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from store_samples import multipart_message, simple_message

from duck.store import (
    DeliveryTarget,
    InvalidInput,
    NotFound,
    OverQuota,
    Store,
    StoreError,
    User,
)
from duck.store.mail import counters
from duck.store.models import Delivered

pytestmark = pytest.mark.store


async def test_append_then_read_back_exact(store: Store, user: User) -> None:
    data = simple_message()
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    result = await store.messages.append(user.id, "INBOX", data, ["\\Seen", "$Label1"], when)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert (result.uid_validity, result.uid) == (inbox.uid_validity, 1)
    (record,) = await store.messages.fetch(
        inbox.id, [1], ["content", "flags", "size", "internal_date", "envelope", "structure"]
    )
    assert record.size == len(data) and record.internal_date == when
    assert record.flags == ("\\Seen", "$Label1")
    assert record.envelope is not None and record.envelope.subject == b"hello"
    assert record.structure is not None and record.structure.mime_type == "text/plain"
    assert await store.messages.read(record) == data
    assert await store.messages.read(record, 6, 9) == data[6:9]
    assert await store.messages.read(record, len(data) - 3, 10**9) == data[-3:]
    assert b"".join([c async for c in store.messages.stream(record)]) == data


async def test_fetch_projection_only_asked(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", simple_message())
    inbox = await store.mailboxes.get(user.id, "INBOX")
    (record,) = await store.messages.fetch(inbox.id, [1], ["flags"])
    assert record.flags == () and record.size is None and record.segments is None
    with pytest.raises(InvalidInput):
        await store.messages.read(record)
    with pytest.raises(InvalidInput):
        await store.messages.fetch(inbox.id, [1], ["bogus"])
    assert await store.messages.fetch(inbox.id, [99], ["flags"]) == []


async def test_deliver_prepend_and_independent_failures(store: Store, user: User) -> None:
    bob = await store.users.create("bob@example.com", "pw", quota=10)
    ingest = store.messages.ingest()
    data = multipart_message(b"QUJD" * 100)
    for i in range(0, len(data), 7):
        await ingest.write(data[i:i + 7])
    ingested = await ingest.finish()
    prepend = b"Delivered-To: alice@example.com\r\nReturn-Path: <carol@example.com>\r\n"
    results = await store.messages.deliver(ingested, [
        DeliveryTarget(user.id, "INBOX", prepend=prepend),
        DeliveryTarget(user.id, "Nope"),
        DeliveryTarget(bob.id, "INBOX"),
        DeliveryTarget(user.id, "Archive", flags=("\\Flagged",)),
    ])
    assert isinstance(results[0], Delivered) and isinstance(results[3], Delivered)
    assert isinstance(results[1], NotFound) and isinstance(results[2], OverQuota)
    assert results[0].size == len(prepend) + len(data)
    (record,) = await store.messages.fetch(results[0].mailbox_id, [1],
                                           ["content", "structure", "headers"])
    whole = await store.messages.read(record)
    assert whole == prepend + data
    root = record.structure
    assert root is not None and root.header_start == 0
    assert whole[root.header_end - 4:root.header_end] == b"\r\n\r\n"
    text = root.children[0]
    assert whole[text.header_end:text.body_end] == b"See attached.\r\n"
    assert record.headers is not None and record.headers[0] == ("delivered-to",
                                                                "alice@example.com")
    (plain,) = await store.messages.fetch(results[3].mailbox_id, [1], ["content", "flags"])
    assert await store.messages.read(plain) == data and plain.flags == ("\\Flagged",)
    with pytest.raises(InvalidInput):
        await store.messages.deliver(ingested, [DeliveryTarget(user.id)])
    assert (await store.quota(bob.id))[0] == 0


async def test_deliver_rejects_bad_prepend(store: Store, user: User) -> None:
    ingest = store.messages.ingest()
    await ingest.write(simple_message())
    ingested = await ingest.finish()
    (result,) = await store.messages.deliver(
        ingested, [DeliveryTarget(user.id, prepend=b"not a header")]
    )
    assert isinstance(result, InvalidInput)


async def test_too_big(store: Store, user: User) -> None:
    from duck.store import TooBig

    ingest = store.messages.ingest(max_size=100)
    await ingest.write(b"x" * 60)
    with pytest.raises(TooBig):
        await ingest.write(b"x" * 60)


async def test_quota(store: Store) -> None:
    small = await store.users.create("small@example.com", "pw", quota=1000)
    msg = simple_message(body="x" * 300 + "\r\n")
    await store.messages.append(small.id, "INBOX", msg)
    await store.messages.append(small.id, "INBOX", msg)
    before = await store.mailboxes.get(small.id, "INBOX")
    with pytest.raises(OverQuota):
        await store.messages.append(small.id, "INBOX", msg)
    assert await store.quota(small.id) == (2 * len(msg), 1000)
    # The refused copy left nothing: no message, no counter, UID or modseq used.
    inbox = await store.mailboxes.get(small.id, "INBOX")
    assert inbox == before and [s.uid for s in await store.messages.view(inbox.id)] == [1, 2]
    assert await store.messages.changes_since(inbox.id, before.highest_modseq) == []
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    assert await store.messages.expunge(inbox.id) == [1]
    assert await store.quota(small.id) == (len(msg), 1000)


async def test_store_flags_modes_and_case(store: Store, user: User) -> None:
    for i in range(3):
        await store.messages.append(user.id, "INBOX", simple_message(str(i)))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    res = await store.messages.store_flags(inbox.id, [1, 2], "add", ["\\seen", "Work"])
    assert [(c.uid, c.flags) for c in res.changed] == [
        (1, ("\\Seen", "Work")), (2, ("\\Seen", "Work"))]
    assert res.changed[0].modseq != res.changed[1].modseq
    # Keywords compare case-insensitively; the first spelling is kept.
    res = await store.messages.store_flags(inbox.id, [1], "add", ["WORK"])
    assert res.changed == []
    res = await store.messages.store_flags(inbox.id, [1], "remove", ["work"])
    assert res.changed[0].flags == ("\\Seen",)
    res = await store.messages.store_flags(inbox.id, [3], "replace", ["\\Flagged"])
    assert res.changed[0].flags == ("\\Flagged",)
    status = await store.mailboxes.get(user.id, "INBOX")
    assert status.unseen_count == 1
    view = await store.messages.view(inbox.id)
    assert [(s.uid, s.flags) for s in view] == [
        (1, ("\\Seen",)), (2, ("\\Seen", "Work")), (3, ("\\Flagged",))]
    assert status.highest_modseq == max(s.modseq for s in view)
    with pytest.raises(InvalidInput):
        await store.messages.store_flags(inbox.id, [1], "add", ["\\Recent"])
    with pytest.raises(InvalidInput):
        await store.messages.store_flags(inbox.id, [1], "add", ["bad flag"])


async def test_unchangedsince(store: Store, user: User) -> None:
    for i in range(2):
        await store.messages.append(user.id, "INBOX", simple_message(str(i)))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    first = await store.messages.store_flags(inbox.id, [1], "add", ["\\Answered"])
    since = first.changed[0].modseq - 1
    res = await store.messages.store_flags(inbox.id, [1, 2], "add", ["\\Seen"],
                                           unchangedsince=since)
    assert res.modified == [1] and [c.uid for c in res.changed] == [2]


async def test_expunge_only_deleted_and_uid_subset(store: Store, user: User) -> None:
    for i in range(5):
        await store.messages.append(user.id, "INBOX", simple_message(str(i)))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, [1, 2, 4], "add", ["\\Deleted"])
    assert await store.messages.expunge(inbox.id, [2, 3]) == [2]
    assert await store.messages.expunge(inbox.id) == [1, 4]
    assert [s.uid for s in await store.messages.view(inbox.id)] == [3, 5]
    status = await store.mailboxes.get(user.id, "INBOX")
    assert status.message_count == 2 and status.uid_next == 6


async def test_copy_and_move(store: Store, user: User) -> None:
    data = [simple_message(str(i)) for i in range(3)]
    for d in data:
        await store.messages.append(user.id, "INBOX", d, ["\\Seen"])
    inbox = await store.mailboxes.get(user.id, "INBOX")
    archive = await store.mailboxes.get(user.id, "Archive")
    copied = await store.messages.copy(inbox.id, [1, 3, 42], user.id, "Archive")
    assert copied.uid_validity == archive.uid_validity
    assert copied.uids == [(1, 1), (3, 2)]
    records = await store.messages.fetch(archive.id, [1, 2], ["content", "flags", "emailid"])
    originals = await store.messages.fetch(inbox.id, [1, 3], ["emailid"])
    assert [await store.messages.read(r) for r in records] == [data[0], data[2]]
    assert [r.emailid for r in records] == [o.emailid for o in originals]
    moved = await store.messages.move(inbox.id, [2], user.id, "Trash")
    assert moved.uids == [(2, 1)]
    assert [s.uid for s in await store.messages.view(inbox.id)] == [1, 3]
    used, _ = await store.quota(user.id)
    assert used == sum(map(len, data)) + len(data[0]) + len(data[2])
    with pytest.raises(NotFound):
        await store.messages.copy(inbox.id, [1], user.id, "Nope")


async def test_copy_into_a_mailbox_another_process_wrote_since(store: Store, user: User,
                                                               mongo_uri: str) -> None:
    """A COPY reserves its UIDs on the destination's document as this process last
    wrote it (counters.py); another process's write since then fails that
    reservation, and the COPY is made again the usual way: the UIDs follow the
    other's, the counters and the quota add up."""
    other = await Store.open(mongo_uri, store.database.name)
    try:
        data = [simple_message(str(i)) for i in range(3)]
        for d in data:
            await store.messages.append(user.id, "INBOX", d)
        inbox = await store.mailboxes.get(user.id, "INBOX")
        assert (await store.messages.copy(inbox.id, [1], user.id, "Archive")).uids == [(1, 1)]
        await other.messages.append(user.id, "Archive", simple_message("x"))
        known = counters.known(store.database)
        misses = known.misses
        again = await store.messages.copy(inbox.id, [2, 3], user.id, "Archive")
        assert again.uids == [(2, 3), (3, 4)]
        assert known.misses == misses + 1
        archive = await store.mailboxes.get(user.id, "Archive")
        assert (archive.message_count, archive.uid_next) == (4, 5)
        assert [s.uid for s in await store.messages.view(archive.id)] == [1, 2, 3, 4]
        records = await store.messages.fetch(archive.id, [3, 4], ["content"])
        assert [await store.messages.read(r) for r in records] == data[1:]
        used, _ = await store.quota(user.id)
        assert used == inbox.size + archive.size
    finally:
        await other.aclose()


async def test_copy_over_quota_is_all_or_nothing(store: Store) -> None:
    u = await store.users.create("q@example.com", "pw", quota=1000)
    msg = simple_message(body="y" * 300 + "\r\n")
    await store.messages.append(u.id, "INBOX", msg)
    await store.messages.append(u.id, "INBOX", msg)
    inbox = await store.mailboxes.get(u.id, "INBOX")
    with pytest.raises(OverQuota):
        await store.messages.copy(inbox.id, [1, 2], u.id, "Archive")
    archive = await store.mailboxes.get(u.id, "Archive")
    assert archive.message_count == 0 and archive.uid_next == 1


async def test_journal_follows_changes(store: Store, user: User) -> None:
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.append(user.id, "INBOX", simple_message())
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    entries = await store.messages.changes_since(inbox.id, 1)
    assert [(e.kind, e.uid, e.modseq) for e in entries] == [
        ("exists", 1, 2), ("flags", 1, 3), ("expunge", 1, 4)]
    assert entries[1].flags == ("\\Deleted",)
    assert await store.messages.changes_since(inbox.id, 4) == []
    status = await store.mailboxes.get(user.id, "INBOX")
    assert status.highest_modseq == 4


async def test_claim_recent_once(store: Store, user: User) -> None:
    for i in range(3):
        await store.messages.append(user.id, "INBOX", simple_message(str(i)))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert await store.messages.claim_recent(inbox.id, 2) == 1
    assert await store.messages.claim_recent(inbox.id, 3) == 3
    assert await store.messages.claim_recent(inbox.id, 3) == 4


async def test_large_message_byte_exact_streaming(store: Store, user: User) -> None:
    attachment = hashlib.sha256(b"seed").hexdigest().encode() * 40000  # 2.5 MB
    data = multipart_message(attachment)
    ingest = store.messages.ingest()
    for i in range(0, len(data), 65536):
        await ingest.write(data[i:i + 65536])
    ingested = await ingest.finish()
    assert len(ingested.bodies) == 1
    (result,) = await store.messages.deliver(ingested, [DeliveryTarget(user.id)])
    assert not isinstance(result, StoreError)
    (record,) = await store.messages.fetch(result.mailbox_id, [result.uid], ["content"])
    assert record.segments is not None and len(record.segments) == 3
    assert await store.messages.read(record) == data
    start = len(data) // 2
    assert await store.messages.read(record, start, start + 5000) == data[start:start + 5000]
    chunks = [c async for c in store.messages.stream(record)]
    assert b"".join(chunks) == data and max(map(len, chunks)) <= 1024 * 1024


async def test_append_claims_recent_only_on_the_modseq_it_was_given(store: Store,
                                                                     user: User) -> None:
    """RFC 3501 §2.3.2: one session sees a new message as \\Recent. A session whose
    view is at the mailbox's modseq claims its own APPEND in the delivery's write;
    a stale view claims it only when every earlier message is claimed, else nothing
    (it reads the journal and claims as usual)."""
    from store_samples import simple_message

    box = await store.mailboxes.get(user.id, "INBOX")
    first = await store.messages.append(user.id, "INBOX", simple_message(subject="a"))
    # Unclaimed so far; a session current at first.modseq claims both.
    second = await store.messages.append(user.id, "INBOX", simple_message(subject="b"),
                                         claim_recent=(box.id, first.modseq))
    assert second.recent_from == first.uid and second.modseq == first.modseq + 1
    assert second.flags == ()
    # Already claimed: a later claimant from second's UID gets nothing before it.
    assert await store.messages.claim_recent(box.id, second.uid) == second.uid + 1
    # A stale modseq, every earlier message claimed: its own message, no other.
    again = await store.messages.append(user.id, "INBOX", simple_message(subject="b2"),
                                        claim_recent=(box.id, first.modseq))
    assert again.recent_from == again.uid
    # Another mailbox's id: nothing claimed. Then a stale modseq with a message
    # nobody claimed yet: nothing claimed, nothing moved.
    sent = await store.mailboxes.get(user.id, "Sent")
    third = await store.messages.append(user.id, "INBOX", simple_message(subject="c"),
                                        ["\\Seen"], claim_recent=(sent.id, again.modseq))
    assert third.recent_from is None and third.flags == ("\\Seen",)
    fourth = await store.messages.append(user.id, "INBOX", simple_message(subject="d"),
                                         claim_recent=(box.id, first.modseq))
    assert fourth.recent_from is None
    # Both still unclaimed: the next claimant gets them.
    assert await store.messages.claim_recent(box.id, fourth.uid) == third.uid
    after = await store.mailboxes.get(user.id, "INBOX")
    assert after.uid_next == fourth.uid + 1 and after.highest_modseq == fourth.modseq


async def test_a_reply_joins_its_parents_thread_here_and_elsewhere(
        store: Store, user: User, mongo_uri: str, db_name: str) -> None:
    """RFC 8474 THREADID: a reply gets its parent's thread; the parent's thread is
    remembered by the process that delivered it (no query), and another process
    finds it in the database."""
    from duck.store import metrics

    parent = (b"Message-ID: <p1@example.com>\r\nSubject: start\r\n\r\nhello\r\n")
    reply = (b"Message-ID: <r1@example.com>\r\nIn-Reply-To: <p1@example.com>\r\n"
             b"References: <p1@example.com>\r\nSubject: Re: start\r\n\r\nhi\r\n")
    other = (b"Message-ID: <r2@example.com>\r\nReferences: <p1@example.com>\r\n"
             b"Subject: Re: start\r\n\r\nand hi\r\n")
    box = await store.mailboxes.get(user.id, "INBOX")
    first = await store.messages.append(user.id, "INBOX", parent)
    with metrics.command_scope("reply") as scope:
        second = await store.messages.append(user.id, "INBOX", reply)
    assert "find" not in metrics.statistics()["reply"]["by_db_command"], scope
    elsewhere = await Store.open(mongo_uri, db_name)
    try:
        third = await elsewhere.messages.append(user.id, "INBOX", other)
    finally:
        await elsewhere.aclose()
    records = await store.messages.fetch(box.id, [first.uid, second.uid, third.uid],
                                         ["threadid"])
    assert len({r.threadid for r in records}) == 1
    (lone,) = await store.messages.fetch(
        box.id, [(await store.messages.append(user.id, "INBOX", simple_message("x"))).uid],
        ["threadid"])
    assert lone.threadid != records[0].threadid
