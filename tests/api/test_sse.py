"""SSE: ordering under out-of-order commits, no loss across reconnects, slow readers
dropped, one journal read shared by many streams, errors."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import trio
from bson import ObjectId

from duck.store import Store
from duck.store.mail.mailboxes import allocate
from duck.store.push import journal as journal_mod

from .conftest import SseReader, inbox_id, message, open_sse


async def test_out_of_order_commit_is_never_skipped(duck_server: Any, client: httpx.AsyncClient,
                                                    user: str) -> None:
    """A modseq allocated first but journaled last is delivered before its successor."""
    store: Store = duck_server.store
    db = store.database
    inbox = await inbox_id(store, user)
    await store.messages.append(user, "INBOX", message("one"))
    with trio.fail_after(40):
        async with open_sse(client, f"/users/{user}/updates") as sse:
            ready = await sse.next()
            # Writer A allocates modseq N and stalls before journaling it.
            _, slow, _ = await db.run(lambda: allocate(db, ObjectId(inbox), modseqs=1))
            # Writer B commits N+1 (a new message) meanwhile: that wakes the stream.
            await store.messages.append(user, "INBOX", message("two"))
            with trio.move_on_after(1.5):
                early = await sse.until("message.new")
                raise AssertionError(f"N+1 delivered before N: {early}")
            # A's entry lands (late, with an id and time after B's).
            await db.run(journal_mod.write, db, [journal_mod.entry_doc(
                ObjectId(inbox), slow, "flags", uid=1, flags=["\\Seen"])])
            store_notifier = duck_server.notifier
            store_notifier.publish_nowait(f"u:{user}")
            first = await sse.next()
            assert (first["event"], first["data"]["modseq"]) == ("message.flags", slow)
            second = await sse.next()
            assert (second["event"], second["data"]["modseq"]) == ("message.new", slow + 1)
        # Resuming from before N gives N and N+1 again, in order.
        async with client.stream("GET", f"/users/{user}/updates",
                                 headers={"Last-Event-ID": ready["id"]}) as response:
            again = SseReader(response)
            await again.next()
            kinds = [(e["event"], e["data"].get("modseq")) for e in
                     [await again.next(), await again.next()]]
            assert kinds == [("message.flags", slow), ("message.new", slow + 1)]


async def test_concurrent_writers_and_reconnects_lose_nothing(
        duck_server: Any, client: httpx.AsyncClient, user: str) -> None:
    store: Store = duck_server.store
    for path in ("A", "B"):
        await store.mailboxes.create(user, path)
    per_box = 8
    seen: set[tuple[str, int]] = set()

    async def write(path: str) -> None:
        for i in range(per_box):
            await store.messages.append(user, path, message(f"{path}{i}"))

    with trio.fail_after(90):
        async with client.stream("GET", f"/users/{user}/updates") as response:
            last = (await SseReader(response).next())["id"]
        async with trio.open_nursery() as nursery:
            for path in ("INBOX", "A", "B"):
                nursery.start_soon(write, path)
            # Reconnect after every 3 events while the writers run.
            while len(seen) < 3 * per_box:
                async with client.stream("GET", f"/users/{user}/updates",
                                         headers={"Last-Event-ID": last}) as response:
                    sse = SseReader(response)
                    await sse.next()
                    for _ in range(3):
                        event = await sse.until("message.new")
                        key = (event["data"]["path"], event["data"]["uid"])
                        assert key not in seen, f"duplicate {key}"
                        seen.add(key)
                        last = event["id"]
                        if len(seen) == 3 * per_box:
                            break
    assert seen == {(p, u) for p in ("INBOX", "A", "B") for u in range(1, per_box + 1)}


async def test_slow_reader_is_dropped(duck_server: Any, user: str) -> None:
    store: Store = duck_server.store
    hub = duck_server.api_state.sse
    hub.send_timeout = 1.0
    hub.buffer = 16
    inbox = await inbox_id(store, user)
    await store.messages.append(user, "INBOX", message("x"))
    with trio.fail_after(120):
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", duck_server.ports["api"]))
        stream = trio.SocketStream(sock)
        await stream.send_all(f"GET /users/{user}/updates HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        while hub.streams == 0:
            await trio.sleep(0.05)
        # Never read; keep changing flags until the server gives up on us.
        flags = ["\\Seen", "\\Flagged"]
        n = 0
        while hub.dropped == 0:
            await store.messages.store_flags(inbox, [1], "replace", [flags[n % 2]])
            n += 1
        while hub.streams:
            await trio.sleep(0.05)
        await stream.aclose()
    assert hub.dropped == 1 and n < 5000


async def test_streams_of_one_user_share_reads(duck_server: Any, client: httpx.AsyncClient,
                                               user: str) -> None:
    store: Store = duck_server.store
    hub = duck_server.api_state.sse
    count = 20
    got: list[int] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            ready = trio.Semaphore(0)

            async def listen() -> None:
                async with client.stream("GET", f"/users/{user}/updates") as response:
                    sse = SseReader(response)
                    await sse.next()
                    ready.release()
                    got.append((await sse.until("message.new"))["data"]["uid"])

            for _ in range(count):
                nursery.start_soon(listen)
            for _ in range(count):
                await ready.acquire()
            reads_before = hub.reads
            await store.messages.append(user, "INBOX", message("fan-out"))
    assert got == [1] * count
    # Far fewer journal reads than streams (the first read of each is shared).
    assert hub.reads - reads_before < count // 2, hub.statistics()
    assert hub.shared_reads > 0


async def test_errors(client: httpx.AsyncClient, user: str) -> None:
    with trio.fail_after(20):
        r = await client.get("/users/0123456789abcdef01234567/updates")
        assert r.status_code == 404 and r.json()["success"] is False
        r = await client.get(f"/users/{user}/updates", headers={"Last-Event-ID": "!!!"})
        assert r.status_code == 400 and "Last-Event-ID" in r.json()["error"]


async def test_shutdown_ends_open_streams_at_once(mongo_uri: str, db_name: str,
                                                  tmp_path: Any) -> None:
    """An open update stream does not hold shutdown for the grace period: it ends
    when shutdown begins, and the client sees the end of the stream."""
    from duck.config import Config
    from duck.server import Server

    server = Server(Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0,
                           lmtp_port=0, pop3_port=0, pop3s_port=0, managesieve_port=0, api_port=0,
                           mongo_uri=mongo_uri, database=db_name, shutdown_grace=60.0))
    ended = False
    # Bounded far below the 60 s grace: an open stream must not hold shutdown.
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            assert server.store is not None
            store = server.store
            created = await store.users.create("carol@example.com", "secret-pass")
            base = f"http://127.0.0.1:{server.ports['api']}"
            async with (httpx.AsyncClient(base_url=base, timeout=20) as c,
                        open_sse(c, f"/users/{created.id}/updates") as sse):
                assert (await sse.next())["event"] == "ready"
                await store.database.run_threaded(store.database.client.drop_database, db_name)
                server.request_shutdown()
                try:
                    while True:
                        await sse.next()
                except EOFError:
                    ended = True
    assert ended and server.api_state.sse.statistics()["streams"] == 0


async def test_a_gap_is_stepped_over_at_the_next_heartbeat(
        mongo_uri: str, db_name: str, tmp_path: Any, monkeypatch: Any) -> None:
    """A writer that allocated a modseq and died leaves a gap that wakes nobody: the
    streams' periodic re-read (one timer for all of them, ``SseHub.run``) steps
    over it once it is older than the grace, and what follows is delivered."""
    from duck.config import Config
    from duck.server import Server

    monkeypatch.setattr(journal_mod, "GAP_GRACE", journal_mod.dt.timedelta(seconds=0.5))
    server = Server(Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0,
                           lmtp_port=0, pop3_port=0, pop3s_port=0, managesieve_port=0,
                           api_port=0, mongo_uri=mongo_uri, database=db_name,
                           shutdown_grace=2.0, sse_heartbeat=0.5))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            store = server.store
            assert store is not None
            user = (await store.users.create("dave@example.com", "secret-pass")).id
            inbox = await inbox_id(store, user)
            db = store.database
            base = f"http://127.0.0.1:{server.ports['api']}"
            async with (httpx.AsyncClient(base_url=base, timeout=20) as c,
                        open_sse(c, f"/users/{user}/updates") as sse):
                await sse.next()  # ready
                # Allocated, never journaled; the next change wakes the stream,
                # which cannot pass the gap yet.
                _, lost, _ = await db.run(lambda: allocate(db, ObjectId(inbox), modseqs=1))
                await store.messages.append(user, "INBOX", message("after the gap"))
                new = await sse.until("message.new")
                assert new["data"]["modseq"] == lost + 1
            await store.database.run_threaded(store.database.client.drop_database, db_name)
            server.request_shutdown()
