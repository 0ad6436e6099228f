"""The parsed form of a Sieve script (RFC 5228 section 8.2)."""

from __future__ import annotations

import attrs


@attrs.frozen
class Tag:
    """A tagged argument, ``:name`` (the name lower-cased, without the colon)."""

    name: str
    line: int


@attrs.frozen
class Number:
    """A number argument, its quantifier (K, M, G) already applied."""

    value: int
    line: int


@attrs.frozen
class StringList:
    """A string or a string list; ``single`` is True for a bare string."""

    values: tuple[str, ...]
    single: bool
    line: int


Argument = Tag | Number | StringList


@attrs.frozen
class Test:
    """A test: identifier, arguments and nested tests (``allof``, ``not``...)."""

    name: str
    arguments: tuple[Argument, ...]
    tests: tuple[Test, ...]
    line: int
    #: True when the nested tests were written as a parenthesised test-list.
    test_list: bool = False


@attrs.frozen
class Command:
    """A command: identifier, arguments, an optional test or test-list, an optional block."""

    name: str
    arguments: tuple[Argument, ...]
    tests: tuple[Test, ...]
    block: tuple[Command, ...] | None
    line: int
    test_list: bool = False
