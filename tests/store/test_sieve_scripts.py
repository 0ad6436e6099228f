"""Sieve scripts in the store: put/get/list, one active, rename, delete, caps,
recorded errors, the duplicate memory and the purge with the user."""

from __future__ import annotations

import pytest

from duck.store import (
    MAX_SCRIPT_SIZE,
    MAX_SCRIPTS,
    AlreadyExists,
    InvalidInput,
    NotFound,
    ScriptActive,
    ScriptQuotaExceeded,
    Store,
    User,
)
from duck.store.sieve import scripts

pytestmark = pytest.mark.store


async def test_put_get_list_activate(store: Store, user: User) -> None:
    await store.sieve.put(user.id, "main", "keep;")
    await store.sieve.put(user.id, "other", "discard;")
    assert await store.sieve.active(user.id) is None
    await store.sieve.activate(user.id, "main")
    listed = await store.sieve.scripts(user.id)
    assert [(s.name, s.active, s.size, s.source) for s in listed] == [
        ("main", True, 5, ""), ("other", False, 8, "")]
    active = await store.sieve.active(user.id)
    assert active is not None and active.source == "keep;"
    # Replacing keeps the active mark; activating another moves it.
    await store.sieve.put(user.id, "main", "stop;")
    assert (await store.sieve.get(user.id, "main")).active
    await store.sieve.activate(user.id, "other")
    assert [s.name for s in await store.sieve.scripts(user.id) if s.active] == ["other"]
    await store.sieve.activate(user.id, None)
    assert await store.sieve.active(user.id) is None
    with pytest.raises(NotFound):
        await store.sieve.activate(user.id, "missing")


async def test_rename_and_delete(store: Store, user: User) -> None:
    await store.sieve.put(user.id, "a", "keep;")
    await store.sieve.put(user.id, "b", "keep;")
    await store.sieve.activate(user.id, "a")
    with pytest.raises(AlreadyExists):
        await store.sieve.rename(user.id, "a", "b")
    await store.sieve.rename(user.id, "a", "c")
    assert (await store.sieve.get(user.id, "c")).active
    with pytest.raises(NotFound):
        await store.sieve.get(user.id, "a")
    with pytest.raises(ScriptActive):
        await store.sieve.delete(user.id, "c")
    await store.sieve.delete(user.id, "b")
    with pytest.raises(NotFound):
        await store.sieve.delete(user.id, "b")
    # The old name is free again (the rename was a delete and an insert).
    await store.sieve.put(user.id, "a", "keep;")


async def test_caps_and_names(store: Store, user: User) -> None:
    with pytest.raises(ScriptQuotaExceeded) as info:
        await store.sieve.put(user.id, "big", "#" * (MAX_SCRIPT_SIZE + 1))
    assert info.value.limit == "maxsize"
    for i in range(MAX_SCRIPTS):
        await store.sieve.put(user.id, f"s{i}", "keep;")
    with pytest.raises(ScriptQuotaExceeded) as info:
        await store.sieve.check_space(user.id, "one-more", 10)
    assert info.value.limit == "maxscripts"
    await store.sieve.check_space(user.id, "s0", 10)  # a replacement fits
    with pytest.raises(InvalidInput):
        await store.sieve.put(user.id, "bad\nname", "keep;")
    assert not scripts.valid_name("") and scripts.valid_name("Ünïcode name")


async def test_recorded_error_shows_until_replaced(store: Store, user: User) -> None:
    await store.sieve.put(user.id, "main", "keep;")
    await store.sieve.record_error(user.id, "main", "line 3: bad redirect", 3)
    error = (await store.sieve.get(user.id, "main")).error
    assert error is not None and error.line == 3 and "redirect" in error.message
    await store.sieve.put(user.id, "main", "keep;")
    assert (await store.sieve.get(user.id, "main")).error is None


async def test_duplicate_memory(store: Store, user: User) -> None:
    assert await store.sieve.duplicate(user.id, "k", 3600, False) is False
    assert await store.sieve.duplicate(user.id, "k", 3600, False) is True
    assert await store.sieve.duplicate(user.id, "other", 3600, True) is False
    # A zero period expires at once.
    assert await store.sieve.duplicate(user.id, "zero", 0, False) is False
    assert await store.sieve.duplicate(user.id, "zero", 0, False) is False


async def test_user_delete_purges_scripts(store: Store, user: User) -> None:
    await store.sieve.put(user.id, "main", "keep;")
    await store.sieve.duplicate(user.id, "k", 3600, False)
    await store.admin.delete_user(user.id)
    coll = store.database.collection(scripts.COLLECTION)
    assert await store.database.run(coll.count_documents, {}) == 0
    dups = store.database.collection(scripts.DUPLICATES)
    assert await store.database.run(dups.count_documents, {}) == 0
