"""POP3 through Python's poplib over STLS and implicit TLS: every command, byte-exact
RETR against IMAP's BODY[], UPDATE at QUIT, and the errors clients meet."""

from __future__ import annotations

import base64
import imaplib
import os
import poplib
import re
import socket

import pytest
import trio

from .conftest import PASSWORD, USER, Pop3TestServer, blocking, fill, message

#: A message with lines a client must see unstuffed, and one with a large
#: attachment (in GridFS, streamed in chunks).
DOTTED = (b"From: a@example.com\r\nSubject: dots\r\n\r\n.\r\n..two\r\n.three\r\n"
          b"middle . dot\r\n.\r\n")
LARGE = (b"From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n"
         b"Content-Type: text/plain\r\n\r\nsee attached\r\n--B\r\n"
         b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
         + base64.encodebytes(os.urandom(900_000)).replace(b"\n", b"\r\n")
         + b"--B--\r\n")


def _joined(lines: list[bytes]) -> bytes:
    """A message from poplib's lines (poplib strips the CRLFs and the stuffed dots)."""
    return b"".join(line + b"\r\n" for line in lines)


def _imap_bodies(server: Pop3TestServer, path: str = "INBOX") -> dict[int, bytes]:
    """uid -> BODY[] of every message, through imaplib."""
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=20)
    try:
        client.login(USER, PASSWORD)
        client.select(f'"{path}"', readonly=True)
        typ, data = client.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        assert typ == "OK"
        out = {}
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))  # type: ignore[union-attr]
                out[uid] = item[1]
        return out
    finally:
        client.logout()


async def test_every_command_over_stls(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(1), DOTTED, message(3)])

    def session() -> None:
        client = pop3_server.plain()
        assert client.getwelcome().startswith(b"+OK")
        before = client.capa()
        assert "STLS" in before and "PIPELINING" in before and "UIDL" in before
        assert before["SASL"] == ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
        assert before["EXPIRE"] == ["NEVER"]
        client.stls(pop3_server.client_context())
        after = client.capa()
        assert "STLS" not in after and "USER" in after and "RESP-CODES" in after
        assert "AUTH-RESP-CODE" in after and "TOP" in after
        assert client.user(USER).startswith(b"+OK")
        assert client.pass_(PASSWORD).startswith(b"+OK")
        assert "USER" not in client.capa()  # TRANSACTION state: no login capabilities
        count, size = client.stat()
        assert count == 3
        _, listing, _ = client.list()
        sizes = [int(line.split()[1]) for line in listing]
        assert len(sizes) == 3 and sum(sizes) == size
        assert client.list(2).split() == [b"+OK", b"2", str(sizes[1]).encode()]
        _, uidls, _ = client.uidl()
        assert len({line.split()[1] for line in uidls}) == 3
        assert client.uidl(2).split()[2] == uidls[1].split()[1]
        _, lines, _ = client.retr(2)
        assert _joined(lines) == DOTTED
        assert len(DOTTED) == sizes[1]
        _, top, _ = client.top(1, 0)
        assert _joined(top) == message(1).split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        _, top, _ = client.top(2, 2)
        assert _joined(top) == b"From: a@example.com\r\nSubject: dots\r\n\r\n.\r\n..two\r\n"
        assert client.noop().startswith(b"+OK")
        assert client.dele(1).startswith(b"+OK")
        assert client.stat() == (2, size - sizes[0])
        with pytest.raises(poplib.error_proto, match="deleted"):
            client.retr(1)
        with pytest.raises(poplib.error_proto, match="deleted"):
            client.dele(1)
        with pytest.raises(poplib.error_proto, match="no message 9"):
            client.list(9)
        assert client.rset().startswith(b"+OK")
        assert client.stat() == (3, size)
        assert client.quit().startswith(b"+OK")

    with trio.fail_after(30):
        await blocking(session)
    inbox = await pop3_server.store.mailboxes.get(pop3_server.user.id, "INBOX")
    assert inbox.message_count == 3  # RSET undid the DELE


async def test_every_command_over_implicit_tls(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(i) for i in range(1, 5)] + [LARGE])

    def session() -> tuple[list[bytes], list[int]]:
        client = pop3_server.tls()
        assert "STLS" not in client.capa()
        # AUTH PLAIN with an initial response (RFC 5034 §4).
        plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        assert client._shortcmd(f"AUTH PLAIN {plain}").startswith(b"+OK")
        count, _ = client.stat()
        bodies = [_joined(client.retr(n)[1]) for n in range(1, count + 1)]
        # TOP of the large message stops reading it after the lines asked for.
        top = _joined(client.top(count, 3)[1])
        assert top == LARGE[:LARGE.index(b"\r\n\r\n") + 4] + b"--B\r\n" + (
            b"Content-Type: text/plain\r\n\r\n")
        _, listing, _ = client.list()
        for n in (2, 4):
            client.dele(n)
        assert client.quit().startswith(b"+OK")
        return bodies, [int(line.split()[1]) for line in listing]

    with trio.fail_after(60):
        imap = await blocking(lambda: _imap_bodies(pop3_server))
        bodies, sizes = await blocking(session)
    # Byte-exact: RETR sends what IMAP's BODY[] sends, LIST's size is its length.
    assert bodies == [imap[uid] for uid in sorted(imap)]
    assert sizes == [len(b) for b in bodies]
    assert bodies[-1] == LARGE
    with trio.fail_after(30):
        left = await blocking(lambda: _imap_bodies(pop3_server))
    assert sorted(left) == [1, 3, 5]


async def test_auth_plain_with_a_challenge_and_bad_credentials(
        pop3_server: Pop3TestServer) -> None:
    def session() -> list[bytes]:
        client = pop3_server.tls()
        replies = []
        with pytest.raises(poplib.error_proto) as bad:
            client.user(USER)
            client.pass_("wrong")
        replies.append(bad.value.args[0])
        client._putcmd("AUTH PLAIN")
        replies.append(client._getline()[0])
        client._putcmd("*")
        replies.append(client._getline()[0])
        client._putcmd("AUTH PLAIN")
        client._getline()
        client._putcmd(base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode())
        replies.append(client._getline()[0])
        client.quit()
        return replies

    with trio.fail_after(30):
        replies = await blocking(session)
    assert replies[0] == b"-ERR [AUTH] invalid credentials"
    assert replies[1] == b"+ "
    assert replies[2].startswith(b"-ERR")
    assert replies[3].startswith(b"+OK alice@example.com has 0 messages")


async def test_auth_login(pop3_server: Pop3TestServer) -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    def session() -> list[bytes]:
        client = pop3_server.tls()
        replies = []
        client._putcmd("AUTH LOGIN")
        replies.append(client._getline()[0])
        client._putcmd(b64(USER))
        replies.append(client._getline()[0])
        client._putcmd(b64("wrong"))
        replies.append(client._getline()[0])
        # With the user name as initial response, only the password is asked for.
        client._putcmd(f"AUTH LOGIN {b64(USER)}")
        replies.append(client._getline()[0])
        client._putcmd(b64(PASSWORD))
        replies.append(client._getline()[0])
        client.quit()
        return replies

    with trio.fail_after(30):
        replies = await blocking(session)
    assert replies[:3] == [b"+ " + b64("Username:").encode(),
                           b"+ " + b64("Password:").encode(),
                           b"-ERR [AUTH] invalid credentials"]
    assert replies[3] == b"+ " + b64("Password:").encode()
    assert replies[4].startswith(b"+OK alice@example.com has 0 messages")


async def test_pipelined_commands_get_their_replies_in_order(
        pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(1), message(2)])
    with trio.fail_after(30):
        stream = await trio.open_tcp_stream("127.0.0.1", pop3_server.ports["pop3"])
        await stream.send_all(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\n"
                              "RETR 2\r\nUIDL 1\r\nBOGUS\r\nQUIT\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    lines = data.split(b"\r\n")
    assert lines[0].startswith(b"+OK") and lines[1] == b"+OK send PASS"
    assert lines[2].startswith(b"+OK alice@example.com has 2 messages")
    assert lines[3] == b"+OK 2 %d" % (len(message(1)) + len(message(2)))
    retr = data.index(b"+OK %d octets\r\n" % len(message(2)))
    assert data[retr:].split(b"\r\n", 1)[1].startswith(message(2) + b".\r\n")
    assert lines[-4].startswith(b"+OK 1 ")  # UIDL 1
    assert lines[-3] == b"-ERR unknown command BOGUS"
    assert lines[-2].startswith(b"+OK") and lines[-1] == b""


async def test_errors_before_login(pop3_server: Pop3TestServer) -> None:
    def session() -> list[bytes]:
        client = pop3_server.plain()
        out = []
        for cmd in ("STAT", "RETR 1", "PASS x", "APOP a b", "AUTH CRAM-MD5", "NOOP"):
            try:
                out.append(client._shortcmd(cmd))
            except poplib.error_proto as exc:
                out.append(exc.args[0])
        # A bare AUTH lists the mechanisms.
        out += client._longcmd("AUTH")[1]
        client.quit()
        return out

    with trio.fail_after(30):
        replies = await blocking(session)
    assert all(r.startswith(b"-ERR") for r in replies[:6]), replies
    assert replies[6:] == [b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"]


async def test_stls_refused_when_pipelined_data_follows(pop3_server: Pop3TestServer) -> None:
    with trio.fail_after(30):
        stream = await trio.open_tcp_stream("127.0.0.1", pop3_server.ports["pop3"])
        await stream.send_all(b"STLS\r\nUSER x\r\n")
        data = b""
        while data.count(b"\r\n") < 3:
            data += await stream.receive_some(4096)
        await stream.aclose()
    assert data.split(b"\r\n")[1] == b"-ERR data after STLS before the TLS handshake"


async def test_empty_maildrop_and_the_quit_before_login(pop3_server: Pop3TestServer) -> None:
    def session() -> tuple[tuple[int, int], bytes]:
        client = pop3_server.login()
        stat = client.stat()
        bye = client.quit()
        second = pop3_server.plain()
        assert second.quit().startswith(b"+OK")
        return stat, bye

    with trio.fail_after(30):
        stat, bye = await blocking(session)
    assert stat == (0, 0)
    assert b"0 messages deleted" in bye


async def test_connection_limit_per_address(pop3_server: Pop3TestServer) -> None:
    pop3_server.context.per_ip.limit = 1
    with trio.fail_after(30):
        first = await blocking(pop3_server.plain)
        sock = socket.create_connection(("127.0.0.1", pop3_server.ports["pop3"]), timeout=10)
        refused = await blocking(lambda: sock.recv(200))
        sock.close()
        await blocking(first.quit)
    assert refused == b"-ERR [SYS/TEMP] too many connections from your address\r\n"


async def test_auth_scram_sha_256(pop3_server: Pop3TestServer) -> None:
    """RFC 5034 §4 with RFC 7677: server-first and server-final as challenges; the
    client checks the server's signature, answers it with an empty line, +OK."""
    from tests.imap.test_accounts_auth import ScramClient

    def session(password: str) -> list[bytes]:
        client = pop3_server.plain()  # SCRAM sends no password: offered without TLS
        scram = ScramClient(USER, password)
        replies = []
        first = base64.b64encode(scram(b"")).decode()
        client._putcmd(f"AUTH SCRAM-SHA-256 {first}")
        line = client._getline()[0]
        replies.append(line)
        if line.startswith(b"+ "):
            client._putcmd(base64.b64encode(scram(base64.b64decode(line[2:]))).decode())
            line = client._getline()[0]
            replies.append(line)
            if line.startswith(b"+ "):
                scram(base64.b64decode(line[2:]))
                replies.append(b"verified" if scram.verified else b"unverified")
                client._putcmd("")
                replies.append(client._getline()[0])
        client.quit()
        return replies

    with trio.fail_after(30):
        good = await blocking(lambda: session(PASSWORD))
        bad = await blocking(lambda: session("wrong"))
    assert good[2:] == [b"verified", b"+OK alice@example.com has 0 messages (0 octets)"]
    assert bad[-1] == b"-ERR [AUTH] invalid credentials"
