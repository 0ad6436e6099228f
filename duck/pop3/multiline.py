"""Streaming transforms of a message into the body of a multi-line reply.

RFC 1939 §3: lines end in CRLF, a line that begins with "." gets one more "."
(byte-stuffing), and the reply ends with a line holding only ".". Messages are
stored byte-exact as delivered, which for SMTP/LMTP is CRLF throughout; a
message that came in with bare LFs (an APPEND from a careless client) has them
turned into CRLF here, so the terminating line is always recognised.
``TopFilter`` cuts a message after its header and N body lines (TOP).

Both work chunk by chunk with a few bytes of carry, so a message of any size
passes through in the store's chunks and is never whole in memory.
"""

from __future__ import annotations

import re

_BARE_LF = re.compile(rb"(?<!\r)\n")


class LineEnds:
    """Bare LF to CRLF, across chunk boundaries (a CR at the end of one chunk and the
    LF at the start of the next are one CRLF)."""

    def __init__(self) -> None:
        self._after_cr = False

    def feed(self, data: bytes) -> bytes:
        """The next chunk with every bare LF made CRLF."""
        if not data:
            return b""
        head = b""
        if self._after_cr and data[:1] == b"\n":
            head, data = b"\n", data[1:]
        if data.count(b"\n") != data.count(b"\r\n"):
            data = _BARE_LF.sub(b"\r\n", data)
        out = head + data if head else data
        self._after_cr = out.endswith(b"\r")
        return out


class DotStuffer:
    """CRLF-terminated message bytes in, a multi-line reply body out."""

    def __init__(self) -> None:
        self._ends = LineEnds()
        self._line_start = True
        self._after_cr = False
        #: Octets of message (after line-end repair, before stuffing) seen so far.
        self.octets = 0

    def feed(self, data: bytes) -> bytes:
        """The next chunk of the message, stuffed."""
        data = self._ends.feed(data)
        if not data:
            return b""
        self.octets += len(data)
        out = data.replace(b"\n.", b"\n..")
        if self._line_start and out[:1] == b".":
            out = b"." + out
        self._line_start = out.endswith(b"\n")
        self._after_cr = out.endswith(b"\r")
        return out

    def end(self) -> bytes:
        """What closes the reply: a CRLF if the message's last line lacked one, then
        the terminating ``.`` line."""
        if self._line_start:
            return b".\r\n"
        return (b"\n" if self._after_cr else b"\r\n") + b".\r\n"


class TopFilter:
    """Passes a (CRLF) message's header, its blank line and then ``lines`` body lines
    (RFC 1939 §7 TOP); ``done`` once nothing more is wanted."""

    def __init__(self, lines: int) -> None:
        self._left = lines
        self._in_header = True
        # As if a CRLF came before the message: a message that begins with its
        # blank line has an empty header.
        self._tail = b"\r\n"
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """The part of the next chunk TOP sends."""
        if self.done or not data:
            return b""
        cut = 0
        if self._in_header:
            joined = self._tail + data
            found = joined.find(b"\r\n\r\n")
            if found < 0:
                self._tail = joined[-3:]
                return data
            cut = found + 4 - len(self._tail)
            self._in_header = False
        if self._left == 0:
            self.done = True
            return data[:cut]
        pos = cut
        while self._left:
            nl = data.find(b"\n", pos)
            if nl < 0:
                return data
            pos = nl + 1
            self._left -= 1
        self.done = True
        return data[:pos]
