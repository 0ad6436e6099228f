"""Mailboxes: per-user folders with their IMAP counters.

A mailbox document holds the counters every write allocates from:
``uid_next`` and ``modseq`` (highest modseq) grow by atomic ``$inc`` read back
with ``ReturnDocument.AFTER`` (the embedded server returns stale pre-images to
concurrent BEFORE reads; docs/architecture.md), and ``count``/``unseen``/``size`` move in
the same update, so STATUS is one read. ``path`` is under a unique index, so it is
never updated in place: RENAME deletes and re-inserts the same ``_id`` in one
transaction (the Rust engine keeps stale keys otherwise).

Paths are Unicode ``str`` with ``/`` as the hierarchy delimiter; an initial
``INBOX`` component is case-insensitive (RFC 3501 §5.1) and stored as ``INBOX``.
"""

from __future__ import annotations

import functools
import re
import time
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pymongo.errors
from bson import ObjectId
from pymongo import ReturnDocument

from ..accounts import quota
from ..engine import clock, schema
from ..engine.batch import WriteBatch
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import AlreadyExists, InvalidInput, NotFound, require_utf8
from ..index import contents, digest
from ..limits import MAX_MAILBOXES
from ..models import SPECIAL_USES, Mailbox
from ..push import journal
from . import metadata, urlauth

if TYPE_CHECKING:  # (archive.py imports this module)
    from .archive import Archive

DELIMITER = "/"
INBOX = "INBOX"
MAX_PATH = 1024
MAX_DEPTH = 64

#: Created with every user, atomically with it (RFC 6154 attributes).
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    (INBOX, None),
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

schema.register(
    schema.MAILBOXES,
    [schema.IndexModel([("user", schema.ASCENDING), ("path", schema.ASCENDING)],
                       unique=True, name="user_path")],
)
#: Mailboxes deleted whose messages are not all purged yet: one document per mailbox
#: (``_id`` its id, ``user``, ``path``: where its messages are archived from, None to
#: delete them for good), inserted in the DELETE's transaction and removed when the
#: purge is done; the repair pass (repair.py) finishes what a crash interrupted.
PURGES = "purges"


def record_purge(db: Database, mailbox: ObjectId, user: ObjectId, path: str | None,
                 session: Any = None) -> None:
    """Note a deleted mailbox whose messages are to be purged (blocking)."""
    db.collection(PURGES).replace_one(
        {"_id": mailbox}, {"user": user, "path": path, "at": clock.now()}, upsert=True,
        session=session)


#: A user's subscribed names (RFC 3501 §6.3.6): names, not mailboxes: a name may be
#: subscribed before its mailbox exists and stays subscribed after it is deleted.
SUBSCRIPTIONS = "subscriptions"
schema.register(
    SUBSCRIPTIONS,
    [schema.IndexModel([("user", schema.ASCENDING), ("path", schema.ASCENDING)],
                       unique=True, name="user_path")],
)


def normalize_path(path: str) -> str:
    """The canonical spelling of a mailbox path, or :class:`InvalidInput`."""
    if not isinstance(path, str):
        raise InvalidInput("mailbox name must be a string")
    return _normalized(path)


@functools.lru_cache(maxsize=4096)
def _normalized(path: str) -> str:
    # (Remembered: an APPEND or a delivery normalizes its mailbox's name twice or
    # more, ~2% of its CPU; an invalid name raises, and is not remembered.)
    text = unicodedata.normalize("NFC", require_utf8(path, "mailbox name"))
    if not text or len(text) > MAX_PATH:
        raise InvalidInput("mailbox name empty or too long")
    if _CONTROL.search(text):
        raise InvalidInput("mailbox name contains control characters")
    parts = text.split(DELIMITER)
    if len(parts) > MAX_DEPTH or any(not p for p in parts):
        raise InvalidInput("mailbox name has an empty level or is too deep")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return DELIMITER.join(parts)


def parents(path: str) -> list[str]:
    """The superior names of ``path``, outermost first."""
    parts = path.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


def mailbox_from_doc(doc: dict[str, Any]) -> Mailbox:
    """The public view of a mailbox document."""
    return Mailbox(
        id=str(doc["_id"]),
        user_id=str(doc["user"]),
        path=doc["path"],
        special_use=doc.get("special_use"),
        uid_validity=int(doc["uidv"]),
        uid_next=int(doc["uid_next"]),
        highest_modseq=int(doc["modseq"]),
        message_count=int(doc.get("count", 0)),
        unseen_count=int(doc.get("unseen", 0)),
        size=int(doc.get("size", 0)),
        recent_mark=int(doc.get("recent", 0)),
        acl=tuple((e["id"], e["rights"]) for e in doc.get("acl", ())),
        digest=digest.usable(doc),
    )


def next_uid_validity(db: Database, user: ObjectId, session: Any = None) -> int:
    """A uidValidity larger than any this user had, and at least the current time.

    A mailbox deleted and created again under the same name must get a new value
    (RFC 3501 §2.3.1.1); the per-user counter guarantees it even within a second.
    """
    stamp = int(time.time())
    doc = db.collection(schema.USERS).find_one_and_update(
        {"_id": user},
        [{"$set": {"uidv": {"$max": [{"$add": [{"$ifNull": ["$uidv", 0]}, 1]}, stamp]}}}],
        projection={"uidv": 1},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if doc is None:
        raise NotFound("no such user")
    return int(doc["uidv"]) & 0xFFFFFFFF or 1


def new_mailbox_doc(
    user: ObjectId, path: str, uidv: int, *, special_use: str | None = None,
    oid: ObjectId | None = None,
) -> dict[str, Any]:
    """A fresh mailbox document; its creation is modseq 1."""
    return {
        "_id": oid or ObjectId(),
        "user": user,
        "path": path,
        "special_use": special_use,
        "uidv": uidv,
        "uid_next": 1,
        "modseq": 1,
        "count": 0,
        "unseen": 0,
        "size": 0,
        "recent": 0,
        # Its digest (digest.py): none while it is small (digest.DIGEST_FROM).
        "dg": digest.new_state(),
    }


def allocate(
    db: Database,
    mailbox: ObjectId | dict[str, Any],
    *,
    uids: int = 0,
    modseqs: int = 1,
    count: int = 0,
    unseen: int = 0,
    size: int = 0,
    session: Any = None,
    claim_recent: tuple[ObjectId, int] | None = None,
) -> tuple[int, int, dict[str, Any]]:
    """Reserve ``uids`` UIDs and ``modseqs`` modseqs, moving the counters (blocking).

    ``mailbox`` is an id or a filter (``{"user": ..., "path": ...}``: lookup and
    allocation in one round trip). Returns (first uid, first modseq, the mailbox
    document after the update). The post-image is exact under concurrency; the
    unique (mailbox, uid) index on messages is the second guard.

    ``claim_recent`` = (mailbox id, modseq): when the mailbox is that one and its
    modseq is still that, the \\Recent mark (flags.claim_recent_sync) moves up to
    the last UID reserved in the same write, and the document's ``rp`` is the mark
    it replaced (else ``rp`` is -1: nothing claimed). A session that has the mailbox
    selected and current claims the messages it appends this way, without the
    read and the write of a separate claim.
    """
    update: dict[str, Any] | list[dict[str, Any]]
    if claim_recent is None:
        update = {"$inc": {"uid_next": uids, "modseq": modseqs, "count": count,
                           "unseen": unseen, "size": size}}
    else:
        oid, expected = claim_recent
        mark = {"$ifNull": ["$recent", 0]}
        current = {"$and": [{"$eq": ["$_id", oid]}, {"$eq": ["$modseq", expected]}]}

        def plus(field: str, n: int) -> dict[str, Any]:
            return {"$add": [{"$ifNull": [f"${field}", 0]}, n]}

        # One stage: every expression sees the document as it was before the write.
        update = [{"$set": {
            "uid_next": plus("uid_next", uids), "modseq": plus("modseq", modseqs),
            "count": plus("count", count), "unseen": plus("unseen", unseen),
            "size": plus("size", size),
            "rp": {"$cond": [current, mark, -1]},
            "recent": {"$cond": [current, {"$max": [mark, plus("uid_next", uids - 1)]},
                                 mark]},
        }}]
    doc = db.collection(schema.MAILBOXES).find_one_and_update(
        mailbox if isinstance(mailbox, dict) else {"_id": mailbox},
        update,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if doc is None:
        raise NotFound("no such mailbox")
    return int(doc["uid_next"]) - uids, int(doc["modseq"]) - modseqs + 1, doc


#: Seconds a user's mailbox list is reused by LIST while no change of the user's
#: mailboxes is heard of: the longest a change waits to show in LIST when the change
#: stream holds it back or a tool wrote the mailboxes without a journal entry (a
#: backup restore). (A notifier that polls hears of no such change: it has every
#: list forgotten at each poll.)
LIST_REUSED_FOR = 10.0
#: Users whose list is remembered (all forgotten beyond).
LISTS_KEPT = 10_000


#: Called after a mailbox's messages were deleted (and their quota freed), with their
#: documents (projection: size, bodies, user); the messages module frees the bodies.
ReleaseHook = Callable[[list[dict[str, Any]]], None]


class Mailboxes:
    """The ``mailboxes`` collection as the protocols use it."""

    def __init__(self, database: Database) -> None:
        self._database = database
        #: Frees quota and body references of deleted messages (set by the Store).
        self.release: ReleaseHook | None = None
        #: Where a deleted mailbox's messages are kept (set by the Store).
        self.archive: Archive | None = None
        #: user -> (``database.mailbox_generation`` before the read, when it expires,
        #: the list): what ``list(reuse=True)`` answers again.
        self._listed: dict[ObjectId, tuple[int, float, list[Mailbox]]] = {}

    @property
    def _coll(self) -> Any:
        return self._database.collection(schema.MAILBOXES)

    def create_defaults(self, session: Any, user: ObjectId) -> None:
        """users.create_hooks entry: the default folders, in the user's transaction."""
        docs = []
        for path, special_use in DEFAULT_MAILBOXES:
            uidv = next_uid_validity(self._database, user, session)
            docs.append(new_mailbox_doc(user, path, uidv, special_use=special_use))
        self._coll.insert_many(docs, session=session)
        # The default folders start subscribed (clients list subscriptions).
        self._database.collection(SUBSCRIPTIONS).insert_many(
            [{"user": user, "path": d["path"]} for d in docs], session=session)
        journal.write(
            self._database,
            [journal.entry_doc(d["_id"], 1, "mailbox-create", path=d["path"], user=user)
             for d in docs],
            session,
        )

    def _missing_parents(self, user: Any, path: str, session: Any) -> list[dict[str, Any]]:
        """New documents for the ancestors of ``path`` that do not exist yet (blocking)."""
        existing = {
            d["path"] for d in self._coll.find(
                {"user": user, "path": {"$in": parents(path)}}, {"path": 1}, session=session,
            )
        }
        return [
            new_mailbox_doc(user, p, next_uid_validity(self._database, user, session))
            for p in parents(path) if p not in existing
        ]

    async def list(self, user_id: str, *, reuse: bool = False) -> list[Mailbox]:
        """Every mailbox of a user, sorted by path (one query).

        ``reuse``: for a caller that needs the names and attributes alone (LIST
        without STATUS), the list this process last read for the user, without a
        query, when no change of the user's mailboxes was heard of since (one made
        here, or another process's through the change stream: ``Database.
        mailboxes_changed``), for up to LIST_REUSED_FOR seconds. Its counters may
        be behind. An imaptest run LISTs each user several times a second, and the
        read was most of a LIST's cost.
        """
        user = parse_id(user_id)
        database = self._database
        if reuse:
            known = self._listed.get(user)
            if (known is not None and time.monotonic() < known[1]
                    and database.mailboxes_unchanged_since(user, known[0])):
                return list(known[2])
        # (The generation before the read: a change heard of meanwhile makes this
        # answer one that is not reused.)
        generation = database.mailbox_generation
        docs = await database.run(
            lambda: list(self._coll.find({"user": user}).sort("path", 1).limit(MAX_MAILBOXES))
        )
        listed = [mailbox_from_doc(d) for d in docs]
        if len(self._listed) >= LISTS_KEPT:
            self._listed.clear()
        self._listed[user] = (generation, time.monotonic() + LIST_REUSED_FOR, listed)
        return list(listed)

    async def get(self, user_id: str, path: str) -> Mailbox:
        """The mailbox at ``path`` (NotFound)."""
        user = parse_id(user_id)
        try:
            key = normalize_path(path)
        except InvalidInput as exc:
            raise NotFound("no such mailbox") from exc
        doc = await self._database.run(self._coll.find_one, {"user": user, "path": key})
        if doc is None:
            raise NotFound(f"no such mailbox: {key}")
        return mailbox_from_doc(doc)

    async def get_by_id(self, mailbox_id: str) -> Mailbox:
        """The mailbox with this id (NotFound)."""
        doc = await self._database.run(self._coll.find_one, {"_id": parse_id(mailbox_id)})
        if doc is None:
            raise NotFound("no such mailbox")
        return mailbox_from_doc(doc)

    async def status(self, user_id: str, path: str) -> Mailbox:
        """STATUS data: the counters are kept current by every write (one read)."""
        return await self.get(user_id, path)

    async def create(
        self, user_id: str, path: str, special_use: str | None = None
    ) -> Mailbox:
        """Create a mailbox and any missing superior names (RFC 3501 §6.3.3)."""
        user = parse_id(user_id)
        key = normalize_path(path)
        if special_use is not None and special_use not in SPECIAL_USES:
            raise InvalidInput(f"unknown special-use attribute {special_use}")

        def body(session: Any) -> dict[str, Any]:
            if self._coll.count_documents({"user": user}, session=session) >= MAX_MAILBOXES:
                raise InvalidInput("too many mailboxes")
            if self._coll.find_one({"user": user, "path": key}, {"_id": 1}, session=session):
                raise AlreadyExists(f"mailbox {key} already exists")
            docs = self._missing_parents(user, key, session)
            target = new_mailbox_doc(
                user, key, next_uid_validity(self._database, user, session),
                special_use=special_use,
            )
            docs.append(target)
            self._coll.insert_many(docs, session=session)
            journal.write(
                self._database,
                [journal.entry_doc(d["_id"], 1, "mailbox-create", path=d["path"], user=user)
                 for d in docs],
                session,
            )
            return target

        try:
            doc = await self._run_tx(body, key)
        finally:
            self._database.mailboxes_changed(user)
        return mailbox_from_doc(doc)

    async def subscriptions(self, user_id: str) -> tuple[str, ...]:
        """The user's subscribed names, sorted (one query)."""
        user = parse_id(user_id)
        docs = await self._database.run(lambda: tuple(
            self._database.collection(SUBSCRIPTIONS).find({"user": user}, {"path": 1})
            .sort("path", 1).limit(MAX_MAILBOXES)))
        return tuple(d["path"] for d in docs)

    async def set_subscribed(self, user_id: str, path: str, subscribed: bool) -> None:
        """SUBSCRIBE/UNSUBSCRIBE a name (RFC 3501 §6.3.6-7): any valid name, existing
        or not; unsubscribing a name that is not subscribed is NotFound."""
        user = parse_id(user_id)
        key = normalize_path(path)
        coll = self._database.collection(SUBSCRIPTIONS)

        def run() -> None:
            if not subscribed:
                if coll.delete_one({"user": user, "path": key}).deleted_count == 0:
                    raise NotFound(f"not subscribed: {key}")
                return
            if coll.count_documents({"user": user}) >= MAX_MAILBOXES:
                raise InvalidInput("too many subscriptions")
            try:
                coll.insert_one({"user": user, "path": key})
            except pymongo.errors.DuplicateKeyError:
                pass  # subscribed already: SUBSCRIBE is idempotent

        await self._database.run(run)

    def migrate_subscriptions_sync(self) -> int:
        """Subscriptions kept as a flag on mailbox documents (an older layout) moved
        to their own collection; how many (blocking, idempotent, at start-up)."""
        moved = 0
        subs = self._database.collection(SUBSCRIPTIONS)
        for doc in list(self._coll.find({"subscribed": {"$exists": True}},
                                        {"user": 1, "path": 1, "subscribed": 1})):
            if doc.get("subscribed"):
                try:
                    subs.insert_one({"user": doc["user"], "path": doc["path"]})
                    moved += 1
                except pymongo.errors.DuplicateKeyError:
                    pass
            self._coll.update_one({"_id": doc["_id"]}, {"$unset": {"subscribed": ""}})
        return moved

    def purge_subscriptions_sync(self, user: ObjectId) -> None:
        """Forget every subscription of a user (a deleted user; blocking)."""
        self._database.collection(SUBSCRIPTIONS).delete_many({"user": user})

    async def delete(self, user_id: str, path: str) -> None:
        """Delete a mailbox and its messages, freeing their bodies and quota.

        Inferior names are kept (RFC 3501 §6.3.4 allows it; they then have no
        parent, which LIST can report as \\NonExistent). The mailbox document goes
        first so that nothing more is delivered into it; its messages are then
        moved to the archive (mail/archive.py) or deleted, in batches, and released
        (a crash in between leaves orphans that the repair pass, store/maintenance.py,
        finishes).
        """
        user = parse_id(user_id)
        key = normalize_path(path)
        if key == INBOX:
            raise InvalidInput("INBOX cannot be deleted")

        def body(session: Any) -> ObjectId:
            doc = self._coll.find_one_and_delete({"user": user, "path": key}, session=session)
            if doc is None:
                raise NotFound(f"no such mailbox: {key}")
            journal.write(
                self._database,
                [journal.entry_doc(doc["_id"], int(doc["modseq"]) + 1, "mailbox-delete",
                                   path=key, user=user)],
                session,
            )
            oid: ObjectId = doc["_id"]
            record_purge(self._database, oid, user, key, session)
            return oid

        try:
            oid = await self._run_tx(body, key)
        finally:
            self._database.mailboxes_changed(user)
        await self._database.run(self.purge_sync, oid, key)

    def purge_sync(self, mailbox: ObjectId, path: str | None = None,
                   batch: int = 100) -> int:
        """Delete every message of a (deleted) mailbox and release them (blocking).

        With ``path`` (where the mailbox was) and the archive on, the messages are
        moved to the archive instead; with None (a deleted user) they go for good.
        Either way a transaction per batch frees their quota with them (two purges
        of one mailbox at once, a DELETE and the repair pass, conflict and retry
        instead of freeing a message twice); body references are dropped after.
        """
        messages = self._database.collection(schema.MESSAGES)
        total = 0
        archive = self.archive
        while path is not None and archive is not None and archive.enabled:
            moved = archive.archive_mailbox_sync(mailbox, path)
            if moved == 0:
                break
            total += moved

        def body(session: Any) -> list[dict[str, Any]]:
            docs = list(messages.find({"mailbox": mailbox},
                                      {"size": 1, "bodies": 1, "user": 1, "cid": 1},
                                      session=session).limit(batch))
            if docs:
                writes = WriteBatch(self._database)
                writes.delete(schema.MESSAGES, {"_id": {"$in": [d["_id"] for d in docs]}})
                contents.remove(writes, docs)
                sizes: dict[ObjectId, int] = {}
                for d in docs:
                    sizes[d["user"]] = sizes.get(d["user"], 0) + int(d["size"])
                for user, size in sizes.items():
                    quota.release_in(writes, user, size)
                writes.flush(session)
            return docs

        while True:
            docs = self._database.in_transaction(body)
            if not docs:
                digest.purge(self._database, mailbox)
                metadata.purge_mailbox(self._database, mailbox)
                urlauth.purge_mailbox(self._database, mailbox)
                self._database.collection(PURGES).delete_one({"_id": mailbox})
                return total
            if self.release is not None:
                self.release(docs)
            total += len(docs)

    async def rename(self, user_id: str, old: str, new: str) -> Mailbox:
        """RENAME (RFC 3501 §6.3.5): the mailbox and its inferiors get new paths.

        Renaming INBOX moves its messages to the new name and leaves an empty INBOX:
        the INBOX document itself (with its messages, uidValidity and UIDs) takes
        the new path, and a fresh INBOX is created; its inferiors stay where they
        are. Every document changes path by delete + insert of the same ``_id`` in
        one transaction (docs/architecture.md, the Rust engine's stale unique keys).
        """
        user = parse_id(user_id)
        src = normalize_path(old)
        dst = normalize_path(new)
        if dst == src or (dst.startswith(src + DELIMITER) and src != INBOX):
            raise InvalidInput("cannot rename a mailbox into itself")
        if dst == INBOX:
            raise AlreadyExists("INBOX already exists")
        pattern = "^" + re.escape(src + DELIMITER)

        def body(session: Any) -> dict[str, Any]:
            if src == INBOX:
                query: dict[str, Any] = {"user": user, "path": src}
            else:
                query = {"user": user, "$or": [{"path": src}, {"path": {"$regex": pattern}}]}
            docs = list(self._coll.find(query, session=session))
            if not any(d["path"] == src for d in docs):
                raise NotFound(f"no such mailbox: {src}")
            moved = []
            for doc in docs:
                self._coll.delete_one({"_id": doc["_id"]}, session=session)
                doc = dict(doc, path=dst + doc["path"][len(src):], modseq=doc["modseq"] + 1)
                moved.append(doc)
            created = self._missing_parents(user, dst, session)
            if src == INBOX:
                created.append(new_mailbox_doc(
                    user, INBOX, next_uid_validity(self._database, user, session)
                ))
            self._coll.insert_many(moved + created, session=session)
            journal.write(
                self._database,
                [journal.entry_doc(d["_id"], d["modseq"], "mailbox-rename", path=d["path"],
                                   user=user) for d in moved]
                + [journal.entry_doc(d["_id"], 1, "mailbox-create", path=d["path"], user=user)
                   for d in created],
                session,
            )
            return next(d for d in moved if d["path"] == dst)

        try:
            doc = await self._run_tx(body, dst)
        finally:
            self._database.mailboxes_changed(user)
        if src != INBOX:
            await self._database.run(self._rename_subscriptions_sync, user, src, dst)
        return mailbox_from_doc(doc)

    def _rename_subscriptions_sync(self, user: ObjectId, src: str, dst: str) -> None:
        """Subscriptions of a renamed name and its inferiors follow it (what clients
        expect; RFC 3501 §6.3.5 is silent). Delete and insert, as the embedded engine
        needs for a field under a unique index (docs/architecture.md); a crash in
        between leaves the old names subscribed, which only costs a re-subscribe."""
        coll = self._database.collection(SUBSCRIPTIONS)
        pattern = "^" + re.escape(src + DELIMITER)
        docs = list(coll.find({"user": user, "path": {"$regex": pattern}}, {"path": 1}))
        docs += list(coll.find({"user": user, "path": src}, {"path": 1}))
        if not docs:
            return
        coll.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
        for d in docs:
            try:
                coll.insert_one({"user": user, "path": dst + d["path"][len(src):]})
            except pymongo.errors.DuplicateKeyError:
                pass  # the new name was subscribed already

    async def _run_tx(self, body: Callable[[Any], Any], key: str) -> Any:
        def run() -> Any:
            try:
                return self._database.in_transaction(body)
            except pymongo.errors.DuplicateKeyError as exc:
                raise AlreadyExists(f"mailbox {key} already exists") from exc
            except pymongo.errors.BulkWriteError as exc:
                if any(e.get("code") == 11000 for e in exc.details.get("writeErrors", ())):
                    raise AlreadyExists(f"mailbox {key} already exists") from exc
                raise

        return await self._database.run(run)
