"""IMAP test fixtures: a running server with one user, and blocking clients in threads."""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import trio

T = TypeVar("T")

USER = "alice@example.com"
PASSWORD = "correct horse battery"


async def blocking(fn: Callable[[], T]) -> T:
    """Run a blocking client call in a worker thread (imaplib/imapclient are sync)."""
    return await trio.to_thread.run_sync(fn)


@pytest.fixture
async def imap_server(duck_server: Any) -> Any:
    """The running server with user alice (INBOX, Drafts, Sent, Trash, Junk, Archive)."""
    await duck_server.store.users.create(USER, PASSWORD)
    return duck_server


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
