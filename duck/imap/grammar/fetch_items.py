"""FETCH data items (RFC 3501 §6.4.5, RFC 9051 §6.4.5, BINARY RFC 3516, CONDSTORE
RFC 7162, OBJECTID RFC 8474, SAVEDATE RFC 8514), shared by FETCH, NOTIFY and the
FETCH response."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable

import attrs

from .cmd_base import to_tuple
from .encode import Encoder
from .lexer import Cursor, decode_text

_SECTION_PART_RE = re.compile(rb"[1-9]\d*(?:\.[1-9]\d*)*")
_FETCH_NAME_RE = re.compile(rb"[A-Za-z0-9.]+")
_BAD_FIELD_RE = re.compile(r"[\r\n\0]")
# Fast path: a header-list of plain atoms, the form every client sends.
_ATOM_FIELDS_RE = re.compile(rb"\(([!#$&'+-\[^-z|}~]+(?: [!#$&'+-\[^-z|}~]+)*)\)")


class FetchAttr(enum.Enum):
    """Fetch items that take no section."""

    # Hashed by identity, in C: Enum's own ``__hash__`` is a Python call (hash of the
    # name), and FETCH hashes its keys a few dozen times a command. (Members are
    # singletons and compare by identity, so the two agree.)
    __hash__ = object.__hash__

    ENVELOPE = "ENVELOPE"
    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822 = "RFC822"
    RFC822_HEADER = "RFC822.HEADER"
    RFC822_SIZE = "RFC822.SIZE"
    RFC822_TEXT = "RFC822.TEXT"
    BODY = "BODY"
    BODYSTRUCTURE = "BODYSTRUCTURE"
    UID = "UID"
    MODSEQ = "MODSEQ"
    EMAILID = "EMAILID"
    THREADID = "THREADID"
    SAVEDATE = "SAVEDATE"
    PREVIEW = "PREVIEW"  # RFC 8970


#: RFC 8970 §3 ``preview-mod``: the modifiers PREVIEW takes.
PREVIEW_MODIFIERS = frozenset({"LAZY"})

_ATTR_BY_BYTES = {a.value.encode(): a for a in FetchAttr}

#: RFC 3501 §6.4.5 macros, expanded at parse time (FETCH never keeps the macro).
MACROS: dict[str, tuple[FetchAttr, ...]] = {
    "FAST": (FetchAttr.FLAGS, FetchAttr.INTERNALDATE, FetchAttr.RFC822_SIZE),
    "ALL": (FetchAttr.FLAGS, FetchAttr.INTERNALDATE, FetchAttr.RFC822_SIZE, FetchAttr.ENVELOPE),
    "FULL": (
        FetchAttr.FLAGS, FetchAttr.INTERNALDATE, FetchAttr.RFC822_SIZE, FetchAttr.ENVELOPE,
        FetchAttr.BODY,
    ),
}


class SectionText(enum.Enum):
    """``section-text`` / ``section-msgtext``."""

    __hash__ = object.__hash__  # (as FetchAttr's)

    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"


def _to_part(value: Iterable[int]) -> tuple[int, ...]:
    if value == ():
        return ()
    part = tuple(value)
    for n in part:
        if not isinstance(n, int) or not 1 <= n <= 2**32 - 1:
            raise ValueError(f"section part numbers are non-zero: {part!r}")
    return part


def _check_partial(instance: object, attribute: object,
                   value: tuple[int, int | None] | None) -> None:
    if value is None:
        return
    start, length = value
    if not 0 <= start <= 2**32 - 1 or (length is not None and not 1 <= length <= 2**32 - 1):
        raise ValueError(f"bad partial {value!r}")


@attrs.frozen(cache_hash=True)  # (a key of several dicts per message FETCHed)
class BodySection:
    """``BODY[section]<partial>``, ``BODY.PEEK[...]``, ``BINARY[.PEEK][part]<partial>``.

    ``part`` is the section-part (``1.2`` → ``(1, 2)``), ``text`` the section-text,
    ``fields`` the header-list of HEADER.FIELDS[.NOT]. ``partial`` is
    ``(start, length)`` in a command; in a FETCH response the key carries only the
    origin, as ``(origin, None)`` (see :meth:`response_key`).
    """

    part: tuple[int, ...] = attrs.field(default=(), converter=_to_part)
    text: SectionText | None = None
    fields: tuple[str, ...] = attrs.field(default=(), converter=to_tuple)
    peek: bool = False
    binary: bool = False
    partial: tuple[int, int | None] | None = attrs.field(default=None, validator=_check_partial)

    def __attrs_post_init__(self) -> None:
        header_list = self.text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT)
        if header_list != bool(self.fields):
            raise ValueError("header fields go with HEADER.FIELDS[.NOT] and only there")
        if self.text is SectionText.MIME and not self.part:
            raise ValueError("MIME needs a section part")
        if self.binary and self.text is not None:
            raise ValueError("BINARY sections have no section text")
        for f in self.fields:
            if not f or _BAD_FIELD_RE.search(f):
                raise ValueError(f"bad header field name {f!r}")

    def response_key(self) -> BodySection:
        """The key a FETCH response uses for this item: no PEEK, origin only."""
        return _response_key(self)


@functools.lru_cache(maxsize=1024)
def _response_key(section: BodySection) -> BodySection:
    # (Made once per distinct item: evolve runs the validators again, and a client
    # asks the same few items in command after command.)
    partial = None if section.partial is None else (section.partial[0], None)
    return attrs.evolve(section, peek=False, partial=partial)


@attrs.frozen
class BinarySize:
    """``BINARY.SIZE[part]`` (RFC 3516)."""

    part: tuple[int, ...] = attrs.field(default=(), converter=_to_part)


FetchItem = FetchAttr | BodySection | BinarySize


def parse_fetch_att(c: Cursor, *, response: bool = False) -> FetchItem:
    """``fetch-att`` (or, with ``response``, the key of a ``msg-att``)."""
    m = _FETCH_NAME_RE.match(c.buf, c.pos)
    if m is None:
        raise c.error("expected fetch item")
    c.pos = m.end()
    if c.pos >= len(c.buf) or c.buf[c.pos] != 0x5B:  # no "[": a plain item
        attr = _ATTR_BY_BYTES.get(m.group().upper())
        if attr is None:
            raise c.error("unknown fetch item")
        if attr is FetchAttr.PREVIEW and not response and c.peek_is(b" ("):
            # RFC 8970 §3: ``"PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]``.
            # LAZY lets a server answer NIL when no preview is at hand; one is always
            # made here, so the modifier changes nothing and is not kept.
            c.sp()
            for mod in c.paren_list(c.keyword, allow_empty=False):
                if mod not in PREVIEW_MODIFIERS:
                    raise c.error("unknown PREVIEW modifier")
        return attr
    name = m.group().decode("ascii").upper()
    if name == "BODY" or (name == "BODY.PEEK" and not response):
        return _parse_section(c, peek=name == "BODY.PEEK", binary=False, response=response)
    if name == "BINARY" or (name == "BINARY.PEEK" and not response):
        return _parse_section(c, peek=name == "BINARY.PEEK", binary=True, response=response)
    if name == "BINARY.SIZE":
        c.pos += 1
        part = _parse_part(c)
        c.expect(b"]")
        return BinarySize(part)
    raise c.error("unexpected section")


# The common shapes of a section in one match; anything else takes the general path.
_SECTION_FAST_RE = re.compile(
    rb"\[(?P<part>[1-9]\d{0,9}(?:\.[1-9]\d{0,9})*)?"
    rb"(?:(?(part)\.)(?P<text>(?i:HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)))?"
    rb"(?: \((?P<fields>[!#$&'+-\[^-z|}~]+(?: [!#$&'+-\[^-z|}~]+)*)\))?\]"
    rb"(?:<(?P<start>\d{1,10})(?:\.(?P<len>[1-9]\d{0,9}))?>)?"
)
_SECTION_TEXT = {t.value.encode(): t for t in SectionText}


def _parse_section_fast(c: Cursor, peek: bool, binary: bool, response: bool) -> BodySection | None:
    m = _SECTION_FAST_RE.match(c.buf, c.pos)
    if m is None:
        return None
    part_b, text_b, fields_b, start_b, len_b = m.group("part", "text", "fields", "start", "len")
    if (text_b is None) != (fields_b is None) and fields_b is not None:
        return None
    if (response and len_b is not None) or (not response and start_b is not None and len_b is None):
        return None
    if fields_b is not None and c.depth >= c.max_depth:
        return None
    text = None if text_b is None else _SECTION_TEXT[text_b.upper()]
    partial: tuple[int, int | None] | None = None
    if start_b is not None:
        partial = (int(start_b), None if len_b is None else int(len_b))
    try:
        section = BodySection(
            () if part_b is None else tuple(int(n) for n in part_b.split(b".")), text,
            () if fields_b is None else tuple(fields_b.decode("ascii").split(" ")),
            peek, binary, partial,
        )
    except ValueError:
        return None  # the general path reports the precise error
    c.pos = m.end()
    return section


def _parse_part(c: Cursor) -> tuple[int, ...]:
    m = _SECTION_PART_RE.match(c.buf, c.pos)
    if m is None:
        return ()
    c.pos = m.end()
    try:
        return _to_part(int(n) for n in m.group().split(b"."))
    except ValueError:
        raise c.error("section part number out of range") from None


def _parse_section(c: Cursor, *, peek: bool, binary: bool, response: bool) -> BodySection:
    fast = _parse_section_fast(c, peek, binary, response)
    if fast is not None:
        return fast
    c.pos += 1  # "["
    part = _parse_part(c)
    text = None
    fields: tuple[str, ...] = ()
    if not binary and c.peek() != 0x5D:
        if part:
            c.expect(b".")
        word = c.match(_FETCH_NAME_RE, "section text").decode("ascii").upper()
        try:
            text = SectionText(word)
        except ValueError:
            raise c.error("unknown section text") from None
        if text is SectionText.MIME and not part:
            raise c.error("MIME needs a section part")
        if text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
            c.sp()
            fm = _ATOM_FIELDS_RE.match(c.buf, c.pos)
            if fm is not None and c.depth < c.max_depth:
                c.pos = fm.end()
                fields = tuple(fm.group(1).decode("ascii").split(" "))
            else:
                fields = tuple(c.paren_list(lambda: decode_text(c.astring()), allow_empty=False))
    c.expect(b"]")
    partial: tuple[int, int | None] | None = None
    if c.accept(b"<"):
        start = c.number()
        if response:
            partial = (start, None)
        else:
            c.expect(b".")
            partial = (start, c.nz_number())
        c.expect(b">")
    try:
        return BodySection(part, text, fields, peek, binary, partial)
    except ValueError as exc:
        raise c.error(str(exc)) from None


def parse_section_text(text: bytes) -> BodySection:
    """A ``section-spec`` on its own (what is between ``BODY[`` and ``]``), as an IMAP
    URL's ``;SECTION=`` carries it (RFC 5092 §6); ValueError when it is not one."""
    if any(ch in text for ch in b"[]<"):
        raise ValueError("a section holds no brackets")
    c = Cursor(b"[" + text + b"]")
    section = _parse_section(c, peek=True, binary=False, response=False)
    if not c.at_end():
        raise c.error("unexpected octets after the section")
    return section


def encode_fetch_att(e: Encoder, item: FetchItem) -> None:
    """Write one fetch item (command form, or response key when partial has no length)."""
    if isinstance(item, FetchAttr):
        e.text(item.value)
    elif isinstance(item, BinarySize):
        e.text("BINARY.SIZE[" + ".".join(map(str, item.part)) + "]")
    else:
        name = "BINARY" if item.binary else "BODY"
        e.text(name + (".PEEK[" if item.peek else "["))
        spec = ".".join(map(str, item.part))
        if item.text is not None:
            spec = f"{spec}.{item.text.value}" if spec else item.text.value
        e.text(spec)
        if item.fields:
            e.raw(b" (")
            for i, f in enumerate(item.fields):
                if i:
                    e.sp()
                e.astring(f)
            e.raw(b")")
        e.raw(b"]")
        if item.partial is not None:
            start, length = item.partial
            e.text(f"<{start}>" if length is None else f"<{start}.{length}>")
