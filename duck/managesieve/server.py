"""The trio ManageSieve server (RFC 5804): one session per connection, driving
``ManageSieveProtocol`` against a ``ManageSieveBackend``.

Passwords travel only over TLS (STARTTLS or the implicit-TLS port) or loopback,
unless ``allow_plaintext_auth`` (RFC 5804 section 2.1 asks for TLS before PLAIN).
Logins go through the store's one login check (the backend's ``authenticate``):
application passwords scoped to managesieve, the two-factor rule, the failed-login
throttle shared with IMAP and POP3 and with every other duck process, the auth log.
"""

from __future__ import annotations

import base64
import binascii
import logging
import ssl
from collections.abc import Awaitable, Callable

import attrs
import trio

from ..net import is_tls, peer_address, serve_tcp
from ..throttle import ConnectionCounter
from ..tls import HandshakeFailed, start_tls
from . import wire
from .backend import Account, BackendError, BadCredentials, ManageSieveBackend
from .protocol import (
    NEED_DATA,
    Command,
    ConnectionClosed,
    ManageSieveProtocol,
    Refused,
    SaslResponse,
    State,
)

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
#: SASL mechanisms that send the password (the IMAP side's:
#: duck/imap/commands/auth.py), offered over TLS or from loopback only.
MECHANISMS = ("PLAIN", "LOGIN")
#: SCRAM sends no password: offered on every connection (RFC 7677).
SCRAM = "SCRAM-SHA-256"
#: Idle seconds before the server says BYE.
IDLE_TIMEOUT = 30 * 60.0


@attrs.frozen
class ManageSieveConfig:
    """Settings of the ManageSieve listeners."""

    hostname: str = "localhost"
    allow_plaintext_auth: bool = False
    idle_timeout: float = IDLE_TIMEOUT
    tls_handshake_timeout: float = 30.0


@attrs.define
class ManageSieveContext:
    """What every session of one server shares."""

    backend: ManageSieveBackend
    config: ManageSieveConfig
    shutdown: trio.Event
    ssl_context: ssl.SSLContext | None = None
    per_ip: ConnectionCounter = attrs.Factory(lambda: ConnectionCounter(32))
    sessions: int = 0
    commands: int = 0

    def statistics(self) -> dict[str, int]:
        """Live sessions and commands run."""
        return {"sessions": self.sessions, "commands": self.commands}


class _Closed(Exception):
    """The session is over."""


class _SaslFailed(Exception):
    """A SASL exchange ended without credentials."""


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _SaslFailed("invalid base64") from None


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _SaslFailed("credentials are UTF-8") from None


def _plain(data: bytes) -> tuple[str, str]:
    """RFC 4616: ``[authzid] NUL authcid NUL passwd``; authzid empty or authcid."""
    parts = data.split(b"\0")
    if len(parts) != 3:
        raise _SaslFailed("malformed PLAIN response")
    authzid, authcid, password = (_utf8(p) for p in parts)
    if authzid and authzid != authcid:
        raise _SaslFailed("cannot act as another user")
    return authcid, password


class Session:
    """One ManageSieve connection."""

    def __init__(self, ctx: ManageSieveContext, stream: trio.abc.Stream, *, peer: str,
                 tls: bool) -> None:
        self.ctx = ctx
        self.stream = stream
        self.peer = peer
        self.tls = tls
        self.proto = ManageSieveProtocol()
        self.account: Account | None = None
        self._out = bytearray()

    @property
    def login_allowed(self) -> bool:
        """Plaintext passwords only over TLS, from loopback, or by config."""
        return (self.tls or self.peer == "::1" or self.peer.startswith("127.")
                or self.ctx.config.allow_plaintext_auth)

    async def flush(self) -> None:
        """Write what is queued."""
        if self._out:
            data, self._out = self._out, bytearray()
            await self.stream.send_all(data)

    async def _next(self) -> object:
        while True:
            event = self.proto.next_event()
            if event is not NEED_DATA:
                return event
            await self.flush()
            with trio.move_on_after(self.ctx.config.idle_timeout) as scope:
                data = await self.stream.receive_some(READ_SIZE)
            if scope.cancelled_caught:
                self._out += wire.bye("idle for too long")
                raise _Closed("idle timeout")
            self.proto.receive_data(bytes(data))

    async def run(self) -> None:
        """Greet, serve commands until LOGOUT, close, shutdown or timeout."""
        self.ctx.sessions += 1
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_shutdown, nursery.cancel_scope)
                try:
                    await self._serve()
                except _Closed as exc:
                    log.debug("ManageSieve session from %s ended: %s", self.peer, exc)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                try:
                    await self.flush()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                nursery.cancel_scope.cancel()
        finally:
            self.ctx.sessions -= 1

    async def _watch_shutdown(self, scope: trio.CancelScope) -> None:
        await self.ctx.shutdown.wait()
        with trio.move_on_after(2):
            try:
                await self.stream.send_all(bytes(self._out) + wire.bye("server shutting down"))
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                pass
        scope.cancel()

    async def _serve(self) -> None:
        self._out += self.capabilities()
        self._out += wire.ok(f"{self.ctx.config.hostname} duck ManageSieve ready")
        while True:
            event = await self._next()
            if isinstance(event, ConnectionClosed):
                return
            if isinstance(event, Refused):
                self._out += event.response
                if event.fatal:
                    self._out += wire.bye("too many errors")
                    return
                continue
            if isinstance(event, SaslResponse):
                continue
            assert isinstance(event, Command)
            self.ctx.commands += 1
            try:
                await _HANDLERS[event.name](self, event)
            except BackendError as exc:
                self._out += wire.no(str(exc) or "failed", exc.code)
            if self.proto.state is State.LOGOUT:
                return

    # -- commands ------------------------------------------------------------------

    def capabilities(self) -> bytes:
        """The capability lines (RFC 5804 section 1.7), without the OK."""
        backend = self.ctx.backend
        lines: list[tuple[str, str | None]] = [
            ("IMPLEMENTATION", "duck"), ("SIEVE", backend.extensions)]
        if self.login_allowed:
            lines.append(("SASL", " ".join((*MECHANISMS, SCRAM))))
        else:
            lines.append(("SASL", SCRAM))
        if self.ctx.ssl_context is not None and not self.tls and self.account is None:
            lines.append(("STARTTLS", None))
        lines.append(("MAXREDIRECTS", str(backend.limits.max_redirects)))
        if self.account is not None:
            lines.append(("OWNER", self.account.name))
        lines += [("UNAUTHENTICATE", None), ("VERSION", "1.0")]
        out = bytearray()
        for key, value in lines:
            out += wire.string(key)
            if value is not None:
                out += b" " + wire.string(value)
            out += b"\r\n"
        return bytes(out)

    async def capability(self, cmd: Command) -> None:
        """CAPABILITY (RFC 5804 section 2.4)."""
        self._out += self.capabilities() + wire.ok("capability completed")

    async def logout(self, cmd: Command) -> None:
        """LOGOUT (section 2.3)."""
        self.proto.logout()
        self._out += wire.ok("logout completed")

    async def noop(self, cmd: Command) -> None:
        """NOOP (section 2.13), echoing its tag in a TAG code."""
        tag = cmd.args[0]
        code = wire.code_with_string("TAG", tag) if isinstance(tag, str) else None
        self._out += wire.ok("done", code)

    async def starttls(self, cmd: Command) -> None:
        """STARTTLS (section 2.2): then the capabilities again, unasked."""
        context = self.ctx.ssl_context
        if context is None or self.tls:
            self._out += wire.no("STARTTLS is not available on this connection")
            return
        if self.proto.buffered:
            # Plaintext pipelined after STARTTLS could be injected (CVE-2011-0411).
            self._out += wire.no("data after STARTTLS before the TLS handshake")
            return
        self._out += wire.ok("begin TLS negotiation")
        await self.flush()
        try:
            self.stream = await start_tls(self.stream, context,
                                          self.ctx.config.tls_handshake_timeout)
        except HandshakeFailed as exc:
            raise _Closed(str(exc)) from exc
        self.tls = True
        self._out += self.capabilities() + wire.ok("TLS negotiation successful")

    async def authenticate(self, cmd: Command) -> None:
        """AUTHENTICATE (section 2.1): PLAIN (RFC 4616), LOGIN and SCRAM-SHA-256."""
        mechanism = str(cmd.args[0]).upper()
        if mechanism == SCRAM:
            await self._scram(cmd)
            return
        if mechanism not in MECHANISMS:
            self._out += wire.no(f"unsupported mechanism {mechanism[:20]}")
            return
        if not self.login_allowed:
            self._out += wire.no("use STARTTLS before authenticating", "ENCRYPT-NEEDED")
            return
        initial = cmd.args[1]
        try:
            if mechanism == "LOGIN":
                data = (_b64(initial) if isinstance(initial, str)
                        else await self._sasl(b"Username:"))
                username = _utf8(data)
                password = _utf8(await self._sasl(b"Password:"))
            else:
                data = _b64(initial) if isinstance(initial, str) else await self._sasl(b"")
                username, password = _plain(data)
        except _SaslFailed as exc:
            self._out += wire.no(str(exc))
            return
        try:
            account = await self.ctx.backend.authenticate(
                username, password, mechanism=mechanism, peer=self.peer)
        except BadCredentials as exc:
            self._out += wire.no(str(exc) or "authentication failed")
            return
        self._logged_in(account)

    def _logged_in(self, account: Account, code: str | None = None) -> None:
        self.account = account
        self.proto.authenticated()
        log.info("ManageSieve login %s from %s", account.name, self.peer)
        self._out += wire.ok("authenticated", code)

    async def _scram(self, cmd: Command) -> None:
        """SCRAM-SHA-256 (RFC 7677): server-first as a challenge; server-final in
        the OK's SASL code (RFC 5804 section 2.1)."""
        initial = cmd.args[1]
        backend = self.ctx.backend
        try:
            first = _b64(initial) if isinstance(initial, str) else await self._sasl(b"")
            state, server_first = await backend.scram_start(first, peer=self.peer)
            final = await self._sasl(server_first)
            account, server_final = await backend.scram_finish(state, final)
        except _SaslFailed as exc:
            self._out += wire.no(str(exc))
            return
        except BadCredentials as exc:
            self._out += wire.no(str(exc) or "authentication failed")
            return
        code = wire.code_with_string("SASL", base64.b64encode(server_final).decode("ascii"))
        self._logged_in(account, code)

    async def _sasl(self, challenge: bytes) -> bytes:
        self._out += wire.string(base64.b64encode(challenge).decode("ascii")) + b"\r\n"
        self.proto.expect_sasl()
        event = await self._next()
        if isinstance(event, ConnectionClosed):
            raise _Closed("closed during AUTHENTICATE")
        if isinstance(event, Refused):
            raise _SaslFailed("bad answer to the challenge")
        assert isinstance(event, SaslResponse)
        if event.value.strip() == "*":
            raise _SaslFailed("authentication cancelled")
        return _b64(event.value.strip())

    def _me(self) -> Account:
        assert self.account is not None  # the machine refuses these before AUTH
        return self.account

    async def unauthenticate(self, cmd: Command) -> None:
        """UNAUTHENTICATE (RFC 5804 section 2.14)."""
        self.account = None
        self.proto.unauthenticated()
        self._out += wire.ok("unauthenticated")

    async def havespace(self, cmd: Command) -> None:
        """HAVESPACE (section 2.5)."""
        name, size = cmd.args
        assert isinstance(name, str) and isinstance(size, int)
        await self.ctx.backend.have_space(self._me(), name, size)
        self._out += wire.ok("putscript would succeed")

    async def putscript(self, cmd: Command) -> None:
        """PUTSCRIPT (section 2.6): checked, then stored."""
        name, source = cmd.args
        assert isinstance(name, str) and isinstance(source, str)
        await self.ctx.backend.put(self._me(), name, source)
        self._out += wire.ok("stored")

    async def checkscript(self, cmd: Command) -> None:
        """CHECKSCRIPT (section 2.12): the interpreter's own message on an error."""
        source = cmd.args[0]
        assert isinstance(source, str)
        self.ctx.backend.check(source)
        self._out += wire.ok("script is valid")

    async def listscripts(self, cmd: Command) -> None:
        """LISTSCRIPTS (section 2.7)."""
        for name, active in await self.ctx.backend.list(self._me()):
            self._out += wire.string(name) + (b" ACTIVE" if active else b"") + b"\r\n"
        self._out += wire.ok("listscripts completed")

    async def setactive(self, cmd: Command) -> None:
        """SETACTIVE (section 2.8); "" deactivates."""
        name = cmd.args[0]
        assert isinstance(name, str)
        await self.ctx.backend.set_active(self._me(), name)
        self._out += wire.ok("active script set" if name else "no script active")

    async def getscript(self, cmd: Command) -> None:
        """GETSCRIPT (section 2.9): the script as a literal."""
        name = cmd.args[0]
        assert isinstance(name, str)
        source = await self.ctx.backend.get(self._me(), name)
        data = source.encode("utf-8")
        self._out += b"{%d}\r\n" % len(data) + data + b"\r\n" + wire.ok("getscript completed")

    async def deletescript(self, cmd: Command) -> None:
        """DELETESCRIPT (section 2.10)."""
        name = cmd.args[0]
        assert isinstance(name, str)
        await self.ctx.backend.delete(self._me(), name)
        self._out += wire.ok("deleted")

    async def renamescript(self, cmd: Command) -> None:
        """RENAMESCRIPT (section 2.11)."""
        old, new = cmd.args
        assert isinstance(old, str) and isinstance(new, str)
        await self.ctx.backend.rename(self._me(), old, new)
        self._out += wire.ok("renamed")


_HANDLERS: dict[str, Callable[[Session, Command], Awaitable[None]]] = {
    "AUTHENTICATE": Session.authenticate, "STARTTLS": Session.starttls,
    "LOGOUT": Session.logout, "CAPABILITY": Session.capability, "HAVESPACE": Session.havespace,
    "PUTSCRIPT": Session.putscript, "LISTSCRIPTS": Session.listscripts,
    "SETACTIVE": Session.setactive, "GETSCRIPT": Session.getscript,
    "DELETESCRIPT": Session.deletescript, "RENAMESCRIPT": Session.renamescript,
    "CHECKSCRIPT": Session.checkscript, "NOOP": Session.noop,
    "UNAUTHENTICATE": Session.unauthenticate,
}


async def serve_managesieve(
    ctx: ManageSieveContext,
    host: str,
    port: int,
    *,
    implicit_tls: bool = False,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ManageSieve on ``host:port``; with ``implicit_tls`` the connection is
    TLS from the start, otherwise STARTTLS is offered when ``ctx.ssl_context`` is set."""
    if implicit_tls and ctx.ssl_context is None:
        raise ValueError("implicit TLS needs an SSL context")

    async def handler(stream: trio.abc.Stream) -> None:
        peer, _ = peer_address(stream)
        if not ctx.per_ip.try_acquire(peer):
            await stream.send_all(wire.bye("too many connections from your address",
                                           "TRYLATER"))
            return
        try:
            await Session(ctx, stream, peer=peer, tls=is_tls(stream)).run()
        finally:
            ctx.per_ip.release(peer)

    await serve_tcp(
        handler, host, port, name="ManageSieve (TLS)" if implicit_tls else "ManageSieve",
        shutdown=ctx.shutdown, ssl_context=ctx.ssl_context if implicit_tls else None,
        task_status=task_status,
    )
