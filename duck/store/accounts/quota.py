"""Per-user storage quota, maintained incrementally on ``users.storage_used``.

A reservation is one conditional ``$inc`` (the filter compares used + size with
the quota in the database, so concurrent deliveries cannot overshoot together);
it runs in the same transaction as the insert it pays for. Usage counts every
stored copy in full (deduplicated bodies included): quota is what the user sees.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from ..engine import schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import NotFound, OverQuota


def reserve(db: Database, user: ObjectId, size: int, session: Any = None) -> None:
    """Add ``size`` to the user's usage, or OverQuota / NotFound (blocking)."""
    users = db.collection(schema.USERS)
    result = users.update_one(
        {"_id": user, "$expr": {"$lte": [{"$add": ["$storage_used", size]}, "$quota"]}},
        {"$inc": {"storage_used": size}},
        session=session,
    )
    if result.matched_count:
        return
    if users.count_documents({"_id": user}, session=session) == 0:
        raise NotFound("no such user")
    raise OverQuota("mailbox full")


def release(db: Database, user: ObjectId, size: int, session: Any = None) -> None:
    """Give back ``size`` bytes of the user's usage (blocking)."""
    if size:
        db.collection(schema.USERS).update_one(
            {"_id": user}, {"$inc": {"storage_used": -size}}, session=session
        )


async def quota(db: Database, user_id: str) -> tuple[int, int]:
    """(bytes used, quota in bytes) of a user (RFC 9208 STORAGE)."""
    doc = await db.run(
        db.collection(schema.USERS).find_one, {"_id": parse_id(user_id)},
        {"storage_used": 1, "quota": 1},
    )
    if doc is None:
        raise NotFound("no such user")
    return int(doc.get("storage_used", 0)), int(doc.get("quota", 0))
