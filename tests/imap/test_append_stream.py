"""APPEND streams its literal into the store: large messages arrive piece by piece
(their attachments go to GridFS as they come), read back byte for byte, and an
APPEND that does not complete leaves nothing behind."""

from __future__ import annotations

import base64
import os
import re
from typing import Any

import trio

from duck.store import Store

from .conftest import PASSWORD, USER, aconnect, blocking, simple_message
from .raw import RawClient

COLLECTIONS = ("messages", "bodies", "attachments.files", "attachments.chunks")


def big_message(n: int, attachment: int = 700_000) -> bytes:
    """A multipart message of a few MB: a text part and two base64 attachments of
    ``attachment`` random octets each (other octets for every ``n``)."""
    parts = []
    for i in range(2):
        data = base64.encodebytes(os.urandom(attachment)).replace(b"\n", b"\r\n")
        parts.append(b"--b\r\nContent-Type: application/octet-stream; name=a%d\r\n"
                     b"Content-Transfer-Encoding: base64\r\n\r\n" % i + data)
    return (b"From: a@example.com\r\nSubject: big %d\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" % n
            + b"".join(parts) + b"--b--\r\n")


async def snapshot(store: Store, username: str = USER) -> tuple[int, ...]:
    """The user's counters and what the database holds of messages and bodies."""
    user = await store.users.by_username(username)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    counts = []
    for name in COLLECTIONS:
        coll = store.database.collection(name)
        counts.append(int(await store.database.run(coll.count_documents, {})))
    return (user.storage_used, inbox.message_count, inbox.unseen_count, inbox.size, *counts)


async def settles_to(store: Store, expected: tuple[int, ...], username: str = USER) -> None:
    """Wait until the snapshot is ``expected`` again (a dropped session cleans up
    after its socket closed); the caller's fail_after bounds the wait."""
    while await snapshot(store, username) != expected:
        await trio.sleep(0.05)


def pieces(data: bytes, size: int = 7919) -> list[bytes]:
    """``data`` in odd-sized pieces."""
    return [data[i:i + size] for i in range(0, len(data), size)]


async def test_large_append_imaplib_byte_exact(imap_server: Any) -> None:
    store = imap_server.store
    message = big_message(1, 1_200_000)  # 3.3 MB
    with trio.fail_after(60):
        before = await snapshot(store)
        c = await aconnect(imap_server)
        typ, data = await blocking(lambda: c.append("INBOX", "(\\Seen)", None, message))
        assert typ == "OK", data
        m = re.match(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
        assert m is not None, data
        after = await snapshot(store)
        # One message; its two attachments went to GridFS as bodies.
        assert after[4] - before[4] == 1 and after[5] - before[5] == 2, (before, after)
        assert after[0] - before[0] == len(message) and after[2] == before[2]
        await blocking(lambda: c.select("INBOX"))
        _, uv = await blocking(lambda: c.response("UIDVALIDITY"))
        assert uv[0] == m.group(1)
        typ, data = await blocking(lambda: c.uid("FETCH", m.group(2).decode(),
                                                 "(RFC822.SIZE FLAGS BODY.PEEK[])"))
        assert typ == "OK"
        assert b"RFC822.SIZE %d " % len(message) in data[0][0], data[0][0]
        assert b"\\Seen" in data[0][0]
        assert data[0][1] == message
        await blocking(c.logout)


async def test_raw_odd_pieces_literal_plus_and_synchronizing(imap_server: Any) -> None:
    first, second, small = big_message(2), big_message(3), simple_message(4)
    with trio.fail_after(60):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        # LITERAL+, the whole command in odd-sized writes.
        for piece in pieces(b"a APPEND INBOX {%d+}\r\n" % len(first) + first + b"\r\n"):
            await c.send(piece)
        lines = await c.until_tagged(b"a")
        assert lines[-1].startswith(b"a OK [APPENDUID "), lines
        # A synchronizing MULTIAPPEND: two large messages and a small one.
        await c.send(b"m APPEND INBOX (\\Flagged) {%d}\r\n" % len(second))
        assert (await c.line()).startswith(b"+")
        for piece in pieces(second, 65537):
            await c.send(piece)
        await c.send(b" {%d}\r\n" % len(first))
        assert (await c.line()).startswith(b"+")
        for piece in pieces(first, 1000003):
            await c.send(piece)
        await c.send(b" {%d}\r\n" % len(small))
        assert (await c.line()).startswith(b"+")
        await c.send(small + b"\r\n")
        lines = await c.until_tagged(b"m")
        assert re.match(rb"m OK \[APPENDUID \d+ 2:4\]", lines[-1]), lines
        await c.command(b"s", b"SELECT INBOX")
        for uid, expected in ((1, first), (2, second), (3, first), (4, small)):
            lines = await c.command(b"f", b"UID FETCH %d (RFC822.SIZE BODY.PEEK[])" % uid)
            head = b"RFC822.SIZE %d BODY[] {%d}\r\n" % (len(expected), len(expected))
            assert head in lines[0], lines[0][:200]
            assert lines[0].split(head, 1)[1] == expected + b")\r\n"
        lines = await c.command(b"g", b"UID FETCH 2 FLAGS")
        assert b"\\Flagged" in lines[0]
        await c.aclose()


async def test_dropped_connection_leaves_nothing(imap_server: Any) -> None:
    store = imap_server.store
    message = big_message(5)
    with trio.fail_after(60):
        before = await snapshot(store)
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await c.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message[: len(message) // 2])
        # The attachment is in GridFS before the literal is complete: it streams.
        while (await snapshot(store))[6] == before[6]:
            await trio.sleep(0.05)
        await c.aclose()
        await settles_to(store, before)


async def test_bad_mailbox_and_over_quota_leave_nothing(imap_server: Any) -> None:
    store = imap_server.store
    message = big_message(6)
    with trio.fail_after(60):
        before = await snapshot(store)
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await c.send(b"a APPEND Nowhere {%d+}\r\n" % len(message) + message + b"\r\n")
        lines = await c.until_tagged(b"a")
        assert lines[-1].startswith(b"a NO [TRYCREATE]"), lines
        assert await snapshot(store) == before
        await store.users.create("tiny@example.com", PASSWORD, quota=1_000_000)
        tiny = await snapshot(store, "tiny@example.com")
        d = await RawClient.logged_in(imap_server.ports["imap"], "tiny@example.com", PASSWORD)
        await d.send(b"b APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
        lines = await d.until_tagged(b"b")
        assert lines[-1].startswith(b"b NO [OVERQUOTA]"), lines
        assert await snapshot(store, "tiny@example.com") == tiny
        lines = await d.command(b"n", b"NOOP")  # the session goes on
        assert lines[-1].startswith(b"n OK")
        await c.aclose()
        await d.aclose()


async def test_failed_multiappend_leaves_nothing(imap_server: Any) -> None:
    store = imap_server.store
    store.set_archive_days(0)  # (an undone message is not kept in the archive)
    one, two = big_message(7), big_message(8)
    with trio.fail_after(60):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await c.command(b"s", b"SELECT INBOX")
        before = await snapshot(store)
        # A second literal over the limit: refused before it is read.
        limit = imap_server.config.max_message_size
        await c.send(b"a APPEND INBOX {%d+}\r\n" % len(one) + one + b" {%d}\r\n" % (limit + 1))
        lines = await c.until_tagged(b"a")
        assert lines[-1].startswith(b"a NO [TOOBIG]"), lines
        assert await snapshot(store) == before
        # Garbage after the first message: BAD, and the first is not stored.
        await c.send(b"b APPEND INBOX {%d+}\r\n" % len(one) + one + b" junk\r\n")
        lines = await c.until_tagged(b"b")
        assert lines[-1].startswith(b"b BAD"), lines
        assert await snapshot(store) == before
        # The second message over quota: the first, stored already, is taken back.
        used = before[0]
        user = await store.users.by_username(USER)
        await store.admin.set_quota(user.id, used + len(one) + len(two) // 2)
        await c.send(b"c APPEND INBOX {%d+}\r\n" % len(one) + one
                     + b" {%d+}\r\n" % len(two) + two + b"\r\n")
        lines = await c.until_tagged(b"c")
        assert lines[-1].startswith(b"c NO [OVERQUOTA]"), lines
        await settles_to(store, before)
        # Dropped in the middle of the second message of a MULTIAPPEND.
        await c.send(b"d APPEND INBOX {%d+}\r\n" % len(one) + one
                     + b" {%d+}\r\n" % len(two) + two[: len(two) // 2])
        await c.aclose()
        await settles_to(store, before)
