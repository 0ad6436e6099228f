"""WriteBatch: a change's writes to several collections in one command, in order,
with the errors a collection-level write would raise."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pymongo.errors
import pytest

from duck.store import Store
from duck.store.engine.batch import WriteBatch
from duck.store.engine.database import Database

pytestmark = pytest.mark.store


@pytest.fixture(params=["bulkWrite", "per collection"])
async def database(store: Store, request: pytest.FixtureRequest,
                   ) -> AsyncIterator[Database]:
    """The store's database, sending batches with the client-level command or (as
    for a server before MongoDB 8.0) one collection at a time."""
    db = store.database
    saved = db.client_bulk
    if request.param == "per collection":
        db.client_bulk = False
    else:
        assert db.client_bulk, "the embedded server takes bulkWrite"
    try:
        yield db
    finally:
        db.client_bulk = saved


def _docs(db: Database, name: str) -> list[dict[str, Any]]:
    return list(db.collection(name).find({}, {"_id": 0}).sort("n", 1))


def _writes_land_in_order_across_collections(database: Database) -> None:
    database.collection("b").insert_many([{"n": 1, "v": "old"}, {"n": 2}])
    batch = WriteBatch(database)
    batch.insert("a", [{"n": 1}, {"n": 2}])
    # Later writes see earlier ones of the same batch (the order is kept).
    batch.update("a", {"n": 2}, {"$set": {"v": "after insert"}})
    batch.update("b", {"n": 1}, {"$set": {"v": "new"}})
    batch.update("c", {"n": 7}, {"$set": {"v": "upserted"}}, upsert=True)
    batch.delete("b", {"n": 2})
    batch.update("a", {}, {"$inc": {"k": 1}}, many=True)
    assert len(batch) == 7
    database.in_transaction(batch.flush)
    assert len(batch) == 0
    assert _docs(database, "a") == [{"n": 1, "k": 1}, {"n": 2, "v": "after insert", "k": 1}]
    assert _docs(database, "b") == [{"n": 1, "v": "new"}]
    assert _docs(database, "c") == [{"n": 7, "v": "upserted"}]


async def test_writes_land_in_order_across_collections(database: Database) -> None:
    await database.run(_writes_land_in_order_across_collections, database)


def _duplicate_key_is_duplicate_key_error_and_rolls_back(database: Database) -> None:
    database.collection("a").create_index("n", unique=True)
    database.collection("a").insert_one({"n": 1})

    def body(session: Any) -> None:
        batch = WriteBatch(database)
        batch.insert("b", [{"n": 5}])
        batch.insert("a", [{"n": 1}])
        batch.flush(session)

    with pytest.raises(pymongo.errors.DuplicateKeyError):
        database.in_transaction(body)
    assert _docs(database, "b") == []  # the transaction took the first write back


async def test_duplicate_key_is_duplicate_key_error_and_rolls_back(database: Database) -> None:
    await database.run(_duplicate_key_is_duplicate_key_error_and_rolls_back, database)


def _flush_outside_a_transaction(database: Database) -> None:
    batch = WriteBatch(database)
    batch.insert("a", [{"n": 1}])
    batch.update("a", {"n": 1}, {"$set": {"v": 2}})
    batch.flush()
    batch.flush()  # an empty batch sends nothing
    assert _docs(database, "a") == [{"n": 1, "v": 2}]


async def test_flush_outside_a_transaction(database: Database) -> None:
    await database.run(_flush_outside_a_transaction, database)


def _write_conflicts_are_retried_not_raised(database: Database) -> None:
    """Concurrent transactions on one document conflict; the batch's conflict is
    the transient error pymongo's with_transaction retries, so every increment
    lands exactly once."""
    database.collection("a").insert_one({"_id": 1, "n": 0})
    errors: list[BaseException] = []

    def body(session: Any) -> None:
        batch = WriteBatch(database)
        batch.insert("log", [{"n": 0}])
        batch.update("a", {"_id": 1}, {"$inc": {"n": 1}})
        batch.flush(session)

    def worker() -> None:
        try:
            for _ in range(15):
                database.in_transaction(body)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert database.collection("a").find_one({"_id": 1})["n"] == 60
    assert database.collection("log").count_documents({}) == 60



async def test_write_conflicts_are_retried_not_raised(database: Database) -> None:
    await database.run(_write_conflicts_are_retried_not_raised, database)


def _checked_updates_report_their_counts(database: Database) -> None:
    database.collection("a").insert_many([{"n": 1, "v": 0}, {"n": 2, "v": 0}])

    def body(session: Any) -> Any:
        database.collection("a").find_one({}, session=session)  # (the transaction's start)
        batch = WriteBatch(database)
        batch.insert("b", [{"n": 1}])
        changed = batch.update("a", {"n": 1}, {"$set": {"v": 1}}, checked=True)
        batch.update("a", {"n": 2}, {"$set": {"v": 1}})
        same = batch.update("a", {"n": 2}, {"$set": {"v": 1}}, checked=True)
        missing = batch.update("a", {"n": 3}, {"$set": {"v": 1}}, checked=True)
        result = batch.flush(session)
        return [(result.matched[i], result.modified[i]) for i in (changed, same, missing)]

    assert database.in_transaction(body) == [(1, 1), (1, 0), (0, 0)]
    assert _docs(database, "a") == [{"n": 1, "v": 1}, {"n": 2, "v": 1}]


async def test_checked_updates_report_their_counts(database: Database) -> None:
    await database.run(_checked_updates_report_their_counts, database)
