"""Modified UTF-7 for mailbox names (RFC 3501 §5.1.3) and the INBOX rule (§5.1)."""

from __future__ import annotations

import base64
import binascii
import re

_PRINTABLE_RUN = re.compile(r"[\x20-\x7e]+")
_SHIFTED = re.compile(rb"&([^-]*)-")


def encode_mailbox_name(name: str) -> bytes:
    """Encode a mailbox name into modified UTF-7 (RFC 3501 §5.1.3)."""
    out: list[bytes] = []
    pos = 0
    for m in _PRINTABLE_RUN.finditer(name):
        if m.start() > pos:
            out.append(_encode_run(name[pos : m.start()]))
        out.append(m.group().encode("ascii").replace(b"&", b"&-"))
        pos = m.end()
    if pos < len(name):
        out.append(_encode_run(name[pos:]))
    return b"".join(out)


def _encode_run(run: str) -> bytes:
    try:
        raw = run.encode("utf-16-be")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be named
        raise ValueError(f"mailbox name is not valid Unicode: {run!r}") from exc
    return b"&" + base64.b64encode(raw).rstrip(b"=").replace(b"/", b",") + b"-"


#: Leads the text of a mailbox name that is not valid modified UTF-7 (or UTF-8):
#: a control character, which no stored mailbox name has (the store refuses them).
INVALID_MARK = "\x00"


def invalid_mailbox_name(data: bytes) -> str:
    """A ``str`` for undecodable mailbox-name bytes that names no mailbox and matches
    no mailbox as a LIST pattern (the bytes kept after INVALID_MARK, for messages)."""
    return INVALID_MARK + data.decode("latin-1")


def decode_mailbox_name(data: bytes) -> str:
    """Decode a modified UTF-7 mailbox name; raise ValueError if it is malformed.

    The decoder is strict about what RFC 3501 §5.1.3 forbids (printable ASCII inside
    a shifted run, bad base64, non-zero padding bits) so that decode and encode are
    inverses on every name it accepts.
    """
    if b"&" not in data:
        if data.isascii():
            return data.decode("ascii")
        # Deviation (RFC 3501 §5.1.3): raw UTF-8 from clients that never learnt
        # mUTF-7 is accepted rather than refused; it names the same mailbox.
        return data.decode("utf-8")
    out: list[str] = []
    pos = 0
    for m in _SHIFTED.finditer(data):
        plain = data[pos : m.start()]
        if b"&" in plain:
            raise ValueError("unterminated '&' shift in mailbox name")
        out.append(plain.decode("utf-8"))
        out.append(_decode_run(m.group(1)))
        pos = m.end()
    tail = data[pos:]
    if b"&" in tail:
        raise ValueError("unterminated '&' shift in mailbox name")
    out.append(tail.decode("utf-8"))
    return "".join(out)


def _decode_run(b64: bytes) -> str:
    if not b64:
        return "&"
    if b"/" in b64 or b"=" in b64:
        raise ValueError("mailbox name shift uses '/' or '=' padding")
    padded = b64.replace(b",", b"/") + b"=" * (-len(b64) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error as exc:
        raise ValueError("bad base64 in mailbox name") from exc
    if len(raw) % 2 or not raw:
        raise ValueError("mailbox name shift is not UTF-16")
    text = raw.decode("utf-16-be", errors="strict")
    # Canonical form only: re-encoding must give the same bytes (rejects non-zero
    # padding bits and shifted printable ASCII, both forbidden by §5.1.3).
    if _encode_run(text) != b"&" + b64 + b"-" or _PRINTABLE_RUN.search(text):
        raise ValueError("non-canonical modified UTF-7 in mailbox name")
    return text


def normalize_mailbox(name: str) -> str:
    """Return ``name`` with INBOX case-normalised (RFC 3501 §5.1: INBOX is case-insensitive)."""
    if len(name) == 5 and name.upper() == "INBOX":
        return "INBOX"
    return name
