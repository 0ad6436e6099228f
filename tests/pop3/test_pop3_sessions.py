"""POP3 beside other sessions: the maildrop lease (IN-USE, expiry, renewal), IMAP
seeing POP3's UPDATE and POP3 seeing IMAP's EXPUNGE, delete modes, EXPIRE 0,
LOGIN-DELAY, the per-user folder and UIDL stability."""

from __future__ import annotations

import logging
import poplib
import socket
import struct

import pytest
import trio

from duck.pop3.backend import Account
from duck.pop3.store_backend import StoreBackend
from duck.store import Lease, Store
from tests.imap.raw import RawClient

from .conftest import PASSWORD, USER, Pop3TestServer, blocking, fill, message


def _login_error(server: Pop3TestServer) -> bytes:
    client = server.tls()
    try:
        client.user(USER)
        client.pass_(PASSWORD)
    except poplib.error_proto as exc:
        return bytes(exc.args[0])
    finally:
        client.close()
    raise AssertionError("login succeeded")


async def test_second_session_is_refused_until_the_first_quits(
        pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(1)])
    with trio.fail_after(30):
        first = await blocking(pop3_server.login)
        refused = await blocking(lambda: _login_error(pop3_server))
        assert refused == b"-ERR [IN-USE] the maildrop is in use by another session"
        await blocking(first.quit)
        second = await blocking(pop3_server.login)
        assert await blocking(second.stat) == (1, len(message(1)))
        await blocking(second.quit)


async def _login_once_released(server: Pop3TestServer) -> poplib.POP3_SSL:
    """A login, retried while the server is still closing an earlier session."""
    while True:
        try:
            return await blocking(server.login)
        except poplib.error_proto:
            await trio.sleep(0.05)


async def test_a_dropped_connection_releases_the_maildrop(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(1)])
    with trio.fail_after(30):
        first = await blocking(pop3_server.login)
        await blocking(lambda: first.dele(1))
        await blocking(first.close)  # no QUIT: no UPDATE (RFC 1939 §6)
        second = await _login_once_released(pop3_server)
        assert await blocking(second.stat) == (1, len(message(1)))
        await blocking(second.quit)


async def test_a_reset_connection_is_not_a_crash(
        pop3_server: Pop3TestServer, caplog: pytest.LogCaptureFixture) -> None:
    """A client that resets its connection mid-session (RST, not FIN) ends the
    session quietly: the reset reached the listener wrapped in the session's task
    groups and was logged as a crash of the connection handler."""
    await fill(pop3_server, [message(1)])
    caplog.set_level(logging.DEBUG, logger="duck.net")
    with trio.fail_after(30):
        first = await blocking(pop3_server.plain)
        await blocking(lambda: first.user(USER))
        await blocking(lambda: first.pass_(PASSWORD))
        sock = first.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        first.file.close()  # (it holds the socket open too)
        sock.close()  # (a zero linger: the close sends a reset)
        second = await _login_once_released(pop3_server)
        await blocking(second.quit)
    assert any("connection ended" in r.getMessage() for r in caplog.records), caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.pop3_settings(lease_seconds=1.0)
async def test_a_lease_of_a_dead_process_expires(pop3_server: Pop3TestServer) -> None:
    store = pop3_server.store
    inbox = await store.mailboxes.get(pop3_server.user.id, "INBOX")
    # What a crashed process leaves behind: a lease nobody renews.
    assert isinstance(await store.leases.acquire(f"pop3:{inbox.id}", 1.0), Lease)
    with trio.fail_after(30):
        assert (await blocking(lambda: _login_error(pop3_server))).startswith(b"-ERR [IN-USE]")
        await trio.sleep(1.1)
        client = await blocking(pop3_server.login)
        # A live session renews its lease: long after one period it is still held.
        await trio.sleep(1.5)
        assert (await blocking(lambda: _login_error(pop3_server))).startswith(b"-ERR [IN-USE]")
        assert (await blocking(client.noop)).startswith(b"+OK")
        await blocking(client.quit)


async def test_imap_idle_sees_the_expunges_of_a_pop3_quit(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(i) for i in range(1, 5)])
    with trio.fail_after(30):
        imap = await RawClient.logged_in(pop3_server.ports["imap"], USER, PASSWORD)
        await imap.command(b"s", b"SELECT INBOX")
        await imap.send(b"i IDLE\r\n")
        assert (await imap.line()).startswith(b"+ ")

        def pop() -> bytes:
            client = pop3_server.login()
            client.dele(2)
            client.dele(3)
            return bytes(client.quit())

        assert b"2 messages deleted" in await blocking(pop)
        # Messages 2 and 3 expunged: announced high first or low twice, both right.
        assert [await imap.line(), await imap.line()] in (
            [b"* 3 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"], [b"* 2 EXPUNGE\r\n"] * 2)
        await imap.send(b"DONE\r\n")
        assert (await imap.until_tagged(b"i"))[-1] == b"i OK IDLE completed\r\n"
        lines = await imap.command(b"f", b"UID FETCH 1:* (UID)")
        assert [line for line in lines if b"FETCH" in line and line.startswith(b"*")] == [
            b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 4)\r\n"]
        await imap.aclose()


async def test_a_message_expunged_over_imap_is_reported_deleted(
        pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(i) for i in range(1, 4)])
    with trio.fail_after(30):
        client = await blocking(pop3_server.login)
        imap = await RawClient.logged_in(pop3_server.ports["imap"], USER, PASSWORD)
        await imap.command(b"s", b"SELECT INBOX")
        # Read over IMAP first: the record cache then holds the message, and RETR
        # must still learn that it is gone.
        await imap.command(b"f", b"UID FETCH 2 BODY.PEEK[]")
        await imap.command(b"t", b"UID STORE 2 +FLAGS.SILENT (\\Deleted)")
        await imap.command(b"e", b"EXPUNGE")
        await imap.aclose()
        with pytest.raises(poplib.error_proto) as gone:
            await blocking(lambda: client.retr(2))
        assert gone.value.args[0] == b"-ERR message 2: message was deleted by another session"
        with pytest.raises(poplib.error_proto, match="another session"):
            await blocking(lambda: client.dele(2))
        assert await blocking(client.stat) == (2, len(message(1)) + len(message(3)))
        await blocking(lambda: client.dele(3))
        assert b"1 messages deleted" in await blocking(client.quit)
    inbox = await pop3_server.store.mailboxes.get(pop3_server.user.id, "INBOX")
    assert inbox.message_count == 1


@pytest.mark.pop3_settings(delete_mode="trash")
async def test_trash_mode_moves_deleted_messages(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(i) for i in range(1, 4)])

    def pop() -> None:
        client = pop3_server.login()
        client.dele(1)
        client.dele(3)
        client.quit()

    with trio.fail_after(30):
        await blocking(pop)
    store, user = pop3_server.store, pop3_server.user
    assert (await store.mailboxes.get(user.id, "INBOX")).message_count == 1
    assert (await store.mailboxes.get(user.id, "Trash")).message_count == 2


@pytest.mark.pop3_config(expire="0")
async def test_expire_zero_removes_what_was_retrieved(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(i) for i in range(1, 4)])

    def pop() -> dict[str, list[str]]:
        client = pop3_server.login()
        caps = client.capa()
        client.retr(1)
        client.top(2, 0)  # TOP is not a retrieval
        client.quit()
        return caps

    with trio.fail_after(30):
        caps = await blocking(pop)
    assert caps["EXPIRE"] == ["0"]
    inbox = await pop3_server.store.mailboxes.get(pop3_server.user.id, "INBOX")
    assert inbox.message_count == 2


@pytest.mark.pop3_settings(login_delay=2.0)
@pytest.mark.pop3_config(login_delay=2)
async def test_login_delay(pop3_server: Pop3TestServer) -> None:
    with trio.fail_after(30):
        client = await blocking(pop3_server.login)
        assert (await blocking(client.capa))["LOGIN-DELAY"] == ["2"]
        await blocking(client.quit)
        refused = await blocking(lambda: _login_error(pop3_server))
        assert refused.startswith(b"-ERR [LOGIN-DELAY]")
        await trio.sleep(2.1)
        await blocking((await blocking(pop3_server.login)).quit)


async def test_the_pop3_folder_is_a_user_setting(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(1)])
    await fill(pop3_server, [message(7), message(8)], path="Archive")
    await pop3_server.store.admin.set_pop3_folder(pop3_server.user.id, "Archive")

    def pop() -> list[bytes]:
        client = pop3_server.login()
        lines = [b"".join(client.retr(n)[1]) for n in (1, 2)]
        client.quit()
        return lines

    with trio.fail_after(30):
        got = await blocking(pop)
    assert [b"note 7" in got[0], b"note 8" in got[1]] == [True, True]


async def test_uidl_is_the_same_across_sessions_and_stores(
        pop3_server: Pop3TestServer, mongo_uri: str, db_name: str) -> None:
    await fill(pop3_server, [message(i) for i in range(1, 4)])

    def uidls() -> list[bytes]:
        client = pop3_server.login()
        lines = client.uidl()[1]
        client.quit()
        return list(lines)

    with trio.fail_after(30):
        first = await blocking(uidls)
        await fill(pop3_server, [message(4)])
        second = await blocking(uidls)
    assert second[:3] == first and len(second) == 4
    ids = [line.split()[1] for line in second]
    assert all(1 <= len(i) <= 70 and all(0x21 <= b <= 0x7E for b in i) for i in ids)
    # Another duck process: another store object (client) on the same database.
    other = await Store.open(mongo_uri, db_name)
    try:
        backend = StoreBackend(other)
        async with backend.open(Account(pop3_server.user.id, USER)) as drop:
            assert [e.unique_id.encode() for e in drop.entries] == ids
    finally:
        await other.aclose()


async def test_shutdown_ends_sessions_without_update(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(1)])
    with trio.fail_after(30):
        client = await blocking(pop3_server.login)
        await blocking(lambda: client.dele(1))
        pop3_server.context.shutdown.set()
        with pytest.raises((poplib.error_proto, OSError, EOFError)):
            await blocking(client.quit)
    inbox = await pop3_server.store.mailboxes.get(pop3_server.user.id, "INBOX")
    assert inbox.message_count == 1


@pytest.mark.pop3_settings(lease_seconds=1.0)
async def test_a_lost_lease_deletes_nothing(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(1)])
    store = pop3_server.store
    inbox = await store.mailboxes.get(pop3_server.user.id, "INBOX")
    with trio.fail_after(30):
        client = await blocking(pop3_server.login)
        await blocking(lambda: client.dele(1))
        # Another holder takes the lease over (as after a network partition that
        # outlasted it): the session's next renewal finds it gone.
        leases = store.database.collection("leases")
        await store.database.run(leases.update_one, {"_id": f"pop3:{inbox.id}"},
                                 {"$set": {"holder": "someone-else"}})
        await trio.sleep(0.6)
        with pytest.raises(poplib.error_proto) as lost:
            await blocking(client.quit)
    assert lost.value.args[0].startswith(b"-ERR [SYS/TEMP] the maildrop lock was lost")
    assert (await store.mailboxes.get(pop3_server.user.id, "INBOX")).message_count == 1


async def test_hostile_input(pop3_server: Pop3TestServer) -> None:
    with trio.fail_after(30):
        stream = await trio.open_tcp_stream("127.0.0.1", pop3_server.ports["pop3"])
        await stream.send_all(b"X" * 100_000 + b"\r\nCAPA\r\n")
        data = b""
        while not data.endswith(b"\r\n.\r\n"):
            data += await stream.receive_some(65536)
        lines = data.split(b"\r\n")
        assert lines[1] == b"-ERR line too long" and lines[2].startswith(b"+OK")
        # A client that keeps sending what is not POP3 is hung up on.
        await stream.send_all(b"NONSENSE\r\n" * 25)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
        assert data.count(b"-ERR unknown command") == 20


@pytest.mark.pop3_config(autologout=0.5)
async def test_autologout_closes_without_update(pop3_server: Pop3TestServer) -> None:
    await fill(pop3_server, [message(1)])
    with trio.fail_after(30):
        client = await blocking(pop3_server.login)
        await blocking(lambda: client.dele(1))
        await trio.sleep(0.8)
        # RFC 1939 §3: the timer closes the connection, no reply, no UPDATE.
        assert await blocking(lambda: client.sock.recv(100)) == b""
        client.close()
        # The maildrop was released: a new session gets it, message 1 still there.
        again = await blocking(pop3_server.login)
        assert await blocking(again.stat) == (1, len(message(1)))
        await blocking(again.quit)
