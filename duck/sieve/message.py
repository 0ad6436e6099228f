"""What a script sees of a message: headers, envelope, size, body parts, the clock,
and the few questions only the store can answer (``Hooks``).

``Message.from_bytes`` builds it from the raw message with the standard library's
parser; the body is parsed only when the script has a ``body`` test.
"""

from __future__ import annotations

import datetime as dt
import email
import email.header
import email.policy
from collections.abc import Sequence
from typing import Protocol

import attrs

#: How many octets of a body part the body test looks at (RFC 5173 leaves it open).
MAX_BODY_TEXT = 1 << 20
#: Most body parts the body test looks at.
MAX_BODY_PARTS = 64


@attrs.frozen
class BodyPart:
    """A leaf part for the body test: its content type (``type/subtype``, lower
    case) and its text, transfer-decoded and charset-decoded."""

    content_type: str
    text: str


@attrs.frozen
class Message:
    """A message as a script sees it."""

    #: Header fields in order: (name, unfolded value, RFC 2047 not yet decoded).
    headers: tuple[tuple[str, str], ...]
    size: int
    #: The envelope: reverse-path ("" for the null sender) and the recipient as given
    #: in RCPT TO (with its ``+detail``).
    envelope_from: str = ""
    envelope_to: str = ""
    #: Leaf parts for the body test (empty unless asked for).
    parts: tuple[BodyPart, ...] = ()
    #: The body after the header, undecoded (for ``body :raw``).
    raw_body: str = ""
    now: dt.datetime = attrs.field(factory=lambda: dt.datetime.now(dt.UTC))

    def header(self, name: str) -> list[str]:
        """Values of every field called ``name`` (any case), RFC 2047-decoded."""
        low = name.lower()
        return [decode_words(v) for n, v in self.headers if n.lower() == low]

    def raw_header(self, name: str) -> list[str]:
        """Values of every field called ``name``, as written (for address parsing)."""
        low = name.lower()
        return [v for n, v in self.headers if n.lower() == low]

    @classmethod
    def from_bytes(cls, data: bytes, *, envelope_from: str = "", envelope_to: str = "",
                   size: int | None = None, with_body: bool = False,
                   now: dt.datetime | None = None) -> Message:
        """Parse ``data`` (the whole message, or at least its header section)."""
        end = data.find(b"\r\n\r\n")
        sep = 4
        if end < 0:
            end, sep = data.find(b"\n\n"), 2
        head = data if end < 0 else data[:end + sep]
        body = b"" if end < 0 else data[end + sep:]
        headers = parse_header_block(head)
        parts: tuple[BodyPart, ...] = ()
        raw = ""
        if with_body:
            raw = body[:MAX_BODY_TEXT].decode("utf-8", "replace")
            parts = tuple(body_parts(data))
        return cls(headers, len(data) if size is None else size, envelope_from, envelope_to,
                   parts, raw, now or dt.datetime.now(dt.UTC))


def parse_header_block(head: bytes) -> tuple[tuple[str, str], ...]:
    """Header fields of a header section: (name, unfolded value); malformed lines
    are skipped (a script must run whatever the message looks like)."""
    out: list[tuple[str, str]] = []
    text = head.decode("utf-8", "surrogateescape")
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        if line[0] in " \t":
            if out:
                name, value = out[-1]
                out[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or " " in name.strip():
            continue
        out.append((name.strip(), value.strip()))
    # Undecodable octets become U+FFFD rather than surrogates nobody can print.
    return tuple((n, v.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
                 for n, v in out)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded (RFC 5228 section 2.7.2 asks for it)."""
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def body_parts(data: bytes) -> list[BodyPart]:
    """Leaf parts with their decoded text (RFC 5173 section 5). A message the email
    package cannot take apart is one text/plain part of its undecoded body (so that
    a malformed header cannot hide a body from the tests)."""
    try:
        return _parts(data)
    except (ValueError, LookupError, TypeError, IndexError, AttributeError):
        # (It raises TypeError on a boundary or charset given in RFC 2231 pieces
        # that mix continued and plain forms: the delivery failed with it.)
        end, sep = data.find(b"\r\n\r\n"), 4
        if end < 0:
            end, sep = data.find(b"\n\n"), 2
        body = b"" if end < 0 else data[end + sep:]
        return [BodyPart("text/plain", body[:MAX_BODY_TEXT].decode("utf-8", "replace"))]


def _parts(data: bytes) -> list[BodyPart]:
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    out: list[BodyPart] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        if len(out) >= MAX_BODY_PARTS:
            break
        ctype = part.get_content_type().lower()
        try:
            payload = part.get_payload(decode=True)
        except (ValueError, LookupError, TypeError):
            payload = None
        if not isinstance(payload, bytes):
            payload = b""
        payload = payload[:MAX_BODY_TEXT]
        charset = part.get_content_charset() or "us-ascii"
        try:
            text = payload.decode(charset, "replace")
        except LookupError:
            text = payload.decode("utf-8", "replace")
        out.append(BodyPart(ctype, text))
    return out


class Hooks(Protocol):
    """What the interpreter asks the store while it runs."""

    async def mailbox_exists(self, name: str) -> bool:
        """Does the user have this mailbox (RFC 5490 ``mailboxexists``)?"""
        ...

    async def duplicate(self, key: str, seconds: int, last: bool) -> bool:
        """Was ``key`` seen within ``seconds``? Records it (RFC 7352)."""
        ...

    async def load_script(self, name: str, location: str) -> str | None:
        """Source of the user's (``personal``) or a ``global`` script, None if none."""
        ...


class NoHooks:
    """Hooks for a script run without a store: no mailboxes, nothing seen, no scripts."""

    def __init__(self, mailboxes: Sequence[str] = ("INBOX",),
                 scripts: dict[str, str] | None = None) -> None:
        self.mailboxes = set(mailboxes)
        self.scripts = scripts or {}
        self.seen: dict[str, int] = {}

    async def mailbox_exists(self, name: str) -> bool:
        """True for the names given at construction."""
        return name in self.mailboxes

    async def duplicate(self, key: str, seconds: int, last: bool) -> bool:
        """Remembers keys in memory (no expiry: a run is short)."""
        seen = key in self.seen
        self.seen[key] = 1
        return seen

    async def load_script(self, name: str, location: str) -> str | None:
        """Scripts from the dict given at construction (``location:name`` or ``name``)."""
        return self.scripts.get(f"{location}:{name}", self.scripts.get(name))
