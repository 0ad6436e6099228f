"""URLAUTH (RFC 4467): GENURLAUTH, RESETKEY and URLFETCH, and their responses.

RFC 4467 §9::

    genurlauth      = "GENURLAUTH" 1*(SP url-rump SP mechanism)
    resetkey        = "RESETKEY" [SP mailbox *(SP mechanism)]
    urlfetch        = "URLFETCH" 1*(SP url-full)
    url-rump        = astring
    url-full        = astring
    mechanism       = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / ".")
    genurlauth-data = "*" SP "GENURLAUTH" 1*(SP url-full)
    urlfetch-data   = "*" SP "URLFETCH" 1*(SP url-full SP nstring)
"""

from __future__ import annotations

import re
from typing import Any

import attrs

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


@attrs.frozen
class UrlFetch(Command):
    """``URLFETCH 1*(SP url-full)``."""

    VERB = "URLFETCH"

    urls: tuple[str, ...] = attrs.field(converter=to_tuple, validator=_check_count)

    @classmethod
    def parse_args(cls, c: Cursor, tag: str, uid: bool) -> UrlFetch:
        urls: list[str] = []
        while c.accept(b" "):
            if len(urls) >= MAX_URLS:
                raise c.error(f"at most {MAX_URLS} URLs")
            if c.peek_is(b"("):
                # RFC 5524 (URLAUTH=BINARY) parameters: not served.
                raise c.error("URLFETCH parameters (URLAUTH=BINARY) are not supported")
            urls.append(c.astring_text())
        if not urls:
            raise c.error("URLFETCH needs a URL")
        return cls(tag, tuple(urls))

    def encode_args(self, e: Encoder) -> None:
        for url in self.urls:
            e.sp()
            e.astring(url)


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
class UrlFetchData:
    """``* URLFETCH 1*(SP url-full SP nstring)``: NIL for a URL that gives nothing."""

    results: tuple[tuple[str, bytes | None], ...] = attrs.field(converter=to_pairs)

    def encode(self, e: Encoder) -> None:
        """Write the response without CRLF."""
        e.raw(b"* URLFETCH")
        for url, data in self.results:
            e.sp()
            e.astring(url)
            e.sp()
            if data is None:
                e.raw(b"NIL")
            else:
                # Message bytes always go as a literal: they may hold anything
                # but NUL (which BODY[] never carries either).
                e.literal(data)
