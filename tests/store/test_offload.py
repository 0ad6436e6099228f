"""APPEND's worker processes (store/mail/offload.py): a worker makes the document the
serving process would make, APPEND stores the same through them, and it goes on
when they cannot be used."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from bson import ObjectId
from hypothesis import HealthCheck, given, settings

from duck.mime import IndexerLimits
from duck.mime.model import IndexedMessage
from duck.store import Offload, Store, User, open_offload
from duck.store.engine import schema
from duck.store.index import contents
from duck.store.mail import documents
from duck.store.mail.offload import FAILURES, message_document, render_all
from tests.mime.strategies import GeneratedMessage, mime_messages

pytestmark = pytest.mark.store

CORPUS = Path(__file__).resolve().parent.parent / "mime" / "corpus"
#: The test process: a renderer tells by it whether it runs in a worker.
PARENT = "DUCK_TEST_OFFLOAD_PARENT"
#: What differs between two stored copies of one message (or is compared apart).
PER_COPY = {"_id", "uid", "modseq", "emailid", "threadid", "idate", "sdate", "cid",
            "render"}


def _subject(message: IndexedMessage) -> bytes:
    return b"S:" + (message.envelope.subject or b"")


def _where(message: IndexedMessage) -> bytes:
    return b"worker" if os.environ.get(PARENT) != str(os.getpid()) else b"here"


def _dies_in_a_worker(message: IndexedMessage) -> bytes:
    if os.environ.get(PARENT) != str(os.getpid()):
        os._exit(3)
    return b"here"


RENDERERS = {"subj": _subject}


def test_a_worker_makes_the_document_the_serving_process_makes(
        mongo_uri: str, db_name: str) -> None:
    """``message_document`` against the in-process path (Ingest, documents.content,
    the renderings) on generated MIME trees and the corpus. A plain test driving
    trio.run per example: pytest-trio's async fixtures do not survive Hypothesis
    re-running the test function."""
    store = trio.run(Store.open, mongo_uri, db_name)
    try:
        @settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
        @given(message=mime_messages())
        def prop(message: GeneratedMessage) -> None:
            trio.run(_same_document, store, message.data)

        prop()
        corpus = sorted(CORPUS.iterdir())
        assert corpus
        for path in corpus:
            trio.run(_same_document, store, path.read_bytes())
    finally:
        trio.run(store.database.run_threaded, store.database.client.drop_database, db_name)
        trio.run(store.aclose)


async def _same_document(store: Store, data: bytes) -> None:
    limits = IndexerLimits()
    if len(data) > limits.large_body_threshold:
        return
    ingested = await store.database.run(store.messages.ingest().whole_sync, data)
    expected = documents.content(ingested)
    expected["render"] = render_all(RENDERERS, ingested.message)
    assert message_document(data, limits, RENDERERS) == expected


@pytest.fixture
async def offload(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Offload]:
    monkeypatch.setenv(PARENT, str(os.getpid()))
    async with open_offload(1) as made:
        assert made is not None
        yield made


async def _stored(store: Store, mailbox_id: str, uid: int) -> dict[str, Any]:
    """The message document, with its contents document's fields (``contents``)."""
    doc = await store.database.run(store.database.collection(schema.MESSAGES).find_one,
                                   {"mailbox": ObjectId(mailbox_id), "uid": uid})
    assert doc is not None
    kept = await store.database.run(store.database.collection(contents.COLLECTION).find_one,
                                    {"_id": doc["cid"]})
    assert kept is not None
    return {**doc, "contents": {k: v for k, v in kept.items() if k != "_id"}}


async def test_append_through_a_worker_stores_what_append_here_stores(
        store: Store, user: User, offload: Offload) -> None:
    data = (CORPUS / "apple_alternative_related.eml").read_bytes()
    store.messages.register_renderer("subj", _subject)
    store.messages.register_renderer("where", _where)
    try:
        store.messages.offload = offload
        there = await store.messages.append(user.id, "INBOX", data, flags=["\\Seen"])
        store.messages.offload = None
        here = await store.messages.append(user.id, "INBOX", data, flags=["\\Seen"])
    finally:
        store.messages.offload = None
        store.messages.renderers.clear()
    a = await _stored(store, there.mailbox_id, there.uid)
    b = await _stored(store, here.mailbox_id, here.uid)
    assert a["render"].pop("where") == b"worker"
    assert b["render"].pop("where") == b"here"
    assert a["render"] == b["render"] and a["render"]["subj"].startswith(b"S:")
    assert {k: v for k, v in a.items() if k not in PER_COPY} == \
        {k: v for k, v in b.items() if k not in PER_COPY}
    assert a["contents"]["segs"] and a["contents"]["text"]
    # Read back byte-exact.
    (record,) = await store.messages.fetch(there.mailbox_id, [there.uid],
                                           ["content", "size"])
    assert await store.messages.read(record) == data


async def test_append_goes_on_in_process_when_a_worker_dies(
        store: Store, user: User, offload: Offload) -> None:
    store.messages.register_renderer("where", _dies_in_a_worker)
    store.messages.offload = offload
    limits = IndexerLimits()
    try:
        for i in range(FAILURES):
            assert offload.takes(100, limits, store.messages.renderers)
            done = await store.messages.append(user.id, "INBOX", f"Subject: {i}\r\n\r\nx\r\n"
                                               .encode())
            stored = await _stored(store, done.mailbox_id, done.uid)
            assert stored["render"] == {"where": b"here"}
        # Failures in a row: this process parses its APPENDs itself from now on.
        assert not offload.takes(100, limits, store.messages.renderers)
    finally:
        store.messages.offload = None
        store.messages.renderers.clear()


async def test_renderers_a_worker_cannot_be_sent_run_here(
        store: Store, user: User, offload: Offload) -> None:
    limits = IndexerLimits()
    store.messages.register_renderer("subj", _subject)
    assert offload.takes(100, limits, store.messages.renderers)
    assert not offload.takes(limits.large_body_threshold + 1, limits,
                             store.messages.renderers)
    store.messages.register_renderer("lambda", lambda m: b"L")
    store.messages.offload = offload
    try:
        assert not offload.takes(100, limits, store.messages.renderers)
        done = await store.messages.append(user.id, "INBOX", b"Subject: s\r\n\r\nbody\r\n")
        stored = await _stored(store, done.mailbox_id, done.uid)
        assert stored["render"] == {"subj": b"S:s", "lambda": b"L"}
    finally:
        store.messages.offload = None
        store.messages.renderers.clear()
