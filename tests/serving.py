"""A whole in-process duck server for a test fixture, on the test's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from duck.config import Config
from duck.server import Server


@asynccontextmanager
async def serving(nursery: Any, config: Config) -> AsyncIterator[Server]:
    """Run ``Server(config)`` in ``nursery`` until the block ends; then drop its
    database (before shutdown, which closes the store's client) and stop it."""
    server = Server(config)
    await nursery.start(server.run)
    try:
        yield server
    finally:
        assert server.store is not None
        await server.store.database.run_threaded(server.store.database.client.drop_database,
                                        config.database)
        server.request_shutdown()
