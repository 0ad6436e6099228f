"""The MIME model: typed, plain-data results of indexing a message.

Everything here is attrs classes holding str/int/bytes/lists/tuples so that the
store can (un)structure them to BSON with cattrs.

String conventions (decided here, relied on by the store and the IMAP layer):

- `Envelope` members are the raw header text as ``bytes`` (unfolded, not RFC 2047
  decoded), because RFC 3501 §7.4.2 ENVELOPE carries the header text verbatim and
  8-bit header bytes (RFC 6532, or plain broken mail) must survive byte-exact.
- `Part` string members (ids, description, md5, location, parameters) are ``str``:
  parameters are RFC 2231 decoded; the other fields are the raw unfolded header text
  with any 8-bit bytes decoded as UTF-8 (invalid sequences become U+FFFD).
- Content types, subtypes, encodings, disposition types and parameter names are
  lowercased; the IMAP layer chooses the case it sends.
"""

from __future__ import annotations

import datetime

import attrs


@attrs.frozen
class IndexerLimits:
    """Caps that bound the indexer's memory and work whatever the input.

    When a cap is hit the indexer never fails: it degrades to treating the rest of
    the affected part as an opaque leaf and sets `IndexedMessage.truncated`.
    """

    #: Leaf bodies larger than this (encoded octets) are streamed out as
    #: LargeBody* events instead of SkeletonBytes.
    large_body_threshold: int = 64 * 1024
    #: Deepest container nesting (multipart or message/rfc822) that is parsed.
    #: Real mail rarely nests beyond 10; the default keeps the Part tree well within
    #: MongoDB's 100-level document nesting limit (each level costs the tree ~2 BSON
    #: levels: a children array and a document) and Python's recursion limit.
    max_depth: int = 32
    #: Most parts recorded for one message (all levels together).
    max_parts: int = 5000
    #: Most header bytes kept for parsing per header block; the rest is skipped.
    max_header_bytes: int = 256 * 1024
    #: Most header bytes kept for parsing over all header blocks of a message.
    max_total_header_bytes: int = 4 * 1024 * 1024
    #: Most characters of decoded text kept for full-text search.
    max_text_bytes: int = 1024 * 1024
    #: Longest boundary parameter honoured (RFC 2046 §5.1.1 allows 70).
    max_boundary_length: int = 998

    def __attrs_post_init__(self) -> None:
        if self.large_body_threshold < 0:
            raise ValueError("large_body_threshold must be >= 0")
        if not 1 <= self.max_depth <= 500:
            # The Part tree is built and walked recursively.
            raise ValueError("max_depth must be in 1..500")
        if self.max_parts < 1:
            raise ValueError("max_parts must be >= 1")


@attrs.frozen
class Address:
    """One RFC 3501 §7.4.2 address; group start/end markers use None members.

    Group start: ``Address(None, None, group_name, None)``; group end: all None.
    A mailbox without a domain has ``host == b""`` (not None, which means a group).
    """

    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None


@attrs.frozen
class Envelope:
    """RFC 3501 §7.4.2 ENVELOPE members; an empty address list is NIL."""

    date: bytes | None = None
    subject: bytes | None = None
    from_: list[Address] = attrs.field(factory=list)
    sender: list[Address] = attrs.field(factory=list)
    reply_to: list[Address] = attrs.field(factory=list)
    to: list[Address] = attrs.field(factory=list)
    cc: list[Address] = attrs.field(factory=list)
    bcc: list[Address] = attrs.field(factory=list)
    in_reply_to: bytes | None = None
    message_id: bytes | None = None


@attrs.frozen
class Part:
    """One node of the MIME tree with exact byte offsets into the original message.

    ``section`` is the IMAP section number (RFC 3501 §6.4.5) by which BODY[section]
    returns this part's body: the top-level part of a non-multipart message is
    ``(1,)``, a multipart message root is ``()``; the root of a message encapsulated
    in part ``s`` is ``s + (1,)`` if it is not multipart, else ``s``.
    """

    section: tuple[int, ...]
    header_start: int
    header_end: int
    body_end: int
    content_type: str = "text"
    content_subtype: str = "plain"
    params: list[tuple[str, str]] = attrs.field(factory=list)
    content_id: str | None = None
    description: str | None = None
    encoding: str = "7bit"
    #: Body octets (``body_end - body_start``).
    size: int = 0
    #: Body text lines: LF count plus one for a final unterminated line.
    lines: int = 0
    #: The Content-MD5 header value (RFC 1864), as BODYSTRUCTURE reports it.
    md5: str | None = None
    disposition: str | None = None
    disposition_params: list[tuple[str, str]] = attrs.field(factory=list)
    language: list[str] = attrs.field(factory=list)
    location: str | None = None
    children: list[Part] = attrs.field(factory=list)
    #: For message/rfc822: the root part of the encapsulated message.
    message: Part | None = None
    #: For message/rfc822: the encapsulated message's envelope.
    envelope: Envelope | None = None
    #: SHA-256 (hex) of the encoded body when it was streamed out as a large body.
    sha256: str | None = None
    #: True when this part is the root of a message (top-level or encapsulated).
    is_message_root: bool = False
    #: True when a multipart or message/rfc822 part was not parsed into parts (a cap
    #: was hit, the boundary is missing, or the encapsulated message is encoded).
    opaque: bool = False

    @property
    def body_start(self) -> int:
        """Offset of the first body octet (same as `header_end`)."""
        return self.header_end

    @property
    def is_multipart(self) -> bool:
        """True for multipart/* parts that were parsed (they hold children)."""
        return self.content_type == "multipart" and not self.opaque

    @property
    def mime_type(self) -> str:
        """``type/subtype``, lowercased."""
        return f"{self.content_type}/{self.content_subtype}"

    def param(self, name: str) -> str | None:
        """Value of the Content-Type parameter `name` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def charset(self) -> str:
        """Effective charset: the parameter, else us-ascii (RFC 2046 §4.1.2)."""
        return (self.param("charset") or "us-ascii").lower()

    def walk(self) -> list[Part]:
        """This part and every part below it (children and encapsulated), pre-order."""
        out: list[Part] = []
        stack: list[Part] = [self]
        while stack:
            part = stack.pop()
            out.append(part)
            below = list(part.children)
            if part.message is not None:
                below.append(part.message)
            stack.extend(reversed(below))
        return out


@attrs.frozen
class LargeBody:
    """A leaf body streamed out of the skeleton (see LargeBodyStart/End)."""

    section: tuple[int, ...]
    offset: int
    size: int
    sha256: str


@attrs.frozen
class IndexedMessage:
    """Everything the store keeps about one message's content."""

    size: int
    root: Part
    envelope: Envelope
    #: Top-level header fields: (lowercased name, RFC 2047-decoded unfolded value).
    headers: list[tuple[str, str]]
    #: Decoded text of the text/* parts, for full-text search (capped).
    text: str
    date: datetime.datetime | None
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    subject: str
    large_bodies: list[LargeBody]
    #: Body lines of the top-level message.
    lines: int
    #: Number of parts recorded.
    part_count: int
    #: True when a cap (depth, parts, header bytes, text) was hit.
    truncated: bool = False

    @property
    def header_size(self) -> int:
        """Octets of the top-level header block, blank line included."""
        return self.root.header_end

    def header(self, name: str) -> list[str]:
        """Decoded values of every top-level header field called `name`."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]
