"""Vacation memory: one automatic reply per sender per period (RFC 5230 §4.2, §6).

"Has this user answered this sender, for this vacation handle, within the
period?" is one document per (user, handle, sender) in ``vacation_replies`` with
an ``expire`` time; a TTL index removes it after that. Asking is also recording:
``should_reply`` inserts the document (True) or finds it there (False), and an
expired document the TTL monitor has not yet removed is taken over with one
conditional update. Both are atomic on the document, so two processes delivering
two messages from one sender at once answer once between them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pymongo.errors

from ..engine import clock, schema
from ..engine.database import Database
from ..errors import InvalidInput

COLLECTION = "vacation_replies"
#: Longest period remembered (RFC 5230 lets a site cap :days; a year is plenty).
MAX_PERIOD = 366 * 24 * 3600
MAX_HANDLE = 1000

schema.register(COLLECTION, [
    schema.IndexModel([("expire", schema.ASCENDING)], expireAfterSeconds=0, name="ttl"),
    schema.IndexModel([("user", schema.ASCENDING)], name="user"),
])


def _key(user_id: str, handle: str, sender: str) -> str:
    # Hashed: handles may be long (a script's whole reason text by default).
    raw = "\0".join((user_id, handle, sender.strip().lower()))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


class VacationMemory:
    """``store.outbound``'s vacation half (see the module docstring)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def vacation_should_reply(self, user_id: str, sender: str, handle: str,
                                    period_seconds: float) -> bool:
        """True when ``user_id`` has not answered ``sender`` for ``handle`` within the
        last ``period_seconds``, and records that it answers now; False otherwise.

        The sender is compared case-insensitively. A period of 0 (RFC 6131
        ``:seconds 0``) always answers and records nothing.
        """
        if not isinstance(sender, str) or not sender or len(sender) > 320:
            raise InvalidInput("bad sender")
        if not isinstance(handle, str) or len(handle) > MAX_HANDLE:
            raise InvalidInput("bad vacation handle")
        if not 0 <= period_seconds <= MAX_PERIOD:
            raise InvalidInput(f"the period is 0 to {MAX_PERIOD} seconds")
        if period_seconds == 0:
            return True
        return await self._database.run(
            self._should_reply_sync, _key(user_id, handle, sender), user_id,
            float(period_seconds))

    def _should_reply_sync(self, key: str, user_id: str, period: float) -> bool:
        coll: Any = self._database.collection(COLLECTION)
        now = clock.now()
        expire = now + dt.timedelta(seconds=period)
        try:
            coll.insert_one({"_id": key, "user": user_id, "at": now, "expire": expire})
            return True
        except pymongo.errors.DuplicateKeyError:
            pass
        # There is a record: it counts until its expiry, even before the TTL
        # monitor (which runs about once a minute) removes it.
        result = coll.update_one({"_id": key, "expire": {"$lte": now}},
                                 {"$set": {"at": now, "expire": expire}})
        return bool(result.modified_count)

    async def vacation_forget(self, user_id: str) -> int:
        """Drop a user's vacation memory (a new autoreply starts afresh); returns how
        many records went."""
        coll = self._database.collection(COLLECTION)
        result = await self._database.run(coll.delete_many, {"user": user_id})
        return int(result.deleted_count)
