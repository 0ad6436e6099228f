"""The store: one object that the protocols and the API hold."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from . import schema
from .database import Database
from .users import Users

log = logging.getLogger(__name__)


class Store:
    """Entry point of the store: the database and the typed APIs over it."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.users = Users(database)

    @classmethod
    async def open(cls, uri: str, name: str = "duck") -> Store:
        """Connect, choose durable write settings and create indexes (idempotent)."""
        database = Database(uri, name)
        try:
            await database.run(database.configure_durability)
            await database.run(schema.ensure_indexes, database.db)
        except BaseException:
            database.close()
            raise
        log.info("store ready (database %r)", name)
        return cls(database)

    async def aclose(self) -> None:
        """Close the database connections."""
        await self.database.aclose()

    async def healthy(self) -> bool:
        """True when the database answers."""
        return await self.database.ping()


@asynccontextmanager
async def open_store(uri: str, name: str = "duck") -> AsyncIterator[Store]:
    """``async with open_store(uri) as store:`` — opened and closed around the block."""
    store = await Store.open(uri, name)
    try:
        yield store
    finally:
        await store.aclose()
