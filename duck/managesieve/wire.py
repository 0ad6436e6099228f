"""ManageSieve responses on the wire (RFC 5804 section 4): strings, OK/NO/BYE."""

from __future__ import annotations

#: Quoted strings longer than this are sent as literals (RFC 5804 section 4
#: caps quoted strings at 1024 octets).
MAX_QUOTED = 1024


def string(value: str) -> bytes:
    """A string as a quoted string when it can be one, else a literal ``{n}``."""
    data = value.encode("utf-8")
    if len(data) <= MAX_QUOTED and b"\r" not in data and b"\n" not in data \
            and b"\0" not in data:
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def response(kind: str, code: str | None = None, text: str | None = None) -> bytes:
    """``OK``/``NO``/``BYE`` with an optional ``(CODE)`` and human-readable text.
    The code may carry a string argument (``TAG``, ``SASL``) already encoded."""
    out = kind.encode()
    if code is not None:
        out += b" (" + code.encode("utf-8") + b")"
    if text is not None:
        # Text stays one line: a literal is allowed, but clients read quoted best.
        out += b" " + string(" ".join(text.split()) if "\n" not in text else text)
    return out + b"\r\n"


def ok(text: str | None = None, code: str | None = None) -> bytes:
    """An OK response."""
    return response("OK", code, text)


def no(text: str | None = None, code: str | None = None) -> bytes:
    """A NO response."""
    return response("NO", code, text)


def bye(text: str | None = None, code: str | None = None) -> bytes:
    """A BYE response (the server closes the connection after it)."""
    return response("BYE", code, text)


def code_with_string(code: str, value: str) -> str:
    """A response code with a string argument, e.g. ``TAG "x"`` or ``SASL "..."``."""
    return f"{code} " + string(value).decode("utf-8")
