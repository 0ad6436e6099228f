"""Sans-IO framing and parsing of the client's byte stream (h11-style).

The framing layer splits input into command lines and their literals before any
parsing happens: a line ending in ``{n}`` / ``{n+}`` / ``~{n}`` announces ``n``
octets that are taken verbatim, so literal data is never interpreted as commands.
Every buffer is capped by :class:`Limits`; the line scan resumes where it stopped,
so a slowly growing line costs linear, not quadratic, time.

With ``stream_append`` set, the data literal of each message of an APPEND is not
kept: its octets are handed out as they arrive (:class:`AppendLiteral`, then
:class:`LiteralChunk` events, then :class:`LiteralEnd`), and the command that
follows carries those messages as ``streamed`` with empty data. The caps are the
same (the literal is refused before a byte of it is read, and it counts towards
``max_command``); CATENATE's TEXT parts and other literals are kept as before.
"""

from __future__ import annotations

import enum
import re

import attrs

from .cmd_append import Append, AppendHead, append_literal_head
from .cmd_base import Command
from .commands import parse_command
from .errors import (
    CommandTooLarge,
    ImapProtocolError,
    LineTooLong,
    LiteralTooLarge,
    ParseError,
    ReaderStateError,
)
from .lexer import TAG_RE
from .limits import LITERAL_MINUS_MAX, Limits


class Sentinel(enum.Enum):
    """Marker values returned instead of events."""

    NEED_DATA = "NEED_DATA"


#: Returned by :meth:`CommandReader.next_event` / :meth:`~CommandReader.next_line`
#: when more input is needed.
NEED_DATA = Sentinel.NEED_DATA


@attrs.frozen
class ContinuationNeeded:
    """The client announced a synchronizing literal and waits for ``+``.

    The server answers with :meth:`CommandReader.accept_literal` (and sends a
    continuation request) or :meth:`CommandReader.reject_literal` (and sends a
    tagged NO/BAD, e.g. ``[TOOBIG]``).
    """

    tag: str
    size: int
    binary: bool


@attrs.frozen
class AppendLiteral:
    """The data literal of one APPEND message starts (``stream_append``): its
    ``size`` octets follow as :class:`LiteralChunk` events, then :class:`LiteralEnd`.
    A synchronizing one comes after its :class:`ContinuationNeeded` was accepted."""

    head: AppendHead
    size: int
    binary: bool


@attrs.frozen
class LiteralChunk:
    """The next octets of the literal being streamed (never empty)."""

    data: bytes


@attrs.frozen
class LiteralEnd:
    """The literal being streamed is complete; the command's next line follows."""

    size: int


#: What a streamed literal is told by.
LiteralEvent = AppendLiteral | LiteralChunk | LiteralEnd


@attrs.frozen
class ReaderStatistics:
    """Counters of a :class:`CommandReader` (trio-style ``statistics()``)."""

    buffered: int
    commands: int
    errors: int


class _State(enum.Enum):
    LINE = "LINE"                      # expecting a (first or continuation) line
    LITERAL = "LITERAL"                # reading literal octets into the command
    STREAM = "STREAM"                  # handing out literal octets as they come
    AWAIT_DECISION = "AWAIT_DECISION"  # ContinuationNeeded returned, not yet answered
    DISCARD_LINE = "DISCARD_LINE"      # dropping the rest of a failed command's lines
    DISCARD_LITERAL = "DISCARD_LITERAL"  # dropping a non-synchronizing literal
    FAILED = "FAILED"                  # fatal error: the connection must close


# literal = "{" number64 ["+"] "}" CRLF; literal8 = "~{" number64 ["+"] "}" CRLF
_LITERAL_TAIL_RE = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}\Z")
_COMPACT_AT = 64 * 1024
_APPEND_RE = re.compile(rb"[^ ]+ APPEND ", re.IGNORECASE)
#: A literal on an APPEND's first line up to this size (a mailbox name) stays in
#: the skeleton the message heads are parsed from; others are in it as ``{0}``.
_SKELETON_LITERAL = 1024
#: The skeleton since the last streamed literal is parsed again at every literal
#: announced; past this size (CATENATE with a great many parts) the rest of the
#: command is read as without ``stream_append``, so that the parsing stays linear.
_SKELETON_MAX = 4096


class CommandReader:
    """Turns the client's bytes into commands, :class:`ContinuationNeeded` events
    and errors. Feed with :meth:`receive_data`, drain with :meth:`next_event`.

    Set ``utf8_enabled`` after ENABLE UTF8=ACCEPT: mailbox names are then UTF-8
    rather than modified UTF-7 (RFC 6855 §3). Set ``stream_append`` to have the
    data literals of APPEND messages handed out as they arrive (module docstring).
    """

    def __init__(self, limits: Limits | None = None, *, utf8_enabled: bool = False,
                 stream_append: bool = False) -> None:
        self.limits = limits if limits is not None else Limits()
        self.utf8_enabled = utf8_enabled
        self.stream_append = stream_append
        self._buf = bytearray()
        self._start = 0
        self._scan = 0
        self._state = _State.LINE
        self._parts: list[bytes] = []
        self._size = 0
        self._tag: str | None = None
        self._remaining = 0
        self._pending: ContinuationNeeded | None = None
        self._literal_kept = False
        self._pending_returned = False
        # APPEND streaming: the command's lines since the last streamed literal,
        # with literals as {0} (None when nothing more of it is streamed), the head
        # of the last streamed literal, the literal being streamed, the messages
        # streamed so far and their octets.
        self._skeleton: bytearray | None = None
        self._after: AppendHead | None = None
        self._stream_head: AppendHead | None = None
        self._stream_binary = False
        self._stream_size = 0
        self._started = False
        self._streamed: list[int] = []
        self._streamed_octets = 0
        self._fatal: ImapProtocolError | None = None
        self._commands = 0
        self._errors = 0

    # -- input ---------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Append bytes received from the client."""
        if self._start and self._start >= _COMPACT_AT:
            del self._buf[: self._start]
            self._scan -= self._start
            self._start = 0
        self._buf += data

    def take_buffered(self) -> bytes:
        """Remove and return the octets received but not yet read as a command: they
        belong to another layer after a command that changes the framing (COMPRESS)."""
        data = bytes(self._buf[self._start :])
        self._buf = bytearray()
        self._start = 0
        self._scan = 0
        return data

    def statistics(self) -> ReaderStatistics:
        """Buffered octets and counts of commands and errors so far."""
        return ReaderStatistics(len(self._buf) - self._start, self._commands, self._errors)

    @property
    def announced(self) -> int:
        """Octets of the command being read, its literals announced so far included
        but not those streamed (0 between commands): what reading it to the end
        will hold."""
        return self._size - self._streamed_octets

    @property
    def stream_head(self) -> AppendHead | None:
        """The APPEND message whose data literal was announced last and will be
        streamed (``stream_append``), until its :class:`LiteralEnd`; else None."""
        return self._stream_head

    @property
    def awaiting_literal_decision(self) -> bool:
        """Whether a ContinuationNeeded is waiting for accept/reject."""
        return self._state is _State.AWAIT_DECISION

    # -- literal decisions -----------------------------------------------------------

    def accept_literal(self) -> None:
        """Let the client send the announced synchronizing literal (server sends ``+``)."""
        if self._state is not _State.AWAIT_DECISION or self._pending is None:
            raise ReaderStateError("accept_literal without a pending literal")
        self._remaining = self._pending.size
        self._pending = None
        self._state = _State.STREAM if self._stream_head is not None else _State.LITERAL

    def reject_literal(self) -> None:
        """Refuse the announced literal (server sends tagged NO/BAD); the client drops
        the rest of the command, so the reader expects a new command line."""
        if self._state is not _State.AWAIT_DECISION:
            raise ReaderStateError("reject_literal without a pending literal")
        self._pending = None
        self._reset_command()

    # -- output ----------------------------------------------------------------------

    def next_line(self) -> bytes | Sentinel:
        """The next raw line without its CRLF (IDLE's ``DONE``, SASL responses), or
        NEED_DATA. Only valid between commands."""
        if self._state is _State.FAILED:
            raise self._refail()
        if self._state is not _State.LINE or self._parts:
            raise ReaderStateError("next_line in the middle of a command")
        line = self._take_line()
        return NEED_DATA if line is None else line

    def next_event(self) -> Command | ContinuationNeeded | LiteralEvent | Sentinel:
        """The next parsed command, a ContinuationNeeded, a streamed literal's event
        (``stream_append``), or NEED_DATA.

        Raises an :class:`ImapProtocolError` for a bad command. When it is not fatal
        the reader has already arranged to drop the rest of that command and goes on
        with the next one on the following call.
        """
        while True:
            state = self._state
            if state is _State.LINE or state is _State.DISCARD_LINE:
                line = self._take_line()
                if line is None:
                    return NEED_DATA
                if state is _State.DISCARD_LINE:
                    self._discard_after(line)
                    continue
                result = self._on_line(line)
                if result is not None:
                    return result
            elif state is _State.LITERAL or state is _State.DISCARD_LITERAL:
                available = len(self._buf) - self._start
                if available == 0 and self._remaining:
                    return NEED_DATA
                take = min(available, self._remaining)
                if state is _State.LITERAL:
                    piece = bytes(self._buf[self._start : self._start + take])
                    self._parts.append(piece)
                    if self._skeleton is not None and self._literal_kept:
                        self._skeleton += piece
                self._start += take
                self._scan = self._start
                self._remaining -= take
                if self._remaining:
                    return NEED_DATA
                self._state = _State.LINE if state is _State.LITERAL else _State.DISCARD_LINE
            elif state is _State.STREAM:
                return self._stream_event()
            elif state is _State.AWAIT_DECISION:
                if self._pending is not None and not self._pending_returned:
                    self._pending_returned = True
                    return self._pending
                raise ReaderStateError("next_event before accept_literal/reject_literal")
            else:
                raise self._refail()

    # -- internals ---------------------------------------------------------------------

    def _stream_event(self) -> AppendLiteral | LiteralChunk | LiteralEnd | Sentinel:
        head = self._stream_head
        assert head is not None
        if not self._started:
            self._started = True
            return AppendLiteral(head, self._stream_size, self._stream_binary)
        if not self._remaining:
            self._streamed.append(head.index)
            self._stream_head = None
            self._started = False
            self._state = _State.LINE
            return LiteralEnd(self._stream_size)
        take = min(len(self._buf) - self._start, self._remaining)
        if not take:
            return NEED_DATA
        data = bytes(self._buf[self._start : self._start + take])
        self._start += take
        self._scan = self._start
        self._remaining -= take
        return LiteralChunk(data)

    @staticmethod
    def _streamed_command(cmd: Command, streamed: list[int]) -> Command:
        """The parsed APPEND with its streamed messages marked as such."""
        if not isinstance(cmd, Append):
            return cmd
        marked = set(streamed)
        return attrs.evolve(cmd, messages=tuple(
            attrs.evolve(m, streamed=True) if i in marked and isinstance(m.data, bytes)
            else m for i, m in enumerate(cmd.messages)))

    def _stream_decision(self, line: bytes, literal: re.Match[bytes], first: bool
                         ) -> tuple[bytes, AppendHead | None]:
        """At a literal's announcement: whether it is an APPEND message's data to
        stream (then its head), and the line as the command keeps it."""
        if first:
            self._skeleton = (bytearray() if self.stream_append and _APPEND_RE.match(line)
                              else None)
            self._after = None
        skeleton = self._skeleton
        if skeleton is None:
            return line, None
        empty = line[: literal.start()] + (b"~{0}" if literal.group(1) else b"{0}")
        head = append_literal_head(bytes(skeleton) + empty + b"\r\n", after=self._after,
                                   utf8=self.utf8_enabled, max_depth=self.limits.max_depth)
        if head is not None:
            self._skeleton = bytearray()
            self._after = head
            return empty, head
        if self._literal_kept:
            skeleton += line + b"\r\n"  # (its octets follow, in LITERAL state)
        else:
            skeleton += empty + b"\r\n"
        if len(skeleton) > _SKELETON_MAX:
            self._skeleton = None
        return line, None

    def _take_line(self) -> bytes | None:
        buf = self._buf
        idx = buf.find(b"\n", self._scan)
        if idx < 0:
            self._scan = len(buf)
            if len(buf) - self._start > self.limits.max_line + 1:
                raise self._fail_fatal(LineTooLong(
                    f"line longer than {self.limits.max_line} octets", tag=self._tag, fatal=True,
                ))
            return None
        end = idx - 1 if idx > self._start and buf[idx - 1] == 0x0D else idx
        line = bytes(buf[self._start : end])
        self._start = idx + 1
        self._scan = self._start
        if len(line) > self.limits.max_line:
            raise self._fail_fatal(LineTooLong(
                f"line longer than {self.limits.max_line} octets", tag=self._tag, fatal=True,
            ))
        return line

    def _on_line(self, line: bytes
                 ) -> Command | ContinuationNeeded | LiteralEvent | Sentinel | None:
        first = not self._parts
        if first and not line:
            # RFC 3501 §2.2.1 / §7.1.5: a line without a tag is no command; it is
            # answered with an untagged BAD (counted with the other errors, so a
            # flood of them ends the connection like any other garbage).
            self._errors += 1
            raise ParseError("empty command line")
        literal = _LITERAL_TAIL_RE.search(line, max(0, len(line) - 24)) if line.endswith(
            b"}") else None
        self._size += len(line) + 2
        if literal is None and self._size > self.limits.max_command:
            tag = self._tag_of(line, first)
            self._reset_command()
            self._errors += 1
            raise CommandTooLarge(f"command longer than {self.limits.max_command} octets",
                                  tag=tag)
        if literal is None:
            if first:
                data = line
            else:
                self._parts.append(line)
                data = b"".join(self._parts)
            streamed = self._streamed
            self._reset_command()
            try:
                cmd = parse_command(data, utf8=self.utf8_enabled, max_depth=self.limits.max_depth)
            except ImapProtocolError:
                self._errors += 1
                raise
            self._commands += 1
            return self._streamed_command(cmd, streamed) if streamed else cmd
        if first:
            m = TAG_RE.match(line)
            self._tag = m.group().decode("ascii") if m else None
            if self._tag is None:
                raise self._fail_command(ParseError("missing or invalid tag"), literal)
        if self._size > self.limits.max_command:
            raise self._fail_command(
                CommandTooLarge(f"command longer than {self.limits.max_command} octets"), literal)
        size = int(literal.group(2))
        binary = bool(literal.group(1))
        sync = not literal.group(3)
        limit = self.limits.max_literal
        if not sync and not self.limits.literal_plus:
            limit = min(limit, LITERAL_MINUS_MAX)
        if size > limit:
            raise self._fail_command(
                LiteralTooLarge(f"literal of {size} octets exceeds {limit}"), literal)
        if self._size + size > self.limits.max_command:
            raise self._fail_command(
                CommandTooLarge(f"command longer than {self.limits.max_command} octets"), literal)
        self._size += size
        self._literal_kept = first and size <= _SKELETON_LITERAL
        kept, head = self._stream_decision(line, literal, first)
        self._parts.append(kept + b"\r\n")
        if head is not None:
            self._stream_head = head
            self._stream_binary = binary
            self._stream_size = size
            self._streamed_octets += size
        if sync:
            assert self._tag is not None
            self._state = _State.AWAIT_DECISION
            self._pending = ContinuationNeeded(self._tag, size, binary)
            self._pending_returned = True
            return self._pending
        self._remaining = size
        if head is not None:
            self._state = _State.STREAM
            return self._stream_event()
        self._state = _State.LITERAL
        return None

    def _tag_of(self, line: bytes, first: bool) -> str | None:
        if not first:
            return self._tag
        m = TAG_RE.match(line)
        return m.group().decode("ascii") if m else None

    def _fail_command(self, exc: ImapProtocolError, literal: re.Match[bytes]) -> ImapProtocolError:
        """Non-fatal failure at a line ending in a literal: drop the rest of the command."""
        exc.tag = self._tag
        self._reset_command()
        size = int(literal.group(2))
        if literal.group(3):
            # RFC 7888 §4: the client sends a non-synchronizing literal regardless, so
            # the server must swallow it to stay in step, or close the connection.
            if size > self.limits.max_discard:
                return self._fail_fatal(exc)
            self._state = _State.DISCARD_LITERAL
            self._remaining = size
        # A synchronizing literal is never sent without our "+": the command ends here.
        self._errors += 1
        return exc

    def _discard_after(self, line: bytes) -> None:
        literal = _LITERAL_TAIL_RE.search(line, max(0, len(line) - 24)) if line.endswith(
            b"}") else None
        if literal is not None and literal.group(3):
            size = int(literal.group(2))
            if size > self.limits.max_discard:
                raise self._fail_fatal(LiteralTooLarge(
                    f"literal of {size} octets too large to skip", tag=self._tag, fatal=True))
            self._state = _State.DISCARD_LITERAL
            self._remaining = size
        else:
            self._state = _State.LINE

    def _fail_fatal(self, exc: ImapProtocolError) -> ImapProtocolError:
        exc.fatal = True
        self._errors += 1
        self._fatal = exc
        self._state = _State.FAILED
        self._buf = bytearray()
        self._start = self._scan = 0
        self._parts = []
        return exc

    def _refail(self) -> ImapProtocolError:
        assert self._fatal is not None
        old = self._fatal
        return type(old)(old.message, tag=old.tag, fatal=True, code=old.code)

    def _reset_command(self) -> None:
        self._state = _State.LINE
        self._parts = []
        self._size = 0
        self._tag = None
        self._pending_returned = False
        self._skeleton = None
        self._after = None
        self._stream_head = None
        self._started = False
        self._streamed = []
        self._streamed_octets = 0
