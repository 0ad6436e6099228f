"""STATUS of the selected mailbox: answered from the session's view without a read
when the view is current, and always with the values a read gives."""

from __future__ import annotations

import re
from typing import Any

import trio

from duck.store import metrics

from .conftest import MESSAGE, PASSWORD, USER
from .raw import RawClient

STATUS_ITEMS = b"(MESSAGES UNSEEN RECENT UIDVALIDITY)"


def _status(lines: list[bytes]) -> dict[str, int]:
    found = [line for line in lines if line.startswith(b"* STATUS ")]
    assert len(found) == 1, lines
    inner = re.search(rb"\((.*)\)", found[0])
    assert inner is not None
    words = inner.group(1).decode().split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}


async def _status_rt(client: RawClient, tag: bytes, mailbox: bytes = b"INBOX",
                     items: bytes = STATUS_ITEMS) -> tuple[dict[str, int], int]:
    """A STATUS's values and the round trips it made."""
    metrics.reset()
    lines = await client.command(tag, b"STATUS " + mailbox + b" " + items)
    assert lines[-1].startswith(tag + b" OK"), lines
    await client.command(tag + b"n", b"NOOP")  # (closes the STATUS scope)
    return _status(lines), metrics.statistics().get("STATUS", {}).get("round_trips", 0)


async def test_status_of_the_selected_mailbox_reads_nothing_and_agrees(
        imap_server: Any) -> None:
    with trio.fail_after(60):
        user = await imap_server.store.users.by_username(USER)
        for i in range(6):
            await imap_server.store.messages.append(
                user.id, "INBOX", MESSAGE.replace(b"hello there", b"hello %d" % i),
                flags=["\\Seen"] if i % 3 == 0 else [])
        selected = await RawClient.open(imap_server.ports["imap"])
        other = await RawClient.open(imap_server.ports["imap"])
        for c in (selected, other):
            await c.login(USER, PASSWORD)
        await selected.command(b"s1", b"SELECT INBOX")
        await selected.command(b"s2", b"NOOP")

        async def both(tag: bytes) -> tuple[dict[str, int], dict[str, int], int]:
            mine, trips = await _status_rt(selected, tag)
            # The other session has nothing selected: its STATUS is a read.
            theirs, _ = await _status_rt(other, tag)
            return mine, theirs, trips

        mine, theirs, trips = await both(b"a1")
        assert trips == 0
        assert mine == theirs == {"MESSAGES": 6, "UNSEEN": 4, "RECENT": 0,
                                  "UIDVALIDITY": theirs["UIDVALIDITY"]}

        # The selected session's own changes: STORE, then EXPUNGE.
        await selected.command(b"s3", b"STORE 2 +FLAGS (\\Seen \\Deleted)")
        mine, theirs, trips = await both(b"a2")
        assert (mine, trips) == (theirs, 0) and mine["UNSEEN"] == 3
        await selected.command(b"s4", b"EXPUNGE")
        mine, theirs, trips = await both(b"a3")
        assert (mine, trips) == (theirs, 0) and mine["MESSAGES"] == 5

        # Another session's changes: the view is behind until it reads the journal,
        # so this STATUS reads (and still agrees), the next one does not.
        await other.command(b"o1", b"SELECT INBOX")
        await other.command(b"o2", b"STORE 1:2 -FLAGS (\\Seen)")
        await other.command(b"o3", b"UNSELECT")
        await imap_server.store.messages.append(user.id, "INBOX", MESSAGE)
        mine, trips = await _status_rt(selected, b"a4")
        theirs, _ = await _status_rt(other, b"a4")
        assert trips >= 1
        # (A read's RECENT counts the new message for the next session to select,
        # and the selected session claims it when it reads the journal after
        # STATUS: a read after that counts none.)
        assert mine == {**theirs, "MESSAGES": 6, "UNSEEN": 5, "RECENT": 1}
        assert theirs == {**mine, "RECENT": 0}
        mine, theirs, trips = await both(b"a5")
        assert (mine, trips) == (theirs, 0) and mine["RECENT"] == 0

        # Items a view does not answer exactly, and another mailbox, are read.
        _, trips = await _status_rt(selected, b"a6", items=b"(MESSAGES UIDNEXT)")
        assert trips >= 1
        _, trips = await _status_rt(selected, b"a7", mailbox=b"Drafts",
                                    items=b"(MESSAGES)")
        assert trips >= 1
        # EXAMINE claims nothing: a read-only view's STATUS is read.
        await selected.command(b"s5", b"EXAMINE INBOX")
        await selected.command(b"s6", b"NOOP")
        mine, trips = await _status_rt(selected, b"a8")
        theirs, _ = await _status_rt(other, b"a8")
        assert trips >= 1 and mine == theirs
        for c in (selected, other):
            await c.aclose()
