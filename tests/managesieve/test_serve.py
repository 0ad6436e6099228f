"""``duck serve`` runs ManageSieve on its own listeners (plain and implicit TLS),
configured from the command line's flags."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import trio

from duck.cli import _config, build_parser
from duck.config import Config
from duck.server import Server

from .client import SieveClient
from .conftest import client_tls


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_flags_and_defaults() -> None:
    assert (Config().managesieve_port, Config().managesieves_port) == (4190, 0)
    args = build_parser().parse_args(["serve", "--managesieve-port", "0",
                                      "--managesieves-port", "5190"])
    config = _config(args)
    assert (config.managesieve_port, config.managesieves_port) == (0, 5190)


async def test_serve_runs_managesieve(mongo_uri: str, db_name: str, tmp_path: Path,
                                      nursery: Any) -> None:
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0,
                    api_port=0, pop3_port=0, pop3s_port=0, managesieve_port=_free_port(),
                    managesieves_port=_free_port(), mongo_uri=mongo_uri, database=db_name,
                    shutdown_grace=2.0)
    server = Server(config)
    await nursery.start(server.run)
    assert server.store is not None
    try:
        await server.store.users.create("pat@example.com", "pat-secret")
        with trio.fail_after(30):
            for name, tls in (("managesieve", None),
                              ("managesieves", client_tls(config.data_dir / "tls" / "cert.pem"))):
                client = await SieveClient.connect(server.ports[name], tls)
                _, last = await client.response()
                assert last.startswith(b"OK")
                assert (await client.login("pat@example.com", "pat-secret")).startswith(b"OK")
                _, last = await client.command(b'PUTSCRIPT "s" "keep;"')
                assert last.startswith(b"OK")
                await client.aclose()
            assert server.api_state.components.get("managesieve") is True
        scripts = await server.store.sieve.scripts((await server.store.users.by_username(
            "pat@example.com")).id)
        assert [s.name for s in scripts] == ["s"]
    finally:
        database = server.store.database
        await database.run_threaded(database.client.drop_database, db_name)
        server.request_shutdown()
