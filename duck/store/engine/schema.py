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

from collections.abc import Callable
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import OperationFailure

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


#: (collection, index name) -> whether the index is wanted now: an index that only a
#: setting uses (textindex.py's, with ``search_index``) is made while it is on and
#: dropped while it is off, since every write of the collection pays for it.
_WHEN: dict[tuple[str, str], Callable[[], bool]] = {}
#: collection -> names of indexes earlier versions made and nothing uses any more:
#: dropped at start-up where present (each costs every insert and delete).
RETIRED: dict[str, list[str]] = {}
#: The server's error code for an index that does not exist.
INDEX_NOT_FOUND = 27


def register(collection: str, indexes: list[IndexModel],
             when: Callable[[], bool] | None = None) -> None:
    """Add indexes for a collection (used by the store modules that own them);
    ``when``: they exist only while it returns True (asked at start-up)."""
    existing = INDEXES.setdefault(collection, [])
    names = {ix.document["name"] for ix in existing}
    existing.extend(ix for ix in indexes if ix.document["name"] not in names)
    if when is not None:
        for ix in indexes:
            _WHEN[(collection, ix.document["name"])] = when


def retire(collection: str, names: list[str]) -> None:
    """Have start-up drop these indexes of ``collection`` where they exist."""
    RETIRED.setdefault(collection, []).extend(names)


def wanted(collection: str) -> list[IndexModel]:
    """The registered indexes of ``collection`` that should exist now."""
    return [ix for ix in INDEXES.get(collection, [])
            if (when := _WHEN.get((collection, ix.document["name"]))) is None or when()]


def ensure_indexes(db: Any) -> None:
    """Create every wanted index and drop retired and unwanted ones (blocking;
    idempotent; several processes may run it at once)."""
    for collection in INDEXES:
        active = wanted(collection)
        if active:
            db[collection].create_indexes(active)
    for collection in {*INDEXES, *RETIRED}:
        unwanted = set(RETIRED.get(collection, ()))
        unwanted.update(name for (owner, name), when in _WHEN.items()
                        if owner == collection and not when())
        if not unwanted:
            continue
        present = {ix["name"] for ix in db[collection].list_indexes()}
        for name in sorted(unwanted & present):
            try:
                db[collection].drop_index(name)
            except OperationFailure as exc:
                if exc.code != INDEX_NOT_FOUND:  # (another process dropped it first)
                    raise


__all__ = ["ASCENDING", "DESCENDING", "INDEXES", "RETIRED", "IndexModel", "ensure_indexes",
           "register", "retire", "wanted"]
