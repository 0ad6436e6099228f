"""IMAP section specifiers (RFC 3501 §6.4.5) resolved to byte ranges of a message.

The store reads only the bytes a section needs: `section_range` maps a section to
an octet range of the original message; HEADER.FIELDS and HEADER.FIELDS.NOT then
filter the header block with `filter_header_fields`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import attrs

from duck.mime.model import IndexedMessage, Part

HEADER = "HEADER"
HEADER_FIELDS = "HEADER.FIELDS"
HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
TEXT = "TEXT"
MIME = "MIME"
_TEXTS = frozenset({HEADER, HEADER_FIELDS, HEADER_FIELDS_NOT, TEXT, MIME})


def _check_part(_instance: object, _attribute: object, value: tuple[int, ...]) -> None:
    if any(number < 1 for number in value):
        raise ValueError("section part numbers start at 1")


def _check_text(instance: SectionSpec, _attribute: object, value: str | None) -> None:
    if value is not None and value not in _TEXTS:
        raise ValueError(f"unknown section text {value!r}")
    if value == MIME and not instance.part:
        raise ValueError("MIME needs a part number (RFC 3501 §6.4.5)")


@attrs.frozen
class SectionSpec:
    """An IMAP section: part numbers plus an optional section-text."""

    part: tuple[int, ...] = attrs.field(default=(), validator=_check_part)
    #: None (the part body, or the whole message), HEADER, HEADER.FIELDS,
    #: HEADER.FIELDS.NOT, TEXT or MIME.
    text: str | None = attrs.field(default=None, validator=_check_text)
    #: Field names for HEADER.FIELDS / HEADER.FIELDS.NOT.
    fields: tuple[str, ...] = ()

    @property
    def filters_fields(self) -> bool:
        """True when the range's bytes must go through `filter_header_fields`."""
        return self.text in (HEADER_FIELDS, HEADER_FIELDS_NOT)


def resolve_part(root: Part, numbers: tuple[int, ...]) -> Part | None:
    """The part that BODY[numbers] designates, or None if it does not exist.

    A message/rfc822 part's numbers continue into its encapsulated message; number 1
    of a non-multipart message is that message's own (single) body.
    """
    current = root  # a message root
    at_message_root = True
    for number in numbers:
        if not at_message_root and current.message is not None:
            current, at_message_root = current.message, True
        if current.is_multipart:
            if number > len(current.children):
                return None
            current, at_message_root = current.children[number - 1], False
        elif at_message_root and number == 1:
            at_message_root = False  # the body part of a non-multipart message
        else:
            return None
    return current


def section_range(message: IndexedMessage | Part, spec: SectionSpec) -> tuple[int, int] | None:
    """The octet range [start, end) of the original message that `spec` names.

    None means the section does not exist: the FETCH answer is an empty string
    (RFC 3501 §6.4.5 leaves it to the server; servers answer with "").
    For HEADER.FIELDS(.NOT) this is the whole header block, to be filtered.
    """
    root = message.root if isinstance(message, IndexedMessage) else message
    if not spec.part:
        if spec.text is None:
            return root.header_start, root.body_end
        if spec.text == TEXT:
            return root.body_start, root.body_end
        return root.header_start, root.header_end  # HEADER, HEADER.FIELDS(.NOT)
    part = resolve_part(root, spec.part)
    if part is None:
        return None
    if spec.text is None:
        return part.body_start, part.body_end
    if spec.text == MIME:
        # For part 1 of a non-multipart message this is the message header, which
        # also holds that body's MIME fields.
        return part.header_start, part.header_end
    # HEADER and TEXT apply to message/rfc822 parts only (RFC 3501 §6.4.5).
    inner = part.message
    if inner is None:
        return None
    if spec.text == TEXT:
        return inner.body_start, inner.body_end
    return inner.header_start, inner.header_end


def filter_header_fields(header: bytes, names: Iterable[str], negate: bool) -> bytes:
    """The fields of a header block whose name is (or, negated, is not) in `names`.

    Field lines keep their original bytes and folding; the result ends with the
    block's blank line (CRLF if the block had none), as servers send it. Names
    compare case-insensitively as Latin-1 text (a name outside Latin-1 matches
    no field).
    """
    return join_header_fields(split_header_fields(header), names, negate)


@attrs.frozen
class HeaderFields:
    """A header block cut into its fields (``split_header_fields``), to be filtered
    by name any number of times (``join_header_fields``)."""

    #: (lowercased name, the field's bytes: its line and its folded continuations).
    fields: tuple[tuple[bytes, bytes], ...]
    #: The block's blank line (CRLF when it had none).
    terminator: bytes
    #: What ``join_header_fields`` made of it, by (names wanted, negated): a client
    #: fetching a range asks every message for the same fields, and again later.
    joined: dict[tuple[frozenset[bytes], bool], bytes] = attrs.field(
        factory=dict, eq=False, repr=False)
    #: Per lowercased name, the positions of its fields in ``fields`` (made at the
    #: first filter): a few names wanted out of a block of tens of fields (the
    #: Received lines) are found without a look at every field.
    positions: dict[bytes, list[int]] = attrs.field(factory=dict, eq=False, repr=False)


#: Most (names, negated) choices a HeaderFields remembers the answer of.
_JOINED_MAX = 8


def split_header_fields(header: bytes) -> HeaderFields:
    """``header`` cut into fields as ``filter_header_fields`` sends them: a last line
    without its line end gets CRLF; continuation lines before the first field are
    no field's and never sent."""
    fields: list[tuple[bytes, bytes]] = []
    terminator = b"\r\n"
    name: bytes | None = None
    chunk = bytearray()
    lines = header.split(b"\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if i < last:
            line += b"\n"
        elif not line:
            break  # (the block ended with a newline)
        if line == b"\r\n" or line == b"\n":
            terminator = line
            break
        first = line[:1]
        if first == b" " or first == b"\t":
            if name is not None:
                chunk += line
            continue
        if name is not None:
            fields.append((name, bytes(chunk)))
        field = line.partition(b":")[0].strip()
        name = field.lower() if field.isascii() else \
            field.decode("latin-1").lower().encode("latin-1")
        chunk = bytearray(line if i < last else line + b"\r\n")
    if name is not None:
        fields.append((name, bytes(chunk)))
    return HeaderFields(tuple(fields), terminator)


@functools.lru_cache(maxsize=256)
def _wanted(names: tuple[str, ...]) -> frozenset[bytes]:
    """The lowercased Latin-1 forms of ``names`` (one outside Latin-1 matches no
    field), made once per list of names: a FETCH of a range asks the same list of
    every message."""
    wanted: set[bytes] = set()
    for name in names:
        try:
            wanted.add(name.lower().encode("latin-1"))
        except UnicodeEncodeError:
            pass
    return frozenset(wanted)


def join_header_fields(split: HeaderFields, names: Iterable[str], negate: bool) -> bytes:
    """The fields of ``split`` named (or, negated, not named) in ``names``, and its
    blank line (``filter_header_fields``)."""
    wanted = _wanted(tuple(names))
    joined = split.joined.get((wanted, negate))
    if joined is None:
        fields = split.fields
        if negate:
            chunks = [chunk for name, chunk in fields if name not in wanted]
        else:
            positions = split.positions
            if not positions:
                for i, (name, _) in enumerate(fields):
                    positions.setdefault(name, []).append(i)
            found = [i for name in wanted for i in positions.get(name, ())]
            found.sort()  # (the block's own order)
            chunks = [fields[i][1] for i in found]
        chunks.append(split.terminator)
        joined = b"".join(chunks)
        if len(split.joined) >= _JOINED_MAX:
            split.joined.clear()
        split.joined[(wanted, negate)] = joined
    return joined


def section_bytes(data: bytes, message: IndexedMessage | Part, spec: SectionSpec) -> bytes:
    """The bytes of `spec` from a message held whole in `data` (tests, small messages)."""
    found = section_range(message, spec)
    if found is None:
        return b""
    chunk = data[found[0] : found[1]]
    if spec.filters_fields:
        return filter_header_fields(chunk, spec.fields, spec.text == HEADER_FIELDS_NOT)
    return chunk
