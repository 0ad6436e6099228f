"""Issue 7's "Done when": two ``duck serve`` processes on one database.

An IMAP session IDLE on A sees a delivery through B's LMTP (EXISTS) and a flag
change through B's IMAP (FETCH FLAGS); an SSE client on A sees both, and after
being killed and reconnected with Last-Event-ID loses nothing; a webhook receiver
gets signed new-message events, also after being down for a while.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from .conftest import message, open_sse
from .multiproc import LineClient, duck_process, lmtp_deliver
from .test_webhooks import Receiver, serve_receiver, verify

pytestmark = pytest.mark.slow
ADDRESS = "carol@example.com"
PASSWORD = "carol-secret"


async def _idle(port: int) -> LineClient:
    imap = await LineClient.connect(port)
    assert (await imap.line()).startswith(b"* OK")
    await imap.command("a1", f"LOGIN {ADDRESS} {PASSWORD}")
    await imap.command("a2", "SELECT INBOX")
    await imap.send(b"a3 IDLE\r\n")
    assert (await imap.line()).startswith(b"+")
    return imap


async def test_changes_reach_the_other_process(mongo_uri: str, db_name: str, tmp_path: Path,
                                               nursery: Any) -> None:
    receiver = Receiver()
    with trio.fail_after(180):
        async with duck_process(mongo_uri, db_name, tmp_path / "a",
                                DUCK_WEBHOOK_POLL_INTERVAL="0.2") as a, \
                duck_process(mongo_uri, db_name, tmp_path / "b") as b:
            api = f"http://127.0.0.1:{a.ports['api']}"
            async with httpx.AsyncClient(base_url=api, timeout=20) as client:
                r = await client.post("/users", json={"username": ADDRESS,
                                                      "password": PASSWORD})
                assert r.status_code == 200, r.text
                user = r.json()["id"]
                scope = trio.CancelScope()

                async def run_receiver(port: int, *, task_status: Any) -> None:
                    with scope:
                        await serve_receiver(receiver, port, task_status=task_status)

                hook_port = await nursery.start(run_receiver, 0)
                r = await client.post("/webhooks", json={
                    "url": f"http://127.0.0.1:{hook_port}/", "events": ["message.new"]})
                secret = r.json()["secret"]

                idle = await _idle(a.ports["imap"])
                async with open_sse(client, f"/users/{user}/updates") as sse:
                    await sse.next()  # ready
                    # 1. Delivery through B's LMTP.
                    await lmtp_deliver(b.ports["lmtp"], ADDRESS, message("via B"))
                    assert await idle.until(b"* 1 EXISTS")
                    new = await sse.until("message.new")
                    assert new["data"]["uid"] == 1 and new["data"]["subject"] == "via B"
                    last_id = new["id"]
                    # 2. A flag change through B's IMAP.
                    other = await LineClient.connect(b.ports["imap"])
                    await other.line()
                    await other.command("b1", f"LOGIN {ADDRESS} {PASSWORD}")
                    await other.command("b2", "SELECT INBOX")
                    await other.command("b3", "STORE 1 +FLAGS (\\Flagged)")
                    fetch = await idle.until(b"* 1 FETCH")
                    assert b"\\Flagged" in fetch[-1], fetch
                    flags = await sse.until("message.flags")
                    assert "\\Flagged" in flags["data"]["flags"]
                # 3. The SSE client is gone; more happens meanwhile.
                await other.command("b4", "STORE 1 +FLAGS (\\Seen)")
                await lmtp_deliver(b.ports["lmtp"], ADDRESS, message("while away"))
                async with open_sse(client, f"/users/{user}/updates",
                                    headers={"Last-Event-ID": last_id}) as sse:
                    await sse.next()
                    got: list[tuple[str, int, Any]] = []
                    while len(got) < 3:
                        event = await sse.next()
                        if event["event"].startswith("message."):
                            got.append((event["event"], event["data"]["uid"],
                                        event["data"].get("flags")))
                assert got[0] == ("message.flags", 1, ["\\Flagged"])
                assert got[1][:2] == ("message.flags", 1) and "\\Seen" in got[1][2]
                assert got[2][:2] == ("message.new", 2)

                # 4. Webhooks: both new messages arrived signed.
                while len(receiver.received) < 2:
                    await receiver.arrived.wait()
                    receiver.arrived = trio.Event()
                bodies = sorted((json.loads(body)["uid"], verify(secret, h, body))
                                for h, body in receiver.received)
                assert bodies == [(1, True), (2, True)]
                # The receiver goes down for a while; a delivery waits for it.
                scope.cancel()
                await lmtp_deliver(b.ports["lmtp"], ADDRESS, message("during outage"))
                await trio.sleep(3)
                scope = trio.CancelScope()
                await nursery.start(run_receiver, hook_port)
                while not any(json.loads(body)["uid"] == 3 for _, body in receiver.received):
                    await receiver.arrived.wait()
                    receiver.arrived = trio.Event()
                headers, body = next((h, body) for h, body in receiver.received
                                     if json.loads(body)["uid"] == 3)
                assert verify(secret, headers, body)
                assert json.loads(body)["subject"] == "during outage"
                scope.cancel()
                await idle.send(b"DONE\r\n")
