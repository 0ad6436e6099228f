"""Mailbox access keys for URLAUTH (RFC 4467 §7: the INTERNAL mechanism).

A URLAUTH-authorized URL carries a token that the server computed from the URL
with a secret of the mailbox it names; a URL stays valid until the key changes
(RESETKEY). One document per mailbox that ever had a token made: ``user``,
``mailbox`` (the mailbox's ``_id``, so a key follows RENAME and a mailbox created
again under an old name has a new key) and ``key`` (32 random bytes). What the
token is made of is the protocol's business; the store only keeps the secret.
"""

from __future__ import annotations

import secrets
from typing import Any

from bson import Binary

from ..engine import schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..engine.upsert import upsert_returning

COLLECTION = "urlauth_keys"
KEY_BYTES = 32

schema.register(
    COLLECTION,
    [schema.IndexModel([("mailbox", schema.ASCENDING)], unique=True, name="mailbox"),
     schema.IndexModel([("user", schema.ASCENDING)], name="user")],
)


class UrlAuthKeys:
    """The access keys of mailboxes."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _coll(self) -> Any:
        return self._database.collection(COLLECTION)

    async def key(self, user_id: str, mailbox_id: str) -> bytes:
        """The mailbox's access key, made on first use (two processes making it at
        once agree on one: the first written wins)."""
        user, mailbox = parse_id(user_id), parse_id(mailbox_id)

        def get_or_make() -> bytes:
            doc = upsert_returning(
                self._coll, {"mailbox": mailbox},
                {"$setOnInsert": {"user": user, "key": Binary(secrets.token_bytes(KEY_BYTES))}})
            return bytes(doc["key"])

        return await self._database.run(get_or_make)

    async def existing(self, mailbox_id: str) -> bytes | None:
        """The mailbox's access key, or None when it has none (no token was ever
        made for it, or RESETKEY dropped it): no URL of it is valid then."""
        mailbox = parse_id(mailbox_id)
        doc = await self._database.run(lambda: self._coll.find_one({"mailbox": mailbox}))
        return None if doc is None else bytes(doc["key"])

    async def reset(self, user_id: str, mailbox_id: str | None = None) -> int:
        """RESETKEY: forget the key of one mailbox, or of every mailbox of the user;
        the URLs made with them stop working at once. How many keys went."""
        query: dict[str, Any] = {"user": parse_id(user_id)}
        if mailbox_id is not None:
            query["mailbox"] = parse_id(mailbox_id)
        result = await self._database.run(lambda: self._coll.delete_many(query))
        return int(result.deleted_count)


def purge_mailbox(database: Database, mailbox: Any) -> None:
    """Forget a deleted mailbox's key (blocking)."""
    database.collection(COLLECTION).delete_many({"mailbox": mailbox})


def purge_user(database: Database, user: Any) -> None:
    """Forget every key of a deleted user (blocking)."""
    database.collection(COLLECTION).delete_many({"user": user})
