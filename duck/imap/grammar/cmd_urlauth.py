"""URLAUTH (RFC 4467): GENURLAUTH, RESETKEY and URLFETCH, and their responses, with
URLFETCH's parameters and metadata from URLAUTH=BINARY (RFC 5524).

RFC 4467 §9::

    genurlauth      = "GENURLAUTH" 1*(SP url-rump SP mechanism)
    resetkey        = "RESETKEY" [SP mailbox *(SP mechanism)]
    url-rump        = astring
    url-full        = astring
    mechanism       = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / ".")
    genurlauth-data = "*" SP "GENURLAUTH" 1*(SP url-full)

RFC 5524 §5 (which extends RFC 4467's ``urlfetch`` and ``urlfetch-data``)::

    urlfetch            = "URLFETCH" 1*(SP url-fetch-arg)
    url-fetch-arg       = url-fetch-simple / url-fetch-ext
    url-fetch-simple    = url-full
    url-fetch-ext       = "(" url-full *(SP url-fetch-param) ")"
    url-fetch-param     = "BODY" / "BINARY" / "BODYPARTSTRUCTURE" / atom
    urlfetch-data       = "*" SP "URLFETCH" 1*(SP (urldata-simple / urldata-ext))
    urldata-simple      = url-full SP nstring
    urldata-ext         = url-full url-metadata
    url-metadata        = 1*(SP "(" url-metadata-el ")")
    url-metadata-el     = url-meta-bodystruct / url-meta-body / url-meta-binary
    url-meta-bodystruct = "BODYPARTSTRUCTURE" SP body
    url-meta-binary     = "BINARY" SP (nstring / literal8)
    url-meta-body       = "BODY" SP nstring

(RFC 5524's ABNF writes an SP both before each item and inside ``urldata-simple``
and ``urldata-ext``; its own examples, and every server, send one, as here.)
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from .bodystructure import BodyStructure, encode_body
from .cmd_base import Command, to_mailbox, to_pairs, to_tuple, upper_tuple
from .encode import Encoder
from .lexer import Cursor

_MECHANISM_RE = re.compile(rb"[A-Za-z0-9.\-]+")
#: URLs one command may carry: each costs a store look-up.
MAX_URLS = 100


def _mechanism(c: Cursor) -> str:
    return c.match(_MECHANISM_RE, "URLAUTH mechanism").decode("ascii").upper()


def _check_count(instance: object, attribute: Any, value: tuple[Any, ...]) -> None:
    if not 0 < len(value) <= MAX_URLS:
        raise ValueError(f"{attribute.name}: 1 to {MAX_URLS} URLs")


@attrs.frozen
class GenUrlAuth(Command):
    """``GENURLAUTH 1*(SP url-rump SP mechanism)``."""

    VERB = "GENURLAUTH"

    requests: tuple[tuple[str, str], ...] = attrs.field(converter=to_pairs,
                                                        validator=_check_count)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> GenUrlAuth:
        requests: list[tuple[str, str]] = []
        while c.accept(b" "):
            if len(requests) >= MAX_URLS:
                raise c.error(f"at most {MAX_URLS} URLs")
            url = c.astring_text()
            c.sp()
            requests.append((url, _mechanism(c)))
        if not requests:
            raise c.error("GENURLAUTH needs a URL and a mechanism")
        return cls(tag, tuple(requests))

    def encode_args(self, e: Encoder) -> None:
        for url, mechanism in self.requests:
            e.sp()
            e.astring(url)
            e.sp()
            e.text(mechanism)


@attrs.frozen
class ResetKey(Command):
    """``RESETKEY [SP mailbox *(SP mechanism)]``: without a mailbox, every key."""

    VERB = "RESETKEY"

    mailbox: str | None = attrs.field(default=None, converter=attrs.converters.optional(
        to_mailbox))
    mechanisms: tuple[str, ...] = attrs.field(default=(), converter=upper_tuple)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> ResetKey:
        if not c.accept(b" "):
            return cls(tag)
        mailbox = c.mailbox()
        mechanisms = []
        while c.accept(b" "):
            mechanisms.append(_mechanism(c))
        return cls(tag, mailbox, tuple(mechanisms))

    def encode_args(self, e: Encoder) -> None:
        if self.mailbox is None:
            return
        e.sp()
        e.mailbox(self.mailbox)
        for mechanism in self.mechanisms:
            e.sp()
            e.text(mechanism)


#: RFC 5524 §3.1: the parameters defined; any other atom is an extension not served.
URLFETCH_PARAMS = frozenset({"BODY", "BINARY", "BODYPARTSTRUCTURE"})


def _check_params(instance: object, attribute: Any, value: tuple[str, ...] | None) -> None:
    """RFC 5524 §3.1: "Metadata items MUST NOT appear more than once per URL
    requested, and clients MUST NOT request both BINARY and BODY"."""
    if value is None:
        return
    unknown = set(value) - URLFETCH_PARAMS
    if unknown:
        raise ValueError(f"unknown URLFETCH parameter {sorted(unknown)[0]}")
    if len(set(value)) != len(value):
        raise ValueError("a URLFETCH parameter given twice")
    if "BINARY" in value and "BODY" in value:
        raise ValueError("URLFETCH asks for BINARY or BODY, not both")


@attrs.frozen
class UrlFetchArg:
    """One URL of a URLFETCH. ``params`` is None for a bare URL (RFC 4467), the
    parameters (upper-cased, maybe none) for one in parentheses (RFC 5524 §3.1)."""

    url: str
    params: tuple[str, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(upper_tuple), validator=_check_params)

    @property
    def extended(self) -> bool:
        """Whether the answer takes RFC 5524's metadata form: with no parameter the
        command "behave[s] precisely as specified in [URLAUTH]" (§3)."""
        return bool(self.params)


def _to_args(values: Any) -> tuple[UrlFetchArg, ...]:
    return tuple(v if isinstance(v, UrlFetchArg) else UrlFetchArg(v) for v in values)


@attrs.frozen
class UrlFetch(Command):
    """``URLFETCH 1*(SP url-fetch-arg)``."""

    VERB = "URLFETCH"

    urls: tuple[UrlFetchArg, ...] = attrs.field(converter=_to_args, validator=_check_count)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> UrlFetch:
        urls: list[UrlFetchArg] = []
        while c.accept(b" "):
            if len(urls) >= MAX_URLS:
                raise c.error(f"at most {MAX_URLS} URLs")
            if not c.peek_is(b"("):
                urls.append(UrlFetchArg(c.astring_text()))
                continue
            c.open()
            url = c.astring_text()
            params: list[str] = []
            while c.accept(b" "):
                params.append(c.keyword())
            c.close()
            try:
                urls.append(UrlFetchArg(url, tuple(params)))
            except ValueError as exc:
                raise c.error(str(exc)) from None
        if not urls:
            raise c.error("URLFETCH needs a URL")
        return cls(tag, tuple(urls))

    def encode_args(self, e: Encoder) -> None:
        for arg in self.urls:
            e.sp()
            if arg.params is None:
                e.astring(arg.url)
                continue
            e.raw(b"(")
            e.astring(arg.url)
            for param in arg.params:
                e.sp()
                e.text(param)
            e.raw(b")")


@attrs.frozen
class GenUrlAuthData:
    """``* GENURLAUTH 1*(SP url-full)``."""

    urls: tuple[str, ...] = attrs.field(converter=to_tuple)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* GENURLAUTH")
        for url in self.urls:
            e.sp()
            e.astring(url)


@attrs.frozen
class UrlMetaBodyPartStructure:
    """``url-meta-bodystruct``: the structure of the data returned (RFC 5524 §3.2)."""

    body: BodyStructure


@attrs.frozen
class UrlMetaBinary:
    """``url-meta-binary``: the content without its transfer encoding; None (NIL)
    when it could not be removed (RFC 5524 §3.2)."""

    data: bytes | None


@attrs.frozen
class UrlMetaBody:
    """``url-meta-body``: the content as it is stored."""

    data: bytes | None


UrlMetadataEl = UrlMetaBodyPartStructure | UrlMetaBinary | UrlMetaBody
#: What one URL gives: RFC 4467's nstring (None for NIL), or RFC 5524's metadata.
UrlFetchValue = bytes | None | tuple[UrlMetadataEl, ...]


def _encode_metadata_el(e: Encoder, item: UrlMetadataEl) -> None:
    e.raw(b"(")
    if isinstance(item, UrlMetaBodyPartStructure):
        e.raw(b"BODYPARTSTRUCTURE ")
        encode_body(e, item.body, extensible=True)
    elif isinstance(item, UrlMetaBinary):
        e.raw(b"BINARY ")
        if item.data is None:
            e.raw(b"NIL")
        else:
            # RFC 5524 §5: "If content contains a NUL octet, literal8 MUST be used."
            e.literal(item.data, binary=b"\x00" in item.data)
    else:
        e.raw(b"BODY ")
        if item.data is None:
            e.raw(b"NIL")
        else:
            e.literal(item.data)
    e.raw(b")")


@attrs.frozen
class UrlFetchData:
    """``* URLFETCH 1*(SP (urldata-simple / urldata-ext))``: NIL for a URL that
    gives nothing, a tuple of metadata for a URL asked with parameters."""

    results: tuple[tuple[str, UrlFetchValue], ...] = attrs.field(converter=to_pairs)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* URLFETCH")
        for url, value in self.results:
            e.sp()
            e.astring(url)
            if isinstance(value, tuple) and value:
                for item in value:
                    e.sp()
                    _encode_metadata_el(e, item)
                continue
            e.sp()
            if value is None or isinstance(value, tuple):
                e.raw(b"NIL")
            else:
                # Message bytes always go as a literal: they may hold anything
                # but NUL (which BODY[] never carries either).
                e.literal(value)
