"""A substring index of our own for SEARCH: hashed, case-folded character trigrams.

The embedded database has no ``$text`` (and ``$text`` matches words, not the
substrings RFC 3501 §6.4.4 asks for), so each message document carries ``g``: the
distinct trigrams of its searchable text, case-folded and hashed to 31-bit ints,
under the compound index ``(mailbox, g)``. A message that contains a needle
contains every trigram of the needle, so one of the needle's trigrams is a
*prefilter*: an index lookup that returns a superset of the matches. The exact,
case-insensitive check runs on those candidates only (query.py).

What goes into ``g`` (one array, so one index and one index scan per lookup):

- the trigrams of the body text (``text``: every text part, decoded) and of every
  header value, untagged: BODY, TEXT and HEADER <any name> look these up;
- the trigrams of From/To/Cc/Bcc/Subject (and the address-like fields) again,
  *tagged* with the field name: FROM "alice" is then not diluted by messages that
  merely mention alice in their body or To;
- one presence marker per header name: HEADER name "" and short needles look for
  the field's existence;
- ``SATURATED`` instead of all of the above when a message has more than
  ``MAX_GRAMS`` distinct grams (very long texts): such a message is a candidate
  for every lookup, so results stay exact and only its own check costs more.

Trigrams never span two header values or a header value and the body, because
the exact check never does either.

Case folding must merge every pair of characters the database's case-insensitive
regex treats as equal (else the prefilter would drop a true match). The engines
use Unicode simple case folding (Rust ``regex``, PCRE) or ``lower()`` per
character (Python ``re``); ``_FOLD`` maps each character to one representative of
the closure of lower/upper/casefold (first character of multi-character results),
which merges at least as much. Over-merging only costs selectivity.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from ..engine import schema
from . import casemap, contents

#: Whether deliveries store grams and SEARCH uses them. Off by default: on the
#: embedded Rust engine the multikey entries (~700 per message) made APPEND ~2.3x
#: slower and COPY 12-190x slower, with stalls over a minute under cache pressure
#: (256 MB cache; measured with COPY of 400 messages: 0.33 s without grams, 4-64 s
#: with). Without it SEARCH substrings scan the mailbox (correct, slower). A process-
#: wide deployment choice (``search_index`` in the configuration), set at start-up.
ENABLED = False


def configure(enabled: bool) -> None:
    """Turn the trigram index on or off for this process (at start-up, before the
    store opens: its index is made, or dropped, then)."""
    global ENABLED
    ENABLED = enabled


def _enabled() -> bool:
    return ENABLED


# (mailbox, g): SEARCH's substring prefilter. Only while the index is on: every
# message written pays for an entry, a null one without grams.
schema.register(
    schema.MESSAGES,
    [schema.IndexModel([("mailbox", schema.ASCENDING), ("g", schema.ASCENDING)],
                       name="mailbox_g")],
    when=_enabled,
)


#: Trigrams: shorter needles cannot use the index (see ``needle_grams``).
N = 3
#: Messages with more distinct grams than this store ``SATURATED`` instead.
MAX_GRAMS = 20000
#: Marker of a message whose grams were not stored: always a candidate.
SATURATED = -1
#: Header fields whose trigrams are also stored tagged with the field's name.
TAGGED = frozenset({"from", "to", "cc", "bcc", "subject", "reply-to", "sender"})
#: Version of the gram scheme stored in ``gv``; documents with another (or none)
#: are rebuilt by ``backfill`` and, until then, are candidates for every lookup.
VERSION = 1

_MASK = 0x7FFFFFFF
#: Highest code point scanned for case mappings (no cased letters above it).
_MAX_CASED = 0x1F000


@functools.cache
def _fold_table() -> dict[int, str]:
    """Code point -> representative of its case-equivalence class (non-trivial only)."""
    parent: dict[str, str] = {}

    def find(c: str) -> str:
        root = c
        while parent.get(root, root) != root:
            root = parent[root]
        while c != root:
            parent[c], c = root, parent[c]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            # The smaller code point represents the class (ASCII stays itself).
            if ord(ra) < ord(rb):
                parent[rb] = ra
            else:
                parent[ra] = rb

    for cp in range(_MAX_CASED):
        c = chr(cp)
        for mapped in (c.lower(), c.upper(), c.casefold()):
            if mapped and mapped[0] != c:
                union(c, mapped[0])
    table = {ord(c): find(c) for c in list(parent)}
    return {cp: rep for cp, rep in table.items() if chr(cp) != rep}


def fold(text: str) -> str:
    """``text`` with every character replaced by its case-class representative."""
    return text.translate(_fold_table())


def _hash(gram: str, tag: str = "") -> int:
    """A stable 31-bit hash (FNV-1a over code points; Python's hash() is salted)."""
    h = 0x811C9DC5
    for ch in tag + "\x00" + gram if tag else gram:
        h = ((h ^ ord(ch)) * 0x01000193) & 0xFFFFFFFF
    return h & _MASK


def _trigrams(folded: str) -> set[str]:
    return {folded[i:i + N] for i in range(len(folded) - N + 1)}


def presence(name: str) -> int:
    """The gram saying "this message has a header field called ``name``"."""
    return _hash("", "\x01" + name.lower())


def document_grams(headers: Iterable[tuple[str, str]], text: str) -> list[int]:
    """The ``g`` array of a message: its grams, sorted, or ``[SATURATED]``."""
    plain: set[str] = _trigrams(fold(text))
    tagged: set[tuple[str, str]] = set()
    names: set[str] = set()
    for name, value in headers:
        name = name.lower()
        names.add(name)
        grams = _trigrams(fold(value))
        plain |= grams
        if name in TAGGED:
            tagged.update((name, g) for g in grams)
        if len(plain) + len(tagged) > MAX_GRAMS:
            return [SATURATED]
    out = {_hash(g) for g in plain}
    out.update(_hash(g, t) for t, g in tagged)
    out.update(presence(n) for n in names)
    if len(out) > MAX_GRAMS:
        return [SATURATED]
    return sorted(out)


#: Rough frequency rank of characters in mail text (lower = rarer). A needle's
#: rarest-looking trigram is the one looked up, since only one can use the index.
_COMMON = " etaoinsrhldcumfpgwybvk.,-@:/0123456789>=\n"


def _rarity(gram: str) -> int:
    score = 0
    # Folded grams are upper case (the smallest code point represents a class).
    for ch in gram.lower():
        i = _COMMON.find(ch)
        score += (len(_COMMON) - i) if i >= 0 else 0
    return score


def needle_grams(needle: str, tag: str = "") -> list[int]:
    """The hashed trigrams of ``needle``, likeliest-rarest first; [] if it has none
    that every match holds.

    SEARCH compares by ``i;unicode-casemap`` (casemap.py), under which a text may
    write the needle's accented letters precomposed or not, and its last letter
    may begin an accented one (``E`` in ``É``): the trigrams are taken from the runs
    every match writes one character for one (``casemap.fixed_runs``), where each
    character the text may hold folds alike. A needle without such a run of ``N``
    has none: the caller falls back to a scan with the exact check (or to a
    presence marker for header fields).
    """
    # (Cut where the characters a text may hold fold apart: no trigram across them.)
    grams: set[str] = set()
    for piece in casemap.steady_pieces(needle, fold):
        grams |= _trigrams(fold(piece))
    ordered = sorted(grams, key=lambda g: (_rarity(g), g))
    return [_hash(g, tag) for g in ordered]


def backfill_sync(database: Any, batch: int = 200) -> int:
    """Compute ``g`` for the message documents of ``database`` (a store Database)
    stored before this index version (blocking).

    Returns how many were updated. Safe to run while mail flows: a document is
    rewritten only if its ``gv`` is still outdated, and until then query.py's
    prefilter matches it anyway (a missing ``g`` is null in the index). Rewrites
    ``g`` in place, which is fine: ``(mailbox, g)`` is not a unique index.
    """
    from pymongo import UpdateOne

    messages = database.collection(schema.MESSAGES)
    done = 0
    while True:
        # (A message's text is in its contents document: contents.py.)
        docs = contents.load(database, list(messages.find(
            {"gv": {"$ne": VERSION}}, {"hdr": 1, "text": 1, "cid": 1}).limit(batch)),
            ("text",))
        if not docs:
            return done
        ops = [
            UpdateOne({"_id": d["_id"], "gv": {"$ne": VERSION}}, {"$set": {
                "g": document_grams(((h["k"], h["v"]) for h in d.get("hdr", ())),
                                    d.get("text", "")),
                "gv": VERSION,
            }})
            for d in docs
        ]
        messages.bulk_write(ops, ordered=False)
        done += len(ops)
