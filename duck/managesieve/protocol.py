"""The sans-IO ManageSieve server machine (RFC 5804 section 4 grammar).

Feed received bytes with ``receive_data``, take events from ``next_event``: a
``Command`` the current state allows (its arguments checked against the command
table), a ``SaslResponse`` when one was asked for, ``Refused`` (a response the
caller sends), ``NEED_DATA`` or ``ConnectionClosed``.

Caps: a command line (outside literals) is at most :data:`MAX_LINE` octets, a
literal at most :data:`MAX_LITERAL`; anything longer is skipped to its end and
refused, never buffered whole. Client literals are ``{n+}`` (RFC 5804); ``{n}``
is taken the same way, since ManageSieve has no continuation request.
"""

from __future__ import annotations

import enum

import attrs

from . import wire

MAX_LINE = 8 * 1024
MAX_LITERAL = 1024 * 1024
#: Protocol errors in a row before the session is closed.
MAX_ERRORS = 10


class State(enum.Enum):
    """RFC 5804 section 1.2 session states."""

    NONAUTH = "NONAUTH"
    AUTH = "AUTH"
    LOGOUT = "LOGOUT"


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = _Sentinel.NEED_DATA

#: Argument kinds per command: "s" string, "n" number, "s?" optional string.
COMMANDS: dict[str, tuple[str, ...]] = {
    "AUTHENTICATE": ("s", "s?"),
    "STARTTLS": (),
    "LOGOUT": (),
    "CAPABILITY": (),
    "HAVESPACE": ("s", "n"),
    "PUTSCRIPT": ("s", "s"),
    "LISTSCRIPTS": (),
    "SETACTIVE": ("s",),
    "GETSCRIPT": ("s",),
    "DELETESCRIPT": ("s",),
    "RENAMESCRIPT": ("s", "s"),
    "CHECKSCRIPT": ("s",),
    "NOOP": ("s?",),
    "UNAUTHENTICATE": (),
}
NONAUTH_COMMANDS = frozenset({"AUTHENTICATE", "STARTTLS", "LOGOUT", "CAPABILITY", "NOOP"})


@attrs.frozen
class Command:
    """A command with its arguments (strings decoded from UTF-8, numbers as int)."""

    name: str
    args: tuple[str | int | None, ...]


@attrs.frozen
class SaslResponse:
    """A client string in answer to a SASL challenge."""

    value: str = attrs.field(repr=False)


@attrs.frozen
class Refused:
    """Input the machine answers itself (bad syntax, wrong state, too long)."""

    response: bytes
    #: True when the session should end after it (too many errors).
    fatal: bool = False


@attrs.frozen
class ConnectionClosed:
    """The client closed its side."""


Event = Command | SaslResponse | Refused | ConnectionClosed | _Sentinel


class _Incomplete(Exception):
    """More bytes are needed; ``need`` is the least total buffer length that helps."""

    def __init__(self, need: int) -> None:
        self.need = need


class _Bad(Exception):
    """The line is not ManageSieve."""


class _WholeLineTooLong(Exception):
    """A complete line whose text outside literals passes MAX_LINE; ``end`` is
    the offset after its CRLF."""

    def __init__(self, end: int) -> None:
        self.end = end


class _TooLong(Exception):
    """A line or literal passes its cap; ``skip_to`` is where its line's bytes end,
    when known (a literal's end), else None (skip to the next CRLF)."""

    def __init__(self, message: str, skip_literal_end: int | None, code: str | None) -> None:
        super().__init__(message)
        self.skip_literal_end = skip_literal_end
        self.code = code


class ManageSieveProtocol:
    """One connection's input side."""

    def __init__(self) -> None:
        self.state = State.NONAUTH
        self._buffer = bytearray()
        self._need = 0
        self._closed = False
        self._sasl = False
        #: Octets still to throw away (the rest of a refused literal).
        self._skip = 0
        #: After skipping, the refusal to report and whether to drop the line's rest.
        self._skip_then: Refused | None = None
        self._discard_line = False
        self.errors = 0

    @property
    def buffered(self) -> bool:
        """True when unread input is waiting (STARTTLS refuses then)."""
        return bool(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the client closed."""
        if not data:
            self._closed = True
        self._buffer += data

    def expect_sasl(self) -> None:
        """The next input is one string answering a SASL challenge."""
        self._sasl = True

    def authenticated(self) -> None:
        """AUTHENTICATE succeeded."""
        self.state = State.AUTH

    def unauthenticated(self) -> None:
        """UNAUTHENTICATE (RFC 5804 section 2.14.1) or STARTTLS's reset."""
        self.state = State.NONAUTH

    def logout(self) -> None:
        """LOGOUT: no more commands."""
        self.state = State.LOGOUT

    def next_event(self) -> Event:
        """The next event (see the module docstring)."""
        while True:
            if self._skip:
                dropped = min(self._skip, len(self._buffer))
                del self._buffer[:dropped]
                self._skip -= dropped
                if self._skip:
                    return self._eof_or_need()
                self._discard_line = True
            if self._discard_line:
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    # Literal-free rest of a refused line: dropped as it comes.
                    keep = self._buffer[-1:] if self._buffer.endswith(b"\r") else b""
                    self._buffer = bytearray(keep)
                    return self._eof_or_need()
                del self._buffer[:end + 2]
                self._discard_line = False
                if self._skip_then is not None:
                    refused, self._skip_then = self._skip_then, None
                    return refused
                continue
            break
        if len(self._buffer) < self._need or not self._buffer:
            return self._eof_or_need()
        try:
            values, end = _parse_line(bytes(self._buffer))
        except _Incomplete as exc:
            self._need = exc.need
            if len(self._buffer) > MAX_LINE and exc.need <= len(self._buffer) + 1 \
                    and b"\r\n" not in self._buffer[:MAX_LINE]:
                return self._too_long("line too long", None, None)
            return self._eof_or_need()
        except _TooLong as exc:
            return self._too_long(str(exc), exc.skip_literal_end, exc.code)
        except _WholeLineTooLong as exc:
            del self._buffer[:exc.end]
            self._need = 0
            self._sasl = False
            return self._refusal(wire.no("line too long"))
        except _Bad as exc:
            # The rest of the line goes; the refusal is reported once it has.
            self._need = 0
            self._discard_line = True
            self._skip_then = self._refusal(wire.no(str(exc)))
            self._sasl = False
            return self.next_event()
        del self._buffer[:end]
        self._need = 0
        if self._sasl:
            self._sasl = False
            if len(values) != 1 or not isinstance(values[0], str):
                return self._error(wire.no("expected one string in answer to the challenge"))
            return SaslResponse(values[0])
        return self._command(values)

    def _eof_or_need(self) -> Event:
        if self._closed:
            return ConnectionClosed()
        return NEED_DATA

    def _too_long(self, message: str, literal_end: int | None, code: str | None) -> Event:
        self._need = 0
        refused = self._refusal(wire.no(message, code))
        if literal_end is not None:
            dropped = min(literal_end, len(self._buffer))
            self._skip = literal_end - dropped
            del self._buffer[:dropped]
        else:
            self._buffer.clear()
        self._discard_line = True
        self._skip_then = refused
        if self._sasl:
            self._sasl = False
        return self.next_event()

    def _refusal(self, response: bytes) -> Refused:
        self.errors += 1
        return Refused(response, fatal=self.errors >= MAX_ERRORS)

    def _error(self, response: bytes) -> Refused:
        return self._refusal(response)

    def _command(self, values: list[str | int]) -> Event:
        if not values or not isinstance(values[0], str) or values[0] == "":
            return self._error(wire.no("expected a command"))
        name = values[0].upper()
        spec = COMMANDS.get(name)
        if spec is None:
            return self._error(wire.no(f"unknown command {name[:30]}"))
        if self.state is State.NONAUTH and name not in NONAUTH_COMMANDS:
            return self._error(wire.no(f"{name} needs authentication first"))
        if self.state is State.AUTH and name in ("AUTHENTICATE", "STARTTLS"):
            return self._error(wire.no(f"{name} is not allowed once authenticated"))
        args = values[1:]
        required = sum(1 for kind in spec if not kind.endswith("?"))
        if not required <= len(args) <= len(spec):
            return self._error(wire.no(f"{name} takes {required} to {len(spec)} arguments"))
        checked: list[str | int | None] = []
        for kind, arg in zip(spec, args, strict=False):
            if kind.startswith("n") and not isinstance(arg, int):
                return self._error(wire.no(f"{name}: expected a number"))
            if kind.startswith("s") and not isinstance(arg, str):
                return self._error(wire.no(f"{name}: expected a string"))
            checked.append(arg)
        checked += [None] * (len(spec) - len(checked))
        self.errors = 0
        return Command(name, tuple(checked))


def _parse_line(data: bytes) -> tuple[list[str | int], int]:
    """Parse one command line from the start of ``data``: (values, end offset after
    CRLF). Atoms are returned as strings, numbers as ints (a number is an atom of
    digits; RFC 5804 section 4 limits it to 2^32 - 1)."""
    values: list[str | int] = []
    i = 0
    n = len(data)
    in_literals = 0
    while True:
        while i < n and data[i] == 0x20:
            i += 1
        if i >= n:
            raise _Incomplete(n + 1)
        ch = data[i]
        if ch == 0x0D:
            if i + 1 >= n:
                raise _Incomplete(n + 1)
            if data[i + 1] != 0x0A:
                raise _Bad("bare CR")
            if i - in_literals > MAX_LINE:
                raise _WholeLineTooLong(i + 2)
            return values, i + 2
        if ch == 0x0A:
            if i - in_literals > MAX_LINE:
                raise _WholeLineTooLong(i + 1)
            return values, i + 1  # a bare LF ends a line too (lenient with clients)
        if i - in_literals > MAX_LINE:
            raise _TooLong("line too long", None, None)
        if ch == 0x22:  # quoted string
            j = i + 1
            out = bytearray()
            while True:
                if j >= n:
                    raise _Incomplete(n + 1)
                c = data[j]
                if c == 0x5C:
                    if j + 1 >= n:
                        raise _Incomplete(n + 1)
                    if data[j + 1] not in (0x5C, 0x22):
                        raise _Bad("bad escape in a quoted string")
                    out.append(data[j + 1])
                    j += 2
                    continue
                if c == 0x22:
                    break
                if c in (0x0D, 0x0A, 0x00):
                    raise _Bad("line break in a quoted string")
                out.append(c)
                j += 1
                if j - i > MAX_LINE:
                    raise _TooLong("quoted string too long", None, None)
            values.append(_text(bytes(out)))
            i = j + 1
        elif ch == 0x7B:  # literal {n+} or {n}
            close = data.find(b"}", i)
            if close < 0:
                if n - i > 20:
                    raise _Bad("bad literal")
                raise _Incomplete(n + 1)
            spec = data[i + 1:close]
            if spec.endswith(b"+"):
                spec = spec[:-1]
            if not spec.isdigit() or len(spec) > 10:
                raise _Bad("bad literal length")
            size = int(spec)
            head_end = close + 1
            if n < head_end + 2:
                raise _Incomplete(head_end + 2)
            if data[head_end:head_end + 2] != b"\r\n":
                raise _Bad("a literal's length is followed by CRLF")
            start = head_end + 2
            if size > MAX_LITERAL:
                raise _TooLong(f"string larger than {MAX_LITERAL} octets", start + size,
                               "QUOTA/MAXSIZE")
            if n < start + size:
                raise _Incomplete(start + size + 1)
            values.append(_text(data[start:start + size]))
            in_literals += size
            i = start + size
        else:
            j = i
            while j < n and data[j] not in (0x20, 0x0D, 0x0A, 0x22, 0x7B):
                j += 1
            if j >= n:
                raise _Incomplete(n + 1)
            atom = data[i:j].decode("ascii", "replace")
            if atom.isdigit():
                number = int(atom)
                if number > 0xFFFFFFFF:
                    raise _Bad("number too large")
                values.append(number)
            else:
                values.append(atom)
            i = j


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad("strings are UTF-8") from None
