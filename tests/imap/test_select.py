"""SELECT/EXAMINE responses, CLOSE (silent expunge), UNSELECT, CHECK, ID, ENABLE."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import MESSAGE, PASSWORD, USER, simple_message
from .raw import RawClient


async def test_select_responses_and_close(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        for i in range(1, 4):
            msg = simple_message(i)
            flags = b"(\\Seen) " if i == 1 else b""
            await c.send(b"a APPEND INBOX " + flags + b"{%d+}\r\n" % len(msg) + msg + b"\r\n")
            await c.until_tagged(b"a")
        lines = await c.command(b"s", b"SELECT INBOX (CONDSTORE)")
        text = b"".join(lines)
        assert b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n" in lines
        assert b"* 3 EXISTS\r\n" in lines and b"* 3 RECENT\r\n" in lines
        assert b"* OK [UNSEEN 2]" in text and b"[UIDVALIDITY " in text
        assert b"* OK [UIDNEXT 4]" in text and b"[HIGHESTMODSEQ " in text
        assert b"[PERMANENTFLAGS (" in text and b"\\*)" in text
        assert lines[-1].startswith(b"s OK [READ-WRITE]")
        lines = await c.command(b"k", b"CHECK")
        assert lines[-1].startswith(b"k OK")
        await c.command(b"d", b"STORE 2:3 +FLAGS.SILENT (\\Deleted)")
        lines = await c.command(b"x", b"CLOSE")
        assert lines == [b"x OK CLOSE completed\r\n"], lines  # no untagged EXPUNGE
        lines = await c.command(b"f", b"FETCH 1 (FLAGS)")
        assert lines[-1].startswith(b"f BAD"), lines
        lines = await c.command(b"s2", b"SELECT INBOX")
        assert b"* 1 EXISTS\r\n" in lines and b"* 0 RECENT\r\n" in lines, lines
        await c.command(b"d2", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        lines = await c.command(b"u", b"UNSELECT")
        assert lines == [b"u OK UNSELECT completed\r\n"]
        lines = await c.command(b"t", b"STATUS INBOX (MESSAGES)")
        assert lines[0] == b"* STATUS INBOX (MESSAGES 1)\r\n"  # UNSELECT did not expunge


async def test_id_and_enable(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"i", b'ID ("name" "test")')
        assert lines[0].startswith(b'* ID ("name" "duck"'), lines
        lines = await c.command(b"e0", b"ENABLE CONDSTORE")
        assert lines[-1].startswith(b"e0 BAD"), lines  # only once authenticated
        await c.login(USER, PASSWORD)
        lines = await c.command(b"e", b"ENABLE CONDSTORE X-UNKNOWN UTF8=ACCEPT")
        assert lines[0] == b"* ENABLED CONDSTORE UTF8=ACCEPT\r\n", lines
        await c.command(b"s", b"SELECT INBOX")
        lines = await c.command(b"e2", b"ENABLE CONDSTORE")
        assert lines[-1].startswith(b"e2 BAD"), lines  # RFC 5161: not once selected
        await c.command(b"u", b"UNSELECT")
        lines = await c.command(b"c", 'CREATE "Bücher"'.encode())
        assert lines[-1].startswith(b"c OK"), lines
        lines = await c.command(b"l", b'LIST "" "B*"')
        assert lines[0] == '* LIST (\\HasNoChildren) "/" "Bücher"\r\n'.encode(), lines


async def test_select_lists_every_keyword_in_use(imap_server: Any) -> None:
    """FLAGS at SELECT holds every keyword on a message of the mailbox, in the
    spelling first met, and PERMANENTFLAGS the same with \\* (none when read-only)."""
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        for i, flags in enumerate([b"($Zeta \\Seen)", b"(Alpha $zeta)", b"()", b"($Mid)"]):
            msg = simple_message(i)
            await c.send(b"a APPEND INBOX " + flags + b" {%d+}\r\n" % len(msg) + msg + b"\r\n")
            assert (await c.until_tagged(b"a"))[-1].startswith(b"a OK")
        lines = await c.command(b"s", b"SELECT INBOX")
        defined = b"\\Seen \\Answered \\Flagged \\Deleted \\Draft $Mid $Zeta Alpha"
        assert b"* FLAGS (" + defined + b")\r\n" in lines, lines
        assert b"* OK [PERMANENTFLAGS (" + defined + b" \\*)] flags permitted\r\n" in lines
        # Every FETCH then shows only flags already listed: no FLAGS again.
        lines = await c.command(b"f", b"FETCH 1:* (FLAGS)")
        assert not [x for x in lines if x.startswith(b"* FLAGS")], lines
        lines = await c.command(b"x", b"EXAMINE INBOX")
        assert b"* FLAGS (" + defined + b")\r\n" in lines, lines
        assert b"* OK [PERMANENTFLAGS ()] flags permitted\r\n" in lines, lines


async def test_examine_and_status_report_recent_without_taking_it(imap_server: Any) -> None:
    """RFC 3501 §6.3.2: EXAMINE MUST NOT cause messages to lose \\Recent; §6.3.10:
    STATUS RECENT counts them. Only SELECT takes them (imaptest's "select" group)."""
    with trio.fail_after(30):
        user = await imap_server.store.users.by_username(USER)
        for i in range(2):
            await imap_server.store.messages.append(user.id, "INBOX", MESSAGE.replace(
                b"hello there", b"hello %d" % i))
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        status = b"STATUS INBOX (MESSAGES RECENT UNSEEN)"
        lines = await c.command(b"s1", status)
        assert lines[0] == b"* STATUS INBOX (MESSAGES 2 RECENT 2 UNSEEN 2)\r\n", lines
        lines = await c.command(b"e", b"EXAMINE INBOX")
        assert b"* 2 RECENT\r\n" in lines and lines[-1].startswith(b"e OK [READ-ONLY]")
        lines = await c.command(b"f", b"FETCH 1:* (FLAGS)")
        assert all(b"\\Recent" in x for x in lines[:-1]) and len(lines) == 3, lines
        await c.command(b"c", b"CLOSE")
        lines = await c.command(b"s2", status)
        assert lines[0] == b"* STATUS INBOX (MESSAGES 2 RECENT 2 UNSEEN 2)\r\n", lines
        lines = await c.command(b"x", b"SELECT INBOX")
        assert b"* 2 RECENT\r\n" in lines and lines[-1].startswith(b"x OK [READ-WRITE]")
        await c.command(b"c2", b"CLOSE")
        lines = await c.command(b"s3", status)
        assert lines[0] == b"* STATUS INBOX (MESSAGES 2 RECENT 0 UNSEEN 2)\r\n", lines
        # A third message: recent again for the next one to look.
        await imap_server.store.messages.append(user.id, "INBOX", MESSAGE)
        lines = await c.command(b"s4", status)
        assert lines[0] == b"* STATUS INBOX (MESSAGES 3 RECENT 1 UNSEEN 3)\r\n", lines
        await c.aclose()
