"""NOTIFY (RFC 5465): SET with its filters and STATUS option, NONE, refusals."""

from __future__ import annotations

import re
from typing import Any

import trio

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
