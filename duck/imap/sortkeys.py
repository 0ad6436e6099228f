"""SORT keys (RFC 5256 §3, RFC 5957): the base subject, first addresses, sent dates,
and the key per sort criterion of a stored message.

Pure functions over the MIME model's envelope; the SORT command gets the envelopes
(and sizes, dates) from the store in one query, usually from the record cache.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from duck.mime.envelope import parse_date
from duck.mime.headers import decode_words
from duck.mime.model import Address, Envelope
from duck.store import MessageRecord

from .grammar.cmd_search import SortCriterion, SortKey

_WSP = re.compile(r"[ \t\r\n]+")
# subj-trailer = "(fwd)" / WSP
_TRAILER = re.compile(r"(?:\(fwd\)|[ \t])$", re.IGNORECASE)
# subj-blob = "[" *BLOBCHAR "]" *WSP  (BLOBCHAR: any CHAR but "[" and "]")
_BLOB = r"\[[^\[\]]*\][ \t]*"
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_REFWD = r"(?:re|fwd?)[ \t]*(?:" + _BLOB + r")?:"
# subj-leader = (*subj-blob subj-refwd) / WSP
_LEADER = re.compile(r"(?:(?:" + _BLOB + r")*" + _REFWD + r"|[ \t])", re.IGNORECASE)
_BLOB_PREFIX = re.compile(_BLOB)


def base_subject(raw: bytes | None) -> str:
    """RFC 5256 §2.1's base subject, uppercased for i;ascii-casemap comparison."""
    return subject_info(raw)[0]


def subject_info(raw: bytes | None) -> tuple[str, bool]:
    """The base subject, and whether its extraction removed a reply or forward
    marker ("Re:", "Fwd:", a "[fwd: ...]" wrapper, a "(fwd)" trailer: what THREAD
    REFERENCES calls a reply or forward, RFC 5256 §4 (6))."""
    if not raw:
        return "", False
    text = _WSP.sub(" ", decode_words(raw))  # (1) decoded, whitespace runs as one SP
    reply = False
    while True:
        # (2) trailing "(fwd)" and whitespace.
        while (m := _TRAILER.search(text)) is not None:
            reply = reply or m.group() not in (" ", "\t")
            text = text[: m.start()]
        # (3)-(5) leading "Re:", "Fwd:", "[blob] Re:" and whitespace, and a "[blob]"
        # that does not leave the subject empty, until none is left.
        while True:
            m = _LEADER.match(text)
            if m is not None and m.end() > 0:
                reply = reply or m.group() not in (" ", "\t")
                text = text[m.end():]
                continue
            m = _BLOB_PREFIX.match(text)
            if m is not None and text[m.end():]:
                text = text[m.end():]
                continue
            break
        # (6) "[fwd: ...]" wrapping the rest: unwrap and go again from (2).
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text = text[5:-1]
            reply = True
            continue
        break
    return _ascii_upper(text), reply


def _ascii_upper(text: str) -> str:
    # i;ascii-casemap folds a-z only.
    return text.translate(_UPPER)


_UPPER = {c: c - 32 for c in range(0x61, 0x7B)}


def _first(addresses: list[Address]) -> Address | None:
    # The first address of the envelope's list, a group's start included (its
    # addr-mailbox is the group's name, its addr-host NIL: RFC 3501 §7.4.2).
    return addresses[0] if addresses else None


def addr_mailbox(addresses: list[Address]) -> str:
    """RFC 5256 §3: the addr-mailbox (local part, or a group's name) of the first
    address, or ""."""
    first = _first(addresses)
    if first is None or first.mailbox is None:
        return ""
    return _ascii_upper(decode_words(first.mailbox))


def display(addresses: list[Address]) -> str:
    """RFC 5957 §4: the first address's display name (decoded) or, without one, its
    addr-spec; compared with i;unicode-casemap (case folded here)."""
    first = _first(addresses)
    if first is None:
        return ""
    if first.name:
        name = decode_words(first.name).strip()
        if name:
            return name.casefold()
    mailbox = decode_words(first.mailbox or b"")
    if first.host is None:
        return mailbox.casefold()  # a group: its name
    host = (first.host or b"").decode("utf-8", "replace")
    return (f"{mailbox}@{host}" if host else mailbox).casefold()


def sent_date(envelope: Envelope, internal: dt.datetime) -> dt.datetime:
    """RFC 5256 §3 DATE: the Date: header as an instant (UTC); when it is missing or
    cannot be parsed, the internal date."""
    return parse_date(envelope.date) or internal


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NO_ENVELOPE = Envelope()


def envelope_of(rec: MessageRecord) -> Envelope:
    """The record's envelope (an empty one when it has none)."""
    return rec.envelope if rec.envelope is not None else _NO_ENVELOPE


def arrival(rec: MessageRecord) -> dt.datetime:
    """The internal date (RFC 5256 ARRIVAL) as an aware instant."""
    value = rec.internal_date
    if value is None:
        return _EPOCH
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


#: sort-key -> the key of a record.
_KEYS: dict[SortKey, Callable[[MessageRecord], Any]] = {
    SortKey.ARRIVAL: arrival,
    SortKey.CC: lambda r: addr_mailbox(envelope_of(r).cc),
    SortKey.DATE: lambda r: sent_date(envelope_of(r), arrival(r)),
    SortKey.FROM: lambda r: addr_mailbox(envelope_of(r).from_),
    SortKey.SIZE: lambda r: int(r.size or 0),
    SortKey.SUBJECT: lambda r: base_subject(envelope_of(r).subject),
    SortKey.TO: lambda r: addr_mailbox(envelope_of(r).to),
    SortKey.DISPLAYFROM: lambda r: display(envelope_of(r).from_),
    SortKey.DISPLAYTO: lambda r: display(envelope_of(r).to),
}


#: What the sort keys are made of.
SORT_FIELDS = ["envelope", "size", "internal_date"]


def record_keys(criteria: tuple[SortCriterion, ...], rec: MessageRecord) -> tuple[Any, ...]:
    """A record's key per criterion (REVERSE not applied)."""
    return tuple(_KEYS[c.key](rec) for c in criteria)
