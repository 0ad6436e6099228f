"""``duck apppass create|list|revoke`` against a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from duck.cli import main
from duck.store import AuthenticationFailed, Store


def _login(mongo_uri: str, db_name: str, secret: str) -> bool:
    async def run() -> bool:
        store = await Store.open(mongo_uri, db_name)
        try:
            await store.authenticate("ann@example.com", secret, protocol="imap",
                                     mechanism="PLAIN", peer="127.0.0.1")
            return True
        except AuthenticationFailed:
            return False
        finally:
            await store.aclose()

    return trio.run(run)


def _drop(mongo_uri: str, db_name: str) -> None:
    async def run() -> None:
        store = await Store.open(mongo_uri, db_name)
        await store.database.run(store.database.client.drop_database, db_name)
        await store.aclose()

    trio.run(run)


def test_apppass_commands(tmp_path: Path, mongo_uri: str, db_name: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    password = tmp_path / "pw"
    password.write_text("main-secret\n")
    common = ["--mongo-uri", mongo_uri, "--database", db_name]
    try:
        assert main(["user", "create", "ann@example.com", *common,
                     "--password-file", str(password)]) == 0
        capsys.readouterr()
        assert main(["apppass", "create", "ann@example.com", *common,
                     "--description", "phone", "--scope", "imap"]) == 0
        out = capsys.readouterr().out
        secret = next(ln for ln in out.splitlines() if ln.startswith("password: "))[10:]
        ident = next(ln for ln in out.splitlines() if ln.startswith("id: "))[4:]
        assert _login(mongo_uri, db_name, secret)
        assert main(["apppass", "list", "ann@example.com", *common]) == 0
        listing = capsys.readouterr().out
        assert ident in listing and "phone" in listing and "127.0.0.1" in listing
        assert secret not in listing and secret.replace(" ", "") not in listing
        assert main(["apppass", "revoke", "ann@example.com", ident, *common]) == 0
        assert not _login(mongo_uri, db_name, secret)
        assert main(["apppass", "revoke", "ann@example.com", ident, *common]) == 1
        assert main(["apppass", "list", "nobody@example.com", *common]) == 1
        assert "no such user" in capsys.readouterr().err
    finally:
        _drop(mongo_uri, db_name)
