"""Users in the store, against the real embedded database."""

from __future__ import annotations

import pytest
from bson import ObjectId

from duck.store import AlreadyExists, AuthenticationFailed, InvalidInput, NotFound, Store

pytestmark = pytest.mark.store


async def test_create_and_get(store: Store) -> None:
    user = await store.users.create("Alice@Example.COM", "s3cret")
    assert user.username == "alice@example.com"
    assert len(user.id) == 24 and ObjectId(user.id)
    fetched = await store.users.get(user.id)
    assert fetched == user
    doc = await store.database.run(store.database.collection("users").find_one, {})
    assert doc["password"].startswith("$scrypt$") and "s3cret" not in doc["password"]


async def test_duplicate_leaves_nothing_half_written(store: Store) -> None:
    await store.users.create("bob@example.com", "pw")
    with pytest.raises(AlreadyExists):
        await store.users.create("BOB@example.com", "other")
    users = await store.database.run(store.database.collection("users").count_documents, {})
    addresses = await store.database.run(
        store.database.collection("addresses").count_documents, {}
    )
    assert (users, addresses) == (1, 1)


@pytest.mark.parametrize(
    "bad", ["", "no-at-sign", "@example.com", "a@", "a b@example.com", "a@-bad-.com", "x" * 300,
            # (a protocol parser's surrogate for an octet that is not UTF-8)
            "a\udcff@example.com"]
)
async def test_invalid_address(store: Store, bad: str) -> None:
    with pytest.raises(InvalidInput):
        await store.users.create(bad, "pw")


async def test_authenticate(store: Store) -> None:
    user = await store.users.create("carol@example.com", "right")
    assert (await store.users.authenticate("CAROL@example.com", "right")).id == user.id
    with pytest.raises(AuthenticationFailed):
        await store.users.authenticate("carol@example.com", "wrong")
    with pytest.raises(AuthenticationFailed):
        await store.users.authenticate("nobody@example.com", "right")


async def test_resolve_address_with_detail(store: Store) -> None:
    user = await store.users.create("dave@example.com", "pw")
    exact = await store.users.resolve_address("DAVE@example.com")
    assert exact is not None and exact.user_id == user.id and exact.detail is None
    tagged = await store.users.resolve_address("dave+lists@example.com")
    assert tagged is not None and tagged.user_id == user.id and tagged.detail == "lists"
    assert await store.users.resolve_address("eve@example.com") is None


async def test_recipient_is_the_address_and_its_user_in_one_query(store: Store) -> None:
    from duck.store import metrics

    user = await store.users.create("frank@example.com", "pw")
    with metrics.command_scope("RCPT") as scope:
        found = await store.users.recipient("Frank+news@example.com")
    assert scope.round_trips == 1
    assert found is not None
    resolved, owner = found
    assert (resolved.user_id, resolved.detail) == (user.id, "news")
    assert owner == await store.users.get(user.id)
    assert await store.users.recipient("nobody@example.com") is None
    assert await store.users.recipient("not an address") is None


async def test_unknown_id(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.users.get("not-an-id")
    with pytest.raises(NotFound):
        await store.users.get(str(ObjectId()))


async def test_verified_passwords_are_remembered_per_stored_hash(store: Store) -> None:
    user = await store.users.create("frank@example.com", "first")
    cache = store.users.verified
    assert len(cache._entries) == 0
    await store.users.authenticate("frank@example.com", "first")
    assert len(cache._entries) == 1  # remembered: the next login hashes nothing
    await store.users.authenticate("frank@example.com", "first")
    assert len(cache._entries) == 1
    with pytest.raises(AuthenticationFailed):  # a wrong password is never cached
        await store.users.authenticate("frank@example.com", "wrong")
    assert len(cache._entries) == 1

    # A password change reaches every process through the stored hash: the old
    # password fails at once although it is still in this cache.
    await store.admin.set_password(user.id, "second")
    with pytest.raises(AuthenticationFailed):
        await store.users.authenticate("frank@example.com", "first")
    assert (await store.users.authenticate("frank@example.com", "second")).id == user.id

    # Disabling is read from the user's document on every login, cached or not.
    await store.database.run(
        store.database.collection("users").update_one,
        {"_id": ObjectId(user.id)}, {"$set": {"disabled": True}},
    )
    with pytest.raises(AuthenticationFailed):
        await store.users.authenticate("frank@example.com", "second")


@pytest.mark.no_database
def test_verified_cache_expires_and_is_bounded() -> None:
    from duck.store.accounts.passwords import VerifiedCache, hash_password

    cache = VerifiedCache(ttl=10.0, size=2)
    stored = hash_password("pw", log_n=4)
    keys = [cache.key(p, stored) for p in ("a", "b", "c")]
    assert len(set(keys)) == 3 and cache.key("a", stored) == keys[0]
    assert cache.key("a", hash_password("pw", log_n=4)) != keys[0]  # another salt
    cache.remember(keys[0], now=0.0)
    assert cache.fresh(keys[0], now=9.9)
    assert not cache.fresh(keys[0], now=10.0)  # expired, and dropped
    assert not cache.fresh(keys[0], now=0.0)
    for i, key in enumerate(keys):
        cache.remember(key, now=float(i))
    assert len(cache._entries) == 2 and not cache.fresh(keys[0], now=3.0)
    assert cache.fresh(keys[2], now=3.0)
