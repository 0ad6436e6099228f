"""Group commit (engine/groupcommit.py): concurrent writes share one transaction, and
a member's failure takes the group back without losing or doubling anyone's write."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pymongo.errors
import pytest
import trio
from store_samples import simple_message

from duck.store import Store, User
from duck.store.engine import groupcommit, inline, metrics, schema
from duck.store.engine.ids import parse_id
from duck.store.errors import OverQuota
from duck.store.mail import counters, parsers
from duck.store.models import AppendResult, FlagsSnapshot

pytestmark = pytest.mark.store


@pytest.fixture(autouse=True)
def group_commit_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes inline with the client-level bulkWrite and group commit on, whatever
    the run's environment asks for (DUCK_STORE_WIRE=0 and DUCK_GROUP_DEPTH=0 compare
    without them): these tests are about the groups. (Autouse: set before the store
    is opened.)"""
    monkeypatch.setenv("DUCK_STORE_WIRE", "1")
    monkeypatch.setattr(groupcommit, "DEPTH", 2)


def grouping(store: Store) -> groupcommit.Committer:
    """The store's committer (its writes are sent inline, with bulkWrite: every
    engine the tests run on takes it)."""
    assert store.database.wire is not None and store.database.client_bulk
    return groupcommit.committer(store.database)


@asynccontextmanager
async def gathered(committer: groupcommit.Committer, members: int) -> AsyncIterator[None]:
    """Hold every place for a group in flight, so that the writes started in the
    block gather in one group; let it go once ``members`` have joined."""
    slots = committer._slots
    for _ in range(groupcommit.DEPTH):
        slots.acquire_nowait()
    try:
        yield
        with trio.fail_after(10):
            while committer._gathering is None or len(committer._gathering.members) < members:
                await trio.sleep(0.001)
    finally:
        for _ in range(groupcommit.DEPTH):
            slots.release()


def counters_of(store: Store, mailbox_id: str) -> tuple[int, int, int]:
    doc = store.database.collection(schema.MAILBOXES).find_one({"_id": parse_id(mailbox_id)})
    assert doc is not None
    return int(doc["uid_next"]), int(doc["modseq"]), int(doc["count"])


def stored_uids(store: Store, mailbox_id: str) -> list[int]:
    docs = store.database.collection(schema.MESSAGES).find(
        {"mailbox": parse_id(mailbox_id)}, {"uid": 1})
    return sorted(int(d["uid"]) for d in docs)


def sizes_of(store: Store, mailbox_id: str) -> int:
    docs = store.database.collection(schema.MESSAGES).find(
        {"mailbox": parse_id(mailbox_id)}, {"size": 1})
    return sum(int(d["size"]) for d in docs)


def flags_of(store: Store, mailbox_id: str, uid: int) -> list[str]:
    doc = store.database.collection(schema.MESSAGES).find_one(
        {"mailbox": parse_id(mailbox_id), "uid": uid}, {"flags": 1})
    assert doc is not None
    return list(doc["flags"])


def journal_of(store: Store, mailbox_id: str) -> list[tuple[int, str]]:
    """The mailbox's journal entries of its messages: (modseq, kind)."""
    docs = store.database.collection(schema.JOURNAL).find(
        {"mailbox": parse_id(mailbox_id), "kind": {"$in": ["exists", "flags", "expunge"]}})
    return sorted((int(d["modseq"]), str(d["kind"])) for d in docs)


@contextmanager
def scope() -> Iterator[metrics.Scope]:
    with metrics.command_scope("groupcommit-test") as current:
        yield current


async def users(store: Store, n: int, quota: int = 10**9) -> list[User]:
    return [await store.users.create(f"u{i}@example.com", "pw", quota=quota)
            for i in range(n)]


async def test_concurrent_appends_of_several_users_commit_as_one_group(store: Store) -> None:
    committer = grouping(store)
    people = await users(store, 4)
    # (A first write of each mailbox reads its counters: it goes alone.)
    first = [await store.messages.append(u.id, "INBOX", simple_message("first"))
             for u in people]
    groups, members, early = committer.groups, committer.members, committer.early
    phases = committer.phase_seconds()
    results: dict[int, AppendResult] = {}

    async def append(i: int) -> None:
        results[i] = await store.messages.append(people[i].id, "INBOX",
                                                 simple_message(f"second {i}"))

    with scope() as counted:
        async with trio.open_nursery() as nursery, gathered(committer, len(people)):
            for i in range(len(people)):
                nursery.start_soon(append, i)
    assert (committer.groups, committer.members) == (groups + 1, members + len(people))
    # Every reservation and quota charge held: the leader committed at once.
    assert committer.early == early + 1
    # One bulkWrite and one commit for the four of them.
    assert counted.round_trips == 2
    # Where the group's time went (GET /metrics): it waited for its place (held by
    # the test until the four had joined), then for its writes and its commit.
    spent = {k: v - phases[k] for k, v in committer.phase_seconds().items()}
    assert set(spent) == set(groupcommit.PHASES)
    assert spent["slot"] > 0 and spent["writes"] > 0 and spent["commit"] > 0, spent
    for i, done in results.items():
        assert (done.uid, done.modseq) == (first[i].uid + 1, first[i].modseq + 1)
        box = done.mailbox_id
        assert await trio.to_thread.run_sync(counters_of, store, box) == (3, 3, 2)
        assert await trio.to_thread.run_sync(stored_uids, store, box) == [1, 2]
        assert await trio.to_thread.run_sync(journal_of, store, box) == [
            (2, "exists"), (3, "exists")]


async def test_a_member_whose_reservation_missed_takes_the_group_back_and_all_land_once(
        store: Store, mongo_uri: str, db_name: str) -> None:
    """A's mailbox changed in another process since this one wrote it, so A's
    reservation misses inside the group: the group is taken back, B's write is tried
    again on its own, A's the usual way; each lands once, with exact counters."""
    committer = grouping(store)
    a, b = await users(store, 2)
    box_a = (await store.messages.append(a.id, "INBOX", simple_message("a1"))).mailbox_id
    box_b = (await store.messages.append(b.id, "INBOX", simple_message("b1"))).mailbox_id
    other = await Store.open(mongo_uri, db_name)
    try:
        await other.messages.append(a.id, "INBOX", simple_message("a2, elsewhere"))
    finally:
        await other.aclose()
    failures, groups, early = committer.failures, committer.groups, committer.early
    results: dict[str, AppendResult] = {}

    async def append(name: str, user: User) -> None:
        results[name] = await store.messages.append(user.id, "INBOX",
                                                    simple_message(f"{name} 3"))

    async with trio.open_nursery() as nursery, gathered(committer, 2):
        nursery.start_soon(append, "a", a)
        nursery.start_soon(append, "b", b)
    assert committer.failures == failures + 1
    assert committer.early == early  # (a missed reservation is the members' to see)
    assert committer.groups == groups  # (both went alone the second time)
    assert (results["a"].uid, results["a"].modseq) == (3, 4)
    assert (results["b"].uid, results["b"].modseq) == (2, 3)
    assert await trio.to_thread.run_sync(counters_of, store, box_a) == (4, 4, 3)
    assert await trio.to_thread.run_sync(counters_of, store, box_b) == (3, 3, 2)
    assert await trio.to_thread.run_sync(stored_uids, store, box_a) == [1, 2, 3]
    assert await trio.to_thread.run_sync(stored_uids, store, box_b) == [1, 2]
    assert [m for m, _ in await trio.to_thread.run_sync(journal_of, store, box_a)] == [2, 3, 4]
    assert [m for m, _ in await trio.to_thread.run_sync(journal_of, store, box_b)] == [2, 3]


async def test_a_member_refused_over_quota_fails_alone_and_the_others_commit(
        store: Store) -> None:
    committer = grouping(store)
    message = simple_message("fits once")
    rich, = await users(store, 1)
    poor = await store.users.create("poor@example.com", "pw", quota=len(message) + 10)
    box_rich = (await store.messages.append(rich.id, "INBOX", message)).mailbox_id
    box_poor = (await store.messages.append(poor.id, "INBOX", message)).mailbox_id
    outcome: dict[str, Any] = {}
    failures = committer.failures

    async def append(name: str, user: User) -> None:
        try:
            outcome[name] = await store.messages.append(user.id, "INBOX", message)
        except OverQuota as exc:
            outcome[name] = exc

    async with trio.open_nursery() as nursery, gathered(committer, 2):
        nursery.start_soon(append, "poor", poor)
        nursery.start_soon(append, "rich", rich)
    assert committer.failures == failures + 1
    assert isinstance(outcome["poor"], OverQuota)
    assert isinstance(outcome["rich"], AppendResult) and outcome["rich"].uid == 2
    assert await trio.to_thread.run_sync(stored_uids, store, box_rich) == [1, 2]
    assert await trio.to_thread.run_sync(stored_uids, store, box_poor) == [1]
    assert await trio.to_thread.run_sync(counters_of, store, box_poor) == (2, 2, 1)
    assert (await store.users.get(poor.id)).storage_used == len(message)
    assert (await store.users.get(rich.id)).storage_used == 2 * len(message)


async def test_a_body_failing_after_its_group_committed_early_never_writes_again(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group whose writes all held is committed by its leader before the members'
    bodies look at the results. Should a body fail after that (a bug: the check it
    makes is the one the leader made), its writes stand and the failure is raised as
    the bug it is, not as a miss that would have the write made again the usual way
    (a message stored twice)."""
    committer = grouping(store)
    a, b = await users(store, 2)
    box_a = (await store.messages.append(a.id, "INBOX", simple_message("a1"))).mailbox_id
    box_b = (await store.messages.append(b.id, "INBOX", simple_message("b1"))).mailbox_id
    real_check = counters.check
    calls: list[int] = []

    def failing_once(result: Any, reservation: Any) -> None:
        calls.append(reservation.index)
        real_check(result, reservation)
        if len(calls) == 1:
            raise counters.Missed("a check that disagrees with the leader's")

    monkeypatch.setattr(counters, "check", failing_once)
    early = committer.early
    outcome: dict[str, Any] = {}

    async def append(name: str, user: User) -> None:
        try:
            outcome[name] = await store.messages.append(user.id, "INBOX",
                                                        simple_message(f"{name} 2"))
        except groupcommit.CommittedAlready as exc:
            outcome[name] = exc

    async with trio.open_nursery() as nursery, gathered(committer, 2):
        nursery.start_soon(append, "a", a)
        nursery.start_soon(append, "b", b)
    assert committer.early == early + 1
    failed = [name for name, got in outcome.items()
              if isinstance(got, groupcommit.CommittedAlready)]
    assert len(failed) == 1 and len(calls) == 2
    # Both writes landed once, the failed one's too; nothing was written again.
    for box in (box_a, box_b):
        assert await trio.to_thread.run_sync(stored_uids, store, box) == [1, 2]
        assert await trio.to_thread.run_sync(counters_of, store, box) == (3, 3, 2)


async def test_an_early_commit_that_fails_has_every_member_try_again_alone(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The leader's early commit fails as a commit can (a transient error): nothing
    of the group was kept, and each member's write is made again on its own, once."""
    committer = grouping(store)
    people = await users(store, 3)
    boxes = [(await store.messages.append(u.id, "INBOX", simple_message("1"))).mailbox_id
             for u in people]
    real_commit = inline.commit_async
    failed: list[int] = []

    async def failing_once(database: Any, session: Any, deadline: float) -> None:
        if not failed:
            failed.append(1)
            await inline.abort_async(database, session)
            error = pymongo.errors.OperationFailure("a commit that did not happen", 112)
            error._add_error_label("TransientTransactionError")
            raise error
        await real_commit(database, session, deadline)

    monkeypatch.setattr(inline, "commit_async", failing_once)
    failures, early = committer.failures, committer.early

    async def append(user: User) -> None:
        await store.messages.append(user.id, "INBOX", simple_message("2"))

    async with trio.open_nursery() as nursery, gathered(committer, len(people)):
        for user in people:
            nursery.start_soon(append, user)
    assert failed and committer.failures == failures + 1
    assert committer.early == early
    for box in boxes:
        assert await trio.to_thread.run_sync(stored_uids, store, box) == [1, 2]
        assert await trio.to_thread.run_sync(counters_of, store, box) == (3, 3, 2)
        assert [m for m, _ in await trio.to_thread.run_sync(journal_of, store, box)] == [2, 3]


async def test_a_write_failing_inside_a_member_lands_none_of_its_writes(
        store: Store) -> None:
    """The embedded engine commits the writes made before one that failed when it is
    asked to (MongoDB aborts such a transaction itself): a group whose bulkWrite
    reports a failed write is taken back, never committed, so that the writes the
    failing member made before it (its reservation, its message) do not land."""
    committer = grouping(store)
    blocked, other = await users(store, 2)
    box_blocked = (await store.messages.append(blocked.id, "INBOX",
                                               simple_message("one"))).mailbox_id
    box_other = (await store.messages.append(other.id, "INBOX",
                                             simple_message("one"))).mailbox_id
    # The journal entry the next write of the mailbox would make (modseq 3) is taken:
    # its insert fails after the reservation and the message insert of its member.
    await trio.to_thread.run_sync(lambda: store.database.collection(schema.JOURNAL).insert_one(
        {"mailbox": parse_id(box_blocked), "modseq": 3, "kind": "planted"}))
    before = await trio.to_thread.run_sync(counters_of, store, box_blocked)
    outcome: dict[str, Any] = {}
    failures = committer.failures

    async def append(name: str, user: User) -> None:
        try:
            outcome[name] = await store.messages.append(user.id, "INBOX",
                                                        simple_message(name))
        except Exception as exc:  # (what it raised is looked at below)
            outcome[name] = exc

    async with trio.open_nursery() as nursery, gathered(committer, 2):
        nursery.start_soon(append, "blocked", blocked)
        nursery.start_soon(append, "other", other)
    # Nothing of the failed member landed: no message, no counter moved, no quota.
    assert await trio.to_thread.run_sync(stored_uids, store, box_blocked) == [1]
    assert await trio.to_thread.run_sync(counters_of, store, box_blocked) == before
    assert (await store.users.get(blocked.id)).storage_used == len(simple_message("one"))
    assert isinstance(outcome["blocked"], Exception), outcome
    assert isinstance(outcome["other"], AppendResult) and outcome["other"].uid == 2
    assert await trio.to_thread.run_sync(stored_uids, store, box_other) == [1, 2]
    assert committer.failures >= failures + 1


async def test_stores_and_expunges_of_several_mailboxes_share_a_group(store: Store) -> None:
    committer = grouping(store)
    people = await users(store, 3)
    boxes = []
    for u in people:
        for subject in ("one", "two"):
            done = await store.messages.append(u.id, "INBOX", simple_message(subject))
        boxes.append(done.mailbox_id)
    await store.messages.store_flags(boxes[0], [1], "add", ["\\Deleted"])
    groups = committer.groups
    expunged: list[Any] = []

    async def flag(box: str) -> None:
        # (With the session's picture of the mailbox, as IMAP's STORE has it: no read.)
        await store.messages.store_flags(box, [2], "add", ["\\Seen"],
                                         snapshot=FlagsSnapshot(3, {2: ((), 3)}))

    async def expunge() -> None:
        # (Its read is made before the transaction, which then reads nothing.)
        expunged.extend(await store.messages.expunge_journaled(boxes[0], expected=True))

    async with trio.open_nursery() as nursery, gathered(committer, 3):
        nursery.start_soon(expunge)
        nursery.start_soon(flag, boxes[1])
        nursery.start_soon(flag, boxes[2])
    assert committer.groups == groups + 1
    assert [uid for uid, _ in expunged] == [1]
    assert await trio.to_thread.run_sync(stored_uids, store, boxes[0]) == [2]
    for box in boxes[1:]:
        assert await trio.to_thread.run_sync(flags_of, store, box, 2) == ["\\Seen"]
        assert [k for _, k in await trio.to_thread.run_sync(journal_of, store, box)] == [
            "exists", "exists", "flags"]


@pytest.mark.parametrize("seed", [1, 2])
async def test_under_concurrent_writes_no_acknowledged_change_is_lost_or_doubled(
        store: Store, mongo_uri: str, db_name: str, seed: int) -> None:
    """Writers of several users at once (two per user, taking turns on its lock),
    with another process appending to the same mailboxes (reservations then miss
    inside groups) and a user whose quota runs out (a member refused in a group):
    every acknowledged APPEND is there once, every acknowledged EXPUNGE took its
    messages away, and counters, journal and quota agree with what is stored."""
    committer = grouping(store)
    rng = random.Random(seed)
    people = await users(store, 4)
    people.append(await store.users.create("tight@example.com", "pw", quota=2_000))
    boxes = {u.id: (await store.messages.append(u.id, "INBOX", simple_message("0"))).mailbox_id
             for u in people}
    kept: dict[str, set[int]] = {u.id: {1} for u in people}
    removed: dict[str, set[int]] = {u.id: set() for u in people}
    groups, members = committer.groups, committer.members
    other = await Store.open(mongo_uri, db_name)

    async def writer(user: User, n: int) -> None:
        box = boxes[user.id]
        for i in range(12):
            action = rng.random()
            if action < 0.6:
                try:
                    done = await store.messages.append(
                        user.id, "INBOX", simple_message(f"{n}-{i}", body="x" * rng.randrange(400)))
                except OverQuota:
                    continue
                assert done.uid not in kept[user.id] | removed[user.id]
                kept[user.id].add(done.uid)
            elif action < 0.8:
                uids = rng.sample(sorted(kept[user.id]), k=min(2, len(kept[user.id])))
                await store.messages.store_flags(box, uids, "add", ["\\Deleted"])
            else:
                for uid, _ in await store.messages.expunge_journaled(box):
                    kept[user.id].discard(uid)
                    removed[user.id].add(uid)
            await trio.sleep(0)

    async def elsewhere() -> None:
        for i in range(10):
            user = people[i % 2]
            done = await other.messages.append(user.id, "INBOX", simple_message(f"far {i}"))
            kept[user.id].add(done.uid)

    try:
        with trio.fail_after(120):
            # (The first writes gather in one group whatever the engine's pace: on
            # one that answers a request at a time, the writers seldom find each
            # other ready at once, and a run could share no group at all.)
            async with trio.open_nursery() as nursery, gathered(committer, 2):
                for n, user in enumerate(people * 2):
                    nursery.start_soon(writer, user, n)
                nursery.start_soon(elsewhere)
    finally:
        await other.aclose()
    assert committer.members - members > committer.groups - groups  # (some were shared)
    for user in people:
        box = boxes[user.id]
        stored = await trio.to_thread.run_sync(stored_uids, store, box)
        assert stored == sorted(kept[user.id])
        uid_next, modseq, count = await trio.to_thread.run_sync(counters_of, store, box)
        assert count == len(stored) and uid_next > max(set(stored) | removed[user.id], default=0)
        journal = await trio.to_thread.run_sync(journal_of, store, box)
        assert len({m for m, _ in journal}) == len(journal) and journal[-1][0] == modseq
        assert sum(1 for _, kind in journal if kind == "exists") == len(stored) + len(
            removed[user.id])
        assert sum(1 for _, kind in journal if kind == "expunge") == len(removed[user.id])
        sizes = await trio.to_thread.run_sync(sizes_of, store, box)
        assert (await store.users.get(user.id)).storage_used == sizes


async def test_a_write_that_waits_for_its_users_lock_is_counted(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three writes of one user at once: the second and the third wait for the
    transaction before theirs (the user's lock, mail/messages.py ``KeyedLocks``),
    and the waits are counted."""
    # (Indexed in place: all three come to the lock at once, not one by one from
    # the parse worker, mail/parsers.py.)
    monkeypatch.setattr(parsers, "WORKERS", 0)
    grouping(store)
    (person,) = await users(store, 1)
    await store.messages.append(person.id, "INBOX", simple_message("first"))
    before = store.messages.lock_statistics()

    async def append(i: int) -> None:
        await store.messages.append(person.id, "INBOX", simple_message(f"next {i}"))

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(append, i)
    after = store.messages.lock_statistics()
    assert after["waits"] - before["waits"] == 2, (before, after)
    assert after["seconds"] > before["seconds"]
    inbox = await store.mailboxes.get(person.id, "INBOX")
    assert inbox.message_count == 4
