"""The hot FETCH path: round trips per command, pre-rendered values, byte equality
with the general serializer."""

from __future__ import annotations

from typing import Any

import trio

from duck.store import metrics

from .conftest import MESSAGE, PASSWORD, USER
from .raw import RawClient


async def _loaded(server: Any, n: int) -> None:
    user = await server.store.users.by_username(USER)
    for i in range(n):
        await server.store.messages.append(user.id, "INBOX", MESSAGE.replace(
            b"hello there", b"hello %d" % i))


async def test_session_counts_round_trips_per_command(imap_server: Any) -> None:
    with trio.fail_after(60):
        await _loaded(imap_server, 30)
        client = await RawClient.open(imap_server.ports["imap"])
        await client.login(USER, PASSWORD)
        await client.command(b"a1", b"SELECT INBOX")
        await client.command(b"a0", b"NOOP")  # the journal read that follows SELECT
        metrics.reset()
        lines = await client.command(
            b"a2", b"UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
        assert lines[-1].startswith(b"a2 OK")
        assert sum(1 for line in lines if b" FETCH (" in line) == 30
        # The scope closes just after the tagged reply: the next command is read after.
        await client.command(b"a3", b"NOOP")
        stats = metrics.statistics()
        assert stats["UID FETCH"]["commands"] == 1
        # One query for the whole range (the view and the journal are in memory).
        assert stats["UID FETCH"]["round_trips"] <= 1, stats["UID FETCH"]
        await client.aclose()
