"""Metadata entries (RFC 5464): small named values per user, per mailbox or server.

One document per entry: ``user``, ``mailbox`` (the mailbox's ``_id``, or "" for
the server annotations a user sees), ``entry`` (the name casefolded: entry names
are case-insensitive, RFC 5464 §3.2), ``name`` (as first set), ``value`` (bytes)
and ``size``. Entries hang on the mailbox id, not its path, so they follow a
RENAME with no work; ``Mailboxes.purge_sync`` drops them with the mailbox.

Mailboxes here belong to one user, so ``/private/...`` and ``/shared/...`` are
both that user's own, distinct entries (RFC 5464 §3.2 lets a server treat them so
when nobody else can see the mailbox).

Caps (per-user resources): one value at most :data:`MAX_VALUE` octets (RFC 5464
§4.3 ``MAXSIZE``), at most :data:`MAX_ENTRIES` entries per mailbox and
:data:`MAX_USER_ENTRIES` / :data:`MAX_USER_BYTES` per user (``TOOMANY``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bson import ObjectId

from ..engine import schema
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput, NotFound, TooBig

COLLECTION = "metadata"
#: Largest value of one entry, in octets (announced as ``METADATA MAXSIZE``).
MAX_VALUE = 64 * 1024
#: Most entries on one mailbox (or on the server, per user).
MAX_ENTRIES = 200
#: Most entries, and most value octets, of one user across all mailboxes.
MAX_USER_ENTRIES = 2000
MAX_USER_BYTES = 4 * 1024 * 1024
#: Longest entry name, in characters.
MAX_NAME = 1024
#: The server annotations' ``mailbox`` key.
SERVER = ""

schema.register(
    COLLECTION,
    [schema.IndexModel([("user", schema.ASCENDING), ("mailbox", schema.ASCENDING),
                        ("entry", schema.ASCENDING)], unique=True, name="user_mailbox_entry")],
)


class MetadataTooLarge(TooBig):
    """A value is longer than :data:`MAX_VALUE` (IMAP ``NO [METADATA MAXSIZE n]``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"metadata value larger than {limit} octets")
        self.limit = limit


class MetadataTooMany(InvalidInput):
    """Setting would pass an entry or size cap (IMAP ``NO [METADATA TOOMANY]``)."""


def valid_entry(name: str) -> bool:
    """True for an entry name RFC 5464 §3.2 allows: under /private or /shared, no
    "*" or "%", no empty component (so no "//" and no trailing "/"), no controls."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        return False
    low = name.lower()
    if not (low.startswith(("/private/", "/shared/")) or low in ("/private", "/shared")):
        return False
    if "//" in name or name.endswith("/") or "*" in name or "%" in name:
        return False
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name)


def entry_key(name: str) -> str:
    """The stored (casefolded) key of an entry name; InvalidInput when not valid."""
    if not valid_entry(name):
        raise InvalidInput(f"bad metadata entry name {name[:100]!r}")
    return name.lower()


def _mailbox_key(mailbox_id: str | None) -> ObjectId | str:
    return SERVER if mailbox_id is None else parse_id(mailbox_id)


def _depth_ok(key: str, root: str, depth: str) -> bool:
    if key == root:
        return True
    if depth == "0" or not key.startswith(root + "/"):
        return False
    return depth == "infinity" or "/" not in key[len(root) + 1:]


class Metadata:
    """The ``metadata`` collection (``store.metadata``)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @property
    def _coll(self) -> Any:
        return self._database.collection(COLLECTION)

    async def get(self, user_id: str, mailbox_id: str | None, entries: Iterable[str],
                  depth: str = "0") -> list[tuple[str, bytes]]:
        """The entries named (and, with ``depth`` "1" or "infinity", those below
        them; RFC 5464 §4.2.2) of a mailbox, or of the server when ``mailbox_id`` is
        None: (name, value) pairs in name order, each once."""
        if depth not in ("0", "1", "infinity"):
            raise InvalidInput("depth is 0, 1 or infinity")
        roots = [entry_key(e) for e in entries]
        user = parse_id(user_id)
        mailbox = _mailbox_key(mailbox_id)
        # At most MAX_ENTRIES documents: reading them all is one small query.
        docs = await self._database.run(lambda: list(self._coll.find(
            {"user": user, "mailbox": mailbox}, {"entry": 1, "name": 1, "value": 1})))
        found = [d for d in docs if any(_depth_ok(d["entry"], r, depth) for r in roots)]
        found.sort(key=lambda d: d["entry"])
        return [(d["name"], bytes(d["value"])) for d in found]

    async def set(self, user_id: str, mailbox_id: str | None,
                  changes: Sequence[tuple[str, bytes | None]]) -> None:
        """Set (bytes) or remove (None) entries of a mailbox or of the server, all or
        none (RFC 5464 §4.3); the last change of a name wins. NotFound when the
        mailbox is gone; MetadataTooLarge / MetadataTooMany past a cap."""
        wanted: dict[str, tuple[str, bytes | None]] = {}
        for name, value in changes:
            key = entry_key(name)
            if value is not None and len(value) > MAX_VALUE:
                raise MetadataTooLarge(MAX_VALUE)
            wanted[key] = (name, None if value is None else bytes(value))
        user = parse_id(user_id)
        mailbox = _mailbox_key(mailbox_id)
        await self._database.run(self._database.in_transaction,
                                 lambda session: self._set_tx(session, user, mailbox, wanted))

    def _set_tx(self, session: Any, user: ObjectId, mailbox: ObjectId | str,
                wanted: dict[str, tuple[str, bytes | None]]) -> None:
        if mailbox != SERVER and self._database.collection(schema.MAILBOXES).find_one(
                {"_id": mailbox, "user": user}, {"_id": 1}, session=session) is None:
            raise NotFound("no such mailbox")  # deleted since it was looked up
        # The caps are checked inside the transaction that writes; two concurrent
        # commands on one mailbox may each pass and together overshoot by one batch
        # (bounded by a command's size), never without limit.
        sizes = {(d["mailbox"], d["entry"]): int(d.get("size", 0))
                 for d in self._coll.find({"user": user}, {"mailbox": 1, "entry": 1, "size": 1},
                                          session=session)}
        for key, (_, value) in wanted.items():
            if value is None:
                sizes.pop((mailbox, key), None)
            else:
                sizes[(mailbox, key)] = len(value)
        here = sum(1 for m, _ in sizes if m == mailbox)
        if (here > MAX_ENTRIES or len(sizes) > MAX_USER_ENTRIES
                or sum(sizes.values()) > MAX_USER_BYTES):
            raise MetadataTooMany("too many metadata entries")
        for key, (name, value) in wanted.items():
            query = {"user": user, "mailbox": mailbox, "entry": key}
            if value is None:
                self._coll.delete_one(query, session=session)
            else:
                self._coll.update_one(
                    query, {"$set": {"value": value, "size": len(value)},
                            "$setOnInsert": {"name": name}},
                    upsert=True, session=session)



def purge_mailbox(database: Database, mailbox: ObjectId) -> None:
    """Forget a deleted mailbox's entries (blocking)."""
    database.collection(COLLECTION).delete_many({"mailbox": mailbox})


def purge_user(database: Database, user: ObjectId) -> None:
    """Forget every entry of a deleted user, server annotations included (blocking)."""
    database.collection(COLLECTION).delete_many({"user": user})
