"""ACLs in the store (RFC 4314): rights vocabulary, lists on mailboxes, sharing,
per-reader \\Seen, the "Shared" namespace's owner, and a deleted user's grants."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

from duck.store import InvalidInput, Store, User, metrics, rights, rights_of
from duck.store.engine import schema
from duck.store.engine.ids import parse_id
from duck.store.mail import acl


def test_rights_parse_and_render_with_rfc2086_compatibility() -> None:
    # RFC 4314 §2.1.1: "c" stands for k+x and "d" for e+t here, both ways.
    assert rights.parse("lrc") == frozenset("lrkx")
    assert rights.parse("D") == frozenset("et")
    assert rights.render("tekx") == "kxtecd"
    assert rights.render("lr") == "lr"
    with pytest.raises(InvalidInput):
        rights.parse("lrz")


def test_effective_rights_subtract_negative_entries() -> None:
    acl = {"anyone": "lr", "bob@example.com": "lrsw", "-bob@example.com": "w"}
    assert rights.effective(acl, "bob@example.com") == frozenset("lrs")
    assert rights.effective(acl, "carol@example.com") == frozenset("lr")
    assert rights.effective({"-anyone": "r", "authenticated": "lr"}, "x") == frozenset("l")


async def test_share_list_revoke(store: Store, user: User) -> None:
    bob = await store.users.create("bob@example.com", "pw")
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert await store.acl.shared_with(bob.id, bob.username) == []
    modseq = await store.acl.set_rights(inbox.id, bob.username, "lrs")
    assert modseq == inbox.highest_modseq + 1
    shared = await store.acl.shared_with(bob.id, bob.username)
    assert [(s.mailbox.id, s.owner, s.rights) for s in shared] == [
        (inbox.id, user.username, frozenset("lrs"))]
    again = await store.mailboxes.get(user.id, "INBOX")
    assert rights_of(again, bob.id, bob.username) == frozenset("lrs")
    assert rights_of(again, user.id, user.username) == rights.ALL_RIGHTS
    await store.acl.set_rights(inbox.id, bob.username, "s", mode="remove")
    assert await store.acl.rights(inbox.id, bob.id, bob.username) == frozenset("lr")
    await store.acl.delete(inbox.id, bob.username)
    assert await store.acl.rights(inbox.id, bob.id, bob.username) == frozenset()
    assert await store.acl.shared_with(bob.id, bob.username) == []
    # The journal says so (sessions re-read their rights on it).
    kinds = [e.kind for e in await store.journal.changes_since(inbox.id, 0)]
    assert kinds.count("acl") == 3


async def test_nothing_shared_is_one_query(store: Store, user: User) -> None:
    """LIST asks what is shared with the user on every call: with nothing shared, one
    query (no lookup of owners' names)."""
    bob = await store.users.create("bob3@example.com", "pw")
    metrics.reset()
    with metrics.command_scope("LIST") as scope:
        assert await store.acl.shared_with(bob.id, bob.username) == []
    assert scope.round_trips == 1
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.acl.set_rights(inbox.id, bob.username, "lr")
    with metrics.command_scope("LIST") as scope:
        shared = await store.acl.shared_with(bob.id, bob.username)
    assert [s.owner for s in shared] == [user.username] and scope.round_trips == 2


async def test_nothing_shared_is_remembered_until_an_acl_change(
        store: Store, user: User, other_process: Callable[[], Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """"Nothing is shared with bob" is asked once, then remembered until an ACL
    change is made here or heard of from another process, or it expires."""
    bob = await store.users.create("bob4@example.com", "pw")
    inbox = await store.mailboxes.get(user.id, "INBOX")

    async def listed() -> tuple[list[str], int]:
        with metrics.command_scope("LIST") as scope:
            shared = await store.acl.shared_with(bob.id, bob.username)
        return [s.mailbox.id for s in shared], scope.round_trips

    assert await listed() == ([], 1)
    assert await listed() == ([], 0)
    # A grant made in this process: seen at once.
    await store.acl.set_rights(inbox.id, bob.username, "lr")
    assert await listed() == ([inbox.id], 2)
    await store.acl.delete(inbox.id, bob.username)
    assert await listed() == ([], 1)
    assert await listed() == ([], 0)

    # A grant made by another process (another Store on the database): heard of
    # through the change stream by this process's notifier.
    async with other_process() as other:
        with trio.fail_after(30):
            drafts = await other.mailboxes.get(user.id, "Drafts")
            await other.acl.set_rights(drafts.id, "anyone", "lr")
            while (await listed())[0] != [drafts.id]:
                await trio.sleep(0.01)

    # Nothing heard of (a change the stream held back): the answer expires.
    carol = await store.users.create("carol4@example.com", "pw")
    boxes = store.database.collection(schema.MAILBOXES)

    async def drafts_acl(entries: list[dict[str, str]]) -> None:
        # (Written behind the store's back: no journal entry, no event.)
        await store.database.run(boxes.update_one, {"_id": parse_id(drafts.id)},
                                 {"$set": {"acl": entries}})

    await drafts_acl([])
    assert await store.acl.shared_with(carol.id, carol.username) == []
    await drafts_acl([{"id": "anyone", "rights": "lr"}])
    assert await store.acl.shared_with(carol.id, carol.username) == []
    clock = time.monotonic() + acl.NOTHING_SHARED_FOR + 1
    monkeypatch.setattr(acl.time, "monotonic", lambda: clock)
    found = await store.acl.shared_with(carol.id, carol.username)
    assert [s.mailbox.id for s in found] == [drafts.id]


async def test_deleted_user_grants_are_forgotten(store: Store, user: User) -> None:
    bob = await store.users.create("bob@example.com", "pw")
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.acl.set_rights(inbox.id, bob.username, "lr")
    await store.admin.delete_user(bob.id)
    newbob = await store.users.create("bob@example.com", "pw")
    assert await store.acl.rights(inbox.id, newbob.id, newbob.username) == frozenset()


async def test_seen_per_reader(store: Store, user: User) -> None:
    inbox = await store.mailboxes.get(user.id, "INBOX")
    bob = await store.users.create("bob@example.com", "pw")
    assert await store.acl.seen(inbox.id, bob.id) == set()
    assert await store.acl.set_seen(inbox.id, bob.id, add=[1, 2, 3, 7]) == {1, 2, 3, 7}
    assert await store.acl.set_seen(inbox.id, bob.id, remove=[2]) == {1, 3, 7}
    assert await store.acl.seen(inbox.id, bob.id) == {1, 3, 7}
    assert await store.acl.seen(inbox.id, user.id) == set()


async def test_shared_namespace_owner(store: Store) -> None:
    owner = await store.acl.shared_owner()
    assert await store.acl.shared_owner() == owner
    box = await store.mailboxes.create(owner, "support")
    await store.acl.set_rights(box.id, "anyone", "lr")
    bob = await store.users.create("bob@example.com", "pw")
    shared = await store.acl.shared_with(bob.id, bob.username)
    assert [(s.mailbox.path, s.owner) for s in shared] == [("support", None)]
