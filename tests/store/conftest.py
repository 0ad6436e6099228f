"""Store test helpers: a user with default mailboxes, message builders."""

from __future__ import annotations

import pytest

from duck.store import Store, User


@pytest.fixture
async def user(store: Store) -> User:
    """A user with the default mailboxes and a generous quota."""
    return await store.users.create("alice@example.com", "pw", quota=10**10)
