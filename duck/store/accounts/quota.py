"""Per-user storage quota, maintained incrementally on ``users.storage_used``.

A reservation is one conditional ``$inc`` (the filter compares used + size with
the quota in the database, so concurrent deliveries cannot overshoot together);
it runs in the same transaction as the insert it pays for. Usage counts every
stored copy in full (deduplicated bodies included): quota is what the user sees.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from ..engine import schema
from ..engine.batch import BatchResult, WriteBatch
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import NotFound, OverQuota


def reserve(db: Database, user: ObjectId, size: int, session: Any = None) -> None:
    """Add ``size`` to the user's usage, or OverQuota / NotFound (blocking)."""
    # The filter is ``_id`` alone (the embedded engine scans the whole collection for
    # a filter with anything outside an index, ``$expr`` included): the pipeline
    # adds only when it fits and says in ``qok`` whether it did, in the post-image.
    used = {"$ifNull": ["$storage_used", 0]}
    fits = {"$lte": [{"$add": [used, size]}, "$quota"]}
    doc = db.collection(schema.USERS).find_one_and_update(
        {"_id": user},
        [{"$set": {"qok": fits,
                   "storage_used": {"$cond": [fits, {"$add": [used, size]}, used]}}}],
        projection={"qok": 1},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if doc is None:
        raise NotFound("no such user")
    if not doc.get("qok"):
        raise OverQuota("mailbox full")


def reserve_in(batch: WriteBatch, user: ObjectId, size: int) -> int:
    """``reserve`` as a write of ``batch`` (one round trip with the rest of its
    change); pass the index it returns to ``reserved`` with the flush's result.
    For a transaction only: a refusal is known after the other writes were sent,
    and the caller's raising takes them back."""
    used = {"$ifNull": ["$storage_used", 0]}
    fits = {"$lte": [{"$add": [used, size]}, "$quota"]}
    # An update that does not fit leaves the document as it was: not "modified".
    return batch.update(schema.USERS, {"_id": user}, [{"$set": {
        "storage_used": {"$cond": [fits, {"$add": [used, size]}, used]}}}], checked=True)


def reserved(result: BatchResult, index: int) -> None:
    """OverQuota / NotFound unless the reservation at ``index`` was made."""
    if not result.matched.get(index):
        raise NotFound("no such user")
    if not result.modified.get(index):
        raise OverQuota("mailbox full")


def release(db: Database, user: ObjectId, size: int, session: Any = None) -> None:
    """Give back ``size`` bytes of the user's usage (blocking)."""
    if size:
        db.collection(schema.USERS).update_one(
            {"_id": user}, {"$inc": {"storage_used": -size}}, session=session
        )


def release_in(batch: WriteBatch, user: ObjectId, size: int) -> None:
    """``release``, as a write of ``batch`` (sent with the rest of its change)."""
    if size:
        batch.update(schema.USERS, {"_id": user}, {"$inc": {"storage_used": -size}})


async def quota(db: Database, user_id: str) -> tuple[int, int]:
    """(bytes used, quota in bytes) of a user (RFC 9208 STORAGE)."""
    doc = await db.run(
        db.collection(schema.USERS).find_one, {"_id": parse_id(user_id)},
        {"storage_used": 1, "quota": 1},
    )
    if doc is None:
        raise NotFound("no such user")
    return int(doc.get("storage_used", 0)), int(doc.get("quota", 0))
