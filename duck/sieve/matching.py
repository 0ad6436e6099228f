"""Comparators and match types (RFC 5228 section 2.7, RFC 5231 relational).

``:matches`` is done without backtracking: the pattern is split at ``*``, each
piece is found leftmost after the previous one and the last is anchored at the
end. That is linear in the value for each piece (no pattern blows up), and it
makes every ``*`` match as little as it can, which decides the match variables
``${1}``... of RFC 5229 section 3.2.
"""

from __future__ import annotations

import attrs

_ASCII_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def casemap(value: str) -> str:
    """i;ascii-casemap: ASCII letters folded, everything else as is (RFC 4790 9.2)."""
    return value.translate(_ASCII_UPPER)


def numeric_key(value: str) -> int | None:
    """i;ascii-numeric: the leading digits' value; None ("positive infinity") when
    the string does not start with a digit (RFC 4790 section 9.1)."""
    end = 0
    while end < len(value) and "0" <= value[end] <= "9":
        end += 1
    return int(value[:end]) if end else None


@attrs.frozen
class MatchResult:
    """Whether a key matched, and the captured wildcards for ``${1}``..."""

    matched: bool
    captures: tuple[str, ...] = ()


def _fold(comparator: str, value: str) -> str:
    return casemap(value) if comparator == "i;ascii-casemap" else value


def equals(comparator: str, a: str, b: str) -> bool:
    """:is under a comparator."""
    if comparator == "i;ascii-numeric":
        return numeric_key(a) == numeric_key(b)
    return _fold(comparator, a) == _fold(comparator, b)


def contains(comparator: str, value: str, key: str) -> bool:
    """:contains under a comparator."""
    return _fold(comparator, key) in _fold(comparator, value)


def order(comparator: str, a: str, b: str) -> int:
    """-1, 0, 1 as ``a`` sorts before, with, after ``b`` (for :value)."""
    if comparator == "i;ascii-numeric":
        ka, kb = numeric_key(a), numeric_key(b)
        if ka == kb:
            return 0
        if ka is None:
            return 1
        if kb is None:
            return -1
        return -1 if ka < kb else 1
    fa, fb = _fold(comparator, a), _fold(comparator, b)
    if comparator == "i;octet":
        fa_b, fb_b = fa.encode("utf-8", "surrogatepass"), fb.encode("utf-8", "surrogatepass")
        return (fa_b > fb_b) - (fa_b < fb_b)
    return (fa > fb) - (fa < fb)


def relation(operator: str, cmp: int) -> bool:
    """Apply a relational operator (RFC 5231 section 4) to an ``order`` result."""
    return {
        "gt": cmp > 0, "ge": cmp >= 0, "lt": cmp < 0,
        "le": cmp <= 0, "eq": cmp == 0, "ne": cmp != 0,
    }[operator.lower()]


def _pattern(key: str) -> list[list[str | None]]:
    """Split a :matches key into pieces between ``*``; in a piece, None is ``?``
    and a string is one literal character (backslash escapes undone)."""
    pieces: list[list[str | None]] = [[]]
    i = 0
    while i < len(key):
        ch = key[i]
        if ch == "\\" and i + 1 < len(key):
            pieces[-1].append(key[i + 1])
            i += 2
            continue
        if ch == "*":
            pieces.append([])
        elif ch == "?":
            pieces[-1].append(None)
        else:
            pieces[-1].append(ch)
        i += 1
    return pieces


def _piece_at(value: str, at: int, piece: list[str | None]) -> bool:
    if at + len(piece) > len(value):
        return False
    return all(p is None or value[at + k] == p for k, p in enumerate(piece))


def _find(value: str, start: int, end: int, piece: list[str | None]) -> int:
    for at in range(start, end - len(piece) + 1):
        if _piece_at(value, at, piece):
            return at
    return -1


def matches(comparator: str, value: str, key: str) -> MatchResult:
    """:matches with ``*`` and ``?`` wildcards; captures every wildcard's text."""
    folded_value = _fold(comparator, value)
    pieces = [[None if c is None else _fold(comparator, c) for c in piece]
              for piece in _pattern(key)]
    first, rest = pieces[0], pieces[1:]
    if not _piece_at(folded_value, 0, first) or (not rest and len(first) != len(value)):
        return MatchResult(False)
    captures: list[str] = []

    def take_questions(piece: list[str | None], at: int) -> None:
        captures.extend(value[at + k] for k, p in enumerate(piece) if p is None)

    take_questions(first, 0)
    pos = len(first)
    if not rest:
        return MatchResult(True, tuple(captures))
    last = rest[-1]
    tail_at = len(value) - len(last)
    if tail_at < pos or not _piece_at(folded_value, tail_at, last):
        return MatchResult(False)
    for piece in rest[:-1]:
        at = _find(folded_value, pos, tail_at, piece)
        if at < 0:
            return MatchResult(False)
        captures.append(value[pos:at])
        take_questions(piece, at)
        pos = at + len(piece)
    captures.append(value[pos:tail_at])
    take_questions(last, tail_at)
    return MatchResult(True, tuple(captures))
