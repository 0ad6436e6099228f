"""COPY, MOVE and their UID forms with COPYUID (RFC 4315, RFC 6851)."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


async def _with_messages(server: Any, n: int) -> RawClient:
    c = await RawClient.open(server.ports["imap"])
    await c.login(USER, PASSWORD)
    for i in range(1, n + 1):
        msg = simple_message(i)
        await c.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        await c.until_tagged(b"a")
    await c.command(b"s", b"SELECT INBOX")
    return c


async def test_copy(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _with_messages(imap_server, 3)
        lines = await c.command(b"c", b"COPY 1,3 Archive")
        assert lines[-1].startswith(b"c OK [COPYUID "), lines
        _, _, _, _, src, dst = lines[-1].split(b" ")[:6]
        assert src == b"1,3" and dst == b"1:2]", lines
        lines = await c.command(b"u", b"UID COPY 2:* Archive")
        assert b"COPYUID" in lines[-1] and b" 2:3 3:4]" in lines[-1], lines
        lines = await c.command(b"x", b"COPY 1 Nowhere")
        assert lines[-1].startswith(b"x NO [TRYCREATE]"), lines
        lines = await c.command(b"y", b"UID COPY 99 Archive")
        assert lines[-1] == b"y OK COPY completed\r\n", lines
        lines = await c.command(b"t", b"STATUS Archive (MESSAGES)")
        assert lines[0] == b"* STATUS Archive (MESSAGES 4)\r\n"


async def test_move(imap_server: Any) -> None:
    with trio.fail_after(20):
        c = await _with_messages(imap_server, 3)
        lines = await c.command(b"m", b"MOVE 2 Trash")
        assert lines[0].startswith(b"* OK [COPYUID "), lines
        assert lines[1] == b"* 2 EXPUNGE\r\n", lines
        assert lines[-1].startswith(b"m OK"), lines
        lines = await c.command(b"n", b"UID MOVE 3 Trash")
        assert b"* 2 EXPUNGE\r\n" in lines, lines
        lines = await c.command(b"f", b"FETCH 1:* (UID)")
        assert lines[:-1] == [b"* 1 FETCH (UID 1)\r\n"], lines
        lines = await c.command(b"t", b"STATUS Trash (MESSAGES)")
        assert lines[0] == b"* STATUS Trash (MESSAGES 2)\r\n"
        # The moved bytes are the same bytes.
        await c.command(b"s", b"SELECT Trash")
        lines = await c.command(b"b", b"FETCH 1 (BODY.PEEK[])")
        assert simple_message(2) in lines[0]


async def test_a_copy_into_a_mailbox_this_process_wrote_is_its_write_and_commit(
        imap_server: Any) -> None:
    """A COPY into a mailbox whose document this process knows (its last write)
    reserves its UIDs in its bulkWrite (engine counters.py): no read of the
    destination, no findAndModify, no read of the messages' sizes first; and it
    leaves the document known, so the writes after it reserve the same way."""
    from duck.store import metrics

    with trio.fail_after(30):
        c = await _with_messages(imap_server, 4)
        # (The first COPY into Archive learns its document.)
        first = await c.command(b"c1", b"COPY 1 Archive")
        assert first[-1].startswith(b"c1 OK [COPYUID "), first
        metrics.reset()
        lines = await c.command(b"c2", b"COPY 2:4 Archive")
        await c.command(b"c2c", b"CAPABILITY")  # (closes COPY's scope)
        assert lines[-1].startswith(b"c2 OK [COPYUID "), lines
        assert lines[-1].split(b" ")[4:6] == [b"2:4", b"2:4]"], lines
        made = metrics.statistics()["COPY"]["by_db_command"]
        assert "findAndModify" not in made and "aggregate" not in made, made
        assert made.get("bulkWrite") == 1 and made.get("commitTransaction") == 1, made
        # The messages, their contents and the originals' digest entries (the suite
        # keeps a digest for every mailbox: tests/conftest.py): no read of the
        # destination, nor of the messages' sizes first.
        assert made.get("find", 0) <= 3, made
        await c.command(b"e", b"EXAMINE Archive")
        fetched = await c.command(b"f", b"UID FETCH 1:* (FLAGS)")
        assert sum(1 for line in fetched if b" FETCH (" in line) == 4, fetched
        await c.command(b"s2", b"SELECT Archive")
        metrics.reset()
        stored = await c.command(b"t", b"STORE 1 +FLAGS (\\Flagged)")
        await c.command(b"tc", b"CAPABILITY")
        assert stored[-1].startswith(b"t OK"), stored
        made = metrics.statistics()["STORE"]["by_db_command"]
        assert "findAndModify" not in made, made
        await c.aclose()


async def test_copy_and_move_into_a_missing_mailbox_say_trycreate(imap_server: Any) -> None:
    """RFC 3501 §6.4.7: NO [TRYCREATE] when the destination does not exist, also
    for a set of no messages; nothing is copied or moved."""
    with trio.fail_after(20):
        c = await _with_messages(imap_server, 2)
        for tag, command in ((b"c1", b"COPY 1:2 Nope"), (b"c2", b"UID COPY 9 Nope"),
                             (b"m1", b"MOVE 1 Nope/Deeper")):
            lines = await c.command(tag, command)
            assert lines[-1].startswith(tag + b" NO [TRYCREATE]"), lines
        lines = await c.command(b"f", b"FETCH 1:* (UID)")
        assert sum(1 for line in lines if b" FETCH (" in line) == 2, lines
        lines = await c.command(b"l", b'LIST "" "Nope*"')
        assert not any(b"Nope" in line for line in lines[:-1]), lines  # (not created)
        await c.aclose()
