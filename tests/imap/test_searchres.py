"""SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) keeps a result that "$" names in
later commands of the same selection."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


async def _mailbox_of_five(server: Any) -> RawClient:
    c = await RawClient.logged_in(server.ports["imap"], USER, PASSWORD)
    for n in range(1, 6):
        msg = simple_message(n, subject="odd" if n % 2 else "even")
        lines = await c.command(b"a", b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
        assert lines[-1].startswith(b"a OK"), lines
    await c.command(b"s", b"SELECT INBOX")
    return c


def _fetched_uids(lines: list[bytes]) -> list[int]:
    return [int(x.split(b"(UID ")[1].split(b")")[0].split(b" ")[0])
            for x in lines if b" FETCH (" in x]


async def test_saved_result_names_messages_in_later_commands(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await _mailbox_of_five(imap_server)
        assert b"SEARCHRES" in b"".join(await c.command(b"c", b"CAPABILITY"))
        # §2.1: SAVE alone answers no ESEARCH.
        lines = await c.command(b"t1", b"UID SEARCH RETURN (SAVE) SUBJECT odd")
        assert lines == [b"t1 OK SEARCH completed\r\n"], lines
        lines = await c.command(b"t2", b"FETCH $ (UID)")
        assert _fetched_uids(lines) == [1, 3, 5], lines
        lines = await c.command(b"t3", b"UID STORE $ +FLAGS.SILENT (\\Flagged)")
        assert lines[-1].startswith(b"t3 OK"), lines
        lines = await c.command(b"t4", b"UID SEARCH FLAGGED")
        assert lines[0] == b"* SEARCH 1 3 5\r\n", lines
        # "$" as a search key, and SAVE beside other options is not itself reported.
        lines = await c.command(b"t5", b"SEARCH RETURN (SAVE ALL) $ NOT UID 3")
        assert lines[0] == b'* ESEARCH (TAG "t5") ALL 1,5\r\n', lines
        lines = await c.command(b"t6", b"UID FETCH $ (UID)")
        assert _fetched_uids(lines) == [1, 5], lines
        # §2.4: with MIN or MAX alone, only those are saved.
        lines = await c.command(b"t7", b"SEARCH RETURN (SAVE MAX) ALL")
        assert lines[0] == b'* ESEARCH (TAG "t7") MAX 5\r\n', lines
        assert _fetched_uids(await c.command(b"t8", b"FETCH $ (UID)")) == [5]
        await c.aclose()


async def test_saved_result_follows_expunges_and_ends_with_the_selection(
        imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await _mailbox_of_five(imap_server)
        await c.command(b"t1", b"SEARCH RETURN (SAVE) SUBJECT even")
        await c.command(b"t2", b"UID STORE 2 +FLAGS (\\Deleted)")
        await c.command(b"t3", b"EXPUNGE")
        # §2.1: an expunged message leaves the saved result.
        assert _fetched_uids(await c.command(b"t4", b"FETCH $ (UID)")) == [4]
        # A failed SEARCH with SAVE empties it.
        lines = await c.command(b"t5", b"SEARCH RETURN (SAVE) CHARSET NO-SUCH ALL")
        assert lines[-1].startswith(b"t5 NO"), lines
        assert await c.command(b"t6", b"FETCH $ (UID)") == [b"t6 OK FETCH completed\r\n"]
        # A new selection starts with nothing saved.
        await c.command(b"t7", b"SEARCH RETURN (SAVE) ALL")
        await c.command(b"t8", b"SELECT INBOX")
        assert await c.command(b"t9", b"FETCH $ (UID)") == [b"t9 OK FETCH completed\r\n"]
        # SORT saves as SEARCH does (RFC 5267 §3 with RFC 5182): MIN is the first in
        # sort order, and it alone is saved.
        lines = await c.command(b"u1", b"SORT RETURN (SAVE MIN) (REVERSE SUBJECT) UTF-8 ALL")
        assert lines[0] == b'* ESEARCH (TAG "u1") MIN 4\r\n', lines
        assert _fetched_uids(await c.command(b"u2", b"UID FETCH $ (UID)")) == [5]
        lines = await c.command(b"u3", b"SORT RETURN (SAVE) (SUBJECT) UTF-8 ALL")
        assert lines == [b"u3 OK SORT completed\r\n"], lines
        assert _fetched_uids(await c.command(b"u4", b"UID FETCH $ (UID)")) == [1, 3, 4, 5]
        await c.aclose()
