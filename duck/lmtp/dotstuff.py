"""Streaming removal of SMTP dot-stuffing (RFC 5321 section 4.5.2) from DATA content.

The reader never holds more than two undecided octets back, looks at each
input octet a bounded number of times, and never needs the whole message.

Line endings: only CRLF ends a line, and only ``CRLF . CRLF`` ends the data.
A bare LF or bare CR is message content, passed through unchanged. RFC 5321
section 2.3.8 forbids clients to send them, but does not tell the receiver what
to do; we take the stance that keeps the stored bytes exactly what the client
sent (after unstuffing) and cannot be used for SMTP smuggling, because no
sequence other than ``CRLF . CRLF`` ends the message. Postfix (3.9 and later,
smtpd_forbid_bare_newline=normalize) likewise requires the exact terminator
but accepts bare LF in content; Dovecot's LMTP accepts it too. The LMTP client
in front of duck is an MTA that has already written its queue file as CRLF
lines, so bare LFs are rare here, and rejecting them would bounce mail the MTA
has already accepted.
"""

from __future__ import annotations

_END_LINE = b".\r\n"


class DotUnstuffer:
    """Undo dot-stuffing incrementally; ``feed`` until it reports the end of data."""

    def __init__(self) -> None:
        # The data starts at the beginning of a line (right after the 354 reply).
        self._line_start = True
        self.done = False

    def feed(self, buf: bytearray) -> bytes:
        """Consume what can be decided from ``buf``; return the unstuffed content.

        Bytes after the terminating ``.CRLF`` stay in ``buf`` (pipelined commands),
        as do up to two octets that need the next read to decide (a trailing CR,
        or a line-initial ``.`` / ``.CR``). Sets ``done`` when the terminator is seen.
        """
        out: list[bytearray] = []
        pos = 0
        n = len(buf)
        while pos < n:
            if self._line_start:
                if buf[pos] == 0x2E:  # "."
                    head = bytes(buf[pos:pos + 3])
                    if head == _END_LINE:
                        self.done = True
                        pos += 3
                        break
                    if _END_LINE.startswith(head):
                        break  # "." or ".\r": undecided until more arrives
                    pos += 1  # the stuffing dot: drop it
                self._line_start = False
            # Only lines that start with "." need attention, so jump from one
            # CRLF "." to the next instead of walking every line.
            hit = buf.find(b"\r\n.", pos)
            if hit >= 0:
                out.append(buf[pos:hit + 2])
                pos = hit + 2
                self._line_start = True
                continue
            if n - pos >= 2 and buf[n - 2:n] == b"\r\n":
                end = n
                self._line_start = True
            elif buf[n - 1] == 0x0D:
                end = n - 1  # a CR that may start the CRLF before a "."
            else:
                end = n
            out.append(buf[pos:end])
            pos = end
            break
        del buf[:pos]
        return b"".join(out)
