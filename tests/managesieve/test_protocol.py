"""The sans-IO ManageSieve machine: strings, literals, caps, states."""

from __future__ import annotations

from duck.managesieve.protocol import (
    MAX_LITERAL,
    NEED_DATA,
    Command,
    ConnectionClosed,
    ManageSieveProtocol,
    Refused,
    SaslResponse,
)


def _events(proto: ManageSieveProtocol) -> list[object]:
    out = []
    while (event := proto.next_event()) is not NEED_DATA:
        out.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return out


def test_commands_with_quoted_literal_and_number() -> None:
    proto = ManageSieveProtocol()
    proto.authenticated()
    proto.receive_data(b'putscript "my \\"s\\"" {6+}\r\nkeep;\n\r\nHAVESPACE "x" 1234\r\n')
    assert _events(proto) == [Command("PUTSCRIPT", ('my "s"', "keep;\n")),
                              Command("HAVESPACE", ("x", 1234))]


def test_byte_by_byte_is_the_same() -> None:
    data = b'CHECKSCRIPT {11}\r\nif true {}\n\r\nNOOP "t"\r\n'
    proto = ManageSieveProtocol()
    proto.authenticated()
    got: list[object] = []
    for i in range(len(data)):
        proto.receive_data(data[i:i + 1])
        got += _events(proto)
    assert got == [Command("CHECKSCRIPT", ("if true {}\n",)), Command("NOOP", ("t",))]


def test_states_and_arity() -> None:
    proto = ManageSieveProtocol()
    proto.receive_data(b'LISTSCRIPTS\r\nFOO\r\nNOOP\r\nSETACTIVE\r\n')
    events = _events(proto)
    assert isinstance(events[0], Refused) and b"authentication" in events[0].response
    assert isinstance(events[1], Refused) and b"unknown command" in events[1].response
    assert events[2] == Command("NOOP", (None,))
    assert isinstance(events[3], Refused)
    proto.authenticated()
    proto.receive_data(b'SETACTIVE\r\nGETSCRIPT 5\r\nAUTHENTICATE "PLAIN"\r\n')
    assert all(isinstance(e, Refused) for e in _events(proto))


def test_oversized_literal_is_skipped_and_refused() -> None:
    proto = ManageSieveProtocol()
    proto.authenticated()
    size = MAX_LITERAL + 10
    proto.receive_data(b'PUTSCRIPT "big" {%d+}\r\n' % size)
    assert _events(proto) == []
    for _ in range(size // 65536):
        proto.receive_data(b"x" * 65536)
        assert _events(proto) == []
    proto.receive_data(b"x" * (size % 65536) + b"\r\nNOOP\r\n")
    events = _events(proto)
    assert isinstance(events[0], Refused) and b"QUOTA/MAXSIZE" in events[0].response
    assert events[1] == Command("NOOP", (None,))


def test_long_line_and_bad_strings_are_refused() -> None:
    proto = ManageSieveProtocol()
    proto.authenticated()
    proto.receive_data(b"NOOP " + b"a" * 20000)
    proto.receive_data(b"\r\nGETSCRIPT \"\\x\"\r\nGETSCRIPT \"\xff\"\r\nNOOP\r\n")
    events = _events(proto)
    assert [type(e) for e in events] == [Refused, Refused, Refused, Command]


def test_sasl_response_and_close() -> None:
    proto = ManageSieveProtocol()
    proto.expect_sasl()
    proto.receive_data(b'"AGFsaWNlAHB3"\r\n')
    assert _events(proto) == [SaslResponse("AGFsaWNlAHB3")]
    proto.receive_data(b"")
    assert _events(proto) == [ConnectionClosed()]


def test_too_many_errors_is_fatal() -> None:
    proto = ManageSieveProtocol()
    proto.receive_data(b"BAD\r\n" * 10)
    events = _events(proto)
    assert isinstance(events[-1], Refused) and events[-1].fatal
