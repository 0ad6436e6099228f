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

from duck.store import Cursor, Store

from .conftest import SseEvents, message, open_sse
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


# -- every stream against the journal --------------------------------------------------

#: Journal kinds the stream tells (an ACL change has no event of its own).
_TOLD = {"exists", "expunge", "flags", "mailbox-create", "mailbox-rename", "mailbox-delete"}


async def _changes(a: httpx.AsyncClient, b: httpx.AsyncClient, user: str, tag: str) -> None:
    """Changes through both processes: a mailbox created, filled, changed and
    deleted again, one renamed, a message in INBOX; then the mailbox ``tag-end``
    (the marker a reader waits for: a read that finds it finds all before it)."""
    boxes = f"/users/{user}/mailboxes"
    r = await b.post(boxes, json={"path": f"{tag}-tmp"})
    assert r.status_code == 200, r.text
    tmp = r.json()["id"]
    r = await a.post(f"{boxes}/{tmp}/messages", content=message(f"{tag} tmp"))
    assert r.status_code == 200, r.text
    uid = r.json()["uid"]
    r = await b.put(f"{boxes}/{tmp}/messages/{uid}/flags", json={"add": ["\\Flagged"]})
    assert r.status_code == 200, r.text
    inbox = next(m["id"] for m in (await a.get(boxes)).json()["results"]
                 if m["path"] == "INBOX")
    r = await b.post(f"{boxes}/{inbox}/messages", content=message(f"{tag} inbox"))
    assert r.status_code == 200, r.text
    assert (await a.delete(f"{boxes}/{tmp}")).status_code == 200
    r = await a.post(boxes, json={"path": f"{tag}-keep"})
    assert r.status_code == 200, r.text
    r = await b.put(f"{boxes}/{r.json()['id']}", json={"path": f"{tag}-kept"})
    assert r.status_code == 200, r.text
    r = await (a if tag.endswith("a") else b).post(boxes, json={"path": f"{tag}-end"})
    assert r.status_code == 200, r.text


async def _until(events: SseEvents, told: list[tuple[str, int, str]], marker: str) -> str:
    """Collect (mailbox, modseq, kind) of each change event into ``told`` up to the
    creation of mailbox ``marker``; the id of that event."""
    while True:
        event = await events.next()
        data = event["data"]
        if "modseq" in data:
            told.append((data["mailbox"], data["modseq"], event["event"]))
        elif event["event"] == "resync":
            raise AssertionError(f"unexpected resync: {event}")
        if event["event"] == "mailbox.created" and data["path"] == marker:
            return str(event["id"])


async def _journal(store: Store) -> list[dict[str, Any]]:
    """Every journal entry (the test's database has one user)."""
    from duck.store.engine import schema

    coll = store.database.collection(schema.JOURNAL)
    return await store.database.run(lambda: list(coll.find({}, {"_id": 0})))


def _check(told: list[tuple[str, int, str]], journal: list[dict[str, Any]],
           start: Cursor, name: str) -> None:
    """``told`` is exactly the journal after ``start``: each change once, and
    in modseq order within each mailbox."""
    kinds = {"exists": "message.new", "expunge": "message.deleted",
             "flags": "message.flags", "mailbox-create": "mailbox.created",
             "mailbox-rename": "mailbox.renamed", "mailbox-delete": "mailbox.deleted"}
    expected = sorted((str(d["mailbox"]), d["modseq"], kinds[d["kind"]]) for d in journal
                      if d["kind"] in _TOLD
                      and d["modseq"] > start.modseqs.get(str(d["mailbox"]), 0))
    assert sorted(told) == expected, (name, sorted(told), expected)
    for mailbox in {m for m, _, _ in told}:
        mine = [modseq for m, modseq, _ in told if m == mailbox]
        assert mine == sorted(mine), (name, mailbox, mine)


async def test_every_stream_matches_the_journal(duck_server: Any, user: str, mongo_uri: str,
                                                db_name: str, tmp_path: Path) -> None:
    """Issue 13: changes made through two processes, with mailboxes created and
    deleted between two reads of a stream, reach every SSE stream exactly once and
    in modseq order per mailbox: a live stream on A, one resumed on A with the
    Last-Event-ID it had on B (mailboxes created and deleted while it was away),
    and one started late on B without Last-Event-ID (just after a mailbox was
    created and deleted, which it is not told); each is compared with the journal."""
    store = duck_server.store
    url = f"/users/{user}/updates"
    with trio.fail_after(120):
        async with duck_process(mongo_uri, db_name, tmp_path / "b") as b, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{duck_server.ports['api']}",
                                  timeout=20) as a_http, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.ports['api']}",
                                  timeout=20) as b_http:
            live: list[tuple[str, int, str]] = []
            resumed: list[tuple[str, int, str]] = []
            late: list[tuple[str, int, str]] = []
            async with open_sse(a_http, url) as live_events:
                live_start = Cursor.decode((await live_events.next())["id"])
                async with open_sse(b_http, url) as first:
                    resumed_start = Cursor.decode((await first.next())["id"])
                    await _changes(a_http, b_http, user, "r1a")
                    last_id = await _until(first, resumed, "r1a-end")
                # Away: what happens now is one read's worth when it comes back.
                await _changes(a_http, b_http, user, "r2b")
                async with open_sse(a_http, url, headers={"Last-Event-ID": last_id}) as again:
                    await again.next()  # ready
                    await _until(again, resumed, "r2b-end")
                journal_then = await _journal(store)
                # A mailbox created and deleted just before a stream starts.
                r = await b_http.post(f"/users/{user}/mailboxes", json={"path": "gone"})
                assert (await a_http.delete(
                    f"/users/{user}/mailboxes/{r.json()['id']}")).status_code == 200
                async with open_sse(b_http, url) as late_events:
                    late_start = Cursor.decode((await late_events.next())["id"])
                    await _changes(a_http, b_http, user, "r3a")
                    await _until(late_events, late, "r3a-end")
                await _until(live_events, live, "r3a-end")
            journal = await _journal(store)
    assert any(d["kind"] == "mailbox-delete" for d in journal)
    _check(live, journal, live_start, "live")
    _check(resumed, journal_then, resumed_start, "resumed")
    _check(late, journal, late_start, "late")
