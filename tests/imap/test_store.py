"""STORE ±FLAGS(.SILENT), keywords, UNCHANGEDSINCE/MODIFIED (RFC 7162)."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import PASSWORD, USER, KeywordChecker, simple_message
from .raw import RawClient


async def _mailbox_with(server: Any, n: int) -> RawClient:
    c = await RawClient.open(server.ports["imap"])
    await c.login(USER, PASSWORD)
    for i in range(1, n + 1):
        msg = simple_message(i)
        await c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        await c.until_tagged(b"a")
    lines = await c.command(b"s", b"SELECT INBOX")
    assert lines[-1].startswith(b"s OK"), lines
    return c


async def test_store_modes(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _mailbox_with(imap_server, 3)
        lines = await c.command(b"t1", b"STORE 1:2 +FLAGS (\\Flagged Keyword1)")
        assert b"* 1 FETCH (FLAGS (\\Flagged Keyword1 \\Recent))\r\n" in lines, lines
        assert b"* 2 FETCH (FLAGS (\\Flagged Keyword1 \\Recent))\r\n" in lines, lines
        lines = await c.command(b"t2", b"STORE 1 -FLAGS (keyword1)")  # case-insensitive
        assert b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n" in lines, lines
        lines = await c.command(b"t3", b"STORE 2 FLAGS (\\Answered)")
        assert b"* 2 FETCH (FLAGS (\\Answered \\Recent))\r\n" in lines, lines
        lines = await c.command(b"t4", b"UID STORE 3 +FLAGS.SILENT (\\Seen)")
        assert lines == [b"t4 OK STORE completed\r\n"], lines
        await c.command(b"t6", b"STORE 3 +FLAGS.SILENT (Keyword1)")
        lines = await c.command(b"f", b"FETCH 1:3 (FLAGS)")
        assert b"* 3 FETCH (FLAGS (\\Seen Keyword1 \\Recent))\r\n" in lines, lines
        # A new keyword shows in FLAGS and PERMANENTFLAGS at the next SELECT (\* too).
        lines = await c.command(b"s", b"SELECT INBOX")
        flags = next(x for x in lines if x.startswith(b"* FLAGS"))
        assert b"Keyword1" in flags, flags
        perm = next(x for x in lines if b"PERMANENTFLAGS" in x)
        assert b"\\*" in perm and b"\\Deleted" in perm, perm
        lines = await c.command(b"t5", b"STORE 1 +FLAGS (\\Bogus)")
        assert not lines[-1].startswith(b"t5 OK"), lines


async def test_unchangedsince(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _mailbox_with(imap_server, 2)
        await c.command(b"u", b"UNSELECT")
        lines = await c.command(b"e", b"ENABLE CONDSTORE")
        assert lines[0] == b"* ENABLED CONDSTORE\r\n", lines
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(b"f", b"FETCH 1:2 (MODSEQ)")
        modseqs = [int(x.split(b"MODSEQ (")[1].split(b")")[0]) for x in lines[:-1]]
        lines = await c.command(b"t", b"STORE 1 +FLAGS (\\Seen)")
        assert b"MODSEQ (" in lines[0], lines
        # Message 1 changed since modseqs[0]: the conditional STORE skips it.
        lines = await c.command(
            b"u", b"STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % max(modseqs)
        )
        assert lines[-1].startswith(b"u OK [MODIFIED 1]"), lines
        assert any(x.startswith(b"* 2 FETCH") and b"\\Flagged" in x for x in lines), lines
        lines = await c.command(b"v", b"FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % max(modseqs))
        fetched = [x for x in lines if x.startswith(b"* ")]
        assert len(fetched) == 2 and all(b"MODSEQ" in x for x in fetched), lines
        lines = await c.command(b"w", b"SEARCH MODSEQ %d" % (max(modseqs) + 1))
        assert lines[0].startswith(b"* SEARCH 1 2 (MODSEQ "), lines


async def test_store_announces_new_keywords(imap_server: Any) -> None:
    """A keyword STORE makes goes out in FLAGS and PERMANENTFLAGS ahead of the FETCH
    showing it (RFC 3501 §7.2.6), once; after a .SILENT STORE too."""
    with trio.fail_after(20):
        c = await _mailbox_with(imap_server, 2)
        await c.command(b"u", b"UNSELECT")
        checker = KeywordChecker()
        checker.absorb(await c.command(b"s", b"SELECT INBOX"))
        lines = await c.command(b"t1", b"STORE 1 +FLAGS (\\Seen $Work)")
        checker.absorb(lines)
        assert lines[:3] == [
            b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work)\r\n",
            b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work \\*)]"
            b" flags permitted\r\n",
            b"* 1 FETCH (FLAGS (\\Seen $Work))\r\n",
        ], lines
        # Known already (keywords compare case-insensitively): nothing more.
        lines = await c.command(b"t2", b"STORE 2 +FLAGS ($WORK)")
        assert lines == [b"* 2 FETCH (FLAGS ($WORK))\r\n",
                         b"t2 OK STORE completed\r\n"], lines
        lines = await c.command(b"t3", b"UID STORE 2 +FLAGS.SILENT ($Home)")
        checker.absorb(lines)
        assert lines[0].startswith(b"* FLAGS (") and b" $Home $WORK" not in lines[0], lines
        assert lines[0].endswith(b"\\Draft $Home $Work)\r\n"), lines
        assert b"$Home $Work \\*" in lines[1] and lines[2].startswith(b"t3 OK"), lines
        checker.absorb(await c.command(b"f", b"FETCH 1:* (FLAGS)"))
        assert checker.flags_responses == 3
