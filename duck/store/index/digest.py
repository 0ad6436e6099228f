"""The mailbox digest: per 64 UIDs of a mailbox, packed documents with what a
client's first sync and a SEARCH read of every message.

Why: the embedded engine spends ~20-50 µs per document a query returns, so a FETCH
or SEARCH that touches every message of a 100k-message mailbox costs seconds when it
reads ``messages``. The digest holds the same facts 64 messages per document, so
those commands read ~1,600 documents per part instead of 100,000. It is an index of
the store's own (docs/architecture.md, "SEARCH"): written in the same transaction as the
messages it describes (delivery, COPY; STORE for the flag words), its entries removed
in the EXPUNGE transaction, dropped with the mailbox, and rebuilt for a mailbox that
has none or an older layout (``backfill``).

A chunk (``c`` = uid // 64) is several documents (``mailbox``, ``k``, ``c``), one per
way it is read (the engine reads a whole document to project one field of it). Keys
under each field are the UID as a string (a ``$set``/``$unset`` per message: no arrays
to keep aligned, and a retried write is idempotent):

- part ``m`` (META): ``m.<uid>`` the message's ``_id``, ``z.<uid>`` its size,
  ``d.<uid>`` its internal date, ``s.<uid>`` its Date: header (when it has one) — only
  immutable facts; ``L``, a 64-bit word, bit ``uid % 64`` set while that message
  exists; ``F.<flag>``, a 64-bit word per flag (``flag_key``: the lowercased flag,
  hex), bit ``uid % 64`` set while the message has it (STORE changes it in its
  transaction, so flag SEARCHes read two words per 64 messages); ``f.<uid>`` its
  flags as stored and ``q.<uid>`` its modseq (STORE sets both in the same update as
  the words), so that SELECT loads its view from 64 messages a document;
- part ``h`` (HEAD): ``h<x>.<uid>`` the decoded values of From/To/Cc/Bcc/Subject
  (``x`` = f, t, c, b, s; several values joined by NUL; absent when the message has no
  such field), or ``hx.<uid>`` = true instead when they are over ``MAX_ENTRY``
  ("unknown": SEARCH checks that message in ``messages``);
- part ``b`` (BLOOM): ``p.<uid>`` a Bloom filter of the message's text trigrams for
  BODY/TEXT, 2,048 bits (256 bytes, little-endian): bit ``p`` is set when a trigram of
  the message's header values or body text hashes to position ``p``. A set of
  positions gives candidate messages (no false negatives); SEARCH checks candidates
  in ``messages``;
- part ``r.<name>`` (one per rendering: ENVELOPE, BODYSTRUCTURE... as the protocol
  stored them): ``v.<uid>`` the rendering, and ``m``/``z``/``d`` again so that a first
  sync reads this part only. Renderings over ``MAX_ENTRY`` are left out (the reader
  falls back to the message document).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import bson
import numpy as np
import pymongo.errors
from bson import Binary, Int64, ObjectId
from pymongo import UpdateMany, UpdateOne

from ..engine import schema
from ..engine.batch import WriteBatch
from ..engine.database import Database
from . import contents

COLLECTION = "digests"
#: The layout's version, kept in each mailbox document (``dg``): a mailbox whose
#: digest has another version gets it rebuilt at start-up (``backfill``).
VERSION = 7
#: UIDs per chunk (a 64-bit word per flag).
SPAN = 64
#: Bloom filter bits per message (2,048: ~30% of bits set for a message of ~700
#: distinct trigrams; a 5-trigram needle then passes ~0.2% of such messages).
BLOOM_BITS = 2048
#: Renderings or header text of one message over this are left out of the digest.
MAX_ENTRY = 16 * 1024
#: Text beyond this many characters sets every Bloom bit (a Bloom filter of a
#: large text is saturated anyway; hashing it would slow delivery).
MAX_BLOOM_TEXT = 128 * 1024
#: Header name -> ``x`` of its field ``h<x>``.
HEADERS = {"from": "f", "to": "t", "cc": "c", "bcc": "b", "subject": "s"}
#: Separates several values of one header field (a needle with NUL is not digested).
SEPARATOR = "\x00"

#: A chunk is stored as several documents (``k``), one per way it is read: the
#: embedded engine reads a whole document to project a field of it, so the parts a
#: query does not need must not be in its documents.
META = "m"  # m, z, d, s, L, F: small; FETCH and flag/size/date SEARCH
HEAD = "h"  # h?, hx: header SEARCH
BLOOM = "b"  # p: BODY/TEXT SEARCH
RENDER = "r."  # r.<name>: v.<uid> = one rendering, and m/z/d again (first sync)
schema.register(COLLECTION, [
    schema.IndexModel([("mailbox", schema.ASCENDING), ("k", schema.ASCENDING),
                       ("c", schema.ASCENDING)], unique=True, name="mailbox_part_chunk"),
])


# -- text canonicalization and hashing for the Bloom filter ---------------------------

#: Non-ASCII letters that ``i;unicode-casemap`` (casemap.py) equates with an ASCII
#: letter, whole (the dotless i is ``I``) or at the end of a needle (``İ`` is ``I`` and a
#: dot), mapped to it so that the filter never misses a match;
#: tests/store/test_digest.py derives the list from Unicode again.
ASCII_FOLDS = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}


def canonical(text: str) -> bytes:
    """``text`` as the filter hashes it: one byte per character, ASCII letters (and
    characters that case-fold to one) lowercase, any other non-ASCII character
    ``?``. An ASCII needle that matches case-insensitively has its trigrams in
    here, at the same positions (one byte per character keeps the adjacency)."""
    if not text.isascii():
        for letter, folded in ASCII_FOLDS.items():
            if letter in text:
                text = text.replace(letter, folded)
    # bytes.lower() touches A-Z only; encoding first keeps it to one byte a character.
    return text.encode("ascii", "replace").lower()


def _tables(seed: int, top: int) -> tuple[bytes, bytes, bytes]:
    # A fixed generator (not Python's random, whose algorithm may change): the
    # tables are part of the stored layout (VERSION).
    out = []
    state = seed
    for _ in range(3):
        row = bytearray()
        for _ in range(256):
            state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
            row.append((state >> 33) % top)
        out.append(bytes(row))
    return out[0], out[1], out[2]


#: Tabulation hashing of a trigram (a, b, c) to its Bloom position: the low byte is
#: LOW[0][a] ^ LOW[1][b] ^ LOW[2][c], the high three bits the same with HIGH.
LOW = _tables(0x6475636b, 256)
HIGH = _tables(0x626c6f6f, BLOOM_BITS // 256)


def _lookup(data: bytes, tables: tuple[bytes, bytes, bytes]) -> Any:
    """tables[0][a] ^ tables[1][b] ^ tables[2][c] of every trigram (a, b, c) of
    ``data``: each table looked up over the whole text by one bytes.translate, the
    XORs of the shifted results in numpy (uint8 arrays)."""
    n = len(data) - 2
    first, second, third = (np.frombuffer(data.translate(t), dtype=np.uint8)
                            for t in tables)
    return first[:n] ^ second[1:n + 1] ^ third[2:]


def _positions(data: bytes) -> Any:
    """The Bloom position of every trigram of ``data`` (canonical bytes, at least
    three), in order: a numpy array of uint16. Its filter is then one scatter
    (``text_bloom``): measured on imaptest's sample messages (~12 KB of text each),
    ~0.2 ms a text where big-integer XORs and a set of the positions took 1.8 ms;
    a delivery into a mailbox with a digest pays it, and a digest built for a large
    mailbox pays it for every message."""
    return (_lookup(data, LOW).astype(np.uint16)
            | (_lookup(data, HIGH).astype(np.uint16) << 8))


def _positions_of(data: bytes) -> set[int]:
    """Bloom positions of every trigram of ``data`` (canonical bytes)."""
    if len(data) < 3:
        return set()
    return set(np.unique(_positions(data)).tolist())


def text_positions(values: Iterable[str]) -> set[int] | None:
    """Bloom positions of the trigrams of ``values`` (None: too much text, every
    position). Trigrams do not span two values (a NUL between them is no
    character of a needle)."""
    data = _bloom_text(values)
    return None if data is None else _positions_of(data)


def _bloom_text(values: Iterable[str]) -> bytes | None:
    """The canonical bytes a message's filter is made of (None: too much text)."""
    values = list(values)
    if sum(len(v) for v in values) > MAX_BLOOM_TEXT:
        return None
    return canonical(SEPARATOR.join(values))


def needle_positions(needle: str) -> list[int] | None:
    """Bloom positions every match of ``needle`` has, or None when the filter cannot
    narrow it (not ASCII: a character outside it may match one of another
    normalization form, whose canonical byte differs; or too short).

    Under ``i;unicode-casemap`` (casemap.py) a needle's last character also matches
    the start of a precomposed one (``E`` in ``É``, canonical ``?``), so the
    trigrams are those of the needle without it: at least 4 characters."""
    if len(needle) < 4 or not needle.isascii() or SEPARATOR in needle:
        return None
    return sorted(_positions_of(canonical(needle[:-1])))


# -- writing -------------------------------------------------------------------------

def chunk_of(uid: int) -> int:
    """The chunk number of a UID."""
    return uid // SPAN


def _header_entry(hdr: list[dict[str, Any]]) -> dict[str, str] | None:
    values: dict[str, list[str]] = defaultdict(list)
    for h in hdr:
        key = HEADERS.get(h["k"])
        if key is not None:
            values[key].append(h["v"])
    entry = {k: SEPARATOR.join(v) for k, v in values.items()}
    if sum(len(v) for v in entry.values()) > MAX_ENTRY:
        return None
    return entry


@attrs.frozen
class Known:
    """A message's digest entry as another mailbox has it (COPY reuses it instead of
    hashing the text again)."""

    header: dict[str, str] | None
    renderings: dict[str, bytes]
    bloom: bytes


def prepare(doc: dict[str, Any]) -> Known:
    """The uid-independent part of a message document's entry (its text hashed):
    computed before a delivery's transaction, outside the user's lock."""
    hdr = doc.get("hdr") or []
    render = doc.get("render") or {}
    if sum(len(v) for v in render.values()) > MAX_ENTRY:
        render = {}
    return Known(_header_entry(hdr), dict(render), text_bloom(
        [*(h["v"] for h in hdr), doc.get("text") or ""]))


def entry_update(doc: dict[str, Any], known: Known | None = None
                 ) -> tuple[dict[str, Any], dict[str, int]]:
    """The ``$set`` fields and Bloom words (position -> mask) for one message
    document (fields ``_id``, ``uid``, ``size``, ``idate``, ``date``, ``kw``, ``flags``,
    ``modseq``, ``hdr``, ``text``, ``render``; not the last three when ``known`` is
    given)."""
    uid = int(doc["uid"])
    key = str(uid)
    fields: dict[str, Any] = {f"m.{key}": doc["_id"], f"z.{key}": int(doc["size"]),
                              f"d.{key}": doc["idate"], f"f.{key}": list(doc["flags"]),
                              f"q.{key}": int(doc["modseq"])}
    if doc.get("date") is not None:
        fields[f"s.{key}"] = doc["date"]
    bloom: bytes
    if known is None:
        known = prepare(doc)
    header, render, bloom = known.header, known.renderings, known.bloom
    if header is None:
        fields[f"hx.{key}"] = True
    else:
        for code, text in header.items():
            fields[f"h{code}.{key}"] = text
    for name, value in render.items():
        fields[f"R.{name}.{key}"] = value
    fields[f"p.{key}"] = Binary(bloom)
    bit = 1 << (uid % SPAN)
    words = {"L": bit}
    for flag in doc.get("kw") or ():
        words[f"F.{flag_key(flag)}"] = bit
    return fields, words


def text_bloom(values: Iterable[str]) -> bytes:
    """``bloom_bytes(text_positions(values))``, without the set between."""
    data = _bloom_text(values)
    if data is None:
        return bloom_bytes(None)
    bits = np.zeros(BLOOM_BITS, dtype=np.uint8)
    if len(data) >= 3:
        bits[_positions(data)] = 1
    # (Bit p of the little-endian bitmap, as bloom_bytes sets it.)
    return np.packbits(bits, bitorder="little").tobytes()


def bloom_bytes(positions: set[int] | None) -> bytes:
    """A message's Bloom filter (every bit for None: too much text to say)."""
    if positions is None:
        return b"\xff" * (BLOOM_BITS // 8)
    bits = bytearray(BLOOM_BITS // 8)
    for p in positions:  # bit p of the little-endian bitmap
        bits[p >> 3] |= 1 << (p & 7)
    return bytes(bits)


def flag_key(flag: str) -> str:
    """The field name of a flag's word (any keyword is a valid field name so)."""
    return flag.lower().encode("utf-8").hex()


def unsigned(word: int) -> int:
    """A stored word (BSON has signed 64-bit integers only) as 64 bits."""
    return word & ((1 << 64) - 1)


def flag_changes(database: Database, mailbox: ObjectId,
                 changes: Iterable[tuple[int, Iterable[str], Iterable[str], int]],
                 session: Any = None) -> None:
    """STORE's flag changes, (uid, old flags, new flags, new modseq), into the flag
    words and the entries' flags and modseqs (blocking, one round trip)."""
    ops = flag_change_ops(mailbox, changes)
    if ops:
        database.collection(COLLECTION).bulk_write(ops, ordered=True, session=session)


def flag_change_ops(mailbox: ObjectId,
                    changes: Iterable[tuple[int, Iterable[str], Iterable[str], int]],
                    namespace: str | None = None) -> list[UpdateOne]:
    """The updates of ``flag_changes``, in order (``namespace`` for a WriteBatch)."""
    set_: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    clear: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    entries: dict[int, dict[str, Any]] = defaultdict(dict)
    for uid, old, new, modseq in changes:
        new = list(new)
        entries[chunk_of(uid)].update({f"f.{uid}": new, f"q.{uid}": int(modseq)})
        before = {f.lower() for f in old}
        after = {f.lower() for f in new}
        bit = 1 << (uid % SPAN)
        for flag in after - before:
            set_[chunk_of(uid)][f"F.{flag_key(flag)}"] |= bit
        for flag in before - after:
            clear[chunk_of(uid)][f"F.{flag_key(flag)}"] |= bit
    ops = []
    for c in sorted(entries):
        ors, ands = set_.get(c, {}), clear.get(c, {})
        # One $bit operation per field: a field both set and cleared (STORE FLAGS
        # replacing them) takes a second update.
        first = {f: {"or": _signed(m)} for f, m in ors.items()}
        later: dict[str, dict[str, Int64]] = {}
        for f, m in ands.items():
            (later if f in first else first)[f] = {"and": _signed(~m & ((1 << 64) - 1))}
        update: dict[str, Any] = {"$set": entries[c]}
        if first:
            update["$bit"] = first
        ops.append(UpdateOne(_key(mailbox, META, c), update, upsert=True,
                             namespace=namespace))
        if later:
            ops.append(UpdateOne(_key(mailbox, META, c), {"$bit": later}, upsert=True,
                                 namespace=namespace))
    return ops


def _signed(word: int) -> Int64:
    return Int64(word - (1 << 64) if word >= 1 << 63 else word)


def known_entries(database: Database, mailbox: ObjectId, uids: list[int],
                  session: Any = None) -> dict[int, Known]:
    """The digest entries of ``uids`` in ``mailbox`` (those it has), for COPY."""
    if not uids:
        return {}
    wanted = set(uids)
    chunks = sorted({chunk_of(u) for u in wanted})
    out: dict[int, Known] = {}
    parts: dict[tuple[int, str], dict[str, Any]] = {}
    for doc in database.collection(COLLECTION).find(
            {"mailbox": mailbox, "c": {"$in": chunks}}, {"_id": 0, "L": 0, "F": 0},
            session=session):
        parts[(doc["c"], doc["k"])] = doc
    for c in chunks:
        meta = parts.get((c, META), {})
        head = parts.get((c, HEAD), {})
        blooms = parts.get((c, BLOOM), {}).get("p") or {}
        stored = {k[len(RENDER):]: doc.get("v") or {} for (cc, k), doc in parts.items()
                  if cc == c and k.startswith(RENDER)}
        big = head.get("hx") or {}
        for key in meta.get("m") or {}:
            uid = int(key)
            if uid in wanted:
                header = None if key in big else {
                    code: head[f"h{code}"][key] for code in HEADERS.values()
                    if key in head.get(f"h{code}", {})}
                bloom = blooms.get(key)
                if bloom is None:
                    continue  # (an older entry) built from the text instead
                out[uid] = Known(header, {n: v[key] for n, v in stored.items() if key in v},
                                 bytes(bloom))
    return out


def _part(field: str) -> tuple[str, str]:
    """(part, field in that part's document) of an entry field."""
    head, _, rest = field.partition(".")
    if head == "R":
        name, _, uid = rest.partition(".")
        return RENDER + name, f"v.{uid}"
    if head.startswith("h"):
        return HEAD, field
    if head == "p":
        return BLOOM, field
    return META, field


def _key(mailbox: ObjectId, part: str, c: int) -> dict[str, Any]:
    return {"mailbox": mailbox, "k": part, "c": c}


def updates(mailbox: ObjectId, docs: Iterable[dict[str, Any]],
            known: dict[int, Known] | None = None,
            namespace: str | None = None) -> list[UpdateOne]:
    """The upserts writing message documents' entries: one per chunk and part;
    ``known`` maps a document's ``_src`` UID (COPY: its entry in the source mailbox)
    or its UID (``prepare`` done beforehand) to what is already known of it."""
    sets: dict[tuple[int, str], dict[str, Any]] = defaultdict(dict)
    bits: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for doc in docs:
        c = chunk_of(int(doc["uid"]))
        fields, words = entry_update(doc, (known or {}).get(doc.get("_src", doc["uid"])))
        key = str(doc["uid"])
        for field, value in fields.items():
            part, name = _part(field)
            sets[(c, part)][name] = value
            if part.startswith(RENDER):
                # A rendering part repeats the message's id, size and date: a
                # first sync reads that one part only.
                sets[(c, part)].update({f"{f}.{key}": fields[f"{f}.{key}"]
                                        for f in ("m", "z", "d")})
        for name, mask in words.items():
            group = bits[(c, META)]
            group[name] = group.get(name, 0) | mask
    ops = []
    for c, part in sorted(set(sets) | set(bits)):
        update: dict[str, Any] = {}
        if sets.get((c, part)):
            update["$set"] = sets[(c, part)]
        if bits.get((c, part)):
            update["$bit"] = {f: {"or": _signed(m)} for f, m in bits[(c, part)].items()}
        ops.append(UpdateOne(_key(mailbox, part, c), update, upsert=True,
                             namespace=namespace))
    return ops


def rendering_updates(mailbox: ObjectId, docs: Iterable[dict[str, Any]],
                      renderings: dict[int, dict[str, bytes]]) -> list[UpdateOne]:
    """The upserts putting renderings made after delivery into the rendering parts
    (``docs``: the messages' ``_id``, ``uid``, ``size`` and ``idate``), so that the
    next read of those parts finds them; a message's renderings over MAX_ENTRY
    are left out, as at delivery."""
    sets: dict[tuple[int, str], dict[str, Any]] = defaultdict(dict)
    for doc in docs:
        uid = int(doc["uid"])
        made = renderings.get(uid) or {}
        if not made or sum(len(v) for v in made.values()) > MAX_ENTRY:
            continue
        key = str(uid)
        for name, value in made.items():
            group = sets[(chunk_of(uid), RENDER + name)]
            group.update({f"v.{key}": bytes(value), f"m.{key}": doc["_id"],
                          f"z.{key}": int(doc["size"]), f"d.{key}": doc["idate"]})
    return [UpdateOne(_key(mailbox, part, c), {"$set": fields}, upsert=True)
            for (c, part), fields in sorted(sets.items())]


def add(database: Database, mailbox: ObjectId, docs: Iterable[dict[str, Any]],
        session: Any = None, known: dict[int, Known] | None = None) -> None:
    """Write the entries of message documents of ``mailbox`` (blocking, one round
    trip; in the caller's transaction when ``session`` is given). ``known``: see
    ``updates``."""
    ops = updates(mailbox, docs, known)
    if ops:
        database.collection(COLLECTION).bulk_write(ops, ordered=False, session=session)


def remove(database: Database, mailbox: ObjectId, uids: Iterable[int],
           session: Any = None) -> None:
    """Remove the entries of expunged messages (blocking, one round trip). Their
    Bloom and flag bits stay: readers mask them with ``L``, and a UID is never
    reused."""
    ops = remove_ops(mailbox, uids)
    if ops:
        database.collection(COLLECTION).bulk_write(ops, ordered=False, session=session)


def remove_ops(mailbox: ObjectId, uids: Iterable[int],
               namespace: str | None = None) -> list[UpdateOne | UpdateMany]:
    """The updates of ``remove`` (``namespace`` for a WriteBatch)."""
    per_chunk: dict[int, list[int]] = defaultdict(list)
    for uid in uids:
        per_chunk[chunk_of(uid)].append(uid)
    ops: list[UpdateOne | UpdateMany] = []
    for c, members in sorted(per_chunk.items()):
        gone = 0
        for uid in members:
            gone |= 1 << (uid % SPAN)
        ops.append(UpdateOne(_key(mailbox, META, c), {
            "$unset": {f"{f}.{uid}": "" for uid in members
                       for f in ("m", "z", "d", "s", "f", "q")},
            "$bit": {"L": {"and": _signed(~gone & ((1 << 64) - 1))}}},
            namespace=namespace))
        ops.append(UpdateMany({"mailbox": mailbox, "k": {"$regex": f"^{re.escape(RENDER)}"},
                               "c": c},
                              {"$unset": {f"{f}.{uid}": "" for uid in members
                                          for f in ("m", "z", "d", "v")}},
                              namespace=namespace))
        ops.append(UpdateOne(_key(mailbox, BLOOM, c), {
            "$unset": {f"p.{uid}": "" for uid in members}}, namespace=namespace))
        ops.append(UpdateOne(_key(mailbox, HEAD, c), {
            "$unset": {f"{f}.{uid}": "" for uid in members
                       for f in ("hx", *(f"h{x}" for x in HEADERS.values()))}},
            namespace=namespace))
    return ops


def purge(database: Database, mailbox: ObjectId) -> None:
    """Drop a deleted mailbox's digest (blocking)."""
    database.collection(COLLECTION).delete_many({"mailbox": mailbox})


#: Fields a digest entry is built from.
SOURCE_PROJECTION = {"uid": 1, "size": 1, "idate": 1, "date": 1, "hdr": 1, "text": 1,
                     "cid": 1, "render": 1, "kw": 1, "flags": 1, "modseq": 1}


#: ``dg`` of a mailbox whose digest is being built (``prepare_build``): what it has
#: is in the current layout (deliveries since wrote their entries), the rest is
#: missing; readers go to the messages meanwhile (``pending``).
BUILDING = -VERSION
#: ``dg`` of a mailbox without a digest: a small one. Its readers read the messages
#: (a few hundred documents at most) and its writes leave the digest alone: that is
#: ~30% of a delivery's CPU here and ~45% of the database's (bench/README.md, "Mixed
#: load"), for mailboxes whose every-message reads are cheap anyway. A write that
#: brings it to DIGEST_FROM messages marks it BUILDING (``grows``), in its own
#: transaction, and writes its own entries; the background build adds the rest.
NONE = 0
#: Messages from which a mailbox has a digest. ``DUCK_DIGEST_FROM`` sets it (0:
#: every mailbox has one from its first message, as the test suite runs).
DIGEST_FROM = int(os.environ.get("DUCK_DIGEST_FROM", "128"))


def new_state() -> int:
    """``dg`` of a new mailbox."""
    return NONE if DIGEST_FROM > 0 else VERSION


def kept(box: dict[str, Any]) -> bool:
    """Whether a write to the mailbox maintains its digest, ``box`` its document as
    read in the write's transaction (every state but NONE: a digest built, being
    built, or of another layout that start-up rebuilds)."""
    return box.get("dg") != NONE


def grows(box: dict[str, Any]) -> bool:
    """Whether the write that left the mailbox ``box`` (its document after the
    write's counters) starts its digest: none yet, and DIGEST_FROM messages."""
    return box.get("dg") == NONE and int(box.get("count", 0)) >= max(DIGEST_FROM, 1)


def start_op(box: dict[str, Any], namespace: str) -> UpdateOne:
    """The write (into a WriteBatch) that marks ``box`` BUILDING; the caller then
    writes its messages' entries and, once committed, adds the mailbox to the
    database's ``digest_pending`` (the background build takes it from there)."""
    return UpdateOne({"_id": box["_id"], "dg": NONE}, {"$set": {"dg": BUILDING}},
                     namespace=namespace)


def new_entries(batch: WriteBatch, box: dict[str, Any], docs: list[dict[str, Any]],
                known: Callable[[], dict[int, Known] | None]) -> bool:
    """Into ``batch``, the entries of new messages ``docs`` of the mailbox ``box``
    (its document after the write's counters) when it keeps a digest, and the start
    of its digest when this write makes it big enough (``grows``); whether it did
    start it (the caller adds the mailbox to ``digest_pending`` once committed).
    ``known``: what is already hashed of them (``updates``), asked only if needed."""
    start = grows(box)
    if start:
        batch.extend([start_op(box, batch.namespace(schema.MAILBOXES))])
    if start or kept(box):
        batch.extend(updates(box["_id"], docs, known(), batch.namespace(COLLECTION)))
    return start


def usable(box: dict[str, Any] | None) -> bool:
    """Whether readers may answer from the digest of the mailbox ``box`` (its
    document as read): built in the current layout."""
    return box is not None and box.get("dg") == VERSION
#: Messages one build step reads (one transaction; their entries are small).
BUILD_BATCH = 128


def prepare_build(database: Database) -> list[ObjectId]:
    """At start-up, before serving (blocking, cheap: no message is read): drop the
    digest of every mailbox with another layout, mark it and every mailbox without
    one BUILDING; the ids of all mailboxes whose digest is not built.

    A mailbox already BUILDING (a process that died mid-build, or another starting
    beside this one) keeps what it has: its entries are current.
    """
    boxes = database.collection(schema.MAILBOXES)
    for box in list(boxes.find({"dg": {"$nin": [VERSION, BUILDING, NONE]}},
                               {"_id": 1, "dg": 1})):
        if "dg" in box:  # another layout: start over
            purge(database, box["_id"])
        boxes.update_one({"_id": box["_id"]}, {"$set": {"dg": BUILDING}})
    return [b["_id"] for b in boxes.find({"dg": BUILDING}, {"_id": 1}).sort("_id", 1)]


def build_step(database: Database, mailbox: ObjectId, after: int,
               batch: int = BUILD_BATCH) -> int | None:
    """Write the entries of the mailbox's next ``batch`` messages above UID ``after``;
    the last UID done, or None when there were none left (the digest is then marked
    built). Blocking.

    The read and the writes are one transaction: an EXPUNGE of one of these
    messages either committed before it (the message is not read) or conflicts
    with its writes to the same digest documents (and one of them is retried), so
    no entry is left for a message expunged meanwhile.
    """
    messages = database.collection(schema.MESSAGES)

    def body(session: Any) -> int | None:
        box = database.collection(schema.MAILBOXES).find_one(
            {"_id": mailbox}, {"dg": 1}, session=session)
        if box is None or box.get("dg") != BUILDING:
            return None  # deleted, built by another process, or never started
        docs = list(messages.find({"mailbox": mailbox, "uid": {"$gt": after}},
                                  SOURCE_PROJECTION, session=session)
                    .sort("uid", 1).limit(batch))
        if not docs:
            return None
        add(database, mailbox, contents.load(database, docs, ("text", "render"), session),
            session)
        return int(docs[-1]["uid"])

    last: int | None = database.in_transaction(body)
    if last is None:
        database.collection(schema.MAILBOXES).update_one(
            {"_id": mailbox, "dg": BUILDING}, {"$set": {"dg": VERSION}})
        database.digest_pending.discard(mailbox)
    return last


def pending(database: Database, mailbox: ObjectId) -> bool:
    """Whether the mailbox's digest may be incomplete (being built): its readers
    then read the messages. Known without a query: the set is filled at start-up
    and only shrinks (a new mailbox starts with a built, empty digest)."""
    return bool(database.digest_pending) and mailbox in database.digest_pending


def backfill(database: Database, batch: int = BUILD_BATCH) -> int:
    """``prepare_build`` and every build, now (blocking); how many mailboxes were
    built. Idempotent and safe beside deliveries (they write their own entries)."""
    ids = prepare_build(database)
    database.digest_pending.update(ids)
    for mailbox in ids:
        after = 0
        while (last := build_step(database, mailbox, after, batch)) is not None:
            after = last
    return len(ids)


# -- reading -------------------------------------------------------------------------

#: Bytes one reply of a digest scan aims at: the embedded server does not split a
#: reply at 16 MB as MongoDB does, and refuses one over 48 MB (measured: a 100k
#: first sync asked as one batch was 48.2 MB). A query per ~16 MB is what getMore
#: batches cost on MongoDB.
REPLY_TARGET = 16 * 1024 * 1024
#: Expected bytes per chunk of each part, for a scan's first query.
ESTIMATE = {META: 4096, HEAD: 16384, BLOOM: 20000}
ESTIMATE_RENDER = 65536


def scan(database: Database, mailbox: ObjectId, part: str, lo: int, hi: int,
         projection: dict[str, Any] | None = None, *,
         session: Any = None) -> Iterator[list[dict[str, Any]]]:
    """The ``part`` documents of the chunks covering UIDs ``lo..hi``, decoded, a
    reply at a time (blocking iterator; each step is one query on the index;
    ``session``: read in that session's transaction).

    Each query asks for a window of chunks sized from the previous reply so that a
    reply stays near REPLY_TARGET whatever the documents hold; a reply the driver
    refuses as too large is asked again in halves.
    """
    coll = database.collection(COLLECTION)
    codec = coll.codec_options
    first, last = chunk_of(lo), chunk_of(hi)
    per_chunk = ESTIMATE.get(part, ESTIMATE_RENDER)
    fields = {"_id": 0, "c": 1, **(projection or {})}
    while first <= last:
        window = max(1, min(last - first + 1, REPLY_TARGET // per_chunk))
        try:
            raw = b"".join(coll.find_raw_batches(
                {"mailbox": mailbox, "k": part, "c": {"$gte": first,
                                                      "$lt": first + window}},
                fields, batch_size=window + 1, session=session))
        except pymongo.errors.ProtocolError:
            if window == 1:
                raise
            per_chunk = max(per_chunk * 2, REPLY_TARGET // (window // 2))
            continue
        docs = bson.decode_all(raw, codec)
        if docs:
            per_chunk = max(64, len(raw) // len(docs))
            yield docs
        first += window
