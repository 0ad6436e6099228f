"""The archive of deleted messages: kept ``days`` after EXPUNGE or mailbox DELETE,
then purged; listed and restored through the API (issue 18).

Layout: an archived message is its message document *moved* to the ``archive``
collection (a new ``_id``, ordered by archive time; ``msg`` keeps the old one), with
``archived`` (when) and ``path`` (the mailbox it was in). Its ``cid`` keeps its
contents (index/contents.py: bytes and SEARCH text) where they are until the purge
deletes them; a restore takes them back as they are. (A message stored before
contents had documents of their own is archived without its SEARCH text,
``UNARCHIVED``, which a restore makes again from the message's bytes.) The move
is two writes of the expunge's own WriteBatch (delete from ``messages``, insert
here), so archiving adds no round trip to EXPUNGE; the message collection and its
indexes never see archived messages, so no query of the protocols (view, FETCH,
SEARCH, POP3, the digest, quota) has to exclude them. Marking the message in place
instead would have meant a field in every one of the ``messages`` indexes (a filter
with a field outside an index is a collection scan on the embedded engine) and a
changed ``mailbox`` under the unique (mailbox, uid) index, which the Rust engine
keeps stale (docs/architecture.md).

Bodies: an archived message keeps its GridFS references (``bodies``), so nothing
moves in ``bodies`` on archive or restore; the purge drops them after the delete
(the ordering rule of engine/bodies.py), and the body sweep counts the archive's
references with the messages'.

Counters and quota: the expunge moves them as it always did (an archived message
counts toward nothing the user sees); a restore is a delivery of the archived
document into the chosen mailbox (new UID and modseq, counters, quota, digest entry
and journal entry) that deletes the archive document in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import pymongo.errors
from bson import ObjectId

from duck.mime.indexer import parse_message

from ..accounts import quota
from ..engine import clock, schema
from ..engine.batch import WriteBatch
from ..engine.bodies import Bodies
from ..engine.database import Database
from ..engine.ids import new_id, parse_id
from ..engine.pages import Pages, pages
from ..errors import InvalidInput, NotFound
from ..index import contents, digest
from ..index.layout import segment_from_bson
from ..index.reader import read_sync
from ..models import ArchivedMessage, Restored
from ..push import journal
from .flags import flag_fields
from .mailboxes import INBOX, allocate, normalize_path

log = logging.getLogger(__name__)

COLLECTION = schema.ARCHIVE
#: Days an archived message is kept by default (the ``archive_days`` setting).
DEFAULT_DAYS = 14
#: Messages one restore or purge transaction handles (as EXPUNGE's batches).
BATCH = 50
#: Most messages one listing page returns.
MAX_PAGE = 250

schema.register(COLLECTION, [
    # A user's listing, newest first, paged by ``_id`` (an ObjectId made at archive
    # time); user deletion's purge.
    schema.IndexModel([("user", schema.ASCENDING), ("_id", schema.DESCENDING)],
                      name="user_id"),
])
# The background purge of what is older than ``days`` goes by ``_id``, an ObjectId
# made at archive time whose first four bytes are that second: an index of
# ``archived`` cost every archived message an entry (measured: docs/architecture.md,
# "Facts about the embedded database (measured)").
schema.retire(COLLECTION, ["archived"])

#: Fields of the message document that a restore sets anew.
_RENEWED = ("_id", "mailbox", "uid", "modseq", "sdate", "archived", "path", "msg",
            "flags", "kw", "seen", "deleted", "flagged")


#: The message document's field an archived copy goes without: SEARCH's text of
#: the message, as long as its body text again (a third of an imaptest message's
#: document), which no archive listing reads. A restore makes it again from the
#: message's bytes (``_text_of``). Writing it cost the embedded database ~0.3 ms of
#: its CPU per archived message of imaptest's mailbox (an insert of their documents
#: with and without it).
UNARCHIVED = "text"
#: What the expunge and mailbox DELETE paths read of the messages they archive.
ARCHIVED_PROJECTION = {UNARCHIVED: 0}


def archived_docs(docs: Iterable[dict[str, Any]], path: str, now: dt.datetime
                  ) -> list[dict[str, Any]]:
    """The archive documents of message documents (read with ARCHIVED_PROJECTION)
    being removed from the mailbox at ``path``."""
    return [{**{k: v for k, v in d.items() if k != UNARCHIVED},
             "_id": new_id(), "msg": d["_id"], "archived": now, "path": path}
            for d in docs]


def _summary(doc: dict[str, Any]) -> ArchivedMessage:
    env = doc.get("env") or {}
    senders = env.get("from_") or []
    sender = None
    if senders and senders[0].get("mailbox") is not None:
        a = senders[0]
        mailbox = bytes(a["mailbox"]).decode("utf-8", "replace")
        host = bytes(a["host"]).decode("utf-8", "replace") if a.get("host") else ""
        sender = f"{mailbox}@{host}" if host else mailbox
    return ArchivedMessage(
        id=str(doc["_id"]), user_id=str(doc["user"]), mailbox_id=str(doc["mailbox"]),
        path=str(doc.get("path", "")), uid=int(doc["uid"]),
        flags=tuple(f for f in doc.get("flags", ()) if f.lower() != "\\deleted"),
        size=int(doc["size"]), internal_date=doc["idate"], archived=doc["archived"],
        subject=doc.get("subject"), sender=sender, emailid=doc.get("emailid"),
    )


class Archive:
    """The archive of a store (``store.archive``)."""

    def __init__(self, database: Database, bodies: Bodies, days: int = DEFAULT_DAYS) -> None:
        self._database = database
        self._bodies = bodies
        #: Days archived messages are kept; 0: deleted messages are not archived.
        self.days = days
        #: The time purges compare with (tests move it forward instead of sleeping).
        self.clock: Callable[[], dt.datetime] = clock.now

    @property
    def enabled(self) -> bool:
        """Whether deleted messages are archived."""
        return self.days > 0

    @property
    def _coll(self) -> Any:
        return self._database.collection(COLLECTION)

    # -- archiving (called from the expunge and mailbox DELETE paths) ------------------

    def move_ops(self, batch: WriteBatch, docs: list[dict[str, Any]], path: str) -> None:
        """Add the archive inserts of whole message documents to ``batch`` (whose
        caller deletes them from ``messages`` in the same flush)."""
        batch.insert(COLLECTION, archived_docs(docs, path, self.clock()))

    def archive_mailbox_sync(self, mailbox: ObjectId, path: str, limit: int = BATCH) -> int:
        """Move up to ``limit`` messages of a deleted mailbox to the archive, freeing
        their quota, in one transaction; how many (0: none left). Blocking."""
        messages = self._database.collection(schema.MESSAGES)

        def body(session: Any) -> int:
            docs = list(messages.find({"mailbox": mailbox}, ARCHIVED_PROJECTION,
                                      session=session).limit(limit))
            if not docs:
                return 0
            batch = WriteBatch(self._database)
            self.move_ops(batch, docs, path)
            batch.delete(schema.MESSAGES, {"_id": {"$in": [d["_id"] for d in docs]}})
            sizes: Counter[ObjectId] = Counter()
            for d in docs:
                sizes[d["user"]] += int(d["size"])
            for user, size in sizes.items():
                quota.release_in(batch, user, size)
            batch.flush(session)
            return len(docs)

        return self._database.in_transaction(body)

    # -- listing ------------------------------------------------------------------------

    async def page(self, user_id: str, limit: int = 50, after: str | None = None
                   ) -> tuple[list[ArchivedMessage], str | None]:
        """A page of the user's archived messages, newest first; the id to pass as
        ``after`` for the next page (None: this was the last)."""
        user = parse_id(user_id)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1 to {MAX_PAGE}")
        query: dict[str, Any] = {"user": user}
        if after is not None:
            query["_id"] = {"$lt": parse_id(after)}
        projection = {"user": 1, "mailbox": 1, "path": 1, "uid": 1, "flags": 1, "size": 1,
                      "idate": 1, "archived": 1, "subject": 1, "env.from_": 1, "emailid": 1,
                      "cid": 1}

        def read() -> list[dict[str, Any]]:
            docs = list(self._coll.find(query, projection).sort("_id", -1).limit(limit + 1))
            # (The sender is in the contents: contents.py.)
            return contents.load(self._database, docs, ("env.from_",))

        docs = await self._database.run(read)
        page = [_summary(d) for d in docs[:limit]]
        return page, (page[-1].id if len(docs) > limit else None)

    async def count(self, user_id: str) -> int:
        """How many messages of the user are archived."""
        user = parse_id(user_id)
        return int(await self._database.run(self._coll.count_documents, {"user": user}))

    # -- restoring ----------------------------------------------------------------------

    async def restore(self, user_id: str, ids: Iterable[str] | None,
                      mailbox_path: str | None = None) -> list[Restored]:
        """Put archived messages back (``ids``; None: every one of the user's) into
        the mailbox at ``mailbox_path``, or, when None, each into the mailbox it was
        deleted from (INBOX if that is gone): new UIDs, the flags they had (but
        \\Deleted, which is what removed them) and their INTERNALDATE, byte for byte
        the same. NotFound for an id that is not the user's archived message;
        OverQuota when they do not fit (what was restored before stays)."""
        user = parse_id(user_id)
        wanted = None if ids is None else [parse_id(i) for i in ids]
        path = None if mailbox_path is None else normalize_path(mailbox_path)
        return await self._database.run(self._restore_sync, user, wanted, path)

    def _restore_sync(self, user: ObjectId, wanted: list[ObjectId] | None,
                      path: str | None) -> list[Restored]:
        query: dict[str, Any] = {"user": user}
        if wanted is not None:
            query["_id"] = {"$in": wanted}
        found = list(self._coll.find(query, {"path": 1}).sort("_id", 1))
        if wanted is not None and len(found) != len(set(wanted)):
            raise NotFound("no such archived message")
        boxes = self._database.collection(schema.MAILBOXES)
        groups: dict[str, list[ObjectId]] = {}
        for doc in found:
            groups.setdefault(path or str(doc.get("path") or INBOX), []).append(doc["_id"])
        if path is None:
            existing = {d["path"] for d in boxes.find(
                {"user": user, "path": {"$in": list(groups)}}, {"path": 1})}
            merged: dict[str, list[ObjectId]] = {}
            for p, oids in groups.items():
                merged.setdefault(p if p in existing else INBOX, []).extend(oids)
            groups = merged
        done: list[Restored] = []
        for target, oids in groups.items():
            box = boxes.find_one({"user": user, "path": target}, {"_id": 1})
            if box is None:
                raise NotFound(f"no such mailbox: {target}")
            dst: ObjectId = box["_id"]
            for i in range(0, len(oids), BATCH):
                started: list[bool] = []  # (the last try's)
                done += self._database.in_transaction(functools.partial(
                    self._restore_in, user=user, mailbox=dst, oids=oids[i:i + BATCH],
                    started=started))
                if started and started[-1]:  # (committed: the background build takes it)
                    self._database.digest_pending.add(dst)
        return done

    def _restore_in(self, session: Any, user: ObjectId, mailbox: ObjectId,
                    oids: list[ObjectId], started: list[bool]) -> list[Restored]:
        docs = list(self._coll.find({"_id": {"$in": oids}, "user": user}, session=session)
                    .sort("_id", 1))
        if not docs:
            return []  # restored meanwhile by another request
        fields = [flag_fields([f for f in d.get("flags", ()) if f.lower() != "\\deleted"])
                  for d in docs]
        total = sum(int(d["size"]) for d in docs)
        if session is None:
            quota.reserve(self._database, user, total)
        first_uid, first_modseq, box = allocate(
            self._database, mailbox, uids=len(docs), modseqs=len(docs), count=len(docs),
            unseen=sum(1 for f in fields if not f["seen"]), size=total, session=session)
        now = clock.now()
        new = []
        for i, (d, f) in enumerate(zip(docs, fields, strict=True)):
            kept = {k: v for k, v in d.items() if k not in _RENEWED}
            if UNARCHIVED not in kept and "cid" not in kept:
                # (Archived before contents had documents of their own: the text
                # goes back in the message document, with its bytes.)
                kept[UNARCHIVED] = self._text_of(d)
            new.append({**kept, "_id": new_id(), "mailbox": mailbox, "uid": first_uid + i,
                        "modseq": first_modseq + i, "sdate": now, **f})
        batch = WriteBatch(self._database)
        charged = None if session is None else quota.reserve_in(batch, user, total)
        batch.insert(schema.MESSAGES, new)
        indexed = new
        if digest.kept(box) or digest.grows(box):
            # (Its entries are made of the text and renderings too, in the
            # contents: one read.)
            indexed = contents.load(self._database, [dict(n) for n in new],
                                    ("text", "render"), session)
        started.append(digest.new_entries(batch, box, indexed, lambda: None))
        batch.insert(schema.JOURNAL, [
            journal.entry_doc(mailbox, n["modseq"], "exists", uid=n["uid"], flags=n["flags"])
            for n in new])
        batch.delete(COLLECTION, {"_id": {"$in": [d["_id"] for d in docs]}})
        result = batch.flush(session)
        if charged is not None:
            quota.reserved(result, charged)
        return [Restored(str(d["_id"]), str(mailbox), str(box["path"]), int(box["uidv"]),
                         n["uid"]) for d, n in zip(docs, new, strict=True)]

    def _text_of(self, doc: dict[str, Any]) -> str:
        """SEARCH's text of an archived message, from its bytes (blocking; one read
        per GridFS body it has), as its delivery's parse made it."""
        segments = tuple(segment_from_bson(s) for s in doc.get("segs", ()))
        return parse_message(read_sync(self._bodies, segments)).text

    # -- purging ------------------------------------------------------------------------

    def purge_expired_sync(self, limit: int = BATCH) -> tuple[int, int]:
        """Delete up to ``limit`` archived messages older than ``days`` and drop their
        body references; (messages, body bytes freed). Blocking. With ``days`` 0
        everything archived goes. (A pass over many: ``expired_pages``.)"""
        done = self.purge_page(self.expired_pages(limit))
        return done if done is not None else (0, 0)

    def expired_pages(self, size: int = BATCH) -> Pages:
        """The archived messages older than ``days`` now, a page at a time."""
        filter_, hint = self.expired_query()
        return pages(self._coll, filter_, {"bodies": 1, "cid": 1}, size, hint=hint)

    def expired_query(self) -> tuple[dict[str, Any], str]:
        """The filter of the archived messages older than ``days`` now, and the index
        to read them by: the second of their ``_id`` (those of the cutoff's own
        second go with it, a second early at most). Hinted: the embedded engine
        answers a range of ``_id`` with a scan of the whole collection otherwise
        (explain(): tests/store/test_bodies.py)."""
        cutoff = self.clock() - dt.timedelta(days=self.days) + dt.timedelta(seconds=1)
        return {"_id": {"$lt": ObjectId.from_datetime(cutoff)}}, "_id_"

    def purge_page(self, expired: Pages) -> tuple[int, int] | None:
        """Purge the next page of ``expired_pages``: (messages, body bytes freed), or
        None when there is none left. Blocking."""
        docs = expired.next_page()
        if docs is None:
            return None
        return len(docs), self._purge(docs)

    def purge_user_sync(self, user: ObjectId) -> int:
        """Delete every archived message of a (deleted) user; how many. Blocking."""
        total = 0
        while True:
            docs = list(self._coll.find({"user": user}, {"bodies": 1, "cid": 1})
                        .limit(BATCH * 20))
            if not docs:
                return total
            self._purge(docs)
            total += len(docs)

    def _purge(self, docs: list[dict[str, Any]]) -> int:
        if not docs:
            return 0
        # The delete first, the references after (a crash between leaves them too
        # high, which the body sweep repairs; never too low).
        self._coll.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
        if removed := contents.cids(docs):
            # (After the archive documents: a crash between leaves contents that no
            # document refers to, never a document without its contents.)
            self._database.collection(contents.COLLECTION).delete_many(
                {"_id": {"$in": removed}})
        try:
            return self._bodies.drop_refs(Counter(h for d in docs for h in d.get("bodies", ())))
        except pymongo.errors.PyMongoError:
            log.warning("archive purge: dropping body references failed; the sweep "
                        "repairs them")
            raise
