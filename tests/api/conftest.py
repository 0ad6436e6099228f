"""Helpers for the HTTP API tests: a client on the in-process server, users, mail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from duck.store import Store


def message(subject: str = "hello", sender: str = "alice@example.com",
            body: str = "Hi there.\r\n") -> bytes:
    """A small RFC 5322 message."""
    return (
        f"From: Alice <{sender}>\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash(subject))}@example.com>\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n{body}"
    ).encode()


@pytest.fixture
async def client(duck_server: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the server's API."""
    base = f"http://127.0.0.1:{duck_server.ports['api']}"
    async with httpx.AsyncClient(base_url=base, timeout=20) as c:
        yield c


@pytest.fixture
async def user(client: httpx.AsyncClient) -> str:
    """A fresh user's id."""
    r = await client.post("/users", json={"username": "bob@example.com",
                                          "password": "secret-pass"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def inbox_id(store: Store, user_id: str) -> str:
    """The id of the user's INBOX."""
    return (await store.mailboxes.get(user_id, "INBOX")).id


class SseReader:
    """A minimal Server-Sent Events parser over an httpx streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self.comments = 0

    async def next(self) -> dict[str, Any]:
        """The next event: {"event", "id", "data"} (data JSON-decoded)."""
        event: dict[str, Any] = {}
        data: list[str] = []
        async for line in self._lines:
            if line == "":
                if data or event:
                    event["data"] = json.loads("\n".join(data)) if data else None
                    return event
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name in ("event", "id"):
                event[name] = value
        raise EOFError("stream ended")

    async def pump(self, send: trio.MemorySendChannel[dict[str, Any]]) -> None:
        """Forward every event to ``send`` (run as a task: reading is then cancel-safe)."""
        async with send:
            while True:
                try:
                    event = await self.next()
                except EOFError:
                    return
                await send.send(event)

    async def until(self, kind: str) -> dict[str, Any]:
        """Skip events up to the next one of ``kind``."""
        while True:
            event = await self.next()
            if event.get("event") == kind:
                return event


class SseEvents:
    """Events of a stream read by a background task (safe to wait with a timeout)."""

    def __init__(self, receive: trio.MemoryReceiveChannel[dict[str, Any]]) -> None:
        self._receive = receive

    async def next(self) -> dict[str, Any]:
        """The next event (EOFError when the stream ended)."""
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise EOFError("stream ended") from None

    async def until(self, kind: str) -> dict[str, Any]:
        """Skip events up to the next one of ``kind``."""
        while True:
            event = await self.next()
            if event.get("event") == kind:
                return event


@asynccontextmanager
async def open_sse(client: httpx.AsyncClient, url: str,
                   headers: dict[str, str] | None = None) -> AsyncIterator[SseEvents]:
    """``async with open_sse(client, url) as events:`` — closed on exit."""
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        send, receive = trio.open_memory_channel[dict[str, Any]](1000)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(SseReader(response).pump, send)
            yield SseEvents(receive)
            nursery.cancel_scope.cancel()
