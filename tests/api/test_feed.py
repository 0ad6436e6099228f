"""The change feed: cursor encoding, mailbox events, fleeting mailboxes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from duck.store import Cursor, InvalidInput, Store

from .conftest import open_sse

_IDS = st.binary(min_size=12, max_size=12).map(bytes.hex)


@given(st.dictionaries(_IDS, st.integers(0, 2**63), max_size=50), st.integers(0, 2**40))
def test_cursor_round_trip(modseqs: dict[str, int], t: int) -> None:
    cursor = Cursor(modseqs, t)
    text = cursor.encode()
    assert text.isascii() and "=" not in text
    assert Cursor.decode(text) == cursor


@given(st.text(max_size=200))
def test_cursor_garbage_is_invalid_input(text: str) -> None:
    try:
        Cursor.decode(text)
    except InvalidInput:
        pass


def test_cursor_is_compact() -> None:
    cursor = Cursor({f"{i:024x}": 1000 + i for i in range(50)}, 1_700_000_000)
    assert len(cursor.encode()) < 1100
    with pytest.raises(InvalidInput):
        Cursor.decode("AQ" + "A" * 10)


async def test_mailbox_events(duck_server: Any, client: httpx.AsyncClient, user: str) -> None:
    store: Store = duck_server.store
    with trio.fail_after(40):
        async with open_sse(client, f"/users/{user}/updates") as sse:
            await sse.next()
            box = await store.mailboxes.create(user, "Projects")
            created = await sse.until("mailbox.created")
            assert created["data"]["path"] == "Projects"
            assert created["data"]["mailbox"] == box.id
            await store.mailboxes.rename(user, "Projects", "Old")
            renamed = await sse.until("mailbox.renamed")
            assert (renamed["data"]["mailbox"], renamed["data"]["path"]) == (box.id, "Old")
            last = renamed["id"]
            await store.mailboxes.delete(user, "Old")
            deleted = await sse.until("mailbox.deleted")
            assert deleted["data"]["mailbox"] == box.id
        # Created and deleted while the client was away: both still come back.
        await store.mailboxes.create(user, "Fleeting")
        await store.mailboxes.delete(user, "Fleeting")
        async with open_sse(client, f"/users/{user}/updates",
                            headers={"Last-Event-ID": last}) as sse:
            await sse.next()
            kinds: list[tuple[str, str]] = []
            while len(kinds) < 3:
                event = await sse.next()
                if event["event"] != "mailbox.counters":
                    kinds.append((event["event"], event["data"]["path"]))
    assert kinds[0] == ("mailbox.deleted", "Old")
    assert kinds[1:] == [("mailbox.created", "Fleeting"), ("mailbox.deleted", "Fleeting")]
