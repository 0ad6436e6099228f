"""Envelope addresses: parsing RFC 5321 paths and normalising them for lookup.

Pure functions, no I/O. The grammar is RFC 5321 section 4.1.2, widened by
RFC 6531 section 3.3 (UTF-8 in atext, qtext and domain labels) when the
transaction declared SMTPUTF8.
"""

from __future__ import annotations

import enum
import re
import string

import attrs

#: RFC 5321 section 4.5.3.1.3: a path is at most 256 octets, angle brackets included.
MAX_PATH_OCTETS = 256

#: RFC 5322 section 3.2.3 atext, ASCII part.
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
_LET_DIG = re.compile(r"[A-Za-z0-9]")
# sub-domain = Let-dig [Ldh-str]; with SMTPUTF8 a label may also be a U-label, which we
# accept as any run of non-ASCII letters/digits/hyphens (full IDNA validation is the
# sending MTA's job; we only route on it).
_ASCII_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\Z")
_UTF8_LABEL = re.compile(r"[^\W_](?:[\w-]*[^\W_])?\Z")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}\Z")


class AddressErrorKind(enum.Enum):
    """Why a path was refused."""

    SYNTAX = "syntax"
    #: Non-ASCII address in a transaction without SMTPUTF8 (RFC 6531 section 3.5).
    NON_ASCII = "non-ascii"
    TOO_LONG = "too-long"


class AddressError(ValueError):
    """A reverse-path or forward-path that cannot be accepted."""

    def __init__(self, kind: AddressErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@attrs.frozen
class Mailbox:
    """``local@domain`` as the client wrote it (quotes kept), or a bare ``Postmaster``."""

    local: str
    domain: str | None

    def __str__(self) -> str:
        return self.local if self.domain is None else f"{self.local}@{self.domain}"


@attrs.frozen
class NormalizedAddress:
    """An address folded for lookup.

    ``lookup`` is ``local@domain`` lower-cased with the sub-address removed;
    ``detail`` is the removed ``+tag`` text (without the separator), kept for later rules.
    """

    lookup: str
    detail: str | None


def parse_path(text: str, *, null_allowed: bool, smtputf8: bool,
               postmaster_allowed: bool = False) -> tuple[Mailbox | None, str]:
    """Parse ``<path>`` at the start of ``text``; return (mailbox or None for ``<>``, rest).

    ``rest`` is what follows the closing ``>`` (the ESMTP parameters, still with
    their leading space). Source routes (``<@a,@b:user@d>``) are accepted and
    dropped, as RFC 5321 section 4.1.1.3 asks of servers.
    """
    if not text.startswith("<"):
        raise AddressError(AddressErrorKind.SYNTAX, "path must be enclosed in <>")
    end = _closing_bracket(text)
    inner = text[1:end]
    rest = text[end + 1:]
    if len(text[:end + 1].encode("utf-8")) > MAX_PATH_OCTETS:
        raise AddressError(AddressErrorKind.TOO_LONG, "path too long")
    if not smtputf8 and not inner.isascii():
        raise AddressError(AddressErrorKind.NON_ASCII, "non-ASCII address without SMTPUTF8")
    if inner == "":
        if not null_allowed:
            raise AddressError(AddressErrorKind.SYNTAX, "null path not allowed here")
        return None, rest
    if inner.startswith("@"):
        inner = _strip_source_route(inner)
    if postmaster_allowed and inner.lower() == "postmaster":
        return Mailbox(inner, None), rest
    return _mailbox(inner, smtputf8), rest


def _closing_bracket(text: str) -> int:
    in_quotes = False
    i = 1
    while i < len(text):
        c = text[i]
        if in_quotes:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quotes = False
        elif c == '"':
            in_quotes = True
        elif c == ">":
            return i
        i += 1
    raise AddressError(AddressErrorKind.SYNTAX, "path has no closing >")


def _strip_source_route(inner: str) -> str:
    # A-d-l ":" Mailbox; the at-domains cannot contain ':' so the first one ends it.
    route, sep, mailbox = inner.partition(":")
    if not sep:
        raise AddressError(AddressErrorKind.SYNTAX, "source route without ':'")
    for hop in route.split(","):
        if not hop.startswith("@") or not _is_domain(hop[1:], utf8=True):
            raise AddressError(AddressErrorKind.SYNTAX, "bad source route")
    return mailbox


def _mailbox(inner: str, utf8: bool) -> Mailbox:
    local, domain = _split_mailbox(inner)
    if local.startswith('"'):
        _check_quoted_string(local, utf8)
    else:
        _check_dot_string(local, utf8)
    if not (_is_domain(domain, utf8) or _is_address_literal(domain)):
        raise AddressError(AddressErrorKind.SYNTAX, f"bad domain {domain!r}")
    return Mailbox(local, domain)


def _split_mailbox(inner: str) -> tuple[str, str]:
    # The local part may be a quoted string containing '@', so split at the last '@'.
    at = inner.rfind("@")
    if at <= 0:
        raise AddressError(AddressErrorKind.SYNTAX, "mailbox needs local@domain")
    return inner[:at], inner[at + 1:]


def _check_dot_string(local: str, utf8: bool) -> None:
    for atom in local.split("."):
        if not atom or not all(c in _ATEXT or (utf8 and ord(c) > 127) for c in atom):
            raise AddressError(AddressErrorKind.SYNTAX, f"bad local part {local!r}")


def _check_quoted_string(local: str, utf8: bool) -> None:
    if len(local) < 2 or not local.endswith('"'):
        raise AddressError(AddressErrorKind.SYNTAX, "unterminated quoted local part")
    body = local[1:-1]
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            # quoted-pairSMTP = %d92 %d32-126
            if i + 1 >= len(body) or not 32 <= ord(body[i + 1]) <= 126:
                raise AddressError(AddressErrorKind.SYNTAX, "bad quoted pair")
            i += 2
            continue
        # qtextSMTP = %d32-33 / %d35-91 / %d93-126 (+ UTF8-non-ascii with SMTPUTF8)
        o = ord(c)
        if not (32 <= o <= 126 and c not in '"\\') and not (utf8 and o > 127):
            raise AddressError(AddressErrorKind.SYNTAX, "bad character in quoted local part")
        i += 1


def _is_domain(domain: str, utf8: bool) -> bool:
    if not domain or len(domain.encode("utf-8")) > 255:
        return False
    return all(_is_label(part, utf8) for part in domain.split("."))


def _is_label(part: str, utf8: bool) -> bool:
    if part.isascii():
        return bool(_ASCII_LABEL.match(part))
    return utf8 and bool(_UTF8_LABEL.match(part))


def _is_address_literal(domain: str) -> bool:
    if not (domain.startswith("[") and domain.endswith("]")):
        return False
    body = domain[1:-1]
    if _IPV4.match(body):
        return True
    tag, sep, value = body.partition(":")
    # IPv6-address-literal and General-address-literal: "tag:content", content
    # being printable ASCII except "[", "\\" and "]" (RFC 5321 section 4.1.3).
    return bool(sep) and bool(_LET_DIG.match(tag[:1])) and bool(value) and all(
        33 <= ord(c) <= 126 and c not in "[\\]" for c in value
    )


def unquote_local(local: str) -> str:
    """The local part's content: quotes and quoted-pair backslashes removed."""
    if not local.startswith('"'):
        return local
    out = []
    body = local[1:-1]
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 1
        out.append(body[i])
        i += 1
    return "".join(out)


def normalize(mailbox: Mailbox, *, separator: str = "+") -> NormalizedAddress:
    """Fold ``mailbox`` for the address lookup.

    Case: the local part is lower-cased too. RFC 5321 section 2.4 lets a server
    treat local parts as case-sensitive, but duck's address table is case-
    insensitive (like Dovecot and Postfix's virtual maps), so ``John@x`` and
    ``john@x`` are one mailbox. ``str.lower`` rather than ``casefold``, so that
    ``ß`` does not collide with ``ss``.
    Sub-addressing: ``user+tag@d`` looks up ``user@d``; the tag is kept as ``detail``.
    A quoted local part is compared by its content (``"john"@x`` is ``john@x``).
    """
    local = unquote_local(mailbox.local)
    detail: str | None = None
    if separator:
        base, sep, tag = local.partition(separator)
        if sep and base:
            local, detail = base, tag
    if mailbox.domain is None:
        return NormalizedAddress(local.lower(), detail)
    return NormalizedAddress(f"{local.lower()}@{mailbox.domain.lower()}", detail)
