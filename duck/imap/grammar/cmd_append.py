"""APPEND (RFC 3501 §6.3.11) with MULTIAPPEND (RFC 3502), CATENATE (RFC 4469),
BINARY literal8 (RFC 3516) and UTF8 data (RFC 6855 §4)."""

from __future__ import annotations

import datetime as dt

import attrs

from .cmd_base import Command, to_flags, to_mailbox, to_tuple
from .encode import Encoder
from .errors import ImapProtocolError
from .lexer import TAG_RE, Cursor, decode_text


@attrs.frozen
class CatText:
    """``TEXT literal`` part of CATENATE (``binary`` when sent as literal8)."""

    data: bytes
    binary: bool = False


@attrs.frozen
class CatUrl:
    """``URL url`` part of CATENATE (an IMAP URL, RFC 5092)."""

    url: str


def _check_parts(instance: object, attribute: object, value: tuple[object, ...]) -> None:
    if not value:
        raise ValueError("CATENATE needs at least one part")


@attrs.frozen
class Catenate:
    """``CATENATE (cat-part *(SP cat-part))``."""

    parts: tuple[CatText | CatUrl, ...] = attrs.field(converter=to_tuple, validator=_check_parts)


def _check_date(instance: object, attribute: object, value: dt.datetime | None) -> None:
    if value is not None and (value.utcoffset() is None or value.microsecond):
        raise ValueError("APPEND date needs a zone and whole seconds")


@attrs.frozen
class AppendMessage:
    """One message of an APPEND: flags, optional internal date, and the data.

    ``data`` is the message octets, or a :class:`Catenate`. ``binary`` says it came
    as literal8 (``~{n}``); ``utf8`` that it came as ``UTF8 (~{n})`` (RFC 6855).
    """

    data: bytes | Catenate
    flags: tuple[str, ...] = attrs.field(default=(), converter=to_flags)
    date: dt.datetime | None = attrs.field(default=None, validator=_check_date)
    binary: bool = False
    utf8: bool = False
    #: The octets were handed out as they came (``CommandReader.stream_append``),
    #: not kept: ``data`` is then empty.
    streamed: bool = False

    def __attrs_post_init__(self) -> None:
        if isinstance(self.data, Catenate) and (self.binary or self.utf8):
            raise ValueError("CATENATE data is neither binary nor UTF8-wrapped")
        if self.utf8 and self.binary:
            raise ValueError("UTF8 data is always literal8; set utf8 only")


def _check_messages(instance: object, attribute: object, value: tuple[object, ...]) -> None:
    if not value:
        raise ValueError("APPEND needs a message")


@attrs.frozen
class Append(Command):
    """``APPEND mailbox 1*append-message`` (several messages: MULTIAPPEND)."""

    VERB = "APPEND"

    mailbox: str = attrs.field(converter=to_mailbox)
    messages: tuple[AppendMessage, ...] = attrs.field(converter=to_tuple, validator=_check_messages)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> Append:
        c.sp()
        mailbox = c.mailbox()
        messages = []
        while c.accept(b" "):
            messages.append(_parse_append_message(c))
        if not messages:
            raise c.error("APPEND needs a message")
        return cls(tag, mailbox, tuple(messages))

    def encode_args(self, e: Encoder) -> None:
        e.sp()
        e.mailbox(self.mailbox)
        for m in self.messages:
            e.sp()
            if m.flags:
                e.flag_list(m.flags)
                e.sp()
            if m.date is not None:
                e.date_time(m.date)
                e.sp()
            if isinstance(m.data, Catenate):
                e.raw(b"CATENATE (")
                for i, part in enumerate(m.data.parts):
                    if i:
                        e.sp()
                    if isinstance(part, CatUrl):
                        e.raw(b"URL ")
                        e.astring(part.url)
                    else:
                        e.raw(b"TEXT ")
                        e.literal(part.data, binary=part.binary)
                e.raw(b")")
            elif m.utf8:
                e.raw(b"UTF8 (")
                e.literal(m.data, binary=True)
                e.raw(b")")
            else:
                e.literal(m.data, binary=m.binary)


def _flags_and_date(c: Cursor) -> tuple[tuple[str, ...], dt.datetime | None]:
    """An APPEND message's optional flag list and date-time, each followed by SP."""
    flags: tuple[str, ...] = ()
    date: dt.datetime | None = None
    if c.peek() == 0x28:
        flags = c.flag_list()
        c.sp()
    if c.peek() == 0x22:
        date = c.date_time()
        c.sp()
    return flags, date


def _parse_append_message(c: Cursor) -> AppendMessage:
    flags, date = _flags_and_date(c)
    if c.accept_word(b"CATENATE"):
        c.sp()
        parts = c.paren_list(lambda: _parse_cat_part(c), allow_empty=False)
        return AppendMessage(Catenate(tuple(parts)), flags, date)
    if c.accept_word(b"UTF8"):
        c.sp()
        c.open()
        data = c.literal(binary_ok=True)
        c.close()
        return AppendMessage(data, flags, date, utf8=True)
    data, binary = c.literal_ex(binary_ok=True)
    return AppendMessage(data, flags, date, binary=binary)


def _parse_cat_part(c: Cursor) -> CatText | CatUrl:
    if c.accept_word(b"TEXT"):
        c.sp()
        data, binary = c.literal_ex(binary_ok=True)
        return CatText(data, binary)
    if c.accept_word(b"URL"):
        c.sp()
        return CatUrl(decode_text(c.astring()))
    raise c.error("expected TEXT or URL")


@attrs.frozen
class AppendHead:
    """What comes before the data literal of one message of an APPEND: the
    command's tag and mailbox, the message's place in it (0: the first; more with
    MULTIAPPEND) and its flags, date and ``UTF8 (...)`` wrapping (RFC 6855 §4)."""

    tag: str
    mailbox: str
    index: int
    flags: tuple[str, ...] = ()
    date: dt.datetime | None = None
    utf8: bool = False


def append_literal_head(buf: bytes, *, utf8: bool = False, max_depth: int = 64,
                        after: AppendHead | None = None) -> AppendHead | None:
    """Whether the literal announced at the end of ``buf`` is the data of a message
    of an APPEND (not a CATENATE TEXT part, nor a mailbox name): then its head.

    ``buf`` is a command read so far (literals inline, without their octets where
    the caller did not keep them: ``{0}``), ending with the literal's announcement
    rewritten as an empty one (``{0}`` or ``~{0}``, then CRLF). With ``after`` (the
    head of an earlier message's literal) ``buf`` is what followed that literal:
    the scan goes on from there rather than from the start of the command.
    Anything that does not parse is None: that literal is then kept whole, and the
    complete command parsed (and refused) as ever.
    """
    try:
        if after is None:
            m = TAG_RE.match(buf)
            if m is None:
                return None
            tag = m.group().decode("ascii")
            c = Cursor(buf, m.end(), tag=tag, max_depth=max_depth, utf8=utf8)
            c.sp()
            if not c.accept_word(b"APPEND"):
                return None
            c.sp()
            mailbox = c.mailbox()
            index = 0
        else:
            tag, mailbox, index = after.tag, after.mailbox, after.index + 1
            c = Cursor(buf, 0, tag=tag, max_depth=max_depth, utf8=utf8)
            if after.utf8:
                c.expect(b")")
        while c.accept(b" "):
            flags, date = _flags_and_date(c)
            if c.accept_word(b"CATENATE"):
                c.sp()
                c.paren_list(lambda: _parse_cat_part(c), allow_empty=False)
            elif c.accept_word(b"UTF8"):
                c.sp()
                c.open()
                c.literal(binary_ok=True)
                if c.at_end():
                    return AppendHead(tag, mailbox, index, flags, date, utf8=True)
                c.close()
            else:
                c.literal_ex(binary_ok=True)
                if c.at_end():
                    return AppendHead(tag, mailbox, index, flags, date)
            index += 1
    except (ImapProtocolError, ValueError, RecursionError):
        return None
    return None
