"""The FETCH response (``message-data = nz-number SP "FETCH" SP msg-att``)."""

from __future__ import annotations

import datetime as dt
import functools
import zlib
from collections.abc import Callable
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
from .encode import Encoder, LiteralBody, Preencoded, format_date_time
from .fetch_items import BinarySize, BodySection, FetchAttr, FetchItem, encode_fetch_att
from .lexer import Cursor

#: Items whose value is message data: bytes, None (NIL) or a streamed LiteralBody.
_DATA_ATTRS = (FetchAttr.RFC822, FetchAttr.RFC822_HEADER, FetchAttr.RFC822_TEXT)

FetchValue = Any
#: Keys whose values may be :class:`Preencoded`, and the kind each takes.
_PREENCODED_KIND: dict[FetchItem, str] = {
    FetchAttr.ENVELOPE: "envelope",
    FetchAttr.BODY: "body",
    FetchAttr.BODYSTRUCTURE: "bodystructure",
}


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
    if key is FetchAttr.PREVIEW:
        if value is not None and not isinstance(value, str):
            raise ValueError("PREVIEW is a str or None")
        return value
    if isinstance(value, Preencoded):
        if _PREENCODED_KIND.get(key) != value.kind:  # type: ignore[call-overload]
            raise ValueError(f"a pre-encoded {value.kind} is not a {key!r} value")
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
    EMAILID/THREADID str (THREADID may be None); PREVIEW str or None; ENVELOPE
    :class:`Envelope`;
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
    if isinstance(value, Preencoded):
        e.preencoded(value)
    elif isinstance(key, BodySection):
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
    elif key is FetchAttr.PREVIEW:
        e.nstring(value)  # RFC 8970 §3: UTF-8, a literal when it is not ASCII
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
    if key is FetchAttr.PREVIEW:
        text = c.nstring()
        return None if text is None else text.decode("utf-8", "surrogateescape")
    if key is FetchAttr.ENVELOPE:
        return parse_envelope(c)
    body: BodyStructure = parse_body(c)
    return body


# -- pre-encoded values and the fast path of many FETCH responses --------------------


#: Stored renderings start with this, then a kind letter and a CRC-32 of the bytes.
_RENDER_MAGIC = b"G1"
_KIND_LETTER = {"envelope": b"E", "body": b"B", "bodystructure": b"S"}


def render(key: FetchAttr, value: Envelope | BodyStructure, *, utf8: bool = False) -> bytes:
    """An ENVELOPE, BODY or BODYSTRUCTURE value serialized for keeping, to be sent
    again later through :func:`preencoded` (``utf8``: as for a UTF8=ACCEPT session).

    The wire bytes are prefixed with a mark of their kind and a checksum, so that
    only bytes this function made are ever accepted as pre-encoded.
    """
    kind = _PREENCODED_KIND.get(key)
    if kind is None:
        raise ValueError(f"{key!r} values are not pre-encoded")
    value = _check_value(key, value)
    e = Encoder(utf8=utf8)
    _encode_value(e, key, value)
    data = e.join()
    return _RENDER_MAGIC + _KIND_LETTER[kind] + zlib.crc32(data).to_bytes(4, "big") + data


def preencoded(key: FetchAttr, stored: bytes) -> Preencoded:
    """The value of ``key`` from what :func:`render` made; ValueError for anything
    else (another kind, damaged or foreign bytes)."""
    value = preencoder(key)(stored)
    if value is None:
        raise ValueError(f"not a rendered {key!r}")
    return value


def preencoder(key: FetchAttr) -> Callable[[bytes], Preencoded | None]:
    """:func:`preencoded` for one key, for many values (None for bytes it refuses)."""
    kind = _PREENCODED_KIND.get(key)
    if kind is None:
        raise ValueError(f"{key!r} values are not pre-encoded")
    head = _RENDER_MAGIC + _KIND_LETTER[kind]
    crc32 = zlib.crc32
    checked = _CHECKED

    def check(stored: bytes) -> Preencoded | None:
        hashable = type(stored) is bytes
        known = checked.get(stored) if hashable else None
        if known is not None:
            return known
        data = bytes(stored[7:])
        if (stored[:3] != head or not data
                or int.from_bytes(stored[3:7], "big") != crc32(data)):
            return None
        made = Preencoded(kind, data)
        if hashable:
            if len(checked) >= _CHECKED_MAX:
                checked.clear()
            checked[stored] = made
        return made

    return check


#: Renderings found intact lately, and what they gave: a FETCH of the same messages
#: again (a client's next look at its mailbox) checks none of them twice. The kind
#: letter in the bytes keeps one kind's rendering from passing for another's.
_CHECKED: dict[bytes, Preencoded] = {}
_CHECKED_MAX = 4096


@attrs.frozen
class FetchBlock:
    """Several FETCH responses already serialized by :class:`FetchTemplate`."""

    data: bytes

    def encode(self, e: Encoder) -> None:
        """Write the responses without the final CRLF."""
        e.raw(self.data)


def _number(value: object) -> bytes:
    if type(value) is not int or value < 0:
        raise ValueError("a number is a non-negative int")
    return b"%d" % value


def _modseq(value: object) -> bytes:
    return b"(" + _number(value) + b")"


def _data(generic: Any) -> Any:
    """The encoder of a section's data (not BINARY's): bytes as a literal, as
    ``_encode_data`` writes them, without an Encoder per value; anything else by
    ``generic``."""
    def encode(value: FetchValue) -> bytes:
        if type(value) is bytes:
            return b"{%d}\r\n" % len(value) + value if value else b'""'
        out: bytes = generic(value)
        return out

    return encode


_DATE_CACHE: dict[dt.datetime, bytes] = {}


def _date_time(value: object) -> bytes:
    if not isinstance(value, dt.datetime):
        raise ValueError("a date-time is an aware datetime")
    if value.utcoffset():  # equal instants in other zones hash alike: not cached
        return format_date_time(value).encode("ascii")
    # Copies of a message share their INTERNALDATE: remember the last few thousand.
    out = _DATE_CACHE.get(value)
    if out is None:
        if len(_DATE_CACHE) >= 4096:
            _DATE_CACHE.clear()
        out = _DATE_CACHE[value] = format_date_time(value).encode("ascii")
    return out


#: FLAGS lists by flag set, shared by every template (bounded; then started over).
_FLAG_LISTS: dict[tuple[str, ...], bytes] = {}
#: Most distinct flag sets remembered.
MAX_FLAG_SETS = 4096


def _flag_list(value: tuple[str, ...]) -> bytes:
    out = _FLAG_LISTS.get(value)
    if out is None:
        if len(_FLAG_LISTS) >= MAX_FLAG_SETS:
            _FLAG_LISTS.clear()
        out = _FLAG_LISTS[value] = b"(" + " ".join(to_flags(value)).encode("ascii") + b")"
    return out


_FAST: dict[FetchItem, Any] = {
    FetchAttr.UID: _number, FetchAttr.RFC822_SIZE: _number,
    FetchAttr.MODSEQ: _modseq, FetchAttr.INTERNALDATE: _date_time,
    FetchAttr.FLAGS: _flag_list,
}


def _generic(key: FetchItem, utf8: bool) -> Any:
    # (Looked up once per key, not once per value.)
    kind = _PREENCODED_KIND.get(key)

    def encode(value: FetchValue) -> bytes:
        if isinstance(value, Preencoded):
            if kind != value.kind:
                raise ValueError(f"a pre-encoded {value.kind} is not a {key!r} value")
            return value.data
        e = Encoder(utf8=utf8)
        _encode_value(e, key, _check_value(key, value))
        return e.join()

    return encode


@functools.lru_cache(maxsize=1024)
def _key_encoder(key: FetchItem, utf8: bool) -> tuple[bytes, Any]:
    """``key``'s name as sent (with its space) and the encoder of its values.

    Kept per key, not only per template: imaptest's FETCHes ask for random lists of
    items (a thousand distinct lists in seconds), so templates come and go, and a
    new one is then only the joining of its keys' parts."""
    e = Encoder()
    encode_fetch_att(e, key)
    encoder = _FAST.get(key) or _generic(key, utf8)
    if (isinstance(key, BodySection) and not key.binary) or key in _DATA_ATTRS:
        encoder = _data(encoder)
    return e.join() + b" ", encoder


class FetchTemplate:
    """Serializes many FETCH responses that carry the same keys, faster than
    :class:`FetchData` (no per-item objects, no dispatch per item, FLAGS of a given
    flag set encoded once), with the same validation and the same bytes.

    A template refers to nothing that refers back to it (its encoders are
    functions of their key alone), so one dropped from the cache is freed at once
    rather than left to the cyclic collector.
    """

    def __init__(self, keys: tuple[FetchItem, ...], *, utf8: bool = False) -> None:
        self.keys = keys
        self.utf8 = utf8
        self._encoders: list[tuple[bytes, Any]] = [_key_encoder(key, utf8) for key in keys]
        self._encode = [enc for _, enc in self._encoders]
        self._format = b"* %d FETCH (" + b" ".join(
            name.replace(b"%", b"%%") + b"%s" for name, _ in self._encoders) + b")"

    def row(self, seq: int, values: tuple[FetchValue, ...] | list[FetchValue]) -> bytes:
        """``* seq FETCH (...)`` without CRLF; ``values`` in the order of ``keys``."""
        if type(seq) is not int or seq < 1:
            raise ValueError("a sequence number is a positive int")
        if len(values) != len(self._encoders):
            raise ValueError("one value per key")
        return self._format % (seq, *[enc(v) for enc, v in zip(self._encode, values, strict=True)])

    @staticmethod
    def block(rows: list[bytes]) -> FetchBlock:
        """The rows as one response object for the writer (which adds the last CRLF)."""
        return FetchBlock(b"\r\n".join(rows))


#: Templates by (keys, utf8), shared by every command of the process: a template
#: holds nothing of one session, and making one per command was ~5% of a FETCH of
#: a message list (its keys' names encoded, its encoders chosen; now kept per key
#: by ``_key_encoder``).
_TEMPLATES: dict[tuple[tuple[FetchItem, ...], bool], FetchTemplate] = {}
#: Most templates kept (one per distinct tuple of keys; then the cache starts over).
MAX_TEMPLATES = 1024


def template_for(keys: tuple[FetchItem, ...], *, utf8: bool = False) -> FetchTemplate:
    """The shared :class:`FetchTemplate` of ``keys``."""
    template = _TEMPLATES.get((keys, utf8))
    if template is None:
        if len(_TEMPLATES) >= MAX_TEMPLATES:
            _TEMPLATES.clear()
        template = _TEMPLATES[keys, utf8] = FetchTemplate(keys, utf8=utf8)
    return template


class FetchRows:
    """FETCH responses of many messages whose keys may differ from one to another:
    each serialized by a :class:`FetchTemplate` of its keys (the same bytes as
    :class:`FetchData`, at a fraction of the cost), except one with a streamed
    literal, which stays a :class:`FetchData`; ``take`` gives them in order."""

    def __init__(self, *, utf8: bool = False) -> None:
        self.utf8 = utf8
        self._rows: list[bytes] = []
        self._out: list[FetchBlock | FetchData] = []

    def add(self, seq: int, items: list[tuple[FetchItem, FetchValue]]) -> None:
        """The response ``* seq FETCH (items)``."""
        self.add_values(seq, tuple(k for k, _ in items), [v for _, v in items])

    def add_values(self, seq: int, keys: tuple[FetchItem, ...],
                   values: list[FetchValue]) -> None:
        """The response ``* seq FETCH (...)`` of ``keys`` and their ``values``, in order."""
        if LiteralBody in map(type, values):
            self._close_block()
            self._out.append(FetchData(seq, tuple(zip(keys, values, strict=True))))
            return
        self._rows.append(template_for(keys, utf8=self.utf8).row(seq, values))

    def take(self) -> list[FetchBlock | FetchData]:
        """The responses added since the last ``take``, in order."""
        self._close_block()
        out, self._out = self._out, []
        return out

    def _close_block(self) -> None:
        if self._rows:
            self._out.append(FetchTemplate.block(self._rows))
            self._rows = []
