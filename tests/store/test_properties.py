"""Byte-exactness properties over generated MIME trees (tests/mime/strategies.py)."""

from __future__ import annotations

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duck.mime import IndexerLimits, SectionSpec, parse_message, section_bytes
from duck.store import DeliveryTarget, Store, User
from duck.store.models import Delivered
from tests.mime.strategies import GeneratedMessage, chunkings, mime_messages, split

pytestmark = pytest.mark.store

_PREPENDS = st.sampled_from([b"", b"Delivered-To: alice@example.com\r\n",
                             b"Return-Path: <x@y>\r\nX-Folded: a\r\n b\r\n"])
_SECTION_TEXTS = [None, "HEADER", "TEXT", "MIME"]


def test_store_then_fetch_is_byte_exact(mongo_uri: str, db_name: str) -> None:
    """Deliver generated messages (random chunking, prepend, body threshold); read back.

    A plain test driving trio.run per example: pytest-trio's async fixtures do not
    survive Hypothesis re-running the test function.
    """
    store = trio.run(Store.open, mongo_uri, db_name)
    store.set_archive_days(0)  # an expunge frees the bodies at once (checked below)
    try:
        user = trio.run(store.users.create, "prop@example.com", "pw")

        @settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
        @given(message=mime_messages(), data=st.data(), prepend=_PREPENDS,
               threshold=st.sampled_from([0, 16, 200, 64 * 1024]))
        def prop(message: GeneratedMessage, data: st.DataObject, prepend: bytes,
                 threshold: int) -> None:
            trio.run(_check, store, user, message, data, prepend, threshold)

        prop()
    finally:
        trio.run(store.database.run_threaded, store.database.client.drop_database, db_name)
        trio.run(store.aclose)


async def _check(
    store: Store, user: User, message: GeneratedMessage, data: st.DataObject,
    prepend: bytes, threshold: int,
) -> None:
    raw = message.data
    before = await _counts(store)
    ingest = store.messages.ingest(limits=IndexerLimits(large_body_threshold=threshold))
    for chunk in split(raw, data.draw(chunkings(len(raw)))):
        await ingest.write(chunk)
    ingested = await ingest.finish()
    (result,) = await store.messages.deliver(ingested, [DeliveryTarget(user.id,
                                                                      prepend=prepend)])
    assert isinstance(result, Delivered)
    (record,) = await store.messages.fetch(result.mailbox_id, [result.uid],
                                           ["content", "structure", "size"])
    stored = prepend + raw
    assert record.size == len(stored)
    assert await store.messages.read(record) == stored
    start = data.draw(st.integers(0, len(stored)))
    end = data.draw(st.integers(start, len(stored)))
    assert await store.messages.read(record, start, end) == stored[start:end]
    # Every leaf's BODY[section] is the generated body; every section equals the
    # slice the mime package defines on the whole stored bytes.
    reference = parse_message(stored)
    for part in message.parts:
        if part.body is not None:
            spec = SectionSpec(part=part.section) if part.section else SectionSpec(part=(1,))
            assert await store.messages.read_section(record, spec) == part.body
        for text in _SECTION_TEXTS:
            if text == "MIME" and not part.section:
                continue
            spec = SectionSpec(part=part.section, text=text)
            assert await store.messages.read_section(record, spec) == section_bytes(
                stored, reference, spec)
    spec = SectionSpec(text="HEADER.FIELDS", fields=("subject", "delivered-to"))
    assert await store.messages.read_section(record, spec) == section_bytes(
        stored, reference, spec)
    await store.messages.store_flags(result.mailbox_id, [result.uid], "add", ["\\Deleted"])
    assert await store.messages.expunge(result.mailbox_id) == [result.uid]
    # Expunged: its bodies and GridFS files are gone again (deduplicated ones too).
    assert await _counts(store) == before


async def _counts(store: Store) -> list[int]:
    return [await store.database.run(store.database.collection(c).count_documents, {})
            for c in ("bodies", "attachments.files", "attachments.chunks", "messages")]
