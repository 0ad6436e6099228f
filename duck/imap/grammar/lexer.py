"""The token layer shared by the command and response parsers.

A :class:`Cursor` walks one framed unit (a whole command or response, literals
inline as ``{n}\\r\\n<n octets>``) and offers one method per ABNF primitive of
RFC 3501 §9 / RFC 9051 §9. The framing layer has already checked that every
CRLF in the buffer ends a literal header, so literal data is skipped by length and
never scanned for syntax.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TypeVar

from .errors import NestingTooDeep, ParseError
from .mutf7 import decode_mailbox_name, invalid_mailbox_name, normalize_mailbox
from .sequence import MAX_NUMBER, STAR, SequenceSet

T = TypeVar("T")

MAX_NUMBER64 = 2**63 - 1

# ATOM-CHAR: CHAR except atom-specials ( ) { SP CTL % * " \ ]
ATOM_RE = re.compile(rb"[!#$&'+-\[^-z|}~]+")
# ASTRING-CHAR = ATOM-CHAR / resp-specials
ASTRING_ATOM_RE = re.compile(rb"[!#$&'+-\[\]^-z|}~]+")
# tag = 1*<any ASTRING-CHAR except "+">
TAG_RE = re.compile(rb"[!#$&',-\[\]^-z|}~]+")
# list-char = ATOM-CHAR / list-wildcards / resp-specials
LIST_CHARS_RE = re.compile(rb"[!#-'*+-\[\]^-z|}~]+")
# quoted = DQUOTE *QUOTED-CHAR DQUOTE. Deviation (RFC 3501 §9): 8-bit octets are
# accepted inside quoted strings (RFC 9051 / RFC 6855 allow UTF-8 there); NUL, CR
# and LF are not.
QUOTED_RE = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
QUOTED_ESCAPE_RE = re.compile(rb'\\(["\\])')
LITERAL_RE = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}\r\n")
NUMBER_RE = re.compile(rb"\d+")
NZ_NUMBER_RE = re.compile(rb"[1-9]\d*")
SEQ_SET_RE = re.compile(
    rb"(?:[1-9]\d*|\*)(?::(?:[1-9]\d*|\*))?(?:,(?:[1-9]\d*|\*)(?::(?:[1-9]\d*|\*))?)*"
)
# One number or range not followed by more of a set: the common case.
SEQ_SIMPLE_RE = re.compile(rb"([1-9]\d*|\*)(?::([1-9]\d*|\*))?(?![\d:,*])")
SEQ_ITEM_RE = re.compile(rb"([1-9]\d*|\*)(?::([1-9]\d*|\*))?")
FLAG_RE = re.compile(rb"\\?[!#$&'+-\[^-z|}~]+")
# date = date-text / DQUOTE date-text DQUOTE; date-text = date-day "-" date-month "-" date-year
DATE_RE = re.compile(rb'("?)(\d{1,2})-([A-Za-z]{3})-(\d{4})\1')
# date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
DATE_TIME_RE = re.compile(
    rb'"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"'
)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
MONTH_NUMBER = {name.encode(): i + 1 for i, name in enumerate(MONTHS)}

SYSTEM_FLAGS = {
    f.upper(): f
    for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent", "\\*")
}


def normalize_flag(flag: str) -> str:
    """Canonical spelling of a flag: system flags in RFC case, keywords as written."""
    return SYSTEM_FLAGS.get(flag.upper(), flag) if flag.startswith("\\") else flag


def decode_text(data: bytes) -> str:
    """Bytes of an astring/string as ``str``; undecodable octets survive as surrogates."""
    return data.decode("utf-8", "surrogateescape")


class Cursor:
    """A position in one framed command or response, with one method per ABNF primitive."""

    __slots__ = ("buf", "depth", "max_depth", "pos", "tag", "utf8")

    def __init__(
        self, buf: bytes, pos: int = 0, *, tag: str | None = None, max_depth: int = 64,
        utf8: bool = False,
    ) -> None:
        self.buf = buf
        self.pos = pos
        self.tag = tag
        self.depth = 0
        self.max_depth = max_depth
        self.utf8 = utf8

    # -- errors and structure ---------------------------------------------------

    def error(self, message: str) -> ParseError:
        """A ParseError for the current position, carrying the tag."""
        near = self.buf[self.pos : self.pos + 20]
        return ParseError(f"{message} at octet {self.pos} near {near!r}", tag=self.tag)

    def at_end(self) -> bool:
        """Whether the whole unit has been consumed."""
        return self.pos >= len(self.buf)

    def end(self) -> None:
        """Require the unit to be fully consumed (no trailing garbage)."""
        if self.pos != len(self.buf):
            raise self.error("unexpected trailing data")

    def peek(self) -> int:
        """The next octet, or -1 at the end."""
        return self.buf[self.pos] if self.pos < len(self.buf) else -1

    def peek_is(self, literal: bytes) -> bool:
        """Whether the input continues with ``literal`` (case-sensitive)."""
        return self.buf.startswith(literal, self.pos)

    def peek_word(self, word: bytes) -> bool:
        """Whether the next atom is ``word`` (case-insensitive, ``word`` in upper case)."""
        end = self.pos + len(word)
        if self.buf[self.pos : end].upper() != word:
            return False
        return end == len(self.buf) or self.buf[end] in b" ()[]"

    def expect(self, literal: bytes) -> None:
        """Consume exactly ``literal`` or fail."""
        if not self.buf.startswith(literal, self.pos):
            raise self.error(f"expected {literal.decode()!r}")
        self.pos += len(literal)

    def accept(self, literal: bytes) -> bool:
        """Consume ``literal`` if it is next."""
        if self.buf.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def accept_word(self, word: bytes) -> bool:
        """Consume the keyword ``word`` (case-insensitive) if it is next."""
        if self.peek_word(word):
            self.pos += len(word)
            return True
        return False

    def sp(self) -> None:
        """Consume one SP."""
        if self.pos >= len(self.buf) or self.buf[self.pos] != 0x20:
            raise self.error("expected SP")
        self.pos += 1

    def open(self) -> None:
        """Consume ``(`` and enter one nesting level."""
        self.expect(b"(")
        self.enter()

    def close(self) -> None:
        """Consume ``)`` and leave one nesting level."""
        self.expect(b")")
        self.depth -= 1

    def enter(self) -> None:
        """Count one more nesting level against the limit."""
        self.depth += 1
        if self.depth > self.max_depth:
            raise NestingTooDeep(f"lists nested deeper than {self.max_depth}", tag=self.tag)

    def paren_list(self, item: Callable[[], T], *, allow_empty: bool = True) -> list[T]:
        """``"(" [item *(SP item)] ")"``."""
        self.open()
        out: list[T] = []
        if not self.accept(b")"):
            out.append(item())
            while self.accept(b" "):
                out.append(item())
            self.expect(b")")
        elif not allow_empty:
            raise self.error("empty list")
        self.depth -= 1
        return out

    # -- atoms and numbers -------------------------------------------------------

    def match(self, regex: re.Pattern[bytes], what: str) -> bytes:
        """Consume a match of ``regex`` or fail saying ``what`` was expected."""
        m = regex.match(self.buf, self.pos)
        if m is None:
            raise self.error(f"expected {what}")
        self.pos = m.end()
        return m.group()

    def atom(self) -> bytes:
        """``atom = 1*ATOM-CHAR``."""
        return self.match(ATOM_RE, "atom")

    def keyword(self) -> str:
        """An atom, upper-cased, as ``str`` (command names, options)."""
        return self.match(ATOM_RE, "keyword").decode("ascii").upper()

    def number(self, limit: int = MAX_NUMBER) -> int:
        """``number = 1*DIGIT`` up to ``limit`` (2^32-1 by default)."""
        n = int(self.match(NUMBER_RE, "number"))
        if n > limit:
            raise self.error("number out of range")
        return n

    def number64(self) -> int:
        """``number64`` (RFC 9051), e.g. mod-sequence values."""
        return self.number(MAX_NUMBER64)

    def nz_number(self, limit: int = MAX_NUMBER) -> int:
        """``nz-number = digit-nz *DIGIT``."""
        n = int(self.match(NZ_NUMBER_RE, "non-zero number"))
        if n > limit:
            raise self.error("number out of range")
        return n

    # -- strings -----------------------------------------------------------------

    def quoted(self) -> bytes:
        """``quoted``, unescaped."""
        m = QUOTED_RE.match(self.buf, self.pos)
        if m is None:
            raise self.error("expected quoted string")
        self.pos = m.end()
        body = m.group(1)
        return QUOTED_ESCAPE_RE.sub(rb"\1", body) if b"\\" in body else body

    def literal(self, *, binary_ok: bool = False) -> bytes:
        """``literal`` (and ``literal8`` when ``binary_ok``); returns the octets."""
        data, _ = self.literal_ex(binary_ok=binary_ok)
        return data

    def literal_ex(self, *, binary_ok: bool = False) -> tuple[bytes, bool]:
        """A literal and whether it was written as ``literal8`` (``~{n}``)."""
        m = LITERAL_RE.match(self.buf, self.pos)
        if m is None:
            raise self.error("expected literal")
        is8 = bool(m.group(1))
        if is8 and not binary_ok:
            raise self.error("literal8 not allowed here")
        n = int(m.group(2))
        start = m.end()
        if start + n > len(self.buf):
            raise self.error("literal shorter than announced")
        self.pos = start + n
        return self.buf[start : self.pos], is8

    def string(self) -> bytes:
        """``string = quoted / literal``."""
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            return self.literal()
        raise self.error("expected string")

    def astring(self) -> bytes:
        """``astring = 1*ASTRING-CHAR / string``."""
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            return self.literal()
        return self.match(ASTRING_ATOM_RE, "astring")

    def astring_text(self) -> str:
        """An astring decoded to ``str``."""
        return decode_text(self.astring())

    def nstring(self) -> bytes | None:
        """``nstring = string / nil``."""
        if self.accept_word(b"NIL"):
            return None
        return self.string()

    def nil(self) -> bool:
        """Consume NIL if next."""
        return self.accept_word(b"NIL")

    # -- mailboxes ---------------------------------------------------------------

    def decode_mailbox(self, raw: bytes) -> str:
        """Bytes of a mailbox name as ``str``: UTF-8 when enabled, else modified UTF-7.

        A name that does not decode is still a valid astring, so the command is not
        a syntax error (BAD): it names a mailbox that cannot exist, and is answered
        NO (SELECT) or matches nothing (LIST), as RFC 3501 §6.3 expects. It comes out
        as ``invalid_mailbox_name(raw)``, which no mailbox is called.
        """
        try:
            if self.utf8:
                return raw.decode("utf-8")
            return decode_mailbox_name(raw)
        except ValueError:
            return invalid_mailbox_name(raw)

    def mailbox(self) -> str:
        """``mailbox = "INBOX" / astring``, decoded and INBOX-normalised."""
        return normalize_mailbox(self.decode_mailbox(self.astring()))

    def list_mailbox(self) -> str:
        """``list-mailbox = 1*list-char / string``, decoded (wildcards kept)."""
        c = self.peek()
        quoted_or_literal = c == 0x22 or c == 0x7B
        raw = self.string() if quoted_or_literal else self.match(LIST_CHARS_RE, "list-mailbox")
        return self.decode_mailbox(raw)

    # -- flags, dates, sets --------------------------------------------------------

    def flag(self) -> str:
        """``flag`` (system flag, keyword or ``\\extension``), canonically spelt."""
        return normalize_flag(self.match(FLAG_RE, "flag").decode("ascii"))

    def flag_perm(self) -> str:
        """``flag-perm = flag / "\\*"``."""
        if self.accept(b"\\*"):
            return "\\*"
        return self.flag()

    def flag_list(self) -> tuple[str, ...]:
        """``flag-list = "(" [flag *(SP flag)] ")"``."""
        return tuple(self.paren_list(self.flag))

    def date(self) -> dt.date:
        """``date`` (``d-Mon-yyyy``, optionally quoted)."""
        m = DATE_RE.match(self.buf, self.pos)
        if m is None:
            raise self.error("expected date")
        month = MONTH_NUMBER.get(m.group(3).upper())
        try:
            if month is None:
                raise ValueError("bad month")
            value = dt.date(int(m.group(4)), month, int(m.group(2)))
        except ValueError:
            raise self.error("invalid date") from None
        self.pos = m.end()
        return value

    def date_time(self) -> dt.datetime:
        """``date-time`` as an aware datetime."""
        m = DATE_TIME_RE.match(self.buf, self.pos)
        if m is None:
            raise self.error("expected date-time")
        month = MONTH_NUMBER.get(m.group(2).upper())
        try:
            if month is None:
                raise ValueError("bad month")
            hours, minutes = int(m.group(8)), int(m.group(9))
            if minutes > 59:
                raise ValueError("bad zone")
            offset = dt.timedelta(hours=hours, minutes=minutes)
            if m.group(7) == b"-":
                offset = -offset
            value = dt.datetime(
                int(m.group(3)), month, int(m.group(1).strip()), int(m.group(4)),
                int(m.group(5)), int(m.group(6)), tzinfo=dt.timezone(offset),
            )
        except ValueError:
            raise self.error("invalid date-time") from None
        self.pos = m.end()
        return value

    def sequence_set(self, *, allow_saved: bool = True) -> SequenceSet:
        """``sequence-set`` or (RFC 5182) ``$``."""
        if allow_saved and self.peek() == 0x24:
            self.pos += 1
            return SequenceSet.saved_result()
        m = SEQ_SIMPLE_RE.match(self.buf, self.pos)
        if m is not None:
            a = STAR if m.group(1) == b"*" else int(m.group(1))
            b = a if m.group(2) is None else (STAR if m.group(2) == b"*" else int(m.group(2)))
            if a <= MAX_NUMBER and b <= MAX_NUMBER:
                self.pos = m.end()
                return SequenceSet(((a, b),))
        raw = self.match(SEQ_SET_RE, "sequence set")
        items = []
        for m in SEQ_ITEM_RE.finditer(raw):
            a = STAR if m.group(1) == b"*" else int(m.group(1))
            b = a if m.group(2) is None else (STAR if m.group(2) == b"*" else int(m.group(2)))
            if a > MAX_NUMBER or b > MAX_NUMBER:
                raise self.error("sequence number out of range")
            items.append((a, b))
        return SequenceSet(tuple(items))
