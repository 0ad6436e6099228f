"""The SSE stream end to end in one process: new message, flags, Last-Event-ID."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from duck.store import Store

from .conftest import SseReader, inbox_id, message


async def test_stream_new_and_flags_then_resume(duck_server: Any, client: httpx.AsyncClient,
                                                user: str) -> None:
    store: Store = duck_server.store
    inbox = await inbox_id(store, user)
    with trio.fail_after(30):
        async with client.stream("GET", f"/users/{user}/updates") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            sse = SseReader(response)
            ready = await sse.next()
            assert ready["event"] == "ready" and ready["id"]
            await store.messages.append(user, "INBOX", message("first"))
            new = await sse.until("message.new")
            assert new["data"]["subject"] == "first"
            assert new["data"]["uid"] == 1 and new["data"]["mailbox"] == inbox
            assert new["data"]["from"][0]["address"] == "alice@example.com"
            assert new["data"]["size"] == len(message("first"))
            counters = await sse.until("mailbox.counters")
            assert counters["data"]["messages"] == 1 and counters["data"]["unseen"] == 1
            last_id = counters["id"]
        # Changes while disconnected come back with Last-Event-ID, in order.
        await store.messages.store_flags(inbox, [1], "add", ["\\Seen"])
        await store.messages.append(user, "INBOX", message("second"))
        async with client.stream("GET", f"/users/{user}/updates",
                                 headers={"Last-Event-ID": last_id}) as response:
            sse = SseReader(response)
            assert (await sse.next())["event"] == "ready"
            flags = await sse.until("message.flags")
            assert flags["data"]["uid"] == 1 and "\\Seen" in flags["data"]["flags"]
            new = await sse.until("message.new")
            assert new["data"]["uid"] == 2 and new["data"]["subject"] == "second"
