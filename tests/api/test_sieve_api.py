"""The Sieve script routes: upload (checked), list, get, activate, delete, validate,
and a delivery error shown on the script."""

from __future__ import annotations

from typing import Any

import httpx

from duck.store import Store

GOOD = 'require "fileinto";\nif header :contains "subject" "x" { fileinto "X"; }\n'


async def test_upload_list_activate_delete(client: httpx.AsyncClient, user: str) -> None:
    r = await client.put(f"/users/{user}/sieve/main", json={"source": GOOD})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["source"] == GOOD
    r = await client.put(f"/users/{user}/sieve/other%20one",
                         json={"source": "keep;", "active": True})
    assert r.status_code == 200 and r.json()["active"] is True
    listing = (await client.get(f"/users/{user}/sieve")).json()
    assert [s["name"] for s in listing["scripts"]] == ["main", "other one"]
    assert listing["active"] == "other one"
    assert all(s["source"] is None for s in listing["scripts"])
    r = await client.put(f"/users/{user}/sieve", json={"name": "main"})
    assert r.status_code == 200
    assert (await client.get(f"/users/{user}/sieve")).json()["active"] == "main"
    r = await client.delete(f"/users/{user}/sieve/main")
    assert r.status_code == 400  # the active script
    assert (await client.put(f"/users/{user}/sieve", json={"name": None})).status_code == 200
    assert (await client.delete(f"/users/{user}/sieve/main")).status_code == 200
    assert (await client.get(f"/users/{user}/sieve/main")).status_code == 404
    assert (await client.put(f"/users/{user}/sieve", json={"name": "gone"})).status_code == 404


async def test_bad_scripts_are_refused_with_their_line(client: httpx.AsyncClient,
                                                       user: str) -> None:
    r = await client.put(f"/users/{user}/sieve/bad",
                         json={"source": 'require "fileinto";\nkeep;\nfileinto "a"\n'})
    assert r.status_code == 400 and "line 4" in r.json()["error"]
    assert (await client.get(f"/users/{user}/sieve")).json()["scripts"] == []
    r = await client.put(f"/users/{user}/sieve/huge", json={"source": "#" * 70000})
    assert r.status_code == 413
    r = await client.post("/sieve/validate", json={"source": "keep;\nfrobnicate;"})
    assert r.status_code == 200
    assert r.json()["valid"] is False and r.json()["line"] == 2
    assert "frobnicate" in r.json()["error"]
    r = await client.post("/sieve/validate", json={"source": GOOD})
    assert r.json() == {"success": True, "valid": True, "error": None, "line": None}


async def test_delivery_error_shows_on_the_script(duck_server: Any, client: httpx.AsyncClient,
                                                  user: str) -> None:
    store: Store = duck_server.store
    await client.put(f"/users/{user}/sieve/s", json={"source": "keep;", "active": True})
    await store.sieve.record_error(user, "s", "line 1: something failed", 1)
    error = (await client.get(f"/users/{user}/sieve/s")).json()["error"]
    assert error["line"] == 1 and "something failed" in error["message"]
    listed = (await client.get(f"/users/{user}/sieve")).json()["scripts"][0]
    assert listed["error"]["message"] == error["message"]


DELIVERY_SCRIPT = r"""require ["fileinto", "mailbox", "imap4flags", "reject", "envelope"];
if header :is "subject" "file me" { fileinto :create :flags "\\Flagged" "Filed"; }
elsif header :is "subject" "refuse" { reject "not wanted"; }
elsif header :is "subject" "drop" { discard; }
elsif envelope :is "from" "boss@example.org" { addflag "\\Seen"; }
"""


async def test_deliver_runs_the_active_script(duck_server: Any, client: httpx.AsyncClient,
                                              user: str) -> None:
    store: Store = duck_server.store
    r = await client.put(f"/users/{user}/sieve/main",
                         json={"source": DELIVERY_SCRIPT, "active": True})
    assert r.status_code == 200, r.text

    async def deliver(subject: str, sender: str = "x@example.org") -> dict[str, Any]:
        data = f"From: {sender}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()
        r = await client.post(f"/users/{user}/deliver", params={"sender": sender},
                              content=data, headers={"content-type": "message/rfc822"})
        assert r.status_code == 200, r.text
        return dict(r.json())

    filed = await deliver("file me")
    assert [c["path"] for c in filed["stored"]] == ["Filed"]
    box = await store.mailboxes.get(user, "Filed")
    (summary,) = await store.messages.view(box.id)
    assert "\\Flagged" in summary.flags
    assert await deliver("refuse") == {"success": True, "stored": [], "rejected": "not wanted"}
    assert (await deliver("drop"))["stored"] == []
    boss = await deliver("hi", "boss@example.org")
    inbox = await store.mailboxes.get(user, "INBOX")
    assert boss["stored"][0]["path"] == "INBOX"
    assert [m.flags for m in await store.messages.view(inbox.id)] == [("\\Seen",)]
    r = await client.post(f"/users/{user}/deliver", content=b"",
                          headers={"content-type": "message/rfc822"})
    assert r.status_code == 400


async def test_autoreply_and_forwarding_resources(client: httpx.AsyncClient,
                                                  user: str) -> None:
    r = await client.get(f"/users/{user}/autoreply")
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["text"] is None
    r = await client.put(f"/users/{user}/autoreply", json={
        "text": "Away.", "subject": "Out", "start": "2026-12-01T00:00:00+01:00",
        "end": "2026-12-24T00:00:00Z"})
    assert r.status_code == 200, r.text
    assert r.json()["start"] == "2026-11-30T23:00:00+00:00" and r.json()["enabled"] is True
    assert (await client.get(f"/users/{user}/autoreply")).json()["subject"] == "Out"
    bad = await client.put(f"/users/{user}/autoreply", json={
        "text": "x", "start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"})
    assert bad.status_code == 400
    assert (await client.put(f"/users/{user}/autoreply",
                             json={"text": "x", "start": "soon"})).status_code == 400
    r = await client.delete(f"/users/{user}/autoreply")
    assert r.status_code == 200 and r.json()["text"] is None
    r = await client.put(f"/users/{user}/forwarding",
                         json={"targets": ["a@example.org", "b@example.net"], "keep": False})
    assert r.status_code == 200 and r.json() == {
        "success": True, "targets": ["a@example.org", "b@example.net"], "keep": False}
    assert (await client.put(f"/users/{user}/forwarding",
                             json={"targets": ["not an address"]})).status_code == 400
    assert (await client.put(f"/users/{user}/forwarding",
                             json={"targets": []})).status_code == 400
    r = await client.delete(f"/users/{user}/forwarding")
    assert r.json()["targets"] == []
