"""SEARCH, SORT and THREAD by sequence numbers while another session has expunged
messages this one still numbers: the answer says EXPUNGEISSUED (RFC 5530)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from duck.store import Store

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


async def _two_sessions(server: Any) -> tuple[RawClient, RawClient]:
    user = await server.store.users.by_username(USER)
    for n in range(1, 6):
        await server.store.messages.append(user.id, "INBOX", simple_message(n))
    a = await RawClient.logged_in(server.ports["imap"], USER, PASSWORD)
    b = await RawClient.logged_in(server.ports["imap"], USER, PASSWORD)
    for c in (a, b):
        lines = await c.command(b"s", b"SELECT INBOX")
        assert lines[-1].startswith(b"s OK"), lines
    return a, b


async def _expunge_third(b: RawClient) -> None:
    lines = await b.command(b"d", b"STORE 3 +FLAGS.SILENT (\\Deleted)")
    assert lines[-1].startswith(b"d OK"), lines
    lines = await b.command(b"e", b"EXPUNGE")
    assert b"* 3 EXPUNGE\r\n" in lines and lines[-1].startswith(b"e OK"), lines


@pytest.mark.parametrize("command", [
    b"SEARCH ALL",  # answered from the view
    b"SEARCH SUBJECT note",  # answered by the store
    b"SORT (SUBJECT) UTF-8 ALL",
    b"THREAD ORDEREDSUBJECT UTF-8 ALL",
])
async def test_a_search_by_number_after_an_expunge_elsewhere_says_so(
        imap_server: Any, command: bytes) -> None:
    with trio.fail_after(30):
        a, b = await _two_sessions(imap_server)
        lines = await a.command(b"x", command)
        assert lines[-1].startswith(b"x OK") and b"EXPUNGEISSUED" not in lines[-1], lines
        await _expunge_third(b)
        lines = await a.command(b"y", command)
        # Message 3 is gone and left out; its EXPUNGE waits (RFC 3501 §7.4.1).
        assert not any(line.endswith(b" EXPUNGE\r\n") for line in lines), lines
        assert lines[-1].startswith(b"y OK [EXPUNGEISSUED]"), lines
        lines = await a.command(b"n", b"NOOP")
        assert b"* 3 EXPUNGE\r\n" in lines, lines
        lines = await a.command(b"z", command)
        assert lines[-1].startswith(b"z OK") and b"EXPUNGEISSUED" not in lines[-1], lines


async def test_a_uid_search_after_an_expunge_elsewhere_sends_the_expunge(
        imap_server: Any) -> None:
    with trio.fail_after(30):
        a, b = await _two_sessions(imap_server)
        await _expunge_third(b)
        lines = await a.command(b"u", b"UID SEARCH SUBJECT note")
        assert b"* 3 EXPUNGE\r\n" in lines, lines
        assert lines[-1].startswith(b"u OK") and b"EXPUNGEISSUED" not in lines[-1], lines


async def test_an_expunge_the_session_was_not_woken_for_yet_is_found(
        imap_server: Any) -> None:
    """A message gone from the store before the answer was computed, but whose
    wake-up has not reached the session yet (a write outside any IMAP session,
    told through the change stream): the answer still says EXPUNGEISSUED, as
    the journal is read after it is computed."""
    with trio.fail_after(30):
        a, _ = await _two_sessions(imap_server)
        store = imap_server.store
        user = await store.users.by_username(USER)
        inbox = await store.mailboxes.get(user.id, "INBOX")
        await store.messages.store_flags(inbox.id, [3], "add", ["\\Deleted"])
        await store.messages.expunge(inbox.id)
        lines = await a.command(b"y", b"SEARCH SUBJECT note")
        assert b"* SEARCH 1 2 4 5\r\n" in lines, lines
        assert lines[-1].startswith(b"y OK [EXPUNGEISSUED]"), lines


async def test_an_expunge_the_only_writer_has_not_heard_of_is_found(
        sole_imap_server: Any, mongo_uri: str, db_name: str) -> None:
    """A process that believes it is the database's only writer knows of its own
    commits a turn of the event loop after they are made, and of another's up to a
    second later: meanwhile a SEARCH answered by the store already misses the
    message, and the journal read after it finds it gone (here another process's
    expunge, which the notifier has not heard of: it still claims every change)."""
    with trio.fail_after(30):
        a, _ = await _two_sessions(sole_imap_server)
        store = sole_imap_server.store
        user = await store.users.by_username(USER)
        inbox = await store.mailboxes.get(user.id, "INBOX")
        other = await Store.open(mongo_uri, db_name)
        try:
            await other.messages.store_flags(inbox.id, [3], "add", ["\\Deleted"])
            await other.messages.expunge(inbox.id)
        finally:
            await other.aclose()
        assert sole_imap_server.notifier.knows_every_change(inbox.id, 10**9)
        lines = await a.command(b"y", b"SEARCH SUBJECT note")
        assert b"* SEARCH 1 2 4 5\r\n" in lines, lines
        assert lines[-1].startswith(b"y OK [EXPUNGEISSUED]"), lines
