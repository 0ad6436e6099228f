"""IMAP logins through store.authenticate: SCRAM-SHA-256 (RFC 5802/7677) with
imaplib, application passwords, the two-factor rule, the auth log and the fail2ban
line."""

from __future__ import annotations

import base64
import hashlib
import hmac
import imaplib
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from .conftest import PASSWORD, USER, blocking
from .raw import RawClient

DOCS = Path(__file__).resolve().parents[2] / "docs" / "auth.md"


class ScramClient:
    """An RFC 5802 client as an imaplib authenticate callback; it checks the
    server's signature in the server-final message."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.bare = f"n={username},r=rOprNGfwEbeRWgbNEkqO"
        self.step = 0
        self.verified = False
        self.expected = b""

    def __call__(self, challenge: bytes) -> bytes:
        self.step += 1
        if self.step == 1:
            return f"n,,{self.bare}".encode()
        if self.step == 2:
            fields = dict(f.split("=", 1) for f in challenge.decode().split(","))
            salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(),
                                         base64.b64decode(fields["s"]), int(fields["i"]))
            client_key = hmac.digest(salted, b"Client Key", "sha256")
            stored = hashlib.sha256(client_key).digest()
            without = f"c=biws,r={fields['r']}"
            message = f"{self.bare},{challenge.decode()},{without}".encode()
            signature = hmac.digest(stored, message, "sha256")
            proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
            server_key = hmac.digest(salted, b"Server Key", "sha256")
            self.expected = b"v=" + base64.b64encode(hmac.digest(server_key, message, "sha256"))
            return f"{without},p={base64.b64encode(proof).decode()}".encode()
        self.verified = challenge == self.expected
        return b""


async def test_scram_sha_256_with_imaplib(imap_server: Any) -> None:
    port = imap_server.ports["imap"]
    with trio.fail_after(30):
        c = await RawClient.open(port)
        assert b" AUTH=SCRAM-SHA-256" in c.greeting
        client = await blocking(lambda: imaplib.IMAP4("127.0.0.1", port, timeout=20))
        scram = ScramClient(USER, PASSWORD)
        typ, _ = await blocking(lambda: client.authenticate("SCRAM-SHA-256", scram))
        assert typ == "OK" and scram.verified
        typ, _data = await blocking(lambda: client.select("INBOX"))
        assert typ == "OK"
        await blocking(client.logout)
        bad = await blocking(lambda: imaplib.IMAP4("127.0.0.1", port, timeout=20))
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            await blocking(lambda: bad.authenticate("SCRAM-SHA-256",
                                                    ScramClient(USER, "wrong")))
        user = await imap_server.store.users.by_username(USER)
        log = await imap_server.store.authlog.of_user(user.id)
        assert [(e.protocol, e.mechanism, e.result, e.peer) for e in log[:2]] == [
            ("imap", "SCRAM-SHA-256", "failure", "127.0.0.1"),
            ("imap", "SCRAM-SHA-256", "success", "127.0.0.1")]


async def test_app_password_and_two_factor_over_imap(imap_server: Any) -> None:
    store = imap_server.store
    port = imap_server.ports["imap"]
    user = await store.users.by_username(USER)
    phone = await store.app_passwords.create(user.id, "phone", ["imap"])
    pop_only = await store.app_passwords.create(user.id, "old client", ["pop3"])

    def login(secret: str) -> str:
        client = imaplib.IMAP4("127.0.0.1", port, timeout=20)
        try:
            typ, _ = client.login(USER, secret)
            client.logout()
            return str(typ)
        except imaplib.IMAP4.error as exc:
            return str(exc)

    with trio.fail_after(30):
        assert await blocking(lambda: login(phone.secret)) == "OK"
        assert "AUTHENTICATIONFAILED" in await blocking(lambda: login(pop_only.secret))
        setup = await store.two_factor.setup(user.id)
        key = base64.b32decode(setup.secret + "=" * (-len(setup.secret) % 8))
        await store.auth.enable_totp(user.id,
                                     TOTP(key, 6, SHA1(), 30).generate(time.time()).decode())
        # With two-factor on, the main password no longer opens IMAP.
        assert "AUTHENTICATIONFAILED" in await blocking(lambda: login(PASSWORD))
        assert await blocking(lambda: login(phone.secret)) == "OK"
    log = await store.authlog.of_user(user.id)
    assert [(e.result, e.app_password) for e in log[:4]] == [
        ("success", phone.app_password.id), ("failure", None),
        ("failure", pop_only.app_password.id), ("success", phone.app_password.id)]


def _failregex() -> re.Pattern[str]:
    text = DOCS.read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("failregex = "))
    pattern = line.removeprefix("failregex = ")
    # fail2ban expands <HOST> to its address pattern; a named group stands in.
    return re.compile(pattern.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)"))


async def test_fail2ban_filter_matches_a_failed_imap_login(
        imap_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="duck.auth")
    with trio.fail_after(20):
        c = await RawClient.open(imap_server.ports["imap"])
        lines = await c.command(b"a", b'LOGIN "mallory@example.com" "guess"')
        assert b"NO" in lines[-1]
        lines = await c.command(b"b", f'LOGIN "{USER}" "wrong"'.encode())
        assert b"[AUTHENTICATIONFAILED]" in lines[-1]
        lines = await c.command(b"c", f'LOGIN "{USER}" "{PASSWORD}"'.encode())
        assert lines[-1].startswith(b"c OK")
    messages = [r.getMessage() for r in caplog.records if r.name == "duck.auth"]
    regex = _failregex()
    failed = [m for m in messages if regex.match(m)]
    assert len(failed) == 2 and all(regex.match(m)["host"] == "127.0.0.1" for m in failed)
    assert all("\n" not in m for m in messages)
    ok = [m for m in messages if m.startswith("auth ok:")]
    assert len(ok) == 1 and not regex.match(ok[0])
    assert PASSWORD not in "".join(messages) and "guess" not in "".join(messages)
