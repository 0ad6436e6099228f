"""CREATE, DELETE, RENAME (hierarchy, INBOX), SUBSCRIBE, LIST/LSUB patterns and
attributes, LIST-EXTENDED, LIST-STATUS, STATUS, NAMESPACE."""

from __future__ import annotations

import functools
from typing import Any

import trio
from imapclient import IMAPClient

from .conftest import PASSWORD, USER, blocking, simple_message
from .raw import RawClient


def _client(server: Any) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=20)
    client.login(USER, PASSWORD)
    return client


async def test_create_list_rename_delete(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await blocking(lambda: _client(imap_server))
        folders = await blocking(c.list_folders)
        by_name = {name: flags for flags, _, name in folders}
        assert set(by_name) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"}
        assert b"\\Trash" in by_name["Trash"] and b"\\HasNoChildren" in by_name["Trash"]
        await blocking(lambda: c.create_folder("Work/Projects/2024"))  # parents created
        await blocking(lambda: c.create_folder("Wörk"))  # modified UTF-7 on the wire
        names = {name for _, _, name in await blocking(c.list_folders)}
        assert {"Work", "Work/Projects", "Work/Projects/2024", "Wörk"} <= names
        top = await blocking(lambda: c.list_folders("", "%"))
        flags = {name: f for f, _, name in top}
        assert "Work/Projects" not in flags and b"\\HasChildren" in flags["Work"]
        sub = {name for _, _, name in await blocking(lambda: c.list_folders("Work/", "%"))}
        assert sub == {"Work/Projects"}
        star = {name for _, _, name in await blocking(lambda: c.list_folders("", "Work*"))}
        assert star == {"Work", "Work/Projects", "Work/Projects/2024"}
        inbox = await blocking(lambda: c.list_folders("", "inbox"))
        assert [n for _, _, n in inbox] == ["INBOX"]
        # RENAME moves the children along.
        await blocking(lambda: c.rename_folder("Work", "Job"))
        names = {name for _, _, name in await blocking(c.list_folders)}
        assert {"Job", "Job/Projects", "Job/Projects/2024"} <= names and "Work" not in names
        # Creating an existing name fails with ALREADYEXISTS.
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        lines = await r.command(b"c", b"CREATE Job")
        assert lines[-1].startswith(b"c NO [ALREADYEXISTS]"), lines
        lines = await r.command(b"d", b"DELETE NoSuch")
        assert lines[-1].startswith(b"d NO [NONEXISTENT]"), lines
        lines = await r.command(b"e", b"DELETE INBOX")
        assert lines[-1].startswith(b"e NO"), lines
        lines = await r.command(b"g", b"CREATE Later (USE (\\Flagged))")
        assert lines[-1].startswith(b"g OK"), lines
        lines = await r.command(b"h", b'LIST "" Later')
        assert b"\\Flagged" in lines[0], lines
        lines = await r.command(b"f", b'LIST "" ""')
        assert lines[0] == b'* LIST (\\Noselect) "/" ""\r\n'
        # DELETE keeps inferiors; the parent then shows as \Noselect.
        await blocking(lambda: c.delete_folder("Job/Projects"))
        top = await blocking(lambda: c.list_folders("Job/", "%"))
        assert [(n, b"\\Noselect" in f) for f, _, n in top] == [("Job/Projects", True)]
        await blocking(c.logout)


async def test_rename_inbox_moves_messages(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await blocking(lambda: _client(imap_server))
        await blocking(lambda: c.append("INBOX", simple_message(1)))
        await blocking(lambda: c.rename_folder("INBOX", "Old"))
        old = await blocking(lambda: c.folder_status("Old", ["MESSAGES"]))
        inbox = await blocking(lambda: c.folder_status("INBOX", ["MESSAGES"]))
        assert old[b"MESSAGES"] == 1 and inbox[b"MESSAGES"] == 0
        await blocking(c.logout)


async def test_subscriptions_and_lsub(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await blocking(lambda: _client(imap_server))
        await blocking(lambda: c.create_folder("A/B"))  # CREATE subscribes nothing
        await blocking(lambda: c.subscribe_folder("A/B"))
        flags = {n: f for f, _, n in await blocking(lambda: c.list_sub_folders("", "%"))}
        assert "A" in flags and b"\\Noselect" in flags["A"]
        lsub = {n for _, _, n in await blocking(lambda: c.list_sub_folders("", "*"))}
        assert "A/B" in lsub and "A" not in lsub
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        lines = await r.command(b"x", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "A"')
        assert lines[0] == b'* LIST (\\HasChildren) "/" A ("CHILDINFO" ("SUBSCRIBED"))\r\n', lines
        await blocking(lambda: c.unsubscribe_folder("A/B"))
        lsub = {n for _, _, n in await blocking(lambda: c.list_sub_folders("", "A/*"))}
        assert lsub == set()
        # RFC 5258 §3.1: a subscribed name whose mailbox is gone is \NonExistent.
        await blocking(lambda: c.subscribe_folder("A/B"))
        await blocking(lambda: c.delete_folder("A/B"))
        lines = await r.command(b"y", b'LIST (SUBSCRIBED) "" "A/*"')
        assert lines[0] == b'* LIST (\\NonExistent \\Subscribed) "/" A/B\r\n', lines
        lines = await r.command(b"z", b'LSUB "" "A/*"')
        assert lines[0] == b'* LSUB () "/" A/B\r\n', lines
        await blocking(c.logout)


async def test_status_and_list_extended(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await blocking(lambda: _client(imap_server))
        for n in range(3):
            flags = ("\\Seen",) if n == 0 else ()
            await blocking(functools.partial(c.append, "INBOX", simple_message(n), flags=flags))
        st = await blocking(lambda: c.folder_status("INBOX", [
            "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "HIGHESTMODSEQ", "SIZE",
        ]))
        assert st[b"MESSAGES"] == 3 and st[b"UIDNEXT"] == 4 and st[b"UNSEEN"] == 2
        assert st[b"UIDVALIDITY"] > 0 and st[b"HIGHESTMODSEQ"] >= 4 and st[b"SIZE"] > 0
        r = await RawClient.open(imap_server.ports["imap"])
        await r.login(USER, PASSWORD)
        lines = await r.command(b"l", b'LIST (SPECIAL-USE) "" "*"')
        names = b"".join(lines)
        assert b"\\Sent" in names and b"INBOX" not in names
        lines = await r.command(b"m", b'LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN))')
        assert lines[0].startswith(b"* LIST (") and b"INBOX" in lines[0]
        assert lines[1] == b"* STATUS INBOX (MESSAGES 3 UNSEEN 2)\r\n", lines
        lines = await r.command(b"n", b'LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)')
        assert all(b"\\Subscribed" in x for x in lines[:-1]), lines
        lines = await r.command(b"o", b"NAMESPACE")
        assert lines[0] == b'* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Shared/" "/"))\r\n'
        lines = await r.command(b"p", b"STATUS NoSuch (MESSAGES)")
        assert lines[-1].startswith(b"p NO [NONEXISTENT]"), lines
        await blocking(c.logout)


async def test_a_name_that_is_not_modified_utf7_names_no_mailbox(imap_server: Any) -> None:
    """RFC 3501 §5.1.3 / §6.3.1: "&'+,-" is a valid astring but bad modified UTF-7.
    The command is not a syntax error: SELECT and CREATE say NO, LIST matches
    nothing, and the connection carries on (imaptest's "atoms" group)."""
    name = b"!#$&'+,-.0123456789:;<=>?@^_`|[}"
    with trio.fail_after(30):
        c = await RawClient.open(imap_server.ports["imap"])
        await c.login(USER, PASSWORD)
        for tag, command in ((b"s", b"SELECT "), (b"c", b"CREATE "), (b"t", b"STATUS ")):
            rest = b" (MESSAGES)" if tag == b"t" else b""
            lines = await c.command(tag, command + name + rest)
            assert lines[-1].startswith(tag + b" NO "), lines
        lines = await c.command(b"l", b'LIST "" ' + name + b"%*")
        assert lines == [b"l OK LIST completed\r\n"], lines
        lines = await c.command(b"l2", b'LIST "" &Jjo-*')  # valid: a snowman, no match
        assert lines[-1].startswith(b"l2 OK"), lines
        lines = await c.command(b"n", b"NOOP")
        assert lines[-1].startswith(b"n OK"), lines
        await c.aclose()
