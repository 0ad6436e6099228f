"""SEARCH (RFC 3501 §6.4.4, ESEARCH/SEARCHRES RFC 4731/5182), SORT and THREAD
(RFC 5256, SORT=DISPLAY RFC 5957, ESORT and CONTEXT RFC 5267, PARTIAL RFC 9394)."""

from __future__ import annotations

import enum

import attrs

from .cmd_base import TAG_STR_RE, Command, is_token, to_tuple, to_upper
from .encode import Encoder
from .lexer import Cursor, decode_text
from .search_keys import SearchKey, encode_search_key, parse_search_key

SEARCH_RETURN_OPTIONS = frozenset({
    "MIN", "MAX", "ALL", "COUNT", "SAVE",
    "UPDATE", "CONTEXT",  # RFC 5267 §4.2, §4.3
    "PARTIAL",  # RFC 9394 §3 (with its range in the command's ``partial``)
})

#: ``partial-range``: ``(first, last)``, both positive (counted from the start) or
#: both negative (from the end), ``abs(first) <= abs(last)``.
PartialRange = tuple[int, int]
_UINT32 = 2**32 - 1


def _check_return(instance: object, attribute: object, value: tuple[str, ...] | None) -> None:
    if value is not None:
        for opt in value:
            if opt not in SEARCH_RETURN_OPTIONS:
                raise ValueError(f"unknown search return option {opt!r}")
        if len(set(value)) != len(value):
            raise ValueError("a search return option is given twice")


def check_partial(instance: object, attribute: object, value: PartialRange | None) -> None:
    """``partial`` goes with a "PARTIAL" return option, and is a well-formed range."""
    options = getattr(instance, "return_options", None) or ()
    if (value is not None) != ("PARTIAL" in options):
        raise ValueError("a PARTIAL return option and only it has a range")
    if value is not None:
        first, last = value
        if not (0 < first <= last <= _UINT32 or -_UINT32 <= last <= first < 0):
            raise ValueError(f"bad partial range {value!r}")


def parse_partial_range(c: Cursor) -> PartialRange:
    """``partial-range = partial-range-first / partial-range-last`` (RFC 9394 §3)::

        partial-range-first = nz-number ":" nz-number
        partial-range-last  = MINUS nz-number ":" MINUS nz-number

    Either end may come first (``4:2`` is ``2:4``, as for a seq-range)."""
    negative = c.accept(b"-")
    a = c.nz_number()
    c.expect(b":")
    if negative:
        c.expect(b"-")
    b = c.nz_number()
    lo, hi = sorted((a, b))
    return (-lo, -hi) if negative else (lo, hi)


def format_partial_range(value: PartialRange) -> str:
    """The wire form of a partial-range."""
    return f"{value[0]}:{value[1]}"


def _check_criteria(instance: object, attribute: object, value: tuple[SearchKey, ...]) -> None:
    if not value:
        raise ValueError("a search program has at least one key")


def _to_return(value: object) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.upper() for v in value)  # type: ignore[attr-defined]


def _parse_return(c: Cursor) -> tuple[tuple[str, ...], PartialRange | None]:
    """``RETURN SP "(" [search-return-opt *(SP search-return-opt)] ")"`` after SP,
    with ``search-return-opt =/ "PARTIAL" SP partial-range`` (RFC 9394)."""
    c.sp()
    partial: list[PartialRange] = []

    def option() -> str:
        opt = c.keyword()
        if opt not in SEARCH_RETURN_OPTIONS:
            raise c.error("unknown search return option")
        if opt == "PARTIAL":
            c.sp()
            partial.append(parse_partial_range(c))
        return opt

    opts = tuple(c.paren_list(option))
    if len(set(opts)) != len(opts):
        raise c.error("a search return option is given twice")
    return opts, partial[0] if partial else None


def _encode_return(e: Encoder, options: tuple[str, ...] | None,
                   partial: PartialRange | None) -> None:
    if options is not None:
        words = [f"PARTIAL {format_partial_range(partial)}" if o == "PARTIAL" and partial
                 else o for o in options]
        e.text(" RETURN (" + " ".join(words) + ")")


def _parse_keys(c: Cursor) -> tuple[SearchKey, ...]:
    keys = [parse_search_key(c)]
    while c.accept(b" "):
        keys.append(parse_search_key(c))
    return tuple(keys)


def _encode_keys(e: Encoder, keys: tuple[SearchKey, ...]) -> None:
    for key in keys:
        e.sp()
        encode_search_key(e, key)


def _check_charset(instance: object, attribute: object, value: str | None) -> None:
    if value is not None and not value:
        raise ValueError("empty charset")


@attrs.frozen
class Search(Command):
    """``[UID] SEARCH [RETURN (...)] [CHARSET charset] 1*search-key``.

    ``criteria`` holds the top-level keys (implicitly AND-ed); ``return_options`` is
    None without RETURN and ``()`` for ``RETURN ()`` (RFC 4731: same as ALL);
    ``partial`` is the range of a PARTIAL return option (RFC 9394).
    """

    VERB = "SEARCH"
    UID_FORM = True

    criteria: tuple[SearchKey, ...] = attrs.field(converter=to_tuple, validator=_check_criteria)
    charset: str | None = attrs.field(default=None, validator=_check_charset)
    return_options: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_return, validator=_check_return
    )
    uid: bool = False
    partial: PartialRange | None = attrs.field(default=None, validator=check_partial)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Search:
        c.sp()
        returns: tuple[str, ...] | None = None
        partial: PartialRange | None = None
        if c.accept_word(b"RETURN"):
            returns, partial = _parse_return(c)
            c.sp()
        charset = None
        if c.accept_word(b"CHARSET"):
            c.sp()
            charset = decode_text(c.astring())
            if not charset:
                raise c.error("empty charset")
            c.sp()
        return cls(tag, _parse_keys(c), charset, returns, uid, partial)

    def encode_args(self, e: Encoder) -> None:
        _encode_return(e, self.return_options, self.partial)
        if self.charset is not None:
            e.raw(b" CHARSET ")
            e.astring(self.charset)
        _encode_keys(e, self.criteria)


class SortKey(enum.Enum):
    """``sort-key`` (RFC 5256, DISPLAYFROM/DISPLAYTO from RFC 5957)."""

    ARRIVAL = "ARRIVAL"
    CC = "CC"
    DATE = "DATE"
    FROM = "FROM"
    SIZE = "SIZE"
    SUBJECT = "SUBJECT"
    TO = "TO"
    DISPLAYFROM = "DISPLAYFROM"
    DISPLAYTO = "DISPLAYTO"


@attrs.frozen
class SortCriterion:
    """``["REVERSE" SP] sort-key``."""

    key: SortKey
    reverse: bool = False


def _parse_criterion(c: Cursor) -> SortCriterion:
    reverse = c.accept_word(b"REVERSE")
    if reverse:
        c.sp()
    try:
        return SortCriterion(SortKey(c.keyword()), reverse)
    except ValueError:
        raise c.error("unknown sort key") from None


def _check_charset_required(instance: object, attribute: object, value: str) -> None:
    if not value:
        raise ValueError("SORT and THREAD need a charset")


@attrs.frozen
class Sort(Command):
    """``[UID] SORT [RETURN (...)] (sort-criteria) charset 1*(SP search-key)``."""

    VERB = "SORT"
    UID_FORM = True

    sort_criteria: tuple[SortCriterion, ...] = attrs.field(
        converter=to_tuple, validator=_check_criteria
    )
    charset: str = attrs.field(validator=_check_charset_required)
    criteria: tuple[SearchKey, ...] = attrs.field(converter=to_tuple, validator=_check_criteria)
    return_options: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_return, validator=_check_return
    )
    uid: bool = False
    partial: PartialRange | None = attrs.field(default=None, validator=check_partial)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Sort:
        c.sp()
        returns: tuple[str, ...] | None = None
        partial: PartialRange | None = None
        if c.accept_word(b"RETURN"):
            returns, partial = _parse_return(c)
            c.sp()
        crit = tuple(c.paren_list(lambda: _parse_criterion(c), allow_empty=False))
        c.sp()
        charset = decode_text(c.astring())
        if not charset:
            raise c.error("empty charset")
        c.sp()
        return cls(tag, crit, charset, _parse_keys(c), returns, uid, partial)

    def encode_args(self, e: Encoder) -> None:
        _encode_return(e, self.return_options, self.partial)
        e.text(
            " (" + " ".join(("REVERSE " if s.reverse else "") + s.key.value
                            for s in self.sort_criteria) + ") "
        )
        e.astring(self.charset)
        _encode_keys(e, self.criteria)


def _check_algorithm(instance: object, attribute: object, value: str) -> None:
    if not is_token(value):
        raise ValueError(f"bad thread algorithm {value!r}")


@attrs.frozen
class Thread(Command):
    """``[UID] THREAD SP thread-alg SP charset 1*(SP search-key)`` (RFC 5256)."""

    VERB = "THREAD"
    UID_FORM = True

    algorithm: str = attrs.field(converter=to_upper, validator=_check_algorithm)
    charset: str = attrs.field(validator=_check_charset_required)
    criteria: tuple[SearchKey, ...] = attrs.field(converter=to_tuple, validator=_check_criteria)
    uid: bool = False

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Thread:
        c.sp()
        algorithm = c.keyword()
        c.sp()
        charset = decode_text(c.astring())
        if not charset:
            raise c.error("empty charset")
        c.sp()
        return cls(tag, algorithm, charset, _parse_keys(c), uid)

    def encode_args(self, e: Encoder) -> None:
        e.text(f" {self.algorithm} ")
        e.astring(self.charset)
        _encode_keys(e, self.criteria)


def _check_tags(instance: object, attribute: object, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("CANCELUPDATE names at least one search")
    for tag in value:
        if not (tag.isascii() and TAG_STR_RE.fullmatch(tag)):
            raise ValueError(f"not a tag: {tag!r}")


@attrs.frozen
class CancelUpdate(Command):
    """``"CANCELUPDATE" 1*(SP quoted)`` (RFC 5267 §4.3): the tags of the searches
    whose updates stop."""

    VERB = "CANCELUPDATE"

    tags: tuple[str, ...] = attrs.field(converter=to_tuple, validator=_check_tags)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> CancelUpdate:
        tags = []
        while c.accept(b" "):
            tags.append(decode_text(c.quoted()))
        if not tags:
            raise c.error("CANCELUPDATE needs a quoted tag")
        try:
            return cls(tag, tuple(tags))
        except ValueError as exc:
            raise c.error(str(exc)) from None

    def encode_args(self, e: Encoder) -> None:
        for t in self.tags:
            e.sp()
            e.string(t)
