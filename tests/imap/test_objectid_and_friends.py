"""Capabilities that were served before they were advertised: OBJECTID (RFC 8474),
STATUS=SIZE (RFC 8438), SAVEDATE (RFC 8514) and WITHIN (RFC 5032). Each is in
CAPABILITY and does what its RFC says."""

from __future__ import annotations

import re
from typing import Any

import trio

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


async def test_capabilities_are_advertised(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        lines = await c.command(b"c", b"CAPABILITY")
        caps = lines[0].split()
        for cap in (b"OBJECTID", b"STATUS=SIZE", b"SAVEDATE", b"WITHIN"):
            assert cap in caps, lines
        await c.aclose()


async def test_objectid(imap_server: Any) -> None:
    """RFC 8474: MAILBOXID in CREATE's OK (§4.1), in SELECT's responses (§4.2) and
    STATUS (§4.3), stable across RENAME; EMAILID and THREADID by FETCH, and SEARCH
    EMAILID finds the message (§5, §6)."""
    with trio.fail_after(30):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        lines = await c.command(b"a", b"CREATE Objects")
        m = re.match(rb"a OK \[MAILBOXID \(([A-Za-z0-9_-]{1,255})\)\]", lines[-1])
        assert m, lines
        box_id = m.group(1)
        await c.command(b"r", b"RENAME Objects Things")
        lines = await c.command(b"s", b"STATUS Things (MAILBOXID)")
        assert lines[0] == b"* STATUS Things (MAILBOXID (" + box_id + b"))\r\n", lines
        msg = simple_message(1)
        await c.send(b"p APPEND Things {%d+}\r\n" % len(msg) + msg + b"\r\n")
        await c.until_tagged(b"p")
        lines = await c.command(b"x", b"SELECT Things")
        assert b"* OK [MAILBOXID (" + box_id + b")] mailbox id\r\n" in lines, lines
        lines = await c.command(b"f", b"FETCH 1 (EMAILID THREADID)")
        m = re.search(rb"EMAILID \(([A-Za-z0-9_-]+)\) THREADID \(([A-Za-z0-9_-]+)\)", lines[0])
        assert m, lines
        lines = await c.command(b"q", b"SEARCH EMAILID " + m.group(1))
        assert lines[0] == b"* SEARCH 1\r\n", lines
        await c.aclose()


async def test_status_size_and_savedate_and_within(imap_server: Any) -> None:
    """RFC 8438: STATUS SIZE is the sum of the messages' RFC822.SIZE; RFC 8514: FETCH
    SAVEDATE and SEARCH SAVEDSINCE / SAVEDATESUPPORTED; RFC 5032: YOUNGER/OLDER
    in seconds against INTERNALDATE."""
    with trio.fail_after(30):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await c.command(b"a", b"CREATE Sized")
        for i, date in ((1, b'"01-Jan-2001 00:00:00 +0000" '), (2, b"")):
            msg = simple_message(i)
            await c.send(b"p APPEND Sized " + date + b"{%d+}\r\n" % len(msg) + msg + b"\r\n")
            await c.until_tagged(b"p")
        await c.command(b"x", b"SELECT Sized")
        lines = await c.command(b"f", b"FETCH 1:* (RFC822.SIZE SAVEDATE)")
        sizes = [int(x) for x in re.findall(rb"RFC822.SIZE (\d+)", b"".join(lines))]
        assert len(sizes) == 2 and all(b'SAVEDATE "' in x for x in lines[:-1]), lines
        lines = await c.command(b"s", b"STATUS Sized (SIZE MESSAGES)")
        assert lines[0] == b"* STATUS Sized (SIZE %d MESSAGES 2)\r\n" % sum(sizes), lines
        lines = await c.command(b"d", b"SEARCH SAVEDATESUPPORTED SAVEDSINCE 1-Jan-2020")
        assert lines[0] == b"* SEARCH 1 2\r\n", lines
        lines = await c.command(b"y", b"SEARCH YOUNGER 3600")
        assert lines[0] == b"* SEARCH 2\r\n", lines
        lines = await c.command(b"o", b"SEARCH OLDER 3600")
        assert lines[0] == b"* SEARCH 1\r\n", lines
        await c.aclose()
