"""The sans-IO LMTP machine: order, pipelining, DATA, BDAT, SIZE, limits, STARTTLS."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.lmtp.events import (
    NEED_DATA,
    PAUSED,
    Bdat,
    ChunkEnd,
    ConnectionClosed,
    DataAbort,
    DataChunk,
    DataEnd,
    DataStart,
    Lhlo,
    MailFrom,
    ProtocolError,
    RcptTo,
    Rset,
    StartTls,
)
from duck.lmtp.protocol import LmtpProtocol, LocalProtocolError, ProtocolConfig, State
from duck.lmtp.replies import OK, START_MAIL_INPUT, Failure, failure_reply, reply

from .client import dot_stuff
from .driver import Driver, merged, session

HEAD = session("LHLO mta.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>")


def errors(events: Sequence[object]) -> list[str]:
    return [f"{e.reply.code} {e.reply.status}" for e in events if isinstance(e, ProtocolError)]


def test_simple_transaction_events_and_replies() -> None:
    d = Driver()
    d.feed(HEAD + b"DATA\r\n")
    d.feed(b"Subject: hi\r\n\r\nbody\r\n.\r\n")
    assert [type(e) for e in merged(d.events)] == [
        Lhlo, MailFrom, RcptTo, DataStart, DataChunk, DataEnd]
    assert d.message() == b"Subject: hi\r\n\r\nbody\r\n"
    assert d.reply_codes() == ["250", "250 2.0.0", "250 2.0.0", "354", "250 2.0.0"]
    assert d.proto.state is State.READY
    assert not d.proto.in_transaction


def test_lhlo_reply_lists_extensions_without_enhanced_code() -> None:
    d = Driver(ProtocolConfig(max_message_size=1000, starttls=True))
    d.feed(session("LHLO x"))
    lines = bytes(d.out).decode().split("\r\n")[:-1]
    assert lines[0] == "250-test.example"
    assert lines[-1] == "250 STARTTLS"
    keywords = [ln[4:] for ln in lines[1:]]
    for kw in ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE 1000", "CHUNKING",
               "SMTPUTF8"):
        assert kw in keywords


def test_size_without_limit_is_bare_keyword() -> None:
    assert "SIZE" in LmtpProtocol(ProtocolConfig(max_message_size=None)).extensions()


@pytest.mark.parametrize(("lines", "expected"), [
    (["MAIL FROM:<a@b.c>"], "503 5.5.1"),                     # before LHLO
    (["LHLO x", "RCPT TO:<a@b.c>"], "503 5.5.1"),             # RCPT before MAIL
    (["LHLO x", "DATA"], "503 5.5.1"),                        # DATA before MAIL
    (["LHLO x", "MAIL FROM:<a@b.c>", "MAIL FROM:<a@b.c>"], "503 5.5.1"),  # nested MAIL
    (["LHLO x", "MAIL FROM:<a@b.c>", "DATA"], "554 5.5.1"),   # no valid recipients
    (["HELO x"], "500 5.5.1"),                                # LMTP has no HELO
    (["EHLO x"], "500 5.5.1"),
    (["FOO"], "500 5.5.1"),
    (["EXPN list"], "502 5.5.1"),
    (["LHLO"], "501 5.5.4"),
    (["LHLO x", "MAIL FROM:<a@b.c> FOO=1"], "555 5.5.4"),
    (["LHLO x", "MAIL FROM:<a@b.c> SIZE=x"], "501 5.5.4"),
    (["LHLO x", "MAIL FROM:<a@b.c> SIZE=1 SIZE=2"], "501 5.5.4"),
    (["LHLO x", "MAIL FROM:<a@b.c> BODY=9BIT"], "501 5.5.4"),
    (["LHLO x", "MAIL FROM:a@b.c"], "501 5.1.7"),
    (["LHLO x", "MAIL FROM:<a@b.c>", "RCPT TO:<>"], "501 5.1.3"),
    (["LHLO x", "MAIL FROM:<a@b.c>", "RCPT TO:<x@y.z> NOTIFY=NEVER"], "555 5.5.4"),
    (["LHLO x", "MAIL FROM:<jörg@b.c>"], "553 5.6.7"),         # non-ASCII without SMTPUTF8
    (["LHLO x", "MAIL FROM:<a@b.c>", "RCPT TO:<jörg@b.c>"], "553 5.6.7"),
    (["LHLO x", "MAIL FROM:<a@b.c> BODY=BINARYMIME", "RCPT TO:<x@y.z>", "DATA"], "503 5.5.1"),
    (["RSET x"], "501 5.5.4"),
    (["DATA x"], "501 5.5.4"),
    (["VRFY"], "501 5.5.4"),
    (["STARTTLS"], "502 5.5.1"),                              # not configured
])
def test_bad_commands_get_the_right_reply(lines: list[str], expected: str) -> None:
    d = Driver()
    d.feed(session(*lines))
    assert d.reply_codes()[-1] == expected


def test_smtputf8_allows_utf8_addresses() -> None:
    d = Driver()
    events = d.feed(session("LHLO x", "MAIL FROM:<jörg@bücher.example> SMTPUTF8",
                            "RCPT TO:<zoë@bücher.example>"))
    assert errors(events) == []
    mail = events[1]
    assert isinstance(mail, MailFrom) and mail.smtputf8
    assert mail.reverse_path == "jörg@bücher.example"


def test_invalid_utf8_command_line() -> None:
    d = Driver()
    d.feed(b"LHLO \xff\xfe\r\n")
    assert d.reply_codes() == ["500 5.5.2"]


def test_declared_size_over_limit_is_refused_at_mail() -> None:
    d = Driver(ProtocolConfig(max_message_size=100))
    d.feed(session("LHLO x", "MAIL FROM:<a@b.c> SIZE=101", "MAIL FROM:<a@b.c> SIZE=100"))
    assert d.reply_codes()[1:] == ["552 5.3.4", "250 2.0.0"]


def test_actual_size_over_limit_aborts_and_rejects_every_recipient() -> None:
    d = Driver(ProtocolConfig(max_message_size=50))
    d.feed(HEAD + session("RCPT TO:<c@example.com>", "DATA"))
    events = d.feed(dot_stuff(b"x" * 40 + b"\r\n" + b"y" * 40 + b"\r\n"))
    aborts = [e for e in events if isinstance(e, DataAbort)]
    assert len(aborts) == 1 and aborts[0].reply.code == 552
    end = events[-1]
    assert isinstance(end, DataEnd) and end.replies == 2
    assert end.rejected == failure_reply(Failure.MESSAGE_TOO_BIG)
    assert d.reply_codes()[-2:] == ["552 5.3.4", "552 5.3.4"]
    assert d.proto.state is State.READY
    # Nothing after the abort reaches the server as message content.
    seen = sum(len(e.data) for e in events if isinstance(e, DataChunk))
    assert seen <= 50


def test_message_of_exactly_the_limit_is_accepted() -> None:
    d = Driver(ProtocolConfig(max_message_size=12))
    d.feed(HEAD + b"DATA\r\n" + dot_stuff(b"0123456789\r\n"))
    assert d.reply_codes()[-1] == "250 2.0.0"
    assert d.message() == b"0123456789\r\n"


def test_pipelined_commands_are_answered_in_order() -> None:
    refused = {"<bad@example.com>"}

    def rcpt(ev: RcptTo) -> object:
        return failure_reply(Failure.UNKNOWN_USER) if f"<{ev.address}>" in refused else OK

    d = Driver(rcpt=rcpt)  # type: ignore[arg-type]
    d.feed(session("LHLO x", "MAIL FROM:<> BODY=8BITMIME", "RCPT TO:<ok@example.com>",
                   "RCPT TO:<bad@example.com>", "RCPT TO:<ok2@example.com>", "DATA")
           + dot_stuff(b"hello\r\n") + session("NOOP", "QUIT"))
    assert d.reply_codes() == [
        "250", "250 2.0.0", "250 2.0.0", "550 5.1.1", "250 2.0.0", "354",
        "250 2.0.0", "250 2.0.0", "250 2.0.0", "221 2.0.0"]
    assert d.closed


def test_next_event_pauses_until_replied() -> None:
    p = LmtpProtocol()
    p.receive_data(session("LHLO x", "NOOP"))
    assert isinstance(p.next_event(), Lhlo)
    assert p.next_event() is PAUSED
    assert p.replies_expected == 1
    p.send(reply(250, None, "h"))
    assert p.next_event() is not PAUSED


def test_send_without_pending_event_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        LmtpProtocol().send(OK)


def test_data_needs_354_not_250() -> None:
    p = LmtpProtocol()
    d = Driver()
    d.proto = p
    d.feed(HEAD)
    p.receive_data(b"DATA\r\n")
    assert isinstance(p.next_event(), DataStart)
    with pytest.raises(LocalProtocolError):
        p.send(OK)
    p.send(START_MAIL_INPUT)
    assert p.state is State.DATA


def test_refused_data_keeps_the_transaction() -> None:
    p = LmtpProtocol()
    d = Driver()
    d.proto = p
    d.feed(HEAD)
    p.receive_data(b"DATA\r\n")
    assert isinstance(p.next_event(), DataStart)
    p.send(failure_reply(Failure.UNAVAILABLE))
    assert p.state is State.MAIL and p.in_transaction


def test_rset_clears_the_transaction() -> None:
    d = Driver()
    events = d.feed(HEAD + session("RSET", "RCPT TO:<b@example.com>"))
    assert isinstance(events[-2], Rset)
    assert d.reply_codes()[-1] == "503 5.5.1"


def test_lhlo_resets_the_transaction() -> None:
    d = Driver()
    d.feed(HEAD + session("LHLO again", "DATA"))
    assert d.reply_codes()[-1] == "503 5.5.1"


@pytest.mark.parametrize("length", [510, 511])
def test_command_line_limit_is_512_octets_with_crlf(length: int) -> None:
    d = Driver()
    line = b"NOOP " + b"x" * (length - 5)
    d.feed(line + b"\r\n")
    assert d.reply_codes() == (["250 2.0.0"] if length <= 510 else ["500 5.5.2"])


def test_overlong_line_is_discarded_without_buffering_it() -> None:
    d = Driver()
    d.feed(b"NOOP ")
    for _ in range(100):
        d.feed(b"y" * 10_000)
        assert d.proto.buffered <= 1000
    d.feed(b"\r\nNOOP\r\n")
    assert d.reply_codes() == ["500 5.5.2", "250 2.0.0"]


def test_overlong_line_split_at_cr_lf() -> None:
    d = Driver()
    d.feed(b"N" * 2000 + b"\r")
    d.feed(b"\nNOOP\r\n")
    assert d.reply_codes() == ["500 5.5.2", "250 2.0.0"]


def test_mail_line_may_use_the_extension_allowance() -> None:
    d = Driver(ProtocolConfig(max_message_size=None))
    local = "l" * 60
    domain = ".".join(["d" * 60] * 3) + ".example"
    padding = " " * 200  # between parameters; tolerated, and pushes the line past 512
    params = f"SIZE=12345678901234567890{padding}BODY=BINARYMIME SMTPUTF8"
    line = f"MAIL FROM:<{local}@{domain}> {params}"
    assert 512 < len(line) + 2 <= 563
    d.feed(session("LHLO x", line, "NOOP " + "x" * 520))
    assert d.reply_codes()[1:] == ["250 2.0.0", "500 5.5.2"]


def test_long_data_lines_are_accepted() -> None:
    # Decision (RFC 5321 section 4.5.3.1.6 sets a floor of 1000 octets, not a ceiling
    # the receiver must enforce): text lines of any length pass through unchanged.
    d = Driver()
    body = b"z" * 100_000 + b"\r\n"
    d.feed(HEAD + b"DATA\r\n" + dot_stuff(body))
    assert d.message() == body
    assert d.reply_codes()[-1] == "250 2.0.0"


def test_bare_lf_and_cr_pass_through_and_do_not_end_data() -> None:
    d = Driver()
    d.feed(HEAD + b"DATA\r\n")
    d.feed(b"a\nb\rc\n.\nd\r\n.x\r\n\n.\r\n")
    # "\n.\n" is no terminator and its dot is not a stuffing dot: only CRLF ends a line.
    assert d.proto.state is State.DATA
    d.feed(b".\r\n")
    assert d.message() == b"a\nb\rc\n.\nd\r\nx\r\n\n.\r\n"
    assert d.reply_codes()[-1] == "250 2.0.0"


def test_eof_in_data_closes_without_data_end() -> None:
    d = Driver()
    d.feed(HEAD + b"DATA\r\npartial\r\n")
    events = d.feed(b"")
    assert isinstance(events[-1], ConnectionClosed)
    assert not any(isinstance(e, DataEnd) for e in d.events)


def test_quit_closes_and_ignores_the_rest() -> None:
    d = Driver()
    d.feed(session("QUIT", "NOOP"))
    assert d.reply_codes() == ["221 2.0.0"]
    assert d.closed
    assert d.proto.state is State.CLOSED


def test_unsolicited_421_closes() -> None:
    p = LmtpProtocol()
    assert p.send_unsolicited(reply(421, "4.4.2", "Timeout")) == b"421 4.4.2 Timeout\r\n"
    assert isinstance(p.next_event(), ConnectionClosed)
    with pytest.raises(LocalProtocolError):
        p.send_unsolicited(OK)


def test_too_many_recipients() -> None:
    d = Driver(ProtocolConfig(max_recipients=2))
    d.feed(HEAD + session("RCPT TO:<c@d.e>", "RCPT TO:<f@g.h>"))
    assert d.reply_codes()[-2:] == ["250 2.0.0", "452 4.5.3"]


# -- BDAT -----------------------------------------------------------------------------


def test_bdat_chunks_are_verbatim_and_replied_per_chunk() -> None:
    d = Driver()
    d.feed(HEAD + session("RCPT TO:<c@example.com>"))
    events = d.feed(b"BDAT 5\r\n.\r\n\r\nBDAT 4 LAST\r\nab\r\n")
    assert merged(events) == [
        Bdat(5, False), DataChunk(b".\r\n\r\n"), ChunkEnd(False, 1),
        Bdat(4, True), DataChunk(b"ab\r\n"), ChunkEnd(True, 2),
    ]
    assert d.reply_codes()[-3:] == ["250 2.0.0", "250 2.0.0", "250 2.0.0"]
    assert d.proto.state is State.READY


def test_bdat_zero_last() -> None:
    d = Driver()
    d.feed(HEAD + b"BDAT 3\r\nabc")
    events = d.feed(b"BDAT 0 LAST\r\n")
    assert events == [Bdat(0, True), ChunkEnd(True, 1)]


def test_bdat_byte_by_byte() -> None:
    d = Driver()
    d.feed(HEAD)
    d.feed_all(bytes([b]) for b in b"BDAT 6 LAST\r\nBDAT 1")
    assert d.message() == b"BDAT 1"
    assert isinstance(d.events[-1], ChunkEnd)


def test_bdat_without_transaction_discards_its_octets() -> None:
    d = Driver()
    d.feed(session("LHLO x") + b"BDAT 10\r\nRSET\r\nXX\r\nNOOP\r\n")
    # The ten octets "RSET\r\nXX\r\n" are chunk content, not commands.
    assert d.reply_codes()[1:] == ["503 5.5.1", "250 2.0.0"]
    assert not any(isinstance(e, Rset) for e in d.events)
    assert d.message() == b""


def test_bdat_without_recipients() -> None:
    d = Driver()
    d.feed(session("LHLO x", "MAIL FROM:<a@b.c>") + b"BDAT 4 LAST\r\nNOOP" + session("NOOP"))
    assert d.reply_codes()[-2:] == ["554 5.5.1", "250 2.0.0"]


def test_data_after_bdat_is_refused() -> None:
    d = Driver()
    d.feed(HEAD + b"BDAT 2\r\nab" + session("DATA"))
    assert d.reply_codes()[-1] == "503 5.5.1"


def test_rcpt_after_bdat_is_refused() -> None:
    d = Driver()
    d.feed(HEAD + b"BDAT 2\r\nab" + session("RCPT TO:<z@y.x>"))
    assert d.reply_codes()[-1] == "503 5.5.1"


def test_bdat_over_size_limit_discards_and_fails_later_chunks() -> None:
    d = Driver(ProtocolConfig(max_message_size=10))
    d.feed(HEAD + session("RCPT TO:<c@example.com>"))
    events = d.feed(b"BDAT 8\r\n12345678BDAT 8\r\n12345678BDAT 1 LAST\r\nz" + session("NOOP"))
    assert [type(e) for e in merged(events)] == [
        Bdat, DataChunk, ChunkEnd, DataAbort, ChunkEnd, ChunkEnd, type(events[-1])]
    assert d.reply_codes()[-5:] == ["250 2.0.0", "552 5.3.4", "552 5.3.4", "552 5.3.4",
                                    "250 2.0.0"]
    assert d.message() == b"12345678"


def test_failed_chunk_reply_fails_the_rest_of_the_transaction() -> None:
    p = LmtpProtocol()
    d = Driver()
    d.proto = p
    d.feed(HEAD)
    p.receive_data(b"BDAT 1\r\naBDAT 1 LAST\r\nb")
    assert p.next_event() == Bdat(1, False)
    assert p.next_event() == DataChunk(b"a")
    assert p.next_event() == ChunkEnd(False, 1)
    unavailable = failure_reply(Failure.UNAVAILABLE)
    p.send(unavailable)
    # The pipelined last chunk is discarded and fails with the same reply.
    assert p.next_event() == ChunkEnd(True, 1, unavailable)


def test_malformed_bdat_is_fatal() -> None:
    d = Driver()
    events = d.feed(HEAD + session("BDAT lots"))
    err = events[-1]
    assert isinstance(err, ProtocolError) and err.fatal and err.reply.code == 501


def test_bdat_eof_mid_chunk() -> None:
    d = Driver()
    d.feed(HEAD + b"BDAT 10\r\nabc")
    assert isinstance(d.feed(b"")[-1], ConnectionClosed)


# -- STARTTLS ---------------------------------------------------------------------------


def test_starttls_discards_pipelined_plaintext_and_resets() -> None:
    d = Driver(ProtocolConfig(starttls=True))
    events = d.feed(session("LHLO x", "STARTTLS", "MAIL FROM:<evil@x.y>"))
    assert isinstance(events[-1], StartTls)
    assert d.proto.tls_active
    assert d.proto.state is State.CONNECTED
    assert d.proto.buffered == 0
    assert "STARTTLS" not in d.proto.extensions()
    d.feed(session("MAIL FROM:<a@b.c>", "LHLO x", "STARTTLS"))
    assert d.reply_codes()[-3:] == ["503 5.5.1", "250", "503 5.5.1"]


def test_starttls_in_transaction_is_refused() -> None:
    d = Driver(ProtocolConfig(starttls=True))
    d.feed(HEAD + session("STARTTLS"))
    assert d.reply_codes()[-1] == "503 5.5.1"


# -- properties -----------------------------------------------------------------------

_session_bytes = (
    HEAD + session("RCPT TO:<Other+Tag@Example.com>", "DATA")
    + dot_stuff(b"Subject: x\r\n\r\n.leading dot\r\n..two\r\n.\r\nend")
    + session("MAIL FROM:<> BODY=BINARYMIME", "RCPT TO:<b@example.com>")
    + b"BDAT 3\r\n\r\n.BDAT 2 LAST\r\n\x00\xff" + session("VRFY b", "NOOP", "RSET", "QUIT")
)


def _run_split(cuts: list[int]) -> Driver:
    d = Driver()
    points = sorted(set(c % (len(_session_bytes) + 1) for c in cuts))
    prev = 0
    for c in [*points, len(_session_bytes)]:
        if c > prev:
            d.feed(_session_bytes[prev:c])
        prev = c
    return d


def test_whole_session_reference() -> None:
    d = _run_split([])
    # DATA content is the original (the client helper stuffed it), BDAT content verbatim.
    assert d.message() == (
        b"Subject: x\r\n\r\n.leading dot\r\n..two\r\n.\r\nend\r\n" + b"\r\n.\x00\xff")
    assert d.closed
    assert d.reply_codes()[-4:] == ["252 2.0.0", "250 2.0.0", "250 2.0.0", "221 2.0.0"]


@given(st.lists(st.integers(min_value=0), max_size=30))
def test_chunking_invariance(cuts: list[int]) -> None:
    whole = _run_split([])
    split = _run_split(cuts)
    assert merged(split.events) == merged(whole.events)
    assert bytes(split.out) == bytes(whole.out)


def test_every_single_split_point() -> None:
    whole = _run_split([])
    for cut in range(len(_session_bytes) + 1):
        split = _run_split([cut])
        assert merged(split.events) == merged(whole.events), cut


def test_byte_by_byte() -> None:
    whole = _run_split([])
    split = _run_split(list(range(len(_session_bytes))))
    assert merged(split.events) == merged(whole.events)


@given(st.binary(max_size=3000))
def test_totality(data: bytes) -> None:
    """Any bytes: only events or NEED_DATA come out, never an exception."""
    d = Driver(ProtocolConfig(max_message_size=500, starttls=True))
    d.feed(data)
    d.feed(b"")
    assert d.closed


@given(st.binary(max_size=2000))
def test_totality_inside_data(data: bytes) -> None:
    d = Driver(ProtocolConfig(max_message_size=1000))
    d.feed(HEAD + b"DATA\r\n" + data)
    assert len(d.message()) <= 1000
    assert d.proto.next_event() is NEED_DATA
    # At most an undecided "." / ".\r" / "\r" is held back while in DATA.
    assert d.proto.buffered <= 2 or d.proto.state is not State.DATA
