"""IMAP test fixtures: a running server with one user, and blocking clients in threads."""

from __future__ import annotations

import functools
import imaplib
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from duck.config import Config
from duck.imap.server import serve_imap
from duck.imap.session import ServerContext
from duck.store import Store
from duck.store.push.notify import Notifier
from duck.tls import ensure_self_signed, server_context

USER = "alice@example.com"
PASSWORD = "correct horse battery"


async def blocking(fn: Callable[[], Any]) -> Any:
    """Run a blocking client call in a worker thread (imaplib/imapclient are sync).

    Typed ``Any``: the client libraries' result unions are what the tests check.
    """
    return await trio.to_thread.run_sync(fn)


@attrs.define
class ImapTestServer:
    """The IMAP part of ``duck serve``: store, notifier, plain and TLS listeners.

    Built from the same pieces ``duck.server.Server`` wires together (tests of that
    wiring use the ``duck_server`` fixture); standing alone keeps these tests
    independent of the other listeners.
    """

    config: Config
    store: Store
    notifier: Notifier
    context: ServerContext
    shutdown: trio.Event
    ports: dict[str, int] = attrs.Factory(dict)

    @property
    def _imap_context(self) -> ServerContext:
        return self.context

    def request_shutdown(self) -> None:
        """Ask every session to say BYE and the listeners to stop."""
        self.shutdown.set()


@pytest.fixture
async def imap_server(
    mongo_uri: str, db_name: str, tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[ImapTestServer]:
    """A running IMAP server (plain with STARTTLS, and implicit TLS) on its own
    database, with user alice (INBOX, Drafts, Sent, Trash, Junk, Archive)."""
    async for server in _imap_server(mongo_uri, db_name, tmp_path, nursery, sole=False):
        yield server


@pytest.fixture
async def sole_imap_server(
    mongo_uri: str, db_name: str, tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[ImapTestServer]:
    """``imap_server`` as ``duck serve`` runs on its own embedded database: the only
    writer there, its notifier fed by the store (push/notify.py, "sole"), in the
    local feed's mode before the test starts."""
    async for server in _imap_server(mongo_uri, db_name, tmp_path, nursery, sole=True):
        with trio.fail_after(30):
            while server.notifier.mode != "local":
                await trio.sleep(0.01)
        yield server


async def _imap_server(mongo_uri: str, db_name: str, tmp_path: Path, nursery: trio.Nursery,
                       *, sole: bool) -> AsyncIterator[ImapTestServer]:
    config = Config(data_dir=tmp_path / "data", imap_port=0, pop3_port=0, pop3s_port=0,
                    managesieve_port=0, mongo_uri=mongo_uri,
                    database=db_name, shutdown_grace=2.0)
    config.data_dir.mkdir(parents=True)
    cert, key = ensure_self_signed(config.data_dir, config.hostname)
    store = await Store.open(mongo_uri, db_name)
    notifier = Notifier(store.database, journal=store.journal, sole=sole)
    shutdown = trio.Event()
    context = ServerContext(store=store, config=config, shutdown=shutdown, notifier=notifier,
                            ssl_context=server_context(cert, key))
    server = ImapTestServer(config, store, notifier, context, shutdown)
    await nursery.start(notifier.run)
    server.ports["imap"] = await nursery.start(serve_imap, context, "127.0.0.1", 0)
    server.ports["imaps"] = await nursery.start(
        functools.partial(serve_imap, context, "127.0.0.1", 0, implicit_tls=True)
    )
    await store.users.create(USER, PASSWORD)
    try:
        yield server
    finally:
        with trio.move_on_after(10):
            await store.database.run_threaded(store.database.client.drop_database, db_name)
        shutdown.set()
        nursery.cancel_scope.cancel()
        await store.aclose()


def connect(server: Any, *, login: bool = True) -> imaplib.IMAP4:
    """A blocking imaplib client on the plain port (logged in unless told not to)."""
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=20)
    if login:
        client.login(USER, PASSWORD)
    return client


async def aconnect(server: Any, *, login: bool = True) -> imaplib.IMAP4:
    """``connect`` from a trio test."""
    return await blocking(lambda: connect(server, login=login))


MESSAGE = (
    b"From: Bob <bob@example.com>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Subject: hello there\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"first part body\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgcICQ==\r\n"
    b"--XX--\r\n"
)


def simple_message(n: int, subject: str = "note") -> bytes:
    """A small text message numbered ``n``."""
    return (
        f"From: sender{n}@example.com\r\nTo: alice@example.com\r\n"
        f"Subject: {subject} {n}\r\nMessage-ID: <m{n}@example.com>\r\n\r\n"
        f"body of message {n}\r\n"
    ).encode()


_FLAGS = re.compile(rb"^\* FLAGS \(([^)]*)\)")
_PERMANENT = re.compile(rb"^\* OK \[PERMANENTFLAGS \(([^)]*)\)\]")
_FETCH_FLAGS = re.compile(rb"^\* \d+ FETCH \(.*?\bFLAGS \(([^)]*)\)")


class KeywordChecker:
    """What Dovecot's imaptest checks of keywords, over one selection's responses:
    a keyword a FETCH shows is in the last FLAGS ("Keyword used without being in
    FLAGS"), a FLAGS keeps every keyword already shown, and PERMANENTFLAGS lists
    the same keywords (plus \\*) or nothing (read-only)."""

    def __init__(self) -> None:
        self.defined: set[bytes] | None = None
        self.shown: set[bytes] = set()
        self.flags_responses = 0

    def absorb(self, lines: list[bytes]) -> None:
        for line in lines:
            m = _FLAGS.match(line)
            if m is not None:
                defined = {f.lower() for f in m.group(1).split()}
                assert self.shown <= defined, ("keyword dropped", self.shown, line)
                self.defined = defined
                self.flags_responses += 1
                continue
            m = _PERMANENT.match(line)
            if m is not None:
                perm = {f.lower() for f in m.group(1).split()}
                assert not perm or perm - {b"\\*"} == self.defined, (perm, self.defined)
                continue
            m = _FETCH_FLAGS.match(line)
            if m is not None:
                keywords = {f.lower() for f in m.group(1).split() if not f.startswith(b"\\")}
                assert self.defined is not None and keywords <= self.defined, (
                    "keyword used without being in FLAGS", line, self.defined)
                self.shown |= keywords
