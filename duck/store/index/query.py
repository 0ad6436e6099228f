"""The store's typed SEARCH query model and its compilation into one MongoDB filter.

The IMAP layer translates the grammar's search keys into these values (sequence
numbers become UID sets there, from the session's view); the HTTP API builds them
from JSON. Before compiling, the store answers or narrows what it can from the
mailbox digest (digestsearch.py), substituting ``UidSet`` criteria. Everything here
compiles into a single ``find`` filter:

- substring criteria (headers, addresses, subject, body, text) are substrings as
  RFC 3501 §6.4.4 asks, compared by RFC 5051's ``i;unicode-casemap`` as Dovecot
  compares them: a ``$regex`` from casemap.py over the decoded header values and
  the extracted text is the exact check (the embedded server has no ``$text``, and
  ``$text`` matches words anyway).
- BODY/TEXT search the text extracted from text/* parts (all of them, transfer and
  charset decoded, up to the MIME indexer's per-message text budget), not
  attachments' encoded bytes — a documented deviation every large server makes.

``compile_search`` also derives a *prefilter*: index-only conditions whose matches
are a superset of the query's (textindex.py's trigrams for substrings, the modseq
and uid fields otherwise; flags, dates and sizes have no index of their own:
layout.py). When the prefilter is the whole criterion the search is one ``find``
on it; otherwise one aggregate: ``$match`` on the prefilter (an index scan; the
mailbox's own index when there is none), then ``$match`` on the exact filter
(fetch.py). Two stages because the embedded Rust engine plans a ``find`` whose
filter has any field not in one index as a collection scan (measured with
explain()); a first ``$match`` made only of one index's fields is an index scan on
both embedded engines, and real MongoDB merges the two stages itself.
- Dates: BEFORE/ON/SINCE compare calendar days (RFC 3501 "disregarding time and
  timezone"), here in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, Literal

import attrs

from ..errors import InvalidInput, require_utf8
from . import casemap, textindex

DateField = Literal["internal", "sent", "saved"]
DateOp = Literal["before", "on", "since"]
AddressField = Literal["from", "to", "cc", "bcc"]

#: Deepest nesting of AND/OR/NOT accepted (a per-request cap).
MAX_DEPTH = 32
MAX_UID_RANGES = 10000

_DATE_FIELDS = {"internal": "idate", "sent": "date", "saved": "sdate"}


#: Longest search string accepted, in characters: its pattern (casemap.py) is some
#: ten times longer, and the embedded engine compiles it again for every document
#: it tests, so a needle of a megabyte would hold the database for hours.
MAX_STRING = 1000


def _searched(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    require_utf8(value, "search string")
    if len(value) > MAX_STRING:
        raise InvalidInput(f"search string longer than {MAX_STRING} characters")


@attrs.frozen
class All:
    """Every message."""


@attrs.frozen
class Flag:
    """A flag (system or keyword) is set, or with ``present=False`` is not."""

    flag: str
    present: bool = True


@attrs.frozen
class Date:
    """INTERNALDATE/Date:/SAVEDATE before, on or since a calendar day."""

    field: DateField
    op: DateOp
    day: dt.date


@attrs.frozen
class Size:
    """RFC822.SIZE larger or smaller than ``octets``."""

    op: Literal["larger", "smaller"]
    octets: int


@attrs.frozen
class Header:
    """A top-level header field whose decoded value contains ``value``.

    An empty ``value`` matches every message that has the field (RFC 3501).
    """

    name: str = attrs.field(validator=_searched)
    value: str = attrs.field(validator=_searched)


@attrs.frozen
class Address:
    """FROM/TO/CC/BCC contains ``value``."""

    field: AddressField
    value: str = attrs.field(validator=_searched)


@attrs.frozen
class Subject:
    """SUBJECT contains ``value``."""

    value: str = attrs.field(validator=_searched)


@attrs.frozen
class Body:
    """BODY contains ``value`` (the decoded text of the message's text parts)."""

    value: str = attrs.field(validator=_searched)


@attrs.frozen
class Text:
    """TEXT contains ``value``: a header value or the body text."""

    value: str = attrs.field(validator=_searched)


@attrs.frozen
class Uids:
    """UID in one of the inclusive ranges."""

    ranges: tuple[tuple[int, int], ...]


@attrs.frozen
class UidSet:
    """UID in the set: the store's own criterion (digest answers, digestsearch.py)."""

    uids: frozenset[int]


@attrs.frozen
class ModSeq:
    """MODSEQ >= ``value`` (RFC 7162 §3.1.5)."""

    value: int


@attrs.frozen
class EmailId:
    """EMAILID (RFC 8474)."""

    value: str


@attrs.frozen
class ThreadId:
    """THREADID (RFC 8474)."""

    value: str


@attrs.frozen
class Age:
    """OLDER/YOUNGER than ``seconds`` by INTERNALDATE (RFC 5032)."""

    op: Literal["older", "younger"]
    seconds: int


@attrs.frozen
class And:
    """Every criterion holds."""

    items: tuple[Query, ...]


@attrs.frozen
class Or:
    """At least one criterion holds."""

    items: tuple[Query, ...]


@attrs.frozen
class Not:
    """The criterion does not hold."""

    item: Query


Query = (
    All | Flag | Date | Size | Header | Address | Subject | Body | Text | Uids | UidSet
    | ModSeq | EmailId | ThreadId | Age | And | Or | Not
)


def contains(field: str, value: str, *, likely: bool = False) -> dict[str, Any]:
    """The filter "``field`` holds ``value``" under i;unicode-casemap (casemap.py):
    gate AND (quick OR exact), or where most documents tested are expected to
    match (``likely``: candidates a prefilter found), quick OR (gate AND exact),
    which tests a match once instead of twice."""
    test = casemap.database_test(value)
    # (No ``i`` option on the exact pattern: its classes hold every case.)
    exact: dict[str, Any] = {field: {"$regex": test.exact}}
    gate = (None if test.gate is None
            else {field: {"$regex": test.gate, "$options": "i"}})
    quick = (None if test.quick is None
             else {field: {"$regex": test.quick, "$options": "i"} if test.quick_i
                   else {"$regex": test.quick}})
    if likely:
        rest = exact if gate is None else {"$and": [gate, exact]}
        return rest if quick is None else {"$or": [quick, rest]}
    check = exact if quick is None else {"$or": [quick, exact]}
    return check if gate is None else {"$and": [gate, check]}


def _day(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def leaves(query: Query) -> Iterator[Query]:
    """The criteria of ``query`` that are not AND/OR/NOT, in order."""
    match query:
        case And(items=items) | Or(items=items):
            for item in items:
                yield from leaves(item)
        case Not(item=item):
            yield from leaves(item)
        case _:
            yield query


def map_leaves(query: Query, fn: Callable[[Query], Query]) -> Query:
    """``query`` with each criterion that is not AND/OR/NOT replaced by ``fn(it)``."""
    match query:
        case And(items=items):
            return And(tuple(map_leaves(i, fn) for i in items))
        case Or(items=items):
            return Or(tuple(map_leaves(i, fn) for i in items))
        case Not(item=item):
            return Not(map_leaves(item, fn))
    return fn(query)


def compile_query(query: Query, now: dt.datetime | None = None, depth: int = 0) -> dict[str, Any]:
    """The exact MongoDB filter for ``query`` (the caller adds the mailbox condition)."""
    if depth > MAX_DEPTH:
        raise InvalidInput("search criteria nested too deeply")
    match query:
        case All():
            return {}
        case Flag(flag=flag, present=present):
            key = flag.lower()
            return {"kw": key} if present else {"kw": {"$ne": key}}
        case Date(field=field, op=op, day=day):
            name = _DATE_FIELDS[field]
            start = _day(day)
            if op == "before":
                return {name: {"$lt": start}}
            if op == "since":
                return {name: {"$gte": start}}
            return {name: {"$gte": start, "$lt": start + dt.timedelta(days=1)}}
        case Size(op=op, octets=octets):
            return {"size": {"$gt": octets} if op == "larger" else {"$lt": octets}}
        case Header(name=name, value=value):
            match: dict[str, Any] = {"k": name.lower()}
            if value:
                match.update(contains("v", value))
            return {"hdr": {"$elemMatch": match}}
        case Address(field=field, value=value):
            return compile_query(Header(field, value), now, depth + 1)
        case Subject(value=value):
            return compile_query(Header("subject", value), now, depth + 1)
        case Body(value=value):
            return contains("text", value)
        case Text(value=value):
            return {"$or": [contains("hdr.v", value), contains("text", value)]}
        case Uids(ranges=ranges):
            if len(ranges) > MAX_UID_RANGES:
                raise InvalidInput("too many UID ranges")
            if not ranges:
                return {"uid": {"$in": []}}
            return {"$or": [{"uid": {"$gte": lo, "$lte": hi}} for lo, hi in ranges]}
        case UidSet(uids=uids):
            return {"uid": {"$in": sorted(uids)}}
        case ModSeq(value=value):
            return {"modseq": {"$gte": value}}
        case EmailId(value=value):
            return {"emailid": value}
        case ThreadId(value=value):
            return {"threadid": value}
        case Age(op=op, seconds=seconds):
            moment = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=seconds)
            return {"idate": {"$lte": moment} if op == "older" else {"$gt": moment}}
        case And(items=items):
            parts = [compile_query(q, now, depth + 1) for q in items]
            parts = [p for p in parts if p]
            return {"$and": parts} if parts else {}
        case Or(items=items):
            if not items:
                return {"uid": {"$in": []}}
            return {"$or": [compile_query(q, now, depth + 1) for q in items]}
        case Not(item=item):
            return {"$nor": [compile_query(item, now, depth + 1)]}
    raise InvalidInput(f"unknown search criterion {query!r}")


@attrs.frozen
class Prefilter:
    """Index-only conditions on one field whose matches include every real match.

    ``rank`` orders the choice inside an AND (lower is expected to be more
    selective); there are no statistics, and a second query to get some would be
    a second round trip.
    """

    field: str
    condition: Any
    rank: int
    #: The condition is the criterion itself (no exact check needed after it).
    exact: bool = False


#: Gram lookups also match messages without usable grams: saturated ones and
#: documents written before the index existed (no ``g``: null in the index).
_ALWAYS = [textindex.SATURATED, None]


def _gram(gram: int) -> Prefilter:
    return Prefilter("g", [gram], 2)


def _presence(name: str) -> Prefilter | None:
    """The prefilter "this header exists" (None while the index is off)."""
    if not textindex.ENABLED:
        return None
    return Prefilter("g", [textindex.presence(name)], 6)


def _substring(needle: str, name: str | None) -> Prefilter | None:
    """The prefilter of a substring search in a header field (or all text: None)."""
    if not textindex.ENABLED:
        return None  # the exact check scans the mailbox (one aggregate, one round trip)
    tag = name if name in textindex.TAGGED else ""
    grams = textindex.needle_grams(needle, tag or "")
    if grams:
        return _gram(grams[0])
    if name is not None:
        # Too short for a trigram: the field must at least exist.
        return _presence(name)
    return None  # BODY/TEXT with a 1-2 character needle: the exact check scans


def prefilter(query: Query, now: dt.datetime | None = None) -> Prefilter | None:
    """A prefilter for ``query`` (None: the whole mailbox is the candidate set)."""
    match query:
        # (Flags, dates and sizes have no index (layout.py): their messages are
        # found among the candidates of the mailbox's index, or of another
        # criterion's, by the exact filter.)
        case ModSeq(value=value):
            return Prefilter("modseq", {"$gte": value}, 3, exact=True)
        case UidSet(uids=uids):
            return Prefilter("uid", sorted(uids), 0, exact=True)
        case Uids(ranges=ranges) if len(ranges) == 1:
            return Prefilter("uid", {"$gte": ranges[0][0], "$lte": ranges[0][1]}, 1,
                             exact=True)
        case Header(name=name, value=value):
            name = name.lower()
            if not value:
                return _presence(name)
            return _substring(value, name)
        case Address(field=field, value=value):
            return _substring(value, field) if value else _presence(field)
        case Subject(value=value):
            return _substring(value, "subject") if value else _presence("subject")
        case Body(value=value) | Text(value=value):
            return _substring(value, None) if value else None
        case And(items=items):
            found = [p for p in (prefilter(q, now) for q in items) if p is not None]
            if not found:
                return None
            best = min(found, key=lambda p: p.rank)
            return best if len(items) == 1 else attrs.evolve(best, exact=False)
        case Or(items=items):
            # A union is only expressible on one field of equalities ($in).
            parts = [prefilter(q, now) for q in items]
            if not parts or any(p is None or not isinstance(p.condition, list) for p in parts):
                return None
            fields = {p.field for p in parts if p is not None}
            if len(fields) != 1:
                return None
            values: list[Any] = []
            for p in parts:
                assert p is not None
                values += [v for v in p.condition if v not in values]
            return Prefilter(fields.pop(), values, max(p.rank for p in parts if p) + 1,
                             exact=all(p is not None and p.exact for p in parts))
    return None  # All, Not, EmailId, ThreadId, several UID ranges: no index narrows them


def prefilter_match(found: Prefilter | None) -> dict[str, Any]:
    """The prefilter as a filter (without the mailbox condition)."""
    if found is None:
        return {}
    cond = found.condition
    if isinstance(cond, list):
        if found.field == "g":
            cond = cond + _ALWAYS
        return {found.field: cond[0] if len(cond) == 1 else {"$in": cond}}
    return {found.field: cond}


@attrs.frozen
class CompiledSearch:
    """A query as the search runs it (filters without the mailbox condition)."""

    #: Index-only conditions: a superset of the matches.
    prefilter: dict[str, Any]
    #: The exact filter.
    exact: dict[str, Any]
    #: The prefilter alone is exact: one ``find`` answers, no second stage.
    covered: bool


def compile_search(query: Query, now: dt.datetime | None = None) -> CompiledSearch:
    """Prefilter and exact filter for ``query``."""
    now = now or dt.datetime.now(dt.UTC)
    exact = compile_query(query, now)
    found = prefilter(query, now)
    return CompiledSearch(prefilter_match(found), exact,
                          covered=not exact or (found is not None and found.exact))


def uid_ranges(uids: list[int]) -> tuple[tuple[int, int], ...]:
    """Sorted UIDs as inclusive ranges (compact UID sets for queries)."""
    out: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if out and uid == out[-1][1] + 1:
            out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return tuple(out)
