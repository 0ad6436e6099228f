"""Connection to MongoDB and the one door through which every database call passes.

A store call is a blocking function, ``Database.run(fn, *args)``. Where the
deployment is one wire.py reaches (one server, no credentials, no TLS: the
embedded server, a plain mongod) it runs on the trio thread in the calling task,
and its database calls go over trio sockets (inline.py); anywhere else pymongo
runs it in a worker thread of ``STORE_THREADS`` (threadpool.py), whose size bounds
the threads (and so the connections) a process uses. No blocking pymongo call runs
on the trio thread. Driver errors that mean "the database is not there" become
:class:`StoreUnavailable` here, once, so that every protocol can answer
``NO [UNAVAILABLE]`` / ``451 4.3.0`` / HTTP 503 instead of crashing.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import greenback
import pymongo
import pymongo.errors
import pymongo.uri_parser
import trio
from pymongo.database import Database as MongoDatabase
from pymongo.write_concern import WriteConcern

from ..errors import StoreUnavailable
from . import groupcommit, inline
from .metrics import ROUND_TRIPS
from .threadpool import ThreadPool
from .wire import Wire, seconds

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The worker threads through which every pymongo call in the process runs.
#: 16 threads keep the embedded server (2-4k ops/s) saturated without piling up
#: connections; a real cluster can be given more with ``set_store_concurrency``.
STORE_THREADS = ThreadPool(16)

_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    pymongo.errors.ConnectionFailure,  # includes AutoReconnect, NetworkTimeout
    pymongo.errors.ServerSelectionTimeoutError,
    pymongo.errors.ExecutionTimeout,
    pymongo.errors.WaitQueueTimeoutError,
)


#: The journal entries written so far by the transaction that runs in this context
#: (``Database.in_transaction``), handed to ``journal_feed`` once it committed.
_UNCOMMITTED: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "duck_uncommitted_journal", default=None)

#: First wire version with the client-level ``bulkWrite`` command (MongoDB 8.0).
CLIENT_BULK_WIRE_VERSION = 25


def set_store_concurrency(threads: int) -> None:
    """Change how many pymongo calls may run at once in this process."""
    STORE_THREADS.size = threads


def _translated(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with the driver's outage errors raised as StoreUnavailable."""
    try:
        return fn(*args)
    except _UNAVAILABLE_ERRORS as exc:
        raise StoreUnavailable(f"database unavailable: {exc.__class__.__name__}") from exc
    except pymongo.errors.OperationFailure as exc:
        # Transient transaction errors and "not primary" are outages, not bugs.
        if exc.has_error_label("TransientTransactionError") or exc.code in (
            91, 189, 10107, 11600, 11602, 13435, 13436,
        ):
            raise StoreUnavailable(f"database unavailable: {exc}") from exc
        raise


#: Users whose last mailbox change is remembered (past it, all are forgotten and
#: every list read before counts as changed).
MAILBOX_CHANGES_KEPT = 100_000


class Database:
    """A MongoDB database handle with durable write settings.

    ``uri`` may point at the embedded server, a standalone mongod, a replica set or
    a sharded cluster; writes that acknowledge mail use journaled write concern,
    and majority where there is a replica set (docs/architecture.md, "Durability").
    """

    def __init__(self, uri: str, name: str, *, timeout_ms: int = 10000,
                 wire: bool = True) -> None:
        self.uri = uri
        self.name = name
        # Timeouts given in the URI win over these defaults (keyword arguments
        # would override the URI in pymongo).
        given = uri.lower()
        timeouts: dict[str, Any] = {
            key: value
            for key, value in (
                ("connectTimeoutMS", timeout_ms),
                ("serverSelectionTimeoutMS", timeout_ms),
                ("socketTimeoutMS", max(timeout_ms * 6, 60000)),
            )
            if f"{key.lower()}=" not in given
        }
        self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            uri,
            tz_aware=True,
            appname="duck",
            **timeouts,
            # Counts round trips per protocol command (metrics.py; read by bench/).
            event_listeners=[ROUND_TRIPS],
        )
        self.write_concern = WriteConcern(w=1, j=True)
        self.db: MongoDatabase[dict[str, Any]] = self.client.get_database(
            name, write_concern=self.write_concern
        )
        #: Whether multi-document transactions are available (replica set or
        #: sharded cluster; the embedded server is a one-node replica set).
        self.transactions = False
        #: Whether the server takes the client-level ``bulkWrite`` command
        #: (MongoDB 8.0; batch.py sends a change's writes in one round trip with it).
        self.client_bulk = False
        #: Mailboxes whose digest is being built in the background (index/digest.py:
        #: their readers read the messages meanwhile).
        self.digest_pending: set[Any] = set()
        #: Moved by every ACL change made in this process or heard of from the
        #: notifier: what mail/acl.py remembers of the lists is valid while it stays.
        self.acl_generation = 0
        #: Moved by every change of a user's mailbox set (create, delete, rename)
        #: made in this process or heard of from the notifier; ``_boxes_changed``:
        #: per user, the generation of their last one (mail/mailboxes.py reuses a
        #: user's list read at a generation no change of theirs has passed).
        self.mailbox_generation = 0
        self._boxes_changed: dict[Any, int] = {}
        self._boxes_floor = 0
        #: The trio-socket client of inline store calls, where the deployment is
        #: one it reaches. ``wire=False`` (or DUCK_STORE_WIRE=0 in the environment,
        #: to compare) serves every call through pymongo in worker threads, as a
        #: deployment wire.py does not reach is served.
        self.wire = (_plain_wire(uri, self.client)
                     if wire and os.environ.get("DUCK_STORE_WIRE", "1") != "0" else None)
        self.raw_codec = inline.raw_codec(self.client.codec_options)
        #: Logical sessions of finished inline transactions, for the next.
        self.wire_sessions: list[inline.Session] = []
        #: The group committer of each trio run (groupcommit.py).
        self.committers: trio.lowlevel.RunVar[Any] = trio.lowlevel.RunVar("duck_group_commit")
        self._collections: dict[str, Any] = {}
        #: Given every journal entry this process writes, once it is committed (in
        #: the order of their commits): the notifier's local feed (push/notify.py),
        #: where this process is the deployment's only writer. None: nobody asks.
        self.journal_feed: Callable[[list[dict[str, Any]]], None] | None = None

    def journal_written(self, docs: list[dict[str, Any]], session: Any = None) -> None:
        """Journal entries this process just wrote (the store's writers call this
        after their write): given to ``journal_feed`` at once, or, written in
        ``session``'s transaction, when that has committed (not at all when it is
        taken back)."""
        if self.journal_feed is None or not docs:
            return
        if session is not None:
            uncommitted = _UNCOMMITTED.get()
            if uncommitted is not None:
                uncommitted.extend(docs)
                return
        self.journal_feed(docs)

    def group_commits(self) -> dict[str, int]:
        """This run's group commit figures (groupcommit.py): groups committed, the
        transactions they carried, groups taken back, and the groups committed as
        their writes came back."""
        return groupcommit.committer(self).statistics()

    def group_commit_seconds(self) -> dict[str, float]:
        """Seconds this run's groups spent in each phase (groupcommit.py, ``PHASES``):
        gathering, waiting for a place in flight, their writes' round trip, their
        commit's."""
        return groupcommit.committer(self).phase_seconds()

    def acl_changed(self) -> None:
        """An ACL changed (here, or heard of): forget what is known of the lists."""
        self.acl_generation += 1

    def mailboxes_changed(self, user: Any = None) -> None:
        """A user's mailboxes were created, deleted or renamed (here, or heard of);
        ``None``: anyone's may have been (the notifier lost its stream)."""
        self.mailbox_generation += 1
        if user is None or len(self._boxes_changed) >= MAILBOX_CHANGES_KEPT:
            self._boxes_changed.clear()
            self._boxes_floor = self.mailbox_generation
        else:
            self._boxes_changed[user] = self.mailbox_generation

    def mailboxes_unchanged_since(self, user: Any, generation: int) -> bool:
        """Whether no change of ``user``'s mailboxes is known after ``generation``."""
        return self._boxes_changed.get(user, self._boxes_floor) <= generation

    def configure_durability(self) -> None:
        """Pick majority write concern when the deployment is a replica set (blocking)."""
        hello = self.client.admin.command("hello")
        self.client_bulk = int(hello.get("maxWireVersion", 0)) >= CLIENT_BULK_WIRE_VERSION
        # The embedded server advertises a one-node set; majority there is the same
        # node, so it costs nothing and keeps one code path.
        if hello.get("setName") or hello.get("msg") == "isdbgrid":
            self.write_concern = WriteConcern(w="majority", j=True)
            self.db = self.client.get_database(self.name, write_concern=self.write_concern)
            self._collections.clear()
            self.transactions = True

    def in_transaction(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(session)`` in a transaction, retried on transient errors (blocking).

        On a standalone mongod (no transactions) ``fn(None)`` runs directly; callers
        order their writes so that a crash in between leaves only what a sweep or a
        retry repairs (unique indexes stay the guards).
        """
        if not self.transactions:
            return fn(None)
        if self.journal_feed is None:
            return self._in_transaction(fn)
        uncommitted: list[dict[str, Any]] = []

        def attempt(session: Any) -> T:
            uncommitted.clear()  # (what a try taken back wrote is not)
            return fn(session)

        token = _UNCOMMITTED.set(uncommitted)
        try:
            result = self._in_transaction(attempt)
        finally:
            _UNCOMMITTED.reset(token)
        self.journal_written(uncommitted)
        return result

    def _in_transaction(self, fn: Callable[[Any], T]) -> T:
        if self.wire is not None and inline.ACTIVE.get() is not None:
            return inline.in_transaction(self, fn)  # type: ignore[no-any-return]

        def body(session: Any) -> T:
            try:
                return fn(session)
            except _UNAVAILABLE_ERRORS as exc:
                # pymongo labels a network error inside a transaction transient and
                # with_transaction would retry it for two minutes; an outage is
                # answered at once instead (NO [UNAVAILABLE], LMTP 4xx). Write
                # conflicts (OperationFailure) are still retried.
                raise StoreUnavailable(
                    f"database unavailable: {exc.__class__.__name__}") from exc

        # Not causally consistent: every read here is from the primary, and a
        # causal session's first command carries a readConcern that the embedded
        # engine refuses on bulkWrite, which would cost a transaction that starts
        # with one (mail/counters.py) a round trip more (batch.py).
        with self.client.start_session(causal_consistency=False) as session:
            return session.with_transaction(
                body, write_concern=self.write_concern, max_commit_time_ms=30000
            )

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)``: inline in this task where the deployment is
        one wire.py reaches, else in a worker thread of STORE_THREADS. Not
        cancellable while it runs (a commit is never abandoned half way)."""
        if self.wire is None:
            # (One call, not a wrapper made per call: this runs for every store call.)
            return await STORE_THREADS.run(_translated, fn, *args)
        with trio.CancelScope(shield=True):
            # (Inside the shield: a call once made is run, as a worker thread's is.)
            # (The task given: has_portal() alone asks sniffio which library runs.)
            if not greenback.has_portal(trio.lowlevel.current_task()):
                # Once per task: ensure_portal is a schedule point every time, and
                # under load each one waits for a pass of every other ready task
                # (~2 ms measured under imaptest), inside the user's lock for a write.
                await greenback.ensure_portal()
            token = inline.ACTIVE.set(self)
            try:
                result = _translated(fn, *args)
            finally:
                inline.ACTIVE.reset(token)
        return result

    async def run_threaded(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` in a worker thread, whatever the deployment: for
        calls that use pymongo's own objects (index management, GridFS buckets,
        backups), long passes (the doctor) and large parses (a big APPEND)."""
        return await STORE_THREADS.run(_translated, fn, *args)

    def collection(self, name: str) -> Any:
        """A collection of this database (with the durable write concern): pymongo's,
        or inline.py's stand-in for it where store calls run inline."""
        if self.wire is None:
            return self.db[name]
        coll = self._collections.get(name)
        if coll is None:
            coll = self._collections[name] = inline.Collection(self, name)
        return coll

    def close(self) -> None:
        """Close the client's connections (blocking, fast)."""
        self.client.close()

    async def aclose(self) -> None:
        """Close the client from async code."""
        if self.wire is not None:
            await self.wire.aclose()
        await trio.to_thread.run_sync(self.client.close)

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            if self.wire is not None:
                await self.run(lambda: inline.call(self, {"ping": 1}, db="admin"))
            else:
                await self.run(self.client.admin.command, "ping")
        except StoreUnavailable:
            return False
        return True


def _plain_wire(uri: str, client: pymongo.MongoClient[dict[str, Any]]) -> Wire | None:
    """A wire.py client for ``uri`` when it names one server reached without
    credentials or TLS; None for any other deployment (pymongo serves it)."""
    try:
        parsed = pymongo.uri_parser.parse_uri(uri)
    except (pymongo.errors.ConfigurationError, pymongo.errors.InvalidURI, ValueError):
        return None
    options = {key.lower(): value for key, value in parsed["options"].items()}
    if (len(parsed["nodelist"]) != 1 or parsed["username"] or options.get("tls")
            # (A set named without directConnection: pymongo would find its
            # primary, which may be another host than the one named.)
            or (options.get("replicaset") and not options.get("directconnection"))
            or options.get("ssl") or options.get("authmechanism")
            or options.get("compressors") or options.get("loadbalanced")):
        return None
    host, port = parsed["nodelist"][0]
    pool = client.options.pool_options
    return Wire(host, port, size=16, codec_options=client.codec_options,
                connect_timeout=seconds(pool.connect_timeout),
                socket_timeout=seconds(pool.socket_timeout))
