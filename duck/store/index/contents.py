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
  tell), ``segs``, ``text``, ``root``, ``env`` and ``render`` (layout.py describes
  the first two);
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

from ..engine import schema

COLLECTION = "contents"
#: The message document's fields kept here.
FIELDS = ("segs", "text", "root", "env", "render")

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
    kept.update((k, doc[k]) for k in FIELDS if k in doc)
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
    (blocking). A field may name a part of one (``render.imap_env1``: a projection).
    A document whose contents are gone (removed since it was read) is left without
    them."""
    wanted = [f for f in fields if f.split(".", 1)[0] in FIELDS]
    tops = {f.split(".", 1)[0] for f in wanted}
    missing = [d for d in docs if d.get("cid") is not None
               and any(t not in d for t in tops)]
    if not missing:
        return docs
    found = {c["_id"]: c for c in database.collection(COLLECTION).find(
        {"_id": {"$in": [d["cid"] for d in missing]}}, dict.fromkeys(wanted, 1),
        session=session)}
    for d in missing:
        c = found.get(d["cid"])
        if c is not None:
            # (What the message document has is its own: written before this layout.)
            d.update((k, c[k]) for k in tops if k in c and k not in d)
    return docs


def wanted(projection: Iterable[str]) -> list[str]:
    """The fields (or parts of fields) of a message projection kept here."""
    return [f for f in projection if f.split(".", 1)[0] in FIELDS]
