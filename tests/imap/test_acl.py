"""ACL (RFC 4314), LIST-MYRIGHTS (RFC 8440) and the shared namespaces (RFC 2342) over
IMAP, with two users and two servers on one database: the owner's sessions on one,
the reader's on the other (its own store client and notifier, so that what it
learns of the owner's changes comes through the database's change stream, as it
would in another process).
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from duck.config import Config
from duck.imap.server import serve_imap
from duck.imap.session import ServerContext
from duck.store import Store
from duck.store.push.notify import Notifier

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient

BOB = "bob@example.com"
SHARED = f"Other Users/{USER}/INBOX".encode()
QUOTED = b'"' + SHARED + b'"'


@pytest.fixture
async def second_server(mongo_uri: str, db_name: str, tmp_path: Path,
                        nursery: trio.Nursery, imap_server: Any) -> AsyncIterator[int]:
    """Another IMAP server on the same database (own store, own notifier); its port."""
    config = Config(data_dir=tmp_path / "data2", imap_port=0, pop3_port=0, pop3s_port=0,
                    mongo_uri=mongo_uri, database=db_name)
    store = await Store.open(mongo_uri, db_name)
    notifier = Notifier(store.database)
    context = ServerContext(store=store, config=config, shutdown=trio.Event(),
                            notifier=notifier)
    async with trio.open_nursery() as inner:
        await inner.start(notifier.run)
        port = await inner.start(functools.partial(serve_imap, context, "127.0.0.1", 0))
        await imap_server.store.users.create(BOB, PASSWORD)
        try:
            yield port
        finally:
            inner.cancel_scope.cancel()
    await store.aclose()


async def _ok(c: RawClient, tag: bytes, text: bytes) -> list[bytes]:
    lines = await c.command(tag, text)
    assert lines[-1].startswith(tag + b" OK"), lines
    return lines


async def _no(c: RawClient, tag: bytes, text: bytes, code: bytes = b"") -> list[bytes]:
    lines = await c.command(tag, text)
    assert lines[-1].startswith(tag + b" NO " + code), lines
    return lines


async def _append(c: RawClient, mailbox: bytes, n: int) -> None:
    msg = simple_message(n)
    await _ok(c, b"ap", b"APPEND " + mailbox + b" {%d+}\r\n" % len(msg) + msg)


async def _eventually(c: RawClient, tag: bytes, text: bytes, *status: bytes) -> list[bytes]:
    """The command until its answer has one of ``status``: the reader's server
    learns of the owner's change from the change stream, within milliseconds."""
    with trio.fail_after(10):
        while True:
            lines = await c.command(tag, text)
            if any(lines[-1].startswith(tag + b" " + st) for st in status):
                return lines
            await trio.sleep(0.02)


async def test_acl_commands_namespace_and_capabilities(imap_server: Any,
                                                       second_server: int) -> None:
    with trio.fail_after(30):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        caps = (await _ok(a, b"c", b"CAPABILITY"))[0]
        for cap in (b" ACL", b" RIGHTS=texk", b" LIST-MYRIGHTS"):
            assert cap in caps
        lines = await _ok(a, b"n", b"NAMESPACE")
        assert lines[0] == b'* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Shared/" "/"))\r\n'
        lines = await _ok(a, b"m", b"MYRIGHTS INBOX")
        assert lines[0] == b"* MYRIGHTS INBOX lrswipkxteacd\r\n"
        await _ok(a, b"s1", f"SETACL INBOX {BOB} lrc".encode())
        await _ok(a, b"s2", b"SETACL INBOX anyone +l")
        await _ok(a, b"s3", f"SETACL INBOX -{BOB} w".encode())
        lines = await _ok(a, b"g", b"GETACL INBOX")
        assert lines[0] == (b"* ACL INBOX " + USER.encode() + b" lrswipkxteacd -" + BOB.encode()
                            + b" w anyone l " + BOB.encode() + b" lrkxc\r\n"), lines
        await _ok(a, b"s4", f"SETACL INBOX {BOB} -kx".encode())
        lines = await _ok(a, b"l", f"LISTRIGHTS INBOX {BOB}".encode())
        assert lines[0] == b'* LISTRIGHTS INBOX ' + BOB.encode() + b' "" l r s w i p k x t e a\r\n'
        lines = await _ok(a, b"l2", f"LISTRIGHTS INBOX {USER}".encode())
        assert lines[0].endswith(b" lrswipkxteacd\r\n"), lines
        # An unknown right is BAD (RFC 4314 §3.1); the owner cannot lose rights.
        assert (await a.command(b"b", f"SETACL INBOX {BOB} lrz".encode()))[-1].startswith(b"b BAD")
        await _no(a, b"o", f"SETACL INBOX {USER} l".encode(), b"[CANNOT]")
        await _no(a, b"o2", f"DELETEACL INBOX {USER}".encode(), b"[CANNOT]")
        await _no(a, b"u", b"SETACL INBOX nobody@example.com lr", b"[CANNOT]")
        await _ok(a, b"d", f"DELETEACL INBOX {BOB}".encode())
        await _ok(a, b"d2", f"DELETEACL INBOX -{BOB}".encode())
        lines = await _ok(a, b"g2", b"GETACL INBOX")
        assert lines[0] == b"* ACL INBOX " + USER.encode() + b" lrswipkxteacd anyone l\r\n"
        # LIST-MYRIGHTS (RFC 8440) on one's own mailboxes.
        lines = await _ok(a, b"lm", b'LIST "" "Sent" RETURN (MYRIGHTS)')
        assert lines[:2] == [b'* LIST (\\HasNoChildren) "/" Sent\r\n',
                             b"* MYRIGHTS Sent lrswipkxteacd\r\n"], lines
        # With only l granted, bob lists the mailbox but may not read it.
        b = await RawClient.logged_in(second_server, BOB, PASSWORD)
        lines = await _ok(b, b"l", b'LIST "" "*" RETURN (MYRIGHTS)')
        assert b'* LIST (\\HasNoChildren) "/" ' + QUOTED + b"\r\n" in lines, lines
        assert b"* MYRIGHTS " + QUOTED + b" l\r\n" in lines, lines
        assert b'* LIST (\\Noselect) "/" "Other Users"\r\n' in lines, lines
        await _no(b, b"s", b"SELECT " + QUOTED, b"[NOPERM]")
        lines = await _ok(b, b"m", b"MYRIGHTS " + QUOTED)
        assert lines[0] == b"* MYRIGHTS " + QUOTED + b" l\r\n"
        # Administering needs a.
        await _no(b, b"g", b"GETACL " + QUOTED, b"[NOPERM]")
        await _no(b, b"sa", b"SETACL " + QUOTED + f" {BOB} lrswipkxtea".encode(), b"[NOPERM]")


async def test_rights_granted_and_revoked_reach_another_process(
        imap_server: Any, second_server: int) -> None:
    with trio.fail_after(60):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        for n in (1, 2):
            await _append(a, b"INBOX", n)
        b = await RawClient.logged_in(second_server, BOB, PASSWORD)
        # Not shared: nothing to see, and nothing says it exists.
        await _no(b, b"s0", b"SELECT " + QUOTED, b"[NONEXISTENT]")
        lines = await _ok(b, b"l0", b'LIST "" "*"')
        assert not any(b"Other Users" in x for x in lines), lines
        # Read only: r and l. SELECT is READ-ONLY without s, w, t, e (RFC 4314 §4).
        await _ok(a, b"g1", f"SETACL INBOX {BOB} lr".encode())
        lines = await _ok(b, b"s1", b"SELECT " + QUOTED)
        assert lines[-1].startswith(b"s1 OK [READ-ONLY]"), lines
        assert b"* 2 EXISTS\r\n" in lines
        lines = await _ok(b, b"f1", b"FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        assert b"Subject: note 1" in b"".join(lines)
        await _no(b, b"t1", b"STORE 1 +FLAGS (\\Flagged)", b"[READ-ONLY]")
        # s and w: read-write; flags other than \Seen and \Deleted may be set.
        await _ok(a, b"g2", f"SETACL INBOX {BOB} +sw".encode())
        lines = await _ok(b, b"s2", b"SELECT " + QUOTED)
        assert lines[-1].startswith(b"s2 OK [READ-WRITE]"), lines
        # PERMANENTFLAGS offers only what bob may set (no \Deleted without t).
        perm = next(x for x in lines if b"PERMANENTFLAGS" in x)
        assert b"\\Seen" in perm and b"\\Flagged" in perm and b"\\*" in perm, perm
        assert b"\\Deleted" not in perm, perm
        await _ok(b, b"t2", b"STORE 1 +FLAGS (\\Flagged)")
        # Without t no \Deleted; without e no EXPUNGE.
        await _no(b, b"t3", b"STORE 1 +FLAGS (\\Deleted)", b"[NOPERM]")
        await _no(b, b"e1", b"EXPUNGE", b"[NOPERM]")
        # The owner sees the shared flag.
        await _ok(a, b"sa", b"SELECT INBOX")
        lines = await _ok(a, b"fa", b"FETCH 1 FLAGS")
        assert b"\\Flagged" in lines[0], lines
        # w taken away while bob has the mailbox selected: the next STORE fails.
        await _ok(a, b"r1", f"SETACL INBOX {BOB} -w".encode())
        started = trio.current_time()
        await _eventually(b, b"t4", b"STORE 2 +FLAGS (\\Flagged)", b"NO")
        assert trio.current_time() - started < 5
        # r taken away: the selected mailbox is read no more, and is gone from view.
        await _ok(a, b"r2", f"DELETEACL INBOX {BOB}".encode())
        # (NO when the command finds it out; BAD when the wake-up came after the
        # previous command and the mailbox was left then, with * OK [CLOSED].)
        lines = await _eventually(b, b"f2", b"FETCH 1 FLAGS", b"NO", b"BAD")
        assert not any(x.startswith(b"* 1 FETCH") for x in lines), lines
        # Commands of the authenticated state still work (the mailbox was left).
        assert (await b.command(b"f3", b"FETCH 1 FLAGS"))[-1].startswith(b"f3 BAD")
        await _ok(b, b"n", b"NOOP")
        await _no(b, b"s3", b"SELECT " + QUOTED, b"[NONEXISTENT]")
        lines = await _ok(b, b"l3", b'LIST "" "*"')
        assert not any(b"Other Users" in x for x in lines), lines
        # Granted again, with t and e: bob deletes and expunges.
        await _ok(a, b"g3", f"SETACL INBOX {BOB} lrste".encode())
        await _ok(b, b"s4", b"SELECT " + QUOTED)
        await _ok(b, b"t5", b"STORE 2 +FLAGS (\\Deleted)")
        lines = await _ok(b, b"e2", b"EXPUNGE")
        assert b"* 2 EXPUNGE\r\n" in lines


async def test_negative_rights_and_anyone(imap_server: Any, second_server: int) -> None:
    with trio.fail_after(30):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await _ok(a, b"c", b"CREATE Projects")
        await _ok(a, b"g", b"SETACL Projects anyone lr")
        await _ok(a, b"n", f"SETACL Projects -{BOB} r".encode())
        b = await RawClient.logged_in(second_server, BOB, PASSWORD)
        name = f'"Other Users/{USER}/Projects"'.encode()
        lines = await _ok(b, b"m", b"MYRIGHTS " + name)
        assert lines[0].endswith(b" l\r\n"), lines
        await _no(b, b"s", b"SELECT " + name, b"[NOPERM]")
        await _ok(a, b"d", f"DELETEACL Projects -{BOB}".encode())
        await _ok(b, b"s2", b"EXAMINE " + name)


async def test_seen_is_each_readers_own(imap_server: Any, second_server: int) -> None:
    with trio.fail_after(30):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        for n in (1, 2, 3):
            await _append(a, b"INBOX", n)
        await _ok(a, b"g", f"SETACL INBOX {BOB} lrsw".encode())
        await _ok(a, b"sa", b"SELECT INBOX")
        await _ok(a, b"ta", b"STORE 3 +FLAGS (\\Seen)")
        b = await RawClient.logged_in(second_server, BOB, PASSWORD)
        await _ok(b, b"s", b"SELECT " + QUOTED)
        # The owner's \Seen on 3 is not bob's; bob reads 1, which is his only.
        lines = await _ok(b, b"f", b"FETCH 1:3 FLAGS")
        assert all(b"\\Seen" not in x for x in lines[:-1]), lines
        lines = await _ok(b, b"f1", b"FETCH 1 BODY[TEXT]")
        assert b"\\Seen" in b"".join(lines), lines
        await _ok(b, b"t", b"STORE 2 +FLAGS.SILENT (\\Seen \\Flagged)")
        lines = await _ok(b, b"u", b"SEARCH UNSEEN")
        assert lines[0] == b"* SEARCH 3\r\n", lines
        lines = await _ok(b, b"u2", b"SEARCH SEEN SUBJECT note")
        assert lines[0] == b"* SEARCH 1 2\r\n", lines
        # Bob's flag reaches the owner's server through its change stream, a few
        # milliseconds after his STORE: FETCH FLAGS answers from the view until then.
        with trio.fail_after(5):
            while b"\\Flagged" not in b"".join(await _ok(a, b"w", b"FETCH 2 FLAGS")):
                await trio.sleep(0.01)
        lines = await _ok(a, b"fa", b"FETCH 1:3 FLAGS")
        flags = {int(x.split()[1]): x for x in lines[:-1] if b"FETCH" in x}
        assert b"\\Seen" not in flags[1] and b"\\Seen" not in flags[2], lines
        assert b"\\Flagged" in flags[2] and b"\\Seen" in flags[3], lines
        lines = await _ok(a, b"ua", b"SEARCH UNSEEN")
        assert lines[0] == b"* SEARCH 1 2\r\n", lines
        # FLAGS replacement by the reader keeps the owner's \Seen and sets his own.
        await _ok(b, b"r", b"STORE 3 FLAGS (\\Seen)")
        lines = await _ok(b, b"st", b"STATUS " + QUOTED + b" (UNSEEN MESSAGES)")
        assert lines[0] == b"* STATUS " + QUOTED + b" (UNSEEN 0 MESSAGES 3)\r\n", lines
        await _ok(b, b"r2", b"STORE 1 -FLAGS (\\Seen)")
        b2 = await RawClient.logged_in(second_server, BOB, PASSWORD)
        lines = await _ok(b2, b"st", b"STATUS " + QUOTED + b" (UNSEEN)")
        assert lines[0] == b"* STATUS " + QUOTED + b" (UNSEEN 1)\r\n", lines
        lines = await _ok(a, b"sa2", b"STATUS INBOX (UNSEEN)")
        assert lines[0] == b"* STATUS INBOX (UNSEEN 2)\r\n", lines


async def test_idle_reader_sees_owner_delivery(imap_server: Any, second_server: int) -> None:
    with trio.fail_after(30):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await _ok(a, b"g", f"SETACL INBOX {BOB} lr".encode())
        b = await RawClient.logged_in(second_server, BOB, PASSWORD)
        await _ok(b, b"s", b"SELECT " + QUOTED)
        await b.send(b"i IDLE\r\n")
        assert (await b.line()).startswith(b"+ ")
        # A delivery into alice's INBOX, through the other server's store.
        await _append(a, b"INBOX", 1)
        assert await b.line() == b"* 1 EXISTS\r\n"
        # Taken back while bob idles: he is told, and told nothing more of it.
        assert await b.line() == b"* 0 RECENT\r\n"  # (EXAMINE-like: nothing claimed)
        await _ok(a, b"d", f"DELETEACL INBOX {BOB}".encode())
        line = await b.line()
        assert line.startswith(b"* OK [CLOSED]"), line
        await _append(a, b"INBOX", 2)
        with trio.move_on_after(1.0):
            line = await b.line()
            raise AssertionError(f"told after the revocation: {line!r}")
        await b.send(b"DONE\r\n")
        lines = await b.until_tagged(b"i")
        assert lines == [b"i OK IDLE completed\r\n"], lines
        # The session goes on in the authenticated state.
        await _ok(b, b"s2", b"SELECT INBOX")


async def test_shared_namespace_mailbox(imap_server: Any, second_server: int) -> None:
    with trio.fail_after(30):
        store = imap_server.store
        owner = await store.acl.shared_owner()
        box = await store.mailboxes.create(owner, "support")
        await store.acl.set_rights(box.id, "authenticated", "lrswi")
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        b = await RawClient.logged_in(second_server, BOB, PASSWORD)
        await _append(a, b"Shared/support", 1)
        lines = await _ok(b, b"l", b'LIST "" "Shared/%" RETURN (MYRIGHTS)')
        assert lines[:2] == [b'* LIST (\\HasNoChildren) "/" Shared/support\r\n',
                             b"* MYRIGHTS Shared/support lrswi\r\n"], lines
        lines = await _ok(b, b"s", b"SELECT Shared/support")
        assert b"* 1 EXISTS\r\n" in lines
        await _ok(b, b"c", b"COPY 1 INBOX")
        await _ok(b, b"s2", b"SELECT INBOX")
        await _ok(b, b"c2", b"COPY 1 Shared/support")
        # Nobody administers it but the administrator (API); no one may delete it.
        await _no(a, b"g", b"GETACL Shared/support", b"[NOPERM]")
        await _no(a, b"d", b"DELETE Shared/support", b"[NOPERM]")
        lines = await _ok(a, b"st", b"STATUS Shared/support (MESSAGES)")
        assert lines[0] == b"* STATUS Shared/support (MESSAGES 2)\r\n"


_NONEXISTENT = re.compile(rb"^\w+ NO \[NONEXISTENT\] no such mailbox\r\n$")


async def test_unshared_mailboxes_of_another_user_are_invisible(
        imap_server: Any, second_server: int) -> None:
    """Every IMAP command on an unshared mailbox of another user (and on a user
    that does not exist) says NO, the same NO, and never data."""
    with trio.fail_after(60):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await _append(a, b"INBOX", 1)
        await _ok(a, b"c", b"CREATE Private/deep")
        # Shared with bob only as a drop box: i alone lets him post, not look.
        await _ok(a, b"i", f"SETACL Private/deep {BOB} i".encode())
        b = await RawClient.logged_in(second_server, BOB, PASSWORD)
        await _append(b, b"INBOX", 9)
        msg = simple_message(5)
        names = [QUOTED, f'"Other Users/{USER}/Sent"'.encode(),
                 f'"Other Users/{USER}/Private"'.encode(),
                 b'"Other Users/nobody@example.com/INBOX"', b'"Other Users/' + USER.encode() + b'"',
                 b"Shared/nothing"]
        for name in names:
            for text in [b"SELECT " + name, b"EXAMINE " + name, b"STATUS " + name + b" (MESSAGES)",
                         b"DELETE " + name, b"RENAME " + name + b" Stolen",
                         b"GETACL " + name, b"MYRIGHTS " + name, b"LISTRIGHTS " + name + b" x",
                         b"SETACL " + name + f" {BOB} lrswipkxtea".encode(),
                         b"DELETEACL " + name + b" anyone", b"GETQUOTAROOT " + name,
                         b"GETMETADATA " + name + b" /private/comment",
                         b'SETMETADATA ' + name + b' (/private/comment "x")']:
                lines = await b.command(b"x", text)
                assert len(lines) == 1 and _NONEXISTENT.match(lines[0]), (text, lines)
            lines = await b.command(b"ap", b"APPEND " + name + b" {%d+}\r\n" % len(msg) + msg)
            assert lines[-1].startswith(b"ap NO"), lines
            await _ok(b, b"s", b"SELECT INBOX")
            for text in [b"COPY 1 " + name, b"MOVE 1 " + name]:
                lines = await b.command(b"x", text)
                assert len(lines) == 1 and lines[0].startswith(b"x NO"), (text, lines)
            await _ok(b, b"u", b"UNSELECT")
        # CREATE under another user's mailbox, RENAME into their tree.
        for text in [b'CREATE "Other Users/' + USER.encode() + b'/INBOX/x"',
                     b'CREATE "Other Users/' + USER.encode() + b'/New"',
                     b'RENAME INBOX "Other Users/' + USER.encode() + b'/INBOX/mine"']:
            lines = await b.command(b"x", text)
            assert lines[-1].startswith(b"x NO"), (text, lines)
        # CATENATE cannot pull another user's message in by URL.
        url = b"/" + SHARED.replace(b" ", b"%20").replace(b"@", b"%40") + b"/;UID=1"
        lines = await b.command(b"cu", b"APPEND INBOX CATENATE (URL \"" + url + b"\")")
        assert lines[-1].startswith(b"cu NO"), lines
        assert b"note 1" not in b"".join(lines)
        # LIST shows the drop box only; its rights say what bob may do.
        lines = await _ok(b, b"l", b'LIST "" "*" RETURN (MYRIGHTS STATUS (MESSAGES))')
        listed = [x for x in lines if b"Other Users/" in x]
        assert listed == [], lines  # (i alone is no l: nothing is listed)
        # Posting into the drop box works; reading it does not.
        await _append(b, f'"Other Users/{USER}/Private/deep"'.encode(), 7)
        lines = await b.command(b"x", f'SELECT "Other Users/{USER}/Private/deep"'.encode())
        assert _NONEXISTENT.match(lines[-1]), lines
        # The owner's mailbox tree is untouched; its message count is alice's own.
        lines = await _ok(a, b"st", b"STATUS INBOX (MESSAGES)")
        assert lines[0] == b"* STATUS INBOX (MESSAGES 1)\r\n", lines
        lines = await _ok(a, b"st2", b'STATUS "Private/deep" (MESSAGES)')
        assert lines[0] == b'* STATUS Private/deep (MESSAGES 1)\r\n', lines
        lines = await _ok(a, b"l", b'LIST "" "*"')
        assert not any(b"Stolen" in x or b"mine" in x for x in lines), lines
        # One's own mailboxes have only their personal names.
        await _no(a, b"o", b"SELECT " + QUOTED, b"[NONEXISTENT]")


async def test_subscribed_names_of_other_users_are_nonexistent_alike(
        imap_server: Any) -> None:
    """RFC 5258 §3 (and its table, kept in RFC 9051 §6.3.9): a subscribed name that
    "does not refer to an existing mailbox" is listed by LIST (SUBSCRIBED) with
    \\NonExistent. Under "Other Users" the same holds for a mailbox that exists but
    is not shared with the user: RFC 4314 §4 answers it like one that does not exist,
    so the two responses are the same. Namespace and user nodes stay \\Noselect."""
    await imap_server.store.users.create(BOB, PASSWORD)
    with trio.fail_after(30):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await _ok(a, b"c1", b"CREATE Private")
        await _ok(a, b"c2", b"CREATE Team")
        await _ok(a, b"g", f"SETACL Team {BOB} lr".encode())
        b = await RawClient.logged_in(imap_server.ports["imap"], BOB, PASSWORD)
        other = f"Other Users/{USER}"
        names = {
            "hidden": f'"{other}/Private"',  # exists, not shared with bob
            "missing": f'"{other}/Gone"',  # does not exist
            "shared": f'"{other}/Team"',
            "unknown": '"Other Users/nobody@example.com/INBOX"',  # no such user
        }
        for name in names.values():
            await _ok(b, b"sb", f"SUBSCRIBE {name}".encode())
        lines = await _ok(b, b"l", b'LIST (SUBSCRIBED) "" "Other Users/*"')
        assert sorted(lines[:-1]) == sorted([
            b'* LIST (\\NonExistent \\Subscribed) "/" ' + names["hidden"].encode() + b"\r\n",
            b'* LIST (\\NonExistent \\Subscribed) "/" ' + names["missing"].encode() + b"\r\n",
            b'* LIST (\\HasNoChildren \\Subscribed) "/" ' + names["shared"].encode() + b"\r\n",
            b'* LIST (\\NonExistent \\Subscribed) "/" ' + names["unknown"].encode() + b"\r\n",
        ]), lines
        # The user node above them is no mailbox: \Noselect, with CHILDINFO.
        lines = await _ok(b, b"r", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Other Users/%"')
        assert (b'* LIST (\\Noselect) "/" "' + other.encode() + b'" ("CHILDINFO" ("SUBSCRIBED"))'
                b"\r\n") in lines, lines
        # Plain LIST lists the shared mailbox only.
        lines = await _ok(b, b"p", b'LIST "" "Other Users/*"')
        assert [x for x in lines if b"Team" in x or b"Private" in x or b"Gone" in x] == [
            b'* LIST (\\HasNoChildren) "/" ' + names["shared"].encode() + b"\r\n"], lines
