"""The store's typed SEARCH query model and its compilation into one MongoDB filter.

The IMAP layer translates the grammar's search keys into these values (sequence
numbers become UID sets there, from the session's view); the HTTP API builds them
from JSON. Everything here compiles into a single ``find`` filter:

- substring criteria (headers, addresses, subject, body, text) are case-insensitive
  as RFC 3501 §6.4.4 asks: an escaped ``$regex`` with ``i`` over the decoded header
  values and the extracted text (the embedded server has no ``$text``). This scans
  the mailbox's documents; measured in bench/.
- BODY/TEXT search the text extracted from text/* parts (capped by the indexer),
  not attachments' encoded bytes — a documented deviation every large server makes.
- Dates: BEFORE/ON/SINCE compare calendar days (RFC 3501 "disregarding time and
  timezone"), here in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

import attrs

from .errors import InvalidInput

DateField = Literal["internal", "sent", "saved"]
DateOp = Literal["before", "on", "since"]
AddressField = Literal["from", "to", "cc", "bcc"]

#: Deepest nesting of AND/OR/NOT accepted (a per-request cap).
MAX_DEPTH = 32
MAX_UID_RANGES = 10000

_DATE_FIELDS = {"internal": "idate", "sent": "date", "saved": "sdate"}


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

    name: str
    value: str


@attrs.frozen
class Address:
    """FROM/TO/CC/BCC contains ``value``."""

    field: AddressField
    value: str


@attrs.frozen
class Subject:
    """SUBJECT contains ``value``."""

    value: str


@attrs.frozen
class Body:
    """BODY contains ``value`` (the decoded text of the message's text parts)."""

    value: str


@attrs.frozen
class Text:
    """TEXT contains ``value``: a header value or the body text."""

    value: str


@attrs.frozen
class Uids:
    """UID in one of the inclusive ranges."""

    ranges: tuple[tuple[int, int], ...]


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
    All | Flag | Date | Size | Header | Address | Subject | Body | Text | Uids | ModSeq
    | EmailId | ThreadId | Age | And | Or | Not
)


def _contains(value: str) -> dict[str, Any]:
    return {"$regex": re.escape(value), "$options": "i"}


def _day(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def compile_query(query: Query, now: dt.datetime | None = None, depth: int = 0) -> dict[str, Any]:
    """The MongoDB filter for ``query`` (the caller adds the mailbox condition)."""
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
                match["v"] = _contains(value)
            return {"hdr": {"$elemMatch": match}}
        case Address(field=field, value=value):
            return compile_query(Header(field, value), now, depth + 1)
        case Subject(value=value):
            return compile_query(Header("subject", value), now, depth + 1)
        case Body(value=value):
            return {"text": _contains(value)}
        case Text(value=value):
            return {"$or": [{"hdr.v": _contains(value)}, {"text": _contains(value)}]}
        case Uids(ranges=ranges):
            if len(ranges) > MAX_UID_RANGES:
                raise InvalidInput("too many UID ranges")
            if not ranges:
                return {"uid": {"$in": []}}
            return {"$or": [{"uid": {"$gte": lo, "$lte": hi}} for lo, hi in ranges]}
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


def uid_ranges(uids: list[int]) -> tuple[tuple[int, int], ...]:
    """Sorted UIDs as inclusive ranges (compact UID sets for queries)."""
    out: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if out and uid == out[-1][1] + 1:
            out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return tuple(out)
