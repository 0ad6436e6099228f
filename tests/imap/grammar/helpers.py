"""Small drivers shared by the grammar tests."""

from __future__ import annotations

from collections.abc import Iterable

import duck.imap.grammar as g


def drive(reader: g.CommandReader, chunks: Iterable[bytes], *, accept: bool = True) -> list[object]:
    """Feed ``chunks`` and collect every event; literals are accepted (or rejected).

    Errors become ``("error", type name, tag, fatal)`` tuples; a fatal error stops.
    """
    events: list[object] = []
    for chunk in chunks:
        reader.receive_data(chunk)
        while True:
            try:
                event = reader.next_event()
            except g.ImapProtocolError as exc:
                events.append(("error", type(exc).__name__, exc.tag, exc.fatal))
                if exc.fatal:
                    return events
                continue
            if event is g.NEED_DATA:
                break
            if isinstance(event, g.ContinuationNeeded):
                events.append(("continue", event.tag, event.size, event.binary))
                if accept:
                    reader.accept_literal()
                else:
                    reader.reject_literal()
                continue
            events.append(event)
    return events


def parse_one(line: bytes, **kwargs: object) -> g.Command:
    """Parse one command given with or without CRLF, through a CommandReader."""
    reader = g.CommandReader(**kwargs)  # type: ignore[arg-type]
    events = drive(reader, [line if line.endswith(b"\r\n") else line + b"\r\n"])
    commands = [e for e in events if isinstance(e, g.Command)]
    assert len(commands) == 1, events
    return commands[0]


def roundtrip(line: bytes, *, canonical: bool = True) -> g.Command:
    """Parse ``line``, check value round trip and (when canonical) byte round trip."""
    cmd = parse_one(line)
    wire = g.serialize_command(cmd, literal_plus="+}" in line.decode("latin-1"))
    assert g.parse_command(wire[:-2]) == cmd
    if canonical:
        assert wire == (line if line.endswith(b"\r\n") else line + b"\r\n")
    return cmd


def response_roundtrip(line: bytes, *, canonical: bool = True) -> g.Response:
    """Parse a server response and check it serializes back (byte-exact if canonical)."""
    resp = g.parse_response(line)
    wire = g.serialize(resp)
    assert g.parse_response(wire) == resp
    if canonical:
        assert wire == (line if line.endswith(b"\r\n") else line + b"\r\n")
    return resp
