"""atheris target: raw bytes into the command reader and both parsers.

Any exception other than an ImapProtocolError subclass is a bug
(docs/architecture.md, "Grammar"), and atheris reports it as a crash. The first
input byte chooses how the rest is split into receive_data() chunks (an odd
chunk size also has APPEND literals streamed: ``stream_append``) and whether
continuations are accepted.

    python fuzz/fuzz_raw.py CORPUS_DIR fuzz/seeds -max_total_time=600
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris
import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["duck"]):
    import duck.imap.grammar as g

LIMITS = g.Limits(max_line=4096, max_literal=8192, max_command=16384, max_depth=16,
                  max_discard=65536)


def drive(data: bytes) -> None:
    """Feed ``data`` to a reader in chunks decided by its first byte."""
    if not data:
        return
    control, body = data[0], data[1:]
    step = (control & 0x1F) + 1
    accept = bool(control & 0x20)
    limits = LIMITS if control & 0x40 else g.Limits(literal_plus=False, max_depth=16)
    reader = g.CommandReader(limits, utf8_enabled=bool(control & 0x80),
                             stream_append=bool(step & 1))
    for i in range(0, len(body), step):
        reader.receive_data(body[i : i + step])
        while True:
            try:
                event = reader.next_event()
            except g.ImapProtocolError as exc:
                if exc.fatal:
                    return
                continue
            if event is g.NEED_DATA:
                break
            if isinstance(event, g.ContinuationNeeded):
                reader.accept_literal() if accept else reader.reject_literal()
            elif isinstance(event, g.Idle):
                try:
                    reader.next_line()
                except g.ImapProtocolError as exc:
                    if exc.fatal:
                        return
            elif isinstance(event, g.LiteralChunk):
                assert event.data, event
            elif isinstance(event, g.AppendLiteral | g.LiteralEnd):
                pass
            else:
                assert isinstance(event, g.Command), event
                if isinstance(event, g.Append):
                    # A streamed message's data went out as chunks: it serializes empty.
                    event = attrs.evolve(event, messages=tuple(
                        attrs.evolve(m, streamed=False) for m in event.messages))
                # Whatever parsed must serialize and parse back to the same value.
                wire = g.serialize_command(event, literal_plus=True, utf8=reader.utf8_enabled)
                again = g.parse_command(wire[:-2], utf8=reader.utf8_enabled)
                assert again == event, (event, again, wire)


def test_one_input(data: bytes) -> None:
    """The atheris entry point."""
    drive(data)
    for parse in (g.parse_command, g.parse_response):
        try:
            parse(data)
        except g.ImapProtocolError:
            pass
    try:
        value = g.parse_response(data)
    except g.ImapProtocolError:
        return
    wire = g.serialize(value)
    assert g.parse_response(wire) == value, (value, wire)


def main() -> None:
    """Run atheris over :func:`test_one_input`."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
