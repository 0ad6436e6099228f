"""Metadata entries in the store (RFC 5464): set/get, depth, caps, purges."""

from __future__ import annotations

import pytest

from duck.store import (
    InvalidInput,
    MetadataTooLarge,
    MetadataTooMany,
    NotFound,
    Store,
    User,
)
from duck.store.mail import metadata

pytestmark = pytest.mark.store


async def _count(store: Store, query: dict[str, object]) -> int:
    coll = store.database.collection(metadata.COLLECTION)
    return int(await store.database.run(coll.count_documents, query))


async def test_set_get_depth_and_remove(store: Store, user: User) -> None:
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.metadata.set(user.id, inbox.id, [
        ("/private/a", b"1"), ("/private/a/b", b"2"), ("/private/a/b/c", b"3"),
        ("/shared/a", b"s"), ("/private/ab", b"sibling")])
    get = store.metadata.get
    assert await get(user.id, inbox.id, ["/private/a"]) == [("/private/a", b"1")]
    assert await get(user.id, inbox.id, ["/private/a"], "1") == [
        ("/private/a", b"1"), ("/private/a/b", b"2")]
    assert await get(user.id, inbox.id, ["/private/a"], "infinity") == [
        ("/private/a", b"1"), ("/private/a/b", b"2"), ("/private/a/b/c", b"3")]
    # Case-insensitive names (RFC 5464 §3.2); server entries are apart from INBOX's.
    assert await get(user.id, inbox.id, ["/SHARED/A"]) == [("/shared/a", b"s")]
    assert await get(user.id, None, ["/shared/a"]) == []
    await store.metadata.set(user.id, inbox.id, [("/private/a", None), ("/Private/A/B", b"x")])
    assert await get(user.id, inbox.id, ["/private/a"], "1") == [("/private/a/b", b"x")]


async def test_invalid_names_and_missing_mailbox(store: Store, user: User) -> None:
    for name in ("/private", "/shared/x"):
        assert metadata.valid_entry(name)
    for name in ("/other", "/private/", "/private//a", "/private/*", "/shared/%", "x",
                 "/private/\x01"):
        assert not metadata.valid_entry(name), name
        with pytest.raises(InvalidInput):
            await store.metadata.set(user.id, None, [(name, b"v")])
    box = await store.mailboxes.create(user.id, "gone")
    await store.mailboxes.delete(user.id, "gone")
    with pytest.raises(NotFound):
        await store.metadata.set(user.id, box.id, [("/private/x", b"v")])


async def test_caps_are_all_or_nothing(store: Store, user: User) -> None:
    with pytest.raises(MetadataTooLarge) as info:
        await store.metadata.set(user.id, None, [
            ("/private/ok", b"v"), ("/private/big", b"x" * (metadata.MAX_VALUE + 1))])
    assert info.value.limit == metadata.MAX_VALUE
    await store.metadata.set(user.id, None, [
        (f"/private/e{i}", b"v") for i in range(metadata.MAX_ENTRIES)])
    with pytest.raises(MetadataTooMany):
        # One removed, two added: one past the cap.
        await store.metadata.set(user.id, None, [
            ("/private/ok", b"v"), ("/private/e0", None), ("/private/more", b"v")])
    assert await store.metadata.get(user.id, None, ["/private/ok", "/private/more"]) == []
    assert len(await store.metadata.get(user.id, None, ["/private"], "1")) == metadata.MAX_ENTRIES


async def test_user_byte_cap(store: Store, user: User) -> None:
    # The per-user cap counts every mailbox's entries and the server's together.
    inbox = await store.mailboxes.get(user.id, "INBOX")
    full = metadata.MAX_USER_BYTES // metadata.MAX_VALUE
    await store.metadata.set(user.id, None, [
        (f"/private/v{i}", b"x" * metadata.MAX_VALUE) for i in range(full - 1)])
    await store.metadata.set(user.id, inbox.id, [("/private/b", b"x" * metadata.MAX_VALUE)])
    with pytest.raises(MetadataTooMany):
        await store.metadata.set(user.id, inbox.id, [("/private/c", b"x")])
    await store.metadata.set(user.id, None, [("/private/v0", None)])
    await store.metadata.set(user.id, inbox.id, [("/private/c", b"x")])


async def test_purged_with_mailbox_and_user(store: Store, user: User) -> None:
    box = await store.mailboxes.create(user.id, "box")
    await store.metadata.set(user.id, box.id, [("/private/a", b"1")])
    await store.metadata.set(user.id, None, [("/private/s", b"1")])
    moved = await store.mailboxes.rename(user.id, "box", "moved")
    assert await store.metadata.get(user.id, moved.id, ["/private/a"]) == [("/private/a", b"1")]
    await store.mailboxes.delete(user.id, "moved")
    assert await _count(store, {"entry": "/private/a"}) == 0
    assert await _count(store, {}) == 1
    await store.admin.delete_user(user.id)
    assert await _count(store, {}) == 0
