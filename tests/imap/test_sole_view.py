"""A process that is the deployment's only writer knows its mailboxes without asking
(push/notify.py, ``knows_every_change``): NOOP's poll, an EXPUNGE with nothing
\\Deleted and a STORE that changes nothing in a current view read nothing, yet every
change still reaches the sessions and every \\Deleted message is removed (every flag
change made), this process's own or, once its quiet check has seen it, another
process's."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from duck.store import Store, metrics
from duck.store.push import notify

from .conftest import MESSAGE, PASSWORD, USER
from .raw import RawClient


async def _trips(client: RawClient, tag: bytes, text: bytes,
                 label: str) -> tuple[list[bytes], int]:
    """A command's answer and the database round trips it made."""
    metrics.reset()
    lines = await client.command(tag, text)
    assert lines[-1].startswith(tag + b" OK"), lines
    await client.command(tag + b"n", b"CAPABILITY")  # (closes the command's scope)
    return lines, metrics.statistics().get(label, {}).get("round_trips", 0)


async def _two_sessions(server: Any) -> tuple[RawClient, RawClient, Any]:
    user = await server.store.users.by_username(USER)
    for i in range(3):
        await server.store.messages.append(
            user.id, "INBOX", MESSAGE.replace(b"hello there", b"hello %d" % i))
    a = await RawClient.logged_in(server.ports["imap"], USER, PASSWORD)
    b = await RawClient.logged_in(server.ports["imap"], USER, PASSWORD)
    for c in (a, b):
        await c.command(b"s", b"SELECT INBOX")
        # (The appends' wake-ups, dispatched after the SELECT, are read once.)
        await c.command(b"n", b"NOOP")
    return a, b, user


async def test_noop_and_expunge_with_nothing_to_do_read_nothing(
        sole_imap_server: Any) -> None:
    with trio.fail_after(60):
        a, b, _ = await _two_sessions(sole_imap_server)
        lines, trips = await _trips(b, b"n1", b"NOOP", "NOOP")
        assert trips == 0, lines
        lines, trips = await _trips(b, b"e1", b"EXPUNGE", "EXPUNGE")
        assert trips == 0 and not any(b"EXPUNGE" in x for x in lines[:-1]), lines
        # A STORE that changes nothing by a current view: its answer, no read.
        await a.command(b"f0", b"STORE 3 +FLAGS (\\Seen)")
        await b.command(b"n0", b"NOOP")
        lines, trips = await _trips(b, b"s1", b"STORE 3 +FLAGS (\\Seen)", "STORE")
        assert trips == 0 and lines[0] == b"* 3 FETCH (FLAGS (\\Seen))\r\n", lines
        # Another session's flag: announced to this one, then expunged by it.
        await a.command(b"f1", b"STORE 2 +FLAGS (\\Deleted)")
        lines, trips = await _trips(b, b"e2", b"EXPUNGE", "EXPUNGE")
        assert b"* 2 EXPUNGE\r\n" in lines and trips >= 1, lines
        # The other session hears of it at its next NOOP, without a read of its own
        # beyond the journal's (the wake-up says its view is behind).
        lines, _ = await _trips(a, b"n2", b"NOOP", "NOOP")
        assert b"* 2 EXPUNGE\r\n" in lines, lines
        lines, trips = await _trips(a, b"n3", b"NOOP", "NOOP")
        assert trips == 0 and len(lines) == 1, lines


async def test_another_process_flag_is_expunged_once_seen(
        sole_imap_server: Any, mongo_uri: str, db_name: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "QUIET_CHECK", 0.05)
    server = sole_imap_server
    with trio.fail_after(60):
        _, b, user = await _two_sessions(server)
        inbox = await server.store.mailboxes.get(user.id, "INBOX")
        other = await Store.open(mongo_uri, db_name)
        try:
            # (UID 1: the first of the three appended to the new mailbox.)
            await other.messages.store_flags(inbox.id, [1], "add", ["\\Deleted"])
            await other.messages.store_flags(inbox.id, [2], "add", ["\\Seen"])
        finally:
            await other.aclose()
        # The quiet check finds the write and the notifier stops claiming to know
        # every change; an EXPUNGE then looks, and removes the message.
        while server.notifier.knows_every_change(inbox.id, 10**9):
            await trio.sleep(0.01)
        lines, trips = await _trips(b, b"e1", b"EXPUNGE", "EXPUNGE")
        assert b"* 1 EXPUNGE\r\n" in lines and trips >= 1, lines
        # By the view (its flags read before that write) UID 2 has no \Seen to take
        # away; the STORE looks, and takes it away.
        await b.command(b"u1", b"UID STORE 2 -FLAGS.SILENT (\\Seen)")
        (rec,) = await server.store.messages.fetch(inbox.id, [2], ["flags"])
        assert "\\Seen" not in rec.flags, rec


async def test_another_session_change_is_caught_up_without_a_read(
        sole_imap_server: Any) -> None:
    # This process committed the change: the journal entries it fed the notifier
    # are the mailbox's latest read (Journal.learn), so the other session's catch
    # up reads nothing, and still tells every change.
    server = sole_imap_server
    with trio.fail_after(60):
        a, b, user = await _two_sessions(server)
        reads = server.store.journal.statistics()["reads"]
        await a.command(b"f1", b"STORE 1 +FLAGS (\\Flagged)")
        lines, trips = await _trips(b, b"n1", b"NOOP", "NOOP")
        assert lines[0] == b"* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n", lines
        assert trips == 0, lines
        await server.store.messages.append(user.id, "INBOX", MESSAGE)
        await a.command(b"f2", b"STORE 2 +FLAGS (\\Deleted)")
        await a.command(b"e2", b"EXPUNGE")
        lines, trips = await _trips(b, b"n2", b"NOOP", "NOOP")
        # (Three messages, one more, one removed: the removal first, then the count.)
        assert lines[:2] == [b"* 2 EXPUNGE\r\n", b"* 3 EXISTS\r\n"], lines
        assert trips == 0, lines
        assert server.store.journal.statistics()["reads"] == reads
        # And the session that made them is where the other one is.
        lines, trips = await _trips(a, b"n3", b"NOOP", "NOOP")
        assert trips == 0 and len(lines) == 1, lines
