"""What SORT and THREAD know of each message, kept as one rendering per message.

SORT (RFC 5256 §3, RFC 5957) and THREAD (RFC 5256 §4) need, per message, the first
From/To/Cc addr-mailbox, the display names, the base subject, the sent date and the
message ids. Computing them from the envelope at each command costs tens of
microseconds a message (RFC 2047 decoding, subject extraction): seconds at 100k
messages. So the keys are made once, at delivery, and kept as the store's opaque
rendering ``ORDER`` (a protocol's precomputed bytes, like the ENVELOPE wire form):
the store keeps renderings in its mailbox digest, 64 messages a document, with
each message's size and internal date beside them, so a SORT of a 100k-message
mailbox reads ~1,600 small documents and splits one short byte string a message.

The keys stay bytes: UTF-8 orders strings as their code points do, so the sort
compares the stored bytes as they are (JSON decoding took ~80% of a SORT's time,
measured with py-spy at 10k messages).

A message stored before this rendering existed (or by a process without it) is
keyed from its envelope at its first SORT/THREAD, and the keys made then are saved.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from duck.mime.envelope import message_ids, parse_date
from duck.mime.model import Envelope, IndexedMessage

from .sortkeys import KEY_COUNT, MSGID, REFS, REPLY, SENT, addr_mailbox, display, subject_info

# (The store only for annotations here, and imported where it is used: a parse
# worker imports this module for ``render_all`` and has no use for the store.)
if TYPE_CHECKING:
    from duck.store import MessageRecord, Store

log = logging.getLogger(__name__)

#: The rendering's name; change the version when the layout below changes.
ORDER = "imap_order2"

#: The rendering is the keys, by the positions sortkeys.py names, as UTF-8 text
#: joined by this separator (removed from the values: no sort key needs it); the
#: reply mark is "1" or empty, the sent date seconds since the epoch or empty,
#: the references joined by spaces.
SEP = b"\x1e"

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
    """The rendering's bytes (``order_keys``' list)."""
    fields = [*keys[:REPLY], "1" if keys[REPLY] else "",
              repr(keys[SENT]) if keys[SENT] is not None else "", keys[MSGID] or "",
              " ".join(keys[REFS])]
    return SEP.join(f.encode("utf-8", "replace").replace(SEP, b" ") for f in fields)


def decode(data: bytes | None) -> list[bytes] | None:
    """The keys of a stored rendering as bytes, by position; None when there is none
    or it is damaged."""
    if not data:
        return None
    keys = data.split(SEP)
    return keys if len(keys) == KEY_COUNT else None


def _references(headers: Iterable[tuple[str, str]] | None) -> str:
    return next((v for k, v in headers or () if k == "references"), "")


def _render(message: IndexedMessage) -> bytes:
    return encode(order_keys(message.envelope, _references(message.headers)))


def render_all(message: IndexedMessage) -> dict[str, bytes]:
    """The keys of ``message`` by the rendering's name: made by the parse worker that
    indexes it (``register``)."""
    return {ORDER: _render(message)}


def register(store: Store) -> None:
    """Have the store keep every delivered message's keys (idempotent)."""
    store.messages.register_renderer(ORDER, _render, f"{__name__}:{render_all.__name__}")


def record_order(rec: MessageRecord) -> list[bytes]:
    """The keys of a record fetched with SOURCE_FIELDS, as ``decode`` gives them."""
    envelope = rec.envelope if rec.envelope is not None else _NO_ENVELOPE
    keys = decode(encode(order_keys(envelope, _references(rec.headers))))
    assert keys is not None
    return keys


#: What a SORT by ARRIVAL and SIZE alone gets for keys: those come with the record.
NO_KEYS: list[bytes] = []


async def ordered(store: Store, mailbox_id: str, uids: Iterable[int], *, keys: bool = True
                  ) -> AsyncIterator[list[tuple[MessageRecord, list[bytes]]]]:
    """Each message's record (uid, size, internal date) and keys, a batch at a time
    as the store's replies arrive; messages expunged meanwhile are left out (RFC
    2180 §4.1.2). Keys missing from the store are made here and saved. Without
    ``keys`` (a SORT by ARRIVAL and SIZE only), records alone, with NO_KEYS."""
    if not keys:
        async for batch in store.messages.fetch_batches(mailbox_id, uids,
                                                        ["size", "internal_date"]):
            yield [(rec, NO_KEYS) for rec in batch]
        return
    async for batch in store.messages.fetch_batches(mailbox_id, uids,
                                                    ["size", "internal_date"], [ORDER]):
        out: list[tuple[MessageRecord, list[bytes]]] = []
        missing: list[int] = []
        for rec in batch:
            found = decode((rec.renderings or {}).get(ORDER))
            if found is None:
                missing.append(rec.uid)
            else:
                out.append((rec, found))
        for start in range(0, len(missing), MISSING_BATCH):
            made = await _make(store, mailbox_id, missing[start:start + MISSING_BATCH])
            out += made
        yield out


async def _make(store: Store, mailbox_id: str, uids: list[int]
                ) -> list[tuple[MessageRecord, list[bytes]]]:
    """Keys of messages stored without them, made from their envelopes and saved
    (a cache: when saving fails, the next SORT makes them again)."""
    from duck.store import StoreError

    out = [(rec, record_order(rec))
           for rec in await store.messages.fetch(mailbox_id, uids, SOURCE_FIELDS)]
    try:
        await store.messages.save_renderings(
            mailbox_id, {rec.uid: {ORDER: SEP.join(keys)} for rec, keys in out})
    except StoreError as exc:
        log.warning("saving sort keys failed: %r", exc)
    return out
