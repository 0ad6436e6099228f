"""GETMETADATA / SETMETADATA (RFC 5464) over a real socket, on the embedded store."""

from __future__ import annotations

from typing import Any

import trio

from duck.store.mail.metadata import MAX_ENTRIES, MAX_VALUE

from .conftest import PASSWORD, USER
from .raw import RawClient


async def _client(server: Any) -> RawClient:
    return await RawClient.logged_in(server.ports["imap"], USER, PASSWORD)


async def test_capabilities_say_metadata(imap_server: Any) -> None:
    # RFC 5464 §1: METADATA (mailbox entries) and METADATA-SERVER (server entries).
    with trio.fail_after(20):
        c = await _client(imap_server)
        lines = await c.command(b"a", b"CAPABILITY")
        caps = lines[0].split()
        assert b"METADATA" in caps and b"METADATA-SERVER" in caps, lines


async def test_set_get_and_remove_server_entry(imap_server: Any) -> None:
    # RFC 5464 §4.3: SETMETADATA "" sets server annotations; NIL removes an entry.
    with trio.fail_after(20):
        c = await _client(imap_server)
        lines = await c.command(b"a", b'SETMETADATA "" (/private/comment "my server")')
        assert lines[-1].startswith(b"a OK"), lines
        lines = await c.command(b"b", b'GETMETADATA "" /private/comment')
        assert lines[0] == b'* METADATA "" (/private/comment "my server")\r\n', lines
        assert lines[-1].startswith(b"b OK"), lines
        # Entry names are case-insensitive (RFC 5464 §3.2).
        lines = await c.command(b"c", b'GETMETADATA "" /PRIVATE/Comment')
        assert b'"my server"' in lines[0], lines
        lines = await c.command(b"d", b'SETMETADATA "" (/private/comment NIL)')
        assert lines[-1].startswith(b"d OK"), lines
        lines = await c.command(b"e", b'GETMETADATA "" /private/comment')
        assert lines[0] == b'* METADATA "" (/private/comment NIL)\r\n', lines


async def test_private_and_shared_are_distinct(imap_server: Any) -> None:
    # RFC 5464 §3.2: /private and /shared are two entry trees.
    with trio.fail_after(20):
        c = await _client(imap_server)
        lines = await c.command(
            b"a", b'SETMETADATA INBOX (/private/comment "mine" /shared/comment "ours")')
        assert lines[-1].startswith(b"a OK"), lines
        lines = await c.command(b"b", b"GETMETADATA INBOX (/private/comment /shared/comment)")
        assert lines[0] == (b'* METADATA INBOX (/private/comment "mine" '
                            b'/shared/comment "ours")\r\n'), lines


async def test_depth(imap_server: Any) -> None:
    # RFC 5464 §4.2.2: DEPTH 0 is the entry only, 1 adds its children, infinity all.
    with trio.fail_after(20):
        c = await _client(imap_server)
        lines = await c.command(
            b"a", b'SETMETADATA INBOX (/private/x "0" /private/x/a "1" /private/x/a/b "2")')
        assert lines[-1].startswith(b"a OK"), lines
        lines = await c.command(b"b", b"GETMETADATA (DEPTH 0) INBOX /private/x")
        assert lines[0] == b'* METADATA INBOX (/private/x "0")\r\n', lines
        lines = await c.command(b"c", b"GETMETADATA (DEPTH 1) INBOX /private/x")
        assert lines[0] == b'* METADATA INBOX (/private/x "0" /private/x/a "1")\r\n', lines
        lines = await c.command(b"d", b"GETMETADATA (DEPTH infinity) INBOX /private/x")
        assert lines[0] == (b'* METADATA INBOX (/private/x "0" /private/x/a "1" '
                            b'/private/x/a/b "2")\r\n'), lines


async def test_maxsize_leaves_out_long_values(imap_server: Any) -> None:
    # RFC 5464 §4.2.1: values over MAXSIZE are not returned; LONGENTRIES in the OK.
    with trio.fail_after(20):
        c = await _client(imap_server)
        lines = await c.command(
            b"a", b'SETMETADATA INBOX (/private/short "abc" /private/long "0123456789")')
        assert lines[-1].startswith(b"a OK"), lines
        lines = await c.command(
            b"b", b"GETMETADATA (MAXSIZE 5) INBOX (/private/short /private/long)")
        assert lines[0] == b'* METADATA INBOX (/private/short "abc")\r\n', lines
        assert lines[-1].startswith(b"b OK [METADATA LONGENTRIES 10]"), lines
        lines = await c.command(b"c", b"GETMETADATA (MAXSIZE 50) INBOX (/private/long)")
        assert lines[-1].startswith(b"c OK GETMETADATA"), lines


async def test_binary_value_as_literal8(imap_server: Any) -> None:
    # RFC 5464 §4.3: values may be literal8 (binary).
    with trio.fail_after(20):
        c = await _client(imap_server)
        value = b"a\x00b"
        await c.send(b"a SETMETADATA INBOX (/private/bin ~{3+}\r\n" + value + b")\r\n")
        lines = await c.until_tagged(b"a")
        assert lines[-1].startswith(b"a OK"), lines
        lines = await c.command(b"b", b"GETMETADATA INBOX /private/bin")
        assert value in b"".join(lines[:-1]), lines


async def test_nonexistent_mailbox(imap_server: Any) -> None:
    # RFC 5464 §4.2 / §4.3: a mailbox that does not exist is a NO.
    with trio.fail_after(20):
        c = await _client(imap_server)
        lines = await c.command(b"a", b'SETMETADATA nosuch (/private/x "1")')
        assert lines[-1].startswith(b"a NO [NONEXISTENT]"), lines
        lines = await c.command(b"b", b"GETMETADATA nosuch /private/x")
        assert lines[-1].startswith(b"b NO [NONEXISTENT]"), lines


async def test_bad_entry_names(imap_server: Any) -> None:
    # RFC 5464 §3.2: "Invalid entry names result in a BAD response".
    with trio.fail_after(20):
        c = await _client(imap_server)
        for i, name in enumerate((b"/other/x", b"/private/*", b"/private/%",
                                  b"/private//x", b"/private/x/", b"comment")):
            tag = b"t%d" % i
            lines = await c.command(tag, b'SETMETADATA INBOX (' + name + b' "v")')
            assert lines[-1].startswith(tag + b" BAD"), (name, lines)
            lines = await c.command(tag, b"GETMETADATA INBOX " + name)
            assert lines[-1].startswith(tag + b" BAD"), (name, lines)


async def test_maxsize_refusal_and_atomicity(imap_server: Any) -> None:
    # RFC 5464 §4.3: a too-long value is NO [METADATA MAXSIZE n]; a SETMETADATA
    # with more than one entry is all or nothing.
    with trio.fail_after(20):
        c = await _client(imap_server)
        big = b"x" * (MAX_VALUE + 1)
        await c.send(b'a SETMETADATA INBOX (/private/ok "fine" /private/big {%d+}\r\n'
                     % len(big) + big + b")\r\n")
        lines = await c.until_tagged(b"a")
        assert lines[-1].startswith(b"a NO [METADATA MAXSIZE %d]" % MAX_VALUE), lines[-1]
        lines = await c.command(b"b", b"GETMETADATA INBOX /private/ok")
        assert lines[0] == b"* METADATA INBOX (/private/ok NIL)\r\n", lines


async def test_toomany(imap_server: Any) -> None:
    # RFC 5464 §4.3: past the entry cap, NO [METADATA TOOMANY], nothing set.
    with trio.fail_after(60):
        c = await _client(imap_server)
        pairs = b" ".join(b'/private/e%d "v"' % i for i in range(MAX_ENTRIES))
        lines = await c.command(b"a", b"SETMETADATA INBOX (" + pairs + b")")
        assert lines[-1].startswith(b"a OK"), lines[-1]
        lines = await c.command(b"b", b'SETMETADATA INBOX (/private/one-more "v")')
        assert lines[-1].startswith(b"b NO [METADATA TOOMANY]"), lines
        # Replacing or removing an entry is still allowed at the cap.
        lines = await c.command(b"c", b'SETMETADATA INBOX (/private/e0 "w" /private/e1 NIL)')
        assert lines[-1].startswith(b"c OK"), lines
        lines = await c.command(b"d", b'SETMETADATA INBOX (/private/one-more "v")')
        assert lines[-1].startswith(b"d OK"), lines


async def test_entries_follow_rename_and_go_with_delete(imap_server: Any) -> None:
    # Entries belong to the mailbox (RFC 5464 §3): RENAME keeps them, DELETE drops
    # them, and a new mailbox of the old name starts empty.
    with trio.fail_after(20):
        c = await _client(imap_server)
        assert (await c.command(b"a", b"CREATE box"))[-1].startswith(b"a OK")
        lines = await c.command(b"b", b'SETMETADATA box (/private/comment "kept")')
        assert lines[-1].startswith(b"b OK"), lines
        assert (await c.command(b"c", b"RENAME box moved"))[-1].startswith(b"c OK")
        lines = await c.command(b"d", b"GETMETADATA moved /private/comment")
        assert lines[0] == b'* METADATA moved (/private/comment "kept")\r\n', lines
        assert (await c.command(b"e", b"DELETE moved"))[-1].startswith(b"e OK")
        assert (await c.command(b"f", b"CREATE moved"))[-1].startswith(b"f OK")
        lines = await c.command(b"g", b"GETMETADATA moved /private/comment")
        assert lines[0] == b"* METADATA moved (/private/comment NIL)\r\n", lines
        count = await imap_server.store.database.run(
            lambda: imap_server.store.database.collection("metadata").count_documents(
                {"value": b"kept"}))
        assert count == 0
