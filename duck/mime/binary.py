"""Binary content made safe for BODY[] (RFC 3516 §4.3: APPEND of binary data).

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
