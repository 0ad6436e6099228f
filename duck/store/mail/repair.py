"""The crash-repair pass (issue 19): what the message documents say, made true of
the counters kept beside them.

Every write keeps mailbox counters (count, unseen, size, UIDNEXT, highest modseq)
and quota usage in its own transaction, so they are off only after a bug, a write
made on a server without transactions, or a hand edit. This pass recounts them
from the messages and repairs what is off; it also finishes the purge of mailboxes
whose messages a crash left behind (a DELETE's mailbox document goes first, its
messages after; the DELETE notes the purge in ``purges`` in its transaction).
GridFS reference counts are the body sweep's (engine/bodies.py).

Each step is one page (a bounded number of documents; blocking, for a worker
thread): the caller (store/maintenance.py) pauses between pages so that serving
goes on. A repair counts again, with the counters, in one read-only transaction
(a snapshot: a delivery running beside the pass is in it whole or not at all), and
adds the difference to the counters outside it: every write moves counters and
messages together by relative amounts, so the difference still holds whatever
committed since. (On a server without transactions the two reads are not one
snapshot, and a write between them can make the correction off by that write: the
next pass sets it right.)
"""

from __future__ import annotations

from typing import Any

import attrs
from bson import ObjectId

from ..engine import schema
from ..engine.database import Database
from ..engine.pages import Pages, pages
from .mailboxes import PURGES, Mailboxes

#: Mailboxes or users one page recounts (one aggregate over their messages).
PAGE = 50


@attrs.define
class RepairReport:
    """What a repair pass found off and fixed."""

    mailboxes: int = 0
    counters_fixed: int = 0
    users: int = 0
    quota_fixed: int = 0
    orphan_mailboxes: int = 0
    orphan_messages: int = 0


def _mailbox_counts(db: Database, ids: list[ObjectId], session: Any = None
                    ) -> dict[ObjectId, dict[str, int]]:
    rows = db.collection(schema.MESSAGES).aggregate([
        {"$match": {"mailbox": {"$in": ids}}},
        {"$group": {"_id": "$mailbox", "count": {"$sum": 1},
                    "unseen": {"$sum": {"$cond": [{"$eq": ["$seen", True]}, 0, 1]}},
                    "size": {"$sum": "$size"}, "uid": {"$max": "$uid"},
                    "modseq": {"$max": "$modseq"}}},
    ], session=session)
    return {r["_id"]: r for r in rows}


def _off(box: dict[str, Any], counted: dict[str, int] | None) -> bool:
    c = counted or {"count": 0, "unseen": 0, "size": 0, "uid": 0, "modseq": 0}
    return (int(box.get("count", 0)) != c["count"] or int(box.get("unseen", 0)) != c["unseen"]
            or int(box.get("size", 0)) != c["size"]
            or int(box["uid_next"]) <= int(c["uid"] or 0)
            or int(box["modseq"]) < int(c["modseq"] or 0))


def mailbox_pages(db: Database) -> Pages:
    """Every mailbox's counters, a page at a time (for ``counters_page``)."""
    return pages(db.collection(schema.MAILBOXES), {},
                 {"uid_next": 1, "modseq": 1, "count": 1, "unseen": 1, "size": 1}, PAGE)


def counters_page(db: Database, report: RepairReport, boxes: Pages) -> bool:
    """Recount the next page of ``mailbox_pages`` and repair the mailboxes off;
    False when there was none left."""
    page = boxes.next_page()
    if page is None:
        return False
    counted = _mailbox_counts(db, [b["_id"] for b in page])
    for box in page:
        report.mailboxes += 1
        if _off(box, counted.get(box["_id"])):
            report.counters_fixed += _fix_mailbox(db, box["_id"])
    return True


def _fix_mailbox(db: Database, oid: ObjectId) -> int:
    def read(session: Any) -> tuple[dict[str, Any] | None, dict[str, int] | None]:
        box = db.collection(schema.MAILBOXES).find_one({"_id": oid}, session=session)
        return box, (None if box is None else _mailbox_counts(db, [oid], session).get(oid))

    box, counted = db.in_transaction(read)
    if box is None or not _off(box, counted):
        return 0  # deleted, or a write set it right meanwhile
    c = counted or {"count": 0, "unseen": 0, "size": 0, "uid": 0, "modseq": 0}
    # The counts and the counters come from one snapshot, and every write moves both
    # by the same amounts in its own transaction (``$inc``, mail/counters.py adds
    # too): what was off then is off by the same now, whatever committed since. So
    # the correction is added outside any transaction, where it cannot lose write
    # conflicts to a stream of deliveries to this mailbox (a transaction that
    # rewrote the counters did: a test appending without pause starved it).
    # UIDNEXT and the modseq only ever move up: a UID or modseq once given out is
    # never given again, even if its message is gone.
    result = db.collection(schema.MAILBOXES).update_one(
        {"_id": oid},
        {"$inc": {f: int(c[f]) - int(box.get(f, 0)) for f in ("count", "unseen", "size")},
         "$max": {"uid_next": int(c["uid"] or 0) + 1, "modseq": int(c["modseq"] or 0)}})
    return result.modified_count


def _usage(db: Database, ids: list[ObjectId], session: Any = None) -> dict[ObjectId, int]:
    rows = db.collection(schema.MESSAGES).aggregate([
        {"$match": {"user": {"$in": ids}}},
        {"$group": {"_id": "$user", "size": {"$sum": "$size"}}},
    ], session=session)
    return {r["_id"]: int(r["size"]) for r in rows}


def user_pages(db: Database) -> Pages:
    """Every user's storage used, a page at a time (for ``quota_page``)."""
    return pages(db.collection(schema.USERS), {}, {"storage_used": 1}, PAGE)


def quota_page(db: Database, report: RepairReport, users: Pages) -> bool:
    """Recount the storage used by the next page of ``user_pages`` and repair what
    is off; False when there was none left."""
    page = users.next_page()
    if page is None:
        return False
    used = _usage(db, [u["_id"] for u in page])
    for user in page:
        report.users += 1
        if int(user.get("storage_used", 0)) != used.get(user["_id"], 0):
            report.quota_fixed += _fix_quota(db, user["_id"])
    return True


def _fix_quota(db: Database, oid: ObjectId) -> int:
    users = db.collection(schema.USERS)

    def read(session: Any) -> tuple[dict[str, Any] | None, int]:
        user = users.find_one({"_id": oid}, {"storage_used": 1}, session=session)
        return user, (0 if user is None else _usage(db, [oid], session).get(oid, 0))

    user, actual = db.in_transaction(read)
    if user is None or int(user.get("storage_used", 0)) == actual:
        return 0
    # One snapshot, a correction added outside a transaction: as ``_fix_mailbox``.
    result = users.update_one(
        {"_id": oid}, {"$inc": {"storage_used": actual - int(user.get("storage_used", 0))}})
    return result.modified_count


def orphans_page(db: Database, mailboxes: Mailboxes, report: RepairReport,
                 after: ObjectId | None) -> ObjectId | None:
    """Finish the purges of deleted mailboxes that a crash interrupted (the next
    ``PAGE`` of ``purges`` documents after ``after``); the id to continue after
    (None: done). Their messages are archived as the DELETE meant (into INBOX on
    restore when the user still exists), or deleted for a deleted user.

    (A purge still running in another process is harmless to finish twice: each
    batch is a transaction, and two on the same messages conflict and retry.)
    """
    query = {} if after is None else {"_id": {"$gt": after}}
    page = list(db.collection(PURGES).find(query).sort("_id", 1).limit(PAGE))
    if not page:
        return None
    alive = {d["_id"] for d in db.collection(schema.USERS).find(
        {"_id": {"$in": [p["user"] for p in page]}}, {"_id": 1})}
    for doc in page:
        path = doc.get("path") if doc["user"] in alive else None
        report.orphan_mailboxes += 1
        report.orphan_messages += mailboxes.purge_sync(doc["_id"], path)
    last: ObjectId = page[-1]["_id"]
    return last if len(page) == PAGE else None
