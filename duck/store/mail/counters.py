"""Reserving UIDs and modseqs without a round trip of their own, when this process
knows the mailbox's counters.

Every write of a mailbox's messages (APPEND, a delivery, STORE, EXPUNGE) reserves
UIDs and modseqs on the mailbox document and moves its counters, in the write's
transaction. ``mailboxes.allocate`` does it with a findAndModify read back AFTER: one
round trip of the transaction's three (the reservation, the bulkWrite of the change,
the commit), and on this machine each costs ~0.3 ms of pymongo CPU in duck and the
database's own (bench/README.md, "Mixed load").

When this process's own last committed write left the mailbox document as it is, the
process already knows what the findAndModify would return. The reservation is then
an update *conditioned on* those counters, first in the bulkWrite with the change's
other writes, and its result says whether the condition held:

- every change of a mailbox's messages moves its ``modseq`` in the same transaction
  (and a digest state change from none to building too), so equal ``modseq``,
  ``uid_next``, ``uidv``, ``dg`` and ``path`` mean that the UIDs and modseqs
  computed from the known document are the ones the findAndModify would have
  given (the other counters are added to the stored values, as ``$inc`` does);
- a write committed in between, by any process, fails the condition (the update then
  changes nothing: ``modified`` 0), and a write in flight conflicts with this one's
  write to the same document, so the transaction is retried and then fails it;
- a failed condition raises ``Missed`` inside the transaction: it is taken back, and
  the write starts over the usual way (``allocate``), which refreshes what is known.

The condition is an aggregation ``$cond`` under a filter on ``_id`` (or the unique
``(user, path)``), not extra filter fields: the embedded Rust engine scans the whole
collection for a filter with a field outside one index. The update also fails a
condition the caller had wrong (a rename: the path filter matches nothing).

What is known is remembered only after a commit, from the post-image (``allocate``'s
or the predicted one), and is at most ``KNOWN_BOXES`` documents per database: a
stale or evicted entry costs a miss, never a wrong value.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import pymongo.errors
from pymongo import UpdateOne

from ..engine import schema
from ..engine.batch import BatchResult, WriteBatch
from ..engine.database import Database

#: Mailbox documents remembered per database (a few hundred bytes each).
KNOWN_BOXES = 20_000
#: Seconds a mailbox whose reservation missed is written the usual way: a miss costs
#: two round trips (the bulkWrite and the abort) where a hit saves one, so a mailbox
#: that writers in several processes take turns on (measured with ``--workers 2``
#: and imaptest: 12% of writes missed) is better off without trying for a while.
CONTENDED_FOR = 1.0
#: The fields the condition compares: any change of them the process did not make
#: means its values could be wrong.
GUARDED = ("modseq", "uid_next", "uidv", "dg", "path")
#: The counters a reservation moves.
COUNTERS = ("uid_next", "modseq", "count", "unseen", "size")


T = TypeVar("T")
#: A write's transaction body, given the session and the known mailbox document
#: (None: reserve with ``allocate``): its result, and the mailbox document it left
#: (None when it wrote nothing).
Body = Callable[[Any, "dict[str, Any] | None"], tuple[T, "dict[str, Any] | None"]]


class Missed(Exception):
    """The mailbox changed since this process knew it: the transaction is taken back
    and the write starts over with ``allocate``."""


@attrs.frozen
class Reservation:
    """A reservation put into a batch: the first UID and modseq reserved, the
    mailbox document as the write leaves it, and the update's index in the batch."""

    first_uid: int
    first_modseq: int
    box: dict[str, Any]
    index: int


class KnownBoxes:
    """Mailbox documents as this process's last committed write left them, by ``_id``
    and by (user, path); the oldest remembered goes first past ``limit``."""

    def __init__(self, limit: int = KNOWN_BOXES) -> None:
        self.limit = limit
        self._boxes: OrderedDict[Any, dict[str, Any]] = OrderedDict()
        self._paths: dict[tuple[Any, str], Any] = {}
        #: Mailbox id -> until when (``clock``) it is not tried (``missed``).
        self._contended: dict[Any, float] = {}
        self.clock: Callable[[], float] = time.monotonic
        #: Reservations that held and that missed (what the tests look at).
        self.hits = 0
        self.misses = 0

    def get(self, mailbox: Any) -> dict[str, Any] | None:
        """The known document of the mailbox with this ``_id`` (None while it is
        contended)."""
        if self._contended and not self._tried(mailbox):
            return None
        return self._boxes.get(mailbox)

    def by_path(self, user: Any, path: str) -> dict[str, Any] | None:
        """The known document of the user's mailbox at ``path`` (as ``get``)."""
        oid = self._paths.get((user, path))
        return None if oid is None else self.get(oid)

    def _tried(self, mailbox: Any) -> bool:
        until = self._contended.get(mailbox)
        if until is None:
            return True
        if self.clock() < until:
            return False
        self._contended.pop(mailbox, None)
        return True

    def remember(self, box: dict[str, Any]) -> None:
        """Keep ``box``, a committed post-image (from any thread: dict and
        OrderedDict operations are atomic under the GIL, and a lost race costs a
        miss)."""
        if not all(f in box for f in (*GUARDED, "_id", "user", "path")):
            return  # (a projection: not enough to predict from)
        oid = box["_id"]
        old = self._boxes.pop(oid, None)
        if old is not None and old["path"] != box["path"]:
            self._paths.pop((old["user"], old["path"]), None)
        self._boxes[oid] = box  # (a fresh post-image: nothing changes it after)
        self._paths[(box["user"], box["path"])] = oid
        while len(self._boxes) > self.limit:
            _, gone = self._boxes.popitem(last=False)
            self._paths.pop((gone["user"], gone["path"]), None)

    def recent_mark(self, mailbox: Any) -> int | None:
        """The \\Recent mark of the known document (contended or not: the mark only
        rises, so a known one is a lower bound), or None."""
        box = self._boxes.get(mailbox)
        return None if box is None else int(box.get("recent", 0))

    def raise_recent(self, mailbox: Any, mark: int) -> None:
        """A claim moved the mailbox's mark to ``mark`` (claim_recent_sync): the
        known document says so too (a copy: remembered documents are not changed),
        so that the next reservation that claims compares the right mark."""
        box = self._boxes.get(mailbox)
        if box is not None and int(box.get("recent", 0)) < mark:
            self._boxes[mailbox] = {**box, "recent": mark}

    def missed(self, mailbox: Any) -> None:
        """A reservation on the mailbox missed (it changed elsewhere): drop what is
        known of it, and write it the usual way for ``CONTENDED_FOR`` seconds."""
        box = self._boxes.pop(mailbox, None)
        if box is not None:
            self._paths.pop((box["user"], box["path"]), None)
        if len(self._contended) >= self.limit:
            self._contended.clear()
        self._contended[mailbox] = self.clock() + CONTENDED_FOR


_KNOWN: weakref.WeakKeyDictionary[Database, KnownBoxes] = weakref.WeakKeyDictionary()


def known(database: Database) -> KnownBoxes:
    """The database's known mailbox documents (one set per Database object: tests run
    several servers in one process)."""
    boxes = _KNOWN.get(database)
    if boxes is None:
        boxes = _KNOWN[database] = KnownBoxes()
    return boxes


def reserve(batch: WriteBatch, box: dict[str, Any], *, by_path: bool = False,
            uids: int = 0, modseqs: int = 1, count: int = 0, unseen: int = 0,
            size: int = 0, claim_recent: tuple[Any, int] | None = None) -> Reservation:
    """Put into ``batch`` (call it first: the reservation leads the change) the
    update that reserves ``uids`` UIDs and ``modseqs`` modseqs and moves the
    counters, conditioned on the known document ``box``; the values as
    ``allocate`` would return them. ``by_path``: the update's filter is the
    mailbox's (user, path), as the caller asked for it. ``claim_recent`` as in
    ``allocate``: when it names this mailbox at the known modseq, the \\Recent mark
    moves up to the last UID reserved, and the document's ``rp`` is the mark it
    replaced (else -1). Check the flushed result with ``check``."""
    # ($literal: a path such as "$x" would otherwise be read as a field.)
    held: dict[str, Any] = {"$and": [{"$eq": [f"${f}", {"$literal": box[f]}]}
                                     for f in GUARDED]}
    after = dict(box)
    moves = {"uid_next": uids, "modseq": modseqs, "count": count, "unseen": unseen,
             "size": size}
    # The new values, merged into the document when the condition holds.
    fields: dict[str, Any] = {}
    for field in COUNTERS:
        after[field] = int(box.get(field, 0)) + moves[field]
        # Added to the stored value, not set: a counter moved without the modseq
        # (a best-effort undo, a repair) stays right where the prediction is not.
        fields[field] = {"$add": [{"$ifNull": [f"${field}", 0]}, moves[field]]}
    if claim_recent is not None:
        mark = int(box.get("recent", 0))
        # The claimant gets (mark, last UID reserved]: when its view is the mailbox
        # as it is, every one of them is new to it; when the view is behind, only
        # if the mark is at the last UID before these (every earlier message is
        # claimed), so that it gets just the messages it is storing (and no other
        # session of this process need claim them after: a write under the user's
        # lock for each, measured ~15% of imaptest's write round trips).
        current = claim_recent[0] == box["_id"] and (
            claim_recent[1] == box["modseq"] or mark == int(box["uid_next"]) - 1)
        if current:
            # The mark is not under the modseq (claim_recent_sync moves it alone)
            # and ``rp`` reports it: the condition compares it too.
            held["$and"].append({"$eq": [{"$ifNull": ["$recent", 0]}, mark]})
            after["recent"] = max(mark, after["uid_next"] - 1)
            fields["recent"] = after["recent"]
        after["rp"] = mark if current else -1
        fields["rp"] = after["rp"]
    if by_path:  # (the mailbox now at that path may be another one)
        held["$and"].append({"$eq": ["$_id", box["_id"]]})
    where = ({"user": box["user"], "path": box["path"]} if by_path
             else {"_id": box["_id"]})
    # One condition for the whole document, not one per field: the update is a
    # third of the bytes (~0.8 KB, not ~2.4) and costs the embedded engine ~10%
    # less CPU (0.16 ms against 0.18 measured, ten to a transaction). A document
    # left as it was is not "modified", as before.
    replaced = {"$cond": [held, {"$mergeObjects": ["$$ROOT", fields]}, "$$ROOT"]}
    index = len(batch)
    batch.extend([UpdateOne(where, [{"$replaceWith": replaced}],
                            namespace=batch.namespace(schema.MAILBOXES))])
    batch.check(index)
    return Reservation(int(box["uid_next"]), int(box["modseq"]) + 1, after, index)


def check(result: BatchResult, reservation: Reservation) -> None:
    """Raise ``Missed`` unless the reservation's condition held (the document was
    changed by it: every reservation moves the modseq)."""
    if result.modified.get(reservation.index) != 1:
        raise Missed("the mailbox changed since this process last wrote it")


def write(database: Database, box: dict[str, Any] | None, body: Body[T]) -> T:
    """Run a write in a transaction: ``body(session, box)`` when the mailbox
    document ``box`` is known (it reserves with ``reserve`` and ``check``), else, or
    when that missed, ``body(session, None)`` (it reserves with ``allocate``); what
    the committed one left is remembered.

    A duplicate key in the optimistic try is a miss as well: a UID or modseq taken
    meanwhile collides in the unique indexes (messages, journal) before the
    reservation's result is read. The classic try then meets any real duplicate."""
    boxes = known(database)
    # (Without transactions, nothing would take a missed try's writes back.)
    if box is not None and database.transactions:
        try:
            result, after = database.in_transaction(lambda session: body(session, box))
        except (Missed, pymongo.errors.DuplicateKeyError):
            boxes.misses += 1
            boxes.missed(box["_id"])
        else:
            boxes.hits += 1
            if after is not None:
                boxes.remember(after)
            return result
    result, after = database.in_transaction(lambda session: body(session, None))
    if after is not None:
        boxes.remember(after)
    return result
