"""Background maintenance (issue 19): the archive purge, the body sweep and, once
at start-up, the crash-repair pass, in small steps beside serving.

One process at a time does it, whatever the number of duck processes on the
database: a pass holds the lease ``maintenance`` (mail/leases.py), renewed between
steps; a process that dies mid-pass blocks the others at most one lease period.
Every step is one worker-thread call over a bounded page (engine/bodies.py,
mail/archive.py, mail/repair.py), followed by a short pause, so the pass never
holds a thread long nor starves the commands being served. Errors (an outage) end
the pass with a log line; the next one starts over. Every step is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .engine import clock, schema
from .engine.bodies import SWEEP_GRACE, SweepReport
from .errors import StoreError
from .index import digest
from .mail import repair
from .mail.leases import Lease
from .mail.repair import RepairReport

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)

#: The lease one pass holds.
LEASE_NAME = "maintenance"
#: Seconds the lease lasts without renewal (renewed every third of it).
LEASE_SECONDS = 120.0
#: Seconds between two steps of a pass (the database serves commands meanwhile).
PAUSE = 0.02
#: Seconds before a process that found the lease taken asks again, when it still
#: owes its start-up repair.
RETRY = 60.0
#: The lease of the background digest build (index/digest.py).
DIGEST_LEASE = "digest-build"
#: Seconds between looks at whether another process's digest build is done.
DIGEST_POLL = 5.0


@attrs.define
class PassReport:
    """What one maintenance pass did."""

    purged: int = 0
    purged_bytes: int = 0
    sweep: SweepReport = attrs.Factory(SweepReport)
    repair: RepairReport | None = None
    #: False when another process held the lease (nothing was done).
    ran: bool = True


class LeaseLost(StoreError):
    """Another process took the maintenance lease: this pass stops."""


class Maintenance:
    """The maintenance of one store (``store.maintenance``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.pause = PAUSE
        self.sweep_grace: dt.timedelta = SWEEP_GRACE
        #: Passes completed by this process (statistics).
        self.passes = 0
        self._lease: Lease | None = None

    async def run(self, interval: float, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Until cancelled: a pass with the repair now, then one every ``interval``
        seconds. Reports started at once (start-up never waits for it)."""
        task_status.started()
        owed_repair = True
        while True:
            try:
                done = await self.run_pass(repair=owed_repair)
                if done.ran:
                    owed_repair = False
                    log.info("maintenance: purged %d archived messages, freed %d bodies "
                             "and %d orphan files, repaired %d references%s",
                             done.purged, done.sweep.freed_bodies, done.sweep.orphan_files,
                             done.sweep.repaired_refs, _repaired(done.repair))
            except (StoreError, OSError) as exc:
                log.warning("maintenance pass stopped: %s", exc)
            except Exception:  # a bug here must not stop serving
                log.exception("maintenance pass crashed")
            await trio.sleep(min(interval, RETRY) if owed_repair else interval)

    async def run_pass(self, *, repair: bool = False) -> PassReport:
        """One pass under the lease (``ran`` False when another process has it)."""
        got = await self._store.leases.acquire(LEASE_NAME, LEASE_SECONDS)
        if not isinstance(got, Lease):
            return PassReport(ran=False)
        self._lease = got
        report = PassReport()
        try:
            if repair:
                report.repair = await self.repair()
            await self.purge_archive(report)
            await self.sweep(report.sweep)
            self.passes += 1
            return report
        finally:
            lease, self._lease = self._lease, None
            await self._release(lease)

    async def purge_archive(self, report: PassReport) -> None:
        """Purge what has been archived longer than ``archive_days``."""
        # (With archive_days 0 what is left from before is all expired.)
        store_archive = self._store.archive
        expired = store_archive.expired_pages()
        while (done := await self._step(store_archive.purge_page, expired)) is not None:
            report.purged += done[0]
            report.purged_bytes += done[1]

    async def sweep(self, report: SweepReport) -> None:
        """The body sweep, a page a step."""
        bodies = self._store.bodies
        cutoff = clock.now() - self.sweep_grace
        body_pages = bodies.body_pages()
        while await self._step(bodies.sweep_bodies, report, cutoff, body_pages):
            pass
        file_pages = bodies.file_pages()
        while await self._step(bodies.sweep_files, report, cutoff, file_pages):
            pass

    async def repair(self) -> RepairReport:
        """Recount mailbox counters and quota, finish interrupted mailbox purges."""
        store = self._store
        db = store.database
        report = RepairReport()
        after: Any = None
        while True:
            after = await self._step(repair.orphans_page, db, store.mailboxes, report, after)
            if after is None:
                break
        boxes = repair.mailbox_pages(db)
        while await self._step(repair.counters_page, db, report, boxes):
            pass
        users = repair.user_pages(db)
        while await self._step(repair.quota_page, db, report, users):
            pass
        if report.counters_fixed or report.quota_fixed or report.orphan_mailboxes:
            log.warning("repair: fixed the counters of %d mailboxes and the quota of %d "
                        "users, purged %d messages of %d deleted mailboxes",
                        report.counters_fixed, report.quota_fixed, report.orphan_messages,
                        report.orphan_mailboxes)
        return report

    async def _step(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One bounded step in a worker thread, the lease kept, then a pause."""
        await self._keep_lease()
        result = await self._store.database.run(fn, *args)
        await trio.sleep(self.pause)
        return result

    async def _keep_lease(self) -> None:
        if self._lease is not None:  # (None: a step called outside a pass, in tests)
            try:
                self._lease = await self._renewed(self._lease)
            except LeaseLost:
                self._lease = None
                raise

    async def _renewed(self, lease: Lease) -> Lease:
        """``lease``, renewed once a third of it has passed (LeaseLost if taken)."""
        left = (lease.expires - clock.now()).total_seconds()
        if left >= LEASE_SECONDS * 2 / 3:
            return lease
        renewed = await self._store.leases.renew(lease, LEASE_SECONDS)
        if renewed is None:
            raise LeaseLost(f"the lease {lease.name} was taken by another process")
        return renewed

    # -- the digest build (issue 19: it no longer blocks start-up) ---------------------

    async def build_digests(self, *, forever: bool = False,
                            task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                            ) -> None:
        """Build the digests ``Store.open`` left pending, a step (one transaction of
        ``digest.BUILD_BATCH`` messages) at a time, until none is left. One process
        builds (the lease ``digest-build``); the others look every few seconds at
        what it has finished, and read the messages of the rest meanwhile.

        ``forever`` (a server): then go on looking every few seconds for the digests
        that writes start here (a mailbox that grew to ``digest.DIGEST_FROM``
        messages), and build them the same way."""
        task_status.started()
        while True:
            await self._build_pending()
            if not forever:
                return
            await trio.sleep(DIGEST_POLL)

    async def _build_pending(self) -> None:
        db = self._store.database
        while db.digest_pending:
            try:
                got = await self._store.leases.acquire(DIGEST_LEASE, LEASE_SECONDS)
                if isinstance(got, Lease):
                    await self._build(got)
                else:
                    await trio.sleep(DIGEST_POLL)
                    await db.run(self._forget_built)
            except (StoreError, OSError) as exc:
                log.warning("digest build paused: %s", exc)
                await trio.sleep(DIGEST_POLL)
            except Exception:
                log.exception("digest build crashed")
                await trio.sleep(DIGEST_POLL)
        log.info("every mailbox digest is built")

    async def _build(self, lease: Lease) -> None:
        db = self._store.database
        try:
            for mailbox in sorted(db.digest_pending):
                after: int | None = 0
                while after is not None:
                    lease = await self._renewed(lease)
                    after = await db.run(digest.build_step, db, mailbox, after)
                    await trio.sleep(self.pause)
        finally:
            await self._release(lease)

    async def _release(self, lease: Lease | None) -> None:
        """Give the lease back, unless this task is being cancelled (shutdown): a
        release then could wait out a database outage; the lease expires anyway."""
        if lease is None:
            return
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except trio.Cancelled:
            return  # (re-raised by the caller's own unwinding)
        with trio.CancelScope(shield=True):
            try:
                await self._store.leases.release(lease)
            except StoreError as exc:
                log.warning("could not release the lease %s: %s", lease.name, exc)

    def _forget_built(self) -> None:
        db = self._store.database
        boxes = db.collection(schema.MAILBOXES)
        for doc in boxes.find({"_id": {"$in": list(db.digest_pending)},
                               "dg": {"$ne": digest.BUILDING}}, {"_id": 1}):
            db.digest_pending.discard(doc["_id"])


def _repaired(report: RepairReport | None) -> str:
    if report is None:
        return ""
    return (f"; repair: {report.counters_fixed} of {report.mailboxes} mailboxes, "
            f"{report.quota_fixed} of {report.users} users, "
            f"{report.orphan_messages} orphan messages")

