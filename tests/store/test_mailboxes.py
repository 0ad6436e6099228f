"""Mailboxes against the real embedded database."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import trio
from store_samples import simple_message

from duck.store import AlreadyExists, InvalidInput, NotFound, Store, User
from duck.store.engine import metrics, schema
from duck.store.engine.ids import parse_id as fetch_parse_id
from duck.store.mail import mailboxes
from duck.store.mail.mailboxes import new_mailbox_doc

pytestmark = pytest.mark.store


async def test_default_mailboxes_created_with_user(store: Store, user: User) -> None:
    boxes = {m.path: m for m in await store.mailboxes.list(user.id)}
    assert set(boxes) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
    assert boxes["Sent"].special_use == "\\Sent" and boxes["INBOX"].special_use is None
    assert all(m.uid_next == 1 and m.highest_modseq == 1 for m in boxes.values())
    assert len({m.uid_validity for m in boxes.values()}) == 6


async def test_inbox_case_insensitive(store: Store, user: User) -> None:
    assert (await store.mailboxes.get(user.id, "inbox")).path == "INBOX"
    with pytest.raises(AlreadyExists):
        await store.mailboxes.create(user.id, "Inbox")


async def test_create_makes_parents(store: Store, user: User) -> None:
    box = await store.mailboxes.create(user.id, "Work/Projects/Duck")
    assert box.path == "Work/Projects/Duck"
    paths = [m.path for m in await store.mailboxes.list(user.id)]
    assert "Work" in paths and "Work/Projects" in paths
    with pytest.raises(AlreadyExists):
        await store.mailboxes.create(user.id, "Work/Projects")


@pytest.mark.parametrize("bad", ["", "/a", "a/", "a//b", "bad\x00name", "x" * 2000])
async def test_invalid_names(store: Store, user: User, bad: str) -> None:
    with pytest.raises(InvalidInput):
        await store.mailboxes.create(user.id, bad)


async def test_rename_then_create_old_name_again(store: Store, user: User) -> None:
    a = await store.mailboxes.create(user.id, "A")
    await store.mailboxes.create(user.id, "A/child")
    renamed = await store.mailboxes.rename(user.id, "A", "B")
    assert renamed.id == a.id and renamed.uid_validity == a.uid_validity
    assert renamed.highest_modseq == a.highest_modseq + 1
    paths = [m.path for m in await store.mailboxes.list(user.id)]
    assert "B/child" in paths and "A" not in paths and "A/child" not in paths
    # The stale-unique-key bug of the Rust engine would fail this create.
    again = await store.mailboxes.create(user.id, "A")
    assert again.id != a.id and again.uid_validity > a.uid_validity
    await store.mailboxes.create(user.id, "A/child")
    with pytest.raises(AlreadyExists):
        await store.mailboxes.rename(user.id, "A", "B")
    with pytest.raises(InvalidInput):
        await store.mailboxes.rename(user.id, "A", "A/child/x")
    with pytest.raises(NotFound):
        await store.mailboxes.rename(user.id, "Nope", "Z")


async def test_rename_inbox_moves_messages(store: Store, user: User) -> None:
    await store.messages.append(user.id, "INBOX", simple_message())
    await store.mailboxes.create(user.id, "INBOX/sub")
    old = await store.mailboxes.get(user.id, "INBOX")
    moved = await store.mailboxes.rename(user.id, "INBOX", "Old")
    assert moved.message_count == 1 and moved.uid_validity == old.uid_validity
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert inbox.message_count == 0 and inbox.id != old.id
    assert [s.uid for s in await store.messages.view(moved.id)] == [1]
    assert await store.messages.view(inbox.id) == []
    assert (await store.mailboxes.get(user.id, "INBOX/sub")).path == "INBOX/sub"


async def test_delete_frees_messages_and_quota(store: Store, user: User) -> None:
    box = await store.mailboxes.create(user.id, "Tmp")
    data = simple_message()
    await store.messages.append(user.id, "Tmp", data)
    assert (await store.quota(user.id))[0] == len(data)
    await store.mailboxes.delete(user.id, "Tmp")
    assert (await store.quota(user.id))[0] == 0
    count = await store.database.run(
        store.database.collection("messages").count_documents, {}
    )
    assert count == 0
    with pytest.raises(NotFound):
        await store.mailboxes.get(user.id, "Tmp")
    recreated = await store.mailboxes.create(user.id, "Tmp")
    assert recreated.uid_validity > box.uid_validity
    with pytest.raises(InvalidInput):
        await store.mailboxes.delete(user.id, "inbox")
    with pytest.raises(NotFound):
        await store.mailboxes.delete(user.id, "Nope")


async def test_subscriptions_are_names(store: Store, user: User) -> None:
    """RFC 3501 §6.3.6: subscriptions are names: the default folders start
    subscribed, a CREATE does not subscribe, a name may be subscribed before its
    mailbox exists and stays subscribed after DELETE."""
    defaults = await store.mailboxes.subscriptions(user.id)
    assert "INBOX" in defaults and "Sent" in defaults
    await store.mailboxes.create(user.id, "News")
    assert "News" not in await store.mailboxes.subscriptions(user.id)
    await store.mailboxes.set_subscribed(user.id, "News", True)
    await store.mailboxes.set_subscribed(user.id, "News", True)  # idempotent
    await store.mailboxes.set_subscribed(user.id, "Later/On", True)  # no mailbox yet
    await store.mailboxes.delete(user.id, "News")
    subs = await store.mailboxes.subscriptions(user.id)
    assert "News" in subs and "Later/On" in subs and list(subs) == sorted(subs)
    await store.mailboxes.set_subscribed(user.id, "News", False)
    assert "News" not in await store.mailboxes.subscriptions(user.id)
    with pytest.raises(NotFound):
        await store.mailboxes.set_subscribed(user.id, "News", False)
    with pytest.raises(InvalidInput):
        await store.mailboxes.set_subscribed(user.id, "a//b", True)
    # RENAME carries the subscriptions of the name and its inferiors along.
    await store.mailboxes.create(user.id, "P/Q")
    await store.mailboxes.set_subscribed(user.id, "P", True)
    await store.mailboxes.set_subscribed(user.id, "P/Q", True)
    await store.mailboxes.rename(user.id, "P", "R")
    subs = await store.mailboxes.subscriptions(user.id)
    assert {"R", "R/Q"} <= set(subs) and not {"P", "P/Q"} & set(subs)


async def test_subscription_flags_of_an_older_layout_move(store: Store, user: User) -> None:
    box = await store.mailboxes.create(user.id, "Old")
    coll = store.database.collection("mailboxes")
    await store.database.run(coll.update_one, {"_id": fetch_parse_id(box.id)},
                             {"$set": {"subscribed": True}})
    assert await store.database.run(store.mailboxes.migrate_subscriptions_sync) == 1
    assert "Old" in await store.mailboxes.subscriptions(user.id)
    assert await store.database.run(store.mailboxes.migrate_subscriptions_sync) == 0


async def test_mailbox_events_journaled(store: Store, user: User) -> None:
    box = await store.mailboxes.create(user.id, "J")
    await store.mailboxes.rename(user.id, "J", "K")
    await store.mailboxes.delete(user.id, "K")
    entries = await store.journal.changes_since(box.id, 0)
    assert [(e.kind, e.modseq, e.path) for e in entries] == [
        ("mailbox-create", 1, "J"), ("mailbox-rename", 2, "K"), ("mailbox-delete", 3, "K"),
    ]


async def test_status_counters(store: Store, user: User) -> None:
    a = simple_message("one")
    b = simple_message("two")
    await store.messages.append(user.id, "INBOX", a, flags=["\\Seen"])
    await store.messages.append(user.id, "INBOX", b)
    status = await store.mailboxes.status(user.id, "INBOX")
    assert (status.message_count, status.unseen_count, status.size) == (2, 1, len(a) + len(b))
    assert status.uid_next == 3 and status.highest_modseq == 3


async def test_list_reused_until_a_change_is_made_or_heard_of(
        store: Store, user: User, other_process: Callable[[], Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """LIST's read of the mailbox list (``reuse=True``) is answered again without a
    query until a change of the user's mailboxes is made in this process or heard
    of from another, or it expires; a plain ``list`` always reads."""

    async def listed(reuse: bool = True) -> tuple[list[str], int]:
        with metrics.command_scope("LIST") as scope:
            boxes = await store.mailboxes.list(user.id, reuse=reuse)
        return [m.path for m in boxes], scope.round_trips

    defaults = ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    assert await listed() == (defaults, 1)
    assert await listed() == (defaults, 0)
    assert await listed(reuse=False) == (defaults, 1)
    # Changes made in this process: seen at once.
    await store.mailboxes.create(user.id, "Work/Duck")
    assert await listed() == (sorted([*defaults, "Work", "Work/Duck"]), 1)
    await store.mailboxes.rename(user.id, "Work", "Play")
    assert await listed() == (sorted([*defaults, "Play", "Play/Duck"]), 1)
    await store.mailboxes.delete(user.id, "Play/Duck")
    assert await listed() == (sorted([*defaults, "Play"]), 1)
    assert await listed() == (sorted([*defaults, "Play"]), 0)

    # A mailbox created by another process (another Store on the database): heard
    # of through the change stream by this process's notifier (long before the
    # list would expire).
    monkeypatch.setattr(mailboxes, "LIST_REUSED_FOR", 3600.0)
    assert await listed(reuse=False) == (sorted([*defaults, "Play"]), 1)
    async with other_process() as other:
        with trio.fail_after(30):
            await other.mailboxes.create(user.id, "Elsewhere")
            while "Elsewhere" not in (await listed())[0]:
                await trio.sleep(0.01)
    now = sorted([*defaults, "Elsewhere", "Play"])
    assert await listed() == (now, 0)

    # Written behind the store's back (no journal entry, no event): the reused list
    # does not have it until it expires.
    boxes = store.database.collection(schema.MAILBOXES)
    await store.database.run(boxes.insert_one, new_mailbox_doc(
        fetch_parse_id(user.id), "Restored", 7, special_use=None))
    assert await listed() == (now, 0)
    clock = time.monotonic() + 3600 + 1
    monkeypatch.setattr(mailboxes.time, "monotonic", lambda: clock)
    assert await listed() == (sorted([*now, "Restored"]), 1)

    # The notifier lost its stream: anything may have changed, nothing is reused.
    store.database.mailboxes_changed(None)
    assert (await listed())[1] == 1
