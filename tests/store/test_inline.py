"""Store calls run inline on the trio thread over wire.py (duck/store/engine/inline.py):
the same answers and errors as pymongo's, no worker thread, transactions that
commit, abort and retry, cursors across batches, and an outage answered at once."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import bson
import pymongo.collection
import pymongo.errors
import pytest
import trio
from pymongo import (
    DeleteMany,
    DeleteOne,
    InsertOne,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
)

from duck.store import Store
from duck.store.engine import metrics
from duck.store.engine.database import Database
from duck.store.errors import StoreUnavailable

pytestmark = [
    pytest.mark.store,
    # (CI runs the store's write tests again with DUCK_STORE_WIRE=0: pymongo's path.)
    pytest.mark.skipif(os.environ.get("DUCK_STORE_WIRE") == "0",
                       reason="store calls are not inline here"),
]


def _outcome(fn: Callable[[], Any]) -> Any:
    """What ``fn`` returned (results as their public fields) or raised."""
    try:
        value = fn()
    except pymongo.errors.BulkWriteError as exc:
        details = exc.details
        return ("BulkWriteError", details["nInserted"], details["nMatched"],
                [(e["index"], e["code"]) for e in details["writeErrors"]])
    except pymongo.errors.PyMongoError as exc:
        return (type(exc).__name__, getattr(exc, "code", None))
    if hasattr(value, "acknowledged"):
        fields = ("inserted_id", "inserted_ids", "matched_count", "modified_count",
                  "upserted_id", "deleted_count", "inserted_count", "upserted_ids")
        return {f: getattr(value, f) for f in fields if hasattr(value, f)}
    if hasattr(value, "__next__"):
        return list(value)
    return value


def _script(coll: Any) -> list[Callable[[], Any]]:
    """One run of collection calls, each answered by the server's state so far."""
    return [
        lambda: coll.insert_one({"_id": 1, "n": 1, "tags": ["a"]}),
        lambda: coll.insert_many([{"_id": i, "n": i % 3} for i in range(2, 9)]),
        lambda: coll.insert_one({"_id": 3}),
        lambda: coll.find({"n": {"$gte": 1}}, {"n": 1}).sort("_id", -1).limit(4),
        lambda: coll.find({}, ["n"], sort=[("n", 1), ("_id", 1)], skip=2, limit=3),
        lambda: coll.find({}, batch_size=2).sort("_id", 1),
        lambda: coll.find_one(4),
        lambda: coll.find_one({"n": 99}),
        lambda: coll.find_one({}, sort=[("_id", -1)]),
        lambda: coll.update_one({"_id": 2}, {"$set": {"x": 1}}),
        lambda: coll.update_one({"_id": 2}, {"$set": {"x": 1}}),
        lambda: coll.update_one({"_id": 99}, {"$set": {"n": 5}}, upsert=True),
        lambda: coll.update_many({"n": 0}, {"$inc": {"n": 10}}),
        lambda: coll.update_one({"_id": 1}, {"$set": {"tags.$[t]": "b"}},
                                array_filters=[{"t": "a"}]),
        lambda: coll.replace_one({"_id": 2}, {"n": 2, "r": True}),
        lambda: coll.find_one_and_update({"_id": 5}, {"$inc": {"n": 1}},
                                         return_document=ReturnDocument.AFTER),
        lambda: coll.find_one_and_update({"_id": 5}, {"$inc": {"n": 1}},
                                         projection={"n": 1}),
        lambda: coll.find_one_and_update({"_id": 77}, {"$set": {"n": 7}}, upsert=True,
                                         return_document=ReturnDocument.AFTER),
        lambda: coll.count_documents({"n": {"$gt": 1}}),
        lambda: coll.count_documents({}, limit=3),
        lambda: sorted(coll.distinct("n")),
        lambda: coll.bulk_write([InsertOne({"_id": 100}),
                                 UpdateOne({"_id": 100}, {"$set": {"n": 1}}),
                                 UpdateMany({"n": 1}, {"$set": {"one": True}}),
                                 ReplaceOne({"_id": 101}, {"n": 0}, upsert=True),
                                 DeleteOne({"_id": 8}), DeleteMany({"n": 10})]),
        lambda: coll.bulk_write([InsertOne({"_id": 200}), InsertOne({"_id": 1}),
                                 InsertOne({"_id": 201})]),
        lambda: coll.bulk_write([InsertOne({"_id": 300}), InsertOne({"_id": 1}),
                                 InsertOne({"_id": 301})], ordered=False),
        lambda: coll.update_one({"_id": 300}, {"$set": {"_id": 1}}),
        lambda: coll.delete_one({"n": {"$exists": True}}),
        lambda: coll.delete_many({"one": True}),
        lambda: list(coll.aggregate([{"$group": {"_id": None, "s": {"$sum": "$n"}}}])),
        lambda: coll.find({}).sort("_id", 1),
    ]


async def test_inline_calls_answer_as_pymongo_does(store: Store) -> None:
    db = store.database
    assert db.wire is not None, "the embedded server is reached over wire.py"
    inline_coll, threaded_coll = db.collection("parity_a"), db.collection("parity_b")
    trio_thread = threading.get_ident()
    inline_answers, threaded_answers = [], []
    for inline_step, threaded_step in zip(_script(inline_coll), _script(threaded_coll),
                                          strict=True):
        def on_trio(step: Callable[[], Any]) -> Any:
            assert threading.get_ident() == trio_thread
            return _outcome(step)
        inline_answers.append(await db.run(on_trio, inline_step))
        threaded_answers.append(await db.run_threaded(_outcome, threaded_step))
    assert inline_answers == threaded_answers
    # (The script means something: it found documents, errors and upserts.)
    assert ("DuplicateKeyError", 11000) in inline_answers
    assert any(isinstance(a, tuple) and a[0] == "BulkWriteError" for a in inline_answers)
    assert len(inline_answers[-1]) > 5


async def test_an_inline_call_costs_no_thread_and_counts_its_round_trips(store: Store) -> None:
    db = store.database
    coll = db.collection("counted")
    await db.run(coll.insert_many, [{"_id": i} for i in range(5)])
    # (As a set: a thread of an earlier test may end meanwhile; none may start.)
    threads = set(threading.enumerate())
    with metrics.command_scope("INLINE-TEST") as scope:
        docs = await db.run(lambda: list(coll.find({}).sort("_id", 1).batch_size(2)))
    assert [d["_id"] for d in docs] == list(range(5))
    # find + two getMores (2, 2, then 1 and the cursor closed).
    assert scope.round_trips == 3
    assert metrics.statistics()["INLINE-TEST"]["by_db_command"] == {"find": 1, "getMore": 2}
    assert set(threading.enumerate()) <= threads


async def test_a_cursor_made_outside_is_read_inline_and_closed(store: Store) -> None:
    db = store.database
    coll = db.collection("raw")
    await db.run(coll.insert_many, [{"_id": i, "pad": "x" * 10} for i in range(7)])
    cursor = coll.find_raw_batches({}, {"pad": 0}, sort=[("_id", 1)], batch_size=3)
    first = await db.run(next, cursor)
    assert isinstance(first, bytes)
    assert [d["_id"] for d in bson.decode_all(first)] == [0, 1, 2]
    assert cursor.alive
    await db.run(cursor.close)
    assert not cursor.alive


async def test_inline_transactions_commit_abort_and_retry_conflicts(store: Store) -> None:
    db = store.database
    # (The embedded server is a one-node replica set: it has transactions, and an
    # inline call takes them through inline.in_transaction.)
    assert db.transactions and db.wire is not None
    coll = db.collection("txn")
    await db.run(coll.insert_one, {"_id": "counter", "n": 0})

    def failing(session: Any) -> None:
        coll.insert_one({"_id": "lost"}, session=session)
        raise ValueError("taken back")

    with pytest.raises(ValueError):
        await db.run(db.in_transaction, failing)
    assert await db.run(coll.find_one, "lost") is None

    attempts = []

    def bump(session: Any) -> int:
        attempts.append(1)
        doc = coll.find_one_and_update({"_id": "counter"}, {"$inc": {"n": 1}},
                                       return_document=ReturnDocument.AFTER, session=session)
        coll.insert_one({"n": doc["n"]}, session=session)
        return int(doc["n"])

    async def writer(results: list[int]) -> None:
        for _ in range(10):
            results.append(await db.run(db.in_transaction, bump))

    results: list[int] = []
    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(writer, results)
    # Every committed bump is one number, none repeated, none lost.
    assert sorted(results) == list(range(1, 61))
    assert (await db.run(coll.find_one, "counter"))["n"] == 60
    assert await db.run(coll.count_documents, {"n": {"$gte": 1}, "_id": {"$ne": "counter"}}) == 60
    assert len(attempts) >= 60


async def test_a_cancelled_caller_still_gets_its_write_done(store: Store) -> None:
    db = store.database
    coll = db.collection("shielded")
    with trio.move_on_after(0):
        await db.run(coll.insert_one, {"_id": 1})
    assert await db.run(coll.find_one, 1) == {"_id": 1}


async def test_an_unreachable_database_is_unavailable_at_once(mongo_uri: str) -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = Database(f"mongodb://127.0.0.1:{port}/?directConnection=true", "nowhere",
                  timeout_ms=2000)
    try:
        assert db.wire is not None
        with trio.fail_after(5):
            with pytest.raises(StoreUnavailable):
                await db.run(db.collection("x").find_one, {})
    finally:
        db.close()


async def test_a_database_that_does_not_answer_times_out(nursery: trio.Nursery) -> None:
    """A server that takes the command and never replies: the call ends with
    ``NetworkTimeout`` after the socket timeout, and the connection is not reused."""
    from duck.store.engine.wire import Wire

    held: list[trio.SocketStream] = []

    async def silent(stream: trio.SocketStream) -> None:
        held.append(stream)
        await trio.sleep_forever()

    listeners = await nursery.start(trio.serve_tcp, silent, 0)
    port = listeners[0].socket.getsockname()[1]
    wire = Wire("127.0.0.1", port, size=2, codec_options=bson.DEFAULT_CODEC_OPTIONS,
                connect_timeout=2.0, socket_timeout=0.4)
    started = trio.current_time()
    with trio.fail_after(5), pytest.raises(pymongo.errors.NetworkTimeout):
        await wire.command("x", {"ping": 1})
    assert 0.4 <= trio.current_time() - started < 1.5
    with trio.fail_after(5), pytest.raises(pymongo.errors.NetworkTimeout):
        await wire.command("x", {"ping": 1})
    assert len(held) == 2  # (a new connection for the second call)
    await wire.aclose()


@pytest.mark.no_database
def test_deployments_wire_does_not_reach_stay_with_pymongo() -> None:
    for uri in ("mongodb://a:1,b:2/?replicaSet=rs", "mongodb://u:p@127.0.0.1:1/",
                "mongodb://127.0.0.1:1/?replicaSet=rs",
                "mongodb://127.0.0.1:1/?tls=true&tlsInsecure=true"):
        db = Database(uri, "x")
        try:
            assert db.wire is None, uri
            assert isinstance(db.collection("c"), pymongo.collection.Collection)
        finally:
            db.close()


async def test_a_connection_the_server_closed_is_not_used_again(
        store: Store, monkeypatch: pytest.MonkeyPatch, nursery: trio.Nursery) -> None:
    """A restarted database closes every pooled connection: the next call opens a
    new one instead of failing on the dead one."""
    from duck.store.engine import wire as wire_module

    monkeypatch.setattr(wire_module, "CHECK_IDLE", 0.0)
    target = store.database.wire
    assert target is not None
    links: list[trio.SocketStream] = []

    async def relay(source: trio.SocketStream, sink: trio.SocketStream) -> None:
        try:
            while data := await source.receive_some(65536):
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await sink.aclose()

    async def proxy(client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream(target.host, target.port)
        links.extend((client, server))
        async with trio.open_nursery() as pipes:
            pipes.start_soon(relay, client, server)
            pipes.start_soon(relay, server, client)

    listeners = await nursery.start(trio.serve_tcp, proxy, 0)
    port = listeners[0].socket.getsockname()[1]
    db = Database(f"mongodb://127.0.0.1:{port}/?directConnection=true",
                  store.database.name)
    try:
        coll = db.collection("proxied")
        await db.run(coll.insert_one, {"_id": 1})
        for link in links:  # the "restart": every connection closed by the far side
            await link.aclose()
        await trio.sleep(0.05)
        assert await db.run(coll.find_one, 1) == {"_id": 1}
    finally:
        await db.aclose()


async def test_an_inline_change_stream_takes_what_one_get_more_brought(store: Store) -> None:
    db = store.database
    coll = db.collection("streamed")
    stream = await db.run(lambda: coll.watch([{"$match": {"operationType": "insert"}}],
                                             max_await_time_ms=200))
    assert await db.run(stream.try_next) is None  # (nothing yet: one await)
    await db.run(coll.insert_many, [{"_id": i} for i in range(3)])
    changes: list[Any] = []
    with trio.fail_after(10):
        while len(changes) < 3:
            changes += await db.run(stream.take, 10)
    assert [c["fullDocument"]["_id"] for c in changes] == [0, 1, 2]
    assert stream.alive
    await db.run(stream.close)
    assert not stream.alive


async def test_a_commit_whose_reply_was_lost_is_asked_again(
        store: Store, nursery: trio.Nursery) -> None:
    """The connection goes between a commit and its reply: the commit is asked
    again, and the server's answer (committed) is the transaction's, not an error."""
    target = store.database.wire
    assert target is not None and store.database.transactions
    cut: list[int] = []

    async def proxy(client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream(target.host, target.port)

        mine: list[int] = []

        async def upstream() -> None:
            try:
                while data := await client.receive_some(65536):
                    if b"commitTransaction" in data and not cut:
                        cut.append(1)  # (the first commit reaches the server...)
                        mine.append(1)
                    await server.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        async def downstream() -> None:
            try:
                while data := await server.receive_some(65536):
                    if mine:  # (... and its reply is lost with the connection)
                        await client.aclose()
                        return
                    await client.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        async with trio.open_nursery() as pipes:
            pipes.start_soon(upstream)
            pipes.start_soon(downstream)

    listeners = await nursery.start(trio.serve_tcp, proxy, 0)
    port = listeners[0].socket.getsockname()[1]
    db = Database(f"mongodb://127.0.0.1:{port}/?directConnection=true",
                  store.database.name)
    try:
        db.transactions = True
        db.write_concern = store.database.write_concern
        coll = db.collection("committed")
        await db.run(db.in_transaction,
                     lambda session: coll.insert_one({"_id": 1}, session=session))
        assert cut, "the commit went through the cut"
        assert await db.run(coll.find_one, 1) == {"_id": 1}
    finally:
        await db.aclose()
