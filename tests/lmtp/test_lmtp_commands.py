"""Command-line parsing into typed events."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.lmtp.address import Mailbox
from duck.lmtp.commands import parse_command
from duck.lmtp.events import (
    Bdat,
    BodyType,
    DataStart,
    Lhlo,
    MailFrom,
    Noop,
    ProtocolError,
    Quit,
    RcptTo,
    Rset,
    StartTls,
    Vrfy,
)


def parse(line: str, *, utf8: bool = False) -> object:
    return parse_command(line.encode(), smtputf8=utf8)


@pytest.mark.parametrize(("line", "event"), [
    ("LHLO mta.example", Lhlo("mta.example")),
    ("lhlo [127.0.0.1]", Lhlo("[127.0.0.1]")),
    ("MAIL FROM:<a@b.c>", MailFrom(Mailbox("a", "b.c"))),
    ("mail from: <a@b.c>", MailFrom(Mailbox("a", "b.c"))),
    ("MAIL FROM:<>", MailFrom(None)),
    ("MAIL FROM:<a@b.c> SIZE=123 BODY=8bitmime",
     MailFrom(Mailbox("a", "b.c"), size=123, body=BodyType.EIGHT_BIT_MIME)),
    ("MAIL FROM:<a@b.c> BODY=BINARYMIME SMTPUTF8",
     MailFrom(Mailbox("a", "b.c"), body=BodyType.BINARY_MIME, smtputf8=True)),
    ("MAIL FROM:<ü@b.c> smtputf8", MailFrom(Mailbox("ü", "b.c"), smtputf8=True)),
    ("RCPT TO:<x@y.z>", RcptTo(Mailbox("x", "y.z"))),
    ("RCPT TO:<postmaster>", RcptTo(Mailbox("postmaster", None))),
    ("DATA", DataStart()),
    ("BDAT 0 LAST", Bdat(0, True)),
    ("bdat 1000 last", Bdat(1000, True)),
    ("BDAT 42", Bdat(42, False)),
    ("RSET", Rset()),
    ("NOOP", Noop()),
    ("NOOP anything at all", Noop()),
    ("QUIT", Quit()),
    ("QUIT ", Quit()),
    ("VRFY someone", Vrfy("someone")),
    ("STARTTLS", StartTls()),
])
def test_commands(line: str, event: object) -> None:
    assert parse(line) == event


def test_rcpt_utf8_depends_on_the_transaction() -> None:
    assert parse("RCPT TO:<ü@b.c>", utf8=True) == RcptTo(Mailbox("ü", "b.c"))
    err = parse("RCPT TO:<ü@b.c>")
    assert isinstance(err, ProtocolError) and err.reply.code == 553


@pytest.mark.parametrize(("line", "code", "status"), [
    ("", 500, "5.5.1"),
    ("MAIL", 501, "5.5.4"),
    ("MAIL TO:<a@b.c>", 501, "5.5.4"),
    ("MAIL FROM:<a@b.c>SIZE=1", 501, "5.5.4"),
    ("MAIL FROM:<a@b.c> SIZE", 501, "5.5.4"),
    ("MAIL FROM:<a@b.c> SIZE=123456789012345678901", 501, "5.5.4"),
    ("MAIL FROM:<a@b.c> SMTPUTF8=yes", 501, "5.5.4"),
    ("MAIL FROM:<a@b.c> =x", 501, "5.5.4"),
    ("MAIL FROM:<a@b.c> AUTH=<>", 555, "5.5.4"),
    ("RCPT FROM:<a@b.c>", 501, "5.5.4"),
    ("RCPT TO:<a@b.c> ORCPT=rfc822;a@b.c", 555, "5.5.4"),
    ("BDAT", 501, "5.5.4"),
    ("BDAT -1", 501, "5.5.4"),
    ("BDAT 1 FIRST", 501, "5.5.4"),
    ("BDAT 1 LAST x", 501, "5.5.4"),
    ("QUIT now", 501, "5.5.4"),
    ("STARTTLS x", 501, "5.5.4"),
    ("TURN", 502, "5.5.1"),
    ("HELO x", 500, "5.5.1"),
])
def test_errors(line: str, code: int, status: str) -> None:
    err = parse(line)
    assert isinstance(err, ProtocolError)
    assert (err.reply.code, str(err.reply.status)) == (code, status)


def test_only_malformed_bdat_is_fatal() -> None:
    bdat = parse("BDAT x")
    assert isinstance(bdat, ProtocolError) and bdat.fatal
    other = parse("MAIL")
    assert isinstance(other, ProtocolError) and not other.fatal


@given(st.binary(max_size=600))
def test_totality(line: bytes) -> None:
    """Any line parses to an event; nothing raises."""
    event = parse_command(line, smtputf8=True)
    assert event is not None
