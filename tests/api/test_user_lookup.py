"""Finding users in the API: by user name or address, and listed a page at a time."""

from __future__ import annotations

import httpx
import trio

from duck.api.app import OPENAPI


async def _create(client: httpx.AsyncClient, name: str) -> str:
    r = await client.post("/users", json={"username": name, "password": "pw-lookup"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def test_get_user_by_name_or_address(client: httpx.AsyncClient) -> None:
    with trio.fail_after(20):
        uid = await _create(client, "erin@example.com")
        await client.post(f"/users/{uid}/addresses", json={"address": "hr@example.com"})
        for key in (uid, "erin@example.com", "ERIN@example.com", "hr@example.com",
                    "hr+jobs@example.com"):
            r = await client.get(f"/users/{key}")
            assert r.status_code == 200 and r.json()["id"] == uid, (key, r.text)
        for key in ("nobody@example.com", "0" * 24, "not an address"):
            r = await client.get(f"/users/{key}")
            assert r.status_code == 404 and r.json()["code"] == "UserNotFound"


async def test_list_users_paged_and_filtered(client: httpx.AsyncClient) -> None:
    with trio.fail_after(20):
        names = [f"u{i}@example.com" for i in range(5)] + ["zed@other.org"]
        for name in names:
            await _create(client, name)
        seen: list[str] = []
        after = None
        while True:
            params = {"limit": "2", **({"after": after} if after else {})}
            r = await client.get("/users", params=params)
            assert r.status_code == 200
            body = r.json()
            assert len(body["results"]) <= 2
            seen += [u["username"] for u in body["results"]]
            after = body["next"]
            if after is None:
                break
        assert seen == sorted(names)
        r = await client.get("/users", params={"query": "OTHER.org"})
        assert [u["username"] for u in r.json()["results"]] == ["zed@other.org"]
        assert r.json()["results"][0]["quota"]["used"] == 0
        # A filter is a substring, never a pattern.
        r = await client.get("/users", params={"query": ".*"})
        assert r.json()["results"] == []
        assert (await client.get("/users", params={"limit": "0"})).status_code == 400


def test_lookup_and_listing_are_documented() -> None:
    users = OPENAPI["paths"]["/users"]
    assert {p["name"] for p in users["get"]["parameters"]} == {"query", "limit", "after"}
    (param,) = OPENAPI["paths"]["/users/{user}"]["get"]["parameters"]
    assert "pattern" not in param["schema"] and "address" in param["schema"]["description"]
