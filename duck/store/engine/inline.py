"""Store calls run on the trio thread, their database calls sent over wire.py.

The store is written as blocking functions (``Database.run(fn, *args)``). Where the
deployment is one wire.py reaches, ``Database.run`` calls ``fn`` in the calling
task itself, under a greenback portal: each database call inside it suspends the
task (``greenback.await_``) while its reply is awaited, and other tasks run. No
worker thread, no hand-off, and none of pymongo's per-call machinery.

``Database.collection`` returns a :class:`Collection`: pymongo's collection API for
the methods the store uses. Inside an inline call they speak wire.py; anywhere else
(a worker thread, a command-line tool, a deployment wire.py does not reach) they
are pymongo's own. A cursor decides at its first batch, so one made in async code
and read in a store call is read inline. Any other attribute is pymongo's; a method
called inline runs in a worker thread (rare: index and administrative calls).

Results and errors are pymongo's classes, made from the server's replies the way
pymongo makes them.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import greenback
import pymongo.errors
import trio
from bson import Int64
from bson.binary import Binary
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateMany
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from ..errors import StoreUnavailable
from .ids import new_id
from .metrics import ROUND_TRIPS

if TYPE_CHECKING:
    from .database import Database

T = TypeVar("T")

#: The database whose inline call is running in this context (None elsewhere).
ACTIVE: ContextVar[Database | None] = ContextVar("duck_store_inline", default=None)

#: How long a transaction is retried on transient errors (pymongo's own limit).
TRANSACTION_RETRY_SECONDS = 120.0


#: At most this many off_loop calls at once (scrypt takes 32 MB each).
_OFF_LOOP = trio.CapacityLimiter(4)


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` for CPU work that releases the GIL (scrypt: tens of milliseconds
    a password): inside an inline call, in a worker thread while this task waits, so
    that the process's other sessions go on (inline it would stall the event loop's
    thread); anywhere else (a worker thread already), here."""
    if ACTIVE.get() is None:
        return fn(*args)
    result: T = greenback.await_(trio.to_thread.run_sync(fn, *args, limiter=_OFF_LOOP))
    return result


def call(database: Database, command: dict[str, Any], *, db: str | None = None,
         raw: bool = False) -> dict[str, Any]:
    """Run ``command`` from inside an inline call (suspends the task, not the thread)."""
    wire = database.wire
    assert wire is not None
    ROUND_TRIPS.count(next(iter(command)))
    codec = database.raw_codec if raw else None
    return greenback.await_(wire.command(db or database.name, command, codec_options=codec))


async def call_async(database: Database, command: dict[str, Any], *,
                     db: str | None = None) -> dict[str, Any]:
    """``call`` for a trio task (groupcommit.py's leader, between its awaits)."""
    wire = database.wire
    assert wire is not None
    ROUND_TRIPS.count(next(iter(command)))
    return await wire.command(db or database.name, command)


# -- sessions and transactions ----------------------------------------------------------


class Session:
    """A logical session on the wire: an ``lsid`` and its transaction numbers."""

    __slots__ = ("group", "in_transaction", "lsid", "may_group", "started", "txn_number")

    def __init__(self) -> None:
        self.lsid = {"id": Binary(uuid.uuid4().bytes, 4)}
        self.txn_number = 0
        self.in_transaction = False
        #: A command of the current transaction has been sent (the first carries
        #: ``startTransaction``; a commit without one is not sent).
        self.started = False
        #: The group (groupcommit.py) whose transaction carries this one's writes.
        self.group: Any = None
        #: Whether this transaction may join a group (not after a group failed it).
        self.may_group = True

    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        """``command`` with this session's transaction fields."""
        if self.group is not None:
            # (Its writes went in the group's transaction: anything more would go
            # in a transaction of its own, outside the group's.)
            raise RuntimeError("a transaction that joined a group sends nothing more")
        command["lsid"] = self.lsid
        if self.in_transaction:
            command["txnNumber"] = Int64(self.txn_number)
            command["autocommit"] = False
            if not self.started:
                command["startTransaction"] = True
                self.started = True
        return command


def in_transaction(database: Database, fn: Any) -> Any:
    """``fn(session)`` in a transaction, retried on transient errors as pymongo's
    ``with_transaction`` retries it (from inside an inline call)."""
    pool = database.wire_sessions
    session = pool.pop() if pool else Session()
    deadline = time.monotonic() + TRANSACTION_RETRY_SECONDS
    try:
        while True:
            session.txn_number += 1
            session.in_transaction, session.started = True, False
            try:
                result = fn(session)
            except BaseException as exc:
                group, session.group = session.group, None
                if group is not None:
                    session.may_group = False
                    group.end(False)
                else:
                    abort(database, session)
                if (isinstance(exc, pymongo.errors.PyMongoError)
                        and exc.has_error_label("TransientTransactionError")
                        and time.monotonic() < deadline):
                    continue
                raise
            group, session.group = session.group, None
            try:
                if group is not None:
                    session.may_group = False  # (should the commit fail: alone next)
                    group.end(True)
                else:
                    commit(database, session, deadline)
            except pymongo.errors.PyMongoError as exc:
                if (exc.has_error_label("TransientTransactionError")
                        and time.monotonic() < deadline):
                    continue
                raise
            return result
    finally:
        session.in_transaction = False
        session.may_group = True
        pool.append(session)


def commit(database: Database, session: Session, deadline: float) -> None:
    """Commit ``session``'s transaction (retried as pymongo retries a commit)."""
    if session.started:
        greenback.await_(commit_async(database, session, deadline))


async def commit_async(database: Database, session: Session, deadline: float) -> None:
    """``commit`` for a trio task."""
    if not session.started:
        return
    command: dict[str, Any] = {
        "commitTransaction": 1, "lsid": session.lsid,
        "txnNumber": Int64(session.txn_number), "autocommit": False,
        "writeConcern": database.write_concern.document, "maxTimeMS": 30000,
    }
    lost = False
    while True:
        try:
            reply = await call_async(database, dict(command), db="admin")
            raise_concern_error(reply)
            return
        except pymongo.errors.AutoReconnect:
            # The connection went with the reply: the commit may have been made.
            # Asked again (the same transaction number), the server says how it
            # ended; once, as pymongo does, so that an outage is still answered.
            if lost:
                raise
            lost = True
        except pymongo.errors.PyMongoError as exc:
            if (exc.has_error_label("UnknownTransactionCommitResult")
                    and time.monotonic() < deadline):
                # (pymongo retries a commit with majority write concern, too.)
                command["writeConcern"] = {**database.write_concern.document,
                                           "w": "majority", "wtimeout": 10000}
                continue
            raise


def abort(database: Database, session: Session) -> None:
    """Take ``session``'s transaction back (an error is left to the server's timeout)."""
    if session.started:
        greenback.await_(abort_async(database, session))


async def abort_async(database: Database, session: Session) -> None:
    """``abort`` for a trio task."""
    if not session.started:
        return
    try:
        await call_async(database, {"abortTransaction": 1, "lsid": session.lsid,
                                    "txnNumber": Int64(session.txn_number),
                                    "autocommit": False}, db="admin")
    except pymongo.errors.PyMongoError:
        pass  # (The server aborts an abandoned transaction by itself.)


async def rows_of(database: Database, command: dict[str, Any],
                  session: Session | None) -> list[dict[str, Any]]:
    """Send a client-level ``bulkWrite`` and return its reply rows, every batch of its
    cursor read (``session``: the transaction's, for the getMores)."""
    wire = database.wire
    assert wire is not None
    ROUND_TRIPS.count("bulkWrite")
    reply = await wire.command("admin", command)
    cursor = reply["cursor"]
    rows = list(cursor["firstBatch"])
    while cursor.get("id"):
        more: dict[str, Any] = {"getMore": cursor["id"], "collection": "$cmd.bulkWrite"}
        if session is not None:
            session.apply(more)
        ROUND_TRIPS.count("getMore")
        cursor = (await wire.command("admin", more))["cursor"]
        rows.extend(cursor["nextBatch"])
    raise_concern_error(reply)
    return rows


#: MongoDB's WriteConflict code: the transaction is retried, not failed.
_WRITE_CONFLICT = 112


def write_failure(row: dict[str, Any], *, in_transaction: bool = True) -> BaseException:
    """The error a collection-level write would have raised for the write error
    ``row`` (a bulkWrite reply row or a writeErrors entry)."""
    code = row.get("code")
    message = str(row.get("errmsg", "write error"))
    if code == 11000:
        return pymongo.errors.DuplicateKeyError(message, code, row)
    failure = pymongo.errors.OperationFailure(message, code, row)
    if code == _WRITE_CONFLICT and in_transaction:
        failure._add_error_label("TransientTransactionError")
    return failure


def raise_concern_error(reply: dict[str, Any]) -> None:
    concern = reply.get("writeConcernError")
    if concern:
        error = pymongo.errors.WriteConcernError(
            concern.get("errmsg", "write concern error"), concern.get("code"), concern)
        for label in reply.get("errorLabels", ()):
            error._add_error_label(label)
        raise error


# -- collections ---------------------------------------------------------------------------


def _filter(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return {"_id": value}


def _projection(value: Any) -> Any:
    if value is None or isinstance(value, Mapping):
        return value
    return {name: 1 for name in value}


def _sort(key: Any, direction: Any = None) -> dict[str, Any]:
    if isinstance(key, str):
        return {key: 1 if direction is None else direction}
    if isinstance(key, Mapping):
        return dict(key)
    return {k: d for k, d in key}


def _hint(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return _sort(value)


class Collection:
    """pymongo's ``Collection`` API, inline where a store call runs inline."""

    __slots__ = ("_database", "_real", "name")

    def __init__(self, database: Database, name: str) -> None:
        self._database = database
        self.name = name
        self._real = database.db[name]

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._real, attr)
        if callable(value) and ACTIVE.get() is not None:
            return _in_thread(value)
        return value

    def _inline(self, session: Any) -> Database | None:
        """This collection's database when the caller is an inline store call (of
        any database: its task has the portal), else None (pymongo's way)."""
        if ACTIVE.get() is None:
            if isinstance(session, Session):
                raise RuntimeError("a wire session used outside an inline store call")
            return None
        return self._database

    def _send(self, database: Database, command: dict[str, Any], session: Any,
              write: bool = False, raw: bool = False) -> dict[str, Any]:
        if isinstance(session, Session):
            session.apply(command)
        elif write:
            command["writeConcern"] = database.write_concern.document
        return call(database, command, raw=raw)

    # -- reads -----------------------------------------------------------------------

    def find(self, filter: Any = None, projection: Any = None, *, sort: Any = None,
             limit: int = 0, skip: int = 0, batch_size: int = 0, hint: Any = None,
             session: Any = None, **kwargs: Any) -> Cursor:
        """pymongo's ``find``; inline when first read inside an inline call."""
        return Cursor(self, "find", filter, projection, sort=sort, limit=limit, skip=skip,
                      batch_size=batch_size, hint=hint, session=session, kwargs=kwargs)

    def find_raw_batches(self, filter: Any = None, projection: Any = None, *,
                         sort: Any = None, limit: int = 0, batch_size: int = 0,
                         session: Any = None, **kwargs: Any) -> Cursor:
        """pymongo's ``find_raw_batches``: each item the bytes of one batch."""
        return Cursor(self, "find_raw_batches", filter, projection, sort=sort, limit=limit,
                      batch_size=batch_size, session=session, kwargs=kwargs)

    def aggregate(self, pipeline: list[dict[str, Any]], session: Any = None,
                  **kwargs: Any) -> Any:
        """pymongo's ``aggregate``."""
        database = self._inline(session)
        if database is None:
            return self._real.aggregate(pipeline, session=session, **kwargs)
        command: dict[str, Any] = {"aggregate": self.name, "pipeline": pipeline,
                                   "cursor": {}}
        if "batchSize" in kwargs:
            command["cursor"]["batchSize"] = kwargs.pop("batchSize")
        if kwargs.pop("allowDiskUse", None):
            command["allowDiskUse"] = True
        if kwargs:
            raise TypeError(f"inline aggregate: unsupported options {sorted(kwargs)}")
        reply = self._send(database, command, session)
        return _Batches(self, database, reply["cursor"], session, 0, raw=False)

    def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Any:
        """pymongo's ``find_one``."""
        if self._inline(kwargs.get("session")) is None:
            return self._real.find_one(filter, *args, **kwargs)
        kwargs.pop("limit", None)
        for doc in self.find(filter, *args, limit=-1, **kwargs):
            return doc
        return None

    def count_documents(self, filter: Any, session: Any = None, **kwargs: Any) -> int:
        """pymongo's ``count_documents``."""
        database = self._inline(session)
        if database is None:
            return int(self._real.count_documents(filter, session=session, **kwargs))
        pipeline: list[dict[str, Any]] = [{"$match": _filter(filter)}]
        if kwargs.get("skip"):
            pipeline.append({"$skip": kwargs.pop("skip")})
        if kwargs.get("limit"):
            pipeline.append({"$limit": kwargs.pop("limit")})
        pipeline.append({"$group": {"_id": 1, "n": {"$sum": 1}}})
        for doc in self.aggregate(pipeline, session=session):
            return int(doc["n"])
        return 0

    def distinct(self, key: str, filter: Any = None, session: Any = None) -> list[Any]:
        """pymongo's ``distinct``."""
        database = self._inline(session)
        if database is None:
            return list(self._real.distinct(key, filter, session=session))
        command: dict[str, Any] = {"distinct": self.name, "key": key}
        if filter:
            command["query"] = _filter(filter)
        return list(self._send(database, command, session)["values"])

    # -- writes ----------------------------------------------------------------------

    def find_one_and_update(self, filter: Any, update: Any, projection: Any = None,
                            sort: Any = None, upsert: bool = False,
                            return_document: bool = ReturnDocument.BEFORE,
                            array_filters: Any = None, hint: Any = None,
                            session: Any = None, **kwargs: Any) -> Any:
        """pymongo's ``find_one_and_update``."""
        database = self._inline(session)
        if database is None:
            return self._real.find_one_and_update(
                filter, update, projection, sort, upsert, return_document,
                array_filters, hint, session, **kwargs)
        if kwargs:
            raise TypeError(f"inline find_one_and_update: unsupported {sorted(kwargs)}")
        command: dict[str, Any] = {"findAndModify": self.name, "query": _filter(filter),
                                   "update": update, "new": bool(return_document),
                                   "upsert": upsert}
        if projection is not None:
            command["fields"] = _projection(projection)
        if sort is not None:
            command["sort"] = _sort(sort)
        if array_filters is not None:
            command["arrayFilters"] = array_filters
        if hint is not None:
            command["hint"] = _hint(hint)
        reply = self._send(database, command, session, write=True)
        raise_concern_error(reply)
        return reply.get("value")

    def watch(self, pipeline: list[dict[str, Any]] | None = None,
              max_await_time_ms: int | None = None, **kwargs: Any) -> Any:
        """pymongo's ``watch`` (a change stream of this collection)."""
        database = self._inline(None)
        if database is None:
            return self._real.watch(pipeline, max_await_time_ms=max_await_time_ms,
                                    **kwargs)
        if kwargs:
            raise TypeError(f"inline watch: unsupported options {sorted(kwargs)}")
        return ChangeStream(self, database, pipeline or [], max_await_time_ms)

    def find_one_and_delete(self, filter: Any, projection: Any = None, sort: Any = None,
                            hint: Any = None, session: Any = None, **kwargs: Any) -> Any:
        """pymongo's ``find_one_and_delete``."""
        database = self._inline(session)
        if database is None:
            return self._real.find_one_and_delete(filter, projection, sort, hint, session,
                                                  **kwargs)
        if kwargs:
            raise TypeError(f"inline find_one_and_delete: unsupported {sorted(kwargs)}")
        command: dict[str, Any] = {"findAndModify": self.name, "query": _filter(filter),
                                   "remove": True}
        if projection is not None:
            command["fields"] = _projection(projection)
        if sort is not None:
            command["sort"] = _sort(sort)
        if hint is not None:
            command["hint"] = _hint(hint)
        reply = self._send(database, command, session, write=True)
        raise_concern_error(reply)
        return reply.get("value")

    def insert_one(self, document: Any, session: Any = None, **kwargs: Any) -> Any:
        """pymongo's ``insert_one`` (an ``_id`` is added to ``document`` when missing)."""
        database = self._inline(session)
        if database is None:
            return self._real.insert_one(document, session=session, **kwargs)
        if "_id" not in document:
            document["_id"] = new_id()
        self._write(database, "insert", "documents", [document], True, session)
        return InsertOneResult(document["_id"], True)

    def insert_many(self, documents: Any, ordered: bool = True, session: Any = None,
                    **kwargs: Any) -> Any:
        """pymongo's ``insert_many``."""
        database = self._inline(session)
        if database is None:
            return self._real.insert_many(documents, ordered=ordered, session=session,
                                          **kwargs)
        docs = list(documents)
        for doc in docs:
            if "_id" not in doc:
                doc["_id"] = new_id()
        self.bulk_write([InsertOne(d) for d in docs], ordered=ordered, session=session)
        return InsertManyResult([d["_id"] for d in docs], True)

    def update_one(self, filter: Any, update: Any, upsert: bool = False,
                   array_filters: Any = None, session: Any = None, hint: Any = None,
                   **kwargs: Any) -> Any:
        """pymongo's ``update_one``."""
        return self._update(filter, update, upsert, False, array_filters, session, hint,
                            kwargs, "update_one")

    def update_many(self, filter: Any, update: Any, upsert: bool = False,
                    array_filters: Any = None, session: Any = None, hint: Any = None,
                    **kwargs: Any) -> Any:
        """pymongo's ``update_many``."""
        return self._update(filter, update, upsert, True, array_filters, session, hint,
                            kwargs, "update_many")

    def replace_one(self, filter: Any, replacement: Any, upsert: bool = False,
                    session: Any = None, **kwargs: Any) -> Any:
        """pymongo's ``replace_one``."""
        return self._update(filter, replacement, upsert, False, None, session, None,
                            kwargs, "replace_one")

    def _update(self, filter: Any, update: Any, upsert: bool, multi: bool,
                array_filters: Any, session: Any, hint: Any, kwargs: dict[str, Any],
                name: str) -> Any:
        database = self._inline(session)
        if database is None:
            method = getattr(self._real, name)
            extra = {} if name == "replace_one" else {"array_filters": array_filters,
                                                       "hint": hint}
            return method(filter, update, upsert=upsert, session=session, **extra, **kwargs)
        if kwargs:
            raise TypeError(f"inline {name}: unsupported {sorted(kwargs)}")
        reply = self._write(database, "update", "updates",
                            [_update_spec(filter, update, upsert, multi, array_filters, hint)],
                            True, session)
        raw = {"n": reply.get("n", 0), "nModified": reply.get("nModified", 0)}
        if reply.get("upserted"):
            raw["upserted"] = reply["upserted"][0]["_id"]
        return UpdateResult(raw, True)

    def delete_one(self, filter: Any, session: Any = None, **kwargs: Any) -> Any:
        """pymongo's ``delete_one``."""
        return self._delete(filter, 1, session, kwargs, "delete_one")

    def delete_many(self, filter: Any, session: Any = None, **kwargs: Any) -> Any:
        """pymongo's ``delete_many``."""
        return self._delete(filter, 0, session, kwargs, "delete_many")

    def _delete(self, filter: Any, limit: int, session: Any, kwargs: dict[str, Any],
                name: str) -> Any:
        database = self._inline(session)
        if database is None:
            return getattr(self._real, name)(filter, session=session, **kwargs)
        spec: dict[str, Any] = {"q": _filter(filter), "limit": limit}
        if kwargs.get("hint") is not None:
            spec["hint"] = _hint(kwargs.pop("hint"))
        if kwargs:
            raise TypeError(f"inline {name}: unsupported {sorted(kwargs)}")
        reply = self._write(database, "delete", "deletes", [spec], True, session)
        return DeleteResult({"n": reply.get("n", 0)}, True)

    def _write(self, database: Database, kind: str, field: str, items: list[Any],
               ordered: bool, session: Any) -> dict[str, Any]:
        """One insert/update/delete command; a write error raised as pymongo's
        collection methods raise it."""
        reply = self._send(database, {kind: self.name, field: items, "ordered": ordered},
                           session, write=True)
        errors = reply.get("writeErrors")
        if errors:
            raise _write_error(errors[0], reply)
        raise_concern_error(reply)
        return reply

    def bulk_write(self, requests: Any, ordered: bool = True, session: Any = None,
                   **kwargs: Any) -> Any:
        """pymongo's collection-level ``bulk_write``: consecutive writes of one kind
        in one command, in order."""
        database = self._inline(session)
        if database is None:
            return self._real.bulk_write(requests, ordered=ordered, session=session,
                                         **kwargs)
        total: dict[str, Any] = {"writeErrors": [], "writeConcernErrors": [],
                                 "nInserted": 0, "nUpserted": 0, "nMatched": 0,
                                 "nModified": 0, "nRemoved": 0, "upserted": []}
        groups: list[tuple[str, list[tuple[int, Any]]]] = []
        for index, op in enumerate(requests):
            kind, item = op_spec(op)
            if not groups or groups[-1][0] != kind or not ordered:
                groups.append((kind, []))
            groups[-1][1].append((index, item))
        if not ordered:  # (one command per kind, as pymongo sends them)
            merged: dict[str, list[tuple[int, Any]]] = {}
            for kind, items in groups:
                merged.setdefault(kind, []).extend(items)
            groups = list(merged.items())
        field = {"insert": "documents", "update": "updates", "delete": "deletes"}
        for kind, items in groups:
            reply = self._send(database, {kind: self.name, field[kind]: [i for _, i in items],
                                          "ordered": ordered}, session, write=True)
            n = reply.get("n", 0)
            if kind == "insert":
                total["nInserted"] += n
            elif kind == "delete":
                total["nRemoved"] += n
            else:
                upserted = reply.get("upserted") or []
                total["nUpserted"] += len(upserted)
                total["nMatched"] += n - len(upserted)
                total["nModified"] += reply.get("nModified", 0)
                total["upserted"].extend({"index": items[u["index"]][0], "_id": u["_id"]}
                                         for u in upserted)
            for error in reply.get("writeErrors") or ():
                total["writeErrors"].append({**error, "index": items[error["index"]][0],
                                             "op": items[error["index"]][1]})
            if reply.get("writeConcernError"):
                total["writeConcernErrors"].append(reply["writeConcernError"])
            if total["writeErrors"] and ordered:
                break
        if total["writeErrors"] or total["writeConcernErrors"]:
            if total["writeErrors"]:
                total["writeErrors"].sort(key=lambda e: e["index"])
            raise pymongo.errors.BulkWriteError(total)
        return BulkWriteResult(total, True)


def _update_spec(filter: Any, update: Any, upsert: bool, multi: bool, array_filters: Any,
                 hint: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"q": _filter(filter), "u": update, "multi": multi,
                            "upsert": upsert}
    if array_filters is not None:
        spec["arrayFilters"] = array_filters
    if hint is not None:
        spec["hint"] = _hint(hint)
    return spec


def op_spec(op: Any) -> tuple[str, Any]:
    """A pymongo write model as the item of an insert/update/delete command."""
    if isinstance(op, InsertOne):
        doc = op._doc
        if "_id" not in doc:
            doc["_id"] = new_id()
        return "insert", doc
    if isinstance(op, (DeleteOne, DeleteMany)):
        spec: dict[str, Any] = {"q": op._filter, "limit": 1 if isinstance(op, DeleteOne) else 0}
        if op._hint is not None:
            spec["hint"] = op._hint
        return "delete", spec
    if isinstance(op, ReplaceOne):
        return "update", _update_spec(op._filter, op._doc, bool(op._upsert), False, None,
                                      op._hint)
    return "update", _update_spec(op._filter, op._doc, bool(op._upsert),
                                  isinstance(op, UpdateMany), op._array_filters, op._hint)


def _write_error(error: dict[str, Any], reply: dict[str, Any]) -> pymongo.errors.PyMongoError:
    code = error.get("code")
    message = str(error.get("errmsg", "write error"))
    if code in (11000, 11001, 12582):
        return pymongo.errors.DuplicateKeyError(message, code, error)
    result = pymongo.errors.WriteError(message, code, error)
    for label in reply.get("errorLabels", ()):
        result._add_error_label(label)
    return result


def _in_thread(method: Any) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        if any(isinstance(a, Session) for a in (*args, *kwargs.values())):
            raise TypeError(f"{method.__name__} has no inline form: it cannot join a "
                            "transaction of an inline store call")
        return greenback.await_(trio.to_thread.run_sync(lambda: method(*args, **kwargs)))
    return run


# -- cursors -------------------------------------------------------------------------------


class Cursor:
    """A ``find`` (or ``find_raw_batches``) cursor that picks its way at its first
    batch: inline inside an inline call, pymongo's anywhere else."""

    def __init__(self, collection: Collection, kind: str, filter: Any, projection: Any,
                 *, sort: Any, limit: int, batch_size: int, session: Any,
                 kwargs: dict[str, Any], skip: int = 0, hint: Any = None) -> None:
        self._collection = collection
        self._kind = kind
        self._filter = filter
        self._projection = projection
        self._sort = sort
        self._limit = limit
        self._skip = skip
        self._batch_size = batch_size
        self._hint = hint
        self._session = session
        self._kwargs = kwargs
        self._started: Iterator[Any] | None = None
        self._real: Any = None

    def sort(self, key: Any, direction: Any = None) -> Cursor:
        """Order by ``key`` (pymongo's forms)."""
        self._sort = _sort(key, direction)
        return self

    def limit(self, n: int) -> Cursor:
        """At most ``n`` documents."""
        self._limit = n
        return self

    def skip(self, n: int) -> Cursor:
        """Skip the first ``n`` documents."""
        self._skip = n
        return self

    def batch_size(self, n: int) -> Cursor:
        """Documents per batch."""
        self._batch_size = n
        return self

    def hint(self, index: Any) -> Cursor:
        """Use ``index``."""
        self._hint = index
        return self

    def __iter__(self) -> Cursor:
        return self

    def __next__(self) -> Any:
        if self._started is None:
            self._started = self._start()
        return next(self._started)

    def _start(self) -> Iterator[Any]:
        collection = self._collection
        database = collection._inline(self._session)
        if database is None:
            options: dict[str, Any] = dict(self._kwargs)
            if self._sort is not None:
                options["sort"] = list(_sort(self._sort).items())
            if self._hint is not None:
                options["hint"] = self._hint
            self._real = getattr(collection._real, self._kind)(
                self._filter, self._projection, limit=self._limit, skip=self._skip,
                batch_size=self._batch_size, session=self._session, **options)
            return iter(self._real)
        if self._kwargs:
            raise TypeError(f"inline find: unsupported options {sorted(self._kwargs)}")
        command: dict[str, Any] = {"find": collection.name, "filter": _filter(self._filter)}
        if self._projection is not None:
            command["projection"] = _projection(self._projection)
        if self._sort is not None:
            command["sort"] = _sort(self._sort)
        if self._hint is not None:
            command["hint"] = _hint(self._hint)
        if self._skip:
            command["skip"] = self._skip
        limit = self._limit
        if limit:
            command["limit"] = abs(limit)
            if limit < 0:
                command["singleBatch"] = True
        if self._batch_size:
            command["batchSize"] = (min(self._batch_size, abs(limit)) if limit
                                    else self._batch_size)
        raw = self._kind == "find_raw_batches"
        reply = collection._send(database, command, self._session, raw=raw)
        batches = _Batches(collection, database, reply["cursor"], self._session,
                           command.get("batchSize", 0), raw=raw)
        self._real = batches
        return batches.batches() if raw else iter(batches)

    @property
    def alive(self) -> bool:
        """Whether the server may still hold this cursor."""
        return self._real is None or bool(self._real.alive)

    def close(self) -> None:
        """Let the server forget the cursor."""
        if self._real is not None:
            self._real.close()

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Batches:
    """An open server cursor read inline: its documents, or its batches' bytes."""

    def __init__(self, collection: Collection, database: Database, cursor: Any,
                 session: Any, batch_size: int, *, raw: bool) -> None:
        self._collection = collection
        self._database = database
        self._session = session
        self._batch_size = batch_size
        self._raw = raw
        self._namespace = cursor["ns"]
        self._id = cursor["id"]
        self._batch: list[Any] = list(cursor["firstBatch"])
        self._pos = 0

    @property
    def alive(self) -> bool:
        """Whether the server still holds this cursor."""
        return bool(self._id)

    def _more(self) -> bool:
        if not self._id:
            return False
        command: dict[str, Any] = {"getMore": Int64(self._id),
                                   "collection": self._namespace.partition(".")[2]}
        if self._batch_size:
            command["batchSize"] = self._batch_size
        if isinstance(self._session, Session):
            self._session.apply(command)
        cursor = call(self._database, command, raw=self._raw)["cursor"]
        self._id = cursor["id"]
        self._batch = list(cursor["nextBatch"])
        self._pos = 0
        return True

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            while self._pos < len(self._batch):
                doc = self._batch[self._pos]
                self._pos += 1
                yield doc
            if not self._more():
                return

    def batches(self) -> Iterator[bytes]:
        """Each batch as the concatenated bytes of its documents."""
        while True:
            if self._batch:
                yield b"".join(doc.raw for doc in self._batch)
            if not self._more():
                return

    def close(self) -> None:
        """killCursors, when the server still holds it (inline only)."""
        if self._id and ACTIVE.get() is not None:
            cursor_id, self._id = self._id, 0
            try:
                call(self._database, {"killCursors": self._namespace.partition(".")[2],
                                      "cursors": [Int64(cursor_id)]})
            except pymongo.errors.PyMongoError:
                pass  # (The server times an abandoned cursor out.)


class ChangeStream:
    """A change stream read inline: ``try_next`` as pymongo's (at most one getMore,
    waiting up to ``max_await_time_ms``), and ``take`` for what it holds.

    Unlike pymongo's it does not resume by itself: any error of its getMore is
    raised as ``StoreUnavailable``, and the notifier (push/notify.py) opens a new
    stream and asks the mailboxes what it missed, as it does after an outage."""

    def __init__(self, collection: Collection, database: Database,
                 pipeline: list[dict[str, Any]], max_await_time_ms: int | None) -> None:
        self._collection = collection
        self._database = database
        self._await_ms = max_await_time_ms
        reply = call(database, {"aggregate": collection.name,
                                "pipeline": [{"$changeStream": {}}, *pipeline],
                                "cursor": {}})
        cursor = reply["cursor"]
        self._id = cursor["id"]
        self._buffer: collections.deque[dict[str, Any]] = collections.deque(
            cursor["firstBatch"])

    @property
    def alive(self) -> bool:
        """Whether the server still holds the stream's cursor."""
        return bool(self._id)

    def try_next(self) -> dict[str, Any] | None:
        """The next change, or None when none came within the await time."""
        if not self._buffer and self._id:
            command: dict[str, Any] = {"getMore": Int64(self._id),
                                       "collection": self._collection.name}
            if self._await_ms is not None:
                command["maxTimeMS"] = self._await_ms
            try:
                cursor = call(self._database, command)["cursor"]
            except pymongo.errors.PyMongoError as exc:
                self._id = 0
                raise StoreUnavailable(f"change stream lost: {exc}") from exc
            self._id = cursor["id"]
            self._buffer.extend(cursor["nextBatch"])
        return self._buffer.popleft() if self._buffer else None

    def take(self, most: int) -> list[dict[str, Any]]:
        """The next change (as ``try_next``) and up to ``most`` in all of those its
        getMore brought."""
        first = self.try_next()
        if first is None:
            return []
        changes = [first]
        buffer = self._buffer
        while buffer and len(changes) < most:
            changes.append(buffer.popleft())
        return changes

    def close(self) -> None:
        """killCursors (inline only; the server times an abandoned one out)."""
        if self._id and ACTIVE.get() is not None:
            cursor_id, self._id = self._id, 0
            try:
                call(self._database, {"killCursors": self._collection.name,
                                      "cursors": [Int64(cursor_id)]})
            except pymongo.errors.PyMongoError:
                pass


def raw_codec(codec: Any) -> Any:
    """``codec`` decoding documents as ``RawBSONDocument``."""
    return codec.with_options(document_class=RawBSONDocument)


