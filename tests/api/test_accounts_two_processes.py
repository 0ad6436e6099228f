"""Issue 16's "Done when", with two ``duck serve`` processes on one database:

- an application password scoped to IMAP logs in over IMAP and is refused by the
  API; revoking it through one process ends new logins at once in the other;
- with TOTP enabled the main password is refused over IMAP and accepted (with a
  code) by the API;
- 20 failed logins spread across both processes are throttled as 20 against one
  counter;
- the auth log shows each of those attempts with the right protocol, peer and result;
- the per-address counter is one counter too, and a delay and a lockout are applied
  by one process after failures the other counted.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from .multiproc import DuckProcess, LineClient, duck_process

ADDRESS = "zoe@example.com"
PASSWORD = "zoe-main-secret"
LIMIT = 15


async def _imap_login(port: int, secret: str) -> bytes:
    """The tagged reply to one LOGIN on a fresh connection."""
    c = await LineClient.connect(port)
    try:
        assert (await c.line()).startswith(b"* OK")
        await c.send(f'a LOGIN "{ADDRESS}" "{secret}"\r\n'.encode())
        return (await c.until(b"a "))[-1]
    finally:
        await c.stream.aclose()


def _code(secret: str, at: float) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return TOTP(key, 6, SHA1(), 30).generate(int(at)).decode()


@asynccontextmanager
async def _two_processes(mongo_uri: str, db_name: str, tmp_path: Path, **env: str
                         ) -> AsyncIterator[tuple[DuckProcess, DuckProcess]]:
    """Two ``duck serve`` processes on one database, with the same settings."""
    procs: dict[str, DuckProcess] = {}
    both, done = trio.Event(), trio.Event()

    async def run(name: str) -> None:
        # Both start at once: a process takes seconds to come up.
        async with duck_process(mongo_uri, db_name, tmp_path / name, **env) as proc:
            procs[name] = proc
            if len(procs) == 2:
                both.set()
            await done.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "a")
        nursery.start_soon(run, "b")
        await both.wait()
        try:
            yield procs["a"], procs["b"]
        finally:
            done.set()


async def test_accounts_across_two_processes(mongo_uri: str, db_name: str,
                                             tmp_path: Path) -> None:
    env = {"DUCK_LOGIN_USER_LIMIT": str(LIMIT), "DUCK_LOGIN_DELAY_BASE": "0",
           "DUCK_LOGIN_DELAY_MAX": "0"}
    with trio.fail_after(150):
        async with _two_processes(mongo_uri, db_name, tmp_path, **env) as (a, b):
            log, phone_id = await _scenario(a, b)
    rows = [(e["protocol"], e["mechanism"], e["peer"], e["result"]) for e in log]
    assert rows[:2] == [("imap", "LOGIN", "127.0.0.1", "success"),
                        ("api", "password", "127.0.0.1", "failure")]
    assert log[0]["app_password"] == phone_id and log[1]["reason"] == "scope"
    assert rows[2] == ("imap", "LOGIN", "127.0.0.1", "failure")  # revoked
    assert rows[3] == ("imap", "LOGIN", "127.0.0.1", "failure")  # main password, 2FA on
    assert rows[-21][3] == "success" and rows[-21][0] == "api"
    assert rows[-20:] == ([("imap", "LOGIN", "127.0.0.1", "failure")] * LIMIT
                          + [("imap", "LOGIN", "127.0.0.1", "throttled")] * (20 - LIMIT))


async def _scenario(a: DuckProcess, b: DuckProcess) -> tuple[list[dict[str, Any]], str]:
    """Drive both processes; the user's auth log (oldest first) and the app password id."""
    api_a = httpx.AsyncClient(base_url=f"http://127.0.0.1:{a.ports['api']}", timeout=20)
    api_b = httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.ports['api']}", timeout=20)
    async with api_a, api_b:
        r = await api_a.post("/users", json={"username": ADDRESS, "password": PASSWORD})
        user = r.json()["id"]
        r = await api_a.post(f"/users/{user}/apppasswords",
                             json={"description": "phone", "scopes": ["imap"]})
        phone, phone_id = r.json()["password"], r.json()["id"]

        # Scoped to IMAP: IMAP on B takes it, B's API refuses it.
        assert b"a OK" in await _imap_login(b.ports["imap"], phone)
        r = await api_b.post("/authenticate", json={"username": ADDRESS, "password": phone})
        assert r.status_code == 401
        # Revoked through A: B refuses the very next login.
        r = await api_a.delete(f"/users/{user}/apppasswords/{phone_id}")
        assert r.status_code == 200
        assert b"[AUTHENTICATIONFAILED]" in await _imap_login(b.ports["imap"], phone)

        # TOTP on (through A): B's IMAP refuses the main password, B's API takes it
        # with a code.
        r = await api_a.post(f"/users/{user}/2fa/totp/setup")
        secret = r.json()["secret"]
        r = await api_a.post(f"/users/{user}/2fa/totp/enable",
                             json={"code": _code(secret, time.time() - 30)})
        assert r.status_code == 200, r.text
        assert b"[AUTHENTICATIONFAILED]" in await _imap_login(b.ports["imap"], PASSWORD)
        # (Enrolled with the previous step's code, so this step's is new.)
        r = await api_b.post("/authenticate", json={
            "username": ADDRESS, "password": PASSWORD, "otp": _code(secret, time.time())})
        assert r.status_code == 200, r.text

        # 20 failures, alternating processes: one counter of 20, not two of 10.
        replies = []
        for i in range(20):
            port = (a if i % 2 else b).ports["imap"]
            replies.append(await _imap_login(port, f"guess-{i}"))
        assert all(b"[AUTHENTICATIONFAILED]" in r for r in replies[:LIMIT]), replies
        assert all(b"[UNAVAILABLE]" in r for r in replies[LIMIT:]), replies

        r = await api_a.get(f"/users/{user}/authlog", params={"limit": 100})
        return list(reversed(r.json()["results"])), phone_id


async def _login(port: int, user: str, secret: str, source: str) -> tuple[bytes, float]:
    """One LOGIN on a fresh connection from the loopback address ``source`` (each
    address its own per-address counter): the tagged reply and the seconds it took."""
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    c = LineClient(stream)
    try:
        assert (await c.line()).startswith(b"* OK")
        started = time.monotonic()
        await c.send(f'a LOGIN "{user}" "{secret}"\r\n'.encode())
        reply = (await c.until(b"a "))[-1]
        return reply, time.monotonic() - started
    finally:
        await stream.aclose()


#: Small limits, short delays: failures per user name and per address before
#: logins are refused, and the delay of the n-th failure, 0.1 * 2**(n-1) s up to 0.8.
USER_LIMIT, PEER_LIMIT, DELAY_BASE, DELAY_MAX = 4, 5, 0.1, 0.8


async def test_address_counter_delay_and_lockout_across_two_processes(
        mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    env = {"DUCK_LOGIN_USER_LIMIT": str(USER_LIMIT), "DUCK_LOGIN_PEER_LIMIT": str(PEER_LIMIT),
           "DUCK_LOGIN_DELAY_BASE": str(DELAY_BASE), "DUCK_LOGIN_DELAY_MAX": str(DELAY_MAX)}
    failed, refused, ok = b"a NO [AUTHENTICATIONFAILED]", b"a NO [UNAVAILABLE]", b"a OK"
    with trio.fail_after(150):
        async with _two_processes(mongo_uri, db_name, tmp_path, **env) as (a, b):
            async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{a.ports['api']}", timeout=20) as api:
                for name in (ADDRESS, "yan@example.com"):
                    r = await api.post("/users", json={"username": name, "password": PASSWORD})
                    assert r.status_code in (200, 201), r.text
            ia, ib = a.ports["imap"], b.ports["imap"]

            # A counts three failures of zoe's; B holds its answer to the fourth as
            # the fourth (0.8 s), not as its own first (0.1 s), then refuses zoe's
            # right password: the user's limit (4) is reached, three of them in A.
            for i in range(USER_LIMIT - 1):
                reply, _ = await _login(ia, ADDRESS, f"guess-{i}", "127.0.0.2")
                assert reply.startswith(failed), reply
            reply, held = await _login(ib, ADDRESS, "guess-b", "127.0.0.2")
            assert reply.startswith(failed), reply
            assert held >= DELAY_BASE * 2 ** (USER_LIMIT - 1), held
            reply, _ = await _login(ib, ADDRESS, PASSWORD, "127.0.0.2")
            assert reply.startswith(refused), reply
            # The lockout is zoe's: another user from the same address logs in.
            reply, _ = await _login(ib, "yan@example.com", PASSWORD, "127.0.0.2")
            assert reply.startswith(ok), reply

            # One address tries five user names (one failure each), alternating
            # processes: its one counter reaches the limit (5), and both refuse
            # yan's right password from it; from another address yan logs in.
            for i in range(PEER_LIMIT):
                reply, _ = await _login(ia if i % 2 else ib, f"name{i}@example.com",
                                        "guess", "127.0.0.3")
                assert reply.startswith(failed), reply
            for port in (ia, ib):
                reply, _ = await _login(port, "yan@example.com", PASSWORD, "127.0.0.3")
                assert reply.startswith(refused), reply
            reply, _ = await _login(ia, "yan@example.com", PASSWORD, "127.0.0.4")
            assert reply.startswith(ok), reply
