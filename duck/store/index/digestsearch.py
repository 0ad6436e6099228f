"""SEARCH criteria answered or narrowed from the mailbox digest (digest.py).

A substring criterion over the whole mailbox read from ``messages`` is a scan (~0.3
ms a message on the embedded engine). From the digest, a query returns 64 messages
per document:

- FROM/TO/CC/BCC/SUBJECT and HEADER of those fields are decided here, exactly: the
  digest keeps their decoded values, and the check is the same escaped,
  case-insensitive pattern the ``$regex`` of query.py is;
- BODY, TEXT and HEADER of other fields get *candidates* from the digest's Bloom
  filters of text trigrams; ``messages`` then checks only those (``uid $in``, an
  index scan, then the exact ``$regex``);
- flags (system flags and keywords, from per-flag words), sizes, dates and
  OLDER/YOUNGER are answered here when the digest answers the whole query (with
  header substrings, UID sets and their AND/OR/NOT): a SEARCH UNSEEN of 100k messages
  reads ~1,600 small documents instead of returning tens of thousands of
  ``messages``. Combined with anything else they are left to the exact filter, on
  the candidates of the other criteria (they have no index of their own: layout.py).

``resolve`` returns the query with each such criterion replaced by a ``UidSet`` (or
``UidSet AND criterion`` for candidates), which query.py compiles as an indexed
``uid $in``; ``evaluate`` answers a resolved query made only of UID sets without
asking the database again.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

import attrs
from bson import ObjectId

from ..engine import schema
from ..engine.database import Database
from . import casemap, digest
from .query import (
    Address,
    Age,
    All,
    And,
    Body,
    Date,
    Flag,
    Header,
    Not,
    Or,
    Query,
    Size,
    Subject,
    Text,
    Uids,
    UidSet,
    compile_query,
    leaves,
    map_leaves,
)

#: Highest UID (RFC 3501: a 32-bit number).
UID_MAX = 2**32 - 1


@attrs.frozen
class _Exact:
    """A header criterion the digest decides (``value`` empty: the field exists)."""

    key: str
    value: str


@attrs.frozen
class _Bloom:
    """A criterion the Bloom filter narrows to candidates."""

    positions: tuple[int, ...]


@attrs.frozen
class _Flag:
    """A flag criterion: the flag's word (``present``: set, else clear)."""

    field: str
    present: bool


@attrs.frozen
class _Value:
    """A size or date criterion: bounds on one of the digest's per-message values."""

    field: str
    bounds: tuple[tuple[str, Any], ...]

    def test(self, value: Any) -> bool:
        """Whether ``value`` is within the bounds."""
        return all(_COMPARE[op](value, bound) for op, bound in self.bounds)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
#: Document field -> digest field.
_VALUE_FIELDS = {"size": "z", "idate": "d", "date": "s"}

#: What the digest answers (_Exact, _Flag, _Value) or narrows (_Bloom).
Plan = _Exact | _Bloom | _Flag | _Value


def _plan(leaf: Query) -> Plan | None:
    match leaf:
        case Size() | Age() | Date(field="internal" | "sent"):
            ((name, cond),) = compile_query(leaf).items()
            return _Value(_VALUE_FIELDS[name], tuple(sorted(cond.items())))
        case Flag(flag=flag, present=present):
            return _Flag(f"F.{digest.flag_key(flag)}", present)
        case Address(field=field, value=value):
            return _plan(Header(field, value))
        case Subject(value=value):
            return _plan(Header("subject", value))
        case Header(name=name, value=value):
            key = digest.HEADERS.get(name.lower())
            if key is not None and digest.SEPARATOR not in value:
                return _Exact(key, value)
            positions = digest.needle_positions(value) if value else None
            return _Bloom(tuple(positions)) if positions else None
        case Body(value=value) | Text(value=value):
            positions = digest.needle_positions(value)
            return _Bloom(tuple(positions)) if positions else None
    return None


def plans(query: Query) -> dict[Query, Plan]:
    """The criteria of ``query`` the digest can answer or narrow.

    Flags, sizes and dates are answered from the digest only when it answers the
    whole query (with UID criteria): otherwise the exact filter checks them on the
    candidates of the other criteria, which costs less than a long ``uid $in``.
    """
    found: dict[Query, Plan] = {}
    local = True
    for leaf in leaves(query):
        plan = _plan(leaf)
        if plan is not None:
            found[leaf] = plan
        local = local and (isinstance(plan, _Exact | _Flag | _Value)
                           or isinstance(leaf, All | Uids | UidSet))
    if not local:
        found = {leaf: p for leaf, p in found.items() if not isinstance(p, _Flag | _Value)}
    return found


@attrs.frozen
class Resolved:
    """A query with digest answers substituted, and the live UIDs when known."""

    query: Query
    #: Every message of the mailbox (None when the digest query did not read them).
    universe: frozenset[int] | None
    #: The mailbox's highest assigned UID, when it was read.
    top: int | None = None


def resolve(database: Database, mailbox: ObjectId, query: Query) -> Resolved:
    """``query`` with the digest's answers substituted (blocking). No query when the
    digest serves no criterion; else the mailbox's UIDNEXT, then a query per ~16 MB of
    each part read (the small per-message part always, for which messages exist;
    header values or Bloom words when asked)."""
    found = plans(query)
    if not found or digest.pending(database, mailbox):  # (being built: messages only)
        return Resolved(query, None)
    exact = {leaf: p for leaf, p in found.items() if isinstance(p, _Exact)}
    bloom = {leaf: p for leaf, p in found.items() if isinstance(p, _Bloom)}
    flags = {leaf: p for leaf, p in found.items() if isinstance(p, _Flag)}
    values = {leaf: p for leaf, p in found.items() if isinstance(p, _Value)}
    box = database.collection(schema.MAILBOXES).find_one({"_id": mailbox},
                                                          {"uid_next": 1, "dg": 1})
    if box is not None and not digest.usable(box):
        # No digest (a small mailbox) or one being built by another process.
        return Resolved(query, None)
    top = int(box["uid_next"]) - 1 if box else 0
    # (The database's $regex for the same criterion: query.py.)
    patterns = {leaf: re.compile(casemap.substring_pattern(p.value))
                for leaf, p in exact.items() if p.value}
    matched: dict[Query, set[int]] = {leaf: set() for leaf in found}
    unknown: set[int] = set()
    universe: set[int] = set()
    lives: dict[int, int] = {}
    projection: dict[str, Any] = {"L": 1}
    projection.update({p.field: 1 for p in flags.values()})
    projection.update({p.field: 1 for p in values.values()})
    for docs in digest.scan(database, mailbox, digest.META, 0, top, projection):
        for doc in docs:
            c = int(doc["c"])
            base = c * digest.SPAN
            live = lives[c] = digest.unsigned(doc.get("L") or 0)
            universe.update(_members(base, live))
            for leaf, f in flags.items():
                word = digest.unsigned(_get(doc, f.field) or 0)
                matched[leaf].update(_members(base, live & (word if f.present else ~word)))
            for leaf, v in values.items():
                test = v.test
                matched[leaf].update(int(k) for k, x in (doc.get(v.field) or {}).items()
                                     if live >> (int(k) % digest.SPAN) & 1 and test(x))

    def alive(uid: int) -> bool:
        return bool(lives.get(uid // digest.SPAN, 0) >> (uid % digest.SPAN) & 1)

    if exact:
        projection = {"hx": 1, **{f"h{p.key}": 1 for p in exact.values()}}
        for docs in digest.scan(database, mailbox, digest.HEAD, 0, top, projection):
            for doc in docs:
                unknown.update(u for u in map(int, doc.get("hx") or {}) if alive(u))
                for leaf, e in exact.items():
                    pattern = patterns.get(leaf)
                    hits = matched[leaf]
                    for key, value in (doc.get(f"h{e.key}") or {}).items():
                        if pattern is None or pattern.search(value):
                            uid = int(key)
                            if alive(uid):
                                hits.add(uid)
    if bloom:
        masks = {leaf: sum(1 << q for q in b.positions) for leaf, b in bloom.items()}
        for docs in digest.scan(database, mailbox, digest.BLOOM, 0, top, {"p": 1}):
            for doc in docs:
                for key, stored in (doc.get("p") or {}).items():
                    uid = int(key)
                    if not alive(uid):
                        continue
                    filt = int.from_bytes(stored, "little")
                    for leaf, mask in masks.items():
                        if filt & mask == mask:
                            matched[leaf].add(uid)

    def substitute(node: Query) -> Query:
        if node in flags or node in values:
            return UidSet(frozenset(matched[node]))
        if node in exact:
            hits = UidSet(frozenset(matched[node]))
            if unknown:  # entries too large for the digest: messages decides them
                return Or((hits, And((UidSet(frozenset(unknown)), node))))
            return hits
        if node in bloom:
            return And((UidSet(frozenset(matched[node])), node))
        return node

    return Resolved(map_leaves(query, substitute), frozenset(universe), top)


def _members(base: int, word: int) -> list[int]:
    """The UIDs whose bits are set in a chunk's word."""
    out = []
    word &= (1 << 64) - 1
    while word:
        low = word & -word
        out.append(base + low.bit_length() - 1)
        word ^= low
    return out


def _get(doc: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)  # type: ignore[assignment]
    return doc


def evaluate(query: Query, universe: frozenset[int]) -> set[int] | None:
    """The matches of a query made only of UID criteria (None: it needs the database)."""
    match query:
        case All():
            return set(universe)
        case UidSet(uids=uids):
            return set(uids & universe)
        case Uids(ranges=ranges):
            return {u for lo, hi in ranges for u in universe if lo <= u <= hi}
        case And(items=items):
            out = set(universe)
            for item in items:
                part = evaluate(item, universe)
                if part is None:
                    return None
                out &= part
            return out
        case Or(items=items):
            out = set()
            for item in items:
                part = evaluate(item, universe)
                if part is None:
                    return None
                out |= part
            return out
        case Not(item=item):
            part = evaluate(item, universe)
            return None if part is None else set(universe) - part
    return None
