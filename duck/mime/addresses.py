"""RFC 5322 address lists into RFC 3501 §7.4.2 envelope addresses.

Lenient: obsolete syntax, missing domains, stray specials and unbalanced quotes
all produce a best-effort result; nothing raises.
"""

from __future__ import annotations

import re

from duck.mime.model import Address

_TOKEN = re.compile(
    rb"(?P<ws>[ \t\r\n]+)"
    rb'|(?P<qs>"(?:\\.|[^"\\])*"?)'
    rb"|(?P<dl>\[(?:\\.|[^\]\\])*\]?)"
    rb"|(?P<sp>[<>@,;:.()])"
    rb'|(?P<atom>[^ \t\r\n"\[\]<>@,;:.()]+|[\]"\\])',
    re.DOTALL,
)
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)

# Token kinds.
_ATOM, _QS, _DL, _SP = "atom", "qs", "dl", "sp"


def _unquoted(token: bytes) -> bytes:
    """A quoted-string token's content, its quoted-pairs undone."""
    inner = token[1:-1] if len(token) > 1 and token.endswith(b'"') else token[1:]
    return _QUOTED_PAIR.sub(rb"\1", inner) if b"\\" in inner else inner


class _Tokens:
    """Token list plus the comments seen (a fallback display name)."""

    def __init__(self, value: bytes) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.comments: list[tuple[int, bytes]] = []
        if b"(" in value:
            self._scan(value)
        else:
            self._scan_plain(value)

    def _scan_plain(self, value: bytes) -> None:
        """``_scan`` of a value without comments: the same tokens, found by one
        ``finditer`` (the pattern matches at every position, never empty)."""
        items = self.items
        for match in _TOKEN.finditer(value):
            kind = match.lastgroup or _ATOM
            if kind == "ws":
                continue
            token = match.group()
            if kind == _QS:
                token = _unquoted(token)
            items.append((kind, token))

    def _scan(self, value: bytes) -> None:
        pos = 0
        n = len(value)
        while pos < n:
            match = _TOKEN.match(value, pos)
            if match is None:  # pragma: no cover - the pattern matches every byte
                pos += 1
                continue
            kind = match.lastgroup or _ATOM
            token = match.group()
            if token == b"(":
                pos = self._comment(value, match.end())
                continue
            pos = match.end()
            if kind == "ws":
                continue
            if kind == _QS:
                token = _unquoted(token)
            self.items.append((kind, token))

    def _comment(self, value: bytes, pos: int) -> int:
        depth = 1
        start = pos
        n = len(value)
        while pos < n and depth:
            ch = value[pos]
            if ch == 0x5C:  # backslash: quoted-pair
                pos += 1
            elif ch == 0x28:
                depth += 1
            elif ch == 0x29:
                depth -= 1
            pos += 1
        body = value[start : pos - 1 if depth == 0 else pos]
        self.comments.append((len(self.items), _QUOTED_PAIR.sub(rb"\1", body).strip()))
        return pos


#: A token's mark when it is no special: in no set of specials.
_NOT_SPECIAL = b"\x00"


def _marks(items: list[tuple[str, bytes]]) -> list[bytes]:
    """Per token, the special it is (one byte) or ``_NOT_SPECIAL``: ``marks[i] in
    b",;"`` asks whether token ``i`` is one of those specials."""
    return [value if kind == _SP else _NOT_SPECIAL for kind, value in items]


def _phrase(tokens: list[tuple[str, bytes]]) -> bytes | None:
    words: list[bytes] = []
    for kind, value in tokens:
        if kind == _SP and value == b"." and words:
            words[-1] += b"."
        else:
            words.append(value)
    return b" ".join(words) if words else None


def _dot_joined(tokens: list[tuple[str, bytes]]) -> bytes:
    out = bytearray()
    for kind, value in tokens:
        if kind == _QS:
            out += b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
        else:
            out += value
    return bytes(out)


class _Parser:
    def __init__(self, value: bytes) -> None:
        tokens = _Tokens(value)
        self.items = tokens.items
        self.marks = _marks(tokens.items)
        self.comments = tokens.comments
        self.pos = 0

    def _comment_between(self, start: int, end: int) -> bytes | None:
        for index, body in self.comments:
            if start <= index <= end and body:
                return body
        return None

    def address_list(self) -> list[Address]:
        out: list[Address] = []
        items, marks = self.items, self.marks
        while self.pos < len(items):
            if marks[self.pos] in b",;":
                self.pos += 1
                continue
            # A group is a phrase followed by ':' before any '<', '@' or ','.
            j = self.pos
            while j < len(items) and marks[j] not in b"<@,;:":
                j += 1
            if j < len(items) and marks[j] == b":":
                name = _phrase(items[self.pos : j]) or b""
                out.append(Address(None, None, name, None))
                self.pos = j + 1
                while self.pos < len(items) and marks[self.pos] != b";":
                    if marks[self.pos] == b",":
                        self.pos += 1
                        continue
                    mailbox = self.mailbox()
                    if mailbox is not None:
                        out.append(mailbox)
                self.pos += 1
                out.append(Address(None, None, None, None))
                continue
            mailbox = self.mailbox()
            if mailbox is not None:
                out.append(mailbox)
        return out

    def mailbox(self) -> Address | None:
        items, marks = self.items, self.marks
        start = self.pos
        j = start
        while j < len(items) and marks[j] not in b"<@,;":
            j += 1
        if j < len(items) and marks[j] == b"<":
            name = _phrase(items[start:j])
            self.pos = j + 1
            end = self.pos
            while end < len(items) and marks[end] != b">":
                end += 1
            adl, mailbox, host = self._angle(items[self.pos : end], marks[self.pos : end])
            self.pos = end + 1
            # Anything after '>' up to the next ',' is junk: skip it.
            while self.pos < len(items) and marks[self.pos] not in b",;":
                self.pos += 1
            if name is None:
                name = self._comment_between(start, end + 1)
            if mailbox is None and host is None:
                return None
            return Address(name, adl, mailbox or b"", host or b"")
        # addr-spec: local-part "@" domain, or a bare word (no domain).
        local = items[start:j]
        host_tokens: list[tuple[str, bytes]] = []
        end = j
        if j < len(items) and marks[j] == b"@":
            end = j + 1
            while end < len(items) and marks[end] not in b",;<":
                end += 1
            host_tokens = items[j + 1 : end]
        self.pos = end
        if not local and not host_tokens:
            if self.pos < len(items) and marks[self.pos] not in b",;":
                self.pos += 1  # a stray '<' or '@': skip it
            return None
        name = self._comment_between(start, end)
        return Address(name, None, _dot_joined(local), _dot_joined(host_tokens))

    def _angle(
        self, items: list[tuple[str, bytes]], marks: list[bytes]
    ) -> tuple[bytes | None, bytes | None, bytes | None]:
        adl: bytes | None = None
        colon = marks.index(b":") if b":" in marks else None
        if colon is not None and items and marks[0] == b"@":
            adl = _dot_joined(items[:colon])
            items, marks = items[colon + 1 :], marks[colon + 1 :]
        if not items:
            return adl, None, None
        if b"@" not in marks:
            return adl, _dot_joined(items), b""
        at = len(marks) - 1 - marks[::-1].index(b"@")  # the last '@'
        return adl, _dot_joined(items[:at]), _dot_joined(items[at + 1 :])


def parse_address_list(value: bytes | None) -> list[Address]:
    """Parse an unfolded address-list header value; groups per RFC 3501 §7.4.2."""
    if not value:
        return []
    return _Parser(value).address_list()
