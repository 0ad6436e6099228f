"""Collections and their indexes, created idempotently at start-up.

Every query the protocols make has an index here. Intended shard keys for a
sharded cluster (not testable on the embedded server, which has one node):

- ``messages``: ``{mailbox: 1, uid: 1}`` (range: a mailbox's messages stay together,
  so FETCH of a range is one targeted query);
- ``attachments.files`` / ``attachments.chunks``: hashed ``_id`` / ``files_id``
  (bodies are fetched by id only; hashing spreads the write load);
- ``journal``: ``{mailbox: 1, modseq: 1}``;
- ``users``, ``addresses``, ``mailboxes``: unsharded (small).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

USERS = "users"
ADDRESSES = "addresses"
MAILBOXES = "mailboxes"
MESSAGES = "messages"
JOURNAL = "journal"
ATTACHMENTS = "attachments"  # GridFS bucket name
#: One document per stored body: ``_id`` is its SHA-256, with a reference count.
BODIES = "bodies"
#: Expunged messages kept for a while (mail/archive.py): the message documents,
#: moved, with the time they were archived.
ARCHIVE = "archive"

#: collection -> indexes. Unique indexes are guards as much as lookups: names are
#: normalised in code (the Rust engine has no collation-based unique indexes).
INDEXES: dict[str, list[IndexModel]] = {
    USERS: [
        IndexModel([("username", ASCENDING)], unique=True, name="username"),
    ],
    ADDRESSES: [
        IndexModel([("address", ASCENDING)], unique=True, name="address"),
        IndexModel([("user", ASCENDING)], name="user"),
    ],
}


def register(collection: str, indexes: list[IndexModel]) -> None:
    """Add indexes for a collection (used by the store modules that own them)."""
    existing = INDEXES.setdefault(collection, [])
    names = {ix.document["name"] for ix in existing}
    existing.extend(ix for ix in indexes if ix.document["name"] not in names)


def ensure_indexes(db: Any) -> None:
    """Create every registered index (blocking; idempotent)."""
    for collection, indexes in INDEXES.items():
        if indexes:
            db[collection].create_indexes(indexes)


__all__ = ["ASCENDING", "DESCENDING", "INDEXES", "IndexModel", "ensure_indexes", "register"]
