"""The store behind POP3: credentials, the maildrop lease, reads, and UPDATE.

The translation layer of docs/architecture.md: POP3's backend interface on one side, the
store's public API on the other.

- The maildrop is the user's POP3 folder (a per-user setting, INBOX by default),
  held with a lease (``store.leases``) named after the mailbox, renewed while the
  session lives: one POP3 session per mailbox across every duck process.
- The message list is read once, after the lease is taken: the mailbox's view
  (from its digest), then ids and sizes in one query. The unique-id (UIDL) is the
  message document's id, the same from any duck process and never reused.
- Reads ask the database for the message each time (not only the record cache),
  so a message expunged over IMAP during the session is reported gone.
- UPDATE removes the deleted messages in one store call on the journaled EXPUNGE
  path (IMAP sessions see EXPUNGEs, push subscribers ``message.deleted``), or
  moves them to the Trash folder when so configured.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager

import attrs
import trio

from ..store import (
    INBOX,
    AuthenticationFailed,
    Lease,
    Mailbox,
    NotFound,
    Notifier,
    Refusal,
    ScramLogin,
    Store,
    StoreError,
    StoreUnavailable,
    Throttled,
    User,
    mailbox_key,
)
from .backend import (
    Account,
    BadCredentials,
    InUse,
    LeaseLost,
    MessageGone,
    NoMaildrop,
    TooSoon,
    Unavailable,
)
from .maildrop import Entry

log = logging.getLogger(__name__)

#: Most messages one session lists (the oldest): a per-session memory cap, and the
#: store's cap on UIDs per read. A client that deletes what it downloads sees the
#: rest in later sessions.
MAX_MESSAGES = 100_000
#: Messages up to this size are read in one piece; larger ones are streamed in the
#: store's chunks (the memory a RETR holds stays below this plus one chunk).
READ_WHOLE = 256 * 1024
#: Seconds a lease release may take when the session ends.
RELEASE_TIMEOUT = 5.0


@attrs.frozen
class StoreSettings:
    """How POP3 uses the store."""

    #: Seconds a maildrop lease lasts unless renewed (renewed at a third of it).
    lease_seconds: float = 60.0
    #: RFC 2449 LOGIN-DELAY: least seconds between two sessions on one maildrop.
    login_delay: float = 0.0
    #: What QUIT does with deleted messages: "expunge", or "trash" (move them to
    #: the user's \\Trash folder).
    delete_mode: str = "expunge"


class StoreMaildrop:
    """``OpenMaildrop`` on a mailbox of the store."""

    def __init__(self, store: Store, mailbox: Mailbox, entries: Sequence[Entry],
                 lease: Lease, settings: StoreSettings, notifier: Notifier | None) -> None:
        self._store = store
        self._mailbox = mailbox
        self._entries = tuple(entries)
        self._lease: Lease | None = lease
        self._settings = settings
        self._notifier = notifier

    @property
    def entries(self) -> Sequence[Entry]:
        """The messages, oldest first."""
        return self._entries

    @property
    def lost(self) -> bool:
        """The lease could not be renewed."""
        return self._lease is None

    @property
    def lease(self) -> Lease | None:
        """The held lease (None once lost)."""
        return self._lease

    async def keep_lease(self) -> None:
        """Renew the lease at a third of its period until cancelled."""
        period = self._settings.lease_seconds
        while True:
            await trio.sleep(period / 3)
            held = self._lease
            if held is None:
                return
            try:
                renewed = await self._store.leases.renew(held, period)
            except StoreError as exc:
                # Try again at the next tick: the lease has two more thirds to go.
                log.warning("POP3 lease renewal failed: %r", exc)
                continue
            if self._lease is not held:
                continue  # released while the renewal was under way
            if renewed is None:
                log.warning("POP3 lease of %s lost", self._mailbox.id)
            self._lease = renewed

    async def release(self) -> None:
        """Give the maildrop up now (before QUIT's reply, so that a client that
        connects again at once finds it free)."""
        held, self._lease = self._lease, None
        if held is not None:
            await _release(self._store, held)

    async def read(self, uid: int) -> AsyncGenerator[bytes, None]:
        """The message's stored bytes in the store's chunks."""
        try:
            # "flags" is not in the record cache: the database says whether the
            # message is still there.
            records = await self._store.messages.fetch(self._mailbox.id, [uid],
                                                       ["content", "flags"])
        except StoreUnavailable as exc:
            raise Unavailable("the mail store is unavailable, try again later") from exc
        if not records:
            raise MessageGone("message was deleted by another session")
        record = records[0]
        segments = record.segments or ()
        size = segments[-1].offset + segments[-1].length if segments else 0
        try:
            if size <= READ_WHOLE:
                # One worker-thread call for every body of a small message (a stream
                # makes one per GridFS chunk), as IMAP reads its smaller sections.
                yield await self._store.messages.read(record)
                return
            async for chunk in self._store.messages.stream(record):
                yield chunk
        except NotFound as exc:
            # Its body was freed after an expunge elsewhere between the two reads.
            raise MessageGone("message was deleted by another session") from exc
        except StoreUnavailable as exc:
            raise Unavailable("the mail store is unavailable, try again later") from exc

    async def remove(self, uids: Sequence[int]) -> int:
        """Expunge (or move to Trash) these messages in one store call."""
        if self._lease is None:
            raise LeaseLost("the maildrop lock was lost; nothing was deleted")
        if not uids:
            return 0
        mailbox = self._mailbox
        try:
            trash = await self._trash() if self._settings.delete_mode == "trash" else None
            if self._settings.delete_mode == "trash" and trash is None:
                log.warning("POP3: user %s has no \\Trash folder; expunging instead",
                            mailbox.user_id)
            if trash is not None and trash.id != mailbox.id:
                result = await self._store.messages.move(mailbox.id, uids, mailbox.user_id,
                                                         trash.path)
                self._wake(mailbox.id, trash.id)
                return len(result.uids)
            removed = await self._store.messages.remove(mailbox.id, uids)
        except StoreUnavailable as exc:
            raise Unavailable("the mail store is unavailable; nothing was deleted") from exc
        if removed and self._notifier is not None:
            self._notifier.publish_nowait(mailbox_key(mailbox.id),
                                          modseq=max(m for _, m in removed))
        return len(removed)

    async def _trash(self) -> Mailbox | None:
        boxes = await self._store.mailboxes.list(self._mailbox.user_id)
        return next((b for b in boxes if b.special_use == "\\Trash"), None)

    def _wake(self, *mailbox_ids: str) -> None:
        # Sessions of this process at once; other processes through the notifier's
        # watch of the journal.
        if self._notifier is not None:
            self._notifier.publish_nowait(*(mailbox_key(m) for m in mailbox_ids))


def _account(user: User) -> Account:
    return Account(user.id, user.username, user.pop3_folder)


@contextmanager
def _auth_errors() -> Iterator[None]:
    try:
        yield
    except Throttled as exc:
        raise BadCredentials("too many failed logins, try again later") from exc
    except AuthenticationFailed as exc:
        raise BadCredentials("invalid credentials") from exc
    except StoreUnavailable as exc:
        raise Unavailable("authentication is unavailable, try again later") from exc


class StoreBackend:
    """``Pop3Backend`` over duck's store."""

    def __init__(self, store: Store, settings: StoreSettings | None = None,
                 notifier: Notifier | None = None) -> None:
        self._store = store
        self.settings = settings or StoreSettings()
        self._notifier = notifier

    async def authenticate(self, username: str, password: str, *, mechanism: str,
                           peer: str) -> Account:
        """The store's login check (the one IMAP uses): password or application
        password scoped to pop3, the two-factor rule, the shared throttle."""
        try:
            result = await self._store.authenticate(username, password, protocol="pop3",
                                                    mechanism=mechanism, peer=peer)
        except Throttled as exc:
            raise BadCredentials("too many failed logins, try again later") from exc
        except AuthenticationFailed as exc:
            raise BadCredentials("invalid credentials") from exc
        except StoreUnavailable as exc:
            raise Unavailable("authentication is unavailable, try again later") from exc
        return _account(result.user)

    async def scram_start(self, client_first: bytes, *, peer: str) -> tuple[object, bytes]:
        """The store's SCRAM-SHA-256 first step for POP3."""
        with _auth_errors():
            login = await self._store.auth.scram_begin(client_first, protocol="pop3", peer=peer)
        return login, login.server_first

    async def scram_finish(self, state: object, client_final: bytes) -> tuple[Account, bytes]:
        """The store's SCRAM-SHA-256 proof check."""
        assert isinstance(state, ScramLogin)
        with _auth_errors():
            result, final = await self._store.auth.scram_finish(state, client_final)
        return _account(result.user), final

    @asynccontextmanager
    async def open(self, account: Account) -> AsyncIterator[StoreMaildrop]:
        """Lease the user's POP3 folder and list it; release the lease at the end."""
        settings = self.settings
        try:
            mailbox = await self._store.mailboxes.get(account.id, account.maildrop or INBOX)
        except NotFound as exc:
            raise NoMaildrop("the POP3 folder does not exist") from exc
        except StoreUnavailable as exc:
            raise Unavailable("the mail store is unavailable, try again later") from exc
        try:
            got = await self._store.leases.acquire(
                f"pop3:{mailbox.id}", settings.lease_seconds, min_delay=settings.login_delay)
        except StoreUnavailable as exc:
            raise Unavailable("the mail store is unavailable, try again later") from exc
        if isinstance(got, Refusal):
            if got.too_soon:
                raise TooSoon("logged in too recently, try again later")
            raise InUse("the maildrop is in use by another session")
        drop: StoreMaildrop | None = None
        try:
            # A delivery between the mailbox read and the view makes the view's
            # digest read disagree with the count: it then reads the messages.
            entries = await self._entries(mailbox)
            drop = StoreMaildrop(self._store, mailbox, entries, got, settings,
                                 self._notifier)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drop.keep_lease)
                try:
                    yield drop
                finally:
                    nursery.cancel_scope.cancel()
        except StoreUnavailable as exc:
            raise Unavailable("the mail store is unavailable, try again later") from exc
        finally:
            held = got if drop is None else drop.lease
            if held is not None:
                await _release(self._store, held)

    async def _entries(self, mailbox: Mailbox) -> list[Entry]:
        view = await self._store.messages.view(mailbox.id, mailbox)
        uids = [s.uid for s in view][:MAX_MESSAGES]
        entries: list[Entry] = []
        # RFC 1939 §5 gives LIST "the exact size of the message": the stored size is
        # that, octet for octet what RETR sends before stuffing, for every message
        # stored with CRLF line ends (all that SMTP/LMTP deliver). Deviation: a
        # message APPENDed with bare LFs, or without a final line end, is sent with
        # CRLFs made up (duck/pop3/multiline.py) and its size is not recomputed for it;
        # knowing the difference would mean reading every message at login.
        async for batch in self._store.messages.fetch_batches(mailbox.id, uids, ["size"]):
            entries += [Entry(r.uid, int(r.size or 0), r.id) for r in batch]
        return entries


async def _release(store: Store, lease: Lease) -> None:
    """Release ``lease``, shielded from cancellation and bounded in time."""
    with trio.move_on_after(RELEASE_TIMEOUT) as scope:
        scope.shield = True
        try:
            await store.leases.release(lease)
        except StoreError as exc:
            # It runs out by itself after lease_seconds.
            log.warning("POP3 lease release failed: %r", exc)
