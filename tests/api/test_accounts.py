"""Per-user API access: POST /authenticate, tokens, application passwords,
two-factor, the auth log; and no user token reaching another user's data."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import httpx
import pytest
import trio
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from duck.api.app import ENDPOINTS

from .conftest import inbox_id, message


def _code(secret: str, at: float) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return TOTP(key, 6, SHA1(), 30).generate(int(at)).decode()


async def _user(client: httpx.AsyncClient, name: str, password: str) -> str:
    r = await client.post("/users", json={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def _token(client: httpx.AsyncClient, name: str, password: str, **extra: Any) -> str:
    r = await client.post("/authenticate", json={"username": name, "password": password,
                                                 **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_login_token_reaches_only_its_user(client: httpx.AsyncClient,
                                                 duck_server: Any) -> None:
    with trio.fail_after(60):
        ann = await _user(client, "ann@example.com", "ann-pass")
        bob = await _user(client, "bob@example.com", "bob-pass")
        r = await client.post("/authenticate", json={"username": "ann@example.com",
                                                     "password": "nope"})
        assert r.status_code == 401 and "token" not in r.text
        token = await _token(client, "ann@example.com", "ann-pass", ttl=600)
        assert token.startswith("duck_")
        me = await client.get(f"/users/{ann}", headers=_bearer(token))
        assert me.status_code == 200 and me.json()["username"] == "ann@example.com"
        other = await client.get(f"/users/{bob}", headers=_bearer(token))
        assert other.status_code == 403 and "bob" not in other.text
        # Admin-only routes stay admin-only.
        r = await client.post("/users", json={"username": "x@example.com", "password": "p"},
                              headers=_bearer(token))
        assert r.status_code == 403
        assert (await client.delete(f"/users/{ann}", headers=_bearer(token))).status_code == 403
        listed = await client.get(f"/users/{ann}/tokens", headers=_bearer(token))
        assert listed.status_code == 200 and token not in listed.text
        [info] = listed.json()["results"]
        r = await client.delete(f"/users/{ann}/tokens/{info['id']}", headers=_bearer(token))
        assert r.status_code == 200
        # Revoked: refused at once (every request reads the database).
        assert (await client.get(f"/users/{ann}", headers=_bearer(token))).status_code == 401
        log = (await client.get(f"/users/{ann}/authlog")).json()["results"]
        assert [(e["protocol"], e["result"], e["peer"]) for e in log] == [
            ("api", "success", "127.0.0.1"), ("api", "failure", "127.0.0.1")]


async def test_app_password_scopes_over_the_api(client: httpx.AsyncClient) -> None:
    with trio.fail_after(60):
        cy = await _user(client, "cy@example.com", "cy-pass")
        token = await _token(client, "cy@example.com", "cy-pass")
        r = await client.post(f"/users/{cy}/apppasswords", headers=_bearer(token),
                              json={"description": "phone", "scopes": ["imap"]})
        assert r.status_code == 200, r.text
        imap_only = r.json()["password"]
        r = await client.post(f"/users/{cy}/apppasswords", headers=_bearer(token),
                              json={"description": "webmail", "scopes": ["api"]})
        api_pw = r.json()["password"]
        r = await client.post("/authenticate", json={"username": "cy@example.com",
                                                     "password": imap_only})
        assert r.status_code == 401
        assert (await _token(client, "cy@example.com", api_pw))
        listed = await client.get(f"/users/{cy}/apppasswords", headers=_bearer(token))
        assert imap_only not in listed.text and api_pw not in listed.text
        assert {a["description"] for a in listed.json()["results"]} == {"phone", "webmail"}
        r = await client.post(f"/users/{cy}/apppasswords", headers=_bearer(token),
                              json={"description": "x", "scopes": ["ftp"]})
        assert r.status_code == 400


async def test_two_factor_over_the_api(client: httpx.AsyncClient) -> None:
    with trio.fail_after(60):
        di = await _user(client, "di@example.com", "di-pass")
        token = await _token(client, "di@example.com", "di-pass")
        r = await client.post(f"/users/{di}/2fa/totp/setup", headers=_bearer(token))
        assert r.status_code == 200 and r.json()["uri"].startswith("otpauth://totp/")
        secret = r.json()["secret"]
        r = await client.post(f"/users/{di}/2fa/totp/enable", headers=_bearer(token),
                              json={"code": _code(secret, time.time() - 30)})
        assert r.status_code == 200 and len(r.json()["recovery_codes"]) == 10
        r = await client.get(f"/users/{di}/2fa", headers=_bearer(token))
        assert r.json()["totp"] is True
        r = await client.post("/authenticate", json={"username": "di@example.com",
                                                     "password": "di-pass"})
        assert r.status_code == 401 and r.json()["code"] == "TwoFactorRequired"
        await _token(client, "di@example.com", "di-pass", otp=_code(secret, time.time()))


# -- no user reaches another user's data: every route, from the route table ------------------


async def test_every_route_refuses_another_users_token(
        client: httpx.AsyncClient, duck_server: Any) -> None:
    store = duck_server.store
    with trio.fail_after(120):
        eve = await _user(client, "eve@example.com", "eve-pass")
        bob = await _user(client, "bob@example.com", "bob-pass")
        box = await inbox_id(store, bob)
        r = await client.post(f"/users/{bob}/mailboxes/{box}/messages",
                              content=message("secret plans"),
                              headers={"content-type": "message/rfc822"})
        assert r.status_code == 200, r.text
        r = await client.post("/webhooks", json={"url": "http://127.0.0.1:9/hook",
                                                 "events": ["message.new"], "user": bob})
        assert r.status_code == 200, r.text
        hook = r.json()["id"]
        bob_token = await _token(client, "bob@example.com", "bob-pass")
        bob_token_id = (await client.get(f"/users/{bob}/tokens")).json()["results"][0]["id"]
        made = await store.app_passwords.create(bob, "phone", ["imap"])
        await client.post(f"/users/{bob}/addresses", json={"address": "b2@example.com"})
        eve_token = await _token(client, "eve@example.com", "eve-pass")
        values = {"user": bob, "mailbox": box, "uid": "1", "hook": hook,
                  "address": "b2@example.com", "token": bob_token_id,
                  "apppassword": made.app_password.id}
        checked = 0
        for ep in ENDPOINTS:
            if ep.access == "open":
                continue
            # A parameter this test has no value for gets an id that names nothing.
            path = re.sub(r"\{(\w+)\}",
                          lambda m: values.get(m.group(1), "0123456789abcdef01234567"),
                          ep.path)
            r = await client.request(ep.method, path, headers=_bearer(eve_token), json={})
            assert r.status_code in (403, 404), (ep.method, ep.path, r.status_code, r.text)
            assert r.json()["success"] is False
            for secret in ("bob@example.com", "secret plans", box, made.app_password.id):
                assert secret not in r.text, (ep.method, ep.path)
            checked += 1
        assert checked >= 30
        # Nothing of bob's was touched: his token, mail, hook and app password live on.
        assert (await client.get(f"/users/{bob}", headers=_bearer(bob_token))).status_code == 200
        r = await client.get(f"/users/{bob}/mailboxes/{box}/messages/1")
        assert r.status_code == 200
        assert (await client.get(f"/webhooks/{hook}")).status_code == 200
        assert [a.id for a in await store.app_passwords.of_user(bob)] == [made.app_password.id]
        # Admin-only routes refuse a user's token on the user's own paths too.
        for method, path in (("DELETE", f"/users/{eve}"), ("PUT", f"/users/{eve}/quota"),
                             ("PUT", f"/users/{eve}/password"), ("GET", "/webhooks"),
                             ("GET", "/authlog/unknown")):
            r = await client.request(method, path, headers=_bearer(eve_token), json={})
            assert r.status_code == 403, (method, path)


@pytest.mark.parametrize("access", ["admin", "user", "open"])
def test_every_endpoint_declares_its_access(access: str) -> None:
    # A new route is admin-only unless it says otherwise; user routes are {user} paths.
    for ep in ENDPOINTS:
        assert ep.access in ("admin", "user", "open")
        if ep.access == "user" == access:
            assert ep.path.startswith("/users/{user}"), ep.path
    assert any(ep.access == access for ep in ENDPOINTS)
