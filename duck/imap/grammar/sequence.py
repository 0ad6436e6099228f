"""Sequence sets (RFC 3501 §9 ``sequence-set``, RFC 5182 ``$``)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from typing import Final

import attrs

#: Stands for ``*`` (the largest number in use) inside a range; nz-number is never 0.
STAR: Final = 0
MAX_NUMBER: Final = 2**32 - 1

_SEQ_ITEM = rb"(?:[1-9][0-9]*|\*)(?::(?:[1-9][0-9]*|\*))?"
_SEQ_SET_RE = re.compile(_SEQ_ITEM + rb"(?:," + _SEQ_ITEM + rb")*")


def _check_ranges(instance: object, attribute: object, value: tuple[tuple[int, int], ...]) -> None:
    for lo, hi in value:
        if not (0 <= lo <= MAX_NUMBER and 0 <= hi <= MAX_NUMBER):
            raise ValueError(f"sequence number out of range: {lo}:{hi}")


def _to_tuple(items: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple(items)


@attrs.frozen
class SequenceSet:
    """A set of message sequence numbers or UIDs as the client wrote it.

    ``items`` keeps each ``seq-number`` or ``seq-range`` in order as ``(lo, hi)``
    pairs (a single number ``n`` is ``(n, n)``; ``STAR`` (0) stands for ``*``; a
    range may be written high to low). ``saved`` is the SEARCHRES ``$`` marker
    (RFC 5182), in which case ``items`` is empty. Resolve with :meth:`ranges`.
    """

    items: tuple[tuple[int, int], ...] = attrs.field(converter=_to_tuple, validator=_check_ranges)
    saved: bool = False

    def __attrs_post_init__(self) -> None:
        if self.saved == bool(self.items):
            raise ValueError("a sequence set is either '$' or a non-empty list of ranges")

    @classmethod
    def saved_result(cls) -> SequenceSet:
        """The ``$`` set: the result saved by ``SEARCH RETURN (SAVE)``."""
        return cls((), saved=True)

    @classmethod
    def from_ints(cls, numbers: Iterable[int]) -> SequenceSet:
        """Build the most compact set covering exactly ``numbers`` (non-empty)."""
        items: list[tuple[int, int]] = []
        for n in sorted(set(numbers)):
            if items and items[-1][1] + 1 == n:
                items[-1] = (items[-1][0], n)
            else:
                items.append((n, n))
        return cls(tuple(items))

    @classmethod
    def parse(cls, text: str | bytes) -> SequenceSet:
        """Parse the textual form (``"1:3,5,7:*"`` or ``"$"``); raise ValueError if invalid."""
        data = text.encode("ascii") if isinstance(text, str) else text
        if data == b"$":
            return cls.saved_result()
        m = _SEQ_SET_RE.fullmatch(data)
        if m is None:
            raise ValueError(f"not a sequence set: {text!r}")
        return cls(tuple(_parse_item(part) for part in data.split(b",")))

    def ranges(self, largest: int) -> list[tuple[int, int]]:
        """Sorted, merged, inclusive ``(lo, hi)`` pairs with ``*`` resolved to ``largest``.

        Numbers above ``largest`` are kept (a UID set may name UIDs not in use);
        callers clip where the RFC requires. Cost is O(k log k) for k written ranges,
        independent of how many numbers they cover. ``$`` cannot be resolved here.
        """
        if self.saved:
            raise ValueError("'$' must be replaced by the saved search result first")
        pairs = []
        for lo, hi in self.items:
            lo = largest if lo == STAR else lo
            hi = largest if hi == STAR else hi
            if lo > hi:
                lo, hi = hi, lo
            pairs.append((lo, hi))
        pairs.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in pairs:
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def contains(self, n: int, largest: int) -> bool:
        """Whether ``n`` is in the set when ``*`` is ``largest``."""
        for lo, hi in self.items:
            lo = largest if lo == STAR else lo
            hi = largest if hi == STAR else hi
            if (lo <= n <= hi) if lo <= hi else (hi <= n <= lo):
                return True
        return False

    def resolve(self, largest: int) -> Iterator[int]:
        """Every number in the set, ascending, without duplicates."""
        for lo, hi in self.ranges(largest):
            yield from range(lo, hi + 1)

    def matcher(self, largest: int) -> RangeMatcher:
        """A precomputed membership test: O(log k) per lookup for many lookups."""
        return RangeMatcher(self.ranges(largest))

    def __str__(self) -> str:
        if self.saved:
            return "$"
        return ",".join(_format_item(lo, hi) for lo, hi in self.items)


class RangeMatcher:
    """Membership over merged ranges by binary search."""

    __slots__ = ("_his", "_los")

    def __init__(self, merged: list[tuple[int, int]]) -> None:
        self._los = [lo for lo, _ in merged]
        self._his = [hi for _, hi in merged]

    def __contains__(self, n: int) -> bool:
        i = bisect.bisect_right(self._los, n) - 1
        return i >= 0 and n <= self._his[i]


def _parse_number(part: bytes) -> int:
    if part == b"*":
        return STAR
    n = int(part)
    if n > MAX_NUMBER:
        raise ValueError(f"sequence number too large: {n}")
    return n


def _parse_item(part: bytes) -> tuple[int, int]:
    lo, sep, hi = part.partition(b":")
    a = _parse_number(lo)
    return (a, _parse_number(hi) if sep else a)


def _format_number(n: int) -> str:
    return "*" if n == STAR else str(n)


def _format_item(lo: int, hi: int) -> str:
    if lo == hi:
        return _format_number(lo)
    return f"{_format_number(lo)}:{_format_number(hi)}"
