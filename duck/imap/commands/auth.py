"""Authentication: LOGIN, AUTHENTICATE PLAIN (RFC 4616), LOGIN
(draft-murchison-sasl-login) and SCRAM-SHA-256 (RFC 5802, RFC 7677) with SASL-IR
(RFC 4959), STARTTLS.

Plaintext credentials are refused on a non-TLS connection from a non-loopback
peer unless the configuration allows them (RFC 3501 §6.2.3, LOGINDISABLED).
SCRAM sends no password, so it is offered on every connection. Every check is the
store's one login entry point (``store.authenticate``): application passwords,
the two-factor rule, the throttle shared by every process, the auth log.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import TYPE_CHECKING

from duck.store import (
    SCRAM_SHA_256,
    AuthenticationFailed,
    AuthResult,
    StoreUnavailable,
    Throttled,
)

from ...tls import HandshakeFailed, start_tls
from ..context import ANSWERED, Done
from ..errors import CommandError, bad, no
from ..grammar.cmd_any import Authenticate, Login, StartTLS, Unauthenticate
from ..grammar.reader import CommandReader
from ..grammar.resp_codes import CapabilityCode
from ..grammar.responses import Continuation, SaslChallenge
from ..wire import StreamClosed
from .registry import command
from .states import AUTHENTICATED, NOT_AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext

log = logging.getLogger(__name__)


def _check_allowed(s: CommandContext) -> None:
    if not s.login_allowed:
        raise CommandError(
            "plaintext authentication is disabled: use STARTTLS or the TLS port",
            status="NO", code="PRIVACYREQUIRED",
        )


async def _authenticate(s: CommandContext, username: str, password: str,
                        mechanism: str) -> Done:
    """Check credentials (the store holds back failures); enter AUTHENTICATED."""
    try:
        result = await s.store.authenticate(username, password, protocol="imap",
                                            mechanism=mechanism, peer=s.peer)
    except Throttled:
        raise no("too many failed logins, try again later", "UNAVAILABLE") from None
    except AuthenticationFailed:
        raise no("invalid credentials", "AUTHENTICATIONFAILED") from None
    except StoreUnavailable:
        raise no("authentication is unavailable, try again later", "UNAVAILABLE") from None
    return _logged_in(s, result)


def _logged_in(s: CommandContext, result: AuthResult) -> Done:
    user = result.user
    if not s.take_user_slot(user):
        raise no("too many connections for this user", "LIMIT")
    s.login_as(user)
    log.info("IMAP login %s from %s", user.username, s.peer)
    return Done(f"{user.username} authenticated", CapabilityCode(s.capabilities()))


@command(Login, NOT_AUTHENTICATED)
async def login(s: CommandContext, cmd: Login) -> Done:
    """LOGIN user password (RFC 3501 §6.2.3)."""
    _check_allowed(s)
    return await _authenticate(s, cmd.username, cmd.password, "LOGIN")


def _parse_plain(data: bytes) -> tuple[str, str]:
    """RFC 4616: ``[authzid] NUL authcid NUL passwd``; authzid must be empty or authcid."""
    parts = data.split(b"\0")
    if len(parts) != 3:
        raise bad("malformed PLAIN response")
    try:
        authzid, authcid, passwd = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        raise bad("PLAIN response is not UTF-8") from None
    if authzid and authzid != authcid:
        raise no("cannot act as another user", "AUTHORIZATIONFAILED")
    return authcid, passwd


#: SASL mechanisms served (AUTH=... in CAPABILITY while plaintext login is allowed).
MECHANISMS = ("PLAIN", "LOGIN")
#: Mechanisms that send no password, served on every connection.
SECURE_MECHANISMS = (SCRAM_SHA_256,)


async def _response(s: CommandContext, challenge: bytes | None) -> bytes:
    """Send a challenge (None: the empty ``+ ``) and read the client's base64 line
    (RFC 3501 §6.2.2: ``*`` cancels the exchange)."""
    await s.send(Continuation("") if challenge is None else SaslChallenge(challenge))
    line = await s.read_line()
    if line is None:
        raise no("connection closed")
    if line.strip() == b"*":
        raise bad("authentication cancelled")
    try:
        return base64.b64decode(line.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad("invalid base64") from None


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad(f"the {what} is not UTF-8") from None


@command(Authenticate, NOT_AUTHENTICATED)
async def authenticate(s: CommandContext, cmd: Authenticate) -> Done:
    """AUTHENTICATE PLAIN, LOGIN or SCRAM-SHA-256, with or without an initial
    response (RFC 4959)."""
    if cmd.mechanism in SECURE_MECHANISMS:
        return await _scram(s, cmd.initial_response)
    if cmd.mechanism not in MECHANISMS:
        raise no(f"unsupported mechanism {cmd.mechanism}", "CANNOT")
    _check_allowed(s)
    data = cmd.initial_response
    if cmd.mechanism == "LOGIN":
        # draft-murchison-sasl-login §2: "Username:" then "Password:", each answered
        # with the value alone; an initial response (SASL-IR) is the user name.
        if data is None:
            data = await _response(s, b"Username:")
        username = _text(data, "user name")
        password = _text(await _response(s, b"Password:"), "password")
        return await _authenticate(s, username, password, "LOGIN")
    if data is None:
        # RFC 4959 §3: an empty challenge, then the client's base64 line.
        data = await _response(s, None)
    username, password = _parse_plain(data)
    return await _authenticate(s, username, password, "PLAIN")


async def _scram(s: CommandContext, initial: bytes | None) -> Done:
    """RFC 5802 §5 over RFC 3501 §6.2.2: client-first (or the initial response),
    server-first as a challenge, client-final, server-final as a challenge that
    the client answers with an empty line, then the tagged OK (IMAP4rev1 has no
    "additional data with success")."""
    data = initial if initial is not None else await _response(s, None)
    try:
        login = await s.store.auth.scram_begin(data, protocol="imap", peer=s.peer)
        client_final = await _response(s, login.server_first)
        result, server_final = await s.store.auth.scram_finish(login, client_final)
    except Throttled:
        raise no("too many failed logins, try again later", "UNAVAILABLE") from None
    except AuthenticationFailed:
        raise no("invalid credentials", "AUTHENTICATIONFAILED") from None
    except StoreUnavailable:
        raise no("authentication is unavailable, try again later", "UNAVAILABLE") from None
    # The client checks the server's signature before it takes the session.
    await _response(s, server_final)
    return _logged_in(s, result)


@command(Unauthenticate, AUTHENTICATED, updates=False)
async def unauthenticate(s: CommandContext, cmd: Unauthenticate) -> None:
    """RFC 8437: end the login without closing the connection."""
    s.logout_user()


@command(StartTLS, NOT_AUTHENTICATED, updates=False)
async def starttls(s: CommandContext, cmd: StartTLS) -> object:
    """Upgrade to TLS (RFC 3501 §6.2.1); anything pipelined after it is discarded."""
    context = s.ctx.ssl_context
    if context is None or s.tls:
        raise bad("STARTTLS is not available on this connection")
    assert s.wire is not None
    if s.wire.receiving or s.reader.statistics().buffered:
        # Plaintext sent after STARTTLS could be injected by a man in the middle
        # (CVE-2011-0411): refuse instead of interpreting it.
        raise bad("data after STARTTLS before the TLS handshake")
    await s.send_tagged(cmd.tag, "OK", "begin TLS negotiation now")
    await s.wire.release()  # (in the old stream, before the new one starts)
    try:
        tls = await start_tls(s.wire.stream, context)
    except HandshakeFailed as exc:
        raise StreamClosed(str(exc)) from exc
    s.wire.replace_stream(tls)
    s.tls = True
    s.reader = CommandReader(s.reader.limits)
    return ANSWERED


