"""APPEND: flags and date, APPENDUID, TRYCREATE, MULTIAPPEND, APPENDLIMIT, byte identity."""

from __future__ import annotations

import datetime as dt
import imaplib
from typing import Any

import trio

from duck.imap.limits import STREAMED_SHARE

from .conftest import PASSWORD, USER, aconnect, blocking, simple_message
from .raw import RawClient


async def test_append_with_flags_and_date_imaplib(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await aconnect(imap_server)
        # 8-bit text and no final CRLF survive (imaplib itself rewrites bare LF).
        message = b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\ncaf\xc3\xa9\r\nline two\r\n\tend"
        when = imaplib.Time2Internaldate(dt.datetime(2019, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
        typ, data = await blocking(lambda: c.append("Drafts", "(\\Draft $Later)", when,
                                                     message))
        assert typ == "OK" and data[0].startswith(b"[APPENDUID "), data
        _, uid = data[0].split()[1:3]
        await blocking(lambda: c.select("Drafts"))
        typ, data = await blocking(lambda: c.uid("FETCH", uid.rstrip(b"]"),
                                                 "(FLAGS INTERNALDATE BODY.PEEK[])"))
        meta = data[0][0]
        assert b"\\Draft" in meta and b"$Later" in meta and b"\\Recent" in meta
        assert b'INTERNALDATE " 2-Jan-2019 03:04:05 +0000"' in meta, meta
        assert data[0][1] == message
        typ, data = await blocking(lambda: c.append("Nowhere", None, None, b"x\r\n"))
        assert typ == "NO" and b"[TRYCREATE]" in data[0], data
        await blocking(c.logout)


async def test_multiappend_and_limit(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"c", b"CAPABILITY")
        assert b"APPENDLIMIT" not in lines[0]  # announced once authenticated
        await c.login(USER, PASSWORD)
        lines = await c.command(b"c", b"CAPABILITY")
        assert b"APPENDLIMIT=%d" % imap_server.config.max_message_size in lines[0], lines
        m1, m2 = simple_message(1), simple_message(2)
        await c.send(
            b"m APPEND INBOX (\\Seen) {%d+}\r\n" % len(m1) + m1
            + b" {%d+}\r\n" % len(m2) + m2 + b"\r\n"
        )
        lines = await c.until_tagged(b"m")
        assert lines[-1].startswith(b"m OK [APPENDUID "), lines
        assert lines[-1].split()[4] == b"1:2]", lines
        lines = await c.command(b"s", b"STATUS INBOX (MESSAGES UNSEEN)")
        assert lines[0] == b"* STATUS INBOX (MESSAGES 2 UNSEEN 1)\r\n", lines
        # Over the limit, a non-synchronizing literal is swallowed and refused.
        imap_server.config.max_message_size = 100
        try:
            d = await RawClient.open(imap_server.ports["imap"])
            await d.login(USER, PASSWORD)
            await d.send(b"b APPEND INBOX {200+}\r\n" + b"y" * 200 + b"\r\n")
            lines = await d.until_tagged(b"b")
            assert lines[-1].startswith(b"b NO [TOOBIG]"), lines
            lines = await d.command(b"n", b"NOOP")
            assert lines[-1].startswith(b"n OK")
        finally:
            imap_server.config.max_message_size = 64 * 1024 * 1024


async def test_odd_bytes_round_trip(imap_server: Any) -> None:
    """What goes in comes out: bare LF, bare CR, 8-bit headers, NUL, no final newline."""
    odd = [
        b"Subject: bare\nLF\n\nbody\nonly LF",
        b"Subject: \xe2\x98\x83 snow\r\n\r\nnul \x00 byte\r\nCR\ronly",
        b"no header at all",
        b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nbroken, never closed",
    ]
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        for i, msg in enumerate(odd):
            await c.send(b"a%d APPEND INBOX {%d+}\r\n" % (i, len(msg)) + msg + b"\r\n")
            lines = await c.until_tagged(b"a%d" % i)
            assert lines[-1].startswith(b"a%d OK" % i), lines
        await c.command(b"s", b"EXAMINE INBOX")
        for i, msg in enumerate(odd, start=1):
            lines = await c.command(b"f", b"FETCH %d (RFC822.SIZE BODY.PEEK[])" % i)
            assert lines[0] == (
                b"* %d FETCH (RFC822.SIZE %d BODY[] {%d}\r\n" % (i, len(msg), len(msg))
                + msg + b")\r\n"
            ), lines


async def test_binary_append_is_stored_so_that_body_carries_no_nul(imap_server: Any) -> None:
    """RFC 3516 §4.3 (imaptest's append-binary group): a literal8 APPEND of a part
    with NUL octets is kept base64-encoded; BODY[1] carries no NUL and BINARY[1]
    gives the octets back."""
    octets = b"\x00 -\xff\r\n\r\n"
    msg = (b"From: user@domain.org\r\nMime-Version: 1.0\r\n"
           b"Content-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n" + octets)
    with trio.fail_after(30):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        await c.send(b"a APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
        assert (await c.until_tagged(b"a"))[-1].startswith(b"a OK")
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(b"f", b"FETCH 1 (BODY.PEEK[1])")
        assert b"\x00" not in b"".join(lines) and lines[-1].startswith(b"f OK"), lines
        lines = await c.command(b"g", b"FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])")
        assert b"".join(lines[:-1]) == (b"* 1 FETCH (BINARY.SIZE[1] %d BINARY[1] ~{%d}\r\n"
                                        % (len(octets), len(octets)) + octets + b")\r\n")
        await c.aclose()


async def test_large_literals_wait_for_the_process_budget(imap_server: Any) -> None:
    """``literal_memory``: a literal kept whole (here literal8, RFC 3516 §4.3 needs
    all of it) takes a share of the process's literal budget before its ``+``; a
    second one waits for its ``+`` while the first holds the budget, and gets it
    when the first command has run. A streamed literal (a large plain APPEND)
    takes STREAMED_SHARE whatever its size, a small one nothing."""
    budget = imap_server.context.limits.literals
    size = 1536 * 1024  # (two kept ones do not fit beside each other: 6 * size)
    budget.total = 3 * (size + 100) + STREAMED_SHARE
    body = b"Subject: big\r\n\r\n" + b"x" * (size - 16)
    with trio.fail_after(60):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        b = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await a.send(b"a APPEND INBOX ~{%d}\r\n" % size)
        assert (await a.line()).startswith(b"+"), "the first literal is asked for"
        # Three copies of the literal and its command line (limits.LITERAL_COPIES).
        assert 3 * size <= budget.used < 3 * (size + 100)
        await b.send(b"b APPEND INBOX ~{%d}\r\n" % size)
        with trio.move_on_after(1.0):
            line = await b.line()
            raise AssertionError(f"the second literal was asked for at once: {line!r}")
        assert budget.statistics()["waiting"] == 1
        # A streamed APPEND fits beside the first, a small one takes no share.
        first = budget.used
        for tag, message in ((b"c", body), (b"d", simple_message(1))):
            await c.send(tag + b" APPEND INBOX {%d}\r\n" % len(message))
            assert (await c.line()).startswith(b"+")
            assert budget.used - first == (STREAMED_SHARE if tag == b"c" else 0)
            await c.send(message + b"\r\n")
            assert (await c.until_tagged(tag))[-1].startswith(tag + b" OK")
            while budget.used > first:  # given back once the tagged reply is sent
                await trio.sleep(0.01)
        # The first APPEND runs and gives its share back: the second may go on.
        await a.send(body + b"\r\n")
        assert (await a.until_tagged(b"a"))[-1].startswith(b"a OK")
        assert (await b.line()).startswith(b"+")
        await b.send(body + b"\r\n")
        assert (await b.until_tagged(b"b"))[-1].startswith(b"b OK")
        while budget.used:  # given back once the tagged reply is sent
            await trio.sleep(0.01)
        lines = await c.command(b"s", b"STATUS INBOX (MESSAGES)")
        assert lines[0] == b"* STATUS INBOX (MESSAGES 4)\r\n", lines


async def test_append_behind_its_view_takes_recent_without_a_claim_of_its_own(
        imap_server: Any) -> None:
    """RFC 3501 §2.3.2: the appending session is the first told of its message, so
    its \\Recent is that session's, also when its view is behind another session's
    change: the delivery claims it (every earlier message being claimed), and no
    session makes a claim of its own afterwards."""
    from duck.store import metrics

    with trio.fail_after(60):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        b = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        first = simple_message(1)
        await a.command(b"a0", b"APPEND INBOX {%d+}\r\n" % len(first) + first)
        for c in (a, b):
            await c.command(b"s", b"SELECT INBOX")
        await b.command(b"b1", b"STORE 1 +FLAGS (\\Flagged)")  # (a's view is behind)
        message = simple_message(2)
        metrics.reset()
        appended = await a.command(b"a1", b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        await a.command(b"a1c", b"CAPABILITY")  # (closes APPEND's scope)
        assert appended[-1].startswith(b"a1 OK"), appended
        # The delivery's write and the journal read of its update: no claim.
        made = metrics.statistics()["APPEND"]["by_db_command"]
        assert "findAndModify" not in made, made
        for c, tag, recent in ((a, b"a2", True), (b, b"b2", False)):
            metrics.reset()
            lines = await c.command(tag, b"NOOP")
            await c.command(tag + b"c", b"CAPABILITY")  # (closes NOOP's scope)
            made = metrics.statistics()["NOOP"]["by_db_command"]
            assert "findAndModify" not in made, made
            assert b"* 2 EXISTS\r\n" in appended + lines, lines
            lines = await c.command(tag + b"f", b"FETCH 2 FLAGS")
            assert (b"\\Recent" in lines[0]) is recent, lines
        await a.aclose()
        await b.aclose()
