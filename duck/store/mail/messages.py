"""Messages: delivery, APPEND, COPY/MOVE, EXPUNGE, STORE (the write side).

Every write that adds or removes messages runs one transaction per mailbox
step: quota reservation, UID/modseq allocation (with the mailbox counters), the
message documents and their journal entries commit together. Body references
follow the ordering rule of bodies.py: added before the insert, dropped after the
delete. The read side (view, FETCH, SEARCH, byte reads) is in fetch.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

import attrs
import pymongo.errors
import trio
from bson import ObjectId

from duck.mime.model import Envelope, IndexedMessage, IndexerLimits, Part
from duck.mime.sections import SectionSpec

from ..accounts import quota
from ..engine import clock, promptly, schema
from ..engine.batch import WriteBatch
from ..engine.bodies import Bodies
from ..engine.database import Database
from ..engine.ids import new_id, parse_id
from ..errors import AlreadyExists, InvalidInput, NotFound, StoreError, TooBig
from ..index import contents, digest, fetch, reader
from ..index.cache import IMMUTABLE, RecordCache, usable
from ..index.query import Query
from ..models import (
    AppendResult,
    CopyResult,
    Delivered,
    DeliveryTarget,
    FlagMode,
    FlagsSnapshot,
    Ingested,
    JournalEntry,
    Mailbox,
    MessageRecord,
    MessageSummary,
    StoreFlagsResult,
)
from ..push import journal
from . import counters, documents, imports, parsers
from .archive import ARCHIVED_PROJECTION, Archive
from .flags import (
    claim_recent_sync,
    flag_fields,
    normalize_flags,
    store_flags_sync,
)
from .ingest import DEFAULT_MAX_SIZE, FEED_BATCH, Ingest
from .mailboxes import allocate, normalize_path

log = logging.getLogger(__name__)

#: Computes a message's rendering (see ``Messages.register_renderer``).
Renderer = Callable[[IndexedMessage], bytes | None]

#: Copies of one delivery stored concurrently (each its own transaction).
DELIVERY_CONCURRENCY = 8
#: Most targets one deliver call accepts (LMTP limits recipients well below this).
MAX_TARGETS = 10000
#: COPY/EXPUNGE work in transactions of at most this many messages / bytes. Cost per
#: message grows with the transaction on the embedded engine (COPY of 200 in one
#: transaction took 12x one of 50, with the trigram index); 50 is near the knee.
BATCH_MESSAGES = 50
BATCH_BYTES = 32 * 1024 * 1024


@attrs.define
class _Claim:
    """A \\Recent claim in progress (``Messages.claim_recent``): up to which UID."""

    up_to: int
    done: trio.Event = attrs.Factory(trio.Event)


def _internal_date(value: dt.datetime | None) -> dt.datetime:
    # IMAP INTERNALDATE has second precision; BSON keeps UTC milliseconds.
    if value is None:
        return clock.now().replace(microsecond=0)
    if value.tzinfo is None:
        raise InvalidInput("internal date must be timezone-aware")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _object_id(prefix: str) -> str:
    # RFC 8474 objectid: 1-255 of [A-Za-z0-9_-]; a letter first keeps it an atom.
    return prefix + str(new_id())


class Messages:
    """Message operations of the store (``store.messages``)."""

    def __init__(self, database: Database, bodies: Bodies, *,
                 max_size: int = DEFAULT_MAX_SIZE, cache: RecordCache | None = None,
                 archive: Archive | None = None,
                 journal_reader: journal.Journal | None = None) -> None:
        self._database = database
        self._bodies = bodies
        #: The journal's reader, whose entries of this process's commits bring a
        #: STORE's snapshot forward (``_brought_forward``).
        self._journal = journal_reader
        #: Where EXPUNGE keeps what it removes (mail/archive.py; off when None or 0 days).
        self.archive = archive
        self.max_size = max_size
        #: Per mailbox, a UID the \\Recent mark is known to have reached, and the
        #: claims in progress (``claim_recent``).
        self._recent_marks: dict[str, int] = {}
        #: (user, Message-ID) -> thread id of messages delivered here (_thread_of).
        self._threads: dict[tuple[ObjectId, str], str] = {}
        self._claims: dict[str, _Claim] = {}
        #: What never changes of messages read or delivered here (index/cache.py).
        self.cache = cache if cache is not None else RecordCache()
        self._locks = KeyedLocks()
        #: mailbox id -> its user's id, as learnt from SELECT's view and deliveries (a
        #: mailbox never changes owner): STORE and EXPUNGE then take the user's lock.
        self._owners: dict[str, str] = {}
        #: name -> renderer (see ``register_renderer``).
        self.renderers: dict[str, Renderer] = {}
        #: name -> the import path of a function that makes it in a parse worker.
        self._portable: dict[str, str] = {}
        #: Those paths, each once (what every ingest hands its parse worker).
        self._extras: tuple[str, ...] = ()

    @property
    def _messages(self) -> Any:
        return self._database.collection(schema.MESSAGES)

    @property
    def _mailboxes(self) -> Any:
        return self._database.collection(schema.MAILBOXES)

    # -- read side (fetch.py, reader.py, journal.py) ---------------------------------

    async def view(self, mailbox_id: str, mailbox: Mailbox | None = None
                   ) -> list[MessageSummary]:
        """The selected-mailbox view: (uid, modseq, flags) of every message, one query;
        given the ``mailbox`` as just read, from its digest (index/fetch.py)."""
        if mailbox is None or not mailbox.digest:
            # (A small mailbox has no digest: its messages, one query either way.)
            return await fetch.view(self._database, mailbox_id)
        self._owned(mailbox_id, mailbox.user_id)
        return await fetch.view(self._database, mailbox_id, mailbox.message_count,
                                mailbox.uid_next - 1)

    async def count_recent(self, mailbox: Mailbox) -> int:
        """Messages \\Recent for the next session that selects ``mailbox`` (those above
        its recent mark): STATUS RECENT (RFC 3501 §6.3.10), without claiming them."""
        return await fetch.count_between(self._database, mailbox.id,
                                         mailbox.recent_mark + 1, mailbox.uid_next - 1,
                                         built=mailbox.digest)

    def lock_statistics(self) -> dict[str, float]:
        """The waits of writes for their user's lock in this process (KeyedLocks):
        how many found it taken, and the seconds they waited in all."""
        return {"waits": self._locks.waits, "seconds": self._locks.waited}

    @staticmethod
    def parse_statistics() -> dict[str, int]:
        """Messages indexed by this run's parse worker, and its failures (indexed
        here instead): parsers.py."""
        return parsers.statistics()

    def _owned(self, mailbox_id: str, user_id: str) -> None:
        if len(self._owners) >= MAX_OWNERS:
            self._owners.clear()
        self._owners[mailbox_id] = user_id

    def _writing(self, mailbox_id: str) -> AbstractAsyncContextManager[object]:
        """Hold the lock of the mailbox's user when its owner is known here (see
        KeyedLocks); without it the transaction may conflict and be retried."""
        owner = self._owners.get(mailbox_id)
        return _UNLOCKED if owner is None else self._locks.hold(owner)

    async def changes_since(self, mailbox_id: str, modseq: int) -> list[JournalEntry]:
        """Journal entries after ``modseq``, gap-free (see journal.py)."""
        return await journal.Journal(self._database).changes_since(mailbox_id, modseq)

    async def fetch(self, mailbox_id: str, uids: Iterable[int], fields: Iterable[str],
                    renderings: Iterable[str] = ()) -> list[MessageRecord]:
        """FETCH: the asked ``fields`` (models.FETCH_FIELDS) of ``uids``, one query;
        with the ``renderings`` of those names the messages have.

        Immutable fields come from the record cache where it has them (index/cache.py:
        then a message expunged by another process may still be answered, as RFC 2180
        §4.1.2 allows); only the others are asked of the database, in one query.
        """
        asked, names = frozenset(fields), frozenset(renderings)
        if not usable(asked, names):
            return await fetch.fetch(self._database, mailbox_id, uids, asked, names)
        fetch.check_fields(asked, names)
        found, missing = self.cache.lookup(mailbox_id, sorted(set(uids)), asked, names)
        if missing:
            read = await fetch.fetch(self._database, mailbox_id, missing, asked, names)
            self.cache.add(read, asked, names)
            found.update((r.uid, r) for r in read)
        return [found[uid] for uid in sorted(found)]

    async def fetch_batches(
        self, mailbox_id: str, uids: Iterable[int], fields: Iterable[str],
        renderings: Iterable[str] = (),
    ) -> AsyncIterator[list[MessageRecord]]:
        """``fetch`` as the reply batches arrive (one query for any number of UIDs),
        in UID order; cached records are merged in between the database's batches."""
        asked, names = frozenset(fields), frozenset(renderings)
        if not usable(asked, names):
            async for batch in fetch.fetch_batches(self._database, mailbox_id, uids,
                                                   asked, names):
                yield batch
            return
        fetch.check_fields(asked, names)
        found, missing = self.cache.lookup(mailbox_id, sorted(set(uids)), asked, names)
        hits = [found[uid] for uid in sorted(found)]
        i = 0
        if missing:
            async for batch in fetch.fetch_batches(self._database, mailbox_id, missing,
                                                   asked, names):
                self.cache.add(batch, asked, names)
                top = batch[-1].uid if batch else 0
                j = i
                while j < len(hits) and hits[j].uid < top:
                    j += 1
                if j > i:
                    batch = sorted([*hits[i:j], *batch], key=_uid_of)
                    i = j
                yield batch
        if i < len(hits):
            yield hits[i:]

    # -- renderings ------------------------------------------------------------------

    def register_renderer(self, name: str, renderer: Renderer,
                          portable: str | None = None) -> None:
        """Have ``renderer`` called on every message delivered from now on; what it
        returns is kept with the message as the rendering ``name`` (None: nothing).

        Renderings are opaque bytes a protocol computes once per message instead of
        once per read (IMAP's ENVELOPE and BODYSTRUCTURE wire forms); the store never
        looks inside them. A protocol changes the name when it changes the format.

        ``portable``: the import path (``"module:function"``) of a function of the
        indexed message that returns this rendering under ``name`` in a dict (with
        others: one function may make several, and leaves out those ``renderer``
        would return None for). A parse worker that indexes the message calls it,
        on its own core (mail/parsers.py); ``renderer`` is called where it did not.
        """
        name = fetch.check_rendering_name(name)
        self.renderers[name] = renderer
        if portable is None:
            self._portable.pop(name, None)
        else:
            self._portable[name] = portable
        self._extras = tuple(sorted(set(self._portable.values())))

    def render(self, message: IndexedMessage,
               made: dict[str, dict[str, bytes]] | None = None) -> dict[str, bytes]:
        """Every registered rendering of ``message`` (a failing renderer is skipped);
        ``made``: what a parse worker's portable functions returned for it."""
        out: dict[str, bytes] = {}
        for name, renderer in list(self.renderers.items()):
            portable = self._portable.get(name)
            done = made.get(portable) if made and portable is not None else None
            if done is not None:
                value = done.get(name)
            else:
                try:
                    value = renderer(message)
                except Exception:
                    log.exception("renderer %s failed", name)
                    continue
            if value is not None:
                out[name] = value
        return out

    async def save_renderings(self, mailbox_id: str,
                              renderings: dict[int, dict[str, bytes]]) -> int:
        """Keep renderings made later (uid -> name -> bytes), one bulk write; not a
        change of the messages (no modseq)."""
        saved = await fetch.save_renderings(self._database, mailbox_id, renderings)
        self.cache.add_renderings(mailbox_id, renderings)
        return saved

    async def search(self, mailbox_id: str, query: Query) -> list[int]:
        """SEARCH: sorted UIDs matching the typed ``query``, one query."""
        return await fetch.search(self._database, mailbox_id, query)

    async def read(self, record: MessageRecord, start: int = 0,
                   end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of a message fetched with the ``content`` field."""
        return await reader.read(self._database, self._bodies, record, start, end)

    def read_now(self, record: MessageRecord, start: int = 0,
                 end: int | None = None) -> bytes | None:
        """``read`` without the database when the bytes lie in the message's inline
        skeleton (every header, most messages whole); None when they do not."""
        return reader.read_inline(record, start, end)

    def read_section_now(self, record: MessageRecord, spec: SectionSpec,
                         partial: tuple[int, int] | None = None) -> bytes | None:
        """``read_section`` without the database when the section lies in the
        message's inline skeleton; None when it does not."""
        return reader.read_section_inline(record, spec, partial)

    async def read_section(
        self, record: MessageRecord, spec: SectionSpec, partial: tuple[int, int] | None = None
    ) -> bytes:
        """BODY[section]<start.length> of a record fetched with structure and content.

        Only the section's bytes are read (a header section never touches GridFS);
        a missing section is b"" (what servers answer, RFC 3501 §6.4.5).
        """
        return await reader.read_section(self._database, self._bodies, record, spec, partial)

    def stream(self, record: MessageRecord, start: int = 0,
               end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` as bounded chunks (for BODY[] of huge messages)."""
        return reader.stream(self._database, self._bodies, record, start, end)

    # -- ingest and delivery ---------------------------------------------------------

    def ingest(self, max_size: int | None = None,
               limits: IndexerLimits | None = None) -> Ingest:
        """Start receiving a message (``write`` chunks, then ``finish``/``abort``)."""
        return Ingest(self._database, self._bodies,
                      max_size=self.max_size if max_size is None else max_size, limits=limits,
                      extras=self._extras)

    async def deliver(
        self, ingested: Ingested, targets: Sequence[DeliveryTarget]
    ) -> list[Delivered | StoreError]:
        """Store one copy per target; one result per target, each durable on return.

        Targets fail independently (OverQuota, NotFound for a missing user or
        mailbox, InvalidInput for bad flags or prepend). The ingest's hold on its
        bodies is handed over: an Ingested is delivered once.
        """
        if not ingested.held[0]:
            raise InvalidInput("this message was already delivered or discarded")
        if len(targets) > MAX_TARGETS:
            raise InvalidInput("too many delivery targets")
        ingested.held[0] = False
        distinct = sorted(set(ingested.bodies))
        results: list[Delivered | StoreError] = [
            StoreError("not delivered") for _ in targets
        ]
        try:
            if distinct and targets:
                missing = await self._database.run(
                    self._bodies.add_refs, Counter({h: len(targets) for h in distinct})
                )
                if missing:  # cannot happen while the hold is kept; never store holes
                    raise NotFound("message bodies vanished before delivery")
            prepared: dict[bytes, Prepared] = {}
            rendered = self.render(ingested.message, ingested.made) if self.renderers else {}
            limiter = trio.CapacityLimiter(DELIVERY_CONCURRENCY)

            def deliver_sync(target: DeliveryTarget) -> Delivered:
                # The document and the digest's hashing once per distinct prepend, in
                # the same worker-thread call as the transaction (one hand-off).
                if target.prepend not in prepared:
                    # (Another target may have done the same meanwhile.)
                    prepared.setdefault(target.prepend,
                                        _prepared(ingested, target.prepend, rendered))
                return self._deliver_sync(ingested, prepared[target.prepend], target)

            async def one(i: int, target: DeliveryTarget) -> None:
                async with limiter:
                    try:
                        async with self._locks.hold(target.user_id):
                            done = await self._database.run(deliver_sync, target)
                        results[i] = done
                        self._owned(done.mailbox_id, done.user_id)
                        self._remember(done)
                    except StoreError as exc:
                        results[i] = exc

            if len(targets) == 1:
                # (In this task: a task of its own per delivery was a spawn, a
                # nursery and greenback's portal set up again, ~2% of an LMTP
                # delivery's CPU.)
                await one(0, targets[0])
            else:
                async with trio.open_nursery() as nursery:
                    for i, target in enumerate(targets):
                        nursery.start_soon(one, i, target)
        finally:
            failed = sum(1 for r in results if not isinstance(r, Delivered))
            drop: Counter[str] = Counter(ingested.bodies)  # the ingest's holds
            for h in distinct:
                drop[h] += failed
            if +drop:  # small messages hold no bodies: no worker thread for nothing
                with trio.CancelScope(shield=True):
                    await self._database.run(self._bodies.drop_refs, drop)
        return results

    async def discard(self, ingested: Ingested) -> None:
        """Drop an ingested message that will not be delivered (frees its bodies)."""
        if ingested.held[0]:
            ingested.held[0] = False
            await self._database.run(self._bodies.drop_refs, Counter(ingested.bodies))

    def _thread_of(self, user: ObjectId, refs: list[str]) -> str:
        """The thread of a message that refers to ``refs`` (RFC 8474 THREADID): that
        of a message of the user with one of those ids, or a new one.

        Messages delivered by this process are remembered (a reply often follows
        its parent within minutes), so most replies need no query; what this
        process did not deliver is looked up.
        """
        for ref in refs:
            known = self._threads.get((user, ref))
            if known is not None:
                return known
        if refs:
            doc = self._messages.find_one({"user": user, "msgid": {"$in": refs}},
                                          {"threadid": 1})
            if doc is not None and doc.get("threadid"):
                return str(doc["threadid"])
        return _object_id("T")

    def _remember_thread(self, user: ObjectId, msgid: str | None, threadid: str) -> None:
        # (Called from worker threads: single dict operations, atomic under the GIL.)
        if msgid:
            if len(self._threads) >= THREADS_REMEMBERED:
                self._threads.clear()
            self._threads[(user, msgid)] = threadid

    def _deliver_sync(
        self, ingested: Ingested, prepared: Prepared, target: DeliveryTarget,
    ) -> Delivered:
        user = parse_id(target.user_id)
        path = normalize_path(target.mailbox_path)
        fields = flag_fields(normalize_flags(target.flags))
        idate = _internal_date(target.internal_date)
        base = prepared.base
        size = int(base["size"])
        threadid = self._thread_of(user, base["refs"])

        unseen = 0 if fields["seen"] else 1
        oid = new_id()
        claim = (None if target.claim_recent is None
                 else (parse_id(target.claim_recent[0]), int(target.claim_recent[1])))

        written: list[dict[str, Any]] = []  # (the last try's document)
        started: list[bool] = []  # (the last try's: whether it started the digest)

        def body(session: Any, known: dict[str, Any] | None
                 ) -> tuple[Delivered, dict[str, Any]]:
            if session is None:
                # No transaction to take writes back: the quota is taken first.
                quota.reserve(self._database, user, size, session)
            # The quota, (the reservation,) the message, its digest entry and its
            # journal entry: one round trip (a refusal of the quota takes the rest
            # back with it).
            batch = WriteBatch(self._database)
            uid, modseq, mailbox, reservation = _reserve(
                self._database, batch, known, user, path, session, claim,
                {"uids": 1, "modseqs": 1, "count": 1, "unseen": unseen, "size": size})
            doc = documents.message_doc(
                base, user=user, mailbox=mailbox["_id"], uid=uid, modseq=modseq,
                flag_fields=fields, internal_date=idate, savedate=clock.now(),
                emailid="M" + str(oid), threadid=threadid, oid=oid,
            )
            written.append(doc)
            charged = None if session is None else quota.reserve_in(batch, user, size)
            contents.insert(batch, [doc])
            started.append(digest.new_entries(batch, mailbox, [doc], lambda: {
                uid: prepared.digest_entry()}))
            batch.insert(schema.JOURNAL, [journal.entry_doc(
                mailbox["_id"], modseq, "exists", uid=uid, flags=fields["flags"])])
            if target.ledger is not None:
                batch.insert(imports.COLLECTION, [imports.ledger_doc(
                    user, *target.ledger, mailbox["_id"], uid)])
            done = batch.flush(session)
            if reservation is not None:
                counters.check(done, reservation)
            if charged is not None:
                quota.reserved(done, charged)
            mark = int(mailbox.get("rp", -1)) if claim is not None else -1
            delivered = Delivered(
                str(user), str(mailbox["_id"]), int(mailbox["uidv"]), uid, modseq, size,
                tuple(fields["flags"]),
                recent_from=min(mark, uid - 1) + 1 if mark >= 0 else None)
            return delivered, ({**mailbox, "dg": digest.BUILDING} if started[-1]
                               else mailbox)

        try:
            result: Delivered = counters.write(
                self._database, counters.known(self._database).by_path(user, path), body)
        except pymongo.errors.DuplicateKeyError as exc:
            if target.ledger is None or not imports.recorded(self._database, user,
                                                             *target.ledger):
                raise
            raise AlreadyExists("already imported") from exc
        if started[-1]:
            self._database.digest_pending.add(parse_id(result.mailbox_id))
        self._remember_thread(user, base.get("msgid"), threadid)
        if self.cache.max_bytes > 0:
            result = attrs.evolve(result, record=fetch.stored_record(
                written[-1], prepared.envelope, prepared.root))
        return result

    def _prepare_sync(self, data: bytes
                      ) -> tuple[Ingested, Prepared]:
        """An APPEND's message ingested (its bodies held), rendered and made the
        uid-independent document of its copy."""
        ingested = self.ingest().whole_sync(data)
        try:
            rendered = self.render(ingested.message, ingested.made) if self.renderers else {}
            prepared = _prepared(ingested, b"", rendered)
        except BaseException:
            if ingested.bodies:
                self._bodies.drop_refs(Counter(ingested.bodies))
            raise
        return ingested, prepared

    def _remember(self, done: Delivered) -> None:
        """Put a delivered copy's immutable facts in the record cache (trio thread)."""
        if done.record is not None:
            self.cache.add([done.record], ALL_IMMUTABLE, frozenset(self.renderers))

    def _undo(self, mailbox: ObjectId, user: ObjectId, *, count: int, unseen: int,
              size: int) -> None:
        """Give back counters and quota of an insert that failed (best effort).

        The allocated UIDs and modseqs stay unused: UIDs may have gaps, and the
        journal reader steps over a modseq gap once it is old (journal.py).
        """
        try:
            allocate(self._database, mailbox, modseqs=0, count=-count, unseen=-unseen,
                     size=-size)
        finally:
            quota.release(self._database, user, size)

    async def append(
        self,
        user_id: str,
        mailbox_path: str,
        data: bytes,
        flags: Iterable[str] = (),
        internal_date: dt.datetime | None = None,
        claim_recent: tuple[str, int] | None = None,
        ledger: tuple[str, str] | None = None,
    ) -> AppendResult:
        """APPEND a whole message held in memory (RFC 3501 §6.3.11, RFC 4315);
        ``claim_recent`` and ``ledger`` (``duck import``) as in DeliveryTarget.

        ``deliver`` for one target, in two store calls: the ingest, the renderings
        and the document, then under the user's lock the transaction (the lock is
        what the user's other sessions wait for; the parse does not need it).
        """
        if len(data) > self.max_size:
            raise TooBig(f"message larger than {self.max_size} octets")
        if ledger is not None:
            imports.check(*ledger)
        target = DeliveryTarget(user_id, mailbox_path, tuple(flags), internal_date,
                                claim_recent=claim_recent, ledger=ledger)
        # A message larger than a feed batch is parsed in a worker thread: inline,
        # its parse would hold up every other session of the process meanwhile.
        run = self._database.run if len(data) <= FEED_BATCH else self._database.run_threaded
        ingested, prepared = await run(self._prepare_sync, bytes(data))
        try:
            async with self._locks.hold(user_id):
                result = await self._database.run(self._deliver_sync, ingested, prepared,
                                                  target)
        except BaseException:
            # (The ingest's hold on each body was to become the message's reference.)
            with trio.CancelScope(shield=True):
                await self.discard(ingested)
            raise
        self._owned(result.mailbox_id, user_id)
        self._remember(result)
        return AppendResult(result.uid_validity, result.uid, result.mailbox_id,
                            result.modseq, result.flags, result.recent_from)

    # -- STORE, \Recent --------------------------------------------------------------

    async def store_flags(
        self,
        mailbox_id: str,
        uids: Iterable[int],
        mode: FlagMode,
        flags: Iterable[str],
        unchangedsince: int | None = None,
        snapshot: FlagsSnapshot | None = None,
    ) -> StoreFlagsResult:
        """STORE flags on ``uids`` (one modseq and journal entry per changed message);
        ``snapshot``: the caller's current picture of them, which saves reading them
        when the mailbox has not changed since (flags.store_flags_sync)."""
        wanted = sorted(set(uids))
        values = normalize_flags(flags)
        if not wanted:
            return StoreFlagsResult([], [])
        async with self._writing(mailbox_id):
            if snapshot is not None:
                snapshot = self._brought_forward(mailbox_id, snapshot)
            return await self._database.run(
                store_flags_sync, self._database, mailbox_id, wanted, mode, values,
                unchangedsince, snapshot)

    def _brought_forward(self, mailbox_id: str, snapshot: FlagsSnapshot) -> FlagsSnapshot:
        """``snapshot`` moved up to the mailbox document this process last wrote,
        where the journal's reader holds every entry in between (this process's own
        commits, ``Journal.learn``): a STORE that waited for another session's write
        of the user then plans from it, instead of reading the messages first. An
        entry of another kind than a message's, or any gap, leaves it as it was."""
        if self._journal is None:
            return snapshot
        known = counters.known(self._database).get(parse_id(mailbox_id))
        if known is None or int(known["modseq"]) <= snapshot.modseq:
            return snapshot
        top = int(known["modseq"])
        entries = self._journal.held(mailbox_id, snapshot.modseq, top)
        if entries is None:
            return snapshot
        messages = dict(snapshot.messages)
        for entry in entries:
            if entry.kind == "flags" and entry.uid is not None and entry.flags is not None:
                if entry.uid in messages:
                    messages[entry.uid] = (entry.flags, entry.modseq)
            elif entry.kind == "expunge" and entry.uid is not None:
                messages.pop(entry.uid, None)
            elif entry.kind != "exists":  # (a message the STORE does not name)
                return snapshot
        # (Not ``complete``: the document may have moved since, elsewhere; the
        # STORE's reservation on it tells.)
        return FlagsSnapshot(top, messages)

    def recent_taken(self, mailbox_id: str, up_to_uid: int) -> bool:
        """Whether a claim made or in progress here covers ``up_to_uid``: one
        up to it would get nothing, and would know it without asking."""
        flight = self._claims.get(mailbox_id)
        if (self._recent_marks.get(mailbox_id, 0) >= up_to_uid
                or (flight is not None and flight.up_to >= up_to_uid)):
            return True
        # (The mark of the mailbox document this process last wrote: an APPEND's
        # delivery that claimed moved it.)
        known = counters.known(self._database).recent_mark(parse_id(mailbox_id))
        return known is not None and known >= up_to_uid

    async def claim_recent(self, mailbox_id: str, up_to_uid: int,
                           known_mark: int | None = None) -> int:
        """First UID that is \\Recent for the caller (see flags.claim_recent_sync);
        ``known_mark``: the mark as the caller just read it (the mailbox document),
        which saves reading it again.

        The mark only moves up, so once a claim here has taken it to a UID, a claim
        up to that UID gets nothing without asking the database; sessions here that
        claim for the same delivery at once (every IDLE session on the mailbox) wait
        for the first one's answer instead of each reading the mailbox.
        """
        # One claim at a time per mailbox. A claim in progress that reaches this
        # caller's UID leaves it nothing, whatever the database says: it is
        # answered at once (1,000 IDLE sessions woken by one delivery would
        # otherwise each wait for it, or, with a lock, take 1,000 scheduler rounds
        # to learn that it covered them). RFC 3501 §2.3.2: at most one session
        # sees a message \Recent, the claimant (none, should its claim fail).
        if (known_mark or 0) >= up_to_uid or self.recent_taken(mailbox_id, up_to_uid):
            return up_to_uid + 1
        while (flight := self._claims.get(mailbox_id)) is not None:
            await flight.done.wait()  # (one that does not reach this caller's UID)
            if self.recent_taken(mailbox_id, up_to_uid):
                return up_to_uid + 1
        flight = self._claims[mailbox_id] = _Claim(up_to_uid)
        try:
            # Under the user's lock, as writes are: a claim that moved the mark
            # while an APPEND that claims too was in flight made the APPEND's
            # reservation miss (its condition compares the mark), and the mailbox
            # then went the long way for CONTENDED_FOR: ~8% of imaptest's writes.
            async with self._writing(mailbox_id):
                first = await self._database.run(claim_recent_sync, self._database,
                                                 mailbox_id, up_to_uid,
                                                 known_mark is not None)
            if len(self._recent_marks) >= RECENT_MARKS:
                self._recent_marks.clear()
            self._recent_marks[mailbox_id] = max(
                self._recent_marks.get(mailbox_id, 0), up_to_uid)
            return first
        finally:
            del self._claims[mailbox_id]
            flight.done.set()

    # -- EXPUNGE ---------------------------------------------------------------------

    async def expunge(self, mailbox_id: str, uids: Iterable[int] | None = None) -> list[int]:
        """Remove the \\Deleted messages (only those in ``uids`` for UID EXPUNGE)."""
        return [uid for uid, _ in await self.expunge_journaled(mailbox_id, uids)]

    async def expunge_journaled(self, mailbox_id: str, uids: Iterable[int] | None = None,
                                *, expected: bool = False) -> list[tuple[int, int]]:
        """``expunge``, with the modseq of each removal: (uid, modseq) pairs, as the
        journal entries written have them. ``expected``: the caller knows of a
        \\Deleted message (its view), so the read that looks for one first is
        skipped; what is removed is decided in the transaction either way."""
        query: dict[str, Any] = {"deleted": True}
        if uids is not None:
            query["uid"] = {"$in": sorted(set(uids))}
        async with self._writing(mailbox_id):
            return await self._database.run(self._expunge_sync, parse_id(mailbox_id),
                                            query, expected)

    async def remove(self, mailbox_id: str, uids: Iterable[int]) -> list[tuple[int, int]]:
        """Remove exactly these messages, \\Deleted or not (POP3's UPDATE state):
        the same journaled path as EXPUNGE, so IMAP sessions see EXPUNGEs and push
        subscribers ``message.deleted``; (uid, modseq) of each removal. UIDs already
        gone are skipped."""
        wanted = sorted(set(uids))
        if not wanted:
            return []
        async with self._writing(mailbox_id):
            # The caller listed them a moment ago: no read to look for them first.
            return await self._database.run(self._expunge_sync, parse_id(mailbox_id),
                                            {"uid": {"$in": wanted}}, True)

    def _expunge_sync(self, mailbox: ObjectId, query: dict[str, Any],
                      expected: bool = False, *, keep: bool = True) -> list[tuple[int, int]]:
        """Remove the messages matching ``query``; ``keep``: into the archive when it
        is on (a deletion; not the originals of a MOVE or the undo of a COPY)."""
        archive, projection = self._expunge_reads(keep)
        limit = BATCH_MESSAGES
        looked: list[dict[str, Any]] | None = None
        looked_at: int | None = None
        before = counters.known(self._database).get(mailbox)
        if not expected or before is not None:
            # Most EXPUNGEs find nothing to remove: one indexed read outside a
            # transaction says so (a transaction would add its commit). What it
            # finds is the first batch's messages when the write's reservation then
            # holds on the mailbox document known before it (``_expunge_batch``);
            # else they are read again in the transaction. (When the caller
            # expects something and the document is known, the read is made here
            # too: the transaction then starts with its writes, which lets it
            # share a group's (engine/groupcommit.py).)
            looked_at = None if before is None else int(before["modseq"])
            looked = list(self._messages.find({"mailbox": mailbox, **query}, projection)
                          .sort("uid", 1).limit(limit))
            if not looked:
                return []
        expunged: list[tuple[int, int]] = []
        while True:
            try:
                docs = self._expunge_batch(mailbox, query, limit, archive, projection,
                                           looked, looked_at)
            except pymongo.errors.OperationFailure as exc:
                if not _too_large(exc) or limit == 1:
                    raise
                limit = max(1, limit // 2)
                looked = None
                continue
            looked = None
            expunged += [(d["uid"], d["modseq"]) for d in docs]
            if len(docs) < limit:
                return expunged

    def _expunge_reads(self, keep: bool) -> tuple[Archive | None, dict[str, Any]]:
        """The archive an expunge moves into (None: off, or not ``keep``), and what
        it reads of the messages it removes."""
        archive = self.archive if keep and self.archive is not None and \
            self.archive.enabled else None
        # Archiving reads the whole documents but their SEARCH text, which the archive
        # does not keep (the engine reads them whole anyway to project a few fields;
        # what costs more is their bytes in the reply).
        projection = ARCHIVED_PROJECTION if archive is not None else {
            "uid": 1, "size": 1, "seen": 1, "bodies": 1, "user": 1, "cid": 1}
        return archive, projection

    def _expunge_batch(
        self, mailbox: ObjectId, query: dict[str, Any], limit: int,
        archive: Archive | None, projection: dict[str, Any],
        looked: list[dict[str, Any]] | None = None, looked_at: int | None = None,
    ) -> list[dict[str, Any]]:
        """One transaction of an expunge: up to ``limit`` messages. ``looked``: what a
        read outside it found (with ``projection``, the same order and limit), when
        this process knew the mailbox document at modseq ``looked_at`` before that
        read. It is used when the reservation is made on a known document still at
        that modseq: the condition then proves that nothing of the mailbox changed
        from before the read to this write (every change of its messages moves its
        modseq, and the reservation fails on any), whoever wrote, with or without
        the user's lock. Else the transaction reads them."""

        def body(session: Any, known: dict[str, Any] | None
                 ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
            if (known is not None and looked is not None and looked_at is not None
                    and int(known["modseq"]) == looked_at):
                docs = [dict(d) for d in looked]
            else:
                docs = list(self._messages.find(
                    {"mailbox": mailbox, **query}, projection, session=session,
                ).sort("uid", 1).limit(limit))
            if not docs:
                return [], None
            moves = {"modseqs": len(docs), "count": -len(docs),
                     "unseen": -sum(1 for d in docs if not d.get("seen")),
                     "size": -sum(d["size"] for d in docs)}
            # (The reservation,) messages, digest entries, journal, quota and the
            # archive: one round trip.
            batch = WriteBatch(self._database)
            reservation = None
            if known is not None:
                reservation = counters.reserve(batch, known, **moves)
                first, box = reservation.first_modseq, reservation.box
            else:
                _, first, box = allocate(self._database, mailbox, session=session, **moves)
            if archive is not None:
                archive.move_ops(batch, docs, str(box["path"]))  # (contents stay, by cid)
            else:
                contents.remove(batch, docs)
            for i, d in enumerate(docs):
                d["modseq"] = first + i  # the removal's, reported to the caller
            batch.delete(schema.MESSAGES, {"_id": {"$in": [d["_id"] for d in docs]}})
            if digest.kept(box):
                batch.extend(digest.remove_ops(mailbox, [d["uid"] for d in docs],
                                               batch.namespace(digest.COLLECTION)))
            batch.insert(schema.JOURNAL, [
                journal.entry_doc(mailbox, d["modseq"], "expunge", uid=d["uid"])
                for d in docs
            ])
            for user, size in _sizes_per_user(docs).items():
                quota.release_in(batch, user, size)
            done = batch.flush(session)
            if reservation is not None:
                counters.check(done, reservation)
            return docs, box

        docs: list[dict[str, Any]] = counters.write(
            self._database, counters.known(self._database).get(mailbox), body)
        if archive is None:
            # (An archived message keeps its references until it is purged.)
            self._bodies.drop_refs(Counter(h for d in docs for h in d.get("bodies", ())))
        return docs

    def release_sync(self, docs: list[dict[str, Any]]) -> None:
        """Free the bodies of deleted messages (mailbox DELETE, whose transaction
        freed their quota; blocking)."""
        self._bodies.drop_refs(Counter(h for d in docs for h in d.get("bodies", ())))

    # -- COPY / MOVE -----------------------------------------------------------------

    async def copy(
        self, src_mailbox_id: str, uids: Iterable[int], dst_user_id: str, dst_path: str
    ) -> CopyResult:
        """COPY (RFC 3501 §6.4.7): all or nothing; bodies shared, quota charged."""
        src = parse_id(src_mailbox_id)
        user = parse_id(dst_user_id)
        path = normalize_path(dst_path)
        async with self._locks.hold(dst_user_id):
            return await self._database.run(self._copy_sync, src, sorted(set(uids)), user,
                                            path)

    async def move(
        self, src_mailbox_id: str, uids: Iterable[int], dst_user_id: str, dst_path: str
    ) -> CopyResult:
        """MOVE (RFC 6851): copy, then expunge the originals (journaled).

        A crash between the two steps leaves a duplicate, never a loss.
        """
        result = await self.copy(src_mailbox_id, uids, dst_user_id, dst_path)
        moved = [s for s, _ in result.uids]
        if moved:
            async with self._writing(src_mailbox_id):
                await self._database.run(functools.partial(
                    self._expunge_sync, parse_id(src_mailbox_id), {"uid": {"$in": moved}},
                    True, keep=False))
        return result

    def _copy_sync(self, src: ObjectId, uids: list[int], user: ObjectId,
                   path: str) -> CopyResult:
        # The destination this process last wrote is known (counters.py): its
        # reservation then checks, in the transaction, what a read would tell now.
        known = (counters.known(self._database).by_path(user, path)
                 if self._database.transactions else None)
        dst = known or self._mailboxes.find_one({"user": user, "path": path}, {"uidv": 1})
        if dst is None:
            raise NotFound(f"no such mailbox: {path}")
        read: dict[int, dict[str, Any]] | None = None
        if len(uids) <= BATCH_MESSAGES:
            # A client's usual COPY (a few messages) reads them whole at once; the
            # read of their sizes alone is there to split a large one.
            index = list(self._messages.find({"mailbox": src, "uid": {"$in": uids}})
                         .sort("uid", 1))
            read = {d["uid"]: d for d in index}
        else:
            index = list(self._messages.find({"mailbox": src, "uid": {"$in": uids}},
                                             {"uid": 1, "size": 1}).sort("uid", 1))
        # Messages missing: expunged (UID COPY skips them), or the source mailbox is
        # deleted (its messages are removed after it): then COPY fails. (All there,
        # the copies are of messages as they were when read.)
        if len(index) < len(uids) and self._mailboxes.count_documents({"_id": src}) == 0:
            raise NotFound("no such mailbox")
        pairs: list[tuple[int, int]] = []
        done: list[int] = []  # destination uids inserted so far (undone on failure)
        written: dict[str, Any] = dst
        try:
            for batch in _batches(index):
                copied, written = self._copy_split(src, [d["uid"] for d in batch], user,
                                                   path, written, read)
                pairs += copied
                done += [d for _, d in copied]
        except BaseException:
            if done:
                self._expunge_sync(written["_id"], {"uid": {"$in": done}}, keep=False)
            raise
        return CopyResult(int(written["uidv"]), pairs, str(written["_id"]))

    def _copy_split(self, src: ObjectId, uids: list[int], user: ObjectId, path: str,
                    dst: dict[str, Any], read: dict[int, dict[str, Any]] | None
                    ) -> tuple[list[tuple[int, int]], dict[str, Any]]:
        """Copy a batch; halve it while the transaction is too large for the engine's
        cache (documents carry index-heavy fields: the SEARCH trigram arrays)."""
        try:
            return self._copy_batch(src, uids, user, path, dst, read)
        except pymongo.errors.OperationFailure as exc:
            if not _too_large(exc) or len(uids) == 1:
                raise
        half = len(uids) // 2
        first, dst = self._copy_split(src, uids[:half], user, path, dst, read)
        second, dst = self._copy_split(src, uids[half:], user, path, dst, read)
        return first + second, dst

    def _copy_batch(self, src: ObjectId, uids: list[int], user: ObjectId, path: str,
                    dst: dict[str, Any], read: dict[int, dict[str, Any]] | None
                    ) -> tuple[list[tuple[int, int]], dict[str, Any]]:
        """Copy ``uids`` (whole documents in ``read``, else read here) into the
        mailbox at ``path``, ``dst`` its document as last known or read; the pairs
        of UIDs and the destination's document as written."""
        if read is not None:
            docs = [read[uid] for uid in uids if uid in read]
        else:
            docs = list(self._messages.find({"mailbox": src, "uid": {"$in": uids}})
                        .sort("uid", 1))
        docs = contents.load(self._database, docs)
        # Contents gone since the read: expunged meanwhile, skipped as below.
        docs = [d for d in docs if d.get("cid") is None or "segs" in d]
        counts = Counter(h for d in docs for h in d.get("bodies", ()))
        missing = self._bodies.add_refs(counts)
        if missing:
            # Expunged while we read: UID COPY skips vanished messages.
            gone = [d for d in docs if missing & set(d.get("bodies", ()))]
            self._bodies.drop_refs(Counter(h for d in gone for h in d["bodies"]
                                           if h not in missing))
            docs = [d for d in docs if not missing & set(d.get("bodies", ()))]
            counts = Counter(h for d in docs for h in d.get("bodies", ()))
        if not docs:
            return [], dst
        total = sum(int(d["size"]) for d in docs)
        now = clock.now()

        unseen = sum(1 for d in docs if not d.get("seen"))
        # The copies' digest entries are the originals' (no text hashed again), read
        # when the destination keeps a digest.
        entries: list[dict[int, digest.Known]] = []

        def known() -> dict[int, digest.Known]:
            if not entries:
                entries.append(digest.known_entries(self._database, src,
                                                    [d["uid"] for d in docs]))
            return entries[0]

        try:
            if self._database.transactions:
                # Counters, quota, copies, digest and journal in one transaction: a
                # crash leaves all or nothing of it. On the known document, its
                # reservation leads the writes (one round trip and the commit, which
                # can be a group's: engine/groupcommit.py).
                new, started, box = counters.write(
                    self._database, counters.known(self._database).by_path(user, path),
                    lambda session, box: self._copy_in(
                        session, docs, user, path, box, known, total=total,
                        unseen=unseen, now=now))
                if started:  # (committed: the background build takes it)
                    self._database.digest_pending.add(box["_id"])
            else:
                new = self._copy_without_transaction(docs, user, dst["_id"], known,
                                                     total=total, unseen=unseen, now=now)
                box = dst
        except BaseException:
            self._bodies.drop_refs(counts)
            raise
        return [(d["uid"], n["uid"]) for d, n in zip(docs, new, strict=True)], box

    def _copies(self, docs: list[dict[str, Any]], user: ObjectId, dst: ObjectId,
                first_uid: int, first_modseq: int, now: Any
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The copies' documents and their journal entries."""
        new = [{**d, "_id": new_id(), "user": user, "mailbox": dst,
                "uid": first_uid + i, "modseq": first_modseq + i, "sdate": now}
               for i, d in enumerate(docs)]
        entries = [journal.entry_doc(dst, n["modseq"], "exists", uid=n["uid"],
                                     flags=n["flags"]) for n in new]
        return new, entries

    def _copy_in(self, session: Any, docs: list[dict[str, Any]], user: ObjectId,
                 path: str, known_box: dict[str, Any] | None,
                 known: Callable[[], dict[int, digest.Known]], *,
                 total: int, unseen: int, now: Any
                 ) -> tuple[tuple[list[dict[str, Any]], bool, dict[str, Any]], dict[str, Any]]:
        """The copies in the caller's transaction (``counters.write``'s body): the
        copies, whether they started the destination's digest and its document;
        and that document as written, to remember."""
        batch = WriteBatch(self._database)
        n = len(docs)
        first_uid, first_modseq, box, reservation = _reserve(
            self._database, batch, known_box, user, path, session, None,
            {"uids": n, "modseqs": n, "count": n, "unseen": unseen, "size": total})
        new, entries = self._copies(docs, user, box["_id"], first_uid, first_modseq, now)
        charged = quota.reserve_in(batch, user, total)
        contents.insert(batch, new)
        started = digest.new_entries(
            batch, box, [{**n, "_src": d["uid"]} for d, n in zip(docs, new, strict=True)],
            known)
        batch.insert(schema.JOURNAL, entries)
        done = batch.flush(session)
        if reservation is not None:
            counters.check(done, reservation)
        quota.reserved(done, charged)
        return (new, started, box), ({**box, "dg": digest.BUILDING} if started else box)

    def _copy_without_transaction(self, docs: list[dict[str, Any]], user: ObjectId,
                                  dst: ObjectId, known: Callable[[], dict[int, digest.Known]],
                                  *, total: int, unseen: int, now: Any
                                  ) -> list[dict[str, Any]]:
        # No transactions (a standalone mongod): quota and counters first, given
        # back if the writes fail.
        quota.reserve(self._database, user, total)
        try:
            first_uid, first_modseq, box = allocate(
                self._database, dst, uids=len(docs), modseqs=len(docs), count=len(docs),
                unseen=unseen, size=total,
            )
        except BaseException:
            quota.release(self._database, user, total)
            raise
        new, entries = self._copies(docs, user, dst, first_uid, first_modseq, now)
        try:
            split = [contents.split(n) for n in new]
            # (The contents first: a failure between leaves none referenced.)
            self._database.collection(contents.COLLECTION).insert_many(
                [c for _, c in split])
            self._messages.insert_many([m for m, _ in split])
            batch = WriteBatch(self._database)
            if digest.new_entries(batch, box, [{**n, "_src": d["uid"]}
                                           for d, n in zip(docs, new, strict=True)], known):
                self._database.digest_pending.add(dst)
            batch.flush(None)
            journal.write(self._database, entries)
        except BaseException:
            self._undo(dst, user, count=len(docs), unseen=unseen, size=total)
            raise
        return new


#: Most mailbox owners remembered (then forgotten all at once; a miss only costs
#: a possible retry).
MAX_OWNERS = 100_000


class KeyedLocks:
    """One trio.Lock per key, dropped when unused.

    A user's writes in this process are serialized: their transactions touch the
    same user and mailbox documents, and concurrent ones conflict and retry
    (measured: 3 aborts per delivery at 8 concurrent deliveries to one INBOX).
    Serialized, each delivery is one transaction and one commit (the embedded
    server syncs every commit, so commits are what a delivery costs).

    The waits are counted (``waits``, ``waited``: the seconds spent in them): a
    user's write waits for the whole transaction of the one before it, a group's
    commit under load (engine/groupcommit.py), which is what two busy sessions of
    one user cost each other (GET /metrics).
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[trio.Lock, int]] = {}
        #: Holds that found the lock taken, and the seconds they waited for it.
        self.waits = 0
        self.waited = 0.0

    def hold(self, key: str) -> _Hold:
        """Hold the lock of ``key`` for an ``async with`` block."""
        return _Hold(self, key)


class _Hold:
    """``KeyedLocks.hold``: a class, not a generator, as it is entered by every write
    of the process."""

    __slots__ = ("_key", "_lock", "_locks", "_owner")

    def __init__(self, owner: KeyedLocks, key: str) -> None:
        self._owner = owner  # (its counts of waits)
        self._locks = owner._locks
        self._key = key
        self._lock: trio.Lock | None = None

    async def __aenter__(self) -> None:
        entry = self._locks.get(self._key)
        lock, users = (trio.Lock(), 0) if entry is None else entry
        self._locks[self._key] = (lock, users + 1)
        started = time.perf_counter() if lock.locked() else None
        try:
            # (A free lock at once: its holder is what the user's other sessions
            # wait for, engine/promptly.py.)
            await promptly.acquire(lock)
        except BaseException:
            self._leave()
            raise
        finally:
            if started is not None:
                self._owner.waits += 1
                self._owner.waited += time.perf_counter() - started
        self._lock = lock

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._lock is not None
        self._lock.release()
        self._leave()

    def _leave(self) -> None:
        lock, users = self._locks[self._key]
        if users == 1:
            del self._locks[self._key]
        else:
            self._locks[self._key] = (lock, users - 1)


#: What ``_writing`` holds for a mailbox whose owner is not known here: nothing.
_UNLOCKED = nullcontext()


#: "Transaction is too large and will not fit in the storage engine cache".
TRANSACTION_TOO_LARGE = 313


class Prepared:
    """What one stored copy of a message is made of besides its uid and flags: its
    document base, its envelope and part tree as models (the record cache's entry,
    without converting the document back), and its digest entry (its text hashed),
    made on first need: only a delivery into a mailbox that keeps a digest needs it
    (digest.kept), and the deliveries of one message to several such mailboxes
    share it."""

    def __init__(self, base: dict[str, Any], envelope: Envelope, root: Part) -> None:
        self.base = base
        self.envelope = envelope
        self.root = root
        self._known: digest.Known | None = None

    def digest_entry(self) -> digest.Known:
        """The digest entry (blocking: hashes the text the first time)."""
        if self._known is None:
            self._known = digest.prepare(self.base)
        return self._known


def _prepared(ingested: Ingested, prepend: bytes, rendered: dict[str, bytes]) -> Prepared:
    """The uid-independent makings of one copy, with its renderings: blocking, once
    per distinct prepend."""
    base, root = documents.content(ingested, prepend)
    if rendered:
        base["render"] = rendered
    return Prepared(base, ingested.message.envelope, root)


def _reserve(database: Database, batch: WriteBatch, known: dict[str, Any] | None,
             user: ObjectId, path: str, session: Any, claim: tuple[ObjectId, int] | None,
             moves: dict[str, int]
             ) -> tuple[int, int, dict[str, Any], counters.Reservation | None]:
    """The first UID and modseq of a write into the mailbox at ``path``, its document
    after the write, and the reservation: put first into ``batch`` on the ``known``
    document (``counters.check`` it after the flush), else taken by ``allocate`` at
    once (None)."""
    if known is not None:
        reservation = counters.reserve(batch, known, by_path=True, claim_recent=claim,
                                       **moves)
        return reservation.first_uid, reservation.first_modseq, reservation.box, reservation
    first_uid, first_modseq, box = allocate(database, {"user": user, "path": path},
                                            session=session, claim_recent=claim, **moves)
    return first_uid, first_modseq, box, None


def _uid_of(record: MessageRecord) -> int:
    return record.uid


def _too_large(exc: pymongo.errors.OperationFailure) -> bool:
    return exc.code == TRANSACTION_TOO_LARGE or "too large" in str(exc).lower()


def _batches(index: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for doc in index:
        if batch and (len(batch) >= BATCH_MESSAGES or size + doc["size"] > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(doc)
        size += int(doc["size"])
    if batch:
        yield batch


#: Message-IDs whose thread a process remembers (then it starts over).
THREADS_REMEMBERED = 100_000
#: Mailboxes whose \\Recent mark a process remembers (then it starts over).
RECENT_MARKS = 100_000
#: Every field the record cache keeps (a delivered copy has them all).
ALL_IMMUTABLE = frozenset(IMMUTABLE)


def _sizes_per_user(docs: list[dict[str, Any]]) -> Counter[ObjectId]:
    """Octets of message documents per owner (the quota they free)."""
    per_user: Counter[ObjectId] = Counter()
    for d in docs:
        per_user[d["user"]] += int(d["size"])
    return per_user
