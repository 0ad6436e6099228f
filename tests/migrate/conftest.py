"""Fixtures of the data commands' tests: real duck servers on their own databases,
the ``duck`` command run as a subprocess, and IMAP views read with IMAPClient."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from imapclient import IMAPClient

from duck import cli
from duck.config import Config
from duck.server import Server

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"

StartDuck = Callable[..., Awaitable[Server]]


def new_db() -> str:
    """A fresh database name."""
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def start_duck(mongo_uri: str, tmp_path: Path, nursery: trio.Nursery
                     ) -> AsyncIterator[StartDuck]:
    """``await start_duck(database)``: a full duck server on free loopback ports, on
    the test run's database server, or (``data_dir`` given) on that data directory's
    own embedded database; every one started is stopped and its database dropped
    afterwards."""
    started: list[Server] = []

    async def start(database: str, data_dir: Path | None = None) -> Server:
        config = Config(data_dir=data_dir or tmp_path / f"data-{database}", imap_port=0,
                        imaps_port=0, lmtp_port=0, pop3_port=0, pop3s_port=0,
                        managesieve_port=0, api_port=0,
                        mongo_uri=None if data_dir else mongo_uri, database=database,
                        shutdown_grace=2.0)
        server = Server(config)
        await nursery.start(server.run)
        started.append(server)
        return server

    yield start
    for server in started:
        assert server.store is not None
        db = server.store.database
        await db.run_threaded(db.client.drop_database, server.config.database)
        server.request_shutdown()


@pytest.fixture
async def drop_later(mongo_uri: str) -> AsyncIterator[list[str]]:
    """Names of databases a test fills without a server (dropped afterwards)."""
    names: list[str] = []
    yield names
    import pymongo  # the test's own cleanup of the shared database server

    def drop() -> None:
        with pymongo.MongoClient(mongo_uri) as client:
            for name in names:
                client.drop_database(name)

    await trio.to_thread.run_sync(drop)


@attrs.frozen
class Ran:
    """A finished ``duck`` command."""

    code: int
    out: str
    err: str


async def run_duck(*args: str | Path, mongo_uri: str | None = None,
                   database: str | None = None) -> Ran:
    """``duck <args> --mongo-uri ... --database ...`` in this process (in a worker
    thread: its own trio.run), for the runs after a command's subprocess test."""
    where = [] if mongo_uri is None else ["--mongo-uri", mongo_uri, "--database", str(database)]
    argv = [*map(str, args), *where]
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return int(cli.main(argv))

    with trio.fail_after(120):
        code = await trio.to_thread.run_sync(run)
    return Ran(code, out.getvalue(), err.getvalue())


async def spawn_duck(*args: str | Path, mongo_uri: str | None = None,
                     database: str | None = None) -> Ran:
    """``duck <args> --mongo-uri ... --database ...`` as a subprocess (without them,
    ``args`` say where the database is: ``--data-dir`` of a running server)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    where = [] if mongo_uri is None else ["--mongo-uri", mongo_uri, "--database", str(database)]
    cmd = [sys.executable, "-m", "duck.cli", *map(str, args), *where]
    with trio.fail_after(120):
        done = await trio.run_process(cmd, env=env, capture_stdout=True,
                                      capture_stderr=True, check=False)
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode())


@attrs.frozen
class Message:
    """A message as IMAP shows it."""

    uid: int
    flags: frozenset[str]
    internal_date: dt.datetime
    body: bytes
    modseq: int


@attrs.frozen
class FolderView:
    """A mailbox as IMAP shows it."""

    uid_validity: int
    uid_next: int
    highest_modseq: int
    messages: tuple[Message, ...]


def _view(port: int, user: str, password: str) -> dict[str, FolderView]:
    client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=30)
    client.normalise_times = False
    try:
        client.login(user, password)
        client.enable("CONDSTORE")
        out: dict[str, FolderView] = {}
        for _flags, _sep, name in client.list_folders():
            state = client.select_folder(name, readonly=True)
            uids = client.search("ALL") if state[b"EXISTS"] else []
            got = client.fetch(uids, ["FLAGS", "INTERNALDATE", "BODY.PEEK[]", "MODSEQ"]) \
                if uids else {}
            messages = tuple(
                Message(uid, frozenset(f.decode() for f in item[b"FLAGS"]
                                       if f != b"\\Recent"),
                        item[b"INTERNALDATE"], item[b"BODY[]"], item[b"MODSEQ"][0])
                for uid, item in sorted(got.items()))
            out[name] = FolderView(int(state[b"UIDVALIDITY"]), int(state[b"UIDNEXT"]),
                                   int(state[b"HIGHESTMODSEQ"]), messages)
        return out
    finally:
        client.logout()


async def imap_view(server: Server, user: str, password: str = PASSWORD
                    ) -> dict[str, FolderView]:
    """Every folder of ``user`` on ``server``, read over IMAP."""
    return await trio.to_thread.run_sync(_view, server.ports["imap"], user, password)


async def imap_session(server: Server, user: str, fn: Callable[[IMAPClient], Any],
                       password: str = PASSWORD) -> Any:
    """Run ``fn(client)`` on a logged-in IMAPClient (in a worker thread)."""
    def run() -> Any:
        client = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=30)
        client.normalise_times = False
        try:
            client.login(user, password)
            return fn(client)
        finally:
            client.logout()

    return await trio.to_thread.run_sync(run)
