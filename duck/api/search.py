"""JSON search criteria (models.SearchQuery) as the store's typed query model.

The keys are IMAP SEARCH keys (RFC 3501 §6.4.4, RFC 7162 MODSEQ, RFC 5032
OLDER/YOUNGER, RFC 8474 EMAILID/THREADID) with the same semantics, because both
protocols compile into the same ``duck.store.query`` values.
"""

from __future__ import annotations

import datetime as dt

import attrs

from ..store import query as q
from .bodies import MAX_UID, ApiError, json_name
from .models import SearchQuery

MAX_UID_SET = 1000
_FLAGS = {"seen": "\\Seen", "answered": "\\Answered", "flagged": "\\Flagged",
          "deleted": "\\Deleted", "draft": "\\Draft"}
_DATES: dict[str, tuple[q.DateField, q.DateOp]] = {
    "before": ("internal", "before"), "on": ("internal", "on"), "since": ("internal", "since"),
    "sent_before": ("sent", "before"), "sent_on": ("sent", "on"),
    "sent_since": ("sent", "since"),
}


def _bad(field: str, why: str) -> ApiError:
    return ApiError(400, "InvalidRequest", f"invalid field query.{field}: {why}")


def uid_set(text: str, uid_max: int, field: str = "uid") -> tuple[tuple[int, int], ...]:
    """An IMAP UID set (``1:5,9,12:*``) as inclusive ranges; ``*`` is ``uid_max``."""
    ranges = []
    parts = text.split(",")
    if len(parts) > MAX_UID_SET:
        raise _bad(field, "too many ranges")
    for part in parts:
        ends = part.split(":")
        if len(ends) not in (1, 2):
            raise _bad(field, f"not a UID set: {text!r}")
        values = []
        for end in ends:
            if end == "*":
                values.append(max(uid_max, 1))
            elif end.isdigit() and 0 < int(end) <= MAX_UID and end.isascii():
                values.append(int(end))
            else:
                raise _bad(field, f"not a UID set: {text!r}")
        ranges.append((min(values), max(values)))
    return tuple(ranges)


def _day(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise _bad(field, "expected YYYY-MM-DD") from exc


def compile_search(query: SearchQuery, uid_max: int, depth: int = 0) -> q.Query:
    """The store query for JSON criteria (every given key must hold)."""
    if depth > q.MAX_DEPTH:
        raise ApiError(400, "InvalidRequest", "invalid field query: nested too deeply")
    items: list[q.Query] = []
    for field in attrs.fields(SearchQuery):
        value = getattr(query, field.name)
        if value is None:
            continue
        name = json_name(field)
        if name in _FLAGS:
            items.append(q.Flag(_FLAGS[name], bool(value)))
        elif name in ("keyword", "unkeyword"):
            if not value or any(c in value for c in " ()[]{%*\"\\") or not value.isprintable():
                raise _bad(name, "not an IMAP keyword")
            items.append(q.Flag(value, name == "keyword"))
        elif name in ("from", "to", "cc", "bcc"):
            items.append(q.Address(name, value))  # type: ignore[arg-type]
        elif name == "subject":
            items.append(q.Subject(value))
        elif name == "body":
            items.append(q.Body(value))
        elif name == "text":
            items.append(q.Text(value))
        elif name == "header":
            header, *rest = value
            if not header or not header.isprintable() or ":" in header:
                raise _bad(name, "not a header field name")
            items.append(q.Header(header, rest[0] if rest else ""))
        elif name in ("larger", "smaller"):
            items.append(q.Size(name, value))  # type: ignore[arg-type]
        elif name in _DATES:
            kind, op = _DATES[name]
            items.append(q.Date(kind, op, _day(value, name)))
        elif name in ("older", "younger"):
            items.append(q.Age(name, value))  # type: ignore[arg-type]
        elif name == "uid":
            items.append(q.Uids(uid_set(value, uid_max)))
        elif name == "modseq":
            items.append(q.ModSeq(value))
        elif name == "emailid":
            items.append(q.EmailId(value))
        elif name == "threadid":
            items.append(q.ThreadId(value))
        elif name == "or":
            items.append(q.Or(tuple(compile_search(s, uid_max, depth + 1) for s in value)))
        elif name == "not":
            items.append(q.Not(compile_search(value, uid_max, depth + 1)))
    if not items:
        return q.All()
    return items[0] if len(items) == 1 else q.And(tuple(items))
