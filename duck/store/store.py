"""The store: one object that the protocols and the API hold."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from . import backup, restore
from . import doctor as checkup
from .accounts import quota
from .accounts.apitokens import ApiTokens
from .accounts.apppasswords import AppPasswords
from .accounts.authenticate import Authenticator, AuthResult
from .accounts.authlog import AuthLog
from .accounts.loginthrottle import LoginThrottle, ThrottlePolicy
from .accounts.totp import TwoFactor
from .accounts.users import Users
from .admin import Admin
from .engine import clock, schema
from .engine.bodies import SWEEP_GRACE, Bodies, SweepReport
from .engine.database import Database
from .index import contents, digest
from .mail.acl import Acl
from .mail.archive import Archive
from .mail.imports import Imports
from .mail.leases import Leases
from .mail.mailboxes import Mailboxes
from .mail.messages import Messages
from .mail.metadata import Metadata
from .mail.urlauth import UrlAuthKeys
from .maintenance import Maintenance
from .outbound.queue import Outbound
from .push.events import ChangeFeed
from .push.journal import Journal
from .push.webhooks import Webhooks
from .sieve.scripts import SieveScripts

log = logging.getLogger(__name__)


class Store:
    """Entry point of the store: the database and the typed APIs over it."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.users = Users(database)
        self.bodies = Bodies(database)
        self.mailboxes = Mailboxes(database)
        #: Deleted messages, kept ``archive.days`` (mail/archive.py).
        self.archive = Archive(database, self.bodies)
        self.journal = Journal(database)
        self.messages = Messages(database, self.bodies, archive=self.archive,
                                 journal_reader=self.journal)
        self.events = ChangeFeed(database)
        self.admin = Admin(database, self.mailboxes, self.archive)
        self.webhooks = Webhooks(database)
        self.leases = Leases(database)
        self.metadata = Metadata(database)
        self.sieve = SieveScripts(database)
        self.urlauth = UrlAuthKeys(database)
        self.outbound = Outbound(database)
        self.acl = Acl(database)
        #: Archive purge, body sweep, crash repair in the background (maintenance.py).
        self.maintenance = Maintenance(self)
        self.imports = Imports(database)
        self.app_passwords = AppPasswords(database)
        self.api_tokens = ApiTokens(database)
        self.two_factor = TwoFactor(database)
        self.authlog = AuthLog(database)
        self.auth = Authenticator(database, self.users, self.app_passwords, self.two_factor,
                                  self.authlog, LoginThrottle(database))
        # Default folders are created in the user's own transaction.
        self.users.create_hooks.append(self.mailboxes.create_defaults)
        self.mailboxes.release = self.messages.release_sync
        # (Push reads envelopes, which the contents keep: index/contents.py.)
        self.events.with_envelopes = self.webhooks.with_envelopes = functools.partial(
            contents.load, database, fields=("env",))
        self.mailboxes.archive = self.archive

    @classmethod
    async def open(cls, uri: str, name: str = "duck", *, prepare: bool = True,
                   digest_in_background: bool = False) -> Store:
        """Connect, choose durable write settings and create indexes (idempotent).

        ``prepare=False`` only connects: no index is created and nothing migrated
        (``duck doctor`` looks at the database as the server left it). Mailboxes
        without a current digest get one built now, or with ``digest_in_background``
        only marked for ``maintenance.build_digests`` (which a server runs beside
        serving: ~10 min at 100k messages), their readers reading the messages
        meanwhile."""
        database = Database(uri, name)
        if not prepare:
            try:
                await database.run_threaded(database.configure_durability)
            except BaseException:
                database.close()
                raise
            return cls(database)
        try:
            await database.run_threaded(database.configure_durability)
            await database.run_threaded(schema.ensure_indexes, database.db)
            # Mailboxes made before the digest existed (or with another layout) get
            # one (a no-op query after).
            if digest_in_background:
                pending = await database.run(digest.prepare_build, database)
                database.digest_pending.update(pending)
                if pending:
                    log.info("the digest of %d mailboxes will be built in the background",
                             len(pending))
            else:
                filled = await database.run(digest.backfill, database)
                if filled:
                    log.info("built the digest of %d mailboxes", filled)
        except BaseException:
            database.close()
            raise
        store = cls(database)
        try:
            moved = await database.run(store.mailboxes.migrate_subscriptions_sync)
            if moved:
                log.info("moved %d subscriptions to their own collection", moved)
        except BaseException:
            database.close()
            raise
        log.info("store ready (database %r)", name)
        return store

    async def set_journal_retention(self, seconds: int) -> None:
        """Keep journal entries ``seconds`` long (the TTL index of every process's
        database), and have the change feed tell cursors older than that to resync."""
        await self.journal.set_retention(seconds)
        self.events.retention = seconds

    def configure_auth(self, policy: ThrottlePolicy | None = None,
                       authlog_retention: dt.timedelta | None = None) -> None:
        """Set the login throttle's limits and how long auth-log entries are kept."""
        if policy is not None:
            self.auth.throttle.policy = policy
        if authlog_retention is not None:
            self.authlog.retention = authlog_retention

    async def authenticate(self, username: str, secret: str, *, protocol: str,
                           mechanism: str, peer: str, otp: str | None = None) -> AuthResult:
        """The login check of every protocol (accounts/authenticate.py): password or
        application password, scopes, two-factor rule, throttle, auth log."""
        return await self.auth.authenticate(username, secret, protocol=protocol,
                                            mechanism=mechanism, peer=peer, otp=otp)

    async def quota(self, user_id: str) -> tuple[int, int]:
        """(bytes used, quota in bytes) of a user."""
        return await quota.quota(self.database, user_id)

    def set_archive_days(self, days: int) -> None:
        """Keep deleted messages ``days`` in the archive (0: delete them at once)."""
        if not isinstance(days, int) or days < 0:
            raise ValueError("archive days must be a non-negative integer")
        self.archive.days = days

    async def sweep(self, grace: dt.timedelta | None = None) -> SweepReport:
        """Garbage-collect bodies: repair leaked references, free unreferenced ones.

        A page of bodies (then of GridFS files) per worker-thread call, with a
        checkpoint between pages: a sweep of many bodies never holds a thread long.
        """
        report = SweepReport()
        cutoff = clock.now() - (SWEEP_GRACE if grace is None else grace)
        bodies = self.bodies.body_pages()
        while await self.database.run(self.bodies.sweep_bodies, report, cutoff, bodies):
            await trio.lowlevel.checkpoint()
        files = self.bodies.file_pages()
        while await self.database.run(self.bodies.sweep_files, report, cutoff, files):
            await trio.lowlevel.checkpoint()
        return report

    async def doctor(self, *, fix: bool = False,
                     grace: dt.timedelta | None = None) -> checkup.DoctorReport:
        """Check the counters, indexes, bodies and digest against the messages; with
        ``fix``, repair what can be (duck/store/doctor.py)."""
        return await self.database.run_threaded(lambda: checkup.examine(
            self.database, self.mailboxes, self.bodies, fix=fix,
            grace=checkup.SWEEP_GRACE if grace is None else grace))

    async def backup(self, root: Path, username: str | None = None,
                     progress: Callable[[int], None] | None = None) -> backup.BackupReport:
        """Write a backup of the deployment, or of one user, into the empty directory
        ``root`` (backup.py: the format and what "consistent" means); ``progress`` is
        called from a worker thread with the messages of each mailbox copied."""
        if username is not None:
            username = (await self.users.by_username(username)).username
        return await self.database.run_threaded(backup.dump, self.database, root, username,
                                                progress)

    async def restore(self, root: Path, *, force: bool = False,
                      progress: Callable[[int], None] | None = None
                      ) -> restore.RestoreReport:
        """Restore a backup directory into this database (restore.py); ``progress`` is
        called from a worker thread per message restored."""
        def run() -> restore.RestoreReport:
            return restore.load(self.database, root, force=force, progress=progress,
                                delete_user=self.admin._delete_sync)

        return await self.database.run_threaded(run)

    async def aclose(self) -> None:
        """Close the database connections."""
        await self.database.aclose()

    async def healthy(self) -> bool:
        """True when the database answers."""
        return await self.database.ping()


@asynccontextmanager
async def open_store(uri: str, name: str = "duck") -> AsyncIterator[Store]:
    """``async with open_store(uri) as store:`` — opened and closed around the block."""
    store = await Store.open(uri, name)
    try:
        yield store
    finally:
        await store.aclose()
