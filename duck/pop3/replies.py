"""POP3 replies: status lines (with RFC 2449 response codes) and multi-line listings.

A status line is ``+OK`` or ``-ERR``, then optionally an extended response code in
brackets (RFC 2449 §8: IN-USE, LOGIN-DELAY; RFC 3206: SYS/TEMP, SYS/PERM, AUTH),
then text. RFC 2449 §4 caps a response line at 512 octets with its CRLF: the text
is cut to fit and stripped of control characters, so no reply can split in two.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

#: RFC 2449 §4: a response line is at most 512 octets, CRLF included.
MAX_REPLY_LINE = 512

#: The extended response codes duck sends (RFC 2449 §8, RFC 3206 §4).
IN_USE = "IN-USE"
LOGIN_DELAY = "LOGIN-DELAY"
SYS_TEMP = "SYS/TEMP"
SYS_PERM = "SYS/PERM"
AUTH = "AUTH"
CODES = frozenset({IN_USE, LOGIN_DELAY, SYS_TEMP, SYS_PERM, AUTH})


@attrs.frozen
class Reply:
    """One status line."""

    ok: bool
    text: str = ""
    code: str | None = attrs.field(default=None)

    @code.validator
    def _known(self, _: object, value: str | None) -> None:
        if value is not None and value not in CODES:
            raise ValueError(f"unknown response code {value!r}")

    def encode(self) -> bytes:
        """The line on the wire, CRLF included, at most MAX_REPLY_LINE octets."""
        head = "+OK" if self.ok else "-ERR"
        if self.code is not None:
            head += f" [{self.code}]"
        text = "".join(ch if " " <= ch != "\x7f" else " " for ch in self.text).strip()
        if not self.code and text.startswith("["):
            # RESP-CODES: text that begins with "[" would read as a code.
            text = text.lstrip("[")
        line = (head + (" " + text if text else "")).encode("utf-8", "replace")
        return line[: MAX_REPLY_LINE - 2] + b"\r\n"


def ok(text: str = "", code: str | None = None) -> Reply:
    """A ``+OK`` line."""
    return Reply(True, text, code)


def err(text: str, code: str | None = None) -> Reply:
    """A ``-ERR`` line."""
    return Reply(False, text, code)


def listing(head: Reply, lines: Iterable[str]) -> bytes:
    """A multi-line reply (RFC 1939 §3): the status line, each line dot-stuffed, then
    the terminating ``.``."""
    out = [head.encode()]
    for line in lines:
        data = line.encode("utf-8")
        out.append(b"." + data + b"\r\n" if data.startswith(b".") else data + b"\r\n")
    out.append(b".\r\n")
    return b"".join(out)


def continuation(challenge: bytes) -> bytes:
    """A SASL server challenge (RFC 5034 §4): ``+`` space and the base64 text."""
    return b"+ " + challenge + b"\r\n"
