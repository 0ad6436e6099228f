"""The FETCH response (``message-data = nz-number SP "FETCH" SP msg-att``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from .bodystructure import (
    BodyStructure,
    Envelope,
    MultiPart,
    SinglePart,
    encode_body,
    encode_envelope,
    parse_body,
    parse_envelope,
)
from .cmd_base import to_flags
from .encode import Encoder, LiteralBody
from .fetch_items import BinarySize, BodySection, FetchAttr, FetchItem, encode_fetch_att
from .lexer import Cursor

#: Items whose value is message data: bytes, None (NIL) or a streamed LiteralBody.
_DATA_ATTRS = (FetchAttr.RFC822, FetchAttr.RFC822_HEADER, FetchAttr.RFC822_TEXT)

FetchValue = Any


def _check_value(key: FetchItem, value: FetchValue) -> FetchValue:
    """Validate (and canonicalise) one item's value; raise ValueError if wrong."""
    if isinstance(key, BodySection):
        if key.peek:
            raise ValueError("a response key never says PEEK")
        if key.partial is not None and key.partial[1] is not None:
            raise ValueError("a response key carries the origin only")
        if value is not None and not isinstance(value, bytes | LiteralBody):
            raise ValueError("section data is bytes, None or LiteralBody")
        return value
    if isinstance(key, BinarySize):
        if not isinstance(value, int) or value < 0:
            raise ValueError("BINARY.SIZE is a number")
        return value
    if key in _DATA_ATTRS:
        if value is not None and not isinstance(value, bytes | LiteralBody):
            raise ValueError(f"{key.value} is bytes, None or LiteralBody")
        return value
    if key is FetchAttr.FLAGS:
        return to_flags(value)
    if key in (FetchAttr.UID, FetchAttr.RFC822_SIZE, FetchAttr.MODSEQ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key.value} is a number")
        return value
    if key is FetchAttr.INTERNALDATE or key is FetchAttr.SAVEDATE:
        if value is None and key is FetchAttr.SAVEDATE:
            return value
        if not isinstance(value, dt.datetime) or value.utcoffset() is None:
            raise ValueError(f"{key.value} is an aware datetime")
        return value
    if key is FetchAttr.EMAILID or key is FetchAttr.THREADID:
        if value is None and key is FetchAttr.THREADID:
            return value
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key.value} is an objectid")
        return value
    if key is FetchAttr.ENVELOPE:
        if not isinstance(value, Envelope):
            raise ValueError("ENVELOPE is an Envelope")
        return value
    if key is FetchAttr.BODY or key is FetchAttr.BODYSTRUCTURE:
        if not isinstance(value, SinglePart | MultiPart):
            raise ValueError(f"{key.value} is a body structure")
        if key is FetchAttr.BODY and _has_ext(value):
            raise ValueError("BODY carries no extension data (that is BODYSTRUCTURE)")
        return value
    raise ValueError(f"unknown fetch key {key!r}")


def _has_ext(body: BodyStructure) -> bool:
    if body.ext is not None:
        return True
    if isinstance(body, MultiPart):
        return any(_has_ext(p) for p in body.parts)
    return body.body is not None and _has_ext(body.body)


def _to_items(value: object) -> tuple[tuple[FetchItem, FetchValue], ...]:
    return tuple((k, _check_value(k, v)) for k, v in value)  # type: ignore[attr-defined]


@attrs.frozen
class FetchData:
    """``* seq FETCH (key value ...)``.

    ``items`` are (key, value) pairs. Keys are :class:`FetchAttr` members,
    :class:`BodySection` (response form: use ``BodySection.response_key()``) or
    :class:`BinarySize`. Values: FLAGS tuple of flags; UID/RFC822.SIZE/MODSEQ/
    BINARY.SIZE int; INTERNALDATE/SAVEDATE aware datetime (SAVEDATE may be None);
    EMAILID/THREADID str (THREADID may be None); ENVELOPE :class:`Envelope`;
    BODY/BODYSTRUCTURE a body structure; section data bytes, None or
    :class:`LiteralBody` (streamed by :func:`serialize_chunks`).
    """

    seq: int = attrs.field(validator=attrs.validators.ge(1))
    items: tuple[tuple[FetchItem, FetchValue], ...] = attrs.field(converter=_to_items)

    def get(self, key: FetchItem) -> FetchValue:
        """The value of ``key``, or None."""
        for k, v in self.items:
            if k == key:
                return v
        return None

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.text(f"* {self.seq} FETCH (")
        for i, (key, value) in enumerate(self.items):
            if i:
                e.sp()
            encode_fetch_att(e, key)
            e.sp()
            _encode_value(e, key, value)
        e.raw(b")")


def _encode_data(e: Encoder, value: bytes | LiteralBody | None, *, binary: bool) -> None:
    if isinstance(value, LiteralBody):
        e.literal_body(attrs.evolve(value, binary=binary and value.binary))
    elif value is None:
        e.raw(b"NIL")
    elif binary and b"\0" in value:
        e.literal(value, binary=True)  # RFC 3516 §4.2: literal8 for data with NUL
    else:
        e.literal(value) if value else e.raw(b'""')


def _encode_value(e: Encoder, key: FetchItem, value: FetchValue) -> None:
    if isinstance(key, BodySection):
        _encode_data(e, value, binary=key.binary)
    elif isinstance(key, BinarySize):
        e.number(value)
    elif key in _DATA_ATTRS:
        _encode_data(e, value, binary=False)
    elif key is FetchAttr.FLAGS:
        e.flag_list(value)
    elif key is FetchAttr.MODSEQ:
        e.text(f"({value})")
    elif key is FetchAttr.INTERNALDATE or key is FetchAttr.SAVEDATE:
        if value is None:
            e.raw(b"NIL")
        else:
            e.date_time(value)
    elif key is FetchAttr.EMAILID or key is FetchAttr.THREADID:
        e.raw(b"NIL") if value is None else e.text(f"({value})")
    elif key is FetchAttr.ENVELOPE:
        encode_envelope(e, value)
    elif key is FetchAttr.BODY:
        encode_body(e, value, extensible=False)
    elif key is FetchAttr.BODYSTRUCTURE:
        encode_body(e, value, extensible=True)
    else:
        e.number(value)


def _parse_data(c: Cursor) -> bytes | None:
    if c.peek() == 0x7E:
        return c.literal(binary_ok=True)
    return c.nstring()


def parse_fetch_value(c: Cursor, key: FetchItem) -> FetchValue:
    """The value of one ``msg-att`` item whose key was just read."""
    if isinstance(key, BodySection) or key in _DATA_ATTRS:
        return _parse_data(c)
    if isinstance(key, BinarySize):
        return c.number64()
    if key is FetchAttr.FLAGS:
        return c.flag_list()
    if key is FetchAttr.MODSEQ:
        c.expect(b"(")
        n = c.number64()
        c.expect(b")")
        return n
    if key is FetchAttr.UID:
        return c.nz_number()
    if key is FetchAttr.RFC822_SIZE:
        return c.number64()
    if key is FetchAttr.INTERNALDATE or key is FetchAttr.SAVEDATE:
        if key is FetchAttr.SAVEDATE and c.nil():
            return None
        return c.date_time()
    if key is FetchAttr.EMAILID or key is FetchAttr.THREADID:
        if key is FetchAttr.THREADID and c.nil():
            return None
        c.expect(b"(")
        value = c.atom().decode("ascii")
        c.expect(b")")
        return value
    if key is FetchAttr.ENVELOPE:
        return parse_envelope(c)
    body: BodyStructure = parse_body(c)
    return body
