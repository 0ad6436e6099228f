"""A message document keeps what changes; its contents (duck/store/index/contents.py)
keep what never does: the bytes, the SEARCH text, the part tree, the envelope and the
renderings. Every reader finds them there, and in message documents written before,
which carry some or all of them themselves."""

from __future__ import annotations

from typing import Any

import bson
import pytest
from bson import ObjectId
from store_samples import multipart_message, simple_message

from duck.store import Store, User
from duck.store.engine import schema
from duck.store.index import contents
from duck.store.index.cache import IMMUTABLE

pytestmark = pytest.mark.store

#: Every field the record cache keeps.
ALL = sorted(IMMUTABLE)
#: Kept apart from the message document since this layout (not ``segs``, ``text``).
MOVED = ("root", "env", "render")


async def _stored(store: Store, user: User, data: bytes) -> tuple[str, int]:
    store.messages.register_renderer("probe", lambda m: b"rendered " + m.envelope.subject)
    done = await store.messages.append(user.id, "INBOX", data)
    return done.mailbox_id, done.uid


async def _docs(store: Store, mailbox: str, uid: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The message document and its contents document, as stored."""
    messages = store.database.collection(schema.MESSAGES)
    kept = store.database.collection(contents.COLLECTION)
    doc = await store.database.run(messages.find_one, {"mailbox": ObjectId(mailbox),
                                                       "uid": uid})
    return doc, await store.database.run(kept.find_one, {"_id": doc["cid"]})


@pytest.mark.parametrize("data", [simple_message(subject="kept apart"),
                                  multipart_message(b"%PDF-1.4 " * 40)])
async def test_a_message_document_keeps_only_what_changes(
        store: Store, user: User, data: bytes) -> None:
    start = await store.events.current(user.id)
    mailbox, uid = await _stored(store, user, data)
    doc, kept = await _docs(store, mailbox, uid)
    assert not {"segs", "text", *MOVED} & set(doc)
    # The part tree, the envelope and the renderings as one opaque value.
    assert {"segs", "text", contents.BLOB} <= set(kept)
    assert set(bson.decode(kept[contents.BLOB])) == set(MOVED)
    (delivered,) = await store.messages.fetch(mailbox, [uid], ALL, ["probe"])
    store.messages.cache.clear()
    (read,) = await store.messages.fetch(mailbox, [uid], ALL, ["probe"])
    assert read == delivered
    assert read.envelope is not None and read.structure is not None
    assert read.renderings == {"probe": b"rendered " + read.envelope.subject}
    assert await store.messages.read(read) == data
    # Each part alone too: the envelope, the part tree, a rendering.
    store.messages.cache.clear()
    (alone,) = await store.messages.fetch(mailbox, [uid], ["envelope"])
    assert alone.envelope == delivered.envelope and alone.structure is None
    store.messages.cache.clear()
    (alone,) = await store.messages.fetch(mailbox, [uid], ["size"], ["probe"])
    assert alone.renderings == delivered.renderings and alone.envelope is None
    # Push events carry the envelope (push/events.py reads it through the store).
    batch = await store.events.read(user.id, start)
    (new,) = [e for e in batch.events if e.kind == "message.new"]
    assert new.message is not None and new.message.envelope == delivered.envelope


async def test_documents_written_before_are_read_as_before(store: Store, user: User) -> None:
    """A message document that carries the part tree, the envelope and the
    renderings itself, beside a ``cid`` whose contents lack them (as written before
    this layout), is fetched, listed in the archive and restored as before."""
    data = simple_message(subject="older", sender="carol@example.com")
    mailbox, uid = await _stored(store, user, data)
    (delivered,) = await store.messages.fetch(mailbox, [uid], ALL, ["probe"])
    doc, kept = await _docs(store, mailbox, uid)
    messages = store.database.collection(schema.MESSAGES)
    await store.database.run(messages.update_one, {"_id": doc["_id"]},
                             {"$set": bson.decode(kept[contents.BLOB])})
    await store.database.run(store.database.collection(contents.COLLECTION).update_one,
                             {"_id": doc["cid"]}, {"$unset": {contents.BLOB: ""}})
    store.messages.cache.clear()
    (read,) = await store.messages.fetch(mailbox, [uid], ALL, ["probe"])
    assert read == delivered
    await store.messages.store_flags(mailbox, [uid], "add", ["\\Deleted"])
    assert await store.messages.expunge(mailbox) == [uid]
    (item,), _ = await store.archive.page(user.id)
    assert item.sender == "carol@example.com"
    (done,) = await store.archive.restore(user.id, [item.id])
    store.messages.cache.clear()
    (back,) = await store.messages.fetch(done.mailbox_id, [done.uid], ALL, ["probe"])
    assert (back.envelope, back.structure, back.renderings) == (
        delivered.envelope, delivered.structure, delivered.renderings)
    assert await store.messages.read(back) == data


async def test_the_archive_lists_a_sender_kept_in_the_contents(store: Store,
                                                                user: User) -> None:
    mailbox, uid = await _stored(store, user, simple_message(sender="dave@example.org"))
    await store.messages.store_flags(mailbox, [uid], "add", ["\\Deleted"])
    await store.messages.expunge(mailbox)
    archived = await store.database.run(
        store.database.collection(schema.ARCHIVE).find_one, {})
    assert not {"segs", "text", *MOVED} & set(archived)
    (item,), _ = await store.archive.page(user.id)
    assert item.sender == "dave@example.org"
