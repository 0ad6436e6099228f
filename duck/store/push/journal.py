"""The journal: every change of a mailbox, keyed by (mailbox, modseq).

Each modseq a mailbox hands out belongs to exactly one journal entry, written in
the same transaction as the change it describes (on a deployment without
transactions, right after it). So a reader can tell a gap in the sequence from
the end of it: ``changes_since`` returns only the contiguous run after the
caller's modseq, and steps over a gap only once the entry after it is older than
``GAP_GRACE`` (a writer that died between allocating and journaling).

Entries expire through a TTL index (``DEFAULT_RETENTION``, changeable with
``set_retention``); a session that is further behind than that resynchronises.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import trio
from bson import ObjectId

from ..engine import schema
from ..engine.clock import now
from ..engine.database import Database
from ..engine.ids import parse_id
from ..models import JournalEntry, JournalKind

#: How long journal entries are kept (seconds): 7 days.
DEFAULT_RETENTION = 7 * 24 * 3600
#: A gap in a mailbox's modseqs older than this is an abandoned allocation.
GAP_GRACE = dt.timedelta(seconds=5)
#: Most entries ``changes_since`` returns at once; callers loop.
MAX_ENTRIES = 10000

schema.register(
    schema.JOURNAL,
    [
        schema.IndexModel(
            [("mailbox", schema.ASCENDING), ("modseq", schema.ASCENDING)],
            unique=True, name="mailbox_modseq",
        ),
        schema.IndexModel(
            [("at", schema.ASCENDING)], expireAfterSeconds=DEFAULT_RETENTION, name="ttl"
        ),
    ],
)


def entry_doc(
    mailbox: ObjectId,
    modseq: int,
    kind: JournalKind,
    *,
    uid: int | None = None,
    flags: list[str] | None = None,
    path: str | None = None,
    user: ObjectId | None = None,
) -> dict[str, Any]:
    """A journal document (written by the module that makes the change)."""
    doc: dict[str, Any] = {"mailbox": mailbox, "modseq": modseq, "kind": kind, "at": now()}
    if uid is not None:
        doc["uid"] = uid
    if flags is not None:
        doc["flags"] = flags
    if path is not None:
        doc["path"] = path
    if user is not None:
        doc["user"] = user
    return doc


def write(db: Database, docs: list[dict[str, Any]], session: Any = None) -> None:
    """Insert journal entries (blocking; inside the change's transaction)."""
    if docs:
        db.collection(schema.JOURNAL).insert_many(docs, ordered=True, session=session)
        db.journal_written(docs, session)


def _entry(doc: dict[str, Any]) -> JournalEntry:
    flags = doc.get("flags")
    return JournalEntry(
        mailbox_id=str(doc["mailbox"]),
        modseq=int(doc["modseq"]),
        kind=doc["kind"],
        uid=doc.get("uid"),
        flags=tuple(flags) if flags is not None else None,
        path=doc.get("path"),
        at=doc.get("at"),
    )


def contiguous(entries: list[JournalEntry], since: int, at: dt.datetime) -> list[JournalEntry]:
    """The run of ``entries`` (sorted by modseq) that follows ``since`` without a gap.

    A gap is stepped over only when the entry after it is older than GAP_GRACE at
    time ``at``: a live writer journals within milliseconds of allocating.
    """
    out: list[JournalEntry] = []
    expected = since + 1
    for entry in entries:
        if entry.modseq != expected:
            written = entry.at
            if written is None or at - written < GAP_GRACE:
                break
        out.append(entry)
        expected = entry.modseq + 1
    return out


#: Mailboxes whose latest read a process keeps for readers that come after it.
SHARED_READS = 1024
#: How far behind a change a read made ahead of its wake-up (``prefetch``) may
#: start, to serve the sessions that followed the previous read too.
PREFETCH_BACK = 100
#: Most entries a mailbox's latest read keeps once ``learn`` extends it (the oldest
#: go first; a reader further behind reads the database).
TAIL_ENTRIES = 128


@attrs.define
class _Read:
    """One read of a mailbox's journal after ``since``: in flight until ``done``."""

    since: int
    done: trio.Event = attrs.Factory(trio.Event)
    entries: list[JournalEntry] | None = None

    @property
    def top(self) -> int | None:
        """The modseq it holds every entry up to (None: not done, or failed)."""
        entries = self.entries
        if entries is None:
            return None
        return entries[-1].modseq if entries else self.since


class Journal:
    """Read side of the journal."""

    def __init__(self, database: Database) -> None:
        self._database = database
        # Per mailbox, the latest read (in flight or done). A change wakes every
        # session on the mailbox at once; they share one read instead of making
        # one query each (1,000 IDLE sessions, one query per change).
        self._reads: dict[str, _Read] = {}
        #: Reads made, and answers given from another caller's read.
        self.reads = 0
        self.shared = 0

    def statistics(self) -> dict[str, int]:
        """Journal reads made by this process, and answers shared from them."""
        return {"reads": self.reads, "shared": self.shared}

    def held(self, mailbox_id: str, modseq: int, reaching: int) -> list[JournalEntry] | None:
        """The mailbox's entries after ``modseq`` up to ``reaching``, if its latest
        read (``learn``'s included) holds every one of them; else None. Never reads
        the database."""
        read = self._reads.get(mailbox_id)
        if read is None or read.entries is None or read.since > modseq:
            return None
        top = read.top
        if top is None or top < reaching:
            return None
        return [e for e in read.entries if modseq < e.modseq <= reaching]

    def learn(self, docs: list[dict[str, Any]]) -> None:
        """Journal entries this process has just committed, where it is the
        deployment's only writer (the notifier's local feed, push/notify.py), or
        that another worker of the deployment's only writers did (siblings.py): each
        that follows its mailbox's latest read without a gap extends it; one that
        does not starts it afresh. The other sessions on the mailbox, woken by the
        write, then catch up from here instead of reading the database.

        Why it stays exact: a read claims that it holds every entry after its
        ``since`` up to its last one. Each modseq has one entry (the unique index),
        and an entry is added only right after the one before it, or as the first
        of a read that starts just below it; so no entry can be missing in between,
        whatever order commits come in (one that comes late, at or below a read's
        last entry, is left out: the readers that need it read the database). Must
        be called on the trio thread."""
        #: Reads this call made: extended in place (in no reader's hands yet), and
        #: cut to TAIL_ENTRIES once at the end, so that a commit of many entries
        #: (an EXPUNGE of thousands) does not copy the tail once per entry.
        made: dict[str, _Read] = {}
        for doc in docs:
            mailbox, modseq = doc.get("mailbox"), doc.get("modseq")
            if mailbox is None or not isinstance(modseq, int):
                continue
            key = str(mailbox)
            read = self._reads.get(key)
            if read is not None and not read.done.is_set():
                continue  # (a read in flight: leave it to its readers)
            top = read.top if read is not None else None
            if top is not None and modseq <= top:
                continue
            entry = _entry(doc)
            if top is not None and modseq == top + 1:
                # (A read with a top holds its entries.)
                assert read is not None and read.entries is not None
                if read is made.get(key):
                    read.entries.append(entry)
                    continue
                # (A new list: the previous one may be in a reader's hands.)
                kept, since = [*read.entries, entry], read.since
            else:
                kept, since = [entry], modseq - 1
            tail = _Read(since, entries=kept)
            tail.done.set()
            self._keep(key, tail)
            made[key] = tail
        for read in made.values():
            assert read.entries is not None
            if len(read.entries) > TAIL_ENTRIES:
                del read.entries[:-TAIL_ENTRIES]
                read.since = read.entries[0].modseq - 1

    async def changes_since(
        self, mailbox_id: str, modseq: int, *, limit: int = MAX_ENTRIES,
        reaching: int | None = None,
    ) -> list[JournalEntry]:
        """Changes of a mailbox after ``modseq``, in order, without gaps (one query).

        ``reaching``: the caller knows (from its wake-up) that entries up to this
        modseq exist and needs no more than that; another caller's read that
        started at or before ``modseq`` and got that far answers it (entries never
        change once written). Without it, a read of its own is made.
        """
        if reaching is not None:
            shared = self._reads.get(mailbox_id)
            if shared is not None and shared.since <= modseq:
                # (No checkpoint when it is done: the callers woken with this one
                # must find the read it may start below, not this old one.)
                if not shared.done.is_set():
                    await shared.done.wait()
                top = shared.top
                if top is not None and top >= reaching:
                    assert shared.entries is not None
                    mine = [e for e in shared.entries if e.modseq > modseq]
                    if len(mine) <= limit:
                        self.shared += 1
                        return mine
        read = _Read(modseq)
        self._keep(mailbox_id, read)
        try:
            read.entries = await self._read(mailbox_id, modseq, limit)
            self.reads += 1
            return read.entries
        finally:
            read.done.set()

    async def prefetch(self, mailbox_id: str, modseq: int) -> None:
        """Read a mailbox's journal up to a change just announced (``modseq``)
        before the sessions waiting on the mailbox are woken by it: each of them
        then finds the read done (``changes_since`` with ``reaching``) and goes
        from its wake-up to its responses without waiting again. No read when
        the latest one already reached ``modseq``.

        The read starts where the previous one ended (the sessions that took that
        one are there), or just before ``modseq`` when that is far back."""
        shared = self._reads.get(mailbox_id)
        since = modseq - 1
        if shared is not None:
            if not shared.done.is_set():
                await shared.done.wait()
            top = shared.top
            if top is not None:
                if top >= modseq:
                    return
                if since - top <= PREFETCH_BACK:
                    since = top
        await self.changes_since(mailbox_id, since)

    def _keep(self, mailbox_id: str, read: _Read) -> None:
        """``read`` as the mailbox's latest (the oldest mailbox's goes past
        SHARED_READS)."""
        if mailbox_id not in self._reads and len(self._reads) >= SHARED_READS:
            self._reads.pop(next(iter(self._reads)))
        self._reads[mailbox_id] = read

    async def _read(self, mailbox_id: str, modseq: int, limit: int) -> list[JournalEntry]:
        oid = parse_id(mailbox_id)

        def query() -> list[dict[str, Any]]:
            cursor = (
                self._database.collection(schema.JOURNAL)
                .find({"mailbox": oid, "modseq": {"$gt": modseq}}, {"_id": 0})
                .sort("modseq", 1)
                .limit(limit)
            )
            return list(cursor)

        docs = await self._database.run(query)
        return contiguous([_entry(d) for d in docs], modseq, now())

    async def set_retention(self, seconds: int) -> None:
        """Change how long entries are kept (collMod on the TTL index)."""
        if seconds <= 0:
            raise ValueError("retention must be positive")

        def mod() -> None:
            self._database.db.command(
                "collMod", schema.JOURNAL,
                index={"name": "ttl", "expireAfterSeconds": int(seconds)},
            )

        await self._database.run_threaded(mod)
