"""The authentication log: every login attempt, kept ``retention`` long.

One document per attempt over any protocol (time, protocol, mechanism, peer,
result, the application password used). Each carries its own ``expires`` under
a TTL index, so a change of retention applies to new entries without an index
rebuild, and processes with different settings do not fight over the index.
Attempts for user names that do not exist are kept too (``user`` is null): the
admin sees them; no user can.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
from bson import ObjectId

from ..engine import schema
from ..engine.database import Database
from ..engine.ids import parse_id

AUTHLOG = "authlog"
DEFAULT_RETENTION = dt.timedelta(days=30)
#: Longest user name kept in an entry (an attacker chooses it).
MAX_NAME = 256
#: Most entries one read returns.
MAX_LIST = 1000

#: Results of an attempt.
SUCCESS = "success"
FAILURE = "failure"
THROTTLED = "throttled"

schema.register(AUTHLOG, [
    schema.IndexModel([("user", schema.ASCENDING), ("time", schema.DESCENDING)],
                      name="user_time"),
    schema.IndexModel([("expires", schema.ASCENDING)], expireAfterSeconds=0, name="ttl"),
])


@attrs.frozen
class AuthEvent:
    """One login attempt."""

    time: dt.datetime
    username: str
    protocol: str
    mechanism: str
    peer: str
    result: str
    #: Why a failure failed (never the secret): "credentials", "scope", "2fa", ...
    reason: str | None = None
    user_id: str | None = None
    app_password: str | None = None


def _event(doc: dict[str, Any]) -> AuthEvent:
    user = doc.get("user")
    return AuthEvent(
        time=doc["time"], username=doc.get("username", ""), protocol=doc["protocol"],
        mechanism=doc.get("mechanism", ""), peer=doc.get("peer", ""), result=doc["result"],
        reason=doc.get("reason"), user_id=None if user is None else str(user),
        app_password=doc.get("app_password"),
    )


class AuthLog:
    """The ``authlog`` collection."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.retention = DEFAULT_RETENTION

    @property
    def _docs(self) -> Any:
        return self._database.collection(AUTHLOG)

    def record_sync(self, event: AuthEvent) -> None:
        """Write one entry (blocking)."""
        doc = attrs.asdict(event)
        doc["username"] = event.username[:MAX_NAME]
        doc["peer"] = event.peer[:MAX_NAME]
        doc["mechanism"] = event.mechanism[:64]
        doc["user"] = None if event.user_id is None else ObjectId(event.user_id)
        del doc["user_id"]
        doc["expires"] = event.time + self.retention
        self._docs.insert_one(doc)

    async def of_user(self, user_id: str, *, limit: int = 100,
                      before: dt.datetime | None = None) -> list[AuthEvent]:
        """The user's most recent attempts, newest first."""
        query: dict[str, Any] = {"user": parse_id(user_id)}
        if before is not None:
            query["time"] = {"$lt": before}
        limit = max(1, min(limit, MAX_LIST))
        docs = await self._database.run(
            lambda: list(self._docs.find(query).sort("time", -1).limit(limit)))
        return [_event(d) for d in docs]

    async def unknown_users(self, *, limit: int = 100) -> list[AuthEvent]:
        """Recent attempts for user names that do not exist (the admin's view)."""
        limit = max(1, min(limit, MAX_LIST))
        docs = await self._database.run(
            lambda: list(self._docs.find({"user": None}).sort("time", -1).limit(limit)))
        return [_event(d) for d in docs]
