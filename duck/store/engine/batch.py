"""Writes to several collections sent to the database as one command.

A delivery, a STORE or an EXPUNGE writes to the messages, the digest, the journal
and the users' quota in one transaction. Sent collection by collection that is a
round trip each, and each round trip costs pymongo's per-call machinery (a few
tenths of a millisecond of CPU) and the database's; MongoDB 8.0's client-level
``bulkWrite`` takes them all in one command, in order, inside the same
transaction. Where the server is older (``maxWireVersion`` below 25), the batch
falls back to one collection-level ``bulk_write`` per run of one collection, in
the same order: the same writes, only more round trips.

Errors keep the shapes the rest of the store (and pymongo's transaction retry)
expect: a duplicate key is ``DuplicateKeyError``, a write conflict is an
``OperationFailure`` labelled ``TransientTransactionError`` (the client-level
command reports both as per-operation write errors, which ``with_transaction``
would not retry).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import greenback
import pymongo.errors
from pymongo import DeleteMany, DeleteOne, InsertOne, UpdateMany, UpdateOne

from . import groupcommit, inline, schema
from .database import Database

#: A write model the batch accepts (built with its ``namespace``).
Write = InsertOne[Any] | UpdateOne | UpdateMany | DeleteOne | DeleteMany


@attrs.frozen
class BatchResult:
    """What ``flush`` learnt of the updates added with ``checked=True``, by the
    index ``update`` returned: documents matched and modified."""

    matched: dict[int, int] = attrs.field(factory=dict)
    modified: dict[int, int] = attrs.field(factory=dict)


class WriteBatch:
    """Write models of one change, in order, for one ``flush``."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._ops: list[Write] = []
        #: Indexes of the updates whose counts the caller wants back.
        self._checked: set[int] = set()
        #: The journal entries among the inserts (``Database.journal_written``).
        self._journal: list[dict[str, Any]] = []

    def namespace(self, collection: str) -> str:
        """The namespace a model for ``collection`` is built with."""
        return f"{self._database.name}.{collection}"

    def insert(self, collection: str, docs: list[dict[str, Any]]) -> None:
        """Insert ``docs`` into ``collection`` (in this order)."""
        ns = self.namespace(collection)
        self._ops.extend(InsertOne(doc, namespace=ns) for doc in docs)
        if collection == schema.JOURNAL:
            self._journal.extend(docs)

    def update(self, collection: str, filter_: dict[str, Any], update: Any, *,
               many: bool = False, upsert: bool = False, checked: bool = False) -> int:
        """Update one (or every) document of ``collection`` matching ``filter_``; its
        index in the batch (with ``checked``, ``flush`` reports its counts there)."""
        model = UpdateMany if many else UpdateOne
        self._ops.append(model(filter_, update, upsert=upsert,
                               namespace=self.namespace(collection)))
        if checked:
            self._checked.add(len(self._ops) - 1)
        return len(self._ops) - 1

    def check(self, index: int) -> None:
        """Have ``flush`` report the counts of the write at ``index`` (one added with
        ``extend``)."""
        self._checked.add(index)

    def delete(self, collection: str, filter_: dict[str, Any]) -> None:
        """Delete every document of ``collection`` matching ``filter_``."""
        self._ops.append(DeleteMany(filter_, namespace=self.namespace(collection)))

    def extend(self, ops: Iterable[Write]) -> None:
        """Models built elsewhere (with ``namespace(...)``)."""
        self._ops.extend(ops)

    def __len__(self) -> int:
        return len(self._ops)

    def flush(self, session: Any = None) -> BatchResult:
        """Send every write, in order (blocking; in ``session``'s transaction when
        given), and empty the batch."""
        journal, self._journal = self._journal, []
        result = self._flush(session)
        self._database.journal_written(journal, session)
        return result

    def _flush(self, session: Any) -> BatchResult:
        ops, self._ops = self._ops, []
        checked, self._checked = self._checked, set()
        result = BatchResult()
        if not ops:
            return result
        try:
            if (self._database.client_bulk and self._database.wire is not None
                    and inline.ACTIVE.get() is not None):
                self._inline(ops, session, checked, result)
                return result
            if not self._database.client_bulk:
                self._per_collection(ops, session, checked, result)
                return result
            first = 0
            if (session is not None and session._starting_transaction
                    and session.options.causal_consistency):
                # The first command of a causally consistent session's transaction
                # carries a readConcern, and the embedded engine refuses that field
                # on bulkWrite ("unknown field"): the first collection's writes go
                # the ordinary way. (Database.in_transaction's sessions are not
                # causal: there, a transaction may start with the bulkWrite.)
                first = self._per_collection(ops, session, checked, result, runs=1)
            if first < len(ops):
                concern = None if session is not None else self._database.write_concern
                # (Inside a transaction the commit carries the write concern.)
                verbose = any(i >= first for i in checked)
                done = self._database.client.bulk_write(
                    ops[first:], session=session, ordered=True, write_concern=concern,
                    verbose_results=verbose)
                if verbose:
                    for i, update in done.update_results.items():
                        if i + first in checked:
                            result.matched[i + first] = update.matched_count
                            result.modified[i + first] = update.modified_count
        except (pymongo.errors.ClientBulkWriteException,
                pymongo.errors.BulkWriteError) as exc:
            raise _unwrapped(exc, in_transaction=session is not None) from exc
        return result

    def _inline(self, ops: list[Write], session: Any, checked: set[int],
                result: BatchResult) -> None:
        """The client-level ``bulkWrite`` command over wire.py (an inline call); with
        a group's (groupcommit.py) when the transaction starts with it."""
        database = self._database
        spaces: dict[str, int] = {}
        items: list[dict[str, Any]] = []
        for op in ops:
            index = spaces.setdefault(str(op._namespace), len(spaces))
            kind, spec = inline.op_spec(op)
            if kind == "insert":
                items.append({"insert": index, "document": spec})
            elif kind == "delete":
                item = {"delete": index, "filter": spec["q"], "multi": spec["limit"] == 0}
                if "hint" in spec:
                    item["hint"] = spec["hint"]
                items.append(item)
            else:
                item = {"update": index, "filter": spec["q"], "updateMods": spec["u"],
                        "multi": spec["multi"], "upsert": spec["upsert"]}
                for key in ("arrayFilters", "hint"):
                    if key in spec:
                        item[key] = spec[key]
                items.append(item)
        rows = None
        if (isinstance(session, inline.Session) and session.in_transaction
                and not session.started and session.group is None and session.may_group
                and groupcommit.DEPTH > 0):
            rows = groupcommit.committer(database).join(session, items, list(spaces),
                                                        checked)
        if rows is None:
            command: dict[str, Any] = {
                "bulkWrite": 1, "ops": items, "nsInfo": [{"ns": ns} for ns in spaces],
                "ordered": True, "errorsOnly": not checked}
            if isinstance(session, inline.Session):
                session.apply(command)
            else:
                command["writeConcern"] = database.write_concern.document
            rows = greenback.await_(inline.rows_of(database, command, session))
        for row in rows:
            if not row.get("ok"):
                raise inline.write_failure(row, in_transaction=session is not None)
            i = row.get("idx")
            if i in checked:
                result.matched[i] = row.get("n", 0)
                result.modified[i] = row.get("nModified", 0)

    def _per_collection(self, ops: list[Write], session: Any, checked: set[int],
                        result: BatchResult, runs: int = -1) -> int:
        """Send the first ``runs`` runs of one collection's writes (all when -1) as
        collection-level bulk writes (a checked update alone, for its counts); how
        many writes were sent."""
        start = 0
        while start < len(ops) and runs != 0:
            end = start
            while (end < len(ops) and ops[end]._namespace == ops[start]._namespace
                   and (end == start or end not in checked)):
                end += 1
                if end - 1 in checked:
                    break
            collection = self._database.collection(
                str(ops[start]._namespace).partition(".")[2])
            done = collection.bulk_write(ops[start:end], ordered=True, session=session)
            if start in checked:
                result.matched[start] = done.matched_count
                result.modified[start] = done.modified_count
            start, runs = end, runs - 1
        return start


def _unwrapped(exc: pymongo.errors.ClientBulkWriteException | pymongo.errors.BulkWriteError,
               *, in_transaction: bool) -> BaseException:
    """The error a collection-level write would have raised."""
    cause = getattr(exc, "error", None)  # (ClientBulkWriteException: a top-level error)
    if isinstance(cause, BaseException):
        return cause
    # (Typed as WriteError objects by pymongo; they are the server's documents.)
    errors: list[dict[str, Any]] = exc.details.get("writeErrors") or []
    if not errors:
        return exc
    return inline.write_failure(errors[0], in_transaction=in_transaction)
