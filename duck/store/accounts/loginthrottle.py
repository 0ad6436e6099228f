"""Failed-login counters shared by every duck process (the ``auth_throttle``
collection), so that N processes give an attacker no more tries than one.

One document per key (``user:<name>``, ``ip:<address>``, ``otp:<user id>``) counts
failures in a fixed window that starts at the key's first failure; a TTL index
removes it after the window (and reads ignore an expired one before that). From
the counts come:

- a refusal: at ``limit`` failures in the window, the key's logins are refused
  unchecked until the window ends (so parallel connections gain nothing);
- a delay on each failure: ``delay_base * 2**(n-1)`` seconds, at most ``delay_max``,
  slept before the failure is answered. A successful login is never delayed: the
  check happens first, the brake only on failure (Dovecot's auth_failure_delay).

A success forgets the user name's failures (the address keeps its record, so one
address cannot guess its way through many users with one success in between).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pymongo.errors

from ..engine import schema
from ..engine.database import Database

AUTH_THROTTLE = "auth_throttle"

schema.register(AUTH_THROTTLE, [
    schema.IndexModel([("expires", schema.ASCENDING)], expireAfterSeconds=0, name="ttl"),
])


@attrs.define
class ThrottlePolicy:
    """Limits of the login throttle (configurable: ``duck.config``)."""

    #: Failures per user name in a window before its logins are refused.
    user_limit: int = 20
    #: Failures per client address in a window before its logins are refused.
    peer_limit: int = 100
    #: Failed two-factor codes per user in a window before codes are refused.
    otp_limit: int = 10
    window: dt.timedelta = dt.timedelta(minutes=15)
    delay_base: float = 0.25
    delay_max: float = 5.0

    def delay(self, failures: int) -> float:
        """Seconds to hold back the answer to a failure that is the n-th."""
        if failures <= 0:
            return 0.0
        return min(self.delay_base * 2 ** min(failures - 1, 32), self.delay_max)


def user_key(username: str) -> str:
    """The counter of a user name (as typed, case-folded: unknown names count too)."""
    return "user:" + username.strip().lower()[:256]


def peer_key(peer: str) -> str:
    """The counter of a client address."""
    return "ip:" + peer[:64]


class LoginThrottle:
    """Counters in the database; every method is blocking (run it in a worker)."""

    def __init__(self, database: Database, policy: ThrottlePolicy | None = None) -> None:
        self._database = database
        self.policy = policy or ThrottlePolicy()

    @property
    def _docs(self) -> Any:
        return self._database.collection(AUTH_THROTTLE)

    def counts_sync(self, *keys: str) -> dict[str, int]:
        """Failures in the current window per key (0 for none)."""
        now = dt.datetime.now(dt.UTC)
        docs = self._docs.find({"_id": {"$in": list(keys)}, "expires": {"$gt": now}})
        found = {d["_id"]: int(d["n"]) for d in docs}
        return {key: found.get(key, 0) for key in keys}

    def failed_sync(self, *keys: str) -> dict[str, int]:
        """Count one failure for each key; the counts after it."""
        return {key: self._bump(key) for key in keys}

    def _bump(self, key: str) -> int:
        now = dt.datetime.now(dt.UTC)
        for _ in range(3):
            # The usual case: a live window, one atomic $inc (exact across processes).
            doc = self._docs.find_one_and_update(
                {"_id": key, "expires": {"$gt": now}}, {"$inc": {"n": 1}},
                return_document=pymongo.ReturnDocument.AFTER)
            if doc is not None:
                return int(doc["n"])
            # No window, or an expired one the TTL monitor has not removed yet:
            # start a new one. Only one process can replace the expired document
            # (the filter), and only one can insert (the _id); a loser retries the $inc.
            try:
                result = self._docs.replace_one(
                    {"_id": key, "expires": {"$lte": now}},
                    {"n": 1, "expires": now + self.policy.window})
                if result.modified_count:
                    return 1
                self._docs.insert_one({"_id": key, "n": 1, "expires": now + self.policy.window})
                return 1
            except pymongo.errors.DuplicateKeyError:
                continue
        return self.counts_sync(key)[key]

    def forget_sync(self, key: str) -> None:
        """Forget a key's failures (a successful login of that user name)."""
        self._docs.delete_one({"_id": key})
