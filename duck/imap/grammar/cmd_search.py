"""SEARCH (RFC 3501 §6.4.4, ESEARCH/SEARCHRES RFC 4731/5182), SORT and THREAD
(RFC 5256, SORT=DISPLAY RFC 5957, ESORT RFC 5267)."""

from __future__ import annotations

import enum

import attrs

from .cmd_base import Command, is_token, to_tuple, to_upper
from .encode import Encoder
from .lexer import Cursor, decode_text
from .search_keys import SearchKey, encode_search_key, parse_search_key

SEARCH_RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})


def _check_return(instance: object, attribute: object, value: tuple[str, ...] | None) -> None:
    if value is not None:
        for opt in value:
            if opt not in SEARCH_RETURN_OPTIONS:
                raise ValueError(f"unknown search return option {opt!r}")


def _check_criteria(instance: object, attribute: object, value: tuple[SearchKey, ...]) -> None:
    if not value:
        raise ValueError("a search program has at least one key")


def _to_return(value: object) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.upper() for v in value)  # type: ignore[attr-defined]


def _parse_return(c: Cursor) -> tuple[str, ...]:
    """``RETURN SP "(" [search-return-opt *(SP search-return-opt)] ")"`` after SP."""
    c.sp()
    opts = tuple(c.paren_list(c.keyword))
    for opt in opts:
        if opt not in SEARCH_RETURN_OPTIONS:
            raise c.error("unknown search return option")
    return opts


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
    None without RETURN and ``()`` for ``RETURN ()`` (RFC 4731: same as ALL).
    """

    VERB = "SEARCH"
    UID_FORM = True

    criteria: tuple[SearchKey, ...] = attrs.field(converter=to_tuple, validator=_check_criteria)
    charset: str | None = attrs.field(default=None, validator=_check_charset)
    return_options: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_return, validator=_check_return
    )
    uid: bool = False

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Search:
        c.sp()
        returns = None
        if c.accept_word(b"RETURN"):
            returns = _parse_return(c)
            c.sp()
        charset = None
        if c.accept_word(b"CHARSET"):
            c.sp()
            charset = decode_text(c.astring())
            if not charset:
                raise c.error("empty charset")
            c.sp()
        return cls(tag, _parse_keys(c), charset, returns, uid)

    def encode_args(self, e: Encoder) -> None:
        if self.return_options is not None:
            e.text(" RETURN (" + " ".join(self.return_options) + ")")
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

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Sort:
        c.sp()
        returns = None
        if c.accept_word(b"RETURN"):
            returns = _parse_return(c)
            c.sp()
        crit = tuple(c.paren_list(lambda: _parse_criterion(c), allow_empty=False))
        c.sp()
        charset = decode_text(c.astring())
        if not charset:
            raise c.error("empty charset")
        c.sp()
        return cls(tag, crit, charset, _parse_keys(c), returns, uid)

    def encode_args(self, e: Encoder) -> None:
        if self.return_options is not None:
            e.text(" RETURN (" + " ".join(self.return_options) + ")")
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
