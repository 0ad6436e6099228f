"""Renderings: opaque per-message bytes a protocol computes once (at delivery, or
later in bulk) and reads back with FETCH; and FETCH of a range as one query."""

from __future__ import annotations

import pytest
from store_samples import simple_message

from duck.mime.model import IndexedMessage
from duck.store import Store, User, metrics
from duck.store.errors import InvalidInput

pytestmark = pytest.mark.store


def _subject(message: IndexedMessage) -> bytes:
    return b"S:" + (message.envelope.subject or b"")


def _failing(message: IndexedMessage) -> bytes:
    raise RuntimeError("renderer bug")


async def test_delivery_stores_the_registered_renderings(store: Store, user: User) -> None:
    box = await store.mailboxes.get(user.id, "INBOX")
    store.messages.register_renderer("subj", _subject)
    store.messages.register_renderer("none", lambda m: None)
    store.messages.register_renderer("broken", _failing)
    try:
        result = await store.messages.append(user.id, "INBOX", simple_message(subject="hi"))
    finally:
        store.messages.renderers.clear()
    (rec,) = await store.messages.fetch(box.id, [result.uid], ["size"],
                                        renderings=["subj", "none", "broken", "other"])
    # None and a failing renderer store nothing; the delivery itself succeeded.
    assert rec.renderings == {"subj": b"S:hi"}
    assert rec.size is not None and rec.size > 0
    # Not asked for, not loaded (from the database: the record cache may hold more).
    store.messages.cache.clear()
    (plain,) = await store.messages.fetch(box.id, [result.uid], ["size"])
    assert plain.renderings is None


async def test_renderings_saved_later_keep_the_modseq(store: Store, user: User) -> None:
    box = await store.mailboxes.get(user.id, "INBOX")
    a = await store.messages.append(user.id, "INBOX", simple_message(subject="one"))
    b = await store.messages.append(user.id, "INBOX", simple_message(subject="two"))
    before = {r.uid: r.modseq for r in await store.messages.fetch(box.id, [a.uid, b.uid],
                                                                    ["modseq"])}
    saved = await store.messages.save_renderings(box.id, {a.uid: {"x": b"\x00\xffA"},
                                                          b.uid: {}})
    assert saved == 1
    recs = await store.messages.fetch(box.id, [a.uid, b.uid], ["modseq"], renderings=["x"])
    assert [r.renderings for r in recs] == [{"x": b"\x00\xffA"}, None]
    assert {r.uid: r.modseq for r in recs} == before
    # Copies carry their renderings.
    copied = await store.messages.copy(box.id, [a.uid], user.id, "INBOX")
    (copy,) = await store.messages.fetch(box.id, [copied.uids[0][1]], [], renderings=["x"])
    assert copy.renderings == {"x": b"\x00\xffA"}


async def test_rendering_names_are_field_names(store: Store, user: User) -> None:
    box = await store.mailboxes.get(user.id, "INBOX")
    for bad in ("a.b", "$x", "", "A", "x" * 40):
        with pytest.raises(InvalidInput):
            store.messages.register_renderer(bad, _subject)
        with pytest.raises(InvalidInput):
            await store.messages.fetch(box.id, [1], [], renderings=[bad])


async def test_fetch_batches_is_one_query_for_a_range(store: Store, user: User) -> None:
    box = await store.mailboxes.get(user.id, "INBOX")
    uids = [(await store.messages.append(user.id, "INBOX", simple_message(subject=f"m{i}")))
            .uid for i in range(150)]
    sparse = [*uids[::3], uids[-1]]  # a covering range of at most twice the UIDs
    few = [uids[0], uids[70], uids[140]]
    for wanted in (uids, sparse, few, uids[:1]):
        store.messages.cache.clear()  # the database's side is what is measured here
        metrics.reset()
        with metrics.command_scope("test") as scope:
            got = []
            async for batch in store.messages.fetch_batches(box.id, wanted, ["size"]):
                got += batch
        assert [r.uid for r in got] == sorted(set(wanted))
        assert all(r.size for r in got)
        assert scope.round_trips == 1, metrics.statistics()["test"]["by_db_command"]
    assert [b async for b in store.messages.fetch_batches(box.id, [], ["size"])] == []
    # Asked again, the sizes come from the record cache: no query.
    [b async for b in store.messages.fetch_batches(box.id, uids, ["size"])]
    with metrics.command_scope("again") as scope:
        again = [r async for b in store.messages.fetch_batches(box.id, sparse, ["size"])
                 for r in b]
    assert [r.uid for r in again] == sorted(set(sparse)) and scope.round_trips == 0


async def test_fetch_batches_left_early_closes_its_cursor(store: Store, user: User) -> None:
    box = await store.mailboxes.get(user.id, "INBOX")
    uids = [(await store.messages.append(user.id, "INBOX", simple_message())).uid
            for _ in range(3)]
    batches = store.messages.fetch_batches(box.id, uids, ["size"])
    first = await batches.__anext__()
    assert [r.uid for r in first] == uids
    await batches.aclose()  # type: ignore[attr-defined]
    # The store still answers (no cursor left half-read on a connection).
    assert len(await store.messages.fetch(box.id, uids, ["size"])) == 3


async def test_renderings_saved_later_are_read_from_the_digest(store: Store, user: User) -> None:
    """Renderings saved after delivery also go into the digest's rendering part, so a
    FETCH of many messages finds them there (one query per part) instead of reading
    the message documents."""
    box = await store.mailboxes.get(user.id, "INBOX")
    uids = [(await store.messages.append(user.id, "INBOX", simple_message(subject=f"m{i}")))
            .uid for i in range(130)]  # more than fetch.DIGEST_MIN: the digest is read
    await store.messages.save_renderings(box.id, {u: {"late": b"L%d" % u} for u in uids})
    store.messages.cache.clear()
    metrics.reset()
    with metrics.command_scope("test") as scope:
        recs = [r async for batch in store.messages.fetch_batches(box.id, uids, ["size"],
                                                                    ["late"]) for r in batch]
    assert [r.renderings for r in recs] == [{"late": b"L%d" % u} for u in uids]
    assert scope.round_trips == 1  # the digest part alone: no fallback to the messages
