"""Netstrings (https://cr.yp.to/proto/netstrings.txt), sans-IO: ``<length>:<bytes>,``.

The framing of Postfix's socketmap protocol (socketmap_table(5)). A reader takes
bytes as they arrive and gives back whole payloads; anything that is not a
netstring, or one longer than its cap, is a :class:`NetstringError` (the caller
answers PERM and closes: the stream cannot be resynchronised).
"""

from __future__ import annotations


class NetstringError(ValueError):
    """The input is not a netstring (or one over the cap)."""


def encode(payload: bytes) -> bytes:
    """``payload`` as a netstring."""
    return b"%d:%s," % (len(payload), payload)


class NetstringReader:
    """Splits a byte stream into netstring payloads."""

    def __init__(self, max_length: int = 10000) -> None:
        self.max_length = max_length
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """Add received bytes; the payloads now complete, in order."""
        self._buffer += data
        out: list[bytes] = []
        while True:
            payload = self._next()
            if payload is None:
                return out
            out.append(payload)

    def _next(self) -> bytes | None:
        buffer = self._buffer
        colon = buffer.find(b":", 0, len(str(self.max_length)) + 1)
        if colon < 0:
            digits = bytes(buffer)
            if not digits.isdigit() and digits:
                raise NetstringError("a netstring starts with its length")
            if len(digits) > len(str(self.max_length)):
                raise NetstringError("netstring too long")
            return None
        digits = bytes(buffer[:colon])
        if not digits.isdigit() or (len(digits) > 1 and digits.startswith(b"0")):
            raise NetstringError("a netstring starts with its length")
        length = int(digits)
        if length > self.max_length:
            raise NetstringError("netstring too long")
        end = colon + 1 + length
        if len(buffer) <= end:
            return None
        if buffer[end] != ord(","):
            raise NetstringError("a netstring ends with a comma")
        payload = bytes(buffer[colon + 1:end])
        del buffer[:end + 1]
        return payload
