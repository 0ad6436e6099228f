"""Change notification: every journal write wakes the subscribers it concerns.

A subscriber (an IDLE session, an SSE stream, the webhook dispatcher) reads the
journal from its own last position when woken, so a missed or merged wake-up can
never lose an event; a spurious one costs one query. A wake-up may carry the
journal modseq that caused it: a mailbox subscriber already at or past that
modseq (its own write, read back once) skips the query (``Subscription.behind``).
A wake-up without one ("blind": a local write, a watch restart) always reads.

Where the deployment has change streams (replica sets, sharded clusters, the
embedded server) the notifier watches inserts into the journal, which reach every
process on every host within milliseconds. Elsewhere it polls the mailboxes'
highest modseq for the mailboxes and users that have subscribers, one query per
interval. Writes made in this process also wake local subscribers directly
(``publish_nowait``), so same-process latency never waits for either path.

A change stream can be held back, though: the embedded server delivers no event
that follows a transaction still open, and a transaction whose process was killed
stays open until a writer that needs its documents has waited 60 s for it (with
none, until the server restarts), so for that long no process hears of any
change. And a stream opened again after an outage starts from then. So while the
stream brings nothing, and once after it is opened again, the notifier asks the
mailboxes (``_catch_up``, the poll's query): a watched mailbox whose modseq went
past the last one announced here wakes its subscribers with it.

Where this process is the deployment's only writer (``sole``: ``duck serve`` on the
embedded server it started, one process), the notifier opens no change stream: the
store hands it every journal entry this process commits (``Database.journal_feed``)
and it dispatches them as the stream's events would be. A change stream costs the
embedded server a read of every write's oplog entry, whole, whatever its collection:
0.4-0.5 ms of its CPU per APPEND of an imaptest message (~15% of the APPEND's), and
~0.3 ms of duck's (docs/architecture.md). What another process writes all the same
(``duck ctl``, which opens the running server's database; another duck pointed at
it with ``--mongo-uri``) is found by asking the watched mailboxes every
``QUIET_CHECK``: such a change wakes its subscribers within a second and drops the
caches such a change drops (LIST's and the ACLs' are at most 10 s old in any case:
mail/mailboxes.py, mail/acl.py); the first one confirmed (not a commit of this
process that its feed had not reached yet: it is looked at again a check later)
opens the change stream for good, or, where the server keeps no oplog for one
(``change_streams=False``: the embedded server ``duck serve`` starts for itself,
store/engine/embedded.py), has the watched mailboxes polled from then on. The
entries of the local feed also answer the sessions' journal reads
(``Journal.learn``).

The workers of ``duck serve --workers N`` on the embedded server their parent
started are its only writers together (``siblings``): each one's local feed also
brings the entries the others commit (siblings.py), and whether a view can be
behind is asked of the marks they all write (``knows_every_change``), since another
worker's entries come after its commit is answered.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio
from bson import ObjectId

from ..engine import metrics, schema
from ..engine.clock import now
from ..engine.database import Database
from ..errors import StoreError, StoreUnavailable
from .journal import Journal
from .siblings import Link, Marks

log = logging.getLogger(__name__)

#: How long one change-stream poll waits for news on the server side (ms).
STREAM_AWAIT_MS = 500
#: Largest number of mailbox→user mappings kept for journal entries without user.
MAILBOX_CACHE = 100_000
#: Seconds the watch waits after a batch of changes before its next getMore.
STREAM_GATHER = 0.02
#: What of a change event ``_dispatch`` reads: the journal entry's routing fields.
#: (The resume token ``_id`` stays, as change streams require; the entry's uid,
#: flags and the event's namespace, key and times are left on the server: decoding
#: them was a third of the notifier's CPU under imaptest's load.)
DISPATCHED = {f"fullDocument.{name}": 1
              for name in ("at", "mailbox", "user", "users", "kind", "modseq")}
#: Journal kinds that change a user's set of mailboxes (their names).
MAILBOX_SET_CHANGES = frozenset(("mailbox-create", "mailbox-rename", "mailbox-delete"))
#: Most changes one store call takes from the change stream's buffer.
MAX_CHANGES_AT_ONCE = 1000
#: The metrics label of the journal reads made ahead of wake-ups.
READ_AHEAD = "journal read-ahead"
#: Seconds without a change-stream event after which the watched mailboxes are
#: asked whether the stream held something back (and again every as many while
#: it stays quiet): the longest a change waits for its wake-up then. One query a
#: second per process, only while nothing happens anywhere (or the stream is held).
QUIET_CHECK = 1.0


class Subscription:
    """A sticky wake-up flag: ``wait()`` returns once something changed since the
    last ``wait()`` (or since subscribing)."""

    def __init__(self, notifier: Notifier, keys: frozenset[str]) -> None:
        self._notifier = notifier
        self.keys = keys
        self._pending = False
        self._blind = False
        #: Highest journal modseq a wake-up announced (per-mailbox keys only).
        self.high = 0
        self._event = trio.Event()
        self.wakeups = 0
        #: Also set by a wake-up: the one event a task that waits on several
        #: things at once (an IDLE session: its subscriptions and its client's
        #: input) waits on. Cheaper than a task and a cancel scope per thing,
        #: which is what a fan-out of one change to 1,000 sessions pays per session.
        self.bell: trio.Event | None = None

    def _wake(self, modseq: int | None = None) -> None:
        self._pending = True
        if modseq is None:
            self._blind = True
        elif modseq > self.high:
            self.high = modseq
        self.wakeups += 1
        self._event.set()
        if self.bell is not None:
            self.bell.set()

    def poke(self) -> None:
        """Wake it as a change would, without one (the holder reads anyway: a
        periodic re-read)."""
        self._wake()

    def behind(self, modseq: int) -> bool:
        """Whether a wake-up since the last ``clear`` may announce a change after
        ``modseq`` (always, for a wake-up that carried no modseq)."""
        return self._pending and (self._blind or self.high > modseq)

    def announced(self) -> int | None:
        """The highest modseq the pending wake-ups announced, or None when one of
        them announced none (or nothing is pending): what a read must reach."""
        if not self._pending or self._blind:
            return None
        return self.high

    def pending(self) -> bool:
        """True if woken since the last wait (does not reset the flag)."""
        return self._pending

    def clear(self) -> None:
        """Forget a pending wake-up (the caller is about to read the journal anyway)."""
        self._pending = False
        self._blind = False
        if self._event.is_set():
            self._event = trio.Event()

    async def wait_pending(self) -> None:
        """Block until woken; the flag stays set (the caller reads, then clears)."""
        while not self._pending:
            await self._event.wait()

    async def wait(self) -> None:
        """Block until woken; then clear the flag."""
        while not self._pending:
            await self._event.wait()
        self.clear()

    def close(self) -> None:
        """Stop receiving wake-ups."""
        self._notifier._remove(self)


def _take_changes(stream: Any) -> list[Any]:
    """The next change of ``stream`` (at most one getMore, as ``try_next``) and every
    change that getMore brought with it (blocking): one worker-thread hand-off per
    batch instead of one per change, which under load was most of the process's
    hand-offs (each journal write is a change). pymongo offers no public count of
    what a cursor holds; without its buffer (another pymongo) this takes one."""
    take = getattr(stream, "take", None)
    if take is not None:  # (a change stream read inline: engine/inline.py)
        return take(MAX_CHANGES_AT_ONCE)  # type: ignore[no-any-return]
    first = stream.try_next()
    if first is None:
        return []
    changes = [first]
    buffered = getattr(getattr(stream, "_cursor", None), "_data", None)
    while buffered and len(changes) < MAX_CHANGES_AT_ONCE:
        change = stream.try_next()  # (from the buffer: no round trip)
        if change is None:
            break
        changes.append(change)
    return changes


def mailbox_key(mailbox_id: str) -> str:
    """Subscription key for one mailbox."""
    return f"m:{mailbox_id}"


def user_key(user_id: str) -> str:
    """Subscription key for everything of one user."""
    return f"u:{user_id}"


#: Subscription key for every change of every user (the webhook producer).
ANY_KEY = "*"


class Notifier:
    """Fans journal changes out to in-process subscribers."""

    def __init__(
        self,
        database: Database,
        *,
        poll_interval: float = 0.25,
        change_streams: bool | None = None,
        journal: Journal | None = None,
        sole: bool = False,
        siblings: Link | None = None,
    ) -> None:
        self._database = database
        #: This process is the deployment's only writer, as far as it knows: the
        #: local feed instead of a change stream (module docstring); or one of the
        #: workers that are (``siblings``: their entries join the local feed).
        self.sole = sole or siblings is not None
        self._siblings = siblings
        if siblings is not None and change_streams is None:
            # (The embedded server the workers share keeps no oplog: workers.py.)
            change_streams = False
        #: The local feed's entries not dispatched yet, and its wake-up.
        self._local_docs: deque[dict[str, Any]] = deque()
        self._local_ready = trio.Event()
        #: Per mailbox key, the highest modseq of an entry the local feed brought.
        self._local_high: dict[str, int] = {}
        #: ``_local_high`` was emptied for room once: a mailbox missing from it may
        #: have been written here all the same.
        self._local_forgot = False
        #: Per mailbox key, a modseq that no announcement here explained at the last
        #: check (another process's write, or one of this process's own that its
        #: feed had not reached yet: the next check decides).
        self._suspects: dict[str, int] = {}
        #: Another process's write was seen: the change stream is opened.
        self._foreign = False
        self._token: trio.lowlevel.TrioToken | None = None
        self._trio_thread: int | None = None
        #: With it, a change to a mailbox that has subscribers is read from the
        #: journal once before they are woken (``Journal.prefetch``).
        self._journal = journal
        self._nursery: trio.Nursery | None = None
        self.poll_interval = poll_interval
        #: None: decide from the deployment (change streams where there is a set).
        self.change_streams = change_streams
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._mailbox_users: dict[str, str] = {}
        #: Per mailbox, the ids of the users its ACL shares it with (None: anyone).
        self._grantees: dict[str, tuple[str, ...] | None] = {}
        self._seen_modseqs: dict[str, int] = {}
        #: Per mailbox key, the highest modseq published here with its modseq (this
        #: process's own writes announce themselves at once): its change-stream
        #: event then needs no read ahead, its sessions were woken already.
        self._published: dict[str, int] = {}
        self.mode = "stopped"
        self.events_seen = 0
        #: Worker-thread calls that took changes from the stream (a batch each).
        self.stream_takes = 0
        #: When the change stream last brought an event (trio time).
        self._news = 0.0
        #: Wake-ups of a mailbox's subscribers found by asking the mailboxes, for
        #: changes the change stream had not brought (held back, or missed while
        #: it was being opened again).
        self.caught_up = 0
        #: Watched mailboxes found deleted by ``_catch_up`` (told once).
        self._absent: set[str] = set()
        #: Seconds from the last journal entry's write to its wake-up here (change
        #: streams only: polling wakes subscribers every poll_interval at most).
        self.lag = 0.0

    # -- subscribers ---------------------------------------------------------

    def subscribe(self, *keys: str) -> Subscription:
        """Subscribe to wake-ups for these keys (see mailbox_key / user_key)."""
        sub = Subscription(self, frozenset(keys))
        for key in sub.keys:
            self._subscribers[key].add(sub)
        return sub

    @contextmanager
    def subscription(self, *keys: str) -> Iterator[Subscription]:
        """``with notifier.subscription(key) as sub:`` — closed on exit."""
        sub = self.subscribe(*keys)
        try:
            yield sub
        finally:
            sub.close()

    def subscribers(self, key: str) -> int:
        """How many subscriptions ``key`` has (ANY_KEY: those woken by every change)."""
        return len(self._subscribers.get(key, ()))

    def _remove(self, sub: Subscription) -> None:
        for key in sub.keys:
            subs = self._subscribers.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[key]

    def publish_nowait(self, *keys: str, modseq: int | None = None) -> None:
        """Wake every subscriber of any of ``keys`` (never blocks); ``modseq`` is the
        mailbox's journal modseq that caused it, when known."""
        woken: set[Subscription] = set(self._subscribers.get(ANY_KEY, ()))
        for key in keys:
            woken.update(self._subscribers.get(key, ()))
            if modseq is not None and modseq > self._published.get(key, 0):
                if len(self._published) >= MAILBOX_CACHE:
                    self._published.clear()
                self._published[key] = modseq
        for sub in woken:
            sub._wake(modseq)

    def knows_every_change(self, mailbox_id: str, modseq: int) -> bool:
        """Whether the mailbox has no change past ``modseq``, as far as this process
        can tell without asking the database: it is the deployment's only writer
        (the local feed), and none of the entries it committed for the mailbox is
        past ``modseq``. A session whose view is at ``modseq`` then needs no read
        to know the mailbox (NOOP's poll, EXPUNGE's look for \\Deleted). Another
        process's write (``duck ctl``) is seen by the next quiet check, as it is
        for wake-ups: until then it counts as made after what is asked here."""
        if self.mode != "local" or self._foreign:
            return False
        key = mailbox_key(mailbox_id)
        if key in self._suspects:
            return False
        marks = self._marks
        if marks is not None:
            # (The other workers' entries come after their commit is answered.)
            return marks.high(mailbox_id) <= modseq
        high = self._local_high.get(key)
        if high is None:
            return not self._local_forgot
        return high <= modseq

    def known_high(self, mailbox_id: str) -> int | None:
        """The highest modseq of the mailbox this process has committed, where it
        is the deployment's only writer (as ``knows_every_change`` tells): a poll's
        journal read need reach no further. None where it cannot tell, or has
        committed nothing to the mailbox."""
        if self.mode != "local" or self._foreign:
            return None
        key = mailbox_key(mailbox_id)
        if key in self._suspects:
            return None
        if self._marks is not None:
            return self._marks.high(mailbox_id) or None
        return self._local_high.get(key)

    @property
    def _marks(self) -> Marks | None:
        return self._siblings.marks if self._siblings is not None else None

    def statistics(self) -> dict[str, Any]:
        """Figures: mode, keys and subscriptions live, journal events seen."""
        subs = {s for group in self._subscribers.values() for s in group}
        return {"mode": self.mode, "keys": len(self._subscribers),
                "subscriptions": len(subs), "events_seen": self.events_seen,
                "stream_takes": self.stream_takes, "lag": self.lag,
                "caught_up": self.caught_up,
                **({"siblings": self._siblings.statistics()} if self._siblings else {})}

    # -- the watcher -----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch the journal until cancelled; survives database outages.

        Reports started at once: subscribers read the journal themselves when they
        start, so nothing is lost while the watch is being opened.
        """
        use_streams = self.change_streams
        if use_streams is None:
            use_streams = self._database.transactions  # a replica set or a cluster
        task_status.started()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._check_quiet_stream)
            if self._siblings is not None:
                self._token = trio.lowlevel.current_trio_token()
                self._trio_thread = threading.get_ident()
                # (Attached for good: the marks and the other workers need this
                # worker's entries whatever its own notifier does.)
                self._database.journal_feed = self._feed
                nursery.start_soon(self._siblings.run, self._from_siblings,
                                   self._database.client.codec_options)
            try:
                if self.sole:
                    await self._watch_local()
                    # (What this process writes from now on until the stream is
                    # open, or the first poll made, comes through neither: both ask
                    # the mailboxes first.)
                    self.mode = "retrying"
                await self._watch(use_streams)
            finally:
                self._nursery = None
                if self._siblings is not None:
                    self._database.journal_feed = None
                nursery.cancel_scope.cancel()

    async def _watch(self, use_streams: bool) -> None:
        while True:
            try:
                if use_streams:
                    await self._watch_stream()
                else:
                    await self._poll()
                return
            except StoreUnavailable as exc:
                log.warning("notifier: %s; retrying", exc)
            except Exception:
                # A deployment that claims change streams but refuses them: poll.
                # Never let the notifier take the server down; keep retrying.
                log.exception("notifier: watch failed%s",
                              "; falling back to polling" if use_streams else "; retrying")
                use_streams = False
            self.mode = "retrying"
            # Anything may have happened while we were not watching.
            self._database.mailboxes_changed(None)
            self.publish_nowait(*list(self._subscribers))
            await trio.sleep(self.poll_interval)

    async def _watch_local(self) -> None:
        """Dispatch the entries the store's local feed brings until another
        process's write is seen (module docstring)."""
        self.mode = "local"
        self._trio_thread = threading.get_ident()
        self._token = trio.lowlevel.current_trio_token()
        self._database.journal_feed = self._feed
        try:
            while not self._foreign:
                await self._local_ready.wait()
                self._local_ready = trio.Event()
                await self._dispatch_local()
        finally:
            if self._siblings is None:
                self._database.journal_feed = None
        await self._dispatch_local()  # (fed before the feed was taken off)

    async def _dispatch_local(self) -> None:
        while self._local_docs:
            doc = self._local_docs.popleft()
            try:
                await self._dispatch(doc)
            except Exception as exc:
                # (A lookup of _dispatch failed: every subscriber reads instead.)
                log.warning("notifier: dispatching a change failed: %r", exc)
                self.publish_nowait(*list(self._subscribers))

    def _feed(self, docs: list[dict[str, Any]]) -> None:
        """``Database.journal_feed``: journal entries this process committed. Called
        in the committing task, on the trio thread or in a worker thread."""
        marks = self._marks
        if marks is not None:
            # Before the commit is answered (siblings.py, the marks).
            for doc in docs:
                mailbox, modseq = doc.get("mailbox"), doc.get("modseq")
                if mailbox is not None and isinstance(modseq, int):
                    marks.raise_to(str(mailbox), modseq)
        on_thread = threading.get_ident() == self._trio_thread
        if self._siblings is not None:
            if on_thread:
                self._siblings.send(docs)
            elif self._token is not None:
                self._token.run_sync_soon(self._siblings.send, docs)
        if self._foreign and self._siblings is not None:
            return  # (the local feed is no longer read, but stays: _watch_local)
        self._take_local(docs, learn=on_thread)
        if not on_thread and self._token is not None:
            self._token.run_sync_soon(self._wake_local)

    def _take_local(self, docs: list[dict[str, Any]], *, learn: bool) -> None:
        """Queue committed entries, this process's or another worker's, for the
        local feed's dispatch (``learn``: on the trio thread)."""
        for doc in docs:
            mailbox, modseq = doc.get("mailbox"), doc.get("modseq")
            if mailbox is not None and isinstance(modseq, int):
                key = mailbox_key(str(mailbox))
                if modseq > self._local_high.get(key, 0):
                    if len(self._local_high) >= MAILBOX_CACHE:
                        self._local_high.clear()  # (the next check may suspect: benign)
                        self._local_forgot = True
                    self._local_high[key] = modseq
        self._local_docs.extend(docs)
        if learn:
            if self._journal is not None:
                # Before the writer wakes the other sessions on the mailbox: they
                # catch up from these entries, without a read of their own.
                self._journal.learn(docs)
            self._local_ready.set()

    async def _from_siblings(self, docs: list[dict[str, Any]] | None) -> None:
        """The entries another worker committed (siblings.py), or None where some
        were lost on the way: every session here then reads for itself."""
        if docs is None:
            log.warning("notifier: journal entries of another worker were lost;"
                        " every session reads the journal")
            self._forget_shared()
            self.publish_nowait(*list(self._subscribers))
            return
        if self._foreign:
            # (Polling now, which finds these too; their entries still answer
            # journal reads.)
            if self._journal is not None:
                self._journal.learn(docs)
            return
        self._take_local(docs, learn=True)

    def _wake_local(self) -> None:
        self._local_ready.set()

    async def _watch_stream(self) -> None:
        journal = self._database.collection(schema.JOURNAL)
        pipeline = [{"$match": {"operationType": "insert"}}, {"$project": DISPATCHED}]
        stream = await self._database.run(
            lambda: journal.watch(pipeline, max_await_time_ms=STREAM_AWAIT_MS)
        )
        reopened = self.mode == "retrying"
        self.mode = "change-stream"
        self._news = trio.current_time()
        if reopened and self._nursery is not None:
            # What was written between the loss of the old stream and the opening
            # of this one comes through neither: ask the mailboxes (the wake-ups
            # sent at the loss came before some of it).
            self._nursery.start_soon(self._catch_up_logged)
        try:
            while True:
                changes = await self._database.run(_take_changes, stream)
                self.stream_takes += 1
                if not changes:
                    await trio.sleep(0)
                    continue
                self._news = trio.current_time()
                for change in changes:
                    doc = change.get("fullDocument") or {}
                    written = doc.get("at")
                    if isinstance(written, dt.datetime):
                        self.lag = max(0.0, (now() - written).total_seconds())
                    await self._dispatch(doc)
                # Let the next changes gather before asking again: under load a
                # getMore returned one to three changes, a round trip each in every
                # process (with two workers, 0.4 per IMAP command). Writes made here
                # wake their sessions directly (publish_nowait), so only another
                # process's changes wait, by at most this.
                await trio.sleep(STREAM_GATHER)
        finally:
            with trio.CancelScope(shield=True):
                await self._database.run(stream.close)

    async def _dispatch(self, doc: dict[str, Any]) -> None:
        self.events_seen += 1
        mailbox = doc.get("mailbox")
        keys = []
        if mailbox is not None:
            keys.append(mailbox_key(str(mailbox)))
        user = doc.get("user")
        if user is None and mailbox is not None:
            user = await self._user_of(str(mailbox))
        if user is not None:
            keys.append(user_key(str(user)))
        # An ACL change also wakes the user it grants to or takes from.
        keys += [user_key(str(u)) for u in doc.get("users", ())]
        if mailbox is not None:
            keys += await self._grantee_keys(str(mailbox), doc.get("kind"))
        if doc.get("kind") == "acl":
            # (Another process's change too: "nothing is shared with" answers go.)
            self._database.acl_changed()
        elif doc.get("kind") in MAILBOX_SET_CHANGES and doc.get("user") is not None:
            # (Likewise the mailbox lists LIST reuses: mail/mailboxes.py.)
            self._database.mailboxes_changed(doc["user"])
        modseq = doc.get("modseq")
        if isinstance(modseq, int) and mailbox is not None:
            self._announce(str(mailbox), int(modseq), keys)
        else:
            self.publish_nowait(*keys, modseq=int(modseq) if isinstance(modseq, int) else None)

    def _announce(self, mailbox_id: str, modseq: int, keys: list[str]) -> None:
        """Wake ``keys`` for a change of a mailbox at ``modseq`` (never blocks)."""
        key = mailbox_key(mailbox_id)
        if (self._journal is not None and self._nursery is not None
                and key in self._subscribers and modseq > self._published.get(key, 0)):
            # Read first, then wake: the sessions on the mailbox (1,000 IDLE on
            # one INBOX) each find the read done and answer in one go, instead of
            # waking, waiting for the read one by one, and waking again. In a task
            # of its own, so that other mailboxes' changes are not held up by it.
            self._nursery.start_soon(self._read_then_publish, mailbox_id, modseq, keys)
            return
        self.publish_nowait(*keys, modseq=modseq)

    async def _read_then_publish(self, mailbox_id: str, modseq: int, keys: list[str]) -> None:
        assert self._journal is not None
        try:
            with metrics.command_scope(READ_AHEAD):
                await self._journal.prefetch(mailbox_id, modseq)
        except StoreError as exc:
            log.warning("notifier: journal read ahead failed: %r", exc)  # (they read)
        except Exception:
            # Never let the notifier take the server down: the sessions read.
            log.exception("notifier: journal read ahead failed")
        finally:
            self.publish_nowait(*keys, modseq=modseq)

    async def _grantee_keys(self, mailbox_id: str, kind: object) -> list[str]:
        """The per-user keys of the users another owner's mailbox is shared with
        (RFC 4314 ACL), so that their change feeds are woken by its changes too.
        Cached per mailbox; an ``acl`` entry (or the mailbox's deletion) drops it.
        A list granting ``anyone``/``authenticated`` wakes every per-user key here."""
        if kind in ("acl", "mailbox-delete"):
            self._grantees.pop(mailbox_id, None)
        users = [k for k in self._subscribers if k.startswith("u:")]
        if not users:
            return []
        if mailbox_id not in self._grantees:
            if len(self._grantees) >= MAILBOX_CACHE:
                self._grantees.clear()
            self._grantees[mailbox_id] = await self._database.run(
                self._grantees_sync, ObjectId(mailbox_id))
        grantees = self._grantees[mailbox_id]
        if grantees is None:
            return users
        return [user_key(u) for u in grantees]

    def _grantees_sync(self, mailbox: ObjectId) -> tuple[str, ...] | None:
        doc = self._database.collection(schema.MAILBOXES).find_one(
            {"_id": mailbox}, {"acl": 1})
        names = [e["id"] for e in (doc or {}).get("acl", ()) if not e["id"].startswith("-")]
        if not names:
            return ()
        if "anyone" in names or "authenticated" in names:
            return None
        found = self._database.collection(schema.USERS).find(
            {"username": {"$in": names}}, {"_id": 1})
        return tuple(str(u["_id"]) for u in found)

    async def _user_of(self, mailbox_id: str) -> str | None:
        cached = self._mailbox_users.get(mailbox_id)
        if cached is not None:
            return cached
        if not any(k.startswith("u:") for k in self._subscribers):
            return None  # nobody listens per user: skip the lookup
        mailboxes = self._database.collection(schema.MAILBOXES)
        doc = await self._database.run(
            mailboxes.find_one, {"_id": ObjectId(mailbox_id)}, {"user": 1}
        )
        if doc is None or "user" not in doc:
            return None
        if len(self._mailbox_users) >= MAILBOX_CACHE:
            self._mailbox_users.clear()
        self._mailbox_users[mailbox_id] = str(doc["user"])
        return self._mailbox_users[mailbox_id]

    async def _watched(self) -> list[dict[str, Any]]:
        """``_id``, ``user`` and ``modseq`` of every mailbox that has subscribers
        here, by its own key or by its user's. A query per kind of key, each on one
        index (an ``$or`` of the two would be a collection scan on the embedded
        server)."""
        mailbox_ids = [ObjectId(k[2:]) for k in self._subscribers if k.startswith("m:")]
        user_ids = [ObjectId(k[2:]) for k in self._subscribers if k.startswith("u:")]
        if not mailbox_ids and not user_ids:
            return []
        mailboxes = self._database.collection(schema.MAILBOXES)
        fields = {"user": 1, "modseq": 1}

        def query() -> list[dict[str, Any]]:
            docs: list[dict[str, Any]] = []
            if mailbox_ids:
                docs += mailboxes.find({"_id": {"$in": mailbox_ids}}, fields)
            if user_ids:
                docs += mailboxes.find({"user": {"$in": user_ids}}, fields)
            return docs

        return await self._database.run(query)

    async def _poll(self) -> None:
        self.mode = "poll"
        while True:
            for doc in await self._watched():
                key = str(doc["_id"])
                modseq = int(doc.get("modseq", 0))
                previous = self._seen_modseqs.get(key)
                if previous is None:
                    # (First seen by the poll: what was announced here before it
                    # began, the local feed's included, is what its sessions have.)
                    previous = self._published.get(mailbox_key(key))
                self._seen_modseqs[key] = modseq
                if previous is not None and modseq != previous:
                    self.events_seen += 1
                    self.publish_nowait(mailbox_key(key), user_key(str(doc.get("user"))),
                                        modseq=modseq)
            # (Polling hears of no mailbox created elsewhere: LIST reads each time,
            # give or take a poll.)
            self._database.mailboxes_changed(None)
            await trio.sleep(self.poll_interval)

    async def _check_quiet_stream(self) -> None:
        """While the change stream brings nothing, ask the mailboxes every
        ``QUIET_CHECK`` seconds whether it held something back (module docstring)."""
        checked = trio.current_time()
        while True:
            due = max(self._news, checked) + QUIET_CHECK
            if trio.current_time() < due:
                await trio.sleep_until(due)
                continue
            checked = trio.current_time()
            if self.mode == "change-stream":
                await self._catch_up_logged()
            elif self.mode == "local":
                # (The local feed does not move ``_news``: this runs every check.)
                self._look_for_others()
                if self.mode == "local" and not self._foreign:
                    await self._catch_up_logged()

    def _look_for_others(self) -> None:
        """In the local feed's mode: open the change stream if a suspect of the last
        check is still unexplained by this process's own entries (or the other
        workers': their marks count too, their entries may have been lost)."""
        marks = self._marks
        confirmed = [k for k, modseq in self._suspects.items()
                     if max(self._local_high.get(k, 0),
                            marks.high(k[2:]) if marks is not None else 0) < modseq]
        self._suspects.clear()
        if confirmed:
            self._forget_shared()
            log.info("notifier: another process writes to this database (mailbox %s);"
                     " watching its change stream", confirmed[0][2:])
            self._foreign = True
            self._local_ready.set()

    def _forget_shared(self) -> None:
        """Drop what this process keeps of the mailbox lists and ACLs, as another
        process's change of them would through its journal entry."""
        self._database.mailboxes_changed(None)
        self._database.acl_changed()
        self._grantees.clear()

    async def _catch_up_logged(self) -> None:
        try:
            await self._catch_up()
        except StoreError as exc:
            log.warning("notifier: asking the mailboxes failed: %r", exc)
        except Exception:
            # Never let the notifier take the server down: the next check asks again.
            log.exception("notifier: asking the mailboxes failed")

    async def _catch_up(self) -> None:
        """Wake the subscribers of every watched mailbox whose modseq is past the
        last one announced here: a change the change stream has not brought. They
        read the journal from their own modseq, so one already there reads nothing,
        and so do all of them when the held-back events come after all."""
        watched = {k for k in self._subscribers if k.startswith("m:")}
        for doc in await self._watched():
            key = mailbox_key(str(doc["_id"]))
            watched.discard(key)
            modseq = int(doc.get("modseq", 0))
            told = self._published.get(key)
            if self.mode == "local":
                known = max(told or 0, self._local_high.get(key, 0))
                if told is not None and modseq > known:
                    if not self._suspects:
                        self._forget_shared()  # (another process's, perhaps)
                    self._suspects[key] = modseq
                told = known if told is not None else None
            if told is not None and modseq <= told:
                continue
            keys = [key, user_key(str(doc.get("user")))]
            if told is None:
                # Nothing told here yet (since the start): most likely nothing
                # happened, and its sessions, already there, read nothing.
                self.publish_nowait(*keys, modseq=modseq)
            else:
                # As the change stream's event would (the read ahead included:
                # when the event comes after all, it finds the read done).
                self.caught_up += 1
                self._announce(str(doc["_id"]), modseq, keys)
        # A watched mailbox that is no more was deleted: its subscribers read the
        # journal once (its deletion is there), without a modseq to compare.
        for key in watched - self._absent:
            if key in self._subscribers:
                if len(self._absent) >= MAILBOX_CACHE:
                    self._absent.clear()
                self._absent.add(key)
                self.caught_up += 1
                self.publish_nowait(key)
