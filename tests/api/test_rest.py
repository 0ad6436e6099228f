"""The REST resources over real HTTP on the in-process server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from duck.store import Store

from .conftest import inbox_id, message


async def test_user_lifecycle(duck_server: Any, client: httpx.AsyncClient, user: str) -> None:
    store: Store = duck_server.store
    with trio.fail_after(30):
        r = await client.get(f"/users/{user}")
        assert r.status_code == 200 and r.json()["username"] == "bob@example.com"
        r = await client.put(f"/users/{user}/password", json={"password": "new-secret"})
        assert r.status_code == 200
        assert (await store.users.authenticate("bob@example.com", "new-secret")).id == user
        r = await client.put(f"/users/{user}/quota", json={"quota": 12345})
        assert r.status_code == 200 and r.json()["allowed"] == 12345
        assert (await client.get(f"/users/{user}/quota")).json()["allowed"] == 12345
        await store.messages.append(user, "INBOX", message("x"))
        r = await client.delete(f"/users/{user}")
        assert r.status_code == 200
        assert (await client.get(f"/users/{user}")).status_code == 404
        assert await store.database.run(
            store.database.collection("messages").count_documents, {}) == 0
        assert await store.database.run(
            store.database.collection("mailboxes").count_documents, {}) == 0


async def test_addresses(duck_server: Any, client: httpx.AsyncClient, user: str) -> None:
    store: Store = duck_server.store
    base = f"/users/{user}/addresses"
    with trio.fail_after(30):
        r = await client.post(base, json={"address": "Alias@Example.com"})
        assert r.status_code == 200 and r.json()["address"] == "alias@example.com"
        resolved = await store.users.resolve_address("alias@example.com")
        assert resolved is not None and resolved.user_id == user
        assert (await client.post(base, json={"address": "alias@example.com"})).status_code == 409
        listed = (await client.get(base)).json()["results"]
        assert {(a["address"], a["main"]) for a in listed} == {
            ("bob@example.com", True), ("alias@example.com", False)}
        assert (await client.delete(f"{base}/bob@example.com")).status_code == 400
        assert (await client.delete(f"{base}/alias@example.com")).status_code == 200
        assert await store.users.resolve_address("alias@example.com") is None
        assert (await client.delete(f"{base}/alias@example.com")).status_code == 404


async def test_mailboxes(client: httpx.AsyncClient, user: str) -> None:
    base = f"/users/{user}/mailboxes"
    with trio.fail_after(30):
        listed = (await client.get(base)).json()["results"]
        assert [m["path"] for m in listed][:1] == ["Archive"]
        assert {"INBOX", "Sent", "Trash"} <= {m["path"] for m in listed}
        r = await client.post(base, json={"path": "Work/Projects"})
        assert r.status_code == 200
        box = r.json()
        assert box["path"] == "Work/Projects" and box["messages"] == 0
        assert (await client.post(base, json={"path": "Work/Projects"})).status_code == 409
        r = await client.put(f"{base}/{box['id']}", json={"path": "Done"})
        assert r.status_code == 200 and r.json()["path"] == "Done" and r.json()["id"] == box["id"]
        assert (await client.get(f"{base}/{box['id']}")).json()["path"] == "Done"
        assert (await client.delete(f"{base}/{box['id']}")).status_code == 200
        assert (await client.get(f"{base}/{box['id']}")).status_code == 404


async def test_messages(duck_server: Any, client: httpx.AsyncClient, user: str) -> None:
    store: Store = duck_server.store
    inbox = await inbox_id(store, user)
    base = f"/users/{user}/mailboxes/{inbox}/messages"
    with trio.fail_after(60):
        raw = message("uploaded", body="x" * 5000 + "\r\n")
        r = await client.post(base, content=raw, params={"flags": "\\Seen,$work"},
                              headers={"content-type": "message/rfc822"})
        assert r.status_code == 200, r.text
        assert r.json()["uid"] == 1
        for i in range(2, 6):
            await store.messages.append(user, "INBOX", message(f"m{i}", sender=f"s{i}@x.org"))
        page = (await client.get(base, params={"limit": 2})).json()
        assert [m["uid"] for m in page["results"]] == [1, 2]
        assert page["total"] == 5 and page["next"] == 2
        assert page["results"][0]["subject"] == "uploaded"
        assert set(page["results"][0]["flags"]) == {"\\Seen", "$work"}
        page = (await client.get(base, params={"limit": 2, "after": 2})).json()
        assert [m["uid"] for m in page["results"]] == [3, 4]
        page = (await client.get(base, params={"order": "desc", "limit": 10})).json()
        assert [m["uid"] for m in page["results"]] == [5, 4, 3, 2, 1] and page["next"] is None
        meta = (await client.get(f"{base}/1")).json()
        assert meta["envelope"]["subject"] == "uploaded"
        assert meta["envelope"]["from"] == [{"name": "Alice", "address": "alice@example.com"}]
        eml = await client.get(f"{base}/1/message.eml")
        assert eml.status_code == 200 and eml.content == raw
        r = await client.put(f"{base}/2/flags", json={"add": ["\\Flagged"], "remove": []})
        assert r.status_code == 200 and r.json()["flags"] == ["\\Flagged"]
        r = await client.put(f"{base}/2/flags", json={"set": ["\\Seen"]})
        assert r.json()["flags"] == ["\\Seen"]
        found = (await client.post(f"/users/{user}/mailboxes/{inbox}/search",
                                   json={"query": {"seen": True}})).json()
        assert [m["uid"] for m in found["results"]] == [1, 2]
        found = (await client.post(f"/users/{user}/mailboxes/{inbox}/search", json={
            "query": {"or": [{"from": "s3@x"}, {"subject": "M4"}], "not": {"uid": "4"}},
        })).json()
        assert [m["uid"] for m in found["results"]] == [3]
        archive = (await store.mailboxes.get(user, "Archive")).id
        r = await client.post(f"{base}/3/move", json={"mailbox": archive})
        assert r.status_code == 200 and r.json() == {"mailbox": archive, "uid": 1,
                                                      "success": True}
        assert (await client.get(f"{base}/3")).status_code == 404
        assert (await client.delete(f"{base}/4")).status_code == 200
        assert [m.uid for m in await store.messages.view(inbox)] == [1, 2, 5]
        assert (await client.delete(f"{base}/4")).status_code == 404


@pytest.mark.parametrize(("method", "path", "body", "status", "names"), [
    ("GET", "/users/nothex/quota", None, 400, "user"),
    # A user is also found by name or address: "nothex" names nobody.
    ("GET", "/users/nothex", None, 404, ""),
    ("GET", "/users/0123456789abcdef01234567", None, 404, ""),
    ("GET", "/users/{user}/mailboxes/0123456789abcdef01234567", None, 404, ""),
    ("GET", "/users/{user}/mailboxes/{inbox}/messages?limit=0", None, 400, "limit"),
    ("GET", "/users/{user}/mailboxes/{inbox}/messages?limit=x", None, 400, "limit"),
    ("GET", "/users/{user}/mailboxes/{inbox}/messages?bogus=1", None, 400, "bogus"),
    ("GET", "/users/{user}/mailboxes/{inbox}/messages/0", None, 400, "uid"),
    ("GET", "/users/{user}/mailboxes/{inbox}/messages/77", None, 404, ""),
    ("PUT", "/users/{user}/quota", {"quota": -1}, 400, "quota"),
    ("PUT", "/users/{user}/quota", {"quota": "1"}, 400, "quota"),
    ("POST", "/users/{user}/mailboxes", {"path": ""}, 400, ""),
    ("POST", "/users/{user}/mailboxes/{inbox}/search", {"query": {"since": "soon"}}, 400,
     "since"),
    ("POST", "/users/{user}/mailboxes/{inbox}/search", {"query": {"uid": "1:x"}}, 400, "uid"),
    ("POST", "/users/{user}/mailboxes/{inbox}/search", {"query": {"nope": 1}}, 400, "nope"),
    ("POST", "/webhooks", {"url": "ftp://x", "events": []}, 400, "url"),
    ("POST", "/webhooks", {"url": "http://x/", "events": ["message.bogus"]}, 400, "events"),
])
async def test_bad_input(duck_server: Any, client: httpx.AsyncClient, user: str, method: str,
                         path: str, body: Any, status: int, names: str) -> None:
    inbox = await inbox_id(duck_server.store, user)
    with trio.fail_after(20):
        r = await client.request(method, path.format(user=user, inbox=inbox), json=body)
    assert r.status_code == status, r.text
    data = r.json()
    assert data["success"] is False and data["code"]
    assert names in data["error"]


@pytest.mark.parametrize("body", [b'{"a":' * 2000, b"[" * 5000 + b"]" * 5000])
async def test_deeply_nested_json_is_a_bad_request(
        duck_server: Any, client: httpx.AsyncClient, body: bytes) -> None:
    """JSON nested thousands deep, well-formed or cut off: 400, as any JSON the
    decoder refuses (its recursion limit was a 500 and a logged crash)."""
    with trio.fail_after(20):
        r = await client.post("/users", content=body,
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "InvalidJSON"


@pytest.mark.parametrize(("path", "body"), [
    ("/users/{user}/mailboxes/{inbox}/search", b'{"query": {"text": "\\udcff"}}'),
    ("/users/{user}/mailboxes", b'{"path": "x\\udcff"}'),
])
async def test_a_lone_surrogate_is_a_bad_request(
        duck_server: Any, client: httpx.AsyncClient, user: str, path: str, body: bytes) -> None:
    """A JSON escape of a lone surrogate is no text a database query can hold: 400,
    as the store refuses it (a search or a mailbox with it was a 500)."""
    inbox = await inbox_id(duck_server.store, user)
    with trio.fail_after(20):
        r = await client.post(path.format(user=user, inbox=inbox), content=body,
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "not valid UTF-8" in r.json()["error"]
