"""What SORT and THREAD know of each message, kept as one rendering per message.

SORT (RFC 5256 §3, RFC 5957) and THREAD (RFC 5256 §4) need, per message, the first
From/To/Cc addr-mailbox, the display names, the base subject, the sent date and the
message ids. Computing them from the envelope at each command costs tens of
microseconds a message (RFC 2047 decoding, subject extraction): seconds at 100k
messages. So the keys are made once, at delivery, and kept as the store's opaque
rendering ``ORDER`` (a protocol's precomputed bytes, like the ENVELOPE wire form):
the store keeps renderings in its mailbox digest, 64 messages a document, with
each message's size and internal date beside them, so a SORT of a 100k-message
mailbox reads ~1,600 small documents and decodes one short JSON list a message.

A message stored before this rendering existed (or by a process without it) is
keyed from its envelope at its first SORT/THREAD, and the keys made then are saved.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from duck.mime.envelope import message_ids, parse_date
from duck.mime.model import Envelope, IndexedMessage
from duck.store import MessageRecord, Store, StoreError

from .sortkeys import KEY_COUNT, addr_mailbox, display, subject_info

log = logging.getLogger(__name__)

#: The rendering's name; change the version when the layout below changes.
ORDER = "imap_order1"

# The rendering is a JSON list, by the positions sortkeys.py names.

#: What a message's keys are made from when it has no rendering.
SOURCE_FIELDS = ["envelope", "headers", "internal_date", "size"]
#: Messages without keys read (and their keys saved) per query: a mailbox stored
#: before this rendering existed is keyed at its first SORT, a bounded read at a time.
MISSING_BATCH = 2_000

_NO_ENVELOPE = Envelope()


def _ids(value: bytes | None) -> list[str]:
    # An empty "<>" names no message.
    return [m for m in message_ids(value) if m != "<>"]


def order_keys(envelope: Envelope, references: str) -> list[Any]:
    """A message's keys from its envelope and its decoded References: field."""
    subject, reply = subject_info(envelope.subject)
    sent = parse_date(envelope.date)
    refs = _ids(references.encode("utf-8", "replace"))
    if not refs:
        # RFC 5256 §4 (REFERENCES, step 1 A): without References, the first
        # message id of In-Reply-To.
        refs = _ids(envelope.in_reply_to)[:1]
    own = _ids(envelope.message_id)
    return [
        addr_mailbox(envelope.from_),
        addr_mailbox(envelope.to),
        addr_mailbox(envelope.cc),
        display(envelope.from_),
        display(envelope.to),
        subject,
        reply,
        sent.timestamp() if sent is not None else None,
        own[0] if own else None,
        refs,
    ]


def encode(keys: list[Any]) -> bytes:
    """The rendering's bytes."""
    return json.dumps(keys, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(data: bytes | None) -> list[Any] | None:
    """The keys of a stored rendering; None when there is none or it is damaged."""
    if not data:
        return None
    try:
        keys = json.loads(data)
    except ValueError:
        return None
    return keys if isinstance(keys, list) and len(keys) == KEY_COUNT else None


def _references(headers: Iterable[tuple[str, str]] | None) -> str:
    return next((v for k, v in headers or () if k == "references"), "")


def _render(message: IndexedMessage) -> bytes:
    return encode(order_keys(message.envelope, _references(message.headers)))


def register(store: Store) -> None:
    """Have the store keep every delivered message's keys (idempotent)."""
    store.messages.register_renderer(ORDER, _render)


def record_order(rec: MessageRecord) -> list[Any]:
    """The keys of a record fetched with SOURCE_FIELDS."""
    envelope = rec.envelope if rec.envelope is not None else _NO_ENVELOPE
    return order_keys(envelope, _references(rec.headers))


async def ordered(store: Store, mailbox_id: str, uids: Iterable[int]
                  ) -> AsyncIterator[list[tuple[MessageRecord, list[Any]]]]:
    """Each message's record (uid, size, internal date) and keys, a batch at a time
    as the store's replies arrive; messages expunged meanwhile are left out (RFC
    2180 §4.1.2). Keys missing from the store are made here and saved."""
    async for batch in store.messages.fetch_batches(mailbox_id, uids,
                                                    ["size", "internal_date"], [ORDER]):
        out: list[tuple[MessageRecord, list[Any]]] = []
        missing: list[int] = []
        for rec in batch:
            keys = decode((rec.renderings or {}).get(ORDER))
            if keys is None:
                missing.append(rec.uid)
            else:
                out.append((rec, keys))
        for start in range(0, len(missing), MISSING_BATCH):
            made = await _make(store, mailbox_id, missing[start:start + MISSING_BATCH])
            out += made
        yield out


async def _make(store: Store, mailbox_id: str, uids: list[int]
                ) -> list[tuple[MessageRecord, list[Any]]]:
    """Keys of messages stored without them, made from their envelopes and saved
    (a cache: when saving fails, the next SORT makes them again)."""
    out = [(rec, record_order(rec))
           for rec in await store.messages.fetch(mailbox_id, uids, SOURCE_FIELDS)]
    try:
        await store.messages.save_renderings(
            mailbox_id, {rec.uid: {ORDER: encode(keys)} for rec, keys in out})
    except StoreError as exc:
        log.warning("saving sort keys failed: %r", exc)
    return out
