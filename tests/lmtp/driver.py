"""Drive an LmtpProtocol synchronously in tests, answering events like a simple server."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from duck.lmtp.events import (
    PAUSED,
    Bdat,
    ChunkEnd,
    ConnectionClosed,
    DataAbort,
    DataChunk,
    DataEnd,
    DataStart,
    Event,
    Lhlo,
    ProtocolError,
    Quit,
    RcptTo,
    Sentinel,
    StartTls,
    Vrfy,
)
from duck.lmtp.protocol import LmtpProtocol, ProtocolConfig
from duck.lmtp.replies import (
    CANNOT_VRFY,
    CLOSING,
    OK,
    READY_FOR_TLS,
    START_MAIL_INPUT,
    Reply,
    reply,
)

RcptPolicy = Callable[[RcptTo], Reply]


class Driver:
    """Feeds bytes, answers every event, records events and the reply bytes."""

    def __init__(self, config: ProtocolConfig | None = None, *,
                 rcpt: RcptPolicy | None = None,
                 end: Callable[[int], list[Reply]] | None = None) -> None:
        self.proto = LmtpProtocol(config)
        self.events: list[Event] = []
        self.out = bytearray()
        self.rcpt = rcpt or (lambda ev: OK)
        self.end = end or (lambda n: [OK] * n)
        self.closed = False

    def feed(self, data: bytes) -> list[Event]:
        """Feed ``data`` (b"" for EOF); answer and return the new events."""
        start = len(self.events)
        self.proto.receive_data(data)
        self.pump()
        return self.events[start:]

    def feed_all(self, pieces: Iterable[bytes]) -> list[Event]:
        start = len(self.events)
        for piece in pieces:
            self.feed(piece)
        return self.events[start:]

    def pump(self) -> None:
        while True:
            event = self.proto.next_event()
            if isinstance(event, Sentinel):
                assert event is not PAUSED, "driver answers every event"
                return
            self.events.append(event)
            if isinstance(event, ConnectionClosed):
                self.closed = True
                return
            self.answer(event)

    def answer(self, event: Event) -> None:
        p = self.proto
        if isinstance(event, DataChunk | DataAbort | Bdat):
            return
        if isinstance(event, Lhlo):
            self.out += p.send(reply(250, None, "test.example", *p.extensions()))
        elif isinstance(event, RcptTo):
            self.out += p.send(self.rcpt(event))
        elif isinstance(event, DataStart):
            self.out += p.send(START_MAIL_INPUT)
        elif isinstance(event, DataEnd) or (isinstance(event, ChunkEnd) and event.last):
            n = event.replies
            answers = [event.rejected] * n if event.rejected else self.end(n)
            for a in answers:
                self.out += p.send(a)
        elif isinstance(event, ChunkEnd):
            self.out += p.send(event.rejected or OK)
        elif isinstance(event, ProtocolError):
            self.out += p.send(event.reply)
        elif isinstance(event, Quit):
            self.out += p.send(CLOSING)
        elif isinstance(event, StartTls):
            self.out += p.send(READY_FOR_TLS)
        elif isinstance(event, Vrfy):
            self.out += p.send(CANNOT_VRFY)
        else:
            self.out += p.send(OK)

    def reply_codes(self) -> list[str]:
        """``"250 2.0.0"``-style prefixes of every final reply line sent so far."""
        codes = []
        for line in bytes(self.out).split(b"\r\n"):
            if len(line) >= 4 and line[3:4] == b" ":
                parts = line.decode().split(" ")
                status = parts[1] if len(parts) > 1 and parts[1][:1] in "245" and \
                    parts[1].count(".") == 2 else None
                codes.append(parts[0] + (" " + status if status else ""))
        return codes

    def message(self) -> bytes:
        """All DataChunk bytes received so far."""
        return b"".join(e.data for e in self.events if isinstance(e, DataChunk))


def merged(events: list[Event]) -> list[Event]:
    """Events with consecutive DataChunks joined (chunking is not part of the meaning)."""
    out: list[Event] = []
    for e in events:
        if isinstance(e, DataChunk) and out and isinstance(out[-1], DataChunk):
            out[-1] = DataChunk(out[-1].data + e.data)
        else:
            out.append(e)
    return out


def session(*lines: str) -> bytes:
    """Command lines joined with CRLF."""
    return "".join(line + "\r\n" for line in lines).encode()
