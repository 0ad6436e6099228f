"""IDLE sends what a journal read found even while its \\Recent claim cannot be made.

The claim (``Messages.claim_recent``) writes the mailbox document. A transaction
that a killed process left open on that document (or a writer of the same user
here, retrying against one and holding the user's lock) makes it wait until the
server ends that transaction: a minute, or more. The soak (bench/soak) met it: a
session IDLE on INBOX read the journal's last changes, waited in the claim, and
never sent their EXISTS, while a fresh SELECT saw them ("IDLE view equals SELECT +
FETCH"). Here the mailbox document is held by an open transaction of another
client, as the killed process's was.
"""

from __future__ import annotations

from typing import Any

import pymongo
import pytest
import trio
from bson import ObjectId

from duck.imap import recent
from duck.store.engine import schema

from .conftest import PASSWORD, USER, simple_message
from .raw import RawClient


class _HeldDocument:
    """A transaction of another client that has written a document and stays open."""

    def __init__(self, uri: str, database: str, collection: str, oid: ObjectId) -> None:
        self._client: pymongo.MongoClient[Any] = pymongo.MongoClient(uri)
        self._session = self._client.start_session()
        self._session.start_transaction()
        self._client[database][collection].update_one(
            {"_id": oid}, {"$set": {"held": True}}, session=self._session)

    def release(self) -> None:
        try:
            self._session.abort_transaction()
        finally:
            self._session.end_session()
            self._client.close()


async def test_idle_sends_updates_while_the_recent_claim_waits(
        imap_server: Any, mongo_uri: str, db_name: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recent, "RECENT_CLAIM_WAIT", 0.2)
    store = imap_server.store
    user = await store.users.by_username(USER)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    await store.messages.append(user.id, "INBOX", simple_message(1))
    held: _HeldDocument | None = None
    with trio.fail_after(30):
        a = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        await a.command(b"s", b"SELECT INBOX")  # (claims message 1)
        # Another process delivers; then the mailbox document is held.
        await store.messages.append(user.id, "INBOX", simple_message(2))
        held = await trio.to_thread.run_sync(
            _HeldDocument, mongo_uri, db_name, schema.MAILBOXES, ObjectId(inbox.id))
        try:
            await a.send(b"i IDLE\r\n")
            assert (await a.line()).startswith(b"+ ")
            # IDLE's first read finds message 2; its claim cannot be made.
            with trio.fail_after(5):
                assert await a.line() == b"* 2 EXISTS\r\n"
            assert await a.line() == b"* 1 RECENT\r\n"  # (message 2's claim pending)
            await a.send(b"DONE\r\n")
            with trio.fail_after(5):
                assert (await a.until_tagged(b"i"))[-1] == b"i OK IDLE completed\r\n"
        finally:
            await trio.to_thread.run_sync(held.release)
        # Once the document is free the claim is made, and message 2 is \Recent
        # for this session after all (RFC 3501 §2.3.2: for one session).
        while True:
            lines = await a.command(b"f", b"FETCH 2 (FLAGS)")
            if b"\\Recent" in lines[0]:
                break
            await trio.sleep(0.05)
        b = await RawClient.logged_in(imap_server.ports["imap"], USER, PASSWORD)
        lines = await b.command(b"s", b"SELECT INBOX")
        assert b"* 0 RECENT\r\n" in lines, lines
