"""SORT keys (RFC 5256 §3, RFC 5957): the base subject, first addresses, sent dates,
and the key per sort criterion of a stored message.

Pure functions over the MIME model's envelope; ordering.py keeps their results per
message, and the SORT command's keys are read from there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from duck.mime.headers import decode_words
from duck.mime.model import Address

from .grammar.cmd_search import SortCriterion, SortKey

if TYPE_CHECKING:  # (a parse worker imports this module: ordering.py)
    from duck.store import MessageRecord

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


#: Positions in a message's precomputed keys (ordering.py keeps them as a list).
FROM, TO, CC, DISPLAYFROM, DISPLAYTO, SUBJECT, REPLY, SENT, MSGID, REFS = range(10)
KEY_COUNT = 10


def arrival(rec: MessageRecord) -> float:
    """The internal date (RFC 5256 ARRIVAL) as seconds since the epoch."""
    value = rec.internal_date
    if value is None:
        return 0.0
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


#: sort-key -> its key from a record (uid, size, internal date) and the message's
#: precomputed keys (ordering.py's, by position: UTF-8 bytes, which order as their
#: strings do).
_KEYS: dict[SortKey, Callable[[MessageRecord, list[bytes]], Any]] = {
    SortKey.ARRIVAL: lambda r, k: arrival(r),
    SortKey.CC: lambda r, k: k[CC],
    SortKey.DATE: lambda r, k: float(k[SENT]) if k[SENT] else arrival(r),
    SortKey.FROM: lambda r, k: k[FROM],
    SortKey.SIZE: lambda r, k: int(r.size or 0),
    SortKey.SUBJECT: lambda r, k: k[SUBJECT],
    SortKey.TO: lambda r, k: k[TO],
    SortKey.DISPLAYFROM: lambda r, k: k[DISPLAYFROM],
    SortKey.DISPLAYTO: lambda r, k: k[DISPLAYTO],
}


#: Criteria whose keys come with the record itself (no precomputed keys needed).
RECORD_ONLY = frozenset({SortKey.ARRIVAL, SortKey.SIZE})


def record_keys(criteria: tuple[SortCriterion, ...], rec: MessageRecord,
                keys: list[bytes]) -> tuple[Any, ...]:
    """A message's key per criterion (REVERSE not applied)."""
    return tuple(_KEYS[c.key](rec, keys) for c in criteria)
