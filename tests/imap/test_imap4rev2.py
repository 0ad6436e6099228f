"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: advertised, and what ENABLE IMAP4rev2 changes."""

from __future__ import annotations

from typing import Any

import trio

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


async def _append(c: RawClient, mailbox: bytes, n: int, flags: bytes = b"") -> list[bytes]:
    msg = simple_message(n)
    await c.send(b"a APPEND " + mailbox + b" " + flags + b"{%d+}\r\n" % len(msg) + msg + b"\r\n")
    lines = await c.until_tagged(b"a")
    assert lines[-1].startswith(b"a OK")
    return lines


async def test_both_versions_advertised_rev1_until_enabled(imap_server: Any) -> None:
    """RFC 9051 §6.3.1/Appendix E: a server of both versions lists both and speaks
    IMAP4rev1 (RECENT, the SEARCH response) until the client enables IMAP4rev2."""
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"c", b"CAPABILITY")
        assert b" IMAP4rev1 IMAP4rev2 " in lines[0], lines
        await c.login(USER, PASSWORD)
        await _append(c, b"INBOX", 1)
        lines = await c.command(b"s", b"SELECT INBOX")
        assert b"* 1 RECENT\r\n" in lines, lines
        lines = await c.command(b"f", b"SEARCH ALL")
        assert lines[0] == b"* SEARCH 1\r\n", lines


async def test_enabled_rev2_select_search_and_recent(imap_server: Any) -> None:
    """After ENABLE IMAP4rev2: SELECT sends no RECENT and no UNSEEN code but a LIST
    response for the mailbox (RFC 9051 §6.3.2); \\Recent appears nowhere; SEARCH
    answers with ESEARCH (§6.4.4, as RETURN (ALL)), also when nothing matches."""
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        await c.command(b"cr", b"CREATE INBOX/Sub")
        await _append(c, b"INBOX", 1, b"(\\Seen) ")
        await _append(c, b"INBOX", 2)
        await _append(c, b"INBOX", 3)
        lines = await c.command(b"e", b"ENABLE IMAP4rev2")
        assert lines[0] == b"* ENABLED IMAP4rev2\r\n", lines
        lines = await c.command(b"s", b"SELECT INBOX")
        text = b"".join(lines)
        assert b"* 3 EXISTS\r\n" in lines, lines
        assert b"RECENT" not in text and b"[UNSEEN" not in text, lines
        assert b'* LIST (\\HasChildren) "/" INBOX\r\n' in lines, lines
        assert b"\\Recent" not in text
        lines = await c.command(b"f", b"FETCH 1:* (FLAGS)")
        assert b"\\Recent" not in b"".join(lines), lines
        lines = await c.command(b"q", b"SEARCH UNSEEN")
        assert lines[0] == b'* ESEARCH (TAG "q") ALL 2:3\r\n', lines
        lines = await c.command(b"u", b"UID SEARCH UNSEEN")
        assert lines[0] == b'* ESEARCH (TAG "u") UID ALL 2:3\r\n', lines
        lines = await c.command(b"n", b"SEARCH SUBJECT nothing-like-this")
        assert lines[0] == b'* ESEARCH (TAG "n")\r\n', lines
        # A new message: EXISTS without RECENT.
        lines = await _append(c, b"INBOX", 4)
        lines += await c.command(b"o", b"NOOP")
        text = b"".join(lines)
        assert b"* 4 EXISTS\r\n" in lines and b"RECENT" not in text, lines
        # RFC 9051 §6.3.2: re-SELECT closes the previous mailbox with [CLOSED].
        lines = await c.command(b"s2", b"SELECT INBOX/Sub")
        assert lines[0].startswith(b"* OK [CLOSED]"), lines
        assert b'* LIST (\\HasNoChildren) "/" INBOX/Sub\r\n' in lines, lines


async def test_enabled_rev2_mailbox_names_are_utf8(imap_server: Any) -> None:
    """RFC 9051 §5.1: IMAP4rev2 mailbox names are UTF-8, not modified UTF-7."""
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        await c.command(b"e", b"ENABLE IMAP4rev2")
        lines = await c.command(b"c", 'CREATE "Entwürfe"'.encode())
        assert lines[-1].startswith(b"c OK"), lines
        lines = await c.command(b"l", b'LIST "" "Entw*"')
        assert lines[0] == '* LIST (\\HasNoChildren) "/" "Entwürfe"\r\n'.encode(), lines
        # A rev1 session sees the same mailbox in modified UTF-7.
        d = await RawClient.open(imap_server.ports["imap"])
        await d.login(USER, PASSWORD)
        lines = await d.command(b"l", b'LIST "" "Entw*"')
        assert lines[0] == b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\n', lines


async def test_enabled_rev2_select_of_a_shared_mailbox_lists_it_by_its_name(
        imap_server: Any) -> None:
    """RFC 9051 §6.3.2: SELECT's LIST response names the mailbox as the client did
    (another user's mailbox under "Other Users/"), its attributes from the owner's tree."""
    await imap_server.store.users.create("bob@example.com", "bob-pass")
    with trio.fail_after(20):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await a.command(b"c", b"CREATE Team/Sub")
        lines = await a.command(b"g", b"SETACL Team bob@example.com lr")
        assert lines[-1].startswith(b"g OK"), lines
        b = await RawClient.logged_in(imap_server.ports["imap"], "bob@example.com", "bob-pass")
        await b.command(b"e", b"ENABLE IMAP4rev2")
        name = f"Other Users/{USER}/Team".encode()
        lines = await b.command(b"s", b'SELECT "' + name + b'"')
        assert lines[-1].startswith(b"s OK"), lines
        assert b'* LIST (\\HasChildren) "/" "' + name + b'"\r\n' in lines, lines
