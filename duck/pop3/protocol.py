"""The sans-IO POP3 server state machine (RFC 1939 with RFC 2449, 5034 and 2595).

Feed received bytes with ``receive_data`` and take events from ``next_event``: a
typed command the current state allows, a SASL response line when one was asked
for, a ``Refused`` reply for anything else (the caller sends it), ``NEED_DATA``,
or ``ConnectionClosed``. The caller answers commands itself and tells the machine
about the outcomes that change what comes next (``logged_in``, ``expect_sasl``,
``tls_started``, ``quit``).

Lines are capped (RFC 2449 §4 asks servers to take commands of up to 255 octets;
duck takes twice that, and longer SASL response lines, RFC 5034 §4); an
over-long line is discarded up to its end and refused, never buffered whole.
Pipelined commands (RFC 2449 §6.6) are simply the next lines in the buffer.
"""

from __future__ import annotations

import enum

import attrs

from .commands import (
    Apop,
    Auth,
    Capa,
    Command,
    CommandError,
    Dele,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    parse_command,
)
from .replies import Reply, err


class State(enum.Enum):
    """RFC 1939 §3 session states (UPDATE is entered at QUIT and ends the session)."""

    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = _Sentinel.NEED_DATA


@attrs.frozen
class SaslResponse:
    """A client line in answer to a SASL challenge (RFC 5034 §4), CRLF removed."""

    line: bytes = attrs.field(repr=False)


@attrs.frozen
class Refused:
    """A line the machine answers itself: bad syntax, wrong state, too long."""

    reply: Reply


@attrs.frozen
class ConnectionClosed:
    """The client closed its side."""


Event = Command | SaslResponse | Refused | ConnectionClosed | _Sentinel

#: Commands each state accepts (RFC 1939 §4-§7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4).
ALLOWED: dict[State, tuple[type[Command], ...]] = {
    State.AUTHORIZATION: (User, Pass, Apop, Auth, Stls, Capa, Quit),
    State.TRANSACTION: (Stat, List, Retr, Dele, Noop, Rset, Quit, Top, Uidl, Capa),
    State.UPDATE: (),
}


@attrs.frozen
class ProtocolConfig:
    """Caps of the machine."""

    #: Longest command line, CRLF included (RFC 2449 §4 asks for at least 255).
    max_command_line: int = 512
    #: Longest SASL response line, CRLF included (a PLAIN response with a long
    #: password, base64-encoded).
    max_sasl_line: int = 16 * 1024
    #: Consecutive refused commands before the caller should hang up (a client
    #: that does not speak POP3 at all).
    max_errors: int = 20


class Pop3Protocol:
    """One POP3 connection, server side, without I/O."""

    def __init__(self, config: ProtocolConfig | None = None) -> None:
        self.config = config or ProtocolConfig()
        self.state = State.AUTHORIZATION
        #: The name of an accepted USER, until PASS (RFC 1939 §7: PASS must follow it).
        self.user: str | None = None
        self.errors = 0
        self._buf = bytearray()
        self._scan = 0
        self._discarding = False
        self._eof = False
        self._sasl = False

    # -- inspection -------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Octets received and not yet taken as events (STLS refuses if any)."""
        return len(self._buf)

    @property
    def too_many_errors(self) -> bool:
        """The client keeps sending what is not POP3: time to close."""
        return self.errors >= self.config.max_errors

    # -- outcomes the caller reports ---------------------------------------------------

    def logged_in(self) -> None:
        """Authentication succeeded and the maildrop is ours: TRANSACTION state."""
        self.state = State.TRANSACTION
        self.user = None

    def expect_sasl(self) -> None:
        """A challenge was sent: the next line is a SASL response, not a command."""
        self._sasl = True

    def tls_started(self) -> None:
        """STLS succeeded: RFC 2595 §4, the session starts over in AUTHORIZATION."""
        self.state = State.AUTHORIZATION
        self.user = None
        self._buf.clear()
        self._scan = 0

    def quit(self) -> None:
        """QUIT was answered (or the session is over): nothing more is read."""
        self.state = State.UPDATE

    # -- input ------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the client closed its side."""
        if not data:
            self._eof = True
            return
        if self.state is State.UPDATE:
            return
        self._buf += data

    def _line(self) -> bytes | Refused | None:
        """The next complete line without its line end; None if none is complete."""
        limit = self.config.max_sasl_line if self._sasl else self.config.max_command_line
        while True:
            nl = self._buf.find(b"\n", self._scan)
            if nl < 0:
                if self._discarding:
                    self._buf.clear()
                    self._scan = 0
                    return None
                if len(self._buf) >= limit:
                    # Keep nothing of an over-long line; say so once its end comes.
                    self._discarding = True
                    self._buf.clear()
                    self._scan = 0
                else:
                    self._scan = len(self._buf)
                return None
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            self._scan = 0
            if self._discarding or nl + 1 > limit:
                self._discarding = False
                self._sasl = False
                self.errors += 1
                return Refused(err("line too long"))
            return line[:-1] if line.endswith(b"\r") else line

    def next_event(self) -> Event:
        """The next event (see the module docstring)."""
        if self.state is State.UPDATE:
            return ConnectionClosed()
        line = self._line()
        if line is None:
            return ConnectionClosed() if self._eof else NEED_DATA
        if isinstance(line, Refused):
            return line
        if self._sasl:
            self._sasl = False
            return SaslResponse(line)
        try:
            cmd = parse_command(line)
        except CommandError as exc:
            self.errors += 1
            self.user = None
            return Refused(err(str(exc)))
        if not isinstance(cmd, ALLOWED[self.state]):
            self.errors += 1
            self.user = None
            return Refused(err(f"{cmd.VERB} is not allowed in the {self.state.value} state"))
        if isinstance(cmd, Pass) and self.user is None:
            self.errors += 1
            return Refused(err("send USER first"))
        if not isinstance(cmd, (User, Pass)):
            self.user = None
        self.errors = 0
        return cmd
