"""A message's contents: what never changes of it and nothing but FETCH, SEARCH text
and copies read, in a document of their own.

Of a message document, ``segs`` (the bytes, or their skeleton) and ``text`` (the
decoded text SEARCH BODY/TEXT matches) are most of its size (~28 of ~33 KB for
imaptest's messages) and never change; flags, modseq and the rest change often. The
embedded engine reads and writes a document whole: a STORE on a message rewrote its
bytes, and an EXPUNGE read them to archive the message. So they live here, one
document per stored copy, keyed by the message document's ``cid``. So do the part
tree (``root``), the envelope (``env``) and the renderings (``render``): ~2.3 KB of
the ~3.7 KB the message document of an imaptest message still had, which a STORE
rewrote and an EXPUNGE copied into the archive. Measured under imaptest's load
(``bench/ab_imaptest.sh``, interleaved pairs): more commands/s and less of the
database's CPU per command (docs/architecture.md, "Facts about the embedded
database (measured)"). Their readers ask for them here (``load``): a FETCH of
what the record cache does not hold (fetch.py, with the bytes when it reads those
too), the digest's build, push events' envelopes, the archive's listing.

- ``_id`` (the message's ``cid``), ``user`` (whose it is: backups and repairs can
  tell), ``segs`` and ``text`` (layout.py describes both), and ``rec``: ``root``,
  ``env`` and ``render`` as one BSON document in a binary field (``BLOB``). The
  engine then holds them as one opaque value: stored as fields, their nested
  documents made a SEARCH BODY that matches most messages ~1.6x slower per window of
  contents (the engine builds every matching document whole; measured with
  ``$match`` on 4,000 stored contents documents, 700 ms nested against 450 ms as a
  blob and 430 ms without them), and the 100k-message ``body_common`` of
  ``python -m bench --scenarios search`` 29 s to 36-40 s;
- one referrer at a time: the message document, or its archive document after an
  EXPUNGE (``cid`` moves with the document: archive.py copies every field). COPY and
  MOVE write a new one for each copy (as they wrote the whole message before), so a
  removal deletes its referrer's contents and never counts references;
- written in the same batch as the message document; deleted with it when it goes
  for good (an EXPUNGE without the archive, a MOVE's originals, a purge).

Documents written before this layout carry these fields themselves (all of them and
no ``cid``, or ``root``, ``env`` and ``render`` beside a ``cid``): every reader takes a
field from the message document when it has it (``load``), so they need no
migration. Backups carry whole message documents as before (backup.py puts the
contents back in).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import bson

from ..engine import schema

COLLECTION = "contents"
#: The message document's fields kept here.
FIELDS = ("segs", "text", "root", "env", "render")
#: Of those, the ones kept together in ``BLOB``, as one BSON document.
PACKED = ("root", "env", "render")
BLOB = "rec"

# No index but ``_id``: every reader and every removal finds a contents document by
# its referrer's ``cid`` (a user's go with their messages' and archive's). The
# ``user`` index of earlier versions, which no query used, cost every APPEND an
# entry (measured with two other such indexes: the three, +6% commands/s under
# imaptest, docs/architecture.md).
schema.retire(COLLECTION, ["user"])


def split(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A whole message document (with ``segs`` and ``text``) as the message document
    stored (with ``cid`` instead) and its contents document."""
    cid = doc["_id"]
    message = {k: v for k, v in doc.items() if k not in FIELDS}
    message["cid"] = cid
    kept = {"_id": cid, "user": doc["user"]}
    kept.update((k, doc[k]) for k in FIELDS if k in doc and k not in PACKED)
    packed = {k: doc[k] for k in PACKED if k in doc}
    if packed:
        kept[BLOB] = bson.encode(packed)
    return message, kept


def insert(batch: Any, docs: list[dict[str, Any]]) -> None:
    """Add the inserts of whole message documents to ``batch`` (a WriteBatch): each
    as its message document and its contents document (``split``)."""
    split_docs = [split(d) for d in docs]
    batch.insert(schema.MESSAGES, [m for m, _ in split_docs])
    batch.insert(COLLECTION, [c for _, c in split_docs])


def remove(batch: Any, docs: Iterable[dict[str, Any]]) -> None:
    """Add to ``batch`` the delete of the contents of message documents (read with
    ``cid``) that go for good."""
    if removed := cids(docs):
        batch.delete(COLLECTION, {"_id": {"$in": removed}})


def cids(docs: Iterable[dict[str, Any]]) -> list[Any]:
    """The contents ids of message (or archive) documents that have one."""
    return [d["cid"] for d in docs if d.get("cid") is not None]


def load(database: Any, docs: list[dict[str, Any]], fields: Iterable[str] = FIELDS,
         session: Any = None) -> list[dict[str, Any]]:
    """``docs`` (read with ``cid`` in their projection) with ``fields`` put back from
    their contents where they have a ``cid`` and not the field: one query for all
    (blocking). A field may name a part of one (``render.imap_env1``: a projection),
    and then only that part is put back; fields not kept here are ignored (a whole
    message projection may be passed). A document whose contents are gone
    (removed since it was read) is left without them."""
    parts: dict[str, set[str] | None] = {}  # top field -> its parts (None: whole)
    for f in fields:
        top, _, part = f.partition(".")
        if top in FIELDS:
            if not part:
                parts[top] = None
            elif (known := parts.setdefault(top, set())) is not None:
                known.add(part)
    missing = [d for d in docs if d.get("cid") is not None
               and any(t not in d for t in parts)]
    if not missing:
        return docs
    projection = {t: 1 for t in parts if t not in PACKED}
    if any(t in PACKED for t in parts):
        projection[BLOB] = 1
    collection = database.collection(COLLECTION)
    found = {c["_id"]: c for c in collection.find(
        {"_id": {"$in": [d["cid"] for d in missing]}}, projection, session=session)}
    for d in missing:
        c = found.get(d["cid"])
        if c is None:
            continue
        if BLOB in c:
            c.update(bson.decode(c.pop(BLOB), collection.codec_options))
        for top, wanted_parts in parts.items():
            # (What the message document has is its own: written before this layout.)
            if top in c and top not in d:
                value = c[top]
                if wanted_parts is not None and isinstance(value, dict):
                    value = {k: v for k, v in value.items() if k in wanted_parts}
                d[top] = value
    return docs
