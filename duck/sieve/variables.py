"""Variables (RFC 5229) and the global namespace of include (RFC 6609 section 3.3)."""

from __future__ import annotations

import re
from typing import Any

from .errors import SieveLimitExceeded

#: Longest value kept; longer ones are cut (RFC 5229 section 3 allows that; it asks
#: for at least 4000 octets).
MAX_VALUE = 4096
#: Most variables one script may set.
MAX_VARIABLES = 256

_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_NUMBER = re.compile(r"[0-9]+\Z")


def _cut(value: str) -> str:
    return value[:MAX_VALUE]


class Variables:
    """One script's variables; names listed as global live in ``shared``."""

    def __init__(self, shared: dict[str, str], declared: set[str]) -> None:
        self.local: dict[str, str] = {}
        self.shared = shared
        self.declared = set(declared)
        self.matches: tuple[str, ...] = ()

    def _where(self, name: str) -> tuple[dict[str, str], str]:
        low = name.lower()
        if low.startswith("global."):
            return self.shared, low[len("global."):]
        if low in self.declared:
            return self.shared, low
        return self.local, low

    def declare_global(self, name: str) -> None:
        """``global name``: the name now refers to the shared value."""
        self.declared.add(name.lower())

    def get(self, name: str) -> str:
        """A variable's value ("" when never set)."""
        store, key = self._where(name)
        return store.get(key, "")

    def set(self, name: str, value: str, line: int) -> None:
        """Set a variable (the value cut to MAX_VALUE)."""
        store, key = self._where(name)
        if key not in store and len(store) >= MAX_VARIABLES:
            raise SieveLimitExceeded("too many variables", line)
        store[key] = _cut(value)

    def set_matches(self, values: tuple[str, ...]) -> None:
        """The match variables ``${0}`` (the whole value) to ``${9}`` of the last
        successful :matches (RFC 5229 section 3.2)."""
        self.matches = tuple(_cut(v) for v in values[:10])

    def expand(self, text: str) -> str:
        """Replace ``${name}`` and ``${N}``; unknown variables are "" and anything
        that is not a reference stays as written (RFC 5229 section 3)."""
        if "${" not in text:
            return text

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if _NUMBER.match(name):
                index = int(name)
                return self.matches[index] if index < len(self.matches) else ""
            if not _NAME.match(name):
                return match.group(0)
            return self.get(name)

        return _cut(_REFERENCE.sub(replace, text))


def _quote_wildcards(value: str) -> str:
    return "".join("\\" + ch if ch in "*?\\" else ch for ch in value)


def apply_modifiers(value: str, tags: dict[str, Any]) -> str:
    """``set`` modifiers in the order of RFC 5229 section 4.1 (highest precedence first)."""
    if tags.get("lower"):
        value = value.lower()
    if tags.get("upper"):
        value = value.upper()
    if tags.get("lowerfirst"):
        value = value[:1].lower() + value[1:]
    if tags.get("upperfirst"):
        value = value[:1].upper() + value[1:]
    if tags.get("quotewildcard"):
        value = _quote_wildcards(value)
    if tags.get("length"):
        value = str(len(value))
    return value
