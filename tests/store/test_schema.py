"""Start-up makes the indexes the store uses and drops those it no longer does.

A data directory made by an earlier version keeps its indexes: each one costs every
insert and delete of its collection, so an index nothing reads any more is dropped
at the next start (``schema.retire``), and one that only a setting uses exists while
the setting is on (``schema.register(..., when=...)``: the SEARCH trigram index).
"""

from __future__ import annotations

import pytest
from pymongo import ASCENDING, IndexModel

from duck.store import Store
from duck.store.engine import schema
from duck.store.index import textindex

pytestmark = pytest.mark.store


async def _names(store: Store, collection: str) -> set[str]:
    def names() -> set[str]:
        return {ix["name"] for ix in store.database.db[collection].list_indexes()}

    return await store.database.run_threaded(names)


async def _ensure(store: Store) -> None:
    await store.database.run_threaded(schema.ensure_indexes, store.database.db)


async def test_indexes_of_an_earlier_layout_are_dropped_at_start_up(store: Store) -> None:
    assert "mailbox_seen" in schema.RETIRED[schema.MESSAGES]
    assert "user" in schema.RETIRED["contents"]
    assert "bodies" in schema.RETIRED[schema.MESSAGES]
    assert {"bodies", "archived"} <= set(schema.RETIRED[schema.ARCHIVE])

    def make_old() -> None:  # (as a data directory of an earlier version has them)
        for collection, retired in schema.RETIRED.items():
            store.database.db[collection].create_indexes([
                IndexModel([("old", ASCENDING), (name, ASCENDING)], name=name)
                for name in retired])

    await store.database.run_threaded(make_old)
    for collection, retired in schema.RETIRED.items():
        assert set(retired) <= await _names(store, collection)
    await _ensure(store)
    for collection, retired in schema.RETIRED.items():
        assert not set(retired) & await _names(store, collection)
    # What the store does use is there, and a second start changes nothing.
    names = await _names(store, schema.MESSAGES)
    assert {"mailbox_uid", "mailbox_modseq", "mailbox_deleted", "bodies_sparse"} <= names
    await _ensure(store)
    assert await _names(store, schema.MESSAGES) == names


async def test_the_trigram_index_exists_only_while_it_is_on(store: Store) -> None:
    assert not textindex.ENABLED
    assert "mailbox_g" not in await _names(store, schema.MESSAGES)
    assert "mailbox_g" not in {ix.document["name"] for ix in schema.wanted(schema.MESSAGES)}
    textindex.configure(True)
    try:
        await _ensure(store)
        assert "mailbox_g" in await _names(store, schema.MESSAGES)
    finally:
        textindex.configure(False)
    await _ensure(store)
    assert "mailbox_g" not in await _names(store, schema.MESSAGES)


async def test_an_index_another_process_dropped_first_is_no_error(store: Store) -> None:
    # Two processes starting at once (duck serve --workers 2) both list the retired
    # index and both drop it: the second drop finds none, and its start goes on.
    db = store.database.db

    class Listed:
        """A collection that still lists an index already dropped."""

        def __init__(self, name: str) -> None:
            self.real = db[name]

        def list_indexes(self) -> list[dict[str, object]]:
            return [*self.real.list_indexes(), {"name": "mailbox_size"}]

        def __getattr__(self, attribute: str) -> object:
            return getattr(self.real, attribute)

    class Racing:
        def __getitem__(self, name: str) -> Listed:
            return Listed(name)

    await store.database.run_threaded(schema.ensure_indexes, Racing())
    assert "mailbox_size" not in await _names(store, schema.MESSAGES)
