"""IMAP test fixtures: a running server with one user, and blocking clients in threads."""

from __future__ import annotations

import imaplib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from duck.config import Config
from duck.server import Server

T = TypeVar("T")

USER = "alice@example.com"
PASSWORD = "correct horse battery"


async def blocking(fn: Callable[[], T]) -> T:
    """Run a blocking client call in a worker thread (imaplib/imapclient are sync)."""
    return await trio.to_thread.run_sync(fn)


def free_port() -> int:
    """A currently free loopback port (for the IMAPS listener, where 0 means off)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def imap_server(
    mongo_uri: str, db_name: str, tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[Any]:
    """A full server (IMAP, IMAPS, LMTP, API) with user alice (INBOX, Drafts, Sent,
    Trash, Junk, Archive).

    Unlike the shared ``duck_server`` fixture it drops its database *before* asking
    the server to stop, so the drop never races the store's close.
    """
    config = Config(
        data_dir=tmp_path / "data", imap_port=0, imaps_port=free_port(), lmtp_port=0,
        api_port=0, mongo_uri=mongo_uri, database=db_name, shutdown_grace=2.0,
    )
    server = Server(config)
    await nursery.start(server.run)
    await server.store.users.create(USER, PASSWORD)
    try:
        yield server
    finally:
        if not server.shutdown.is_set():
            with trio.move_on_after(10):
                await server.store.database.run(server.store.database.client.drop_database,
                                                db_name)
        server.request_shutdown()


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
