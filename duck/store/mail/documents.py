"""Building a message document (the write side): an ingested message as one stored copy.

The fields and indexes it fills are described in ``duck/store/index/layout.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import attrs
from bson import ObjectId

from duck.mime.headers import decode_words
from duck.mime.model import IndexedMessage, Part

from ..engine.convert import to_bson
from ..engine.ids import new_id
from ..errors import InvalidInput
from ..index import (
    layout,  # noqa: F401  (the indexes of the documents built here)
    textindex,
)
from ..models import Ingested, Segment

#: Each header value kept for SEARCH is cut at this many characters.
MAX_HEADER_VALUE = 8 * 1024
#: At most this many header fields are kept for SEARCH.
MAX_HEADERS = 500
#: Largest per-recipient prepend (Delivered-To, Return-Path...).
MAX_PREPEND = 16 * 1024

_PREPEND = re.compile(rb"^(?:[!-9;-~]+:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*$")

def segment_to_bson(segment: Segment) -> dict[str, Any]:
    """A segment as stored."""
    if segment.data is not None:
        return {"o": segment.offset, "n": segment.length, "d": segment.data}
    return {"o": segment.offset, "n": segment.length, "h": segment.sha256,
            "f": ObjectId(segment.file_id)}


def shift_part(part: Part, n: int, *, root: bool = True) -> Part:
    """The part tree with every offset moved by ``n`` (a prepend of ``n`` octets).

    The root header now starts with the prepended lines, so its start stays 0.
    """
    if n == 0:
        return part
    return attrs.evolve(
        part,
        header_start=part.header_start if root else part.header_start + n,
        header_end=part.header_end + n,
        body_end=part.body_end + n,
        children=[shift_part(c, n, root=False) for c in part.children],
        message=shift_part(part.message, n, root=False) if part.message is not None else None,
    )


def prepend_headers(prepend: bytes) -> list[tuple[str, str]]:
    """Validate per-copy header lines and return them as (name, value) for SEARCH."""
    if len(prepend) > MAX_PREPEND or not _PREPEND.match(prepend):
        raise InvalidInput("prepend must be CRLF-terminated header fields")
    text = prepend.decode("utf-8", "replace")
    fields: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        if not line:
            continue
        if line[0] in " \t" and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            fields.append((name.strip().lower(), value.strip()))
    return fields


#: Address fields, by header name: the envelope's parsed list of each.
_ADDRESS_FIELDS = {"from": "from_", "sender": "sender", "reply-to": "reply_to",
                   "to": "to", "cc": "cc", "bcc": "bcc"}


def _searched(name: str, value: str, message: IndexedMessage) -> str:
    """A header value as SEARCH matches it. An address field also gets its parsed
    addresses, ``name <mailbox@host>`` each, after a NUL (which no needle has): a
    search for ``user@example.org`` finds ``<user (comment)@ example.org>`` too,
    as RFC 3501's SEARCH FROM is meant (imaptest's search-addresses group)."""
    attr = _ADDRESS_FIELDS.get(name)
    if attr is None:
        return value
    forms = []
    for a in getattr(message.envelope, attr):
        if a.mailbox is None or a.host is None:
            continue  # a group marker
        address = (a.mailbox + (b"@" + a.host if a.host else b"")).decode("utf-8", "replace")
        shown = decode_words(a.name) if a.name else ""
        forms.append(f"{shown} <{address}>" if shown else f"<{address}>")
    return value + "\x00" + ", ".join(forms) if forms else value


def content(ingested: Ingested, prepend: bytes = b"") -> tuple[dict[str, Any], Part]:
    """The uid-independent part of a message document for one stored copy, and the
    copy's part tree (the message's, its offsets moved past ``prepend``)."""
    message: IndexedMessage = ingested.message
    n = len(prepend)
    headers = list(message.headers)
    segments = list(ingested.segments)
    root = message.root
    if n:
        headers = prepend_headers(prepend) + headers
        segments = [Segment(0, n, data=prepend)] + [
            attrs.evolve(s, offset=s.offset + n) for s in segments
        ]
        root = shift_part(root, n)
    hdr = [{"k": k, "v": _searched(k, v, message)[:MAX_HEADER_VALUE]}
           for k, v in headers[:MAX_HEADERS]]
    thread_ids = list(dict.fromkeys(message.references + message.in_reply_to))
    bodies = sorted({s.sha256 for s in segments if s.sha256 is not None})
    return {
        "size": ingested.size + n,
        "segs": [segment_to_bson(s) for s in segments],
        # Only where there are any: the index of ``bodies`` is sparse, so a message
        # without a GridFS body (most) costs it no entry (engine/bodies.py).
        **({"bodies": bodies} if bodies else {}),
        "root": to_bson(root),
        "env": to_bson(message.envelope),
        "hdr": hdr,
        "text": message.text,
        **_grams(hdr, message.text),
        **_sent(message.date),
        "msgid": message.message_id,
        "refs": thread_ids[-100:],
        "subject": message.subject[:MAX_HEADER_VALUE],
    }, root


def _sent(date: dt.datetime | None) -> dict[str, Any]:
    """The Date: header as SENTBEFORE/SENTON/SENTSINCE compare it (RFC 3501 §6.4.4:
    the date, "disregarding time and timezone"): ``date`` is its wall-clock time in
    its own zone, kept as if it were UTC, so that its UTC calendar day is the
    header's own day; ``dtz`` is the zone's offset in minutes (the instant is
    ``date - dtz``)."""
    if date is None:
        return {"date": None}
    offset = date.utcoffset() or dt.timedelta(0)
    return {"date": date.replace(tzinfo=dt.UTC),
            "dtz": int(offset.total_seconds() // 60)}


def message_doc(
    base: dict[str, Any],
    *,
    user: ObjectId,
    mailbox: ObjectId,
    uid: int,
    modseq: int,
    flag_fields: dict[str, Any],
    internal_date: dt.datetime,
    savedate: dt.datetime,
    emailid: str,
    threadid: str,
    oid: ObjectId | None = None,
) -> dict[str, Any]:
    """A complete message document."""
    return {
        "_id": oid or new_id(),
        "user": user,
        "mailbox": mailbox,
        "uid": uid,
        "modseq": modseq,
        **flag_fields,
        "idate": internal_date,
        "sdate": savedate,
        "emailid": emailid,
        "threadid": threadid,
        **base,
    }


def _grams(hdr: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """The SEARCH trigram fields, when the index is on (textindex.ENABLED)."""
    if not textindex.ENABLED:
        return {}
    return {
        "g": textindex.document_grams(((h["k"], h["v"]) for h in hdr), text),
        "gv": textindex.VERSION,
    }
