"""RFC examples: commands of any state and of the not-authenticated state."""

from __future__ import annotations

import pytest

import duck.imap.grammar as g

from .helpers import parse_one, roundtrip


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a002 NOOP", g.Noop("a002")),  # RFC 3501 §6.1.2
        (b"abcd CAPABILITY", g.Capability("abcd")),  # §6.1.1
        (b"A023 LOGOUT", g.Logout("A023")),  # §6.1.3
        (b"a002 STARTTLS", g.StartTLS("a002")),  # §6.2.1
        (b"A002 NAMESPACE", g.Namespace("A002")),  # RFC 2342 §5
        (b"a002 IDLE", g.Idle("a002")),  # RFC 2177 §3
        (b"FXXZ CHECK", g.Check("FXXZ")),  # RFC 3501 §6.4.1
        (b"A341 CLOSE", g.Close("A341")),  # §6.4.2
        (b"A342 UNSELECT", g.Unselect("A342")),  # RFC 3691
        (b"A1 UNAUTHENTICATE", g.Unauthenticate("A1")),  # RFC 8437
        (b"t1 ENABLE CONDSTORE X-GOOD-IDEA", g.Enable("t1", ("CONDSTORE", "X-GOOD-IDEA"))),
        (b"t2 COMPRESS DEFLATE", g.Compress("t2", "DEFLATE")),  # RFC 4978
    ],
)
def test_simple_commands(line: bytes, expected: g.Command) -> None:
    assert roundtrip(line) == expected


def test_login_rfc3501() -> None:
    assert roundtrip(b'a001 LOGIN SMITH SESAME') == g.Login("a001", "SMITH", "SESAME")
    cmd = parse_one(b'a001 LOGIN "fred smith" {5+}\r\npa"ss')
    assert cmd == g.Login("a001", "fred smith", 'pa"ss')
    assert g.serialize_command(cmd) == b'a001 LOGIN "fred smith" "pa\\"ss"\r\n'


def test_login_keeps_undecodable_octets() -> None:
    cmd = parse_one(b"a1 LOGIN {2+}\r\n\xff\xfe x")
    assert isinstance(cmd, g.Login)
    assert cmd.username.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    assert g.serialize_command(cmd, literal_plus=True) == b"a1 LOGIN {2+}\r\n\xff\xfe x\r\n"


def test_authenticate_with_and_without_initial_response() -> None:
    # RFC 3501 §6.2.2 and RFC 4959 §3 (SASL-IR).
    assert roundtrip(b"A001 AUTHENTICATE GSSAPI") == g.Authenticate("A001", "GSSAPI")
    assert roundtrip(b"a01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=") == g.Authenticate(
        "a01", "PLAIN", b"test\x00test\x00test")
    assert roundtrip(b"a02 AUTHENTICATE EXTERNAL =") == g.Authenticate("a02", "EXTERNAL", b"")
    assert parse_one(b"a03 authenticate plain").mechanism == "PLAIN"  # type: ignore[attr-defined]


@pytest.mark.parametrize("line", [b"a1 AUTHENTICATE PLAIN dGVzd", b"a1 AUTHENTICATE PLAIN ***",
                                  b"a1 AUTHENTICATE", b"a1 LOGIN fred", b"a1 ENABLE",
                                  b"a1 NOOP extra", b"a1 CAPABILITY "])
def test_malformed(line: bytes) -> None:
    with pytest.raises(g.ImapProtocolError) as info:
        g.parse_command(line)
    assert info.value.tag == "a1" and not info.value.fatal


def test_id_rfc2971() -> None:
    cmd = roundtrip(b'a023 ID ("name" "sodr" "version" "19.34" '
                    b'"vendor" "Pink Floyd Music Limited")')
    assert cmd == g.Id("a023", (("name", "sodr"), ("version", "19.34"),
                                ("vendor", "Pink Floyd Music Limited")))
    assert roundtrip(b"a024 ID NIL") == g.Id("a024", None)
    assert roundtrip(b'a025 ID ("os" NIL)') == g.Id("a025", (("os", None),))


def test_uid_prefix_only_for_uid_commands() -> None:
    with pytest.raises(g.UnknownCommand):
        g.parse_command(b"a1 UID NOOP")
    with pytest.raises(g.ParseError):
        g.parse_command(b"a1 UID")
