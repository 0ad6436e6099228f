"""ENVELOPE and BODY/BODYSTRUCTURE values of FETCH responses (RFC 3501 §7.4.2,
RFC 9051 §7.5.2), with their serializer and parser."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .cmd_base import to_tuple
from .encode import Encoder
from .lexer import Cursor, decode_text


@attrs.frozen
class Address:
    """``address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"``.

    A group start has ``host`` None and the group name in ``mailbox``; a group end
    has ``mailbox`` and ``host`` None (RFC 3501 §7.4.2).
    """

    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None


def _addresses(value: Iterable[Address] | None) -> tuple[Address, ...]:
    return () if value is None else tuple(value)


@attrs.frozen
class Envelope:
    """The ENVELOPE: header values as nstrings (bytes or None), address lists as
    tuples (an empty tuple is NIL)."""

    date: bytes | None = None
    subject: bytes | None = None
    from_: tuple[Address, ...] = attrs.field(default=(), converter=_addresses)
    sender: tuple[Address, ...] = attrs.field(default=(), converter=_addresses)
    reply_to: tuple[Address, ...] = attrs.field(default=(), converter=_addresses)
    to: tuple[Address, ...] = attrs.field(default=(), converter=_addresses)
    cc: tuple[Address, ...] = attrs.field(default=(), converter=_addresses)
    bcc: tuple[Address, ...] = attrs.field(default=(), converter=_addresses)
    in_reply_to: bytes | None = None
    message_id: bytes | None = None


def _params(value: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in value)


Params = tuple[tuple[str, str], ...]
#: ``body-extension = nstring / number / "(" body-extension *(SP body-extension) ")"``
BodyExtension = str | int | None | tuple["BodyExtension", ...]


@attrs.frozen
class Disposition:
    """``body-fld-dsp``: ``"(" string SP body-fld-param ")"``."""

    type: str
    params: Params = attrs.field(default=(), converter=_params)


@attrs.frozen
class BodyExt:
    """Extension data of BODYSTRUCTURE (absent from BODY).

    ``md5`` belongs to single parts only; ``params`` to multiparts only.
    """

    md5: str | None = None
    params: Params = attrs.field(default=(), converter=_params)
    disposition: Disposition | None = None
    language: tuple[str, ...] | None = None
    location: str | None = None
    extensions: tuple[BodyExtension, ...] = attrs.field(default=(), converter=to_tuple)

    def __attrs_post_init__(self) -> None:
        if self.language is not None and not self.language:
            raise ValueError("an empty language list is None")


@attrs.frozen
class SinglePart:
    """A non-multipart body: ``body-type-basic``, ``body-type-text`` (``lines``) or
    ``body-type-msg`` (``envelope``, ``body`` and ``lines``)."""

    type: str
    subtype: str
    params: Params = attrs.field(default=(), converter=_params)
    id: str | None = None
    description: str | None = None
    encoding: str = "7BIT"
    size: int = 0
    lines: int | None = None
    envelope: Envelope | None = None
    body: BodyStructure | None = None
    ext: BodyExt | None = None

    def __attrs_post_init__(self) -> None:
        if self.ext is not None and self.ext.params:
            raise ValueError("single parts carry md5, not params, in extension data")
        kind = _kind(self.type, self.subtype)
        if kind == "text" and self.lines is None:
            raise ValueError("a TEXT part has a line count")
        if kind == "message":
            if self.lines is None or self.envelope is None or self.body is None:
                raise ValueError("a MESSAGE/RFC822 part has envelope, body and lines")
        elif self.envelope is not None or self.body is not None:
            raise ValueError("only MESSAGE/RFC822 parts have an envelope and body")
        if kind == "basic" and self.lines is not None:
            raise ValueError("only TEXT and MESSAGE/RFC822 parts have a line count")


def _kind(type_: str, subtype: str) -> str:
    t = type_.upper()
    if t == "TEXT":
        return "text"
    # RFC 9051 §9 media-message also names MESSAGE/GLOBAL (RFC 6532).
    if t == "MESSAGE" and subtype.upper() in ("RFC822", "GLOBAL"):
        return "message"
    return "basic"


def _check_parts(instance: object, attribute: object, value: tuple[object, ...]) -> None:
    if not value:
        raise ValueError("a multipart has at least one part")


@attrs.frozen
class MultiPart:
    """``body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]``."""

    parts: tuple[BodyStructure, ...] = attrs.field(converter=to_tuple, validator=_check_parts)
    subtype: str = "MIXED"
    ext: BodyExt | None = None

    def __attrs_post_init__(self) -> None:
        if self.ext is not None and self.ext.md5 is not None:
            raise ValueError("multiparts carry params, not md5, in extension data")


BodyStructure = SinglePart | MultiPart


# -- serializer --------------------------------------------------------------------


def encode_address_list(e: Encoder, addrs: tuple[Address, ...]) -> None:
    """``"(" 1*address ")" / nil``."""
    if not addrs:
        e.raw(b"NIL")
        return
    e.raw(b"(")
    for a in addrs:
        e.raw(b"(")
        e.nstring(a.name)
        e.sp()
        e.nstring(a.adl)
        e.sp()
        e.nstring(a.mailbox)
        e.sp()
        e.nstring(a.host)
        e.raw(b")")
    e.raw(b")")


def encode_envelope(e: Encoder, env: Envelope) -> None:
    """``envelope``."""
    e.raw(b"(")
    e.nstring(env.date)
    e.sp()
    e.nstring(env.subject)
    for addrs in (env.from_, env.sender, env.reply_to, env.to, env.cc, env.bcc):
        e.sp()
        encode_address_list(e, addrs)
    e.sp()
    e.nstring(env.in_reply_to)
    e.sp()
    e.nstring(env.message_id)
    e.raw(b")")


def _encode_params(e: Encoder, params: Params) -> None:
    if not params:
        e.raw(b"NIL")
        return
    e.raw(b"(")
    for i, (k, v) in enumerate(params):
        if i:
            e.sp()
        e.string(k)
        e.sp()
        e.string(v)
    e.raw(b")")


def _encode_extension(e: Encoder, value: BodyExtension) -> None:
    if isinstance(value, tuple):
        e.raw(b"(")
        for i, v in enumerate(value):
            if i:
                e.sp()
            _encode_extension(e, v)
        e.raw(b")")
    elif isinstance(value, int):
        e.number(value)
    else:
        e.nstring(value)


def _encode_ext_tail(e: Encoder, ext: BodyExt) -> None:
    e.sp()
    if ext.disposition is None:
        e.raw(b"NIL")
    else:
        e.raw(b"(")
        e.string(ext.disposition.type)
        e.sp()
        _encode_params(e, ext.disposition.params)
        e.raw(b")")
    e.sp()
    if ext.language is None:
        e.raw(b"NIL")
    elif len(ext.language) == 1:
        e.string(ext.language[0])
    else:
        e.raw(b"(")
        for i, lang in enumerate(ext.language):
            if i:
                e.sp()
            e.string(lang)
        e.raw(b")")
    e.sp()
    e.nstring(ext.location)
    for x in ext.extensions:
        e.sp()
        _encode_extension(e, x)


def encode_body(e: Encoder, body: BodyStructure, *, extensible: bool) -> None:
    """``body``; extension data only when ``extensible`` (BODYSTRUCTURE)."""
    e.raw(b"(")
    if isinstance(body, MultiPart):
        for part in body.parts:
            encode_body(e, part, extensible=extensible)
        e.sp()
        e.string(body.subtype)
        if extensible and body.ext is not None:
            e.sp()
            _encode_params(e, body.ext.params)
            _encode_ext_tail(e, body.ext)
    else:
        e.string(body.type)
        e.sp()
        e.string(body.subtype)
        e.sp()
        _encode_params(e, body.params)
        e.sp()
        e.nstring(body.id)
        e.sp()
        e.nstring(body.description)
        e.sp()
        e.string(body.encoding)
        e.sp()
        e.number(body.size)
        if body.envelope is not None and body.body is not None:
            e.sp()
            encode_envelope(e, body.envelope)
            e.sp()
            encode_body(e, body.body, extensible=extensible)
        if body.lines is not None:
            e.sp()
            e.number(body.lines)
        if extensible and body.ext is not None:
            e.sp()
            e.nstring(body.ext.md5)
            _encode_ext_tail(e, body.ext)
    e.raw(b")")


# -- parser ------------------------------------------------------------------------


def _nstr(c: Cursor) -> str | None:
    raw = c.nstring()
    return None if raw is None else decode_text(raw)


def _str(c: Cursor) -> str:
    return decode_text(c.string())


def parse_address_list(c: Cursor) -> tuple[Address, ...]:
    """``"(" 1*address ")" / nil``."""
    if c.nil():
        return ()
    c.open()
    out = []
    while c.accept(b"("):
        name = c.nstring()
        c.sp()
        adl = c.nstring()
        c.sp()
        mailbox = c.nstring()
        c.sp()
        host = c.nstring()
        c.expect(b")")
        out.append(Address(name, adl, mailbox, host))
        # Deviation (RFC 3501 §9): some servers put SP between addresses; accept it.
        c.accept(b" ")
    if not out:
        raise c.error("empty address list")
    c.close()
    return tuple(out)


def parse_envelope(c: Cursor) -> Envelope:
    """``envelope``."""
    c.open()
    date = c.nstring()
    c.sp()
    subject = c.nstring()
    lists = []
    for _ in range(6):
        c.sp()
        lists.append(parse_address_list(c))
    c.sp()
    in_reply_to = c.nstring()
    c.sp()
    message_id = c.nstring()
    c.close()
    return Envelope(date, subject, lists[0], lists[1], lists[2], lists[3], lists[4], lists[5],
                    in_reply_to, message_id)


def _parse_params(c: Cursor) -> Params:
    if c.nil():
        return ()

    def pair() -> tuple[str, str]:
        k = _str(c)
        c.sp()
        return (k, _str(c))

    return tuple(c.paren_list(pair, allow_empty=False))


def _parse_extension(c: Cursor) -> BodyExtension:
    if c.peek() == 0x28:
        return tuple(c.paren_list(lambda: _parse_extension(c), allow_empty=False))
    if 0x30 <= c.peek() <= 0x39:
        return c.number64()
    return _nstr(c)


def _parse_ext_tail(c: Cursor, md5: str | None, params: Params) -> BodyExt:
    disposition = None
    language = None
    location = None
    extensions: list[BodyExtension] = []
    if c.accept(b" "):
        if not c.nil():
            c.open()
            dtype = _str(c)
            c.sp()
            disposition = Disposition(dtype, _parse_params(c))
            c.close()
        if c.accept(b" "):
            if c.peek() == 0x28:
                language = tuple(c.paren_list(lambda: _str(c), allow_empty=False))
            else:
                lang = _nstr(c)
                language = None if lang is None else (lang,)
            if c.accept(b" "):
                location = _nstr(c)
                while c.accept(b" "):
                    extensions.append(_parse_extension(c))
    return BodyExt(md5, params, disposition, language, location, tuple(extensions))


def parse_body(c: Cursor) -> BodyStructure:
    """``body = "(" (body-type-1part / body-type-mpart) ")"``."""
    c.open()
    if c.peek() == 0x28:
        parts = []
        while c.peek() == 0x28:
            parts.append(parse_body(c))
            c.accept(b" ")  # Deviation (RFC 3501 §9): tolerate SP between parts.
        subtype = _str(c)
        ext = None
        if c.accept(b" "):
            ext = _parse_ext_tail(c, None, _parse_params(c))
        c.close()
        return MultiPart(tuple(parts), subtype, ext)
    type_ = _str(c)
    c.sp()
    subtype = _str(c)
    c.sp()
    params = _parse_params(c)
    c.sp()
    id_ = _nstr(c)
    c.sp()
    description = _nstr(c)
    c.sp()
    encoding = _str(c)
    c.sp()
    size = c.number()
    kind = _kind(type_, subtype)
    envelope = None
    body = None
    lines = None
    if kind == "message":
        c.sp()
        envelope = parse_envelope(c)
        c.sp()
        body = parse_body(c)
        c.sp()
        lines = c.number()
    elif kind == "text":
        c.sp()
        lines = c.number()
    ext = None
    if c.accept(b" "):
        ext = _parse_ext_tail(c, _nstr(c), ())
    c.close()
    try:
        return SinglePart(type_, subtype, params, id_, description, encoding, size, lines,
                          envelope, body, ext)
    except ValueError as exc:
        raise c.error(str(exc)) from None
