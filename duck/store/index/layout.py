"""The message document as read: its fields, their indexes, and stored segments decoded.

The write side builds it (``duck/store/mail/documents.py``); every reader relies on the
layout described here.

Fields (short names keep thousands of documents per FETCH small):

- ``user``, ``mailbox``, ``uid`` (unique per mailbox), ``modseq``;
- ``flags``/``kw``/``seen``/``deleted``/``flagged`` (``duck/store/mail/flags.py``);
- ``idate`` (INTERNALDATE), ``sdate`` (SAVEDATE, RFC 8514), ``size`` (exact octets);
- ``segs``: the stored bytes as runs ``{o, n, d}`` (inline skeleton) or
  ``{o, n, h, f}`` (body with SHA-256 ``h`` in GridFS file ``f``), in order; kept,
  with ``text``, in the message's contents document named by ``cid``
  (``contents.py``), but in documents stored before that layout;
- ``bodies``: the distinct hashes referenced (one reference per message);
- ``root`` (MIME part tree with offsets), ``env`` (envelope), ``hdr`` (top-level
  header fields ``{k, v}`` for SEARCH), ``text`` (decoded text for SEARCH),
  ``g``/``gv`` (SEARCH's substring index and its version, ``textindex.py``),
  ``date`` (the Date: header's wall-clock time, kept as if UTC, so that its day is
  the header's own) and ``dtz`` (its zone offset, minutes), ``msgid``, ``refs``
  (thread ancestors), ``subject``;
- ``emailid``/``threadid`` (RFC 8474 OBJECTID).
"""

from __future__ import annotations

from typing import Any

from ..engine import schema
from ..models import Segment

schema.register(
    schema.MESSAGES,
    [
        schema.IndexModel([("mailbox", schema.ASCENDING), ("uid", schema.ASCENDING)],
                          unique=True, name="mailbox_uid"),
        schema.IndexModel([("user", schema.ASCENDING), ("msgid", schema.ASCENDING)],
                          name="user_msgid"),
        # CONDSTORE's CHANGEDSINCE and SEARCH MODSEQ (a prefilter: query.py): a
        # client's resync asks it of every mailbox, however large.
        schema.IndexModel([("mailbox", schema.ASCENDING), ("modseq", schema.ASCENDING)],
                          name="mailbox_modseq"),
        # EXPUNGE's read of the \Deleted messages (a filter with a field outside
        # every index is a collection scan on the embedded engine).
        schema.IndexModel([("mailbox", schema.ASCENDING), ("deleted", schema.ASCENDING)],
                          name="mailbox_deleted"),
    ],
)
# SEARCH by flag, date or size has no index of its own. Each cost every APPEND,
# EXPUNGE and (flags) STORE an index entry: without those six and (user, emailid),
# imaptest's load ran +13% commands/s, the engine spending 19% less CPU per command
# and duck 10% less (five interleaved pairs of bench/ab_imaptest.sh,
# docs/architecture.md). A large mailbox's digest answers those criteria
# (digestsearch.py); in a small one, and combined with what the digest does not
# answer, they are checked on the candidates of the mailbox's own index (query.py's
# prefilter), never by a scan of the collection. And (user, emailid): no query looks
# a message up by its EMAILID across mailboxes (SEARCH EMAILID is one mailbox's).
schema.retire(schema.MESSAGES, [*(f"mailbox_{field}" for field in
                                  ("kw", "seen", "idate", "sdate", "date", "size")),
                                "user_emailid"])


def segment_from_bson(doc: dict[str, Any]) -> Segment:
    """A stored segment."""
    if "d" in doc:
        return Segment(int(doc["o"]), int(doc["n"]), data=bytes(doc["d"]))
    return Segment(int(doc["o"]), int(doc["n"]), sha256=doc["h"], file_id=str(doc["f"]))
