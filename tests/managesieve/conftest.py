"""A ManageSieve server (plain with STARTTLS, and implicit TLS) on its own store."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio

from duck.managesieve.server import ManageSieveConfig, ManageSieveContext, serve_managesieve
from duck.managesieve.store_backend import StoreBackend
from duck.store import Store, User
from duck.tls import ensure_self_signed, server_context

USER = "alice@example.com"
PASSWORD = "s3cret pw"


@attrs.define
class SieveServer:
    store: Store
    user: User
    cert: Path
    ports: dict[str, int] = attrs.Factory(dict)


@pytest.fixture
async def sieve_server(mongo_uri: str, db_name: str, tmp_path: Path, nursery: trio.Nursery
                       ) -> AsyncIterator[SieveServer]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True)
    cert, key = ensure_self_signed(data_dir, "localhost")
    store = await Store.open(mongo_uri, db_name)
    shutdown = trio.Event()
    context = ManageSieveContext(backend=StoreBackend(store), config=ManageSieveConfig(),
                                 shutdown=shutdown, ssl_context=server_context(cert, key))
    user = await store.users.create(USER, PASSWORD)
    server = SieveServer(store, user, cert)
    server.ports["plain"] = await nursery.start(serve_managesieve, context, "127.0.0.1", 0)
    server.ports["tls"] = await nursery.start(
        functools.partial(serve_managesieve, context, "127.0.0.1", 0, implicit_tls=True))
    try:
        yield server
    finally:
        with trio.move_on_after(10):
            await store.database.run_threaded(store.database.client.drop_database, db_name)
        shutdown.set()
        await store.aclose()


def client_tls(cert: Path) -> ssl.SSLContext:
    """A client context trusting the test certificate."""
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    return context
