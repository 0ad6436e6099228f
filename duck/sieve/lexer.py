"""Sieve tokens (RFC 5228 section 8.1), each with the line it starts on.

Line breaks may be CRLF or a bare LF (scripts uploaded from Unix tools have LF
only; RFC 5228 asks for CRLF, accepting both loses nothing). Multi-line strings
come out with CRLF line ends and dot-stuffing undone (section 2.4.2).
"""

from __future__ import annotations

import enum

import attrs

from .errors import SieveSyntaxError

#: Largest number a script may write (RFC 5228 section 2.4.1 asks for at least 2^31-1).
MAX_NUMBER = 2**63 - 1

_QUANTIFIERS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_PUNCTUATION = set(";,[](){}")


class Kind(enum.Enum):
    """What a token is."""

    IDENTIFIER = "identifier"
    TAG = "tag"
    NUMBER = "number"
    STRING = "string"
    PUNCT = "punctuation"
    END = "end of script"


@attrs.frozen
class Token:
    """One token; ``value`` is the text (a string's content, a tag without ':')."""

    kind: Kind
    value: str
    line: int
    number: int = 0


def _is_ident_start(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _is_ident(ch: str) -> bool:
    return _is_ident_start(ch) or "0" <= ch <= "9"


def tokenize(text: str) -> list[Token]:
    """Split a script into tokens, ending with one END token; SieveSyntaxError on
    anything that is not a token."""
    tokens: list[Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch in " \t\r":
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise SieveSyntaxError("unterminated /* comment", line)
            line += text.count("\n", i, end)
            i = end + 2
        elif ch in _PUNCTUATION:
            tokens.append(Token(Kind.PUNCT, ch, line))
            i += 1
        elif ch == '"':
            value, i, lines = _quoted(text, i + 1, line)
            tokens.append(Token(Kind.STRING, value, line))
            line += lines
        elif ch == ":":
            j = i + 1
            if j >= n or not _is_ident_start(text[j]):
                raise SieveSyntaxError("':' must start a tag such as :is", line)
            while j < n and _is_ident(text[j]):
                j += 1
            tokens.append(Token(Kind.TAG, text[i + 1:j].lower(), line))
            i = j
        elif "0" <= ch <= "9":
            j = i
            while j < n and "0" <= text[j] <= "9":
                j += 1
            number = int(text[i:j])
            if j < n and text[j].upper() in _QUANTIFIERS:
                number *= _QUANTIFIERS[text[j].upper()]
                j += 1
            if j < n and _is_ident(text[j]):
                raise SieveSyntaxError(f"bad number {text[i:j + 1]!r}", line)
            if number > MAX_NUMBER:
                raise SieveSyntaxError("number too large", line)
            tokens.append(Token(Kind.NUMBER, text[i:j], line, number))
            i = j
        elif _is_ident_start(ch):
            j = i
            while j < n and _is_ident(text[j]):
                j += 1
            word = text[i:j]
            if word.lower() == "text" and j < n and text[j] == ":":
                value, i, lines = _multiline(text, j + 1, line)
                tokens.append(Token(Kind.STRING, value, line))
                line += lines
                continue
            tokens.append(Token(Kind.IDENTIFIER, word.lower(), line))
            i = j
        else:
            raise SieveSyntaxError(f"unexpected character {ch!r}", line)
    tokens.append(Token(Kind.END, "", line))
    return tokens


def _quoted(text: str, i: int, line: int) -> tuple[str, int, int]:
    """A quoted string's content from just after the opening quote: (value, index
    after the closing quote, line breaks inside)."""
    out: list[str] = []
    start_line = line
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1, line - start_line
        if ch == "\\":
            if i + 1 >= n:
                break
            # RFC 5228 section 2.4.2: "\" followed by any character is that character.
            out.append(text[i + 1])
            if text[i + 1] == "\n":
                line += 1
            i += 2
            continue
        if ch == "\n":
            line += 1
            # A bare LF inside a quoted string stands for the CRLF the RFC wants.
            if not out or out[-1] != "\r":
                out.append("\r")
        out.append(ch)
        i += 1
    raise SieveSyntaxError("unterminated quoted string", start_line)


def _multiline(text: str, i: int, line: int) -> tuple[str, int, int]:
    """A ``text:`` string from just after the colon (section 2.4.2 multi-line)."""
    n = len(text)
    start_line = line
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == "#":
        end = text.find("\n", i)
        i = n if end < 0 else end
    if i < n and text[i] == "\r":
        i += 1
    if i >= n or text[i] != "\n":
        raise SieveSyntaxError("text: must be followed by a line break", start_line)
    i += 1
    line += 1
    lines: list[str] = []
    while True:
        if i >= n:
            raise SieveSyntaxError("multi-line string not ended by a '.' line", start_line)
        end = text.find("\n", i)
        raw = text[i:] if end < 0 else text[i:end]
        i = n if end < 0 else end + 1
        line += 1
        if raw.endswith("\r"):
            raw = raw[:-1]
        if raw == ".":
            break
        if raw.startswith("."):
            raw = raw[1:]  # dot-stuffing: ".." at a line start stands for "."
        lines.append(raw + "\r\n")
    return "".join(lines), i, line - start_line
