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
from duck.store.index import digest

# Every mailbox has a digest from its first message in the suite (in this process
# and in the servers it starts), so that the tests' small mailboxes exercise the
# digest's writers and readers; the default, no digest below digest.DIGEST_FROM
# messages, has its own tests (tests/store/test_digest_small.py).
digest.DIGEST_FROM = int(os.environ.setdefault("DUCK_DIGEST_FROM", "0"))

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=100_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=20, deadline=None)

#: The embedded engine the suite runs on: DUCK_TEST_ENGINE=rust (default) or python.
ENGINE = os.environ.get("DUCK_TEST_ENGINE", "rust")

# CI's second pass (DUCK_TEST_ENGINE=python -m "store and not no_database") is there
# for the engine's own bugs: the properties' Python side was explored with the ci
# profile's 100 examples in the first pass, so here 25 examples a property go
# through the Python engine's reads and writes.
settings.register_profile(
    "ci-python-engine", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile("ci-python-engine" if _PROFILE == "ci" and ENGINE == "python"
                      else _PROFILE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``no_database`` marks a test (of a ``store`` module) that never reaches the
    database: the second pass on the Python engine would run the very same code
    again, so CI leaves it out there (``-m "store and not no_database"``). They are
    the Bloom filter's, the trigrams', the search windows' and the UID ranges' pure
    functions, the journal's gap rule and the verified-password cache. A test
    so marked that does use the database is an error, not a test silently left out."""
    for item in items:
        if item.get_closest_marker("no_database") is not None and "mongo_uri" in getattr(
                item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} is marked no_database but uses it")


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of the one embedded database server shared by the whole test run."""
    external = os.environ.get("DUCK_TEST_MONGO_URI")
    if external:
        yield external
        return
    data_dir: Path = tmp_path_factory.mktemp("embedded-db")
    assert ENGINE in ("rust", "python")
    # Without an fsync at every commit: this server is never killed, so the fsync
    # guards nothing here, and it was ~40% of an APPEND's time. The tests that kill
    # a database (test_outage.py) start their own, which syncs as duck's does.
    with BlockingEmbeddedDatabase(data_dir, engine=ENGINE,  # type: ignore[arg-type]
                                  sync_on_commit=False) as uri:
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
        await store.database.run_threaded(store.database.client.drop_database, db_name)
        await store.aclose()


@pytest.fixture
async def duck_server(
    mongo_uri: str, db_name: str, tmp_path: Path, nursery: Any
) -> AsyncIterator[Any]:
    """A full ``duck serve`` in-process on free loopback ports, on its own database."""
    from duck.config import Config
    from tests.serving import serving

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
    # imaps_port=0 disables implicit TLS by the documented rule; tests that need it
    # turn it on through `server_with_tls`.
    async with serving(nursery, config) as server:
        yield server
