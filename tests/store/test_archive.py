"""The archive of deleted messages (issue 18): EXPUNGE and mailbox DELETE keep
messages with their bodies; restore brings them back exactly; the purge after
``archive_days`` frees their bodies; user deletion purges them; 0 days turns it off."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
from store_samples import multipart_message, simple_message

from duck.store import NotFound, OverQuota, Store, User, metrics, query

pytestmark = pytest.mark.store

ATTACHMENT = os.urandom(100_000).hex().encode()  # above the inline threshold


async def _count(store: Store, collection: str, filter_: dict[str, Any] | None = None) -> int:
    coll = store.database.collection(collection)
    return int(await store.database.run(coll.count_documents, filter_ or {}))


async def _gridfs(store: Store) -> tuple[int, int, int]:
    return (await _count(store, "bodies"), await _count(store, "attachments.files"),
            await _count(store, "attachments.chunks"))


async def _refs(store: Store) -> list[int]:
    docs = await store.database.run(
        lambda: list(store.database.collection("bodies").find({}, {"refs": 1})))
    return [int(d["refs"]) for d in docs]


async def _whole(store: Store, mailbox_id: str, uid: int) -> tuple[bytes, Any]:
    (record,) = await store.messages.fetch(mailbox_id, [uid],
                                           ["content", "size", "flags", "internal_date"])
    return await store.messages.read(record), record


async def test_expunge_archives_and_restore_is_exact(store: Store, user: User) -> None:
    data = multipart_message(ATTACHMENT, subject="keep me")
    idate = dt.datetime(2020, 5, 17, 8, 30, tzinfo=dt.UTC)
    await store.messages.append(user.id, "INBOX", simple_message("other"))
    await store.messages.append(user.id, "INBOX", data, ["\\Seen", "$Work"], idate)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    used = (await store.quota(user.id))[0]
    await store.messages.store_flags(inbox.id, [2], "add", ["\\Deleted"])
    assert await store.messages.expunge(inbox.id) == [2]

    # Counted toward nothing the user sees: counters, quota, SEARCH, the view.
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert (inbox.message_count, inbox.size) == (1, len(simple_message("other")))
    assert (await store.quota(user.id))[0] == used - len(data)
    assert await store.messages.search(inbox.id, query.All()) == [1]
    assert [m.uid for m in await store.messages.view(inbox.id)] == [1]
    # The body is still referenced by the archived message.
    assert await _refs(store) == [1]
    assert (await store.sweep(grace=dt.timedelta(0))).freed_bodies == 0
    assert await _refs(store) == [1]

    items, more = await store.archive.page(user.id)
    assert more is None and len(items) == 1
    item = items[0]
    assert (item.path, item.uid, item.size, item.subject) == ("INBOX", 2, len(data), "keep me")
    assert item.flags == ("\\Seen", "$Work") and item.internal_date == idate
    assert item.sender == "carol@example.com"

    (done,) = await store.archive.restore(user.id, [item.id], "Archive")
    box = await store.mailboxes.get(user.id, "Archive")
    assert (done.mailbox_id, done.uid, done.path) == (box.id, 1, "Archive")
    assert (box.message_count, box.unseen_count, box.size) == (1, 0, len(data))
    raw, record = await _whole(store, box.id, 1)
    assert raw == data
    assert set(record.flags) == {"\\Seen", "$Work"} and record.internal_date == idate
    assert (await store.quota(user.id))[0] == used
    assert await store.archive.count(user.id) == 0
    assert await store.messages.search(box.id, query.Flag("$Work")) == [1]
    entries = await store.messages.changes_since(box.id, 1)
    assert [(e.kind, e.uid) for e in entries] == [("exists", 1)]
    with pytest.raises(NotFound):
        await store.archive.restore(user.id, [item.id])


async def test_archiving_adds_no_round_trip_to_expunge(store: Store, user: User) -> None:
    """The archive insert rides in EXPUNGE's own WriteBatch: the same round trips
    with the archive on as off."""
    inbox = await store.mailboxes.get(user.id, "INBOX")
    trips = {}
    for days in (14, 0):
        store.set_archive_days(days)
        await store.messages.append(user.id, "INBOX", simple_message(f"d{days}"))
        uid = (await store.mailboxes.get(user.id, "INBOX")).uid_next - 1
        await store.messages.store_flags(inbox.id, [uid], "add", ["\\Deleted"])
        metrics.reset()
        with metrics.command_scope("EXPUNGE"):
            assert await store.messages.expunge(inbox.id) == [uid]
        trips[days] = metrics.statistics()["EXPUNGE"]["round_trips"]
    assert trips[14] == trips[0], trips
    assert await store.archive.count(user.id) == 1


async def test_deleted_mailbox_is_archived_and_restorable(store: Store, user: User) -> None:
    await store.mailboxes.create(user.id, "Projects")
    for i in range(3):
        await store.messages.append(user.id, "Projects", simple_message(f"p{i}"),
                                    ["\\Flagged"] if i == 1 else [])
    used = (await store.quota(user.id))[0]
    await store.mailboxes.delete(user.id, "Projects")
    assert (await store.quota(user.id))[0] == 0 < used
    assert await _count(store, "messages") == 0
    assert await _count(store, "purges") == 0  # (the purge was noted, then done)
    items, _ = await store.archive.page(user.id, limit=2)
    assert len(items) == 2 and all(i.path == "Projects" for i in items)
    # The mailbox is gone: restoring without a target puts them in INBOX.
    restored = await store.archive.restore(user.id, None)
    assert sorted(r.uid for r in restored) == [1, 2, 3] and {r.path for r in restored} == {
        "INBOX"}
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert inbox.message_count == 3 and (await store.quota(user.id))[0] == used
    flagged = await store.messages.search(inbox.id, query.Flag("\\Flagged"))
    assert len(flagged) == 1


async def test_restore_over_quota_is_refused(store: Store) -> None:
    user = await store.users.create("bob@example.com", "pw", quota=1000)
    await store.messages.append(user.id, "INBOX", simple_message("x", "a" * 600))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    await store.messages.append(user.id, "INBOX", simple_message("y", "b" * 600))
    with pytest.raises(OverQuota):
        await store.archive.restore(user.id, None, "INBOX")
    assert await store.archive.count(user.id) == 1
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert inbox.message_count == 1


async def test_purge_after_archive_days_frees_bodies(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    assert await _gridfs(store) == (1, 1, 1)
    assert await store.database.run(store.archive.purge_expired_sync) == (0, 0)
    # 13 days later nothing goes; 14 days later it does.
    start = store.archive.clock()
    store.archive.clock = lambda: start + dt.timedelta(days=13)
    assert await store.database.run(store.archive.purge_expired_sync) == (0, 0)
    store.archive.clock = lambda: start + dt.timedelta(days=14, seconds=1)
    purged, freed = await store.database.run(store.archive.purge_expired_sync)
    assert (purged, freed) == (1, len(ATTACHMENT))
    assert await _gridfs(store) == (0, 0, 0)
    assert await store.archive.count(user.id) == 0


async def test_shared_body_survives_the_purge_of_one_copy(store: Store, user: User) -> None:
    data = multipart_message(ATTACHMENT)
    await store.messages.append(user.id, "INBOX", data)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.copy(inbox.id, [1], user.id, "Archive")
    assert await _refs(store) == [2]
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    store.set_archive_days(0)  # everything archived is now expired
    assert (await store.database.run(store.archive.purge_expired_sync))[0] == 1
    assert await _refs(store) == [1] and await _gridfs(store) == (1, 1, 1)
    box = await store.mailboxes.get(user.id, "Archive")
    assert (await _whole(store, box.id, 1))[0] == data


async def test_user_deletion_purges_the_archive(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    await store.messages.append(user.id, "Drafts", simple_message())
    await store.admin.delete_user(user.id)
    assert await _count(store, "archive") == 0 and await _count(store, "messages") == 0
    assert await _gridfs(store) == (0, 0, 0)


async def test_zero_days_deletes_at_once(store: Store, user: User) -> None:
    store.set_archive_days(0)
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    await store.messages.expunge(inbox.id)
    assert await _gridfs(store) == (0, 0, 0)
    await store.mailboxes.create(user.id, "Gone")
    await store.messages.append(user.id, "Gone", simple_message())
    await store.mailboxes.delete(user.id, "Gone")
    assert await _count(store, "archive") == 0 and await _count(store, "messages") == 0


async def test_move_is_not_archived(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", simple_message())
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.move(inbox.id, [1], user.id, "Archive")
    assert await store.archive.count(user.id) == 0


async def _figures(store: Store, user: User) -> tuple[bytes, Any]:
    """A message with a quoted-printable text part and an attachment, appended to
    INBOX; its bytes and INBOX."""
    data = multipart_message(ATTACHMENT, text="Caf=C3=A9 quarterly figures\r\n",
                             subject="figures").replace(
        b"charset=utf-8\r\n\r\n",
        b"charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
    await store.messages.append(user.id, "INBOX", data)
    return data, await store.mailboxes.get(user.id, "INBOX")


async def test_archive_leaves_contents_in_place_and_restore_takes_them_back(
        store: Store, user: User) -> None:
    """The archived copy keeps the message's contents document (bytes and SEARCH
    text, index/contents.py) where it is, by ``cid``; a restore takes it back
    unchanged, and the restored message is found by SEARCH BODY/TEXT and reads
    byte for byte the same; the purge deletes the contents."""
    data, inbox = await _figures(store, user)
    messages = store.database.collection("messages")
    kept = store.database.collection("contents")
    original = await store.database.run(messages.find_one, {"uid": 1})
    assert "text" not in original and "segs" not in original
    text = (await store.database.run(kept.find_one, {"_id": original["cid"]}))["text"]
    assert "Café quarterly figures" in text
    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    assert await store.messages.expunge(inbox.id) == [1]
    archived = await store.database.run(store.database.collection("archive").find_one, {})
    assert "text" not in archived and "segs" not in archived
    assert archived["cid"] == original["cid"] and archived["subject"] == "figures"
    assert await _count(store, "contents") == 1

    (item,), _ = await store.archive.page(user.id)
    (done,) = await store.archive.restore(user.id, [item.id])
    restored = await store.database.run(messages.find_one, {"uid": done.uid})
    assert restored["cid"] == original["cid"]
    for key in (query.Body("café quarterly"), query.Text("QUARTERLY")):
        assert await store.messages.search(inbox.id, key) == [done.uid]
    (record,) = await store.messages.fetch(inbox.id, [done.uid], ["content"])
    assert await store.messages.read(record) == data

    await store.messages.store_flags(inbox.id, [done.uid], "add", ["\\Deleted"])
    assert await store.messages.expunge(inbox.id) == [done.uid]
    store.archive.days = 0
    await store.database.run(store.archive.purge_expired_sync)
    assert await _count(store, "archive") == 0 and await _count(store, "contents") == 0


async def test_a_message_stored_whole_is_archived_and_restored_as_before(
        store: Store, user: User) -> None:
    """A message document written before contents had documents of their own (its
    bytes and text in it, no ``cid``) is read, searched, archived without its text
    and restored with the text made again from its bytes."""
    data, inbox = await _figures(store, user)
    messages = store.database.collection("messages")
    kept = store.database.collection("contents")
    doc = await store.database.run(messages.find_one, {"uid": 1})
    whole = await store.database.run(kept.find_one, {"_id": doc.pop("cid")})
    await store.database.run(kept.delete_one, {"_id": whole["_id"]})
    await store.database.run(messages.replace_one, {"_id": doc["_id"]},
                             {**doc, **{k: v for k, v in whole.items()
                                        if k not in ("_id", "user")}})
    store.messages.cache.clear()
    assert await store.messages.search(inbox.id, query.Body("café quarterly")) == [1]
    (record,) = await store.messages.fetch(inbox.id, [1], ["content"])
    assert await store.messages.read(record) == data

    await store.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
    assert await store.messages.expunge(inbox.id) == [1]
    archived = await store.database.run(store.database.collection("archive").find_one, {})
    assert "text" not in archived and archived["segs"] and "cid" not in archived
    (item,), _ = await store.archive.page(user.id)
    (done,) = await store.archive.restore(user.id, [item.id])
    restored = await store.database.run(messages.find_one, {"uid": done.uid}, {"text": 1})
    assert restored["text"] == whole["text"]
    for key in (query.Body("café quarterly"), query.Text("QUARTERLY")):
        assert await store.messages.search(inbox.id, key) == [done.uid]
