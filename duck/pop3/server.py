"""The trio POP3 server: one session per connection, driving ``Pop3Protocol``
against a ``Pop3Backend``.

Replies to pipelined commands (RFC 2449 §6.6) are gathered and written when the
machine needs more input, so a pipelined batch costs one write; RETR and TOP
stream the message from the backend in its chunks, never holding it whole.
A session that ends without QUIT (a dropped connection, the autologout timer,
shutdown) never enters the UPDATE state: nothing is deleted (RFC 1939 §6).
"""

from __future__ import annotations

import base64
import binascii
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, aclosing
from typing import Any

import attrs
import trio

from .. import observe
from ..net import is_tls, peer_address, serve_tcp
from ..store import metrics
from ..throttle import ConnectionCounter
from ..tls import HandshakeFailed, start_tls
from . import replies
from .backend import (
    Account,
    BackendError,
    BadCredentials,
    InUse,
    LeaseLost,
    MessageGone,
    NoMaildrop,
    OpenMaildrop,
    Pop3Backend,
    TooSoon,
)
from .commands import (
    Apop,
    Auth,
    Capa,
    Command,
    Dele,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
)
from .maildrop import Entry, Maildrop, NoSuchMessage
from .multiline import DotStuffer, TopFilter
from .protocol import (
    NEED_DATA,
    ConnectionClosed,
    Pop3Protocol,
    Refused,
    SaslResponse,
    State,
)
from .replies import Reply, err, ok

log = logging.getLogger(__name__)

#: RFC 1939 §3: an autologout timer, if any, MUST be at least 10 minutes.
AUTOLOGOUT = 10 * 60.0
#: Output gathered from pipelined replies before it is written regardless.
FLUSH_AT = 64 * 1024
READ_SIZE = 64 * 1024
#: SASL mechanisms offered (the IMAP side's: duck/imap/commands/auth.py).
MECHANISMS = ("PLAIN", "LOGIN")
#: Mechanisms that send no password: offered on every connection (RFC 7677).
SCRAM = "SCRAM-SHA-256"


@attrs.frozen
class Pop3Config:
    """Settings of the POP3 listeners."""

    hostname: str = "localhost"
    #: USER/PASS and AUTH without TLS from non-loopback peers (RFC 2595 §2.2).
    allow_plaintext_auth: bool = False
    #: RFC 2449 §6.7 EXPIRE: "NEVER", or days; 0 removes retrieved messages at QUIT.
    expire: str = "NEVER"
    #: RFC 2449 §6.5 LOGIN-DELAY in seconds (0: not advertised; the backend enforces).
    login_delay: int = 0
    autologout: float = AUTOLOGOUT
    tls_handshake_timeout: float = 30.0

    def __attrs_post_init__(self) -> None:
        if self.expire != "NEVER" and not (self.expire.isdigit() and len(self.expire) < 6):
            raise ValueError("expire must be NEVER or a number of days")


@attrs.define
class Pop3Context:
    """What every session of one server shares."""

    backend: Pop3Backend
    config: Pop3Config
    shutdown: trio.Event
    ssl_context: ssl.SSLContext | None = None
    per_ip: ConnectionCounter = attrs.Factory(lambda: ConnectionCounter(64))
    sessions: int = 0
    commands: int = 0

    def statistics(self) -> dict[str, int]:
        """Live sessions and commands run."""
        return {"sessions": self.sessions, "commands": self.commands}


class _SaslFailed(Exception):
    """A SASL exchange ended without credentials; ``reply`` says why."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply


def _b64(text: bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _SaslFailed(err("invalid base64")) from None


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _SaslFailed(err(f"the {what} is not UTF-8")) from None


def _plain(data: bytes) -> tuple[str, str]:
    """RFC 4616: ``[authzid] NUL authcid NUL passwd``; authzid empty or authcid."""
    parts = data.split(b"\0")
    if len(parts) != 3:
        raise _SaslFailed(err("malformed PLAIN response"))
    authzid, authcid, password = (_utf8(p, "PLAIN response") for p in parts)
    if authzid and authzid != authcid:
        raise _SaslFailed(err("cannot act as another user", replies.AUTH))
    return authcid, password


class _Closed(Exception):
    """The session is over (peer gone, timeout, shutdown, QUIT, too many errors)."""


class Session:
    """One POP3 connection from greeting to close."""

    def __init__(self, ctx: Pop3Context, stream: trio.abc.Stream, *, peer: str,
                 tls: bool) -> None:
        self.ctx = ctx
        self.stream = stream
        self.peer = peer
        self.tls = tls
        self.proto = Pop3Protocol()
        self.maildrop: Maildrop | None = None
        self.store_drop: OpenMaildrop | None = None
        self._out = bytearray()
        self._retrieved: set[int] = set()
        self._stack = AsyncExitStack()

    @property
    def login_allowed(self) -> bool:
        """RFC 2595 §2.2: plaintext passwords only over TLS, loopback, or by config."""
        return (self.tls or self.peer in ("::1",) or self.peer.startswith("127.")
                or self.ctx.config.allow_plaintext_auth)

    # -- I/O -------------------------------------------------------------------------

    def reply(self, reply: Reply) -> None:
        """Queue a status line."""
        self._out += reply.encode()

    async def flush(self) -> None:
        """Write what is queued."""
        if self._out:
            # Hand the buffer over as it is (no copy) and start a new one.
            data, self._out = self._out, bytearray()
            await self.stream.send_all(data)

    async def _receive(self) -> bytes:
        with trio.move_on_after(self.ctx.config.autologout) as scope:
            data = await self.stream.receive_some(READ_SIZE)
        if scope.cancelled_caught:
            raise _Closed("autologout")
        return bytes(data)

    async def _next(self) -> object:
        """The next protocol event, reading as needed (replies are flushed first)."""
        while True:
            event = self.proto.next_event()
            if event is not NEED_DATA:
                return event
            await self.flush()
            self.proto.receive_data(await self._receive())

    # -- the session -----------------------------------------------------------------

    async def run(self) -> None:
        """Greet, serve commands until QUIT, close, shutdown or timeout."""
        self.ctx.sessions += 1
        try:
            async with trio.open_nursery() as nursery:
                scope = nursery.cancel_scope
                nursery.start_soon(self._watch_shutdown, scope)
                try:
                    # The maildrop (and its lease) is released on leaving the stack,
                    # however the session ends.
                    async with self._stack:
                        await self._serve()
                except _Closed as exc:
                    log.debug("POP3 session from %s ended: %s", self.peer, exc)
                finally:
                    scope.cancel()
        finally:
            self.ctx.sessions -= 1

    async def _watch_shutdown(self, scope: trio.CancelScope) -> None:
        # No unsolicited replies in POP3: at shutdown a session just closes, and
        # without QUIT nothing is deleted (RFC 1939 §6).
        await self.ctx.shutdown.wait()
        scope.cancel()

    async def _serve(self) -> None:
        self.reply(ok(f"{self.ctx.config.hostname} duck POP3 ready"))
        while True:
            event = await self._next()
            if isinstance(event, ConnectionClosed):
                return
            if isinstance(event, Refused):
                self.reply(event.reply)
                if self.proto.too_many_errors:
                    await self.flush()
                    return
                continue
            if isinstance(event, SaslResponse):  # never unasked: expect_sasl reads it
                continue
            assert isinstance(event, Command)
            self.ctx.commands += 1
            # Database round trips per command, as IMAP counts them (bench/).
            started = time.perf_counter()
            with metrics.command_scope(f"POP3 {event.VERB}"):
                try:
                    await self._dispatch(event)
                except BackendError as exc:
                    self.reply(err(str(exc), replies.SYS_TEMP))
            observe.current().command("pop3", event.VERB, time.perf_counter() - started)
            if self.proto.state is State.UPDATE:
                await self.flush()
                return
            if len(self._out) >= FLUSH_AT:
                await self.flush()

    async def _dispatch(self, cmd: Command) -> None:
        handler = _HANDLERS[type(cmd)]
        await handler(self, cmd)

    # -- AUTHORIZATION ---------------------------------------------------------------

    def capabilities(self) -> list[str]:
        """CAPA for the current state (RFC 2449 §5)."""
        config = self.ctx.config
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                f"EXPIRE {config.expire}"]
        if config.login_delay:
            caps.append(f"LOGIN-DELAY {config.login_delay}")
        if self.proto.state is State.AUTHORIZATION:
            if self.login_allowed:
                caps += ["USER", "SASL " + " ".join((*MECHANISMS, SCRAM))]
            else:
                caps.append("SASL " + SCRAM)
            if self.ctx.ssl_context is not None and not self.tls:
                caps.append("STLS")
        caps.append("IMPLEMENTATION duck")
        return caps

    async def capa(self, cmd: Capa) -> None:
        """CAPA (RFC 2449 §5)."""
        self._out += replies.listing(ok("Capability list follows"), self.capabilities())

    def _plaintext_refused(self) -> bool:
        if self.login_allowed:
            return False
        self.reply(err("plaintext authentication is disabled: use STLS or the TLS port",
                       replies.AUTH))
        return True

    async def user(self, cmd: User) -> None:
        """USER (RFC 1939 §7): whether the user exists is only said after PASS."""
        if self._plaintext_refused():
            return
        self.proto.user = cmd.name
        self.reply(ok("send PASS"))

    async def pass_(self, cmd: Pass) -> None:
        """PASS (RFC 1939 §7)."""
        name, self.proto.user = self.proto.user, None
        assert name is not None  # the machine refuses PASS without USER
        await self._login(name, cmd.password, "USER")

    async def apop(self, cmd: Apop) -> None:
        """APOP is not offered (no timestamp in the greeting, RFC 1939 §7)."""
        self.reply(err("APOP is not supported", replies.AUTH))

    async def auth(self, cmd: Auth) -> None:
        """AUTH (RFC 5034 §4): PLAIN (RFC 4616) or LOGIN (draft-murchison-sasl-login),
        with or without an initial response."""
        if cmd.mechanism is None:
            # Not in RFC 5034: the listing many clients still probe with.
            self._out += replies.listing(ok("SASL mechanisms follow"), (*MECHANISMS, SCRAM))
            return
        if cmd.mechanism == SCRAM:
            await self._scram(cmd)
            return
        if cmd.mechanism not in MECHANISMS:
            self.reply(err(f"unsupported mechanism {cmd.mechanism[:20]}"))
            return
        if self._plaintext_refused():
            return
        try:
            initial = None
            if cmd.initial_response is not None:
                # RFC 5034 §4: "=" is an empty initial response.
                initial = (b"" if cmd.initial_response == "="
                           else _b64(cmd.initial_response.encode()))
            mechanism = cmd.mechanism
            if cmd.mechanism == "LOGIN":
                # draft-murchison-sasl-login §2: "Username:" then "Password:", each
                # answered with the value alone; an initial response is the user name.
                data = initial if initial is not None else await self._sasl(b"Username:")
                username = _utf8(data, "user name")
                password = _utf8(await self._sasl(b"Password:"), "password")
            else:
                data = initial if initial is not None else await self._sasl(b"")
                username, password = _plain(data)
        except _SaslFailed as exc:
            self.reply(exc.reply)
            return
        await self._login(username, password, mechanism)

    async def _scram(self, cmd: Auth) -> None:
        """AUTH SCRAM-SHA-256 (RFC 5034 §4, RFC 7677): server-first and then
        server-final as challenges; the client answers the last with an empty line."""
        backend = self.ctx.backend
        try:
            if cmd.initial_response is not None:
                first = (b"" if cmd.initial_response == "="
                         else _b64(cmd.initial_response.encode()))
            else:
                first = await self._sasl(b"")
            state, server_first = await backend.scram_start(first, peer=self.peer)
            final = await self._sasl(server_first)
            account, server_final = await backend.scram_finish(state, final)
            await self._sasl(server_final)
        except _SaslFailed as exc:
            self.reply(exc.reply)
            return
        except BadCredentials as exc:
            self.reply(err(str(exc), replies.AUTH))
            return
        await self._open(account)

    async def _sasl(self, challenge: bytes) -> bytes:
        """Send a challenge and read the client's base64 answer (RFC 5034 §4: ``*``
        cancels the exchange)."""
        self._out += replies.continuation(base64.b64encode(challenge))
        self.proto.expect_sasl()
        event = await self._next()
        if isinstance(event, ConnectionClosed):
            raise _Closed("closed during AUTH")
        if isinstance(event, Refused):
            raise _SaslFailed(event.reply)
        assert isinstance(event, SaslResponse)
        text = event.line.strip()
        if text == b"*":
            raise _SaslFailed(err("authentication cancelled"))
        return _b64(text)

    async def _login(self, username: str, password: str, mechanism: str) -> None:
        """Check credentials (the backend holds failures back), then take the maildrop."""
        try:
            account = await self.ctx.backend.authenticate(username, password,
                                                          mechanism=mechanism, peer=self.peer)
        except BadCredentials as exc:
            self.reply(err(str(exc), replies.AUTH))
            return
        await self._open(account)

    async def _open(self, account: Account) -> None:
        """Take the account's maildrop after a successful login."""
        try:
            drop = await self._stack.enter_async_context(self.ctx.backend.open(account))
        except InUse as exc:
            self.reply(err(str(exc), replies.IN_USE))
            return
        except TooSoon as exc:
            self.reply(err(str(exc), replies.LOGIN_DELAY))
            return
        except NoMaildrop as exc:
            self.reply(err(str(exc), replies.SYS_PERM))
            return
        self.store_drop = drop
        self.maildrop = Maildrop(drop.entries)
        self.proto.logged_in()
        count, size = self.maildrop.stat()
        log.info("POP3 login %s from %s", account.name, self.peer)
        self.reply(ok(f"{account.name} has {count} messages ({size} octets)"))

    async def stls(self, cmd: Stls) -> None:
        """STLS (RFC 2595 §4)."""
        context = self.ctx.ssl_context
        if context is None or self.tls:
            self.reply(err("STLS is not available on this connection"))
            return
        if self.proto.buffered:
            # Plaintext sent after STLS could be injected by a man in the middle
            # (CVE-2011-0411): refuse rather than read it as if protected.
            self.reply(err("data after STLS before the TLS handshake"))
            return
        self.reply(ok("begin TLS negotiation"))
        await self.flush()
        try:
            self.stream = await start_tls(self.stream, context,
                                          self.ctx.config.tls_handshake_timeout)
        except HandshakeFailed as exc:
            raise _Closed(str(exc)) from exc
        self.tls = True
        self.proto.tls_started()

    # -- TRANSACTION -----------------------------------------------------------------

    def _drop(self) -> Maildrop:
        assert self.maildrop is not None
        return self.maildrop

    async def stat(self, cmd: Stat) -> None:
        """STAT (RFC 1939 §5)."""
        count, size = self._drop().stat()
        self.reply(ok(f"{count} {size}"))

    async def list_(self, cmd: List | Uidl) -> None:
        """LIST and UIDL (RFC 1939 §5, §7), of one message or all."""
        drop = self._drop()

        def field(entry: Entry) -> str:
            return str(entry.size) if isinstance(cmd, List) else entry.unique_id

        if cmd.msg is not None:
            try:
                entry = drop.get(cmd.msg)
            except NoSuchMessage as exc:
                self.reply(err(str(exc)))
                return
            self.reply(ok(f"{cmd.msg} {field(entry)}"))
            return
        count, size = drop.stat()
        head = ok(f"{count} messages ({size} octets)") if isinstance(cmd, List) else ok()
        self._out += replies.listing(head, (f"{n} {field(e)}" for n, e in drop.listing()))

    async def retr(self, cmd: Retr | Top) -> None:
        """RETR and TOP (RFC 1939 §5, §7): the message streamed, CRLF, dot-stuffed."""
        drop = self._drop()
        try:
            entry = drop.get(cmd.msg)
        except NoSuchMessage as exc:
            self.reply(err(str(exc)))
            return
        assert self.store_drop is not None
        top = TopFilter(cmd.lines) if isinstance(cmd, Top) else None
        async with aclosing(self.store_drop.read(entry.uid)) as chunks:
            try:
                first = await _first(chunks)
            except MessageGone as exc:
                drop.gone(cmd.msg)
                self.reply(err(f"message {cmd.msg}: {exc}"))
                return
            head = f"{entry.size} octets" if top is None else "top of message follows"
            self.reply(ok(head))
            stuffer = DotStuffer()
            chunk = first
            while chunk is not None:
                if top is not None:
                    chunk = top.feed(chunk)
                self._out += stuffer.feed(chunk)
                if len(self._out) >= FLUSH_AT:
                    await self.flush()
                if top is not None and top.done:
                    break
                try:
                    chunk = await _first(chunks)
                except MessageGone as exc:
                    # Too late for -ERR: the +OK line is out. Hanging up is the only
                    # way left to tell the client the message is incomplete.
                    raise _Closed(f"message vanished while sent: {exc}") from exc
            self._out += stuffer.end()
        if top is None:
            self._retrieved.add(cmd.msg)

    async def dele(self, cmd: Dele) -> None:
        """DELE (RFC 1939 §5): marked now, removed at QUIT."""
        try:
            self._drop().delete(cmd.msg)
        except NoSuchMessage as exc:
            self.reply(err(str(exc)))
            return
        self.reply(ok(f"message {cmd.msg} deleted"))

    async def noop(self, cmd: Noop) -> None:
        """NOOP (RFC 1939 §5)."""
        self.reply(ok())

    async def rset(self, cmd: Rset) -> None:
        """RSET (RFC 1939 §5)."""
        drop = self._drop()
        drop.reset()
        count, size = drop.stat()
        self.reply(ok(f"maildrop has {count} messages ({size} octets)"))

    async def quit(self, cmd: Quit) -> None:
        """QUIT (RFC 1939 §4, §6): in TRANSACTION, the UPDATE state removes the
        deleted messages, in one store operation."""
        hostname = self.ctx.config.hostname
        if self.maildrop is None:
            self.proto.quit()
            self.reply(ok(f"{hostname} duck POP3 signing off"))
            return
        self.proto.quit()
        assert self.store_drop is not None
        numbers = set(self.maildrop.deleted_numbers())
        if self.ctx.config.expire == "0":
            # RFC 2449 §6.7: with EXPIRE 0 no retrieved message is left on the server.
            numbers |= {n for n in self._retrieved if self.maildrop.exists(n)}
        uids = sorted(self.maildrop.entries[n - 1].uid for n in numbers)
        try:
            with trio.CancelScope(shield=True):  # a shutdown does not cut UPDATE short
                try:
                    removed = await self.store_drop.remove(uids)
                finally:
                    await self.store_drop.release()
        except LeaseLost as exc:
            self.reply(err(str(exc), replies.SYS_TEMP))
            return
        except BackendError as exc:
            self.reply(err(f"some deleted messages not removed: {exc}", replies.SYS_TEMP))
            return
        self.reply(ok(f"{hostname} duck POP3 signing off ({removed} messages deleted)"))


async def _first(chunks: AsyncIterator[bytes]) -> bytes | None:
    """The next chunk, or None at the end."""
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


_HANDLERS: dict[type[Command], Callable[[Session, Any], Awaitable[None]]] = {
    Capa: Session.capa, User: Session.user, Pass: Session.pass_, Apop: Session.apop,
    Auth: Session.auth, Stls: Session.stls, Stat: Session.stat, List: Session.list_,
    Uidl: Session.list_, Retr: Session.retr, Top: Session.retr, Dele: Session.dele,
    Noop: Session.noop, Rset: Session.rset, Quit: Session.quit,
}


async def serve_pop3(
    ctx: Pop3Context,
    host: str,
    port: int,
    *,
    implicit_tls: bool = False,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve POP3 on ``host:port``; with ``implicit_tls`` the whole connection is TLS
    (the POP3S port, RFC 8314), otherwise STLS is offered when ``ctx.ssl_context`` is set."""
    if implicit_tls and ctx.ssl_context is None:
        raise ValueError("implicit TLS needs an SSL context")

    async def handler(stream: trio.abc.Stream) -> None:
        peer, _ = peer_address(stream)
        if not ctx.per_ip.try_acquire(peer):
            await stream.send_all(err("too many connections from your address",
                                      replies.SYS_TEMP).encode())
            return
        try:
            await Session(ctx, stream, peer=peer, tls=is_tls(stream)).run()
        finally:
            ctx.per_ip.release(peer)

    await serve_tcp(
        handler, host, port, name="POP3S" if implicit_tls else "POP3", shutdown=ctx.shutdown,
        ssl_context=ctx.ssl_context if implicit_tls else None, task_status=task_status,
    )
