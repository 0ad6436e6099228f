"""Leases: one holder of a named resource at a time, across processes and hosts.

POP3 needs the maildrop to itself for a session (RFC 1939 §8: "exclusive-access
lock on the maildrop"): the numbering a client sees must not shift under it,
and two sessions deleting from one mailbox would each expunge at QUIT what the
other still lists. Duck processes share nothing but the database, so the lock is
a document there with an expiry: a process that dies without releasing it
blocks the resource only until the lease runs out, and a live holder renews it
well before then.

One document per resource, ``_id`` the resource's name: taking a free or expired
lease is one conditional update (or one insert for a resource never leased), so
two takers racing for it cannot both win. The document stays after a release
(holder cleared) with the time of the last take, which is what a minimum delay
between takes (POP3 LOGIN-DELAY, RFC 2449 §6.5) is measured against.

Times are this host's clock (``engine.clock``): hosts are expected to keep NTP
time, and the lease period is many times any sane skew.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import attrs
import pymongo.errors
from pymongo import ReturnDocument

from ..engine import clock
from ..engine.database import Database
from ..errors import InvalidInput

COLLECTION = "leases"
#: Longest resource name (a mailbox id and a short prefix are far below it).
MAX_NAME = 200


@attrs.frozen
class Lease:
    """A held lease: pass it back to ``renew`` and ``release``."""

    name: str
    holder: str
    expires: dt.datetime


@attrs.frozen
class Refusal:
    """Why a lease was not granted: held by another until ``until``, or (``too_soon``)
    taken less than the minimum delay ago, free again at ``until``."""

    until: dt.datetime
    too_soon: bool = False


class Leases:
    """Named leases in the ``leases`` collection (``store.leases``)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _coll(self) -> Any:
        return self._database.collection(COLLECTION)

    async def acquire(self, name: str, seconds: float, *, min_delay: float = 0.0
                      ) -> Lease | Refusal:
        """Take the lease ``name`` for ``seconds`` unless another holder has it; with
        ``min_delay``, also refuse when it was last taken less than that long ago."""
        _check(name, seconds)
        return await self._database.run(self._acquire_sync, name, seconds, min_delay)

    def _acquire_sync(self, name: str, seconds: float, min_delay: float) -> Lease | Refusal:
        # A lease released between two of the reads below looks neither free nor
        # held to them: try again (a few times; a taker that keeps losing races is
        # told it is in use).
        for _ in range(3):
            got = self._try_acquire(name, seconds, min_delay)
            if got is not None:
                return got
        return Refusal(clock.now() + dt.timedelta(seconds=seconds))

    def _try_acquire(self, name: str, seconds: float, min_delay: float
                     ) -> Lease | Refusal | None:
        now = clock.now()
        holder = secrets.token_hex(12)
        expires = now + dt.timedelta(seconds=seconds)
        free: dict[str, Any] = {"_id": name, "expires": {"$lte": now}}
        if min_delay > 0:
            free["taken"] = {"$lte": now - dt.timedelta(seconds=min_delay)}
        update = {"$set": {"holder": holder, "expires": expires, "taken": now}}
        # AFTER, not BEFORE: the embedded engine's pre-images are stale under
        # concurrency (docs/architecture.md); the holder read back says who won.
        doc = self._coll.find_one_and_update(free, update, return_document=ReturnDocument.AFTER)
        if doc is not None and doc.get("holder") == holder:
            return Lease(name, holder, expires)
        if doc is None:
            try:
                self._coll.insert_one({"_id": name, "holder": holder, "expires": expires,
                                       "taken": now})
                return Lease(name, holder, expires)
            except pymongo.errors.DuplicateKeyError:
                pass  # it exists and is held (or was just taken by a racing taker)
        current = self._coll.find_one({"_id": name})
        if current is None:
            return None
        held_until = _utc(current.get("expires") or now)
        if held_until > now:
            return Refusal(held_until)
        free_at = _utc(current.get("taken") or now) + dt.timedelta(seconds=min_delay)
        if min_delay > 0 and free_at > now:
            return Refusal(free_at, too_soon=True)
        return None  # released meanwhile

    async def renew(self, lease: Lease, seconds: float) -> Lease | None:
        """Extend a held lease by ``seconds`` from now; None when it is no longer ours
        (it expired and someone else took it)."""
        _check(lease.name, seconds)
        expires = clock.now() + dt.timedelta(seconds=seconds)
        result = await self._database.run(
            self._coll.update_one, {"_id": lease.name, "holder": lease.holder},
            {"$set": {"expires": expires}})
        if result.matched_count == 0:
            return None
        return Lease(lease.name, lease.holder, expires)

    async def release(self, lease: Lease) -> None:
        """Give the lease up now (a no-op when it is no longer ours)."""
        await self._database.run(
            self._coll.update_one, {"_id": lease.name, "holder": lease.holder},
            {"$set": {"holder": None, "expires": clock.now()}})


def _utc(value: dt.datetime) -> dt.datetime:
    # pymongo hands back naive UTC datetimes unless the client is tz-aware.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _check(name: str, seconds: float) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise InvalidInput("bad lease name")
    if not seconds > 0:
        raise InvalidInput("a lease lasts a positive number of seconds")
