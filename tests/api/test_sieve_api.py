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
