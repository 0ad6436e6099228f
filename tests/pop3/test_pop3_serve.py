"""POP3 inside ``duck serve``: both listeners, the HTTP API's POP3 setting, the
configuration keys, and the login throttle shared with IMAP."""

from __future__ import annotations

import imaplib
import poplib
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from duck.config import Config, ConfigError, load_config
from duck.server import Server

from .conftest import blocking, message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_duck_serve_runs_pop3_and_pop3s(
    mongo_uri: str, db_name: str, tmp_path: Path, nursery: Any
) -> None:
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0,
                    api_port=0, pop3_port=_free_port(), pop3s_port=_free_port(),
                    managesieve_port=0, mongo_uri=mongo_uri, database=db_name, shutdown_grace=2.0)
    server = Server(config)
    await nursery.start(server.run)
    assert server.store is not None
    store = server.store
    try:
        with trio.fail_after(60):
            api = f"http://127.0.0.1:{server.ports['api']}"
            async with httpx.AsyncClient(base_url=api) as http:
                health = (await http.get("/health")).json()
                r = await http.post("/users", json={"username": "pat@example.com",
                                                    "password": "pat-secret"})
                user = r.json()["id"]
                r = await http.put(f"/users/{user}/pop3", json={"folder": "Archive"})
                assert r.status_code == 200 and r.json()["folder"] == "Archive"
                assert (await http.get(f"/users/{user}")).json()["pop3_folder"] == "Archive"
                r = await http.put(f"/users/{user}/pop3", json={"folder": "Missing"})
                assert r.status_code == 404
            assert "pop3" in str(health) and "pop3s" in str(health)
            await store.messages.append(user, "Archive", message(1))
            tls = ssl.create_default_context(
                cafile=str(config.data_dir / "tls" / "cert.pem"))

            def over_stls() -> bytes:
                client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=20)
                client.stls(tls)
                client.user("pat@example.com")
                client.pass_("pat-secret")
                data = b"".join(line + b"\r\n" for line in client.retr(1)[1])
                client.quit()
                return data

            def over_pop3s() -> tuple[int, int]:
                client = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], timeout=20,
                                         context=tls)
                client.user("pat@example.com")
                client.pass_("pat-secret")
                stat = client.stat()
                client.quit()
                return stat

            assert await blocking(over_stls) == message(1)
            assert await blocking(over_pop3s) == (1, len(message(1)))

            # Failed POP3 logins slow IMAP logins of the same user down too.
            def fail_pop3() -> None:
                client = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=20)
                with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
                    client.user("pat@example.com")
                    client.pass_("wrong")
                client.quit()

            await blocking(fail_pop3)
            throttle = server.store.auth.throttle
            key = "user:pat@example.com"
            assert (await store.database.run(throttle.counts_sync, key))[key] == 1

            def imap_login() -> None:
                client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=20)
                client.login("pat@example.com", "pat-secret")
                client.logout()

            await blocking(imap_login)
            assert (await store.database.run(throttle.counts_sync, key))[key] == 0
            log = await store.authlog.of_user(user)
            assert [(e.protocol, e.mechanism, e.result) for e in log[:2]] == [
                ("imap", "LOGIN", "success"), ("pop3", "USER", "failure")]
    finally:
        await store.database.run_threaded(store.database.client.drop_database, db_name)
        server.request_shutdown()


def test_pop3_configuration_keys(tmp_path: Path) -> None:
    config = load_config(None, {"pop3_port": 0}, environ={
        "DUCK_POP3_DELETE_MODE": "trash", "DUCK_POP3_EXPIRE": "never",
        "DUCK_POP3_LOGIN_DELAY": "300", "DUCK_POP3_LEASE_SECONDS": "30"})
    assert (config.pop3_port, config.pop3s_port) == (0, 1995)
    assert (config.pop3_delete_mode, config.pop3_expire) == ("trash", "NEVER")
    assert (config.pop3_login_delay, config.pop3_lease_seconds) == (300, 30.0)
    toml = tmp_path / "duck.toml"
    toml.write_text("pop3_expire = 30\n")
    assert load_config(toml, environ={}).pop3_expire == "30"
    for key, value in (("pop3_delete_mode", "shred"), ("pop3_expire", "soon"),
                       ("pop3_lease_seconds", "0"), ("pop3s_port", "70000")):
        with pytest.raises(ConfigError, match=key):
            load_config(None, {key: value}, environ={})
