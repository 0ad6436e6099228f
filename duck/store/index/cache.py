"""A bounded per-process cache of what never changes about a stored message.

Why: under load most FETCHes read messages that were read a moment before (a client
listing headers, then opening one), and each read costs a query, a decode and a
conversion to the store's models in Python. A message's size, dates, envelope,
structure, header fields, inline bytes and renderings are fixed once it is stored,
and ``(mailbox id, uid)`` names one message forever (a UID is never reused within a
mailbox, and a mailbox deleted and made again has a new id). So this cache needs no
invalidation: flags and modseqs, which do change, are never kept here (the sessions'
views have them, moved forward by the journal). Dovecot's index cache and
Stalwart's per-account cache rest on the same fact.

A fetch that asks for a mutable field or for no field at all (an existence check)
is not answered here. The ``content`` of a message with bytes in GridFS is kept as
its segments (references): a body freed after an expunge elsewhere then reads as
NotFound, as it would for a record read from the database a moment before the
expunge, and the protocol answers NO (RFC 2180 §4.1.3 allows it).

Touched only from the trio thread; least recently used entries go first once the
estimated size is over the cap.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import attrs

from ..models import MessageRecord, Part

#: Default cap of one process's cache, in estimated bytes.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: FETCH fields (models.FETCH_FIELDS) that never change, and the record attribute of each.
IMMUTABLE: dict[str, str] = {
    "internal_date": "internal_date",
    "savedate": "savedate",
    "size": "size",
    "envelope": "envelope",
    "structure": "structure",
    "emailid": "emailid",
    "threadid": "threadid",
    "content": "segments",
    "headers": "headers",
}
#: Rough cost of an entry beyond the bytes it holds (the record, the key, the dicts).
_OVERHEAD = 600
_PART_COST = 400
_ENVELOPE_COST = 800

Key = tuple[str, int]


@attrs.define
class _Entry:
    record: MessageRecord
    fields: frozenset[str]
    #: Rendering names asked for (the record has those of them the message has).
    names: frozenset[str]
    cost: int


def usable(fields: frozenset[str], names: frozenset[str]) -> bool:
    """Whether a fetch of these fields and renderings may be answered from the cache."""
    return bool(fields or names) and all(f in IMMUTABLE for f in fields)


def _parts(part: Part | None) -> int:
    if part is None:
        return 0
    return 1 + sum(_parts(p) for p in part.children) + _parts(part.message)


def _cost(record: MessageRecord) -> int:
    cost = _OVERHEAD + _PART_COST * _parts(record.structure)
    if record.envelope is not None:
        cost += _ENVELOPE_COST
    for seg in record.segments or ():
        cost += 64 + len(seg.data or b"")
    for name, value in record.headers or ():
        cost += 64 + len(name) + len(value)
    for name, data in (record.renderings or {}).items():
        cost += 64 + len(name) + len(data)
    return cost


class RecordCache:
    """Immutable message facts by (mailbox id, uid), at most ``max_bytes`` (estimated)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._bytes = 0
        #: Lookups answered and not (for the bench and the metrics).
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The estimated bytes held."""
        return self._bytes

    def lookup(self, mailbox_id: str, uids: Iterable[int], fields: frozenset[str],
               names: frozenset[str]) -> tuple[dict[int, MessageRecord], list[int]]:
        """Records of ``uids`` that have every field and rendering name asked, and
        the UIDs that have not (in the order given)."""
        found: dict[int, MessageRecord] = {}
        missing: list[int] = []
        entries = self._entries
        for uid in uids:
            entry = entries.get((mailbox_id, uid))
            if entry is not None and fields <= entry.fields and names <= entry.names:
                entries.move_to_end((mailbox_id, uid))
                found[uid] = entry.record
            else:
                missing.append(uid)
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def add(self, records: Iterable[MessageRecord], fields: frozenset[str],
            names: frozenset[str]) -> None:
        """Keep the immutable part of records fetched with ``fields`` and ``names``."""
        if self.max_bytes <= 0:
            return
        keep = frozenset(f for f in fields if f in IMMUTABLE)
        for record in records:
            self._add(record, keep, names)
        self._shrink()

    def _add(self, record: MessageRecord, fields: frozenset[str],
             names: frozenset[str]) -> None:
        key = (record.mailbox_id, record.uid)
        old = self._entries.pop(key, None)
        values = {IMMUTABLE[f]: getattr(record, IMMUTABLE[f]) for f in fields}
        renderings = dict(record.renderings or {})
        if old is not None:
            # What this fetch did not ask for is kept from before.
            values = {**{IMMUTABLE[f]: getattr(old.record, IMMUTABLE[f])
                         for f in old.fields - fields}, **values}
            renderings = {**(old.record.renderings or {}), **renderings}
            fields |= old.fields
            names |= old.names
            self._bytes -= old.cost
        kept = MessageRecord(id=record.id, mailbox_id=record.mailbox_id, uid=record.uid,
                             renderings=renderings or None, **values)
        entry = _Entry(kept, fields, names, _cost(kept))
        self._entries[key] = entry
        self._bytes += entry.cost

    def add_renderings(self, mailbox_id: str,
                       renderings: dict[int, dict[str, bytes]]) -> None:
        """Renderings made after delivery and saved with their messages (uid -> name
        -> bytes): the cached entries have them from now on, instead of the absence
        they were cached with."""
        for uid, values in renderings.items():
            entry = self._entries.get((mailbox_id, uid))
            if entry is None or not values:
                continue
            self._bytes -= entry.cost
            entry.record = attrs.evolve(
                entry.record, renderings={**(entry.record.renderings or {}), **values})
            entry.names |= frozenset(values)
            entry.cost = _cost(entry.record)
            self._bytes += entry.cost
        self._shrink()

    def _shrink(self) -> None:
        while self._bytes > self.max_bytes and self._entries:
            _, entry = self._entries.popitem(last=False)
            self._bytes -= entry.cost

    def clear(self) -> None:
        """Forget everything (tests; a restore into the same database)."""
        self._entries.clear()
        self._bytes = 0
