"""``Store.doctor``: each check finds its kind of damage, and ``fix`` repairs it."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
from bson import ObjectId
from store_samples import multipart_message, simple_message

from duck.store import NotFound, Store, User
from duck.store import doctor as doctor_module
from duck.store.doctor import examine

pytestmark = pytest.mark.store

ATTACHMENT = os.urandom(100_000).hex().encode()  # above the body threshold: in GridFS
NOW = dt.timedelta(0)


def _coll(store: Store, name: str) -> Any:
    return store.database.collection(name)


async def _run(store: Store, fn: Any, *args: Any) -> Any:
    return await store.database.run(fn, *args)


async def test_a_healthy_store_has_no_findings(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", simple_message(), flags=["\\Seen"])
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.copy(inbox.id, [1, 2], user.id, "Archive")
    report = await store.doctor(grace=NOW)
    assert report.findings == [] and report.healthy
    assert report.examined["users"] == 1 and report.examined["bodies"] == 1
    assert report.examined["mailboxes"] >= 2


async def test_doctor_finds_and_fixes_each_kind_of_damage(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", simple_message(), flags=["\\Seen"])
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    await store.messages.append(user.id, "INBOX", simple_message("three"))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    boxes, users, bodies = (_coll(store, n) for n in ("mailboxes", "users", "bodies"))
    box_id = ObjectId(inbox.id)
    # Counters off (a crash between writes), usage off, a leaked body reference, an
    # index gone, a digest entry lost, and a GridFS file nothing names.
    await _run(store, boxes.update_one, {"_id": box_id}, {"$inc": {"count": 2, "unseen": -1}})
    await _run(store, users.update_one, {"username": user.username},
               {"$inc": {"storage_used": 12345}})
    await _run(store, bodies.update_one, {}, {"$inc": {"refs": 3}})
    await _run(store, _coll(store, "addresses").drop_index, "user")
    await _run(store, _coll(store, "digests").update_one,
               {"mailbox": box_id, "k": "m", "c": 0}, {"$unset": {"m.2": ""}})
    orphan = await _run(store, _coll(store, "attachments.files").insert_one,
                        {"length": 10, "chunkSize": 1024, "uploadDate": dt.datetime.now(dt.UTC)})

    report = await store.doctor(grace=NOW)
    found = {(f.check, f.subject.split(" ")[0]) for f in report.findings}
    assert found == {("indexes", "addresses.user"), ("counters", "mailbox"),
                     ("quota", "user"), ("bodies", "body"), ("bodies", "file"),
                     ("digest", "mailbox")}, report.findings
    assert not report.healthy and not any(f.fixed for f in report.findings)
    counters = next(f for f in report.findings if f.check == "counters")
    assert "count 5 (counted 3" in counters.problem and "unseen 1 (counted 2" in counters.problem

    fixed = await store.doctor(fix=True, grace=NOW)
    assert fixed.healthy and fixed.findings and all(f.fixed for f in fixed.findings)
    again = await store.doctor(grace=NOW)
    assert again.findings == [], again.findings
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert (inbox.message_count, inbox.unseen_count) == (3, 2)
    used, _ = await store.quota(user.id)
    assert used == inbox.size
    assert (await _run(store, bodies.find_one, {}))["refs"] == 1
    assert await _run(store, _coll(store, "attachments.files").count_documents,
                      {"_id": orphan.inserted_id}) == 0
    # The rebuilt digest answers again for the message whose entry was lost.
    assert [m.uid for m in await store.messages.view(inbox.id, inbox)] == [1, 2, 3]


async def test_young_bodies_are_left_alone(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", multipart_message(ATTACHMENT))
    await _run(store, _coll(store, "bodies").update_one, {}, {"$inc": {"refs": 1}})
    # Within the grace period a body may belong to a delivery in flight.
    assert (await store.doctor()).findings == []
    assert [f.check for f in (await store.doctor(grace=NOW)).findings] == ["bodies"]


async def test_messages_of_a_vanished_mailbox_are_purged(store: Store, user: User) -> None:
    await store.messages.append(user.id, "Archive", simple_message())
    archive = await store.mailboxes.get(user.id, "Archive")
    await _run(store, _coll(store, "mailboxes").delete_one, {"path": "Archive"})
    report = await store.doctor(grace=NOW)
    problems = sorted(f.problem for f in report.findings)
    assert problems == ["1 messages in a mailbox that no longer exists",
                        "digest of a mailbox that no longer exists"]
    assert (await store.doctor(fix=True, grace=NOW)).healthy
    with pytest.raises(NotFound):
        await store.mailboxes.get_by_id(archive.id)
    assert (await store.doctor(grace=NOW)).findings == []
    assert (await store.quota(user.id))[0] == 0


async def test_a_digest_being_built_is_not_a_finding(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", simple_message())
    inbox = await store.mailboxes.get(user.id, "INBOX")
    from duck.store.index import digest

    # What a server starting with the digest built in the background leaves.
    await _run(store, _coll(store, "mailboxes").update_one, {"_id": ObjectId(inbox.id)},
               {"$set": {"dg": digest.BUILDING}})
    report = await store.doctor(grace=NOW)
    assert report.findings == [] and report.examined["digests being built"] == 1


async def test_doctor_finds_missing_and_unreferred_contents(store: Store, user: User) -> None:
    """A message whose contents document is gone is damaged mail (reported, not
    fixable); contents nothing refers to are reported and deleted by ``fix``, but
    not those younger than the grace, nor those of an archived message."""
    for subject in ("one", "two", "three"):
        await store.messages.append(user.id, "INBOX", simple_message(subject))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, [3], "add", ["\\Deleted"])
    assert await store.messages.expunge(inbox.id) == [3]  # archived, contents kept
    kept, messages = _coll(store, "contents"), _coll(store, "messages")
    damaged = await _run(store, messages.find_one, {"uid": 1})
    await _run(store, kept.delete_one, {"_id": damaged["cid"]})
    old = ObjectId.from_datetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    young = ObjectId()
    for oid in (old, young):
        await _run(store, kept.insert_one, {"_id": oid, "user": ObjectId(user.id),
                                            "segs": [], "text": ""})

    def contents_check(fix: bool = False) -> Any:
        return store.database.run_threaded(lambda: examine(
            store.database, store.mailboxes, store.bodies, fix=fix,
            grace=dt.timedelta(days=1), checks=["contents"]))

    report = await contents_check()
    found = {(f.subject, f.fixable) for f in report.findings}
    assert found == {(f"messages {damaged['_id']}", False), (f"contents {old}", True)}
    assert report.examined["contents"] == 4

    fixed = await contents_check(fix=True)
    assert len(fixed.findings) == 2
    assert await _run(store, kept.count_documents, {"_id": {"$in": [old, young]}}) == 1
    again = await contents_check()
    assert [(f.subject, f.fixable) for f in again.findings] == [
        (f"messages {damaged['_id']}", False)]


async def test_a_write_landing_between_the_scans_is_not_a_finding(
        store: Store, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """The counters' scan reads every mailbox's messages, then the mailboxes and
    users: another process's expunge committed in between makes them differ though
    nothing is wrong (seen in the fault-injection soak, where a write held back behind
    a killed process's transaction landed as the final check ran). Only what one
    snapshot of the mailbox or user still shows is a finding; real damage still is."""
    for subject in ("one", "two", "three"):
        await store.messages.append(user.id, "INBOX", simple_message(subject))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    box_id = ObjectId(inbox.id)
    messages_coll = _coll(store, "messages")

    def expunge_one_elsewhere(session: Any) -> None:
        doc = messages_coll.find_one({"mailbox": box_id}, sort=[("uid", -1)], session=session)
        messages_coll.delete_one({"_id": doc["_id"]}, session=session)
        _coll(store, "mailboxes").update_one(
            {"_id": box_id}, {"$inc": {"count": -1, "unseen": -1, "size": -doc["size"]}},
            session=session)
        _coll(store, "users").update_one(
            {"_id": doc["user"]}, {"$inc": {"storage_used": -doc["size"]}}, session=session)

    class Racing:
        """The messages collection, where the scan's aggregate (the first, outside a
        transaction) is followed by another process's expunge before it answers."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def aggregate(self, pipeline: Any, **kwargs: Any) -> Any:
            result = list(self.inner.aggregate(pipeline, **kwargs))
            if kwargs.get("session") is None and not raced:
                raced.append(True)
                store.database.in_transaction(expunge_one_elsewhere)
            return iter(result)

    raced: list[bool] = []
    real_coll = doctor_module._Doctor.coll
    monkeypatch.setattr(doctor_module._Doctor, "coll", lambda self, name: (
        Racing(real_coll(self, name)) if name == "messages" else real_coll(self, name)))
    report = await store.doctor(grace=NOW)
    assert raced, "the expunge was not made between the scans"
    assert [f for f in report.findings if f.check in ("counters", "quota")] == []

    # Damage, by contrast, is still found with the expunge between the scans.
    raced.clear()
    await _run(store, _coll(store, "mailboxes").update_one, {"_id": box_id},
               {"$inc": {"count": 5}})
    report = await store.doctor(grace=NOW)
    assert raced
    [counters] = [f for f in report.findings if f.check == "counters"]
    assert "count 6 (counted 1" in counters.problem


async def test_an_expunge_between_the_digest_reads_is_not_a_finding(
        store: Store, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest check reads a mailbox's UIDs, then its digest: an expunge committed
    in between (seen in the soak as "digest differs: 0 missing, 2 stale") is no
    finding, as one snapshot of the mailbox shows; a digest entry really lost is."""
    import greenback

    for subject in ("one", "two", "three"):
        await store.messages.append(user.id, "INBOX", simple_message(subject))
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.store_flags(inbox.id, [2], "add", ["\\Deleted"])
    real_scan = doctor_module.digest.scan
    raced: list[bool] = []

    def racing_scan(*args: Any, session: Any = None, **kwargs: Any) -> Any:
        if session is None and not raced:
            raced.append(True)
            assert greenback.await_(store.messages.expunge(inbox.id)) == [2]
        if session is not None:
            kwargs["session"] = session
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(doctor_module.digest, "scan", racing_scan)

    def check_digests() -> Any:
        return examine(store.database, store.mailboxes, store.bodies, grace=NOW,
                       checks=["digest"])

    report = await store.database.run(check_digests)
    assert raced, "the expunge was not made between the reads"
    assert report.findings == [], report.findings

    # A lost entry is still found, with an expunge between the reads or not.
    await _run(store, _coll(store, "digests").update_one,
               {"mailbox": ObjectId(inbox.id), "k": "m", "c": 0}, {"$unset": {"m.3": ""}})
    report = await store.database.run(check_digests)
    assert [f.problem for f in report.findings] == [
        "digest differs from the messages: 1 missing, 0 stale"]
