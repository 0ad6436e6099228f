"""Store test helpers: a user with default mailboxes, message builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import trio

from duck.store import Notifier, Store, User
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


@pytest.fixture
def other_process(store: Store, mongo_uri: str, db_name: str, nursery: trio.Nursery
                  ) -> Callable[[], AbstractAsyncContextManager[Store]]:
    """``async with other_process() as other:`` another process on the store's
    database (another Store), whose changes the store's process hears of through a
    notifier that is watching the change stream from then on (started only then:
    a test's earlier part sees its own changes alone)."""

    @asynccontextmanager
    async def started() -> AsyncIterator[Store]:
        notifier = Notifier(store.database, journal=store.journal)
        await nursery.start(notifier.run)
        other = await Store.open(mongo_uri, db_name)
        try:
            with trio.fail_after(30):
                while notifier.mode != "change-stream":
                    await trio.sleep(0.01)
            yield other
        finally:
            await other.aclose()

    return started


@pytest.fixture
def local_notifier(nursery: trio.Nursery) -> Callable[..., Awaitable[Notifier]]:
    """``await local_notifier(store, **options)``: a notifier of ``store`` fed by its
    store (a lone process, or one of the workers with ``siblings``), started, and
    in that mode."""

    async def started(store: Store, **options: object) -> Notifier:
        options.setdefault("sole", True)
        notifier = Notifier(store.database, journal=store.journal, **options)  # type: ignore[arg-type]
        await nursery.start(notifier.run)
        with trio.fail_after(30):
            while notifier.mode != "local":
                await trio.sleep(0.01)
        return notifier

    return started
