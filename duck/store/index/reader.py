"""Byte-exact reassembly of stored messages, and ranged reads.

A stored message is a list of segments (inline skeleton runs and GridFS bodies)
that concatenate to the delivered bytes. A read of ``[start, end)`` touches only
the segments it overlaps, and within a body only the GridFS chunks it covers
(GridOut seeks and fetches chunks lazily): a header fetch never opens GridFS,
a partial fetch of a 1 GB attachment reads one or two chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence

from duck.mime.sections import (
    HEADER_FIELDS_NOT,
    HeaderFields,
    SectionSpec,
    join_header_fields,
    section_range,
    split_header_fields,
)

from ..engine.bodies import CHUNK_SIZE, Bodies
from ..engine.database import Database
from ..errors import InvalidInput
from ..models import MessageRecord, Segment

#: Header blocks kept cut into fields (``_SPLIT``), and the largest one kept: a
#: client's message list asks HEADER.FIELDS of the same messages again and again
#: (imaptest: about one FETCH in two), and the cut, a loop over the block's lines,
#: was most of the cost of each answer. At most 16 MB, a few MB with headers of a
#: usual size (imaptest's working set is ~1,200 blocks).
SPLIT_HEADERS = 2048
SPLIT_MAX = 8 * 1024
#: (message id, start, end) -> the block at those offsets, cut. A stored message's
#: bytes never change, so an entry is never stale.
_SPLIT: dict[tuple[str, int, int], HeaderFields] = {}

#: Largest piece ``stream`` yields (one GridFS chunk: one round trip each).
STREAM_PIECE = CHUNK_SIZE


def _clamp(segments: Sequence[Segment], start: int, end: int | None) -> tuple[int, int]:
    total = segments[-1].offset + segments[-1].length if segments else 0
    stop = total if end is None else min(end, total)
    if start < 0 or stop < 0:
        raise InvalidInput("negative offset")
    return min(start, stop), stop


def _pieces(
    segments: Sequence[Segment], start: int, end: int, piece: int
) -> Iterator[tuple[Segment, int, int]]:
    """(segment, from, to) offsets within segments for ``[start, end)``, in order.

    Body pieces are cut at multiples of ``piece`` within the body, so that a piece
    of one chunk's size reads exactly one GridFS chunk.
    """
    for seg in segments:
        lo = max(start, seg.offset)
        hi = min(end, seg.offset + seg.length)
        if lo >= hi:
            continue
        a = lo - seg.offset
        b = hi - seg.offset
        if seg.data is not None:
            yield seg, a, b
            continue
        while a < b:
            stop = min(b, (a // piece + 1) * piece)
            yield seg, a, stop
            a = stop


def read_sync(bodies: Bodies, segments: Sequence[Segment], start: int = 0,
              end: int | None = None) -> bytes:
    """The bytes ``[start, end)`` of a stored message (blocking).

    One query per body touched, for exactly the chunks the range covers.
    """
    lo, hi = _clamp(segments, start, end)
    out = bytearray()
    for seg, a, b in _pieces(segments, lo, hi, max(hi - lo, 1) + CHUNK_SIZE):
        out += _slice_sync(bodies, seg, a, b)
    return bytes(out)


def _slice_sync(bodies: Bodies, seg: Segment, a: int, b: int) -> bytes:
    if seg.data is not None:
        return seg.data[a:b]
    assert seg.file_id is not None
    return bodies.read(seg.file_id, a, b)


def _segments(record: MessageRecord) -> tuple[Segment, ...]:
    if record.segments is None:
        raise InvalidInput("record was fetched without the 'content' field")
    return record.segments


def read_inline(record: MessageRecord, start: int = 0, end: int | None = None) -> bytes | None:
    """The bytes ``[start, end)`` of a fetched message when they lie in its inline
    skeleton (every header section, and the whole of most messages): cut out here,
    without the database; None when a body stored apart has some of them."""
    segments = _segments(record)
    lo, hi = _clamp(segments, start, end)
    pieces = list(_pieces(segments, lo, hi, max(hi - lo, 1) + CHUNK_SIZE))
    if all(seg.data is not None for seg, _, _ in pieces):
        return b"".join(seg.data[a:b] for seg, a, b in pieces if seg.data is not None)
    return None


async def read(database: Database, bodies: Bodies, record: MessageRecord, start: int = 0,
               end: int | None = None) -> bytes:
    """The bytes ``[start, end)`` of a fetched message (``end=None``: to the end).

    A range within the inline skeleton is cut out here (``read_inline``): no worker
    thread, no database.
    """
    data = read_inline(record, start, end)
    if data is not None:
        return data
    return await database.run(read_sync, bodies, _segments(record), start, end)


async def stream(database: Database, bodies: Bodies, record: MessageRecord, start: int = 0,
                 end: int | None = None, piece: int = STREAM_PIECE) -> AsyncIterator[bytes]:
    """The bytes ``[start, end)`` as chunks of at most ``piece`` octets.

    Memory stays at one piece whatever the message size; each body piece is one
    worker-thread call under the store limiter.
    """
    segments = _segments(record)
    lo, hi = _clamp(segments, start, end)
    inline = bytearray()
    for seg, a, b in _pieces(segments, lo, hi, piece):
        if seg.data is not None:
            inline += seg.data[a:b]
            if len(inline) >= piece:
                yield bytes(inline)
                inline.clear()
            continue
        if inline:
            yield bytes(inline)
            inline.clear()
        yield await database.run(_slice_sync, bodies, seg, a, b)
    if inline:
        yield bytes(inline)


def read_section_inline(record: MessageRecord, spec: SectionSpec,
                        partial: tuple[int, int] | None = None) -> bytes | None:
    """``read_section`` when the section lies in the inline skeleton (every header
    section, and most sections of most messages), without the database; None when
    it needs it. A FETCH of a message list asks this of each message: no await
    chain per message."""
    if record.structure is None:
        raise InvalidInput("record was fetched without the 'structure' field")
    found = section_range(record.structure, spec)
    if found is None:
        return b""
    lo, hi = found
    if spec.filters_fields:
        key = (record.id, lo, hi)
        split = _SPLIT.get(key)
        if split is None:
            raw = read_inline(record, lo, hi)
            if raw is None:
                return None
            split = _keep_split(key, raw, hi - lo)
        return _fields(split, spec, partial)
    lo, hi = _window(lo, hi, partial)
    return read_inline(record, lo, hi)


def _fields(split: HeaderFields, spec: SectionSpec, partial: tuple[int, int] | None) -> bytes:
    """HEADER.FIELDS[.NOT] of a header block cut into fields, narrowed to ``partial``."""
    data = join_header_fields(split, spec.fields, spec.text == HEADER_FIELDS_NOT)
    if partial is not None:
        data = data[partial[0]:partial[0] + partial[1]]
    return data


def _keep_split(key: tuple[str, int, int], raw: bytes, size: int) -> HeaderFields:
    """A header block cut into fields, kept in ``_SPLIT`` when it is small enough."""
    split = split_header_fields(raw)
    if size <= SPLIT_MAX:
        if len(_SPLIT) >= SPLIT_HEADERS:
            _SPLIT.clear()
        _SPLIT[key] = split
    return split


def _window(lo: int, hi: int, partial: tuple[int, int] | None) -> tuple[int, int]:
    """The octets ``[lo, hi)`` of a section narrowed to ``partial`` (start, length)."""
    if partial is None:
        return lo, hi
    start, length = partial
    if start < 0 or length < 0:
        raise InvalidInput("negative partial range")
    return min(lo + start, hi), min(lo + start + length, hi)


async def read_section(
    database: Database, bodies: Bodies, record: MessageRecord, spec: SectionSpec,
    partial: tuple[int, int] | None = None,
) -> bytes:
    """BODY[section]<start.length>: ``partial`` is (start, length) within the section."""
    data = read_section_inline(record, spec, partial)
    if data is not None:
        return data
    assert record.structure is not None  # (read_section_inline checked)
    found = section_range(record.structure, spec)
    assert found is not None  # (else read_section_inline gave b"")
    lo, hi = found
    if spec.filters_fields:
        split = _keep_split((record.id, lo, hi), await read(database, bodies, record, lo, hi),
                            hi - lo)
        return _fields(split, spec, partial)
    lo, hi = _window(lo, hi, partial)
    return await read(database, bodies, record, lo, hi)
