"""The sans-IO LMTP server state machine (RFC 2033 over RFC 5321), in the style of h11.

Feed received bytes with ``receive_data``, take typed events from ``next_event``
and answer each with ``send(reply)``, which returns the bytes to write. The
machine enforces command order, line limits and message size; it never holds a
whole message, and every buffer it keeps is bounded.

Reply discipline: after a command event the machine is PAUSED until its reply
was sent; after ``DataEnd`` or a last ``ChunkEnd`` it waits for one reply per
accepted recipient. Processing pipelined commands (RFC 2920) one at a time in
this way keeps the replies in command order without any reordering logic.
"""

from __future__ import annotations

import enum

import attrs

from duck.lmtp.commands import MAX_COMMAND_LINE, MAX_MAIL_LINE, parse_command
from duck.lmtp.dotstuff import DotUnstuffer
from duck.lmtp.events import (
    NEED_DATA,
    PAUSED,
    Bdat,
    BodyType,
    ChunkEnd,
    ConnectionClosed,
    DataAbort,
    DataChunk,
    DataEnd,
    DataStart,
    Event,
    Lhlo,
    MailFrom,
    Noop,
    ProtocolError,
    Quit,
    RcptTo,
    Rset,
    Sentinel,
    StartTls,
    Vrfy,
)
from duck.lmtp.replies import (
    LINE_TOO_LONG,
    TOO_MANY_RECIPIENTS,
    Failure,
    Reply,
    failure_reply,
    reply,
)

_NO_RECIPIENTS = reply(554, "5.5.1", "No valid recipients")
_NEED_LHLO = reply(503, "5.5.1", "Send LHLO first")
_NESTED_MAIL = reply(503, "5.5.1", "Sender already specified")
_NEED_MAIL = reply(503, "5.5.1", "Need MAIL command")
_RCPT_AFTER_BDAT = reply(503, "5.5.1", "No RCPT after BDAT")
_DATA_AFTER_BDAT = reply(503, "5.5.1", "DATA and BDAT cannot be mixed")
_BINARY_NEEDS_BDAT = reply(503, "5.5.1", "BODY=BINARYMIME requires BDAT")
_TLS_ACTIVE = reply(503, "5.5.1", "TLS already active")
_TLS_UNAVAILABLE = reply(502, "5.5.1", "STARTTLS not available")
_TLS_IN_TRANSACTION = reply(503, "5.5.1", "STARTTLS not allowed in a transaction")
_TOO_BIG = failure_reply(Failure.MESSAGE_TOO_BIG)


class State(enum.Enum):
    """Where the conversation is."""

    #: Before LHLO (and again after STARTTLS, RFC 3207 section 4.2).
    CONNECTED = "CONNECTED"
    #: LHLO done, no transaction.
    READY = "READY"
    #: MAIL accepted: RCPT, DATA or BDAT may follow.
    MAIL = "MAIL"
    #: Reading DATA content up to ``CRLF . CRLF``.
    DATA = "DATA"
    #: Reading the octets of a BDAT chunk.
    BDAT = "BDAT"
    #: QUIT answered, a 421 sent, or the client went away.
    CLOSED = "CLOSED"


class LocalProtocolError(Exception):
    """The server code misused the machine (a reply nobody asked for, a wrong code)."""


@attrs.frozen
class ProtocolConfig:
    """Limits and offered extensions."""

    #: SIZE limit in octets (RFC 1870); None means no fixed limit.
    max_message_size: int | None = 64 * 1024 * 1024
    #: RFC 5321 section 4.5.3.1.8 asks for at least 100; more get 452 4.5.3.
    max_recipients: int = 1000
    #: STARTTLS is offered (a TLS context is configured).
    starttls: bool = False

    def __attrs_post_init__(self) -> None:
        if self.max_message_size is not None and self.max_message_size < 0:
            raise ValueError("max_message_size must be >= 0")
        if self.max_recipients < 1:
            raise ValueError("max_recipients must be >= 1")


@attrs.define
class _Transaction:
    mail: MailFrom
    recipients: int = 0
    #: A BDAT was seen: DATA is no longer allowed (RFC 3030 section 2).
    chunking: bool = False
    #: Message octets received so far (after unstuffing).
    received: int = 0
    #: Set once a BDAT chunk failed: later chunks are discarded and get this reply.
    failed: Reply | None = None


@attrs.define
class _Await:
    event: Event
    remaining: int


class LmtpProtocol:
    """One LMTP connection, server side, without I/O."""

    def __init__(self, config: ProtocolConfig | None = None) -> None:
        self.config = config or ProtocolConfig()
        self._buf = bytearray()
        self._scan = 0  # where the search for CRLF resumes: no rescanning
        self._discarding_line = False
        self._eof = False
        self._state = State.CONNECTED
        self._tx: _Transaction | None = None
        self._await: _Await | None = None
        self._queued: tuple[Event, int] | None = None
        self._tls_active = False
        # DATA
        self._unstuffer: DotUnstuffer | None = None
        self._rejected: Reply | None = None
        # BDAT
        self._chunk_left = 0
        self._chunk_return = State.READY
        self._chunk_pass = False
        self._chunk_end: tuple[Event, int] | None = None

    # -- inspection ---------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current State."""
        return self._state

    @property
    def in_transaction(self) -> bool:
        """True between an accepted MAIL and the end of its message or RSET."""
        return self._tx is not None

    @property
    def tls_active(self) -> bool:
        """True after STARTTLS was answered with 220."""
        return self._tls_active

    @property
    def replies_expected(self) -> int:
        """How many replies ``send`` must be called with before events resume."""
        return 0 if self._await is None else self._await.remaining

    @property
    def buffered(self) -> int:
        """Octets received but not yet turned into events (for statistics and tests)."""
        return len(self._buf)

    def extensions(self) -> list[str]:
        """The LHLO keywords to advertise now (RFC 2033 section 4.1, RFC 5321 section 4.1.1.1)."""
        size = self.config.max_message_size
        keywords = [
            "PIPELINING",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "BINARYMIME",
            "CHUNKING",
            "SMTPUTF8",
            # RFC 1870 section 4: SIZE without a number means no fixed limit.
            f"SIZE {size}" if size is not None else "SIZE",
        ]
        if self.config.starttls and not self._tls_active:
            keywords.append("STARTTLS")
        return keywords

    # -- input --------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray) -> None:
        """Add received bytes; ``b""`` means the client closed its side."""
        if not data:
            self._eof = True
            return
        if self._state is State.CLOSED:
            return  # nothing after QUIT or 421 is read (RFC 5321 section 4.1.1.10)
        self._buf += data

    def next_event(self) -> Event | Sentinel:
        """The next event, or NEED_DATA, or PAUSED while a reply is owed."""
        if self._await is not None:
            return PAUSED
        if self._queued is not None:
            (event, replies), self._queued = self._queued, None
            return self._expect(event, replies)
        if self._state is State.CLOSED:
            return ConnectionClosed()
        if self._state is State.DATA:
            return self._next_data_event()
        if self._state is State.BDAT:
            return self._next_chunk_event()
        return self._next_command_event()

    # -- output -------------------------------------------------------------------

    def send(self, answer: Reply) -> bytes:
        """Record ``answer`` as the (next) reply to the pending event; return its bytes."""
        pending = self._await
        if pending is None:
            raise LocalProtocolError("no reply is expected now")
        event = pending.event
        if isinstance(event, DataStart) != (answer.code == 354) and answer.positive:
            raise LocalProtocolError(f"reply {answer.code} does not answer {type(event).__name__}")
        pending.remaining -= 1
        if pending.remaining == 0:
            self._await = None
            self._after_reply(event, answer)
        return answer.to_bytes()

    def send_unsolicited(self, answer: Reply) -> bytes:
        """A reply that answers no command: the greeting, or a 421 before closing."""
        if answer.code == 421:
            self._state = State.CLOSED
            self._tx = None
            self._await = None
        elif answer.code != 220:
            raise LocalProtocolError("only a 220 greeting or a 421 is unsolicited")
        return answer.to_bytes()

    # -- transitions after a reply -------------------------------------------------

    def _after_reply(self, event: Event, answer: Reply) -> None:
        if isinstance(event, Lhlo) and answer.positive:
            self._state = State.READY
        elif isinstance(event, MailFrom) and answer.positive:
            self._tx = _Transaction(event)
            self._state = State.MAIL
        elif isinstance(event, RcptTo) and answer.positive:
            assert self._tx is not None
            self._tx.recipients += 1
        elif isinstance(event, DataStart) and answer.code == 354:
            self._state = State.DATA
            self._unstuffer = DotUnstuffer()
            self._rejected = None
        elif isinstance(event, DataEnd) or (isinstance(event, ChunkEnd) and event.last):
            self._end_transaction()
        elif isinstance(event, ChunkEnd) and not answer.positive and self._tx is not None:
            # RFC 3030 section 2: after a failed chunk the transaction has failed;
            # pipelined chunks still arrive and are discarded with this reply.
            self._tx.failed = self._tx.failed or answer
        elif isinstance(event, Quit):
            self._state = State.CLOSED
        elif isinstance(event, StartTls) and answer.positive:
            # RFC 3207 section 4.2: forget everything learnt before TLS. Bytes the
            # client pipelined after STARTTLS arrived in clear text and must not be
            # taken as commands of the protected session (the CVE-2011-0411 attack).
            self._buf.clear()
            self._scan = 0
            self._tls_active = True
            self._tx = None
            self._state = State.CONNECTED

    def _end_transaction(self) -> None:
        self._tx = None
        self._unstuffer = None
        self._rejected = None
        self._state = State.READY

    def _expect(self, event: Event, replies: int = 1) -> Event:
        if not isinstance(event, (DataChunk, DataAbort, Bdat, ConnectionClosed)) and replies:
            self._await = _Await(event, replies)
        return event

    # -- commands -------------------------------------------------------------------

    def _next_command_event(self) -> Event | Sentinel:
        line = self._take_line()
        if line is None:
            if self._eof:
                self._state = State.CLOSED
                return ConnectionClosed()
            return NEED_DATA
        if isinstance(line, ProtocolError):
            return self._expect(line)
        smtputf8 = self._tx is not None and self._tx.mail.smtputf8
        event = parse_command(line, smtputf8=smtputf8)
        if not isinstance(event, MailFrom) and len(line) + 2 > MAX_COMMAND_LINE:
            return self._expect(ProtocolError(LINE_TOO_LONG))
        if isinstance(event, Bdat):
            return self._on_bdat(event)
        return self._expect(self._check_order(event))

    def _take_line(self) -> bytes | ProtocolError | None:
        """A complete line without CRLF, a LINE_TOO_LONG error, or None for more data."""
        while True:
            buf = self._buf
            eol = buf.find(b"\r\n", self._scan)
            if eol < 0:
                if len(buf) > MAX_MAIL_LINE:
                    # Drop what we have but a possible CR: the line is refused anyway,
                    # and keeping it would let one line grow without bound.
                    keep = 1 if buf[-1] == 0x0D else 0
                    del buf[:len(buf) - keep]
                    self._discarding_line = True
                self._scan = max(0, len(buf) - 1)
                return None
            line = bytes(buf[:eol])
            del buf[:eol + 2]
            self._scan = 0
            if self._discarding_line:
                self._discarding_line = False
                return ProtocolError(LINE_TOO_LONG)
            if len(line) + 2 > MAX_MAIL_LINE:
                return ProtocolError(LINE_TOO_LONG)
            return line

    def _check_order(self, event: Event) -> Event:
        """Turn a command that is out of sequence into the ProtocolError to answer it."""
        tx = self._tx
        if isinstance(event, Lhlo | Rset):
            # RFC 5321 sections 4.1.1.1 and 4.1.1.5: both clear the transaction.
            self._tx = None
            if self._state is not State.CONNECTED:
                self._state = State.READY
            return event
        if isinstance(event, MailFrom):
            if self._state is State.CONNECTED:
                return ProtocolError(_NEED_LHLO)
            if tx is not None:
                return ProtocolError(_NESTED_MAIL)
            size = self.config.max_message_size
            if size is not None and event.size is not None and event.size > size:
                # RFC 1870 section 6.1: a declared size over the fixed limit gets 552.
                return ProtocolError(_TOO_BIG)
            return event
        if isinstance(event, RcptTo):
            if tx is None:
                return ProtocolError(_NEED_MAIL)
            if tx.chunking:
                return ProtocolError(_RCPT_AFTER_BDAT)
            if tx.recipients >= self.config.max_recipients:
                return ProtocolError(TOO_MANY_RECIPIENTS)
            return event
        if isinstance(event, DataStart):
            if tx is None:
                return ProtocolError(_NEED_MAIL)
            if tx.chunking:
                return ProtocolError(_DATA_AFTER_BDAT)  # RFC 3030 section 2
            if tx.mail.body is BodyType.BINARY_MIME:
                return ProtocolError(_BINARY_NEEDS_BDAT)  # RFC 3030 section 3
            if tx.recipients == 0:
                # RFC 5321 section 3.3 allows 503 or 554 here; 554 "no valid
                # recipients" (as Postfix says) tells a pipelining client why.
                return ProtocolError(_NO_RECIPIENTS)
            return event
        if isinstance(event, StartTls):
            if not self.config.starttls:
                return ProtocolError(_TLS_UNAVAILABLE)
            if self._tls_active:
                return ProtocolError(_TLS_ACTIVE)
            if self._state is State.CONNECTED:
                return ProtocolError(_NEED_LHLO)
            if tx is not None:
                return ProtocolError(_TLS_IN_TRANSACTION)
            return event
        assert isinstance(event, Noop | Quit | Vrfy | ProtocolError), event
        return event

    # -- DATA -------------------------------------------------------------------------

    def _next_data_event(self) -> Event | Sentinel:
        unstuffer = self._unstuffer
        tx = self._tx
        assert unstuffer is not None and tx is not None
        if self._buf:
            chunk = unstuffer.feed(self._buf)
            abort: DataAbort | None = None
            if chunk and self._rejected is None:
                tx.received += len(chunk)
                limit = self.config.max_message_size
                if limit is not None and tx.received > limit:
                    self._rejected = _TOO_BIG
                    abort = DataAbort(_TOO_BIG)
            if unstuffer.done:
                self._state = State.MAIL  # until the replies close the transaction
                self._queued = (DataEnd(tx.recipients, self._rejected), tx.recipients)
            if abort is not None:
                return abort
            if chunk and self._rejected is None:
                return DataChunk(chunk)
            if self._queued is not None:
                (event, replies), self._queued = self._queued, None
                return self._expect(event, replies)
        if self._eof:
            self._state = State.CLOSED
            return ConnectionClosed()
        return NEED_DATA

    # -- BDAT ---------------------------------------------------------------------------

    def _on_bdat(self, event: Bdat) -> Event | Sentinel:
        tx = self._tx
        self._chunk_left = event.size
        self._chunk_pass = False
        self._chunk_return = self._state
        self._state = State.BDAT
        # RFC 3030 section 2: a refused chunk's octets are still read and discarded
        # before the error reply, so the errors below wait for the chunk's end.
        if tx is None:
            self._chunk_end = (ProtocolError(_NEED_MAIL), 1)
            return self._next_chunk_event()
        if tx.recipients == 0:
            self._chunk_end = (ProtocolError(_NO_RECIPIENTS), 1)
            return self._next_chunk_event()
        replies = tx.recipients if event.last else 1
        if tx.failed is not None:
            self._chunk_end = (ChunkEnd(event.last, replies, tx.failed), replies)
            return self._next_chunk_event()
        tx.chunking = True
        limit = self.config.max_message_size
        if limit is not None and tx.received + event.size > limit:
            # The declared chunk size already breaks the limit: refuse without
            # waiting for the octets, so the server can drop the delivery now.
            tx.failed = _TOO_BIG
            self._chunk_end = (ChunkEnd(event.last, replies, _TOO_BIG), replies)
            return DataAbort(_TOO_BIG)
        tx.received += event.size
        self._chunk_pass = True
        self._chunk_end = (ChunkEnd(event.last, replies, None), replies)
        return event

    def _next_chunk_event(self) -> Event | Sentinel:
        while self._chunk_left:
            if not self._buf:
                if self._eof:
                    self._state = State.CLOSED
                    return ConnectionClosed()
                return NEED_DATA
            take = min(self._chunk_left, len(self._buf))
            data = bytes(self._buf[:take])
            del self._buf[:take]
            self._chunk_left -= take
            if self._chunk_pass and data:
                return DataChunk(data)
        assert self._chunk_end is not None
        (end, replies), self._chunk_end = self._chunk_end, None
        self._state = self._chunk_return
        return self._expect(end, replies)
