"""The base class of client commands and the converters their fields share."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

import attrs

from .encode import Encoder
from .lexer import ATOM_RE, FLAG_RE, TAG_RE, Cursor, normalize_flag
from .mutf7 import normalize_mailbox


def is_token(value: object, regex: re.Pattern[bytes] = ATOM_RE) -> bool:
    """Whether ``value`` is an ASCII str wholly matching ``regex`` (an atom by default)."""
    return isinstance(value, str) and value.isascii() and bool(regex.fullmatch(value.encode()))


TAG_STR_RE = re.compile(TAG_RE.pattern.decode("ascii"))


def _check_tag(instance: object, attribute: object, value: str) -> None:
    if not (isinstance(value, str) and value.isascii() and TAG_STR_RE.fullmatch(value)):
        raise ValueError(f"invalid tag {value!r}")


#: Flags already checked, by how they were given, with their canonical spelling:
#: every FETCH FLAGS, LIST and STORE validates its flags, and a process sees the
#: same few hundred again and again (a LIST and a STATUS took 1.32 M instructions
#: checking each, 1.17 M so: bench/instruction_costs.py). Cleared past ``_FLAGS_MAX``.
_FLAGS: dict[str, str] = {}
_FLAGS_MAX = 4096


def to_flags(flags: Iterable[str]) -> tuple[str, ...]:
    """Converter: a tuple of flags with system flags canonically spelt, validated."""
    known = _FLAGS
    out = []
    for f in flags:
        canonical = known.get(f) if type(f) is str else None
        if canonical is None:
            canonical = normalize_flag(f)
            if not is_token(canonical, FLAG_RE):
                raise ValueError(f"invalid flag {canonical!r}")
            if len(known) >= _FLAGS_MAX:
                known.clear()
            known[f] = canonical
        out.append(canonical)
    return tuple(out)


def to_upper(value: str) -> str:
    """Converter: upper-cased (case-insensitive keywords)."""
    return value.upper()


def to_tuple(values: Iterable[Any]) -> tuple[Any, ...]:
    """Converter: any iterable as a tuple (named, so type checkers understand it)."""
    return tuple(values)


def to_pairs(values: Iterable[Any] | None) -> tuple[tuple[Any, Any], ...] | None:
    """Converter: an iterable of pairs (or a dict) as a tuple of 2-tuples; None stays."""
    if values is None:
        return None
    items = values.items() if isinstance(values, dict) else values
    return tuple((k, v) for k, v in items)


def to_perm_flags(flags: Iterable[str]) -> tuple[str, ...]:
    """Converter: like :func:`to_flags` but also allowing ``\\*`` (flag-perm)."""
    flags = tuple(flags)
    return tuple(f if f == "\\*" else to_flags((f,))[0] for f in flags)


def to_mailbox(name: str) -> str:
    """Converter: a mailbox name with INBOX case-normalised (RFC 3501 §5.1)."""
    return normalize_mailbox(name)


def upper_tuple(values: Iterable[str]) -> tuple[str, ...]:
    """Converter: a tuple of upper-cased atoms (case-insensitive keywords)."""
    return tuple(v.upper() for v in values)


@attrs.frozen
class Command:
    """A parsed client command. Every command carries the client's ``tag``."""

    VERB: ClassVar[str] = ""
    #: Whether the command may be prefixed by UID (then it has a ``uid`` field).
    UID_FORM: ClassVar[bool] = False

    tag: str = attrs.field(validator=_check_tag)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Any:
        """Parse the arguments after the verb (the default: none)."""
        return cls(tag)

    def encode_args(self, e: Encoder) -> None:
        """Write the arguments after the verb, each preceded by SP (default: none)."""
