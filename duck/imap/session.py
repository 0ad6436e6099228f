"""One IMAP connection: the state machine of RFC 3501 §3 over the grammar's reader.

States are NOT_AUTHENTICATED, AUTHENTICATED, SELECTED and LOGOUT. Commands are
read ahead (whatever the client pipelines is buffered by the reader) and run one
at a time, in order. Each command family lives in ``duck/imap/commands``; this
module frames, dispatches, and keeps the selected mailbox's view current.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import trio

from duck import observe
from duck.store import (
    JournalEntry,
    NotFound,
    StoreError,
    Subscription,
    User,
    mailbox_key,
    metrics,
    normalize_path,
    rights_of,
)

from . import capabilities as caps
from . import notifyfeed, recent
from .commands import REGISTRY
from .context import ANSWERED, Done, ServerContext, State
from .errors import CommandError, from_store_error, response_text
from .grammar.cmd_base import Command
from .grammar.errors import ImapProtocolError
from .grammar.limits import Limits
from .grammar.reader import (
    NEED_DATA,
    AppendLiteral,
    CommandReader,
    ContinuationNeeded,
    LiteralChunk,
    LiteralEnd,
)
from .grammar.resp_codes import (
    SIMPLE_CODES,
    CapabilityCode,
    Code,
    HighestModseq,
    ResponseCode,
)
from .grammar.responses import Completed, Continuation, TaggedStatus, UntaggedStatus
from .incoming import Incoming, keeps
from .limits import LITERAL_COPIES, LITERAL_FREE, PREAUTH_LITERAL_MAX, STREAMED_SHARE
from .namespaces import require
from .notifyfeed import NotifyFeed
from .searchcontext import SearchContexts
from .view import SelectedView
from .wire import StreamClosed, Wire

log = logging.getLogger(__name__)

#: Mailbox ids a session remembers by path (then it starts over).
MAILBOX_IDS = 256

#: After a fatal error, input is discarded for this long / this much before closing.
DRAIN_SECONDS = 2.0
DRAIN_BYTES = 16 * 1024 * 1024
#: Journal entries read per query while catching up.
JOURNAL_BATCH = 10000


class Session:
    """One client connection from greeting to close."""

    def __init__(
        self, ctx: ServerContext, stream: trio.abc.Stream, *, peer: str, tls: bool
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.config = ctx.config
        self.peer = peer
        self.tls = tls
        self.state = State.NOT_AUTHENTICATED
        self.user: User | None = None
        self.view: SelectedView | None = None
        self.subscription: Subscription | None = None
        self.enabled: set[str] = set()
        #: NOTIFY SET in force (RFC 5465), or None.
        self.notify: NotifyFeed | None = None
        #: SEARCH/SORT RETURN (UPDATE) results kept current (RFC 5267 §4.3).
        self.contexts = SearchContexts()
        self.reader = CommandReader(self._limits())
        #: The APPEND literals being streamed into the store (incoming.py).
        self.incoming = Incoming(self.store)
        self.wire: Wire | None = None
        self._stream = stream
        #: While waiting for input: when the wait ends (``time.monotonic()``;
        #: autologout.py ends it). Why a wait was interrupted, once it was.
        self.wait_until: float | None = None
        self._interrupted: str | None = None
        self._user_slot: str | None = None
        self._journal_unread = False
        #: Octets of the literal budget this session holds (``_reserve_literals``).
        self._literal_share = 0
        #: Mailbox ids by path, as SELECT last found them (``watch``).
        self._mailbox_ids: dict[str, str] = {}

    # -- derived state ------------------------------------------------------------------

    @property
    def loopback(self) -> bool:
        """Whether the peer is on this host (plaintext auth is then harmless)."""
        return self.peer in ("127.0.0.1", "::1") or self.peer.startswith("127.")

    @property
    def login_allowed(self) -> bool:
        """RFC 3501 §6.2.3: plaintext passwords only over TLS, loopback, or by config."""
        return self.tls or self.loopback or self.config.allow_plaintext_auth

    @property
    def utf8(self) -> bool:
        """UTF-8 mailbox names and strings: ENABLE UTF8=ACCEPT (RFC 6855) or
        IMAP4rev2 (RFC 9051 §5.1) is in effect."""
        return "UTF8=ACCEPT" in self.enabled or "IMAP4rev2" in self.enabled

    @property
    def rev2(self) -> bool:
        """ENABLE IMAP4rev2 is in effect (RFC 9051): no \\Recent, ESEARCH for SEARCH."""
        return "IMAP4rev2" in self.enabled

    @property
    def condstore(self) -> bool:
        """CONDSTORE is enabled (RFC 7162 §3.1: by ENABLE or a CONDSTORE-using command)."""
        return "CONDSTORE" in self.enabled

    @property
    def qresync(self) -> bool:
        """QRESYNC is enabled: VANISHED replaces EXPUNGE (RFC 7162 §3.2.10)."""
        return "QRESYNC" in self.enabled

    def capabilities(self) -> tuple[str, ...]:
        """CAPABILITY for the current state."""
        return caps.capabilities(
            authenticated=self.state in (State.AUTHENTICATED, State.SELECTED),
            tls=self.tls or self.ctx.ssl_context is None,
            login_allowed=self.login_allowed,
            append_limit=self.config.max_message_size,
        )

    def _limits(self) -> Limits:
        if self.state is State.NOT_AUTHENTICATED:
            return Limits(max_literal=PREAUTH_LITERAL_MAX, max_command=64 * 1024,
                          max_discard=1024 * 1024)
        size = self.config.max_message_size
        return Limits(max_literal=size, max_command=size + 1024 * 1024,
                      max_discard=max(size, 256 * 1024 * 1024))

    # -- output ----------------------------------------------------------------------------

    async def send(self, *responses: Any) -> None:
        """Send responses: at once, or, from the start of a command until the
        session waits for more input, all together (the wire holds them:
        ``_run_command``), so that a command's responses, and those of commands the
        client pipelined, leave in one write. A continuation request and BYE are
        never held: the client answers the first, the connection ends after the
        second."""
        wire = self.wire
        assert wire is not None
        await wire.send(list(responses), utf8=self.utf8)
        if wire.holding and any(isinstance(r, Continuation) or (
                isinstance(r, UntaggedStatus) and r.status == "BYE") for r in responses):
            await wire.release()

    async def send_tagged(
        self, tag: str, status: str, text: str, code: ResponseCode | None = None
    ) -> None:
        """Send a tagged status response."""
        await self.send(TaggedStatus(tag, status, code, text))  # type: ignore[arg-type]

    async def bye(self, text: str, code: ResponseCode | None = None) -> None:
        """``* BYE`` (best effort) and end the session."""
        self.state = State.LOGOUT
        try:
            await self.send(UntaggedStatus("BYE", code, text))
        except StreamClosed:
            pass

    # -- input -----------------------------------------------------------------------------

    async def receive(self) -> bytes | None:
        """Next bytes from the client; None at autologout or shutdown (after BYE)."""
        assert self.wire is not None
        # A command waiting for the client (a SASL response, IDLE's DONE) has sent
        # all it has to send first.
        await self.wire.release()
        if self.ctx.shutdown.is_set():
            await self.bye("server shutting down", Code("UNAVAILABLE"))
            return None
        data = self.wire.receive_ready()
        if data is not None:
            # (Bytes already here, from a pipelining client: no timer to set, but
            # the other tasks run before this one goes on.)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        limits = self.ctx.limits
        limit = (limits.preauth_timeout if self.state is State.NOT_AUTHENTICATED
                 else limits.autologout)
        # (No timer of its own: the server's, autologout.py, interrupts the wait.)
        self.wait_until = time.monotonic() + limit
        try:
            return await self.wire.receive(prompt=self.reader.announced > 0,
                                           ready_checked=True)
        except StreamClosed:
            if self._interrupted is None:
                raise
        finally:
            self.wait_until = None
        if self._interrupted == "shutdown":
            await self.bye("server shutting down", Code("UNAVAILABLE"))
        else:
            await self.bye("autologout: idle for too long")
        return None

    def interrupt_wait(self, reason: str) -> None:
        """End the wait for input under way, if any (``reason``: ``autologout`` or
        ``shutdown``): ``receive`` then says BYE and returns None. The connection
        reads nothing more."""
        if self.wait_until is None or self._interrupted is not None or self.wire is None:
            return
        self._interrupted = reason
        self.wire.interrupt()

    async def read_line(self) -> bytes | None:
        """A raw line (SASL response, IDLE's DONE); None if the session ends."""
        while True:
            line = self.reader.next_line()
            if line is not NEED_DATA:
                assert isinstance(line, bytes)
                return line
            data = await self.receive()
            if data is None:
                return None
            self.reader.receive_data(data)

    # -- main loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Greet, serve commands until LOGOUT/close/shutdown, then clean up."""
        counts = self.ctx.sessions
        counts["open"] = counts.get("open", 0) + 1
        self.ctx.autologout.add(self)
        try:
            async with trio.open_nursery() as nursery:
                self.wire = Wire(self._stream, nursery)
                nursery.start_soon(self._watch_shutdown)
                try:
                    await self._serve()
                    await self.wire.release()  # (LOGOUT's tagged OK after its BYE)
                except StreamClosed:
                    pass
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            counts["open"] -= 1
            self.ctx.autologout.discard(self)
            if self.wire is not None:
                self.ctx.writes += self.wire.writes
            await self.incoming.discard()  # (a connection gone in mid-APPEND)
            self._release_literals()
            self.unselect()
            self._stop_notify()
            if self._user_slot is not None:
                self.ctx.limits.per_user.release(self._user_slot)
                self._user_slot = None

    def _stop_notify(self) -> None:
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    async def _watch_shutdown(self) -> None:
        await self.ctx.shutdown.wait()
        self.interrupt_wait("shutdown")

    async def _serve(self) -> None:
        if self.ctx.shutdown.is_set():
            await self.bye("server shutting down", Code("UNAVAILABLE"))
            return
        await self.send(UntaggedStatus(
            "OK", _capability_code(self.capabilities()), f"{self.config.hostname} duck ready"
        ))
        while self.state is not State.LOGOUT:
            try:
                event = self.reader.next_event()
            except ImapProtocolError as exc:
                self._release_literals()
                await self.incoming.discard()
                if exc.fatal:
                    await self.bye(response_text(exc.message), _code(exc.code))
                    await self._drain()
                    return
                await self._protocol_error(exc)
                continue
            if event is NEED_DATA:
                # Nothing more to do until the client sends more: what is held
                # goes now.
                assert self.wire is not None
                await self.wire.release()
                if self._literal_want() > self._literal_share:
                    await self._reserve_literals()
                # RFC 5465 §5: with NOTIFY set, events are sent while the client
                # is quiet between commands too.
                data = await (self.receive() if self.notify is None
                              else notifyfeed.receive_between_commands(self))
                if data is None:
                    return
                self.reader.receive_data(data)
            elif isinstance(event, ContinuationNeeded):
                await self._literal_decision(event)
            elif isinstance(event, AppendLiteral | LiteralChunk | LiteralEnd):
                await self.incoming.on_event(event, self.config.max_message_size)
                if isinstance(event, AppendLiteral):
                    await self._reserve_literals()
            else:
                assert isinstance(event, Command)
                try:
                    await self._run_command(event)
                finally:
                    self._release_literals()
                    if not self.incoming.idle:
                        await self.incoming.discard()  # (what the command did not take)
                if self.state is not State.LOGOUT and self.ctx.shutdown.is_set():
                    await self.bye("server shutting down", Code("UNAVAILABLE"))

    async def _drain(self) -> None:
        """Swallow what the client is still sending (briefly, boundedly) before the
        close, so that its TCP stack does not reset the connection and drop our BYE."""
        assert self.wire is not None
        total = 0
        with trio.move_on_after(DRAIN_SECONDS):
            while total < DRAIN_BYTES:
                try:
                    total += len(await self.wire.receive())
                except StreamClosed:
                    return

    async def _protocol_error(self, exc: ImapProtocolError) -> None:
        code = _code(exc.code)
        # RFC 7889 §3: a message over APPENDLIMIT is refused with NO [TOOBIG].
        status = "NO" if exc.code == "TOOBIG" else "BAD"
        if exc.tag:
            await self.send_tagged(exc.tag, status, response_text(exc.message), code)
        else:
            await self.send(UntaggedStatus("BAD", code, response_text(exc.message)))

    async def _reserve_literals(self, kept: int = 0, stream: bool = False) -> None:
        """Before reading more of a command with large literals (or asking for one):
        a share of the process's literal budget as large as the command announced,
        its streamed APPEND literals left out unless they are kept whole (``kept``:
        the octets of one about to be asked for that will be), and STREAMED_SHARE
        when it streams one (``stream``: is about to)."""
        want = self._literal_want(kept, stream)
        if want > self._literal_share:
            self._literal_share = await self.ctx.limits.literals.grow(
                self._literal_share, want)

    def _literal_want(self, kept: int = 0, stream: bool = False) -> int:
        """The share ``_reserve_literals`` wants (checked first between commands:
        most want nothing, and the call then costs more than the check)."""
        announced = self.reader.announced + self.incoming.kept + kept
        want = announced * LITERAL_COPIES if announced > LITERAL_FREE else 0
        if stream or self.incoming.streaming:
            want += STREAMED_SHARE
        return want

    def _release_literals(self) -> None:
        self.ctx.limits.literals.release(self._literal_share)
        self._literal_share = 0

    async def _literal_decision(self, event: ContinuationNeeded) -> None:
        limit = self.reader.limits.max_literal
        if event.size > limit:
            self.reader.reject_literal()
            self._release_literals()
            await self.send_tagged(event.tag, "NO", f"literal larger than {limit} octets",
                                   Code("TOOBIG"))
            return
        head = self.reader.stream_head
        kept = head is not None and keeps(event.size, event.binary, head)
        await self._reserve_literals(event.size if kept else 0,
                                     stream=head is not None and not kept)
        self.reader.accept_literal()
        await self.send(Continuation("ready for literal data"))

    async def _run_command(self, cmd: Command) -> None:
        # Database round trips are counted per command (docs/architecture.md, "Sessions and
        # round trips"), the journal reads of the updates sent with it included.
        label = f"UID {cmd.VERB}" if getattr(cmd, "uid", False) else cmd.VERB
        started = time.perf_counter()
        assert self.wire is not None
        self.wire.hold()
        try:
            with metrics.command_scope(label):
                await self._execute(cmd)
        finally:
            observe.current().command("imap", label, time.perf_counter() - started)

    async def _execute(self, cmd: Command) -> None:
        self.ctx.commands += 1
        entry = REGISTRY.get(type(cmd))
        if entry is None:
            await self.send_tagged(cmd.tag, "BAD", f"{cmd.VERB} is not supported",
                                   Code("CANNOT"))
            return
        if self.state not in entry.states:
            await self.send_tagged(
                cmd.tag, "BAD", f"{cmd.VERB} is not allowed in the {self.state.value} state"
            )
            return
        status, code = "OK", None
        text: str | None = None  # (None: the usual "VERB completed")
        try:
            if self.view is not None and self.view.rights is not None:
                await self._check_rights(entry.needs,
                                         selected_only=State.AUTHENTICATED not in entry.states)
            done = await entry.handler(self, cmd)
            if done is ANSWERED:
                return
            if isinstance(done, Done):
                text, code = done.text or text, done.code
        except CommandError as exc:
            status, text, code = exc.status, exc.text, exc.code
        except StoreError as exc:
            err = from_store_error(exc)
            status, text, code = err.status, err.text, err.code
        except ImapProtocolError as exc:
            # From a line read inside a command (SASL response, IDLE's DONE).
            if exc.fatal:
                await self.bye(response_text(exc.message), _code(exc.code))
                await self._drain()
                return
            status, text, code = "BAD", response_text(exc.message), _code(exc.code)
        except (StreamClosed, trio.Cancelled):
            raise
        except Exception:
            log.exception("IMAP %s failed", cmd.VERB)
            status, text, code = "NO", "internal error", Code("SERVERBUG")
        if self.state is State.LOGOUT:
            if status != "OK" or entry.logout_tagged:
                await self.send_tagged(cmd.tag, status, text or f"{cmd.VERB} completed", code)
            return
        tagged: TaggedStatus | Completed
        if status == "OK" and code is None and text is None:
            tagged = Completed(cmd.tag, cmd.VERB)
        else:
            tagged = TaggedStatus(cmd.tag, status, code,  # type: ignore[arg-type]
                                  text or f"{cmd.VERB} completed")
        # The updates and the tagged reply in one write when they can be.
        if self.state is State.SELECTED and entry.updates and await self.flush_updates(
            allow_expunge=entry.allow_expunge(cmd), poll=entry.poll, then=tagged,
        ):
            return
        await self.send(tagged)

    # -- the selected mailbox --------------------------------------------------------------

    async def _check_rights(self, needed: str, *, selected_only: bool) -> None:
        """Before a command on another owner's selected mailbox: its rights as they
        are now, then NO unless ``needed`` is granted.

        The rights read at SELECT are kept until the journal says the ACL changed
        (an ``acl`` entry; the notifier wakes this session for it, from any
        process), so a revocation holds from the next command on and an unchanged
        ACL costs nothing. Losing ``r`` leaves the mailbox: nothing of it is sent
        any more (RFC 4314 §4: without ``r`` nothing is read); a command that needs
        the selected state then fails, any other (LOGOUT, SELECT, LIST...) runs.
        """
        view = self.view
        assert view is not None and view.rights is not None
        sub = self.subscription
        if sub is None or sub.pending() or self._journal_unread:
            # The journal read the command's updates would make anyway, made first.
            self._journal_unread = False
            try:
                await self.sync_view()
            except StoreError as exc:
                log.warning("journal read failed: %r", exc)
        if not await self._still_readable():
            if selected_only:
                raise CommandError("access to the selected mailbox was withdrawn",
                                   code=Code("NOPERM"))
            return
        assert view.rights is not None
        require(view.rights, needed)

    async def _still_readable(self) -> bool:
        """Rights re-read when the journal said the selected (another owner's)
        mailbox's ACL changed; without ``r`` the mailbox is left. Whether it is
        still selected."""
        view = self.view
        assert view is not None and view.rights is not None and self.user is not None
        if view.acl_changed:
            view.acl_changed = False
            try:
                mailbox = await self.store.mailboxes.get_by_id(view.mailbox.id)
                view.rights = rights_of(mailbox, self.user.id, self.user.username)
            except NotFound:
                view.rights = frozenset()
        if "r" in view.rights:
            return True
        self.unselect()
        return False

    def watch(self, path: str) -> Subscription | None:
        """Before SELECT's reads: a subscription to the mailbox this session last
        knew at ``path`` (None when it knows none), so that the reads need no
        journal read after them (``select``'s ``watching``)."""
        try:
            known = self._mailbox_ids.get(normalize_path(path))
        except StoreError:  # (an invalid name: SELECT's read says so)
            return None
        if known is None or self.ctx.notifier is None:
            return None
        return self.ctx.notifier.subscribe(mailbox_key(known))

    def select(self, view: SelectedView, watching: Subscription | None = None) -> None:
        """Make ``view`` the selected mailbox and watch its journal; ``watching``:
        ``watch``'s subscription, made before the view was read."""
        self.unselect()
        self.view = view
        self.state = State.SELECTED
        key = mailbox_key(view.mailbox.id)
        if len(self._mailbox_ids) >= MAILBOX_IDS:
            self._mailbox_ids.clear()
        self._mailbox_ids[view.name or view.mailbox.path] = view.mailbox.id
        if watching is not None and watching.keys == {key}:
            # Subscribed before the reads: a change after them woke it (with its
            # modseq); one before them is in the view.
            self.subscription = watching
            self._journal_unread = False
            return
        if watching is not None:
            watching.close()  # (another mailbox by that name now)
        if self.ctx.notifier is not None:
            self.subscription = self.ctx.notifier.subscribe(key)
        # A change between SELECT's reads and the subscription woke nobody: the
        # next update point reads the journal once regardless.
        self._journal_unread = True

    def unselect(self) -> None:
        """Leave the selected mailbox (no expunge)."""
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None
        self.contexts.clear()
        self.view = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    async def sync_view(self, *, fresh: bool = False, thorough: bool = False) -> None:
        """Bring the view up to date with the journal (one query when nothing is new;
        none when another session here read past what woke this one, unless
        ``fresh``: a poll looks for what no wake-up announced yet; and none where
        this process is the only writer and committed nothing past what it read,
        unless ``thorough``: a read that must see what the database has now)."""
        view = self.view
        if view is None:
            return
        reaching = None
        sub, notifier = self.subscription, self.ctx.notifier
        if sub is not None:
            if not fresh:
                reaching = sub.announced()
            elif (not thorough and notifier is not None
                  and (not sub.pending() or sub.announced() is not None)):
                # A poll looks for changes no wake-up announced; where this process
                # is the only writer there is none past what it committed itself,
                # which its other sessions may then have read already.
                high = notifier.known_high(view.mailbox.id)
                if high is not None:
                    reaching = max(high, sub.announced() or 0)
            sub.clear()
        while True:
            entries = await self.store.journal.changes_since(
                view.mailbox.id, view.modseq, limit=JOURNAL_BATCH, reaching=reaching
            )
            unknown = view.apply(entries)
            if unknown:
                for rec in await self.store.messages.fetch(
                    view.mailbox.id, unknown, ["flags", "modseq"]
                ):
                    view.flags[rec.uid] = view.personal(rec.uid, rec.flags or ())
                    view.modseqs[rec.uid] = rec.modseq or view.modseqs.get(rec.uid, 1)
            if len(entries) < JOURNAL_BATCH:
                break
        view.take_claimed()
        if view.new and not view.readonly:
            # (Waited for a second at most: the claim writes the mailbox document,
            # which a killed process's transaction can hold for a minute; recent.py.)
            await recent.claim(self.store, view, lambda: self.view is view)

    async def flush_updates(self, *, allow_expunge: bool, poll: bool = False,
                            then: Any = None) -> bool:
        """Send pending untagged EXISTS/EXPUNGE/FETCH; read the journal when woken
        (or always, with ``poll``: NOOP, CHECK, IDLE). ``then``: a response to send
        after them in the same write; whether it was sent."""
        view = self.view
        if view is None:
            return False
        # A wake-up for a change the view already has (this session's own write,
        # read back when it published it) costs no query.
        sub = self.subscription
        if poll and self.view_complete():
            poll = False  # (nothing the read could find: no other process writes)
        if poll or self.view_behind:
            await self._read_journal(fresh=poll)
        elif sub is not None and sub.pending():
            sub.clear()  # wake-ups for changes the view already has
        if view.rights is not None and view.acl_changed and not await self._still_readable():
            # Another owner took r away meanwhile: nothing more of it is told.
            await self.send(UntaggedStatus("OK", Code("CLOSED"),
                                           "access to the mailbox was withdrawn"))
            return False
        contexts = self.contexts
        # RFC 5267 §4.3: REMOVEFROM names messages by the numbers they have until
        # their EXPUNGE is sent, ADDTO by those they have once EXISTS is.
        removed = contexts.before_updates(view, allow_expunge=allow_expunge) if contexts else []
        responses = view.updates(allow_expunge=allow_expunge, condstore=self.condstore,
                                 vanished=self.qresync)
        if contexts:
            responses += await contexts.after_updates(self.store, view)
        if view.gone or then is None:
            if removed or responses:
                await self.send(*removed, *responses)
        else:
            await self.send(*removed, *responses, then)
            return True
        if view.gone:
            # RFC 3501 §7.1.5 lets the server end the session when the selected
            # mailbox disappears under it; clients then re-sync from LIST.
            await self.bye("selected mailbox was deleted", Code("NONEXISTENT"))
        return False

    async def _read_journal(self, *, fresh: bool, thorough: bool = False) -> None:
        self._journal_unread = False
        try:
            await self.sync_view(fresh=fresh, thorough=thorough)
        except StoreError as exc:
            # The wake-up was spent on this read (``sync_view`` clears it first),
            # and none may come again for this change: the next update point
            # reads regardless (IDLE comes back for it by itself).
            self._journal_unread = True
            log.warning("journal read failed: %r", exc)

    async def poll_view(self) -> None:
        """Read the journal now, as NOOP's poll does but sending nothing: what a
        wake-up has not announced yet is found too (another session's commit whose
        wake-up this session has not had its turn to take).

        Even where the view is known to have every change (``view_complete``): that
        knowledge follows a commit by a turn of the event loop (the committing
        task hands its entries to the notifier when it runs again), and a query
        answered meanwhile already sees the commit (imaptest found a by-number
        SEARCH that left out a message another session had just expunged, without
        ``EXPUNGEISSUED``). So the read asks the database, not what this process
        knows it committed (``thorough``)."""
        if self.view is not None:
            await self._read_journal(fresh=True, thorough=True)

    async def catch_up(self) -> bool:
        """Before a command that acts on what the view says (STORE, EXPUNGE, STATUS of
        the selected mailbox): read the journal now if a wake-up (or a failed read)
        says the view is behind, without sending anything (the updates go out
        after the command, as always). Whether the view is current: it has every
        change this process made or heard of (another process's follow within
        the change stream's delay)."""
        if self.view is None or self.subscription is None:
            return False  # (no notifier: nothing says what is current)
        if self.view_behind:
            await self._read_journal(fresh=False)  # (a failed read leaves it behind)
        return not self.view_behind

    def view_complete(self) -> bool:
        """Whether the selected view has every change of its mailbox, whoever made
        it, without a read: it has what this process knows (no wake-up past it),
        and this process is the deployment's only writer (notify.py,
        ``knows_every_change``)."""
        view, notifier = self.view, self.ctx.notifier
        return (view is not None and notifier is not None and not self.view_behind
                and notifier.knows_every_change(view.mailbox.id, view.modseq))

    @property
    def view_behind(self) -> bool:
        """Whether the selected view may lag what this process knows: no notifier
        to say otherwise, a wake-up announcing a change past it, or a journal read
        that failed."""
        view, sub = self.view, self.subscription
        return ((view is not None and (sub is None or sub.behind(view.modseq)))
                or self._journal_unread)

    @property
    def journal_unread(self) -> bool:
        """Whether the view may lag the journal with no wake-up to say so (its
        last read failed): the next ``flush_updates`` reads it."""
        return self._journal_unread

    async def enable_condstore(self) -> None:
        """A CONDSTORE-enabling command (RFC 7162 §3.1): CONDSTORE is on from now,
        and when it comes on with a mailbox selected, the client is told that
        mailbox's HIGHESTMODSEQ at once (it had no reason to ask at SELECT)."""
        if "CONDSTORE" in self.enabled:
            return
        self.enabled.add("CONDSTORE")
        if self.view is not None:
            await self.send(UntaggedStatus(
                "OK", HighestModseq(max(self.view.highest_modseq, 1)), "Highest"))

    def wrote(self, mailbox_id: str, entries: list[JournalEntry]) -> bool:
        """This session's own write, described by the journal entries it made: applied
        to the view when they follow on from the view's modseq without a gap (then no
        journal read is needed to learn it), and announced to the other sessions with
        its modseq (a session already past it reads nothing). Whether it was applied."""
        if not entries:
            return False
        ordered = sorted(entries, key=lambda e: e.modseq)
        last = ordered[-1].modseq
        view = self.view
        applied = (view is not None and view.mailbox.id == mailbox_id
                   and [e.modseq for e in ordered]
                   == list(range(view.modseq + 1, view.modseq + 1 + len(ordered))))
        if applied:
            assert view is not None
            view.apply(ordered)
        if self.ctx.notifier is not None:
            self.ctx.notifier.publish_nowait(mailbox_key(mailbox_id), modseq=last)
        return applied

    def changed(self, *mailbox_ids: str) -> None:
        """Wake this process's sessions on these mailboxes now (other processes learn
        through the notifier's change stream); the journal carries the news."""
        if self.ctx.notifier is not None:
            self.ctx.notifier.publish_nowait(*(mailbox_key(m) for m in mailbox_ids))

    # -- authentication --------------------------------------------------------------------

    def login_as(self, user: User) -> None:
        """Enter the AUTHENTICATED state as ``user`` (slot already taken)."""
        self.user = user
        self.state = State.AUTHENTICATED
        self.reader.limits = self._limits()
        self.reader.stream_append = True

    def logout_user(self) -> None:
        """Back to NOT AUTHENTICATED (RFC 8437 UNAUTHENTICATE): the user's slot and
        everything enabled are given up; a TLS layer stays."""
        self.unselect()
        self._stop_notify()
        if self._user_slot is not None:
            self.ctx.limits.per_user.release(self._user_slot)
            self._user_slot = None
        self.user = None
        self.enabled.clear()
        self.reader.utf8_enabled = False
        self.state = State.NOT_AUTHENTICATED
        self.reader.limits = self._limits()
        self.reader.stream_append = False

    def take_user_slot(self, user: User) -> bool:
        """Reserve one of the user's connection slots (per process)."""
        if not self.ctx.limits.per_user.try_acquire(user.id):
            return False
        self._user_slot = user.id
        return True


def _capability_code(values: tuple[str, ...]) -> ResponseCode:
    return CapabilityCode(values)


def _code(name: str | None) -> ResponseCode | None:
    """The grammar's suggested RFC 5530 code, when it is one without arguments."""
    if name and name in SIMPLE_CODES:
        return Code(name)
    return None
