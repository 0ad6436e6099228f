"""ManageSieve over real sockets: greeting, STARTTLS and implicit TLS, SASL PLAIN
and LOGIN, every command, quotas and the checker's line-numbered errors."""

from __future__ import annotations

import base64

import trio

from duck.store import MAX_SCRIPTS

from .client import SieveClient, literal
from .conftest import PASSWORD, USER, SieveServer, client_tls


async def _greeted(port: int, tls: bool = False, server: SieveServer | None = None
                   ) -> tuple[SieveClient, list[bytes]]:
    client = await SieveClient.connect(
        port, client_tls(server.cert) if tls and server else None)
    caps, last = await client.response()
    assert last.startswith(b"OK")
    return client, caps


async def test_greeting_starttls_and_login(sieve_server: SieveServer) -> None:
    with trio.fail_after(20):
        client, caps = await _greeted(sieve_server.ports["plain"])
        assert b'"IMPLEMENTATION" "duck"' in caps and b'"STARTTLS"' in caps
        sieve_line = next(c for c in caps if c.startswith(b'"SIEVE"'))
        for extension in (b"fileinto", b"vacation", b"variables", b"imap4flags", b"body"):
            assert extension in sieve_line
        _, last = await client.command(b"STARTTLS")
        assert last.startswith(b"OK")
        await client.starttls(client_tls(sieve_server.cert))
        # RFC 5804 section 2.2: the capabilities again, unasked, after the handshake.
        caps, last = await client.response()
        assert last.startswith(b"OK") and b'"STARTTLS"' not in caps
        assert (await client.login(USER, "wrong")).startswith(b"NO")
        assert (await client.login(USER, PASSWORD)).startswith(b"OK")
        caps, _ = await client.command(b"CAPABILITY")
        assert f'"OWNER" "{USER}"'.encode() in caps
        _, last = await client.command(b"LOGOUT")
        assert last.startswith(b"OK")
        await client.aclose()


async def test_implicit_tls_and_login_mechanism(sieve_server: SieveServer) -> None:
    with trio.fail_after(20):
        client, caps = await _greeted(sieve_server.ports["tls"], True, sieve_server)
        assert b'"STARTTLS"' not in caps
        await client.send(b'AUTHENTICATE "LOGIN"\r\n')
        assert base64.b64decode((await client.line()).strip(b'"')) == b"Username:"
        await client.send(b'"' + base64.b64encode(USER.encode()) + b'"\r\n')
        assert base64.b64decode((await client.line()).strip(b'"')) == b"Password:"
        await client.send(literal(base64.b64encode(PASSWORD.encode())) + b"\r\n")
        _, last = await client.response()
        assert last.startswith(b"OK")
        await client.aclose()


async def test_plain_without_initial_response_and_cancel(sieve_server: SieveServer) -> None:
    with trio.fail_after(20):
        client, _ = await _greeted(sieve_server.ports["plain"])
        await client.send(b'AUTHENTICATE "PLAIN"\r\n')
        assert await client.line() == b'""'
        await client.send(b'"*"\r\n')
        _, last = await client.response()
        assert last.startswith(b"NO")
        await client.send(b'AUTHENTICATE "PLAIN"\r\n')
        await client.line()
        token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
        await client.send(b'"' + token + b'"\r\n')
        _, last = await client.response()
        assert last.startswith(b"OK")
        await client.aclose()


async def test_script_commands(sieve_server: SieveServer) -> None:
    store, user = sieve_server.store, sieve_server.user
    script = (b'require "fileinto";\r\nif header :contains "subject" "x" {\r\n'
              b'  fileinto "X";\r\n}\r\n')
    with trio.fail_after(30):
        client, _ = await _greeted(sieve_server.ports["plain"])
        assert (await client.login(USER, PASSWORD)).startswith(b"OK")
        _, last = await client.command(b'HAVESPACE "main" 1000')
        assert last.startswith(b"OK")
        _, last = await client.command(b'HAVESPACE "main" 99999999')
        assert last.startswith(b"NO (QUOTA/MAXSIZE)")
        _, last = await client.command(b'PUTSCRIPT "main" ' + literal(script))
        assert last.startswith(b"OK")
        # A syntax error: refused, with the line number, nothing stored.
        bad = b'require "fileinto";\r\nkeep;\r\nfileinto "a"\r\n'
        _, last = await client.command(b'PUTSCRIPT "bad" ' + literal(bad))
        assert last.startswith(b"NO") and b"line 4" in last, last
        _, last = await client.command(b'CHECKSCRIPT ' + literal(b"keep;\r\nfrob;\r\n"))
        assert last.startswith(b"NO") and b"line 2" in last and b"frob" in last
        _, last = await client.command(b'CHECKSCRIPT "keep;"')
        assert last.startswith(b"OK")
        lines, _ = await client.command(b"LISTSCRIPTS")
        assert lines == [b'"main"']
        _, last = await client.command(b'SETACTIVE "main"')
        assert last.startswith(b"OK")
        lines, _ = await client.command(b"LISTSCRIPTS")
        assert lines == [b'"main" ACTIVE']
        lines, last = await client.command(b'GETSCRIPT "main"')
        assert lines == [script] and last.startswith(b"OK")
        _, last = await client.command(b'GETSCRIPT "nope"')
        assert last.startswith(b"NO (NONEXISTENT)")
        _, last = await client.command(b'DELETESCRIPT "main"')
        assert last.startswith(b"NO (ACTIVE)")
        _, last = await client.command(b'PUTSCRIPT "other" "keep;"')
        assert last.startswith(b"OK")
        _, last = await client.command(b'RENAMESCRIPT "other" "main"')
        assert last.startswith(b"NO (ALREADYEXISTS)")
        _, last = await client.command(b'RENAMESCRIPT "main" "renamed"')
        assert last.startswith(b"OK")
        assert (await store.sieve.active(user.id)) is not None
        assert (await store.sieve.active(user.id)).name == "renamed"  # type: ignore[union-attr]
        _, last = await client.command(b'SETACTIVE ""')
        assert last.startswith(b"OK") and await store.sieve.active(user.id) is None
        _, last = await client.command(b'DELETESCRIPT "renamed"')
        assert last.startswith(b"OK")
        _, last = await client.command(b'NOOP "tag1"')
        assert last.startswith(b'OK (TAG "tag1")')
        _, last = await client.command(b"UNAUTHENTICATE")
        assert last.startswith(b"OK")
        _, last = await client.command(b"LISTSCRIPTS")
        assert last.startswith(b"NO")
        await client.aclose()
    assert [s.name for s in await store.sieve.scripts(user.id)] == ["other"]


async def test_script_count_quota(sieve_server: SieveServer) -> None:
    with trio.fail_after(60):
        client, _ = await _greeted(sieve_server.ports["plain"])
        assert (await client.login(USER, PASSWORD)).startswith(b"OK")
        for i in range(MAX_SCRIPTS):
            await sieve_server.store.sieve.put(sieve_server.user.id, f"s{i}", "keep;")
        _, last = await client.command(b'PUTSCRIPT "one-more" "keep;"')
        assert last.startswith(b"NO (QUOTA/MAXSCRIPTS)")
        await client.aclose()


async def test_scram_sha_256(sieve_server: SieveServer) -> None:
    """RFC 7677 over RFC 5804: server-first as a challenge string, server-final in
    the OK's SASL response code, which the client verifies."""
    from tests.imap.test_accounts_auth import ScramClient

    async def session(password: str) -> tuple[bytes, bool]:
        client, caps = await _greeted(sieve_server.ports["plain"])
        assert any(b"SCRAM-SHA-256" in c for c in caps if c.startswith(b'"SASL"'))
        scram = ScramClient(USER, password)
        first = base64.b64encode(scram(b"")).decode()
        await client.send(f'AUTHENTICATE "SCRAM-SHA-256" "{first}"\r\n'.encode())
        challenge = await client.line()
        if challenge.startswith(b"NO"):
            await client.aclose()
            return challenge, False
        answer = base64.b64encode(scram(base64.b64decode(challenge.strip(b'"'))))
        await client.send(b'"' + answer + b'"\r\n')
        _, last = await client.response()
        verified = False
        if last.startswith(b'OK (SASL "'):
            scram(base64.b64decode(last.split(b'"')[1]))
            verified = bool(scram.verified)
        await client.aclose()
        return last, verified

    with trio.fail_after(30):
        last, verified = await session(PASSWORD)
        assert last.startswith(b"OK") and verified
        last, verified = await session("wrong")
        assert last.startswith(b"NO") and not verified
