"""The emitting side of the token layer: atom, quoted or literal, chosen per value."""

from __future__ import annotations

import datetime as dt
import re

import attrs

from .lexer import ASTRING_ATOM_RE, ATOM_RE, LIST_CHARS_RE, MONTHS
from .mutf7 import encode_mailbox_name
from .sequence import SequenceSet

_QUOTABLE_RE = re.compile(rb'[\x01-\x09\x0b\x0c\x0e-\x7f]*')
_QUOTABLE_UTF8_RE = re.compile(rb'[^\x00\r\n]*')
#: Longer strings go as literals even when quotable, as most servers do.
MAX_QUOTED = 1000


@attrs.frozen
class LiteralBody:
    """A placeholder for literal data the server streams itself.

    :func:`serialize_chunks` emits the ``{size}\\r\\n`` prefix and then yields this
    object; the caller writes exactly ``size`` octets from ``source``.
    """

    size: int = attrs.field(validator=attrs.validators.ge(0))
    source: object = attrs.field(eq=False)
    binary: bool = False


@attrs.frozen
class Preencoded:
    """The wire form of one value, made earlier by this package's serializer and
    kept elsewhere (the store's renderings) so that it is not encoded again.

    ``kind`` names what it is (``envelope``, ``body``, ``bodystructure``); build it
    with ``resp_fetch.preencoded``, which checks the bytes, never directly from
    bytes of unknown origin.
    """

    kind: str
    data: bytes


class Encoder:
    """Accumulates output parts. ``utf8`` allows 8-bit quoted strings and raw UTF-8
    mailbox names (RFC 6855); ``literal_plus`` makes client literals ``{n+}``."""

    __slots__ = ("literal_plus", "out", "streamed", "utf8")

    def __init__(self, *, utf8: bool = False, literal_plus: bool = False) -> None:
        self.out: list[bytes | LiteralBody] = []
        self.streamed = False
        self.utf8 = utf8
        self.literal_plus = literal_plus

    def raw(self, data: bytes) -> None:
        """Append bytes verbatim."""
        self.out.append(data)

    def text(self, data: str) -> None:
        """Append ASCII text verbatim."""
        self.out.append(data.encode("ascii"))

    def sp(self) -> None:
        """Append one SP."""
        self.out.append(b" ")

    def number(self, n: int) -> None:
        """Append a decimal number."""
        self.out.append(str(n).encode("ascii"))

    def literal(self, data: bytes, *, binary: bool = False) -> None:
        """``literal`` (or ``literal8`` with ``binary``), synchronizing unless literal_plus."""
        plus = b"+" if self.literal_plus else b""
        prefix = b"~{" if binary else b"{"
        self.out.append(b"%s%d%s}\r\n" % (prefix, len(data), plus))
        self.out.append(data)

    def preencoded(self, value: Preencoded) -> None:
        """Append a value serialized earlier (see :class:`Preencoded`)."""
        self.out.append(value.data)

    def literal_body(self, body: LiteralBody) -> None:
        """A streamed literal: the prefix now, the placeholder for the data."""
        prefix = b"~{" if body.binary else b"{"
        self.out.append(b"%s%d}\r\n" % (prefix, body.size))
        self.out.append(body)
        self.streamed = True

    def string(self, data: bytes | str) -> None:
        """``string``: quoted when every octet may be quoted, else a literal."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        quotable = _QUOTABLE_UTF8_RE if self.utf8 else _QUOTABLE_RE
        if len(data) <= MAX_QUOTED and quotable.fullmatch(data):
            self.out.append(b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"')
        else:
            self.literal(data)

    def astring(self, data: bytes | str) -> None:
        """``astring``: bare atom when possible, else a string."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        if ASTRING_ATOM_RE.fullmatch(data):
            self.out.append(data)
        else:
            self.string(data)

    def nstring(self, data: bytes | str | None) -> None:
        """``nstring``: NIL for None, else always a string (so "NIL" stays a string)."""
        if data is None:
            self.out.append(b"NIL")
        else:
            self.string(data)

    def atom_or_string(self, data: str) -> None:
        """An atom when the value is one, else a string (e.g. ID values)."""
        raw = data.encode("utf-8", "surrogateescape")
        if ATOM_RE.fullmatch(raw) and raw.upper() != b"NIL":
            self.out.append(raw)
        else:
            self.string(raw)

    def mailbox_bytes(self, name: str) -> bytes:
        """The wire form of a mailbox name (UTF-8 or modified UTF-7)."""
        return name.encode("utf-8") if self.utf8 else encode_mailbox_name(name)

    def mailbox(self, name: str) -> None:
        """A mailbox name as astring."""
        self.astring(self.mailbox_bytes(name))

    def list_mailbox(self, pattern: str) -> None:
        """A list-mailbox pattern: bare list-chars when possible."""
        raw = self.mailbox_bytes(pattern)
        if LIST_CHARS_RE.fullmatch(raw):
            self.out.append(raw)
        else:
            self.string(raw)

    def flag_list(self, flags: tuple[str, ...]) -> None:
        """``"(" [flag *(SP flag)] ")"``."""
        self.out.append(b"(" + " ".join(flags).encode("ascii") + b")")

    def seq(self, s: SequenceSet) -> None:
        """A sequence set."""
        self.out.append(str(s).encode("ascii"))

    def date(self, d: dt.date) -> None:
        """``date-text`` (unquoted)."""
        self.text(f"{d.day}-{MONTHS[d.month - 1].title()}-{d.year:04d}")

    def date_time(self, t: dt.datetime) -> None:
        """``date-time``, quoted, with the value's own zone offset."""
        self.text(format_date_time(t))

    def join(self) -> bytes:
        """All output as bytes; TypeError if a streamed placeholder is present."""
        if self.streamed:
            raise TypeError("response holds a LiteralBody; use serialize_chunks")
        return b"".join(self.out)  # type: ignore[arg-type]


_TITLE_MONTHS = tuple(m.title() for m in MONTHS)


def format_date_time(t: dt.datetime) -> str:
    """``"dd-Mon-yyyy hh:mm:ss +zzzz"`` (space-padded day, RFC 3501 date-day-fixed)."""
    off = t.utcoffset()
    if off is None:
        raise ValueError("date-time needs a time zone")
    if not off:  # UTC, what the store keeps: the common case of a FETCH of many
        return (f'"{t.day:2d}-{_TITLE_MONTHS[t.month - 1]}-{t.year:04d} '
                f'{t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000"')
    total = int(off.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return (
        f'"{t.day:2d}-{MONTHS[t.month - 1].title()}-{t.year:04d} '
        f'{t.hour:02d}:{t.minute:02d}:{t.second:02d} {sign}{total // 60:02d}{total % 60:02d}"'
    )
