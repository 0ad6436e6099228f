"""The change feed: cursor encoding, mailbox events, fleeting mailboxes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import greenback
import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from duck.store import Cursor, InvalidInput, Store
from duck.store.engine import inline

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


def _told(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.kind, e.mailbox_id) for e in events if e.kind != "mailbox.counters"]


async def test_a_fleeting_mailbox_is_told_once(duck_server: Any, user: str) -> None:
    """A mailbox created and deleted between two reads comes back once: reading on
    from the cursor that told it repeats nothing, however often, and a reader that
    starts "now" is not told the past of one deleted a moment before."""
    store: Store = duck_server.store
    start = await store.events.current(user)
    box = await store.mailboxes.create(user, "Fleeting")
    await store.mailboxes.delete(user, "Fleeting")
    batch = await store.events.read(user, start)
    assert _told(batch.events) == [("mailbox.created", box.id), ("mailbox.deleted", box.id)]
    cursor = batch.cursor
    for _ in range(3):
        again = await store.events.read(user, cursor)
        assert _told(again.events) == [] and not again.more
        cursor = again.cursor
    # Later changes still come, once.
    other = await store.mailboxes.create(user, "Stays")
    batch = await store.events.read(user, cursor)
    assert _told(batch.events) == [("mailbox.created", other.id)]
    assert _told((await store.events.read(user, batch.cursor)).events) == []
    # A new reader.
    fresh = await store.events.current(user)
    assert _told((await store.events.read(user, fresh)).events) == []


async def test_a_fleeting_mailbox_is_not_told_again_as_it_leaves_the_look_back(
        duck_server: Any, user: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cursor's time is whole seconds: the read that forgets a deleted mailbox
    must judge its creation from that same time, which the next read looks back
    from; judged from the exact time (up to a second later) it was forgotten while
    the next read still found its creation, and its whole past was told again
    (found by the soak, bench/soak: an SSE reader given mailbox.created/deleted of
    one mailbox many times)."""
    from bson import ObjectId

    from duck.store.engine import schema
    from duck.store.push import events as feed

    store: Store = duck_server.store
    start = await store.events.current(user)
    box = await store.mailboxes.create(user, "Fleeting")
    await store.mailboxes.delete(user, "Fleeting")
    entry = await store.database.run(lambda: store.database.collection(schema.JOURNAL).find_one(
        {"mailbox": ObjectId(box.id), "kind": "mailbox-create"}))
    created = entry["at"].replace(tzinfo=dt.UTC).timestamp()
    margin = feed.CREATE_MARGIN.total_seconds()
    # Just past the look-back of the exact time, still inside that of its second.
    just_past = created + margin + (1 - created % 1) / 2
    cursor = start
    told = []
    for at in (created + 1, just_past, just_past + 0.01, just_past + 1.5, just_past + 1.51,
               just_past + 3):
        monkeypatch.setattr(feed, "_now", lambda at=at: dt.datetime.fromtimestamp(at, dt.UTC))
        batch = await store.events.read(user, cursor)
        told += _told(batch.events)
        cursor = batch.cursor
    assert told == [("mailbox.created", box.id), ("mailbox.deleted", box.id)]


async def test_a_cursor_older_than_the_journal_is_told_to_resync(
        duck_server: Any, client: httpx.AsyncClient, user: str) -> None:
    store: Store = duck_server.store
    cursor = await store.events.current(user)
    await store.mailboxes.create(user, "Before")
    saved = store.events.retention
    store.events.retention = 60
    try:
        old = Cursor(cursor.modseqs, cursor.t - 3600)
        batch = await store.events.read(user, old)
        assert batch.resync and batch.events == [] and not batch.more
        assert batch.cursor.modseqs == (await store.events.current(user)).modseqs
        assert _told((await store.events.read(user, batch.cursor)).events) == []
        # Over SSE: a "resync" event whose id is the position to go on from.
        with trio.fail_after(30):
            async with open_sse(client, f"/users/{user}/updates",
                                headers={"Last-Event-ID": old.encode()}) as sse:
                await sse.next()  # ready
                event = await sse.next()
                assert event["event"] == "resync", event
                box = await store.mailboxes.create(user, "After")
                created = await sse.until("mailbox.created")
                assert created["data"]["mailbox"] == box.id
    finally:
        store.events.retention = saved


async def test_counters_told_are_never_older_than_the_events(
        duck_server: Any, user: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delivery that commits between a read's look at the mailboxes and its look
    at the journal: its event is told, and so are counters that include it (NOTIFY
    turns them into the last STATUS a client sees)."""
    store: Store = duck_server.store
    await store.messages.append(user, "INBOX", b"Subject: 1\r\n\r\nx\r\n")
    start = await store.events.current(user)
    await store.messages.append(user, "INBOX", b"Subject: 2\r\n\r\nx\r\n")
    token = trio.lowlevel.current_trio_token()
    real = store.events._shared_boxes
    appended: list[int] = []

    def then_deliver(*args: Any) -> Any:
        # (Runs inside the read's store call, between the two queries: on the trio
        # thread where store calls run inline, else in a worker thread.)
        if not appended:
            deliver = (store.messages.append, user, "INBOX", b"Subject: 3\r\n\r\nx\r\n")
            if inline.ACTIVE.get() is not None:
                done = greenback.await_(deliver[0](*deliver[1:]))
            else:
                done = trio.from_thread.run(*deliver, trio_token=token)
            appended.append(done.uid)
        return real(*args)

    monkeypatch.setattr(store.events, "_shared_boxes", then_deliver)
    batch = await store.events.read(user, start)
    assert appended
    told = [e for e in batch.events if e.kind == "message.new"]
    counters = [e.counters for e in batch.events if e.kind == "mailbox.counters"]
    assert [e.uid for e in told] == [2, appended[0]]
    assert counters and counters[-1] is not None
    assert counters[-1].messages == 3 and counters[-1].uid_next == appended[0] + 1
