"""Webhooks: registration, signed at-least-once delivery, retries while the receiver is
down, a hanging receiver never blocks delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import h11
import httpx
import trio

from duck.store import ANY_KEY, Store

from .conftest import message


class Receiver:
    """A webhook endpoint on raw trio + h11: records (headers, body), answers
    ``status`` (or hangs)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.hang = False
        self.arrived = trio.Event()

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        headers: dict[str, str] = {}
        body = b""
        async with stream:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    conn.receive_data(data)
                    if not data:
                        return
                elif isinstance(event, h11.Request):
                    headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return
            if self.hang:
                await trio.sleep_forever()
            if self.status == 200:
                self.received.append((headers, body))
                self.arrived.set()
            out = conn.send(h11.Response(status_code=self.status,
                                         headers=[("content-length", "2")]))
            out += conn.send(h11.Data(data=b"ok")) + conn.send(h11.EndOfMessage())
            await stream.send_all(out)


async def serve_receiver(receiver: Receiver, port: int, *,
                         task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``receiver`` on 127.0.0.1:port (0: any), reporting the port."""
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(receiver.handle, listeners)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check the X-Duck-Signature header."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("x-duck-signature", ""), expected)


async def test_signed_delivery_survives_receiver_outage(
        duck_server: Any, client: httpx.AsyncClient, user: str, nursery: Any) -> None:
    store: Store = duck_server.store
    dispatcher = duck_server.dispatcher
    dispatcher.backoff_base = 0.2
    dispatcher.backoff_cap = 1.0
    receiver = Receiver()
    with trio.fail_after(60):
        scope = trio.CancelScope()

        async def run_receiver(port: int, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await serve_receiver(receiver, port, task_status=task_status)

        port = await nursery.start(run_receiver, 0)
        r = await client.post("/webhooks", json={
            "url": f"http://127.0.0.1:{port}/hook", "events": ["message.new"], "user": user})
        assert r.status_code == 200, r.text
        secret = r.json()["secret"]
        await store.messages.append(user, "INBOX", message("first"))
        await receiver.arrived.wait()
        headers, body = receiver.received[0]
        assert verify(secret, headers, body)
        event = json.loads(body)
        assert event["event"] == "message.new" and event["user"] == user
        assert event["subject"] == "first" and event["uid"] == 1
        assert event["from"][0]["address"] == "alice@example.com"
        assert event["size"] == len(message("first")) and event["path"] == "INBOX"
        assert headers["x-duck-event-id"] == event["id"]

        # The receiver goes down; mail keeps arriving and is queued.
        scope.cancel()
        await trio.sleep(0.2)
        receiver.arrived = trio.Event()
        await store.messages.append(user, "INBOX", message("while down"))
        await trio.sleep(2.5)  # several failed attempts
        stats = await store.webhooks.statistics()
        assert stats["pending"] == 1 and dispatcher.failed >= 1
        # Back on the same port: the retry gets through, signed, once.
        scope = trio.CancelScope()
        await nursery.start(run_receiver, port)
        await receiver.arrived.wait()
        headers, body = receiver.received[-1]
        assert verify(secret, headers, body) and json.loads(body)["subject"] == "while down"
        assert [json.loads(b)["uid"] for _, b in receiver.received] == [1, 2]
        scope.cancel()


async def test_hanging_or_failing_hook_never_blocks_delivery(
        duck_server: Any, client: httpx.AsyncClient, user: str, nursery: Any) -> None:
    store: Store = duck_server.store
    duck_server.dispatcher.timeout = 1.0
    hanging, failing = Receiver(), Receiver()
    hanging.hang = True
    failing.status = 500
    with trio.fail_after(60):
        ports = [await nursery.start(serve_receiver, r, 0) for r in (hanging, failing)]
        for port in ports:
            r = await client.post("/webhooks", json={"url": f"http://127.0.0.1:{port}/"})
            assert r.status_code == 200
        start = trio.current_time()
        for i in range(5):
            await store.messages.append(user, "INBOX", message(f"m{i}"))
        assert trio.current_time() - start < 5
        await trio.sleep(2)
        assert len(await store.messages.view((await store.mailboxes.get(user, "INBOX")).id)) == 5
        stats = await store.webhooks.statistics()
        assert stats["pending"] >= 10 and stats["done"] == 0  # kept for retry, none lost


async def test_registration(client: httpx.AsyncClient, user: str) -> None:
    with trio.fail_after(20):
        r = await client.post("/webhooks", json={"url": "https://example.com/h",
                                                 "events": ["message.new", "mailbox.created"]})
        hook = r.json()
        assert r.status_code == 200 and hook["user"] is None and len(hook["secret"]) >= 32
        mine = await client.post("/webhooks", json={"url": "https://example.com/u",
                                                    "user": user, "secret": "s" * 20})
        assert mine.json()["secret"] == "s" * 20
        listed = (await client.get("/webhooks")).json()["results"]
        assert {h["id"] for h in listed} == {hook["id"], mine.json()["id"]}
        assert all(h["secret"] is None for h in listed)
        only = (await client.get("/webhooks", params={"user": user})).json()["results"]
        assert [h["id"] for h in only] == [mine.json()["id"]]
        assert (await client.delete(f"/webhooks/{hook['id']}")).status_code == 200
        assert (await client.get(f"/webhooks/{hook['id']}")).status_code == 404
        r = await client.post("/webhooks", json={"url": "https://e.com/",
                                                 "user": "0123456789abcdef01234567"})
        assert r.status_code == 404


async def test_the_producer_wakes_on_changes_and_rests_without_hooks(
        duck_server: Any, client: httpx.AsyncClient, user: str, nursery: Any) -> None:
    """Without hooks the producer does not poll the journal every half second while
    mail flows; with one, a change wakes it (it does not wait for a poll)."""
    store: Store = duck_server.store
    with trio.fail_after(60):
        await trio.sleep(0.5)
        before = store.webhooks.productions
        for i in range(5):
            await store.messages.append(user, "INBOX", message(f"quiet {i}"))
            await trio.sleep(0.3)
        assert store.webhooks.productions - before <= 1
        await trio.sleep(1.2)  # (beyond the allowance for clock skew between processes)
        receiver = Receiver()
        port = await nursery.start(serve_receiver, receiver, 0)
        r = await client.post("/webhooks", json={"url": f"http://127.0.0.1:{port}/"})
        assert r.status_code == 200
        duck_server.dispatcher.poll_interval = 60.0  # only a wake-up is in time
        await store.messages.append(user, "INBOX", message("told"))
        with trio.fail_after(20):
            while not any(b"told" in body for _, body in receiver.received):
                await trio.sleep(0.05)
        # Only changes made after the hook existed are its own.
        assert not any(b"quiet" in body for _, body in receiver.received)


async def test_without_hooks_the_dispatcher_is_not_woken_by_every_change(
        duck_server: Any, client: httpx.AsyncClient, user: str, nursery: Any) -> None:
    """No hook: the dispatcher holds no subscription to every change (each change
    would wake it for nothing). The first hook subscribes it, and a change then
    reaches the hook by a wake-up, not by a poll."""
    store: Store = duck_server.store
    notifier = duck_server.notifier
    with trio.fail_after(60):
        await trio.sleep(0.3)
        for i in range(3):
            await store.messages.append(user, "INBOX", message(f"unheard {i}"))
        await trio.sleep(1.2)  # (beyond the allowance for clock skew between processes)
        assert not store.webhooks.has_hooks
        assert notifier.subscribers(ANY_KEY) == 0
        receiver = Receiver()
        port = await nursery.start(serve_receiver, receiver, 0)
        r = await client.post("/webhooks", json={"url": f"http://127.0.0.1:{port}/"})
        assert r.status_code == 200
        while notifier.subscribers(ANY_KEY) != 1:
            await trio.sleep(0.02)
        duck_server.dispatcher.poll_interval = 60.0  # only a wake-up is in time
        await store.messages.append(user, "INBOX", message("heard"))
        while not any(b"heard" in body for _, body in receiver.received):
            await trio.sleep(0.05)
        assert not any(b"unheard" in body for _, body in receiver.received)
