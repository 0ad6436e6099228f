"""Sharing through the HTTP API: ACL entries on a user's mailboxes, what is shared
with a user, the Shared namespace; and every mailbox and message route refusing a
mailbox of another user (404, never data)."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from .conftest import message, open_sse


async def _user(client: httpx.AsyncClient, name: str) -> str:
    r = await client.post("/users", json={"username": name, "password": "secret-pass"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def _inbox(client: httpx.AsyncClient, user: str) -> str:
    r = await client.get(f"/users/{user}/mailboxes")
    return next(m["id"] for m in r.json()["results"] if m["path"] == "INBOX")


async def test_share_list_unshare(client: httpx.AsyncClient) -> None:
    with trio.fail_after(30):
        alice = await _user(client, "alice@example.com")
        bob = await _user(client, "bob@example.com")
        inbox = await _inbox(client, alice)
        acl = f"/users/{alice}/mailboxes/{inbox}/acl"
        r = await client.put(acl + "/bob@example.com", json={"rights": "lrc"})
        assert r.status_code == 200, r.text
        assert r.json()["results"] == [{"identifier": "bob@example.com", "rights": "lrkxc"}]
        r = await client.put(acl + "/-anyone", json={"rights": "w"})
        assert r.status_code == 200, r.text
        r = await client.get(f"/users/{bob}/shared")
        assert r.json()["results"] == [{
            "id": inbox, "name": "Other Users/alice@example.com/INBOX",
            "owner": "alice@example.com", "path": "INBOX", "rights": "lrkxc"}]
        assert (await client.get(f"/users/{alice}/shared")).json()["results"] == []
        # Unknown rights, unknown users and the owner are refused.
        r = await client.put(acl + "/bob@example.com", json={"rights": "lrz"})
        assert r.status_code == 400, r.text
        r = await client.put(acl + "/nobody@example.com", json={"rights": "lr"})
        assert r.status_code == 404, r.text
        r = await client.put(acl + "/alice@example.com", json={"rights": "lr"})
        assert r.status_code == 400, r.text
        r = await client.delete(acl + "/bob@example.com")
        assert r.json()["results"] == [{"identifier": "-anyone", "rights": "w"}]
        assert (await client.get(f"/users/{bob}/shared")).json()["results"] == []


async def test_shared_namespace(client: httpx.AsyncClient, duck_server: Any) -> None:
    with trio.fail_after(30):
        bob = await _user(client, "bob@example.com")
        r = await client.post("/shared-mailboxes", json={"path": "support"})
        assert r.status_code == 200, r.text
        box = r.json()["id"]
        r = await client.put(f"/shared-mailboxes/{box}/acl/authenticated",
                             json={"rights": "lrsi"})
        assert r.status_code == 200, r.text
        r = await client.get(f"/users/{bob}/shared")
        assert [(m["name"], m["owner"], m["rights"]) for m in r.json()["results"]] == [
            ("Shared/support", None, "lrsi")]
        r = await client.get("/shared-mailboxes")
        assert [m["path"] for m in r.json()["results"]] == ["support"]
        # Its owner is nobody a user listing shows.
        r = await client.get("/users")
        assert [u["username"] for u in r.json()["results"]] == ["bob@example.com"]
        # A user's mailbox is no Shared-namespace mailbox.
        inbox = await _inbox(client, bob)
        assert (await client.get(f"/shared-mailboxes/{inbox}/acl")).status_code == 404
        assert (await client.delete(f"/shared-mailboxes/{inbox}")).status_code == 404
        assert (await client.delete(f"/shared-mailboxes/{box}")).status_code == 200
        assert (await client.get(f"/users/{bob}/shared")).json()["results"] == []


async def test_every_route_refuses_another_users_mailbox(client: httpx.AsyncClient) -> None:
    with trio.fail_after(60):
        alice = await _user(client, "alice@example.com")
        bob = await _user(client, "bob@example.com")
        inbox = await _inbox(client, alice)
        r = await client.post(f"/users/{alice}/mailboxes/{inbox}/messages",
                              content=message("alice's secret"),
                              headers={"content-type": "message/rfc822"})
        assert r.status_code == 200, r.text
        uid = r.json()["uid"]
        bob_inbox = await _inbox(client, bob)
        r = await client.post(f"/users/{bob}/mailboxes/{bob_inbox}/messages",
                              content=message("bob's own"),
                              headers={"content-type": "message/rfc822"})
        bob_uid = r.json()["uid"]
        base = f"/users/{bob}/mailboxes/{inbox}"
        msgs = f"{base}/messages"
        calls = [
            ("GET", base, None), ("PUT", base, {"path": "Stolen"}), ("DELETE", base, None),
            ("GET", msgs, None), ("POST", f"{base}/search", {"query": "secret"}),
            ("GET", f"{msgs}/{uid}", None), ("DELETE", f"{msgs}/{uid}", None),
            ("GET", f"{msgs}/{uid}/message.eml", None),
            ("PUT", f"{msgs}/{uid}/flags", {"add": ["\\Seen"]}),
            ("POST", f"{msgs}/{uid}/move", {"mailbox": bob_inbox}),
            ("GET", f"{base}/acl", None),
            ("PUT", f"{base}/acl/bob@example.com", {"rights": "lr"}),
            ("DELETE", f"{base}/acl/bob@example.com", None),
            # Bob's own message moved into alice's mailbox.
            ("POST", f"/users/{bob}/mailboxes/{bob_inbox}/messages/{bob_uid}/move",
             {"mailbox": inbox}),
        ]
        for method, path, body in calls:
            r = await client.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            assert "secret" not in r.text
        r = await client.post(msgs, content=message("intruder"),
                              headers={"content-type": "message/rfc822"})
        assert r.status_code == 404, r.text
        # Alice's mailbox and message are as they were; bob was given nothing.
        r = await client.get(f"/users/{alice}/mailboxes/{inbox}/messages")
        assert [m["uid"] for m in r.json()["results"]] == [uid]
        assert (await client.get(f"/users/{alice}/mailboxes/{inbox}/acl")).json()[
            "results"] == []
        assert (await client.get(f"/users/{bob}/shared")).json()["results"] == []


async def test_sse_stream_of_a_reader_carries_the_shared_mailbox(
        client: httpx.AsyncClient, duck_server: Any) -> None:
    """Bob's change stream tells of alice's deliveries into the mailbox she shares
    with him (woken through the notifier's change stream, as in another process),
    and of nothing once the share is taken back."""
    store = duck_server.store
    with trio.fail_after(60):
        alice = await _user(client, "alice@example.com")
        bob = await _user(client, "bob@example.com")
        inbox = await _inbox(client, alice)
        acl = f"/users/{alice}/mailboxes/{inbox}/acl/bob@example.com"
        assert (await client.put(acl, json={"rights": "lr"})).status_code == 200
        async with open_sse(client, f"/users/{bob}/updates") as events:
            await events.until("ready")
            await store.messages.append(alice, "INBOX", message("for the team"))
            new = await events.until("message.new")
            assert new["data"]["mailbox"] == inbox
            assert new["data"]["path"] == "Other Users/alice@example.com/INBOX"
            assert (await client.delete(acl)).status_code == 200
            await store.messages.append(alice, "INBOX", message("after the revocation"))
            # Bob's own mail still arrives; alice's does not any more.
            await store.messages.append(bob, "INBOX", message("bob's own"))
            own = await events.until("message.new")
            assert own["data"]["path"] == "INBOX", own
            with trio.move_on_after(1.5):
                late = await events.until("message.new")
                raise AssertionError(f"told after the revocation: {late}")
