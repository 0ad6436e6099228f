"""The outbound queue (claims, settling, large bodies, idempotency) and the vacation
memory, on the real database; two stores on one database stand for two processes."""

from __future__ import annotations

import pytest
import trio

from duck.store import InvalidInput, NotFound, Outcome, Store, TooBig
from duck.store.outbound import queue as queue_module

pytestmark = pytest.mark.store

MESSAGE = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n"


async def test_enqueue_claim_and_send_once(store: Store) -> None:
    qid = await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE,
                                       kind="redirect", user_id="u1")
    claimed = await store.outbound.claim("me", lease=30)
    assert claimed is not None and claimed.id == qid
    assert claimed.message == MESSAGE and claimed.recipients == ("b@example.net",)
    assert claimed.sender == "a@example.org" and claimed.attempts == 1
    # Claimed: nobody else gets it while the lease lasts.
    assert await store.outbound.claim("other", lease=30) is None
    status = await store.outbound.settle(claimed, Outcome(sent=("b@example.net",)),
                                         max_age=3600)
    assert status == "sent"
    got = await store.outbound.get(qid)
    assert got.status == "sent" and got.sent == ("b@example.net",) and got.pending == ()
    assert await store.outbound.claim("me", lease=30) is None
    assert (await store.outbound.statistics())["sent"] == 1


async def test_lease_runs_out_then_another_claims_and_the_first_cannot_settle(
        store: Store) -> None:
    await store.outbound.enqueue("", ["b@example.net"], MESSAGE, kind="vacation")
    first = await store.outbound.claim("one", lease=0.3)
    assert first is not None and first.sender == ""
    await trio.sleep(0.5)
    second = await store.outbound.claim("two", lease=30)
    assert second is not None and second.id == first.id and second.attempts == 2
    # The first sender's claim is gone: its settle writes nothing.
    assert await store.outbound.settle(first, Outcome(sent=("b@example.net",)),
                                       max_age=3600) is None
    assert (await store.outbound.get(first.id)).status == "queued"
    assert await store.outbound.settle(second, Outcome(sent=("b@example.net",)),
                                       max_age=3600) == "sent"


async def test_deferred_recipients_retry_after_the_delay_then_give_up(store: Store) -> None:
    qid = await store.outbound.enqueue("a@example.org", ["x@example.net", "y@example.net",
                                                         "z@example.net"],
                                       MESSAGE, kind="redirect")
    claimed = await store.outbound.claim("me", lease=30)
    assert claimed is not None
    outcome = Outcome(sent=("x@example.net",), refused=(("y@example.net", "550 no"),),
                      deferred=("z@example.net",), error="451 later", delay=1.0)
    assert await store.outbound.settle(claimed, outcome, max_age=3600) == "queued"
    got = await store.outbound.get(qid)
    assert got.pending == ("z@example.net",) and got.error == "451 later"
    assert await store.outbound.claim("me", lease=30) is None  # not due yet
    due = await store.outbound.next_due()
    assert due is not None and due == got.next_at
    await trio.sleep(1.1)
    again = await store.outbound.claim("me", lease=30)
    assert again is not None and again.recipients == ("z@example.net",)
    # The next retry would fall after max_age: given up, but x had it: "sent".
    status = await store.outbound.settle(
        again, Outcome(deferred=("z@example.net",), error="451 still", delay=3600),
        max_age=60)
    assert status == "sent"
    got = await store.outbound.get(qid)
    assert got.sent == ("x@example.net",)
    assert dict(got.refused)["y@example.net"] == "550 no"
    assert "gave up after 2 attempts: 451 still" in dict(got.refused)["z@example.net"]
    assert await store.outbound.next_due() is None


async def test_nothing_sent_is_failed(store: Store) -> None:
    qid = await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE,
                                       kind="redirect")
    claimed = await store.outbound.claim("me", lease=30)
    assert claimed is not None
    status = await store.outbound.settle(
        claimed, Outcome(refused=(("b@example.net", "550 5.1.1 unknown"),)), max_age=60)
    assert status == "failed"
    assert (await store.outbound.get(qid)).status == "failed"
    assert (await store.outbound.statistics()) == {"queued": 0, "sent": 0, "failed": 1}


async def test_large_message_goes_in_chunks_and_comes_back_whole(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # More chunks than one command writes or reads (the embedded engine's caps).
    monkeypatch.setattr(queue_module, "CHUNKS_PER_COMMAND", 2)
    big = MESSAGE + b"x" * (queue_module.CHUNK_SIZE * 2 + 77) + b"\r\n"
    qid = await store.outbound.enqueue("a@example.org", ["b@example.net"], big,
                                       kind="redirect")
    chunks = store.database.collection(queue_module.CHUNKS)
    assert await store.database.run(chunks.count_documents, {}) == 3
    claimed = await store.outbound.claim("me", lease=30)
    assert claimed is not None and claimed.message == big
    await store.outbound.settle(claimed, Outcome(sent=("b@example.net",)), max_age=60)
    assert await store.database.run(chunks.count_documents, {}) == 0
    assert (await store.outbound.get(qid)).status == "sent"


async def test_same_key_is_one_message_and_bad_input_is_refused(store: Store) -> None:
    first = await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE,
                                         kind="redirect", key="deliv-1:redirect:0")
    second = await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE,
                                          kind="redirect", key="deliv-1:redirect:0")
    assert first == second
    assert (await store.outbound.statistics())["queued"] == 1
    for bad in (["no-at-sign"], [], ["a@b\r\nRCPT TO:<c@d>"], ["x@example.net"] * 101):
        with pytest.raises(InvalidInput):
            await store.outbound.enqueue("a@example.org", bad, MESSAGE, kind="redirect")
    with pytest.raises(InvalidInput):
        await store.outbound.enqueue("a b@example.org", ["b@example.net"], MESSAGE,
                                     kind="redirect")
    with pytest.raises(TooBig):
        await store.outbound.enqueue("a@example.org", ["b@example.net"], MESSAGE,
                                     kind="redirect", max_size=10)
    with pytest.raises(NotFound):
        await store.outbound.get("0" * 24)


async def test_bare_lf_becomes_crlf(store: Store) -> None:
    await store.outbound.enqueue("a@example.org", ["b@example.net"], b"Subject: x\n\nhi\n",
                                 kind="redirect")
    claimed = await store.outbound.claim("me", lease=30)
    assert claimed is not None and claimed.message == b"Subject: x\r\n\r\nhi\r\n"


async def test_two_stores_claim_each_message_once(store: Store, mongo_uri: str) -> None:
    other = await Store.open(mongo_uri, store.database.name)
    try:
        ids = {await store.outbound.enqueue("a@example.org", ["b@example.net"],
                                            MESSAGE + str(i).encode(), kind="redirect")
               for i in range(12)}
        claimed: list[str] = []

        async def drain(s: Store, owner: str) -> None:
            while (got := await s.outbound.claim(owner, lease=60)) is not None:
                claimed.append(got.id)
                await s.outbound.settle(got, Outcome(sent=got.recipients), max_age=60)

        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(drain, store, f"a{i}")
                nursery.start_soon(drain, other, f"b{i}")
        assert sorted(claimed) == sorted(ids)
    finally:
        await other.aclose()


async def test_wait_enqueued_wakes_on_enqueue(store: Store) -> None:
    seen = store.outbound.enqueued
    with trio.move_on_after(0.05):
        await store.outbound.wait_enqueued(seen)
        raise AssertionError("woke without an enqueue")
    async def later() -> None:
        await trio.sleep(0.05)
        await store.outbound.enqueue("", ["b@example.net"], MESSAGE, kind="vacation")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(later)
        with trio.fail_after(10):
            await store.outbound.wait_enqueued(seen)
    assert store.outbound.enqueued == seen + 1


async def test_vacation_memory_across_two_stores(store: Store, mongo_uri: str) -> None:
    other = await Store.open(mongo_uri, store.database.name)
    try:
        ask = store.outbound.vacation_should_reply
        assert await ask("u1", "Friend@Example.org", "h", 2.0) is True
        # The same sender, any case, from another process: already answered.
        assert await other.outbound.vacation_should_reply("u1", "friend@example.org", "h",
                                                          2.0) is False
        # Another handle, user or sender is answered on its own.
        assert await ask("u1", "friend@example.org", "h2", 2.0) is True
        assert await ask("u2", "friend@example.org", "h", 60) is True
        assert await ask("u1", "other@example.org", "h", 2.0) is True
        # Concurrent asks (two deliveries at once in two processes): one True.
        answers: list[bool] = []

        async def one(s: Store) -> None:
            answers.append(await s.outbound.vacation_should_reply("u1", "c@x.org", "h", 60))

        async with trio.open_nursery() as nursery:
            for s in (store, other, store, other):
                nursery.start_soon(one, s)
        assert sorted(answers) == [False, False, False, True]
        # After the period, the record (not yet removed by the TTL monitor) is reused.
        await trio.sleep(2.2)
        assert await other.outbound.vacation_should_reply("u1", "friend@example.org", "h",
                                                          2.0) is True
        assert await ask("u1", "friend@example.org", "h", 2.0) is False
        # :seconds 0 always answers.
        assert await ask("u1", "friend@example.org", "h", 0) is True
        # Forgetting drops the user's records, whatever the TTL monitor has already
        # removed of the expired ones (it may run at any moment): the 60-second
        # record is there to count, and goes; another user's stays.
        assert await store.outbound.vacation_forget("u1") >= 1
        assert await ask("u1", "c@x.org", "h", 60) is True
        assert await ask("u1", "friend@example.org", "h", 60) is True
        assert await ask("u2", "friend@example.org", "h", 60) is False
        with pytest.raises(InvalidInput):
            await ask("u1", "friend@example.org", "h", -1)
    finally:
        await other.aclose()
