"""POP3 test fixtures: POP3 (STLS and implicit TLS) and IMAP on one store, one user."""

from __future__ import annotations

import functools
import poplib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from duck.config import Config
from duck.imap.server import serve_imap
from duck.imap.session import ServerContext
from duck.pop3.server import Pop3Config, Pop3Context, serve_pop3
from duck.pop3.store_backend import StoreBackend, StoreSettings
from duck.store import Store, User
from duck.store.push.notify import Notifier
from duck.tls import ensure_self_signed, server_context

USER = "alice@example.com"
PASSWORD = "correct horse battery"


async def blocking(fn: Callable[[], Any]) -> Any:
    """Run a blocking client call in a worker thread (poplib is sync)."""
    return await trio.to_thread.run_sync(fn)


@attrs.define
class Pop3TestServer:
    """POP3 and IMAP listeners on one store, as ``duck serve`` wires them."""

    store: Store
    user: User
    backend: StoreBackend
    context: Pop3Context
    cert: Path
    ports: dict[str, int] = attrs.Factory(dict)

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the server's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    def plain(self) -> poplib.POP3:
        """A poplib client on the STLS port (not logged in)."""
        return poplib.POP3("127.0.0.1", self.ports["pop3"], timeout=20)

    def tls(self) -> poplib.POP3_SSL:
        """A poplib client on the implicit-TLS port (not logged in)."""
        return poplib.POP3_SSL("127.0.0.1", self.ports["pop3s"], timeout=20,
                               context=self.client_context())

    def login(self) -> poplib.POP3_SSL:
        """A logged-in client over implicit TLS."""
        client = self.tls()
        client.user(USER)
        client.pass_(PASSWORD)
        return client


def pop3_settings(request: pytest.FixtureRequest) -> StoreSettings:
    """The store settings a test asks for with ``@pytest.mark.pop3_settings(...)``."""
    marker = request.node.get_closest_marker("pop3_settings")
    return StoreSettings(**(marker.kwargs if marker else {}))


def pop3_config(request: pytest.FixtureRequest) -> Pop3Config:
    """The listener settings a test asks for with ``@pytest.mark.pop3_config(...)``."""
    marker = request.node.get_closest_marker("pop3_config")
    return Pop3Config(**(marker.kwargs if marker else {}))


@pytest.fixture
async def pop3_server(
    mongo_uri: str, db_name: str, tmp_path: Path, nursery: trio.Nursery,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Pop3TestServer]:
    """POP3 on a plain port (with STLS) and an implicit-TLS port, IMAP beside them,
    on a store of its own with user alice."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True)
    cert, key = ensure_self_signed(data_dir, "localhost")
    tls = server_context(cert, key)
    store = await Store.open(mongo_uri, db_name)
    notifier = Notifier(store.database)
    shutdown = trio.Event()
    backend = StoreBackend(store, pop3_settings(request), notifier=notifier)
    context = Pop3Context(backend=backend, config=pop3_config(request), shutdown=shutdown,
                          ssl_context=tls)
    user = await store.users.create(USER, PASSWORD)
    server = Pop3TestServer(store, user, backend, context, cert)
    await nursery.start(notifier.run)
    server.ports["pop3"] = await nursery.start(serve_pop3, context, "127.0.0.1", 0)
    server.ports["pop3s"] = await nursery.start(
        functools.partial(serve_pop3, context, "127.0.0.1", 0, implicit_tls=True))
    imap_config = Config(data_dir=data_dir, imap_port=0, pop3_port=0, pop3s_port=0,
                         managesieve_port=0, mongo_uri=mongo_uri, database=db_name)
    imap = ServerContext(store=store, config=imap_config, shutdown=shutdown,
                         notifier=notifier, ssl_context=tls)
    server.ports["imap"] = await nursery.start(serve_imap, imap, "127.0.0.1", 0)
    try:
        yield server
    finally:
        with trio.move_on_after(10):
            await store.database.run_threaded(store.database.client.drop_database, db_name)
        shutdown.set()
        nursery.cancel_scope.cancel()
        await store.aclose()


def message(n: int, body: bytes = b"") -> bytes:
    """A small CRLF message numbered ``n`` (with ``body`` as extra body lines)."""
    return (
        f"From: sender{n}@example.com\r\nTo: alice@example.com\r\n"
        f"Subject: note {n}\r\nMessage-ID: <m{n}@example.com>\r\n\r\n"
        f"body of message {n}\r\n"
    ).encode() + body


async def fill(server: Pop3TestServer, messages: list[bytes], path: str = "INBOX") -> None:
    """APPEND these messages to the user's ``path``."""
    for data in messages:
        await server.store.messages.append(server.user.id, path, data)
