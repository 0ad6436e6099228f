"""NOTIFY (RFC 5465): SET with its filters and STATUS option, NONE, refusals."""

from __future__ import annotations

import re
from typing import Any

import trio

from duck.imap import notifyfeed

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


async def _append(c: RawClient, mailbox: bytes, n: int) -> None:
    body = simple_message(n)
    await c.send(b"a APPEND " + mailbox + b" {%d+}\r\n" % len(body) + body + b"\r\n")
    lines = await c.until_tagged(b"a")
    assert lines[-1].startswith(b"a OK"), lines


def _status(lines: list[bytes]) -> dict[bytes, dict[bytes, int]]:
    out: dict[bytes, dict[bytes, int]] = {}
    for line in lines:
        m = re.match(rb"\* STATUS (\S+) \(([^)]*)\)", line)
        if m:
            words = m.group(2).split()
            out[m.group(1)] = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    return out


async def test_notify_set_status_reports_named_mailboxes(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        caps = await c.command(b"c", b"CAPABILITY")
        assert b" NOTIFY" in caps[0]
        for n in range(3):
            await _append(c, b"Archive", n)
        lines = await c.command(b"s", b"STATUS Archive (UIDVALIDITY HIGHESTMODSEQ)")
        truth = _status(lines)[b"Archive"]
        lines = await c.command(
            b"n", b"NOTIFY SET STATUS (MAILBOXES Archive (MessageNew MessageExpunge))")
        assert lines[-1].startswith(b"n OK"), lines
        st = _status(lines)
        assert list(st) == [b"Archive"], lines
        assert st[b"Archive"][b"MESSAGES"] == 3 and st[b"Archive"][b"UNSEEN"] == 3
        assert st[b"Archive"][b"UIDNEXT"] == 4
        assert st[b"Archive"][b"UIDVALIDITY"] == truth[b"UIDVALIDITY"]
        # FlagChange alone: UIDVALIDITY and HIGHESTMODSEQ, no MESSAGES.
        lines = await c.command(b"n", b"NOTIFY SET STATUS (SUBTREE Archive (FlagChange))")
        st = _status(lines)
        assert st[b"Archive"][b"HIGHESTMODSEQ"] == truth[b"HIGHESTMODSEQ"], lines
        assert b"MESSAGES" not in st[b"Archive"]
        # Without STATUS nothing is sent at SET time.
        lines = await c.command(b"n", b"NOTIFY SET (PERSONAL (MessageNew MessageExpunge))")
        assert lines == [b"n OK NOTIFY completed\r\n"] or (
            len(lines) == 1 and lines[0].startswith(b"n OK")), lines
        # PERSONAL with STATUS: every mailbox but the selected one.
        await c.command(b"x", b"SELECT INBOX")
        lines = await c.command(
            b"n", b"NOTIFY SET STATUS (SELECTED (MessageNew (UID FLAGS) MessageExpunge)) "
                  b"(PERSONAL (MessageNew MessageExpunge MailboxName))")
        assert lines[-1].startswith(b"n OK"), lines
        st = _status(lines)
        assert b"INBOX" not in st and {b"Archive", b"Trash", b"Drafts"} <= set(st), lines
        lines = await c.command(b"n", b"NOTIFY NONE")
        assert lines[-1].startswith(b"n OK"), lines


async def test_notify_refusals(imap_server: Any) -> None:
    with trio.fail_after(30):
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"a", b"NOTIFY NONE")
        assert lines[-1].startswith(b"a BAD"), lines  # not before login
        await c.login(USER, PASSWORD)
        lines = await c.command(b"b", b"NOTIFY SET (PERSONAL (AnnotationChange))")
        assert lines[-1].startswith(b"b NO [BADEVENT (MessageNew "), lines
        lines = await c.command(b"b", b"NOTIFY SET (SELECTED (MailboxMetadataChange))")
        assert lines[-1].startswith(b"b NO [BADEVENT"), lines
        lines = await c.command(b"c", b"NOTIFY SET (INBOXES (MessageNew (FLAGS)))")
        assert lines[-1].startswith(b"c BAD"), lines
        lines = await c.command(b"d", b"NOTIFY SET (PERSONAL (NoSuchEvent))")
        assert lines[-1].startswith(b"d BAD"), lines
        many = b" ".join(b"m%d" % i for i in range(1001))
        lines = await c.command(b"e", b"NOTIFY SET (MAILBOXES (" + many + b") (MessageNew))")
        assert lines[-1].startswith(b"e NO [LIMIT]"), lines
        # After the refusals the session still works.
        lines = await c.command(b"f", b"NOTIFY SET (INBOXES (MessageNew MessageExpunge))")
        assert lines[-1].startswith(b"f OK"), lines


async def _until(c: RawClient, pattern: bytes) -> bytes:
    """The next line matching ``pattern`` (regex), reading unsolicited responses."""
    while True:
        line = await c.line()
        assert line, "connection closed"
        if re.search(pattern, line):
            return line


async def test_events_arrive_between_commands(imap_server: Any) -> None:
    """RFC 5465 §5: after NOTIFY the client need not IDLE: STATUS for new mail in
    another mailbox and LIST for created, renamed, deleted mailboxes arrive while
    the client sends nothing."""
    # Eleven commands and their events: 30 s was seen to run out at load 15.
    with trio.fail_after(90):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        b = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await a.command(b"s", b"SELECT INBOX")
        lines = await a.command(
            b"n", b"NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                  b"(PERSONAL (MessageNew MessageExpunge MailboxName))")
        assert lines[-1].startswith(b"n OK"), lines
        await _append(b, b"Archive", 1)
        await _append(b, b"Archive", 2)
        line = await _until(a, rb"^\* STATUS Archive ")
        st = _status([line])[b"Archive"]
        assert st[b"UIDNEXT"] in (2, 3) and st[b"MESSAGES"] == st[b"UIDNEXT"] - 1, line
        if st[b"MESSAGES"] == 1:
            st = _status([await _until(a, rb"^\* STATUS Archive ")])[b"Archive"]
        assert st[b"MESSAGES"] == 2 and st[b"UNSEEN"] == 2
        await b.command(b"c", b"CREATE Projects")
        assert await _until(a, rb"^\* LIST") == b'* LIST () "/" Projects\r\n'
        await b.command(b"r", b"RENAME Projects Done")
        line = await _until(a, rb"^\* LIST")
        assert line == b'* LIST () "/" Done ("OLDNAME" (Projects))\r\n', line
        await b.command(b"d", b"DELETE Done")
        line = await _until(a, rb"^\* LIST")
        assert line == b'* LIST (\\NonExistent) "/" Done\r\n', line
        # The selected mailbox's news are the ordinary EXISTS (no STATUS for it).
        await _append(b, b"INBOX", 3)
        await a.send(b"p NOOP\r\n")
        lines = await a.until_tagged(b"p")
        assert b"* 1 EXISTS\r\n" in lines and not any(
            line.startswith(b"* STATUS INBOX") for line in lines), lines
        # NOTIFY NONE: nothing more.
        await a.command(b"x", b"NOTIFY NONE")
        await _append(b, b"Archive", 3)
        with trio.move_on_after(1.5):
            line = await a.line()
            raise AssertionError(f"event after NOTIFY NONE: {line!r}")


async def test_events_arrive_in_idle_for_filtered_mailboxes(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        b = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        lines = await a.command(b"n", b"NOTIFY SET (MAILBOXES Trash (MessageNew MessageExpunge))")
        assert lines[-1].startswith(b"n OK"), lines
        await a.send(b"i IDLE\r\n")
        assert (await a.line()).startswith(b"+")
        await _append(b, b"Archive", 1)  # not named: no event
        await _append(b, b"Trash", 2)
        line = await _until(a, rb"^\* ")
        assert line.startswith(b"* STATUS Trash (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "), line
        await a.send(b"DONE\r\n")
        lines = await a.until_tagged(b"i")
        assert lines[-1].startswith(b"i OK") and not any(b"Archive" in x for x in lines)


async def test_overflow_stops_notification(imap_server: Any, monkeypatch: Any) -> None:
    """RFC 5465 §5.8: past the per-session cap, NOTIFICATIONOVERFLOW and silence."""
    monkeypatch.setattr(notifyfeed, "MAX_QUEUED", 2)
    with trio.fail_after(30):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        b = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        for name in (b"tree", b"tree/one", b"tree/two", b"tree/three"):
            await b.command(b"c", b"CREATE " + name)
        await a.command(b"n", b"NOTIFY SET (PERSONAL (MailboxName MessageNew MessageExpunge))")
        # One RENAME of a tree: four renames in one transaction, one wake-up, a
        # burst over the cap.
        await b.command(b"r", b"RENAME tree bush")
        line = await _until(a, rb"^\* ")
        assert line.startswith(b"* OK [NOTIFICATIONOVERFLOW]"), line
        await _append(b, b"Archive", 1)
        lines = await a.command(b"p", b"NOOP")
        assert lines == [lines[-1]] and lines[-1].startswith(b"p OK"), lines


async def test_subscribed_filter_follows_the_subscriptions(imap_server: Any) -> None:
    with trio.fail_after(30):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        b = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await a.command(b"u", b"SUBSCRIBE Drafts")
        await a.command(b"u", b"UNSUBSCRIBE Archive")
        lines = await a.command(b"n", b"NOTIFY SET STATUS (SUBSCRIBED (MessageNew MessageExpunge))")
        st = _status(lines)
        assert b"Drafts" in st and b"Archive" not in st, lines
        await _append(b, b"Archive", 1)
        await _append(b, b"Drafts", 2)
        line = await _until(a, rb"^\* ")
        assert line.startswith(b"* STATUS Drafts (MESSAGES 1 "), line
