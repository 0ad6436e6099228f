"""Bad input: garbage, wrong state, huge literal announcements, framing errors,
and clients that vanish mid-command. The connection stays usable where it can."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import PASSWORD, USER
from .raw import RawClient


async def _open(server: Any) -> RawClient:
    return await RawClient.open(server.ports["imap"])


async def test_unknown_and_malformed_commands_keep_connection(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _open(imap_server)
        assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1")
        lines = await c.command(b"a1", b"FROBNICATE now")
        assert lines[-1].startswith(b"a1 BAD"), lines
        lines = await c.command(b"a2", b"FETCH 1 (FLAGS)")
        assert lines[-1].startswith(b"a2 BAD") and b"not authenticated" in lines[-1], lines
        lines = await c.command(b"a3", b"LOGIN onlyone")
        assert lines[-1].startswith(b"a3 BAD"), lines
        await c.send(b"\x00\x01\x02 garbage \xff\xfe\r\n")
        line = await c.line()
        assert line.startswith(b"* BAD") or b" BAD" in line, line
        lines = await c.command(b"a4", b"NOOP")
        assert lines[-1] == b"a4 OK NOOP completed\r\n"
        # An empty line is no command (RFC 3501 §2.2.1): an untagged BAD, not silence.
        await c.send(b"\r\n")
        line = await c.line()
        assert line.startswith(b"* BAD") and b"empty" in line, line
        await c.login(USER, PASSWORD)
        lines = await c.command(b"a5", b"FETCH 1 (FLAGS)")
        assert lines[-1].startswith(b"a5 BAD") and b"authenticated" in lines[-1], lines
        lines = await c.command(b"a6", b"SELECT INBOX")
        assert lines[-1].startswith(b"a6 OK")
        lines = await c.command(b"a7", b"FETCH 99 (FLAGS)")
        assert lines[-1].startswith(b"a7 BAD"), lines
        lines = await c.command(b"a8", b"FETCH 1:* (FLAGS)")  # empty mailbox: nothing
        assert lines == [b"a8 OK FETCH completed\r\n"], lines
        # RFC 5182 §2.1: "$" with nothing saved is the empty set, not an error.
        lines = await c.command(b"a8b", b"FETCH $ (FLAGS)")
        assert lines == [b"a8b OK FETCH completed\r\n"], lines
        lines = await c.command(b"a8c", b"SEARCH UID $")
        assert lines[-1].startswith(b"a8c OK"), lines
        lines = await c.command(b"a8d", b"SORT (NOSUCHKEY) UTF-8 ALL")
        assert lines[-1].startswith(b"a8d BAD"), lines
        lines = await c.command(b"a8e", b"SORT (DATE) UTF-8 ALL")  # empty mailbox
        assert lines == [b"* SORT\r\n", b"a8e OK SORT completed\r\n"], lines
        lines = await c.command(b"a9", b"SELECT NoSuchBox")
        assert lines[-1].startswith(b"a9 NO [NONEXISTENT]"), lines
        lines = await c.command(b"b1", b"FETCH 1 FLAGS")  # SELECT failed: unselected
        assert lines[-1].startswith(b"b1 BAD"), lines
        lines = await c.command(b"b2", b"LOGOUT")
        assert lines[0].startswith(b"* BYE") and lines[-1].startswith(b"b2 OK")
        assert await c.eof()


async def test_huge_literal_refused_before_it_is_read(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _open(imap_server)
        # Before authentication, even small literals are capped.
        lines = await c.command(b"a1", b"LOGIN {100000}")
        assert lines[-1].startswith(b"a1 NO [TOOBIG]") or lines[-1].startswith(b"a1 BAD"), lines
        await c.login(USER, PASSWORD)
        size = imap_server.config.max_message_size + 1
        await c.send(b"a2 APPEND INBOX {%d}\r\n" % size)
        line = await c.line()
        assert line.startswith(b"a2 NO [TOOBIG]"), line
        # No "+" was sent, no byte of the literal is expected: the next command works.
        lines = await c.command(b"a3", b"NOOP")
        assert lines[-1] == b"a3 OK NOOP completed\r\n"
        # A synchronizing literal of acceptable size gets "+ ".
        await c.send(b"a4 APPEND INBOX {5}\r\n")
        line = await c.line()
        assert line.startswith(b"+ "), line
        await c.send(b"hello\r\n")
        lines = await c.until_tagged(b"a4")
        assert lines[-1].startswith(b"a4 OK [APPENDUID"), lines


async def test_fatal_framing_error_says_bye(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _open(imap_server)

        async def flood() -> None:
            try:
                await c.send(b"a1 NOOP " + b"x" * (1024 * 1024) + b"\r\n")
            except trio.BrokenResourceError:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            line = await c.line()
        assert line.startswith(b"* BYE"), line[:100]
        assert await c.eof()


async def _idle_counts(server: Any) -> tuple[int, int]:
    ctx = server._imap_context
    return sum(ctx.limits.per_ip.counts.values()), sum(ctx.limits.per_user.counts.values())


async def test_disconnect_mid_literal_and_mid_idle_leaves_nothing(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await _open(imap_server)
        await c.login(USER, PASSWORD)
        await c.send(b"a1 APPEND INBOX {1000}\r\n")
        assert (await c.line()).startswith(b"+ ")
        await c.send(b"x" * 500)
        await c.aclose()
        d = await _open(imap_server)
        await d.login(USER, PASSWORD)
        await d.command(b"s", b"SELECT INBOX")
        await d.send(b"i IDLE\r\n")
        assert (await d.line()).startswith(b"+ ")
        await d.aclose()
        for _ in range(100):
            if await _idle_counts(imap_server) == (0, 0):
                break
            await trio.sleep(0.05)
        assert await _idle_counts(imap_server) == (0, 0)
        assert imap_server._imap_context.statistics()["sessions"] == 0
        notifier = imap_server.notifier
        assert not any(notifier._subscribers.values())
        # Nothing was stored from the half-sent APPEND.
        user = await imap_server.store.users.by_username(USER)
        inbox = await imap_server.store.mailboxes.get(user.id, "INBOX")
        assert inbox.message_count == 0


async def test_pipelined_commands_run_in_order(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _open(imap_server)
        msg = b"Subject: p\r\n\r\nbody\r\n"
        await c.send(
            f'p1 LOGIN "{USER}" "{PASSWORD}"\r\n'.encode()
            + b"p2 SELECT INBOX\r\n"
            + b"p3 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n"
            + b"p4 NOOP\r\np5 FETCH 1 (RFC822.SIZE)\r\np6 LOGOUT\r\n"
        )
        lines = await c.until_tagged(b"p6")
        tags = [x.split(b" ")[0] for x in lines if not x.startswith(b"*")]
        assert tags == [b"p1", b"p2", b"p3", b"p4", b"p5", b"p6"], lines
        assert b"* 1 FETCH (RFC822.SIZE %d)\r\n" % len(msg) in lines


async def test_shutdown_says_bye(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _open(imap_server)
        await c.login(USER, PASSWORD)
        await c.command(b"s", b"SELECT INBOX")
        await c.send(b"i IDLE\r\n")
        assert (await c.line()).startswith(b"+ ")
        imap_server.request_shutdown()
        line = await c.line()
        assert line.startswith(b"* BYE"), line
        assert await c.eof()


ODD_COMMANDS = [
    b"SELECT",
    b"FETCH",
    b"FETCH 1",
    b"FETCH 1 (BODY[1.2.3.MIME])",
    b"FETCH 1 (BODY[HEADER.FIELDS ()])",
    b"FETCH 1 (BODY[]<0.0>)",
    b"FETCH 1:4294967295 (FLAGS)",
    b"FETCH 4294967296 (FLAGS)",
    b"UID FETCH 1:* (BINARY[9.9])",
    b"UID",
    b"UID NOOP",
    b"SEARCH " + b"(" * 300 + b"ALL" + b")" * 300,
    b"SEARCH " + b"OR " * 200 + b"ALL" + b" ALL" * 200,
    b"SEARCH " + b"NOT " * 400 + b"ALL",
    b"SEARCH HEADER",
    b"SEARCH BEFORE 31-Feb-2020",
    b"SEARCH SINCE 1-Jan-1900 LARGER 99999999999999999999",
    b"STORE 1 +FLAGS (\\Recent)",
    b"STORE 1 FLAGS.SILENT ()",
    b"STORE 1 +FLAGS (" + b"k " * 500 + b")",
    b"COPY 1 \"\"",
    b"CREATE \"\"",
    b"CREATE \"a//b\"",
    b"CREATE \"" + b"x" * 5000 + b"\"",
    b"RENAME INBOX INBOX",
    b"RENAME Drafts Drafts/Sub",
    b"LIST \"\" \"" + b"%*" * 500 + b"\"",
    b"STATUS INBOX ()",
    b"STATUS INBOX (MESSAGES MESSAGES)",
    b"APPEND INBOX () \" 1-Jan-2020 00:00:00 +0000\" {0+}\r\n",
    b"ENABLE",
    b"ID NIL",
    b"ID (\"a\")",
    b"IDLE extra",
    b"AUTHENTICATE PLAIN",
    b"GETQUOTAROOT NoSuch",
    b"SETQUOTA \"\" (STORAGE 1)",
    b"NOTIFY NONE",
    b"COMPRESS LZW",  # (COMPRESS DEFLATE works: test_compress.py)
]


async def test_odd_commands_never_break_the_session(imap_server: Any) -> None:
    with trio.fail_after(60):
        c = await _open(imap_server)
        await c.login(USER, PASSWORD)
        msg = b"Subject: x\r\n\r\nbody\r\n"
        await c.send(b"ap APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        await c.until_tagged(b"ap")
        await c.command(b"sel", b"SELECT INBOX")
        for i, text in enumerate(ODD_COMMANDS):
            tag = b"o%d" % i
            lines = await c.command(tag, text)
            last = lines[-1]
            assert last.split(b" ")[1] in (b"OK", b"NO", b"BAD"), (text, lines)
            assert b"SERVERBUG" not in last, (text, lines)
            pong = await c.command(b"p%d" % i, b"NOOP")
            assert pong[-1].startswith(b"p%d OK" % i), (text, pong)


async def test_overlong_sasl_response_ends_session_cleanly(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _open(imap_server)
        await c.send(b"a AUTHENTICATE PLAIN\r\n")
        assert await c.line() == b"+ \r\n"

        async def flood() -> None:
            try:
                await c.send(b"A" * (200 * 1024) + b"\r\n")
            except trio.BrokenResourceError:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            line = await c.line()
        assert line.startswith(b"* BYE"), line[:80]
        assert await c.eof()


async def test_disconnect_mid_fetch_stream(imap_server: Any) -> None:
    with trio.fail_after(30):
        user = await imap_server.store.users.by_username(USER)
        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 4000
        await imap_server.store.messages.append(user.id, "INBOX", big)
        c = await _open(imap_server)
        await c.login(USER, PASSWORD)
        await c.command(b"s", b"SELECT INBOX")
        await c.send(b"f FETCH 1 (BODY.PEEK[])\r\n")
        while len(c.buf) < 10000:
            assert await c._fill()
        await c.aclose()
        for _ in range(100):
            if imap_server._imap_context.statistics()["sessions"] == 0:
                break
            await trio.sleep(0.05)
        assert imap_server._imap_context.statistics()["sessions"] == 0
        # The server is still fine for others.
        d = await _open(imap_server)
        await d.login(USER, PASSWORD)
        lines = await d.command(b"s", b"EXAMINE INBOX")
        assert lines[-1].startswith(b"s OK")


async def test_octets_that_are_not_utf8_in_strings(imap_server: Any) -> None:
    """A quoted string's 8-bit octets that are not UTF-8 reach the store as no text
    a query can hold: each such command is answered (NO or BAD), none is a server
    error, and the session goes on. (LOGIN, SEARCH, SETACL and DELETEACL with them
    were NO [SERVERBUG].)"""
    with trio.fail_after(30):
        c = await _open(imap_server)
        for tag, line in ((b"l1", b'LOGIN "\xff" x'), (b"l2", b'LOGIN "a\xff@example.com" x'),
                          (b"l3", b'LOGIN "' + USER.encode() + b'" "x\xff"')):
            lines = await c.command(tag, line)
            assert lines[-1].startswith(tag + b" NO [AUTHENTICATIONFAILED]"), lines
        await c.login(USER, PASSWORD)
        await c.command(b"s", b"SELECT INBOX")
        for tag, line, answer in (
                (b"a", b'SEARCH CHARSET UTF-8 TEXT "\xff"', b"BAD"),
                (b"b", b'SEARCH HEADER "\xff" x', b"BAD"),
                (b"c", b"SEARCH SUBJECT {1+}\r\n\xff", b"BAD"),
                (b"d", b'SETACL INBOX "\xff" lr', b"BAD"),
                (b"e", b'DELETEACL INBOX "\xff"', b"BAD"),
                (b"f", b'SEARCH TEXT "caf\xc3\xa9"', b"OK")):
            lines = await c.command(tag, line)
            assert lines[-1].startswith(tag + b" " + answer), (line, lines)
            assert b"SERVERBUG" not in lines[-1], lines
        lines = await c.command(b"n", b"NOOP")
        assert lines[-1].startswith(b"n OK"), lines
        await c.aclose()
