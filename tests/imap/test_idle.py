"""IDLE: wake-ups from other sessions (EXISTS, FETCH, EXPUNGE), DONE, bad continuation."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


async def test_idle_sees_changes(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await RawClient.open(imap_server.ports["imap"])
        await a.login(USER, PASSWORD)
        await a.command(b"s", b"SELECT INBOX")
        await a.send(b"i IDLE\r\n")
        assert (await a.line()).startswith(b"+ ")
        b = await RawClient.open(imap_server.ports["imap"])
        await b.login(USER, PASSWORD)
        msg = simple_message(1)
        await b.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        await b.until_tagged(b"a")
        assert await a.line() == b"* 1 EXISTS\r\n"
        assert await a.line() == b"* 1 RECENT\r\n"
        await b.command(b"s", b"SELECT INBOX")
        await b.command(b"t", b"STORE 1 +FLAGS (\\Deleted)")
        line = await a.line()
        assert line.startswith(b"* 1 FETCH (") and b"\\Deleted" in line, line
        await b.command(b"e", b"EXPUNGE")
        assert await a.line() == b"* 1 EXPUNGE\r\n"
        assert await a.line() == b"* 0 RECENT\r\n"  # (it was \\Recent here)
        await a.send(b"DONE\r\n")
        lines = await a.until_tagged(b"i")
        assert lines == [b"i OK IDLE completed\r\n"], lines
        # A bad continuation ends IDLE with BAD; the session goes on.
        await a.send(b"j IDLE\r\n")
        assert (await a.line()).startswith(b"+ ")
        await a.send(b"NOT DONE\r\n")
        lines = await a.until_tagged(b"j")
        assert lines[-1].startswith(b"j BAD"), lines
        lines = await a.command(b"n", b"NOOP")
        assert lines[-1] == b"n OK NOOP completed\r\n"


async def test_idle_times_out(imap_server: Any) -> None:
    with trio.fail_after(20):
        limits = imap_server._imap_context.limits
        limits.idle_max = 0.5
        try:
            a = await RawClient.open(imap_server.ports["imap"])
            await a.login(USER, PASSWORD)
            await a.send(b"i IDLE\r\n")
            assert (await a.line()).startswith(b"+ ")
            assert (await a.line()).startswith(b"* BYE")
            assert await a.eof()
        finally:
            limits.idle_max = 30 * 60.0


async def test_autologout(imap_server: Any) -> None:
    with trio.fail_after(20):
        limits = imap_server._imap_context.limits
        limits.autologout = limits.preauth_timeout = 0.5
        try:
            a = await RawClient.open(imap_server.ports["imap"])
            assert (await a.line()).startswith(b"* BYE")
            assert await a.eof()
            limits.preauth_timeout = 60.0
            b = await RawClient.open(imap_server.ports["imap"])
            await b.login(USER, PASSWORD)
            assert (await b.line()).startswith(b"* BYE autologout")
            assert await b.eof()
        finally:
            limits.autologout = 30 * 60.0
            limits.preauth_timeout = 120.0


async def test_idle_sees_deliveries_from_other_writers(imap_server: Any) -> None:
    """A write that does not pass through any IMAP session (LMTP, the HTTP API, another
    process) reaches IDLE through the journal and the notifier's change stream."""
    with trio.fail_after(30):
        a = await RawClient.open(imap_server.ports["imap"])
        await a.login(USER, PASSWORD)
        await a.command(b"s", b"SELECT INBOX")
        await a.send(b"i IDLE\r\n")
        assert (await a.line()).startswith(b"+ ")
        user = await imap_server.store.users.by_username(USER)
        result = await imap_server.store.messages.append(user.id, "INBOX", simple_message(7))
        assert await a.line() == b"* 1 EXISTS\r\n"
        assert await a.line() == b"* 1 RECENT\r\n"
        inbox = await imap_server.store.mailboxes.get(user.id, "INBOX")
        await imap_server.store.messages.store_flags(inbox.id, [result.uid], "add",
                                                     ["\\Flagged"])
        line = await a.line()
        assert line.startswith(b"* 1 FETCH (") and b"\\Flagged" in line, line
        await a.send(b"DONE\r\n")
        assert (await a.until_tagged(b"i"))[-1] == b"i OK IDLE completed\r\n"


async def test_idle_sessions_on_one_mailbox_cost_one_journal_read_per_change(
        imap_server: Any) -> None:
    """Many sessions IDLE on one mailbox, half of them with CONDSTORE: a delivery and
    a flag change from outside IMAP each reach every session exactly (EXISTS, one
    RECENT of 1, RFC 3501 §2.3.2; FETCH with MODSEQ where CONDSTORE is on, RFC 7162
    §3.1.4), and each costs this process one journal read in all, made before the
    sessions are woken; the sessions read no journal (the claim of \\Recent is the
    one other round trip, a find and a findAndModify)."""
    from duck.store import metrics
    from duck.store.push.notify import READ_AHEAD

    store = imap_server.store
    sessions = 16
    with trio.fail_after(60):
        clients = []
        for n in range(sessions):
            c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
            await c.command(b"s", b"SELECT INBOX (CONDSTORE)" if n % 2 else b"SELECT INBOX")
            clients.append(c)
        reads = store.journal.statistics()["reads"]
        for c in clients:
            await c.send(b"i IDLE\r\n")
            assert (await c.line()).startswith(b"+ ")
        # IDLE starts with a journal read of each session's own: wait for them all.
        reads += sessions
        while store.journal.statistics()["reads"] < reads:
            await trio.sleep(0.01)
        metrics.reset()
        user = await store.users.by_username(USER)
        inbox = await store.mailboxes.get(user.id, "INBOX")
        with metrics.command_scope("writer"):
            result = await store.messages.append(user.id, "INBOX", simple_message(1))
        recent = 0
        for c in clients:
            assert await c.line() == b"* 1 EXISTS\r\n"
            line = await c.line()
            assert line in (b"* 1 RECENT\r\n", b"* 0 RECENT\r\n"), line
            recent += line == b"* 1 RECENT\r\n"
        assert recent == 1
        with metrics.command_scope("writer"):
            changed = await store.messages.store_flags(inbox.id, [result.uid], "add",
                                                       ["\\Flagged"])
        modseq = changed.changed[0].modseq
        for n, c in enumerate(clients):
            line = await c.line()
            assert line.startswith(b"* 1 FETCH (UID 1 FLAGS (\\Flagged"), line
            if n % 2:
                assert line.endswith(b" MODSEQ (%d))\r\n" % modseq), line
            else:
                assert b"MODSEQ" not in line, line
        stats = metrics.statistics()
        assert stats[READ_AHEAD]["by_db_command"] == {"find": 2}, stats
        # One claim of \Recent among the sessions, written without a read of the
        # mark first (this process knows it from the APPEND); the others know the
        # mark it left and ask nothing.
        assert stats["IDLE"]["by_db_command"] == {"findAndModify": 1}, stats
        assert store.journal.statistics()["reads"] - reads == 2
        for c in clients:
            await c.send(b"DONE\r\n")
            assert (await c.until_tagged(b"i"))[-1] == b"i OK IDLE completed\r\n"
            await c.aclose()
