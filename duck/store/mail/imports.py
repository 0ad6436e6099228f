"""The import ledger: which messages of an outside source are already imported.

``duck import`` names each message of its source by a key that stays the same on
a second run (a remote folder's UIDVALIDITY and UID, a Maildir file's unique
name, an mbox message's position and digest) and asks APPEND to write one ledger
document together with the message, in the message's own transaction
(messages.py). The ledger's unique index then makes the message and its record
all or nothing: an import interrupted anywhere, a crash included, resumes by
skipping the keys it finds here, and can never store one message twice.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from ..engine import clock, schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput

COLLECTION = "imports"
#: Longest source name and key (bytes of their UTF-8 text).
MAX_NAME = 1024

schema.register(
    COLLECTION,
    [schema.IndexModel([("user", schema.ASCENDING), ("source", schema.ASCENDING),
                        ("key", schema.ASCENDING)], unique=True, name="user_source_key")],
)


def ledger_doc(user: ObjectId, source: str, key: str, mailbox: ObjectId,
               uid: int) -> dict[str, Any]:
    """The record of one imported message (written in the message's transaction)."""
    return {"user": user, "source": source, "key": key, "mailbox": mailbox, "uid": uid,
            "at": clock.now()}


def recorded(database: Database, user: ObjectId, source: str, key: str) -> bool:
    """Whether the ledger has this key (blocking)."""
    coll = database.collection(COLLECTION)
    return coll.count_documents({"user": user, "source": source, "key": key}, limit=1) > 0


def check(source: str, key: str) -> None:
    """InvalidInput for a source or key the ledger does not take."""
    for name, value in (("source", source), ("key", key)):
        if not isinstance(value, str) or not value or len(value.encode()) > MAX_NAME:
            raise InvalidInput(f"import {name} must be 1-{MAX_NAME} bytes of text")


class Imports:
    """Reads of the import ledger (``store.imports``)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def done(self, user_id: str, source: str) -> set[str]:
        """The keys of ``source`` already imported for the user."""
        user = parse_id(user_id)

        def run() -> set[str]:
            coll = self._database.collection(COLLECTION)
            return {d["key"] for d in coll.find({"user": user, "source": source},
                                                {"_id": 0, "key": 1})}

        return await self._database.run(run)

    async def forget(self, user_id: str, source: str | None = None) -> int:
        """Drop the ledger of one source (all sources when None): a later import
        copies those messages again. How many records went."""
        where: dict[str, Any] = {"user": parse_id(user_id)}
        if source is not None:
            where["source"] = source
        result = await self._database.run(
            self._database.collection(COLLECTION).delete_many, where)
        return int(result.deleted_count)
