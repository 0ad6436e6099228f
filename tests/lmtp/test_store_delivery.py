"""LMTP into the real store: per-recipient outcomes, byte-exact copies, shared bodies."""

from __future__ import annotations

import os
import smtplib
from typing import Any

import trio

from duck.store import Store
from tests.lmtp.client import LmtpClient


async def _inbox_messages(store: Store, user_id: str) -> list[bytes]:
    inbox = await store.mailboxes.get(user_id, "INBOX")
    uids = [m.uid for m in await store.messages.view(inbox.id)]
    records = await store.messages.fetch(inbox.id, uids, ["content"])
    return [await store.messages.read(record) for record in records]


def _message(attachment: bytes) -> bytes:
    import base64

    encoded = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    return (
        b"From: Sender <sender@example.org>\r\nTo: a@example.com, b@example.com\r\n"
        b"Subject: delivery\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        b"--XX\r\nContent-Type: text/plain\r\n\r\n.leading dot line\r\nhello\r\n"
        b"--XX\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--XX--\r\n"
    )


async def test_mixed_outcomes_and_byte_exact_copies(duck_server: Any) -> None:
    store: Store = duck_server.store
    alice = await store.users.create("alice@example.com", "pw")
    bob = await store.users.create("bob@example.com", "pw")
    message = _message(os.urandom(300_000))
    with trio.fail_after(30):
        client = await LmtpClient.connect(duck_server.ports["lmtp"])
        assert (await client.read_reply()).code == 220
        assert (await client.command("LHLO test")).code == 250
        rcpts, data = await client.deliver(
            "sender@example.org",
            ["Alice@Example.com", "nobody@example.com", "bob+lists@example.com"],
            message,
        )
        await client.aclose()
    assert [r.code for r in rcpts] == [250, 550, 250]
    assert rcpts[1].status == "5.1.1"
    assert [r.code for r in data] == [250, 250]
    (alice_copy,) = await _inbox_messages(store, alice.id)
    (bob_copy,) = await _inbox_messages(store, bob.id)
    assert alice_copy == (
        b"Return-Path: <sender@example.org>\r\nDelivered-To: Alice@Example.com\r\n" + message
    )
    assert bob_copy.endswith(message) and b"Delivered-To: bob+lists@example.com\r\n" in bob_copy
    # The large attachment is stored once for both recipients.
    files = await store.database.run(
        store.database.collection("attachments.files").count_documents, {}
    )
    assert files == 1


async def test_smtplib_lmtp_client(duck_server: Any) -> None:
    """Python's own LMTP client, run in a worker thread (it blocks)."""
    store: Store = duck_server.store
    user = await store.users.create("carol@example.com", "pw")
    port = duck_server.ports["lmtp"]
    body = b"Subject: hi\r\n\r\nplain body\r\n"

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.LMTP("127.0.0.1", port) as client:
            return client.sendmail("x@example.org", ["carol@example.com"], body)

    with trio.fail_after(30):
        refused = await trio.to_thread.run_sync(send)
    assert refused == {}
    (copy,) = await _inbox_messages(store, user.id)
    assert copy.endswith(body)


async def test_unknown_only_recipient_gets_no_data(duck_server: Any) -> None:
    with trio.fail_after(30):
        client = await LmtpClient.connect(duck_server.ports["lmtp"])
        await client.read_reply()
        await client.command("LHLO test")
        rcpts, data = await client.deliver("x@example.org", ["ghost@example.com"], b"x\r\n")
        await client.aclose()
    assert rcpts[0].code == 550
    assert data[0].code in (503, 554)


async def test_read_back_over_imap_byte_identical(duck_server: Any) -> None:
    """Delivered through LMTP, fetched through IMAP: the same bytes plus the trace headers."""
    import imaplib

    store: Store = duck_server.store
    await store.users.create("dora@example.com", "pw")
    message = _message(os.urandom(200_000)).replace(b"hello", b"caf\xc3\xa9 8-bit \x00 nul")
    with trio.fail_after(30):
        client = await LmtpClient.connect(duck_server.ports["lmtp"])
        await client.read_reply()
        await client.command("LHLO test")
        _, data = await client.deliver("s@example.org", ["dora@example.com"], message)
        await client.aclose()
    assert [r.code for r in data] == [250]

    def fetch() -> tuple[bytes, int]:
        imap = imaplib.IMAP4("127.0.0.1", duck_server.ports["imap"])
        try:
            imap.login("dora@example.com", "pw")
            imap.select("INBOX", readonly=True)
            _, parts = imap.fetch("1", "(BODY.PEEK[])")
            body = parts[0][1]  # type: ignore[index]
            _, sized = imap.fetch("1", "(RFC822.SIZE)")
            size = int(sized[0].split(b"RFC822.SIZE ")[1].rstrip(b")"))  # type: ignore[union-attr]
            return body, size
        finally:
            imap.logout()

    with trio.fail_after(30):
        body, size = await trio.to_thread.run_sync(fetch)
    expected = b"Return-Path: <s@example.org>\r\nDelivered-To: dora@example.com\r\n" + message
    assert body == expected
    assert size == len(expected)
