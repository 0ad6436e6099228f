"""RFC 5051's ``i;unicode-casemap`` for SEARCH's substring keys, as one regular
expression over stored text of any case and of either normalization form.

The collation maps a string to the canonical decomposition (NFD) of each of its
characters' simple titlecase (``casemap``); a needle matches a text when its map is
a substring of the text's. Dovecot compares so: ``SUBJECT "RE"`` finds "Résumé"
(``RE\\u0301SUME\\u0301``), "É" finds "é" and "e\\u0301" alike, a dotless i finds
"I", and "ß" does not find "ẞ" (neither has a simple titlecase of the other).

The stored text (``hdr.v``, the contents' ``text``, the digest's header values) is
kept as the message has it, and the databases match with their own regex engines,
so the needle becomes a pattern (``substring_pattern``) that matches the text where
the text's map contains the needle's. The needle's map is cut into *tokens*: the
maps of single characters the text may hold there. A token is

- a whole character's map (``E`` is one of ``E e``; ``E\\u0301`` one of ``É é``; a
  Hangul syllable's jamo one syllable);
- at the needle's end, the start of a character's map (a needle ending in ``E`` also
  ends inside ``É``, whose map goes on with an accent);
- at its start, the end of one (``\\u0301S`` begins inside ``ÉS``);
- the whole needle inside one character's map (``\\u0323`` inside ``ệ``).

Each run of the needle that no token crosses into or out of is one group of
alternatives (every way its tokens can cover it), and the pattern is their
concatenation: a few alternatives a group, as a character and its accents have
few ways to be written. The pattern is exact for text in NFD, and in NFC (what mail
holds) but where decomposing moves an accent across a character: a letter
composed with one accent followed by another accent that sorts before it (``ệ``
and a second dot below). Text in neither form (marks out of canonical order,
partial compositions other than a prefix) may match a little more or less.

Only literals, character classes and non-capturing groups are used, so Python's
``re``, the Rust ``regex`` crate of the embedded server and MongoDB's PCRE read the
pattern the same way, without a case-insensitive flag: the classes hold every case.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from typing import NamedTuple

#: Code points scanned for mappings: every cased letter and every canonical
#: decomposition of Unicode lies below (tests/store/test_casemap.py checks it).
_TOP = 0x30000
#: Most ways of writing one group of a needle that the pattern lists (a few are
#: real: ``ế`` is ``ế``, ``ê`` + acute or ``e`` + two marks).
_MAX_WAYS = 64


def _title(ch: str) -> str:
    """The simple titlecase mapping of one character (UnicodeData.txt's field 14).

    Python's ``title`` is the full mapping, which differs only where it gives
    several characters (``ß`` -> ``Ss``); those have no simple mapping."""
    mapped = ch.title()
    return mapped if len(mapped) == 1 else ch


def _map(ch: str) -> str:
    """One character's map."""
    return unicodedata.normalize("NFD", _title(ch))


def casemap(text: str) -> str:
    """``text`` as ``i;unicode-casemap`` compares it (RFC 5051 §2): each character's
    simple titlecase, then the canonical decomposition of the whole."""
    if text.isascii():
        return text.upper()
    return unicodedata.normalize("NFD", "".join(map(_title, text)))


def matches(needle: str, text: str) -> bool:
    """Whether ``needle`` is a substring of ``text`` under the collation (the
    definition the patterns implement)."""
    return casemap(needle) in casemap(text)


class _Tables:
    """Characters by their map: whole, by the start and by the end of it."""

    def __init__(self) -> None:
        whole: dict[str, list[str]] = defaultdict(list)
        starts: dict[str, list[str]] = defaultdict(list)
        ends: dict[str, list[str]] = defaultdict(list)
        longer: list[tuple[str, str]] = []
        for cp in range(_TOP):
            if 0xD800 <= cp < 0xE000:
                continue
            ch = chr(cp)
            mapped = _map(ch)
            if mapped == ch:
                continue  # (most characters: ``same`` says so without a table)
            whole[mapped].append(ch)
            if len(mapped) > 1:
                longer.append((ch, mapped))
                for i in range(1, len(mapped)):
                    starts[mapped[:i]].append(ch)
                    ends[mapped[i:]].append(ch)
        #: Map -> the characters with that map, but for a character that is its own.
        self.whole = dict(whole)
        #: Proper starts and ends of maps of more than one code point.
        self.starts = dict(starts)
        self.ends = dict(ends)
        #: (character, map) of every map of more than one code point.
        self.longer = longer
        #: The longest map, in code points.
        self.longest = max(len(m) for _, m in longer)

    def same(self, part: str) -> list[str]:
        """The characters whose map is ``part``."""
        out = list(self.whole.get(part, ()))
        if len(part) == 1 and _map(part) == part:
            out.append(part)
        return out

    def inside(self, part: str) -> list[str]:
        """Characters whose map holds ``part`` strictly inside (neither end)."""
        return [ch for ch, mapped in self.longer
                if len(mapped) > len(part) + 1 and part in mapped[1:-1]]


@functools.cache
def _tables() -> _Tables:
    # (~0.08 s once a process, at its first SEARCH string: on the event loop's
    # thread, as store calls run there, which is once a process's life.)
    return _Tables()


def _class(chars: list[str] | set[str]) -> str:
    members = sorted(set(chars))
    if len(members) == 1:
        return re.escape(members[0])
    return "[" + "".join(re.escape(c) for c in members) + "]"


@functools.lru_cache(maxsize=256)
def _tokens(mapped: str) -> dict[int, list[tuple[int, list[str]]]]:
    """Every token of a needle's map: start -> [(end, characters the text may hold
    for ``mapped[start:end]``)]. (Kept for the needle's other patterns and
    prefilters, which read it again: not to be changed by callers.)"""
    tables = _tables()
    n = len(mapped)
    tokens: dict[int, list[tuple[int, list[str]]]] = defaultdict(list)
    for i in range(n):
        for j in range(i + 1, min(n, i + tables.longest) + 1):
            part = mapped[i:j]
            chars = tables.same(part)
            if j == n:
                chars += tables.starts.get(part, ())
            if i == 0:
                chars += tables.ends.get(part, ())
            if chars:
                tokens[i].append((j, chars))
    return tokens


def _cuts(tokens: dict[int, list[tuple[int, list[str]]]], n: int) -> list[int]:
    """The positions of a map of ``n`` code points that no token crosses."""
    crossed = {k for i, ends in tokens.items() for j, _ in ends for k in range(i + 1, j)}
    return [k for k in range(n + 1) if k not in crossed]


@functools.lru_cache(maxsize=256)
def substring_pattern(needle: str) -> str:
    """A regular expression that finds, in a text of either normalization form,
    the places where the text's map holds ``needle``'s (module docstring). (Kept:
    one SEARCH asks for a needle's patterns in several places, TEXT twice.)"""
    mapped = casemap(needle)
    if not mapped:
        return ""
    tokens = _tokens(mapped)
    cuts = _cuts(tokens, len(mapped))
    groups = []
    for start, end in itertools.pairwise(cuts):
        ways = _ways(tokens, start, end)
        if not ways:
            # (No character maps to this part: the needle matches nothing written
            # in either form; the literal keeps the pattern well-formed.)
            ways = [re.escape(mapped[start:end])]
        groups.append(ways[0] if len(ways) == 1 else "(?:" + "|".join(ways) + ")")
    pattern = "".join(groups)
    inside = _tables().inside(mapped) if len(mapped) <= 3 else []
    if inside:
        pattern = "(?:" + pattern + "|" + _class(inside) + ")"
    return pattern


def fixed_runs(needle: str) -> list[list[list[str]]]:
    """Runs of the needle that every match holds one character for one: for each
    position of a run, the characters a matching text may hold there (one of them,
    the needle's own map, first). Positions written in several ways (an accented
    letter) are left out, and the first and last where they may lie inside a
    character (a last ``E`` in ``É``).
    For prefilters that look for a needle's pieces in a text as it is written."""
    mapped = casemap(needle)
    tables = _tables()
    tokens = _tokens(mapped)
    cuts = _cuts(tokens, len(mapped))
    runs: list[list[list[str]]] = [[]]
    for start, end in itertools.pairwise(cuts):
        ways = tokens.get(start, ())
        part = mapped[start:end]
        if (end == start + 1 and len(ways) == 1
                and (start > 0 or part not in tables.ends)
                and (end < len(mapped) or part not in tables.starts)):
            chars = ways[0][1]
            runs[-1].append([mapped[start]] + [c for c in chars if c != mapped[start]])
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def steady_pieces(needle: str, fold: Callable[[str], str]) -> list[str]:
    """The pieces of the needle's fixed runs (``fixed_runs``) where, at each position,
    every character a matching text may hold there folds by ``fold`` to one and the
    same character: what a prefilter comparing folded text (a case-insensitive
    literal, the trigram index's classes) may look for. Written with the needle's
    map's own characters."""
    pieces: list[str] = []
    for run in fixed_runs(needle):
        piece = ""
        for chars in run:
            folded = {fold(c) for c in chars}
            if len(folded) == 1 and len(next(iter(folded))) == 1:
                piece += chars[0]
            else:
                pieces.append(piece)
                piece = ""
        pieces.append(piece)
    return [piece for piece in pieces if piece]


def _ways(tokens: dict[int, list[tuple[int, list[str]]]], start: int, end: int
          ) -> list[str]:
    """Every concatenation of tokens that covers ``[start, end)`` exactly, as
    patterns."""
    out: list[str] = []

    def walk(at: int, sofar: str) -> None:
        if len(out) >= _MAX_WAYS:
            return  # (none such in Unicode: a character and its marks have few)
        if at == end:
            out.append(sofar)
            return
        for j, chars in tokens.get(at, ()):
            if j <= end:
                walk(j, sofar + _class(chars))

    walk(start, "")
    return out


#: Characters whose case variants under a regex engine's ``i`` differ from their
#: spellings under the collation: sharp s (capital sharp s folds to it), the I's
#: (Python's ``re`` folds the dotted capital I and the dotless i to ``i``), Georgian
#: and Cherokee (case pairs that titlecase apart). A needle with one gets no ``i``
#: quick pattern.
_FOLDS_APART = re.compile(
    "[\u00df\u1e9eIi\u0130\u0131\u10a0-\u10ff\u1c90-\u1cbf\u13a0-\u13ff\uab70-\uabbf]")


class DatabaseTest(NamedTuple):
    """How a database checks a needle (query.py): ``exact`` (``substring_pattern``)
    decides; ``gate``, when given, is a case-insensitive (``i``) pattern every match
    holds, checked first; ``quick``, when given, a pattern no text holds unless it
    matches (case-insensitive where ``quick_i``), which decides first where it holds.

    Why: the embedded Rust engine compiles a ``$regex`` again for every document it
    tests, so a pattern's cost per document follows its size: ~2 µs a plain
    literal, ~24 µs a four-letter one with ``i``, ~120 µs an ASCII needle's exact
    pattern (its last letter's class of accented letters), measured over 20,000
    documents. The gate turns most documents away at the price of an ``i`` literal;
    the quick pattern accepts the common spelling at about that price."""

    gate: str | None
    quick: str | None
    quick_i: bool
    exact: str


@functools.lru_cache(maxsize=256)
def database_test(needle: str) -> DatabaseTest:
    """The patterns a database checks ``needle`` with (``DatabaseTest``)."""
    exact = substring_pattern(needle)
    if needle.isascii():
        # Every ASCII letter's other spellings (the long s for S, the Kelvin sign
        # for K) are case variants of it in every engine's ``i``, but for the dotless
        # i (not folded to ``i``): the gate is the longest run of the needle without
        # its last character (which may begin an accented letter) and without I.
        runs = re.split("[Ii]", needle[:-1])
        gate = max(runs, key=len) if runs else ""
        # (Classes, not ``i``: Python's ``re`` would let a dotted capital I stand for an i.)
        quick = "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c)
                        for c in needle)
        return DatabaseTest(re.escape(gate) if len(gate) > 1 else None, quick or None,
                            False, exact)
    best = max(steady_pieces(needle, str.casefold), key=len, default="")
    composed = unicodedata.normalize("NFC", needle)
    spelled = None if _FOLDS_APART.search(composed) else re.escape(composed)
    return DatabaseTest(re.escape(best) if len(best) > 1 else None, spelled, True, exact)
