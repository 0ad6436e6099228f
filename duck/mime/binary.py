"""Binary content (RFC 3516): made safe for BODY[] when APPENDed, and BINARY[] of
a multipart or an encapsulated message decoded part by part.

APPEND (§4.3):

A message APPENDed as literal8 may carry leaf parts whose octets include NUL (a
``Content-Transfer-Encoding: binary`` part). IMAP can send such octets only in a
literal8, and only in answer to BINARY[]; a BODY[] answer must not contain NUL.
So, as RFC 3516 §4.3 allows, such parts are stored base64-encoded: their header's
transfer encoding becomes ``base64`` and their body its encoding. BINARY[] then
decodes them back to the octets the client sent.
"""

from __future__ import annotations

import base64
import re

from . import transfer
from .indexer import MessageIndexer
from .model import IndexerLimits, Part

_CTE = re.compile(rb"^content-transfer-encoding[ \t]*:.*(?:\r?\n[ \t].*)*\r?\n",
                  re.IGNORECASE | re.MULTILINE)


def _base64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))


def _header_with_base64(header: bytes) -> bytes:
    line = b"Content-Transfer-Encoding: base64\r\n"
    if _CTE.search(header):
        return _CTE.sub(lambda _: line, header, count=1)
    # Before the blank line that ends the header (or at its end, if it has none).
    for end in (b"\r\n\r\n", b"\n\n"):
        if header.endswith(end):
            cut = len(header) - len(end) + (2 if end == b"\r\n\r\n" else 1)
            return header[:cut] + line + header[cut:]
    return header + line


def encode_binary_parts(data: bytes, limits: IndexerLimits | None = None) -> bytes:
    """``data`` with every leaf part whose body holds a NUL octet re-encoded as
    base64 (the rest byte for byte the same); ``data`` itself when there is none."""
    if b"\x00" not in data:
        return data
    indexer = MessageIndexer(limits or IndexerLimits())
    indexer.feed(data)
    _, message = indexer.close()
    leaves: list[Part] = [p for p in message.root.walk()
                          if not p.is_multipart and p.content_type != "message"
                          and b"\x00" in data[p.body_start : p.body_end]]
    out = data
    # From the end, so that earlier offsets stay valid.
    for part in sorted(leaves, key=lambda p: p.header_start, reverse=True):
        header = out[part.header_start : part.header_end]
        body = out[part.body_start : part.body_end]
        out = (out[: part.header_start] + _header_with_base64(header) + _base64_lines(body)
               + out[part.body_end :])
    return out


# -- BINARY of a multipart or an encapsulated message -------------------------------

_CTE_FIELD = re.compile(rb"^content-transfer-encoding[ \t]*:[^\n]*\n?(?:[ \t][^\n]*\n?)*",
                        re.IGNORECASE | re.MULTILINE)


def _header_saying_binary(header: bytes) -> bytes:
    """A part's header with its Content-Transfer-Encoding fields replaced by one
    saying ``binary``, after the other fields (before the blank line that ends
    the header, in the header's own line ending)."""
    header = _CTE_FIELD.sub(b"", header)
    newline = b"\n" if header.endswith(b"\n\n") and not header.endswith(b"\r\n\r\n") \
        else b"\r\n"
    line = b"Content-Transfer-Encoding: binary" + newline
    for end in (b"\r\n\r\n", b"\n\n"):
        if header.endswith(end):
            cut = len(header) - len(end) // 2
            return header[:cut] + line + header[cut:]
    if header and not header.endswith(b"\n"):
        header += newline
    return header + line


def _encoded(part: Part) -> bool:
    return not part.is_multipart and part.message is None and \
        part.encoding.lower() not in transfer.IDENTITY


def binary_body(data: bytes, part: Part, offset: int = 0) -> bytes:
    """RFC 3516 §4.2 BINARY of ``part``'s body; ``data`` holds the message's octets
    from ``offset`` on, at least up to the part's end.

    A leaf's body loses its transfer encoding. A multipart's or an encapsulated
    message's content keeps its structure (boundaries, preamble, epilogue, every
    header) with each leaf inside decoded, and the header of each decoded leaf says
    ``Content-Transfer-Encoding: binary`` (RFC 2045 §6.4: what is nested carries
    its own encoding; this is how Dovecot answers too). Raises
    ``transfer.UnknownEncoding`` (or ValueError for undecodable data) when a leaf
    has an encoding that cannot be removed.
    """
    if part.is_multipart:
        out = bytearray()
        pos = part.body_start
        for child in part.children:
            out += data[pos - offset : child.header_start - offset]
            out += binary_entity(data, child, offset)
            pos = child.body_end
        out += data[pos - offset : part.body_end - offset]
        return bytes(out)
    inner = part.message
    if inner is not None:
        return (data[part.body_start - offset : inner.header_start - offset]
                + binary_entity(data, inner, offset)
                + data[inner.body_end - offset : part.body_end - offset])
    body = data[part.body_start - offset : part.body_end - offset]
    return transfer.decode_body(body, part.encoding)


def binary_entity(data: bytes, part: Part, offset: int = 0) -> bytes:
    """``part``'s header and ``binary_body``: the header of a decoded leaf says
    ``Content-Transfer-Encoding: binary``, every other header is as stored."""
    header = data[part.header_start - offset : part.header_end - offset]
    if _encoded(part):
        header = _header_saying_binary(header)
    return header + binary_body(data, part, offset)
