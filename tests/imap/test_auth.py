"""LOGIN, AUTHENTICATE PLAIN (with and without SASL-IR), STARTTLS, implicit TLS,
LOGINDISABLED for plaintext from afar, the failed-login delay, connection limits."""

from __future__ import annotations

import base64
import imaplib
import ssl
from typing import Any

import trio

from duck.imap.session import Session

from .conftest import PASSWORD, USER, blocking
from .raw import RawClient


def _client_context(server: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.config.data_dir / "tls" / "cert.pem"))
    return ctx


async def test_login_and_capabilities(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"c", b"CAPABILITY")
        caps = lines[0].split()
        # Loopback: plaintext login is fine; STARTTLS is offered.
        assert b"STARTTLS" in caps and b"AUTH=PLAIN" in caps and b"LOGINDISABLED" not in caps
        assert b"UIDPLUS" not in caps  # only after authentication
        lines = await c.command(b"l", f'LOGIN "{USER}" "wrong"'.encode())
        assert lines[-1].startswith(b"l NO [AUTHENTICATIONFAILED]"), lines
        lines = await c.command(b"l2", f'LOGIN "{USER}" "{PASSWORD}"'.encode())
        assert lines[-1].startswith(b"l2 OK [CAPABILITY "), lines
        for cap in (b"UIDPLUS", b"MOVE", b"IDLE", b"CONDSTORE", b"SPECIAL-USE", b"QUOTA"):
            assert cap in lines[-1]
        lines = await c.command(b"l3", f'LOGIN "{USER}" "{PASSWORD}"'.encode())
        assert lines[-1].startswith(b"l3 BAD"), lines
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(b"u", b"UNAUTHENTICATE")  # RFC 8437
        assert lines == [b"u OK UNAUTHENTICATE completed\r\n"], lines
        lines = await c.command(b"n", b"NAMESPACE")
        assert lines[-1].startswith(b"n BAD"), lines
        lines = await c.command(b"l4", f'LOGIN "{USER}" "{PASSWORD}"'.encode())
        assert lines[-1].startswith(b"l4 OK"), lines


async def test_authenticate_plain(imap_server: Any) -> None:
    with trio.fail_after(20):
        token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"a", b"AUTHENTICATE PLAIN " + token)  # SASL-IR
        assert lines[-1].startswith(b"a OK"), lines
        d = await RawClient.open(imap_server.ports["imap"])
        await d.send(b"b AUTHENTICATE PLAIN\r\n")
        assert await d.line() == b"+ \r\n"
        await d.send(token + b"\r\n")
        lines = await d.until_tagged(b"b")
        assert lines[-1].startswith(b"b OK"), lines
        e = await RawClient.open(imap_server.ports["imap"])
        await e.send(b"c AUTHENTICATE PLAIN\r\n")
        await e.line()
        await e.send(b"*\r\n")
        lines = await e.until_tagged(b"c")
        assert lines[-1].startswith(b"c BAD"), lines
        lines = await e.command(b"d", b"AUTHENTICATE CRAM-MD5")
        assert lines[-1].startswith(b"d NO"), lines
        # imaplib's own AUTHENTICATE works too.
        port = imap_server.ports["imap"]
        client = await blocking(lambda: imaplib.IMAP4("127.0.0.1", port, timeout=20))
        typ, _ = await blocking(
            lambda: client.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())
        )
        assert typ == "OK"
        await blocking(client.logout)


async def test_authenticate_login(imap_server: Any) -> None:
    """AUTH=LOGIN (draft-murchison-sasl-login): "Username:" and "Password:"
    challenges; with SASL-IR (RFC 4959) the initial response is the user name;
    a wrong password fails as for PLAIN, "*" cancels."""
    port = imap_server.ports["imap"]
    b64 = base64.b64encode
    with trio.fail_after(20):
        c = await RawClient.open(port)
        assert b" AUTH=LOGIN" in c.greeting, c.greeting
        await c.send(b"a AUTHENTICATE LOGIN\r\n")
        assert await c.line() == b"+ " + b64(b"Username:") + b"\r\n"
        await c.send(b64(USER.encode()) + b"\r\n")
        assert await c.line() == b"+ " + b64(b"Password:") + b"\r\n"
        await c.send(b64(PASSWORD.encode()) + b"\r\n")
        lines = await c.until_tagged(b"a")
        assert lines[-1].startswith(b"a OK"), lines
        d = await RawClient.open(port)
        await d.send(b"b AUTHENTICATE LOGIN " + b64(USER.encode()) + b"\r\n")
        assert await d.line() == b"+ " + b64(b"Password:") + b"\r\n"
        await d.send(b64(b"wrong") + b"\r\n")
        lines = await d.until_tagged(b"b")
        assert lines[-1].startswith(b"b NO [AUTHENTICATIONFAILED]"), lines
        await d.send(b"c AUTHENTICATE LOGIN\r\n")
        await d.line()
        await d.send(b"*\r\n")
        lines = await d.until_tagged(b"c")
        assert lines[-1].startswith(b"c BAD"), lines
        # imaplib answers each challenge through its callback.
        client = await blocking(lambda: imaplib.IMAP4("127.0.0.1", port, timeout=20))
        answers = {b"Username:": USER, b"Password:": PASSWORD}
        typ, _ = await blocking(lambda: client.authenticate("LOGIN", answers.__getitem__))
        assert typ == "OK"
        await blocking(client.logout)


async def test_starttls_then_login(imap_server: Any) -> None:
    with trio.fail_after(20):
        port = imap_server.ports["imap"]
        client = await blocking(lambda: imaplib.IMAP4("127.0.0.1", port, timeout=20))
        ctx = _client_context(imap_server)
        typ, _ = await blocking(lambda: client.starttls(ssl_context=ctx))
        assert typ == "OK"
        typ, caps = await blocking(lambda: client.capability())
        assert b"STARTTLS" not in caps[0]
        typ, _ = await blocking(lambda: client.login(USER, PASSWORD))
        assert typ == "OK"
        typ, _ = await blocking(lambda: client.select("INBOX"))
        assert typ == "OK"
        await blocking(client.logout)


async def test_starttls_refuses_injected_commands(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"x", b"STARTTLS\r\ny NOOP")
        # Either the injection is refused outright or the pipelined NOOP is never run
        # in the clear (CVE-2011-0411).
        assert lines[-1].startswith(b"x BAD"), lines


async def test_implicit_tls(imap_server: Any) -> None:
    with trio.fail_after(20):
        ctx = _client_context(imap_server)
        port = imap_server.ports["imaps"]
        client = await blocking(
            lambda: imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=20)
        )
        assert b"STARTTLS" not in client.welcome
        typ, _ = await blocking(lambda: client.login(USER, PASSWORD))
        assert typ == "OK"
        await blocking(client.logout)


async def _session_over_socketpair(server: Any, peer: str) -> tuple[RawClient, Any]:
    """A session whose peer address is ``peer``, over a real socket pair."""
    a, b = trio.socket.socketpair()
    session = Session(server._imap_context, trio.SocketStream(a), peer=peer, tls=False)
    client = RawClient(trio.SocketStream(b))
    return client, session


async def test_plaintext_refused_from_afar(imap_server: Any) -> None:
    with trio.fail_after(20):
        client, session = await _session_over_socketpair(imap_server, "192.0.2.7")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run)
            greeting = await client.line()
            assert b"LOGINDISABLED" in greeting and b"AUTH=PLAIN" not in greeting
            lines = await client.command(b"l", f'LOGIN "{USER}" "{PASSWORD}"'.encode())
            assert lines[-1].startswith(b"l NO [PRIVACYREQUIRED]"), lines
            token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
            lines = await client.command(b"a", b"AUTHENTICATE PLAIN " + token)
            assert lines[-1].startswith(b"a NO [PRIVACYREQUIRED]"), lines
            await client.command(b"o", b"LOGOUT")
        imap_server.config.allow_plaintext_auth = True
        try:
            client, session = await _session_over_socketpair(imap_server, "192.0.2.7")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(session.run)
                greeting = await client.line()
                assert b"LOGINDISABLED" not in greeting
                await client.login(USER, PASSWORD)
                await client.command(b"o", b"LOGOUT")
        finally:
            imap_server.config.allow_plaintext_auth = False


async def test_failed_logins_are_slowed_successful_ones_are_not(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        start = trio.current_time()
        for i in range(3):
            lines = await c.command(b"f%d" % i, f'LOGIN "{USER}" "nope"'.encode())
            assert b"[AUTHENTICATIONFAILED]" in lines[-1]
        assert trio.current_time() - start >= 0.25 + 0.5 + 1.0  # doubling from 0.25 s
        start = trio.current_time()
        lines = await c.command(b"g", f'LOGIN "{USER}" "{PASSWORD}"'.encode())
        assert lines[-1].startswith(b"g OK")
        # A brake before the check would be 0.25 * 2**3 = 2 s here.
        assert trio.current_time() - start < 2.0


async def test_connection_limit_per_user(imap_server: Any) -> None:
    with trio.fail_after(20):
        limits = imap_server._imap_context.limits
        old = limits.per_user.limit
        limits.per_user.limit = 1
        try:
            a = await RawClient.open(imap_server.ports["imap"])
            await a.login(USER, PASSWORD)
            b = await RawClient.open(imap_server.ports["imap"])
            lines = await b.command(b"l", f'LOGIN "{USER}" "{PASSWORD}"'.encode())
            assert lines[-1].startswith(b"l NO [LIMIT]"), lines
            await a.command(b"o", b"LOGOUT")
            await a.eof()
            for _ in range(50):
                if not limits.per_user.counts:
                    break
                await trio.sleep(0.05)
            lines = await b.command(b"l2", f'LOGIN "{USER}" "{PASSWORD}"'.encode())
            assert lines[-1].startswith(b"l2 OK"), lines
        finally:
            limits.per_user.limit = old
