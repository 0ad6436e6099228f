"""``/outbound``: the queue's depth and one message's state, in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx

from duck.api.app import OPENAPI


async def test_queue_depth_and_one_message(client: httpx.AsyncClient, duck_server: Any) -> None:
    r = await client.get("/outbound")
    assert r.status_code == 200
    assert r.json() == {"success": True, "queued": 0, "sent": 0, "failed": 0}
    qid = await duck_server.store.outbound.enqueue(
        "", ["bob@example.org"], b"Subject: x\r\n\r\nx\r\n", kind="vacation",
        user_id="u1")
    assert (await client.get("/outbound")).json()["queued"] == 1
    r = await client.get(f"/outbound/{qid}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "queued" and body["pending"] == ["bob@example.org"]
    assert body["kind"] == "vacation" and body["sender"] == "" and body["user"] == "u1"
    assert body["attempts"] == 0 and body["refused"] == [] and body["created"]
    assert (await client.get(f"/outbound/{'0' * 24}")).status_code == 404
    assert (await client.get("/outbound/nope")).status_code == 400


def test_documented() -> None:
    assert set(OPENAPI["paths"]["/outbound/{message}"]) == {"get"}
    assert "queued" in OPENAPI["components"]["schemas"]["OutboundCounts"]["properties"]
