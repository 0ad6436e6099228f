"""Envelope paths: RFC 5321 syntax, SMTPUTF8, and the lookup normalisation."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.lmtp.address import (
    AddressError,
    AddressErrorKind,
    Mailbox,
    NormalizedAddress,
    normalize,
    parse_path,
    unquote_local,
)


def path(text: str, *, utf8: bool = False, null: bool = False) -> Mailbox | None:
    mailbox, rest = parse_path(text, null_allowed=null, smtputf8=utf8, postmaster_allowed=True)
    assert rest == ""
    return mailbox


@pytest.mark.parametrize(("text", "expected"), [
    ("<user@example.com>", Mailbox("user", "example.com")),
    ("<first.last+tag@sub.example.co.uk>", Mailbox("first.last+tag", "sub.example.co.uk")),
    ('<"john doe"@example.com>', Mailbox('"john doe"', "example.com")),
    ('<"a@b>c"@example.com>', Mailbox('"a@b>c"', "example.com")),
    ("<user@[192.0.2.1]>", Mailbox("user", "[192.0.2.1]")),
    ("<user@[IPv6:2001:db8::1]>", Mailbox("user", "[IPv6:2001:db8::1]")),
    ("<@relay.example,@other.example:user@example.com>", Mailbox("user", "example.com")),
    ("<Postmaster>", Mailbox("Postmaster", None)),
])
def test_valid_paths(text: str, expected: Mailbox) -> None:
    assert path(text) == expected


def test_null_path_only_where_allowed() -> None:
    assert path("<>", null=True) is None
    with pytest.raises(AddressError):
        path("<>")


def test_rest_is_returned() -> None:
    assert parse_path("<a@b.c> SIZE=10", null_allowed=False, smtputf8=False) == (
        Mailbox("a", "b.c"), " SIZE=10")


@pytest.mark.parametrize("text", [
    "user@example.com",           # no brackets
    "<user@example.com",          # unterminated
    "<user>",                     # no domain (and not postmaster)
    "<@example.com>",             # empty local part
    "<user@>",
    "<us er@example.com>",
    "<user..dots@example.com>",
    "<.user@example.com>",
    "<user@-bad.example>",
    "<user@bad-.example>",
    "<user@exa_mple.com>",
    "<user@[300.1.1.1]>",
    '<"unterminated@example.com>',
    '<"bad\x01char"@example.com>',
    "<user@example..com>",
])
def test_invalid_paths(text: str) -> None:
    with pytest.raises(AddressError) as info:
        path(text)
    assert info.value.kind is AddressErrorKind.SYNTAX


def test_non_ascii_needs_smtputf8() -> None:
    with pytest.raises(AddressError) as info:
        path("<jörg@bücher.example>")
    assert info.value.kind is AddressErrorKind.NON_ASCII
    assert path("<jörg@bücher.example>", utf8=True) == Mailbox("jörg", "bücher.example")
    assert path('<"zoë x"@example.com>', utf8=True) == Mailbox('"zoë x"', "example.com")


def test_path_length_limit() -> None:
    long_path = "<" + "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".example>"
    assert len(long_path) > 256
    with pytest.raises(AddressError) as info:
        path(long_path)
    assert info.value.kind is AddressErrorKind.TOO_LONG


@pytest.mark.parametrize(("mailbox", "expected"), [
    (Mailbox("User", "Example.COM"), NormalizedAddress("user@example.com", None)),
    (Mailbox("user+Tag", "example.com"), NormalizedAddress("user@example.com", "Tag")),
    (Mailbox("user+a+b", "example.com"), NormalizedAddress("user@example.com", "a+b")),
    (Mailbox("user+", "example.com"), NormalizedAddress("user@example.com", "")),
    (Mailbox("+only", "example.com"), NormalizedAddress("+only@example.com", None)),
    (Mailbox('"John"', "example.com"), NormalizedAddress("john@example.com", None)),
    (Mailbox('"a\\"b"', "example.com"), NormalizedAddress('a"b@example.com', None)),
    (Mailbox("Straße", "Bücher.example"), NormalizedAddress("straße@bücher.example", None)),
    (Mailbox("Postmaster", None), NormalizedAddress("postmaster", None)),
])
def test_normalize(mailbox: Mailbox, expected: NormalizedAddress) -> None:
    assert normalize(mailbox) == expected


def test_normalize_without_sub_addressing() -> None:
    assert normalize(Mailbox("a+b", "x.y"), separator="") == NormalizedAddress("a+b@x.y", None)


def test_unquote_local() -> None:
    assert unquote_local('"a\\\\b c"') == "a\\b c"
    assert unquote_local("plain") == "plain"


_atom = st.text(string.ascii_letters + string.digits + "!#$%&'*-/=?^_`{|}~", min_size=1,
                max_size=10)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@given(st.lists(_atom, min_size=1, max_size=3), st.none() | _atom,
       st.lists(_label, min_size=1, max_size=3))
def test_parse_and_normalize_properties(atoms: list[str], tag: str | None,
                                        labels: list[str]) -> None:
    local = ".".join(atoms)
    if tag is not None:
        local += "+" + tag
    domain = ".".join(labels)
    mailbox = path(f"<{local}@{domain}>")
    assert mailbox == Mailbox(local, domain)
    norm = normalize(mailbox)
    # Idempotent, case-folded, and the tag is split off exactly at the first "+".
    assert norm.lookup == norm.lookup.lower()
    assert normalize(Mailbox(*norm.lookup.rsplit("@", 1))).lookup == norm.lookup
    base, plus, detail = local.partition("+")
    if plus and base:
        assert norm.detail == detail
        assert norm.lookup == f"{base.lower()}@{domain.lower()}"
