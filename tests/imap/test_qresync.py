"""QRESYNC (RFC 7162 §3.2): SELECT with resync data, VANISHED, UID FETCH VANISHED."""

from __future__ import annotations

import re
from typing import Any

import trio

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


async def _client(server: Any) -> RawClient:
    return await RawClient.logged_in(server.ports["imap"], USER, PASSWORD)


async def test_qresync(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await _client(imap_server)
        lines = await a.command(b"e", b"ENABLE QRESYNC")
        assert lines[0] == b"* ENABLED QRESYNC\r\n", lines
        for n in range(1, 5):
            msg = simple_message(n)
            await a.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
            await a.until_tagged(b"a")
        lines = await a.command(b"s", b"SELECT INBOX")
        text = b"".join(lines)
        validity = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))  # type: ignore[union-attr]
        modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))  # type: ignore[union-attr]
        # Changes by someone else while "offline": a flag change and two expunges.
        b = await _client(imap_server)
        await b.command(b"s", b"SELECT INBOX")
        await b.command(b"t", b"STORE 2 +FLAGS (\\Flagged)")
        await b.command(b"d", b"STORE 1,3 +FLAGS (\\Deleted)")
        await b.command(b"x", b"EXPUNGE")
        lines = await a.command(b"q", b"SELECT INBOX (QRESYNC (%d %d))" % (validity, modseq))
        assert lines[0] == b"* OK [CLOSED] previous mailbox closed\r\n", lines
        assert b"* VANISHED (EARLIER) 1,3\r\n" in lines, lines
        fetches = [x for x in lines if b" FETCH " in x and x.startswith(b"* ")]
        assert len(fetches) == 1 and b"UID 2 " in fetches[0] and b"\\Flagged" in fetches[0]
        assert b"MODSEQ (" in fetches[0]
        # Live expunges arrive as VANISHED, not EXPUNGE.
        await b.command(b"d2", b"UID STORE 2 +FLAGS.SILENT (\\Deleted)")
        await b.command(b"x2", b"EXPUNGE")
        lines = await a.command(b"n", b"NOOP")
        assert b"* VANISHED 2\r\n" in lines and not any(b"EXPUNGE" in x for x in lines), lines
        lines = await a.command(b"f", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % modseq)
        assert lines[0] == b"* VANISHED (EARLIER) 1:3\r\n", lines
        lines = await a.command(b"g", b"SELECT INBOX (QRESYNC (1 1))")  # wrong UIDVALIDITY
        assert not any(b"VANISHED" in x for x in lines), lines
        c = await _client(imap_server)
        lines = await c.command(b"h", b"SELECT INBOX (QRESYNC (%d 1))" % validity)
        assert lines[-1].startswith(b"h BAD"), lines  # not enabled
