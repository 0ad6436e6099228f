"""Shared fixtures: ONE embedded database for the whole run, a database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from duck.store import Store
from duck.store.engine.embedded import BlockingEmbeddedDatabase

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=100_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: The embedded engine the suite runs on: DUCK_TEST_ENGINE=rust (default) or python.
ENGINE = os.environ.get("DUCK_TEST_ENGINE", "rust")


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of the one embedded database server shared by the whole test run."""
    external = os.environ.get("DUCK_TEST_MONGO_URI")
    if external:
        yield external
        return
    data_dir: Path = tmp_path_factory.mktemp("embedded-db")
    assert ENGINE in ("rust", "python")
    with BlockingEmbeddedDatabase(data_dir, engine=ENGINE) as uri:  # type: ignore[arg-type]
        yield uri


@pytest.fixture
def db_name() -> str:
    """A fresh database name: tests never see each other's data."""
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def store(mongo_uri: str, db_name: str) -> AsyncIterator[Store]:
    """A store on its own database, dropped afterwards."""
    store = await Store.open(mongo_uri, db_name)
    try:
        yield store
    finally:
        await store.database.run(store.database.client.drop_database, db_name)
        await store.aclose()


@pytest.fixture
async def duck_server(
    mongo_uri: str, db_name: str, tmp_path: Path, nursery: Any
) -> AsyncIterator[Any]:
    """A full ``duck serve`` in-process on free loopback ports, on its own database."""
    from duck.config import Config
    from duck.server import Server

    config = Config(
        data_dir=tmp_path / "data",
        imap_port=0,
        imaps_port=0,
        lmtp_port=0, pop3_port=0, pop3s_port=0, managesieve_port=0,
        api_port=0,
        mongo_uri=mongo_uri,
        database=db_name,
        shutdown_grace=2.0,
    )
    server = Server(config)
    # imaps_port=0 disables implicit TLS by the documented rule; tests that need it
    # turn it on through `server_with_tls`.
    await nursery.start(server.run)
    try:
        yield server
    finally:
        assert server.store is not None
        # Drop before shutting down: shutdown closes the store's client.
        await server.store.database.run(server.store.database.client.drop_database, db_name)
        server.request_shutdown()
