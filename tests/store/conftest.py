"""Store test helpers: a user with default mailboxes, message builders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from duck.store import Store, User
from duck.store.index import textindex


@pytest.fixture
async def user(store: Store) -> User:
    """A user with the default mailboxes and a generous quota."""
    return await store.users.create("alice@example.com", "pw", quota=10**10)


@pytest.fixture
def trigram_index() -> Iterator[None]:
    """The SEARCH trigram index on for one test (it is off by default)."""
    textindex.configure(True)
    try:
        yield
    finally:
        textindex.configure(False)
