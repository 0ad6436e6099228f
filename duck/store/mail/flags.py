"""Message flags: validation, case rules, STORE with CONDSTORE, and \\Recent.

Case rule (decided here): flags compare case-insensitively, as RFC 3501 §9
(``flag-keyword``/``atom`` are case-insensitive strings) and RFC 9051 §2.3.2 have
it, and keep the spelling they were first stored with. System flags are always
stored in their canonical spelling (``\\Seen``). A message stores ``flags`` (the
spellings, in order) and ``kw`` (the same lowercased, what SEARCH and the
booleans ``seen``/``deleted``/``flagged`` are computed from).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pymongo import ReturnDocument, UpdateOne

from ..engine import schema
from ..engine.batch import WriteBatch
from ..engine.database import Database
from ..engine.ids import parse_id
from ..errors import InvalidInput, NotFound
from ..index import digest
from ..models import (
    SYSTEM_FLAGS,
    FlagChange,
    FlagMode,
    FlagsSnapshot,
    StoreFlagsResult,
)
from ..push import journal
from . import counters
from .mailboxes import allocate

#: Most flags one message may carry (a per-message cap).
MAX_FLAGS = 128
MAX_KEYWORD = 128
_CANONICAL = {f.lower(): f for f in SYSTEM_FLAGS}
# atom-specials of RFC 3501 §9 plus "\" (a keyword never starts with one).
_KEYWORD = re.compile(r'^[^\x00-\x20\x7f(){%*"\\\]]+$')


def normalize_flag(flag: str) -> str:
    """A valid flag in its stored spelling, or InvalidInput (``\\Recent`` too)."""
    if not isinstance(flag, str) or not flag:
        raise InvalidInput("empty flag")
    if flag.startswith("\\"):
        canonical = _CANONICAL.get(flag.lower())
        if canonical is None:
            raise InvalidInput(f"unknown or unsettable system flag {flag}")
        return canonical
    if len(flag) > MAX_KEYWORD or not _KEYWORD.match(flag):
        raise InvalidInput(f"invalid keyword {flag!r}")
    return flag


def normalize_flags(flags: Iterable[str]) -> list[str]:
    """Validated flags, duplicates (case-insensitive) removed, first spelling kept."""
    out: list[str] = []
    seen: set[str] = set()
    for flag in flags:
        value = normalize_flag(flag)
        if value.lower() not in seen:
            seen.add(value.lower())
            out.append(value)
    if len(out) > MAX_FLAGS:
        raise InvalidInput("too many flags")
    return out


def apply(mode: FlagMode, current: list[str], flags: list[str]) -> list[str]:
    """The flags after STORE ``mode`` (FLAGS, +FLAGS, -FLAGS; RFC 3501 §6.4.6)."""
    if mode == "replace":
        return list(flags)
    have = {f.lower() for f in current}
    if mode == "add":
        out = list(current) + [f for f in flags if f.lower() not in have]
        if len(out) > MAX_FLAGS:
            raise InvalidInput("too many flags")
        return out
    if mode == "remove":
        drop = {f.lower() for f in flags}
        return [f for f in current if f.lower() not in drop]
    raise InvalidInput(f"unknown flag mode {mode!r}")


def flag_fields(flags: list[str]) -> dict[str, Any]:
    """The stored representation of a flag list."""
    kw = [f.lower() for f in flags]
    return {"flags": list(flags), "kw": kw, "seen": "\\seen" in kw,
            "deleted": "\\deleted" in kw, "flagged": "\\flagged" in kw}


def same(a: list[str], b: list[str]) -> bool:
    """Equal as flag sets (case-insensitively)."""
    return {f.lower() for f in a} == {f.lower() for f in b}


#: STORE works in transactions of at most this many messages: one transaction for
#: ``1:*`` of a large mailbox does not fit the storage engine's cache (measured on
#: the embedded server at 5,000 messages: "Transaction is too large", code 313).
STORE_BATCH = 500


def store_flags_sync(
    db: Database,
    mailbox_id: str,
    uids: list[int],
    mode: FlagMode,
    flags: list[str],
    unchangedsince: int | None,
    snapshot: FlagsSnapshot | None = None,
) -> StoreFlagsResult:
    """STORE in transactions of STORE_BATCH messages (RFC 3501 does not make STORE
    atomic across messages; each message's change is). ``snapshot``: the caller's
    picture of the messages, tried first (see ``_store_batch_sync``)."""
    ordered = sorted(set(uids))
    changed: list[FlagChange] = []
    modified: list[int] = []
    for start in range(0, len(ordered), STORE_BATCH):
        part = _store_batch_sync(
            db, mailbox_id, ordered[start:start + STORE_BATCH], mode, flags, unchangedsince,
            snapshot if start == 0 else None,
        )
        changed.extend(part.changed)
        modified.extend(part.modified)
    return StoreFlagsResult(changed, modified)


class _Stale(Exception):
    """The caller's snapshot was behind the mailbox and, read, nothing is to change:
    the transaction (its counters) is taken back; ``modified``: what UNCHANGEDSINCE
    refused, as read."""

    def __init__(self, modified: list[int]) -> None:
        super().__init__("stale snapshot, nothing to change")
        self.modified = modified


def _planned(docs: list[dict[str, Any]], mode: FlagMode, flags: list[str],
             unchangedsince: int | None
             ) -> tuple[list[tuple[dict[str, Any], list[str]]], list[int]]:
    """The messages whose flags change (with their new flags), and the UIDs that
    fail UNCHANGEDSINCE (RFC 7162 §3.2: not changed, reported as MODIFIED); a
    message whose flags would not change keeps its modseq (no journal entry)."""
    modified: list[int] = []
    todo: list[tuple[dict[str, Any], list[str]]] = []
    for doc in docs:
        if unchangedsince is not None and doc["modseq"] > unchangedsince:
            modified.append(doc["uid"])
            continue
        new = apply(mode, doc["flags"], flags)
        if not same(new, doc["flags"]):
            todo.append((doc, new))
    return todo, modified


def _store_batch_sync(
    db: Database,
    mailbox_id: str,
    uids: list[int],
    mode: FlagMode,
    flags: list[str],
    unchangedsince: int | None,
    snapshot: FlagsSnapshot | None = None,
) -> StoreFlagsResult:
    """STORE in one transaction: read, allocate one modseq per changed message, write.

    With a ``snapshot`` that knows every message and has something to change, the
    read is skipped: the modseqs are allocated with the counters the snapshot
    implies, and when the mailbox's modseq before them is not the snapshot's (some
    change it does not have came in between, from any process) the messages are
    read in the same transaction and the counters corrected by what the read
    changes (taken back only when it leaves nothing to change). The mailbox document
    is written by every change of its messages in their transactions, so an equal
    modseq means equal flags, and a concurrent change conflicts with this write.
    """
    mailbox = parse_id(mailbox_id)
    messages = db.collection(schema.MESSAGES)

    def unseen_delta(todo: list[tuple[dict[str, Any], list[str]]]) -> int:
        return sum(int(bool(doc["seen"])) - int("\\seen" in {f.lower() for f in new})
                   for doc, new in todo)

    def read(session: Any) -> list[dict[str, Any]]:
        return list(messages.find(
            {"mailbox": mailbox, "uid": {"$in": uids}},
            {"uid": 1, "flags": 1, "modseq": 1, "seen": 1},
            session=session,
        ).sort("uid", 1))

    def write(session: Any, todo: list[tuple[dict[str, Any], list[str]]],
              modified: list[int], expected: int | None,
              known: dict[str, Any] | None = None
              ) -> tuple[StoreFlagsResult, dict[str, Any]]:
        unseen = unseen_delta(todo)
        batch = WriteBatch(db)
        reservation = None
        if known is not None:
            # (Its modseq is the snapshot's, if any: the plan is exact if it holds.)
            reservation = counters.reserve(batch, known, modseqs=len(todo), unseen=unseen)
            first, box = reservation.first_modseq, reservation.box
        else:
            _, first, box = allocate(db, mailbox, modseqs=len(todo), unseen=unseen,
                                     session=session)
        if expected is not None and first - 1 != expected:
            # The snapshot is behind: read the messages in this same transaction
            # (every change of them writes the mailbox document, as this one just
            # did, so none can commit in between without this one conflicting) and
            # correct the counters by what the read changes, instead of taking the
            # transaction back and starting over (two round trips fewer).
            planned = len(todo)
            todo, modified = _planned(read(session), mode, flags, unchangedsince)
            if not todo:  # (nothing to change after all: take the counters back)
                raise _Stale(modified)
            correction = (len(todo) - planned, unseen_delta(todo) - unseen)
            if correction != (0, 0):
                _, _, box = allocate(db, mailbox, modseqs=correction[0],
                                     unseen=correction[1], session=session)
        changed: list[FlagChange] = []
        ops = []
        entries = []
        for i, (doc, new) in enumerate(todo):
            modseq = first + i
            # (By (mailbox, uid), the unique index, when the snapshot gave no _id.)
            where = {"_id": doc["_id"]} if "_id" in doc else {"mailbox": mailbox,
                                                              "uid": doc["uid"]}
            ops.append(UpdateOne(where, {"$set": {**flag_fields(new), "modseq": modseq}},
                                 namespace=batch.namespace(schema.MESSAGES)))
            entries.append(journal.entry_doc(mailbox, modseq, "flags", uid=doc["uid"],
                                             flags=new))
            changed.append(FlagChange(doc["uid"], tuple(new), modseq))
        # (The reservation,) messages, digest (where the mailbox has one) and
        # journal: one round trip.
        batch.extend(ops)
        if digest.kept(box):
            batch.extend(digest.flag_change_ops(
                mailbox, [(doc["uid"], doc["flags"], new, first + i)
                          for i, (doc, new) in enumerate(todo)],
                batch.namespace(digest.COLLECTION)))
        batch.insert(schema.JOURNAL, entries)
        done = batch.flush(session)
        if reservation is not None:
            counters.check(done, reservation)
        return StoreFlagsResult(changed, modified), box

    known = counters.known(db).get(mailbox)
    if snapshot is not None and all(uid in snapshot.messages for uid in uids):
        planned = [{"uid": uid, "flags": list(snapshot.messages[uid][0]),
                    "modseq": snapshot.messages[uid][1],
                    "seen": "\\seen" in {f.lower() for f in snapshot.messages[uid][0]}}
                   for uid in uids]
        todo, modified = _planned(planned, mode, flags, unchangedsince)
        if not todo:
            # Nothing to change by the snapshot (a flag set again, or cleared where
            # it was not, as imaptest's STOREs often do): so it is while the mailbox
            # is at the snapshot's modseq, which every change of its messages
            # moves. A complete snapshot is known to be there; else one read of the
            # mailbox document says so, instead of a transaction reading the
            # messages (whole, on the embedded engine) and committing nothing.
            if snapshot.complete:
                return StoreFlagsResult([], modified)
            current = db.collection(schema.MAILBOXES).find_one({"_id": mailbox},
                                                                {"modseq": 1})
            if current is not None and int(current["modseq"]) == snapshot.modseq:
                return StoreFlagsResult([], modified)
        # (Nothing to change by a snapshot the mailbox has moved past: read to be
        # sure. A snapshot behind the document this process knows, another
        # session's write having committed since the view was read: the read below,
        # then the known document's reservation, is one round trip fewer than a
        # reservation of its own and a read to correct it.)
        if todo and (known is None or known["modseq"] == snapshot.modseq):
            try:
                # (With the known document, its modseq is the snapshot's: checked.)
                return counters.write(
                    db, known,
                    lambda session, box: write(session, todo, modified,
                                               None if box else snapshot.modseq, box))
            except _Stale as stale:
                return StoreFlagsResult([], stale.modified)

    # With the mailbox document known, the messages are read before the
    # transaction: the reservation made on that document then proves that none of
    # them changed in between (every change of a message moves the mailbox's modseq,
    # and the reservation fails on any), so the transaction starts with its writes
    # and can share a group's (engine/groupcommit.py). Else they are read in it.
    looked = read(None) if known is not None and db.transactions else None

    def body(session: Any, box: dict[str, Any] | None
             ) -> tuple[StoreFlagsResult, dict[str, Any] | None]:
        # (``box`` is the known document on the first try, None on the usual one.)
        docs = looked if looked is not None and box is not None else read(session)
        todo, modified = _planned(docs, mode, flags, unchangedsince)
        if not todo:
            return StoreFlagsResult([], modified), None
        return write(session, todo, modified, None, box)

    return counters.write(db, known, body)


def claim_recent_sync(db: Database, mailbox_id: str, up_to_uid: int,
                      mark_read: bool = False) -> int:
    """Advance the mailbox's recent mark; the first UID recent for the caller.

    RFC 3501 §2.3.2: exactly one session sees a message as \\Recent. The mark is
    the highest UID already claimed; the claimant gets (mark, up_to_uid], i.e. UIDs
    from the returned value to ``up_to_uid`` (none when it is above).

    A read by ``_id`` first, and a write only when there is something to claim (a
    write to the mailbox document makes concurrent transactions on it retry). The
    read is skipped when this process knows a mark (counters.py: from its last
    write of the mailbox, or its last claim): the mark only ever rises, so a known
    mark at or above ``up_to_uid`` means nothing is left to claim, and one below it
    means something most likely is (the sessions here claim through this process).
    The write's pipeline keeps the mark it replaced in ``rp``, read from the
    post-image (exact under concurrency, unlike a BEFORE image on the embedded
    server), so no compare-and-set loop is needed. Both filters are ``_id`` alone:
    the embedded engine scans the whole collection for a filter with a field
    outside an index.
    """
    mailbox = parse_id(mailbox_id)
    coll = db.collection(schema.MAILBOXES)
    boxes = counters.known(db)
    if not mark_read:  # (``mark_read``: the caller just read a mark below up_to_uid)
        known_mark = boxes.recent_mark(mailbox)
        if known_mark is not None and known_mark >= up_to_uid:
            return up_to_uid + 1
        if known_mark is None:
            doc = coll.find_one({"_id": mailbox}, {"recent": 1})
            if doc is None:
                raise NotFound("no such mailbox")
            if int(doc.get("recent", 0)) >= up_to_uid:
                return up_to_uid + 1
    mark = {"$ifNull": ["$recent", 0]}
    doc = coll.find_one_and_update(
        {"_id": mailbox},
        [{"$set": {"rp": mark, "recent": {"$max": [mark, up_to_uid]}}}],
        projection={"rp": 1, "recent": 1},
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        raise NotFound("no such mailbox")
    boxes.raise_recent(mailbox, int(doc["recent"]))
    return min(int(doc["rp"]), up_to_uid) + 1
