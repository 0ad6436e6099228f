"""Content-Transfer-Encoding decoding of a whole body (RFC 2045 §6), for IMAP BINARY.

Python's quopri and binascii.a2b_qp keep the whitespace at the end of an encoded
line; RFC 2045 §6.7 rule (3) says a decoder must delete it (it was added by
transport, or precedes a soft line break "= "), so quoted-printable is decoded here.
"""

from __future__ import annotations

import base64
import binascii
import re

#: Encodings whose body is the data itself.
IDENTITY = frozenset({"", "7bit", "8bit", "binary"})

_LINE = re.compile(rb"([^\r\n]*)(\r\n|\n|\r)?")
_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


class UnknownEncoding(ValueError):
    """The body's Content-Transfer-Encoding is not one this module decodes."""


def decode_quoted_printable(data: bytes) -> bytes:
    """RFC 2045 §6.7: whitespace at the end of each line dropped, ``=`` at the end of
    a line a soft break, ``=XX`` an octet; a malformed ``=`` is kept as it is (rule
    (4) leaves it to the decoder: the robust choice is to keep it)."""
    out = bytearray()
    for m in _LINE.finditer(data):
        line, end = m.group(1), m.group(2)
        if not line and not end:
            continue  # the empty match at the end
        line = line.rstrip(b" \t")
        soft = line.endswith(b"=")
        if soft:
            line = line[:-1]
        out += _ESCAPE.sub(lambda e: bytes((int(e.group(1), 16),)), line)
        if end and not soft:
            out += end
    return bytes(out)


def decode_body(data: bytes, encoding: str) -> bytes:
    """``data`` with its transfer encoding removed (UnknownEncoding, or ValueError
    when base64 cannot be decoded)."""
    encoding = encoding.lower()
    if encoding in IDENTITY:
        return data
    if encoding == "base64":
        try:
            return base64.b64decode(b"".join(data.split()), validate=False)
        except binascii.Error as exc:
            raise ValueError(f"bad base64: {exc}") from None
    if encoding == "quoted-printable":
        return decode_quoted_printable(data)
    raise UnknownEncoding(encoding)


#: RFC 5322 §2.1.1 (and RFC 2045 §2.7): a line of 7bit or 8bit data is at most 998
#: octets before its CRLF.
MAX_LINE = 998
_BARE_CR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def data_domain(data: bytes) -> str:
    """The encoding that labels ``data`` as it is, with no transformation (RFC 2045
    §2.7-2.9): "7bit" for short CRLF-delimited lines of US-ASCII without NUL,
    "8bit" when octets above 127 occur too, "binary" for anything else."""
    if b"\x00" in data or _BARE_CR_LF.search(data):
        return "binary"
    if any(len(line) > MAX_LINE for line in data.split(b"\r\n")):
        return "binary"
    return "7bit" if data.isascii() else "8bit"


def count_lines(data: bytes) -> int:
    """body-fld-lines of a body (RFC 3501 §7.4.2), counted as the indexer counts a
    stored body's: one per LF, and one more for a last line without one."""
    lines = data.count(b"\n")
    if data and not data.endswith(b"\n"):
        lines += 1
    return lines
