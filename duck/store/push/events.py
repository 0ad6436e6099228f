"""The per-user change feed: every change of a user's mailboxes, resumable exactly.

Why a cursor of per-mailbox modseqs (and not a per-user sequence number):
modseqs are allocated per mailbox by an atomic ``$inc`` in the same transaction as
the journal entry, so "everything of mailbox M after modseq N" is exact and
gap-aware (``journal.contiguous``). A single per-user ordering would need either
ObjectId/time order, which is NOT reliable across processes (an entry allocated
earlier can commit later, so a reader that saw id X may later find an id < X), or
a per-user counter allocated by every writer, which adds a hot write per change
to code paths that are not ours and serialises all of a user's mailboxes. The
cursor costs nothing on the write side; its price is size: ~15 bytes per mailbox
before compression (a user with 50 mailboxes has a cursor of well under 1 KB).

A cursor is ``{mailbox id: last modseq delivered}`` plus the time ``t`` of the
last complete read. A mailbox not in the cursor is read from modseq 0 (it was
created after the cursor was made); a mailbox created *and* deleted between two
reads is found through its ``mailbox-create`` entry (which carries the user)
written at or after ``t - CREATE_MARGIN``. So that such a mailbox is told once,
a deleted mailbox stays in the cursor (at its last modseq) for as long as its
``mailbox-create`` entry is inside that look-back, and a cursor made "now"
(``current``) has the ones deleted within it.

A cursor older than the journal's retention cannot be served exactly (entries are
gone): ``read`` says ``resync`` and starts from "now" instead of replaying what
is left.

One ``read`` costs one query on ``mailboxes`` (counters and highest modseqs:
mailboxes with nothing new are not read further), one query on the journal for
all mailboxes that moved, and one query on ``messages`` for the metadata of all
new messages of the batch.
"""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal

import attrs
from bson import ObjectId

from duck.mime.model import Envelope

from .. import rights
from ..engine import clock, schema
from ..engine.convert import envelope_from_bson
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput, NotFound
from ..limits import MAX_MAILBOXES
from ..models import JournalEntry
from . import journal

#: How far before the cursor's time a mailbox-create entry is looked for: covers
#: clock skew between processes and a transaction's commit latency.
CREATE_MARGIN = dt.timedelta(seconds=60)
#: Most journal entries one read returns (callers read again when ``more``).
READ_LIMIT = 1000
#: Largest cursor accepted from a client (bytes of its text form).
MAX_CURSOR = 64 * 1024

schema.register(
    schema.JOURNAL,
    [
        # Mailbox events carry the user; message events do not (they are found
        # through the mailbox). Partial: message entries stay out of the index.
        schema.IndexModel(
            [("user", schema.ASCENDING), ("at", schema.ASCENDING)],
            name="user_at", partialFilterExpression={"user": {"$exists": True}},
        ),
    ],
)

EventKind = Literal[
    "message.new", "message.deleted", "message.flags",
    "mailbox.created", "mailbox.renamed", "mailbox.deleted", "mailbox.counters",
]

_KINDS: dict[str, EventKind] = {
    "exists": "message.new",
    "expunge": "message.deleted",
    "flags": "message.flags",
    "mailbox-create": "mailbox.created",
    "mailbox-rename": "mailbox.renamed",
    "mailbox-delete": "mailbox.deleted",
}


@attrs.frozen
class Cursor:
    """A position in a user's change feed: last modseq per mailbox, and a time."""

    modseqs: dict[str, int] = attrs.field(factory=dict)
    #: Unix time (seconds) of the last complete read.
    t: int = 0

    def encode(self) -> str:
        """Compact URL-safe text (the SSE event id)."""
        out = bytearray(_varint(self.t))
        for mailbox, modseq in sorted(self.modseqs.items()):
            out += bytes.fromhex(mailbox) + _varint(modseq)
        raw = bytes(out)
        packed = zlib.compress(raw, 6)
        body = b"\x02" + packed if len(packed) < len(raw) else b"\x01" + raw
        return base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse ``encode``'s output, or InvalidInput."""
        if not isinstance(text, str) or not text or len(text) > MAX_CURSOR:
            raise InvalidInput("invalid cursor")
        try:
            body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            if body[:1] == b"\x02":
                decomp = zlib.decompressobj()
                raw = decomp.decompress(body[1:], MAX_CURSOR * 4)
                if decomp.unconsumed_tail:
                    raise InvalidInput("cursor too large")
            elif body[:1] == b"\x01":
                raw = body[1:]
            else:
                raise InvalidInput("unknown cursor version")
            t, pos = _read_varint(raw, 0)
            modseqs: dict[str, int] = {}
            while pos < len(raw):
                if pos + 12 > len(raw) or len(modseqs) >= MAX_MAILBOXES:
                    raise InvalidInput("truncated cursor")
                mailbox = raw[pos:pos + 12].hex()
                modseq, pos = _read_varint(raw, pos + 12)
                modseqs[mailbox] = modseq
        except (ValueError, zlib.error) as exc:
            raise InvalidInput("invalid cursor") from exc
        return cls(modseqs, t)


def _varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("negative")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise InvalidInput("truncated cursor")
        byte = data[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, pos


@attrs.frozen
class MessageMeta:
    """What a new-message event carries about the message (if it still exists)."""

    size: int
    flags: tuple[str, ...]
    internal_date: dt.datetime | None
    emailid: str | None
    envelope: Envelope | None


@attrs.frozen
class MailboxCounters:
    """A mailbox's counters at the time of the read."""

    messages: int
    unseen: int
    size: int
    highest_modseq: int
    uid_next: int


@attrs.frozen
class UserEvent:
    """One change of a user's mail, with the cursor that follows it."""

    kind: EventKind
    mailbox_id: str
    path: str | None
    cursor: Cursor
    modseq: int | None = None
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    message: MessageMeta | None = None
    counters: MailboxCounters | None = None


@attrs.frozen
class FeedBatch:
    """The events of one read; ``more`` when the read was cut at READ_LIMIT;
    ``resync`` when the cursor was older than the journal's retention (no events:
    the reader must reload its state, and continues from ``cursor``, "now")."""

    events: list[UserEvent]
    cursor: Cursor
    more: bool
    resync: bool = False


def _now() -> dt.datetime:
    return clock.now()


def _look_back(t: int) -> dt.datetime:
    """The oldest ``mailbox-create`` a read from a cursor of time ``t`` looks for."""
    return dt.datetime.fromtimestamp(t, dt.UTC) - CREATE_MARGIN


def _aware(at: dt.datetime) -> dt.datetime:
    """A stored time as an aware UTC datetime (the client may be naive)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


class ChangeFeed:
    """Reads a user's changes after a cursor (``store.events``)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        #: Message documents (read with ``env`` and ``cid``) with their envelopes
        #: put back where the document keeps them apart (blocking; the store sets
        #: it: index/contents.py, which this layer does not import).
        self.with_envelopes: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = _same
        #: Seconds the journal keeps entries (journal.set_retention changes it).
        self.retention = journal.DEFAULT_RETENTION
        #: User names by id (names never change): whose rights an ACL grants.
        self._names: dict[ObjectId, str] = {}

    def _shared_boxes(self, user: ObjectId, projection: dict[str, int]
                      ) -> dict[str, dict[str, Any]]:
        """Mailboxes of other owners this user may read (``r``, RFC 4314), by id,
        with ``path`` as the user names them (``Other Users/<owner>/...``,
        ``Shared/...``): one query, two the first time and when there are any."""
        users = self._database.collection(schema.USERS)
        name = self._names.get(user)
        if name is None:
            doc = users.find_one({"_id": user}, {"username": 1})
            if doc is None:
                return {}
            if len(self._names) >= MAX_MAILBOXES:
                self._names.clear()
            name = self._names[user] = str(doc["username"])
        idents = [name, rights.ANYONE, rights.AUTHENTICATED]
        docs = [d for d in self._database.collection(schema.MAILBOXES).find(
            {"acl.id": {"$in": idents}}, {**projection, "acl": 1, "user": 1, "path": 1},
        ).limit(MAX_MAILBOXES) if d["user"] != user and "r" in rights.effective(
            {e["id"]: e["rights"] for e in d.get("acl", ())}, name)]
        if not docs:
            return {}
        owners = {u["_id"]: u for u in users.find(
            {"_id": {"$in": list({d["user"] for d in docs})}}, {"username": 1, "shared": 1})}
        out = {}
        for d in docs:
            owner = owners.get(d["user"])
            if owner is None:
                continue
            d["path"] = rights.shared_name(
                None if owner.get("shared") else owner["username"], d["path"])
            out[str(d["_id"])] = d
        return out

    def _forget_unreadable(self, user: ObjectId, since: dict[str, int],
                           boxes: dict[str, dict[str, Any]]) -> None:
        """Cursor entries of mailboxes the user may no longer read are dropped, so
        that nothing after a revocation is told: one that still exists is not the
        user's (a share taken back), one deleted is kept only when its deletion
        was the user's own (two queries, only when the cursor has such entries)."""
        missing = [ObjectId(m) for m in since if m not in boxes]
        if not missing:
            return
        alive = {str(d["_id"]) for d in self._database.collection(schema.MAILBOXES).find(
            {"_id": {"$in": missing}}, {"_id": 1})}
        own_deleted = {str(d["mailbox"]) for d in self._database.collection(schema.JOURNAL).find(
            {"mailbox": {"$in": missing}, "kind": "mailbox-delete", "user": user},
            {"mailbox": 1})}
        for m in missing:
            key = str(m)
            if key in alive or key not in own_deleted:
                since.pop(key, None)

    async def current(self, user_id: str) -> Cursor:
        """A cursor at "now": the highest modseq of every mailbox, and of every
        mailbox deleted within the create look-back (NotFound)."""
        user = parse_id(user_id)
        return await self._database.run(self._current_sync, user)

    def _current_sync(self, user: ObjectId) -> Cursor:
        if self._database.collection(schema.USERS).count_documents({"_id": user}) == 0:
            raise NotFound("no such user")
        started = _now()
        boxes = self._database.collection(schema.MAILBOXES).find(
            {"user": user}, {"modseq": 1}
        ).limit(MAX_MAILBOXES)
        modseqs = {str(b["_id"]): int(b["modseq"]) for b in boxes}
        modseqs.update({k: int(d["modseq"]) for k, d in self._shared_boxes(
            user, {"modseq": 1}).items()})
        # Created and already deleted within the look-back: without them here the
        # next read would find their creation and tell their whole past.
        # (From the cursor's whole-second time, as the next read looks back.)
        t = int(started.timestamp())
        coll = self._database.collection(schema.JOURNAL)
        gone = {d["mailbox"] for d in coll.find(
            {"user": user, "kind": "mailbox-create", "at": {"$gte": _look_back(t)}},
            {"mailbox": 1}) if str(d["mailbox"]) not in modseqs}
        if gone:
            for d in coll.find({"mailbox": {"$in": sorted(gone)}}, {"mailbox": 1, "modseq": 1}):
                key = str(d["mailbox"])
                modseqs[key] = max(modseqs.get(key, 0), int(d["modseq"]))
        return Cursor(modseqs, t)

    async def read(self, user_id: str, cursor: Cursor, *,
                   limit: int = READ_LIMIT) -> FeedBatch:
        """The user's changes after ``cursor``, in modseq order per mailbox."""
        user = parse_id(user_id)
        return await self._database.run(self._read_sync, user, cursor, limit)

    def _read_sync(self, user: ObjectId, cursor: Cursor, limit: int) -> FeedBatch:
        started = _now()
        if cursor.t < started.timestamp() - self.retention:
            # What happened since may have expired from the journal: replaying the
            # rest would look complete and is not.
            return FeedBatch([], self._current_sync(user), more=False, resync=True)
        projection = {"path": 1, "modseq": 1, "count": 1, "unseen": 1, "size": 1,
                      "uid_next": 1}
        boxes = {
            str(b["_id"]): b
            for b in self._database.collection(schema.MAILBOXES).find(
                {"user": user}, projection,
            ).limit(MAX_MAILBOXES)
        }
        # Other owners' mailboxes the user may read are part of the feed (named as
        # the user names them); their counters are the owner's.
        shared = self._shared_boxes(user, projection)
        boxes.update(shared)
        since = dict(cursor.modseqs)
        self._forget_unreadable(user, since, boxes)
        clauses: list[dict[str, Any]] = []
        for mailbox, doc in boxes.items():
            if int(doc["modseq"]) > since.get(mailbox, 0):
                clauses.append({"mailbox": ObjectId(mailbox),
                                "modseq": {"$gt": since.get(mailbox, 0)}})
        for mailbox, modseq in since.items():
            if mailbox not in boxes:
                clauses.append({"mailbox": ObjectId(mailbox), "modseq": {"$gt": modseq}})
        clauses.append({
            "user": user, "kind": "mailbox-create", "at": {"$gte": _look_back(cursor.t)},
        })
        coll = self._database.collection(schema.JOURNAL)
        docs = list(coll.find({"$or": clauses}, {"_id": 0})
                    .sort([("mailbox", 1), ("modseq", 1)]).limit(limit))
        more = len(docs) >= limit
        # The next cursor's time: a complete read moves it to now, in whole seconds.
        t = cursor.t if more else int(started.timestamp())
        # Mailboxes whose creation the next read's look-back will find again: from
        # that same time (not ``started``, which is up to a second later: a mailbox
        # forgotten by that second was found again and all its past told again).
        look_back = _look_back(t)
        recent = {str(d["mailbox"]) for d in docs
                  if d["kind"] == "mailbox-create" and d.get("at") is not None
                  and _aware(d["at"]) >= look_back}
        # Created and deleted (or renamed away) between two reads: read them whole.
        fleeting = {str(d["mailbox"]) for d in docs if d["kind"] == "mailbox-create"}
        fleeting -= set(boxes) | set(since)
        if fleeting and not more:
            extra = list(coll.find(
                {"mailbox": {"$in": [ObjectId(m) for m in fleeting]}, "modseq": {"$gt": 1}},
                {"_id": 0},
            ).sort([("mailbox", 1), ("modseq", 1)]).limit(limit))
            docs += extra
            more = len(extra) >= limit
        per_mailbox: dict[str, list[JournalEntry]] = defaultdict(list)
        seen: set[tuple[str, int]] = set()
        for d in docs:
            entry = journal._entry(d)  # the journal's own document mapping
            key = (entry.mailbox_id, entry.modseq)
            # The mailbox-create clause returns creations already delivered, too.
            if key in seen or entry.modseq <= since.get(entry.mailbox_id, 0):
                continue
            seen.add(key)
            per_mailbox[entry.mailbox_id].append(entry)
        runs: dict[str, list[JournalEntry]] = {}
        for mailbox, entries in per_mailbox.items():
            entries.sort(key=lambda e: e.modseq)
            run = journal.contiguous(entries, since.get(mailbox, 0), started)
            if run:
                runs[mailbox] = run
        self._refresh_counters(boxes, runs)
        meta = self._metadata(runs)
        events: list[UserEvent] = []
        # Mailboxes in the order of their first change, so a reader sees roughly
        # the order things happened in; within a mailbox the order is exact.
        order = sorted(runs, key=lambda m: (runs[m][0].at or started, m))
        for mailbox in order:
            doc = boxes.get(mailbox)
            path = doc["path"] if doc is not None else None
            for entry in runs[mailbox]:
                if entry.kind not in _KINDS:
                    # (An ACL change: no event of its own; its modseq is passed.)
                    since[mailbox] = entry.modseq
                    continue
                if entry.kind in ("mailbox-create", "mailbox-rename", "mailbox-delete"):
                    path = entry.path if mailbox not in shared else path
                # (A deleted mailbox keeps its place: see the end of this read.)
                since[mailbox] = entry.modseq
                events.append(UserEvent(
                    kind=_KINDS[entry.kind], mailbox_id=mailbox, path=path,
                    cursor=Cursor(dict(since), cursor.t), modseq=entry.modseq,
                    uid=entry.uid, flags=entry.flags,
                    message=meta.get((mailbox, entry.uid or 0))
                    if entry.kind == "exists" else None,
                ))
            if doc is not None:
                events.append(UserEvent(
                    kind="mailbox.counters", mailbox_id=mailbox, path=doc["path"],
                    cursor=Cursor(dict(since), cursor.t),
                    counters=MailboxCounters(
                        int(doc.get("count", 0)), int(doc.get("unseen", 0)),
                        int(doc.get("size", 0)), int(doc["modseq"]), int(doc["uid_next"]),
                    ),
                ))
        # A mailbox that is gone is forgotten once the next read cannot find its
        # creation again (then nothing of it can come back); until then it stays,
        # at the modseq of its deletion, so that its past is not told twice. With
        # transactions the delete entry commits with the delete itself, so nothing
        # is lost by this.
        if not more:
            for mailbox in list(since):
                if mailbox not in boxes and mailbox not in recent:
                    since.pop(mailbox)
        return FeedBatch(events, Cursor(since, t), more)

    def _refresh_counters(self, boxes: dict[str, dict[str, Any]],
                          runs: dict[str, list[JournalEntry]]) -> None:
        """Read again the counters of the mailboxes a change reached after their
        documents were read (a write committed between the two queries of a read):
        the counters told with a mailbox's events are never older than its events,
        or a reader would keep them (RFC 5465 NOTIFY's last STATUS, an SSE
        stream's) with no later change to correct them. Only then a query."""
        behind = [m for m, entries in runs.items()
                  if m in boxes and entries[-1].modseq > int(boxes[m]["modseq"])]
        if not behind:
            return
        fields = ("modseq", "count", "unseen", "size", "uid_next")
        for doc in self._database.collection(schema.MAILBOXES).find(
                {"_id": {"$in": [ObjectId(m) for m in behind]}}, dict.fromkeys(fields, 1)):
            # (The path stays as the reader names it: another owner's mailbox.)
            boxes[str(doc["_id"])].update({f: doc[f] for f in fields if f in doc})

    def _metadata(self, runs: dict[str, list[JournalEntry]]) -> dict[tuple[str, int],
                                                                    MessageMeta]:
        clauses = []
        for mailbox, entries in runs.items():
            uids = [e.uid for e in entries if e.kind == "exists" and e.uid is not None]
            if uids:
                clauses.append({"mailbox": ObjectId(mailbox), "uid": {"$in": uids}})
        if not clauses:
            return {}
        # (The envelope may be kept apart: ``with_envelopes``.)
        docs = self.with_envelopes(list(self._database.collection(schema.MESSAGES).find(
            {"$or": clauses},
            {"mailbox": 1, "uid": 1, "size": 1, "flags": 1, "idate": 1, "emailid": 1,
             "env": 1, "cid": 1},
        )))
        return {
            (str(d["mailbox"]), int(d["uid"])): MessageMeta(
                size=int(d.get("size", 0)), flags=tuple(d.get("flags", ())),
                internal_date=d.get("idate"), emailid=d.get("emailid"),
                envelope=envelope_from_bson(d["env"]) if "env" in d else None,
            )
            for d in docs
        }


def _same(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return docs
