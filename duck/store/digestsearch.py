"""SEARCH's substring criteria answered from the mailbox digest (digest.py).

A substring criterion over the whole mailbox read from ``messages`` is a scan (~0.3
ms a message on the embedded engine). From the digest, one query returns 64
messages per document:

- FROM/TO/CC/BCC/SUBJECT and HEADER of those fields are decided here, exactly: the
  digest keeps their decoded values, and the check is the same escaped,
  case-insensitive pattern the ``$regex`` of query.py is;
- BODY, TEXT and HEADER of other fields get *candidates* from the digest's Bloom
  filter of text trigrams; ``messages`` then checks only those (``uid $in``, an index
  scan, then the exact ``$regex``).

``resolve`` returns the query with each such criterion replaced by a ``UidSet`` (or
``UidSet AND criterion`` for candidates), which query.py compiles as an indexed
``uid $in``; ``evaluate`` answers a resolved query made only of UID sets without
asking the database again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs
import bson
from bson import ObjectId

from . import digest
from .database import Database
from .query import (
    Address,
    All,
    And,
    Body,
    Header,
    Not,
    Or,
    Query,
    Subject,
    Text,
    Uids,
    UidSet,
)


@attrs.frozen
class _Exact:
    """A header criterion the digest decides (``value`` empty: the field exists)."""

    key: str
    value: str


@attrs.frozen
class _Bloom:
    """A criterion the Bloom filter narrows to candidates."""

    positions: tuple[int, ...]


def _plan(leaf: Query) -> _Exact | _Bloom | None:
    match leaf:
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


def _leaves(query: Query) -> Iterable[Query]:
    match query:
        case And(items=items) | Or(items=items):
            for item in items:
                yield from _leaves(item)
        case Not(item=item):
            yield from _leaves(item)
        case _:
            yield query


def plans(query: Query) -> dict[Query, _Exact | _Bloom]:
    """The criteria of ``query`` the digest can answer or narrow."""
    found: dict[Query, _Exact | _Bloom] = {}
    for leaf in _leaves(query):
        plan = _plan(leaf)
        if plan is not None:
            found[leaf] = plan
    return found


@attrs.frozen
class Resolved:
    """A query with digest answers substituted, and the live UIDs when known."""

    query: Query
    #: Every message of the mailbox (None when the digest query did not read them).
    universe: frozenset[int] | None


def resolve(database: Database, mailbox: ObjectId, query: Query) -> Resolved:
    """``query`` with the digest's answers substituted (blocking; one query when the
    query has criteria the digest serves, none otherwise)."""
    found = plans(query)
    if not found:
        return Resolved(query, None)
    exact = {leaf: p for leaf, p in found.items() if isinstance(p, _Exact)}
    bloom = {leaf: p for leaf, p in found.items() if isinstance(p, _Bloom)}
    positions = sorted({q for p in bloom.values() for q in p.positions})
    # H's keys are the live messages; without a header criterion "m" is smaller.
    projection: dict[str, Any] = {"H": 1} if exact else {"m": 1}
    projection.update({f"b.{q}": 1 for q in positions})
    cursor = database.collection(digest.COLLECTION).find_raw_batches(
        {"mailbox": mailbox}, {"_id": 0, "c": 1, **projection}, batch_size=100000)
    patterns = {leaf: re.compile(re.escape(p.value), re.IGNORECASE)
                for leaf, p in exact.items() if p.value}
    matched: dict[Query, set[int]] = {leaf: set() for leaf in found}
    unknown: set[int] = set()
    universe: set[int] = set()
    for raw in cursor:
        for doc in bson.decode_all(raw):
            entries: dict[str, Any] = doc.get("H") or doc.get("m") or {}
            uids = [int(k) for k in entries]
            universe.update(uids)
            if exact:
                for key, entry in entries.items():
                    if entry is None:
                        unknown.add(int(key))
                        continue
                    for leaf, p in exact.items():
                        value = entry.get(p.key)
                        if value is None:
                            continue
                        pattern = patterns.get(leaf)
                        if pattern is None or pattern.search(value):
                            matched[leaf].add(int(key))
            if bloom:
                words = {int(k): v for k, v in (doc.get("b") or {}).items()}
                for leaf, b in bloom.items():
                    mask = -1
                    for q in b.positions:
                        mask &= words.get(q, 0)
                        if not mask:
                            break
                    if mask:
                        matched[leaf].update(u for u in uids if mask >> (u % digest.SPAN) & 1)

    def substitute(node: Query) -> Query:
        match node:
            case And(items=items):
                return And(tuple(substitute(i) for i in items))
            case Or(items=items):
                return Or(tuple(substitute(i) for i in items))
            case Not(item=item):
                return Not(substitute(item))
        if node in exact:
            hits = UidSet(frozenset(matched[node]))
            if unknown:  # entries too large for the digest: messages decides them
                return Or((hits, And((UidSet(frozenset(unknown)), node))))
            return hits
        if node in bloom:
            return And((UidSet(frozenset(matched[node])), node))
        return node

    return Resolved(substitute(query), frozenset(universe))


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
