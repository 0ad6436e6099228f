"""Mutable parse-time state of one part, and its conversion to the frozen `Part`.

The indexer fills a `_Node` while the part streams past; only parsed attributes are
kept once its header block ends (the raw fields are dropped), so memory per part
stays bounded by the header caps.
"""

from __future__ import annotations

from duck.mime.envelope import build_envelope
from duck.mime.headers import (
    parse_content_type,
    parse_disposition,
    parse_language,
    parse_token,
    split_field,
    text,
    unfold,
)
from duck.mime.model import Envelope, Part

#: What the body of a node turned out to be.
LEAF, MULTIPART, MESSAGE = "leaf", "multipart", "message"

#: Subtypes of message/* whose body is parsed as an encapsulated message. Other
#: message/* types (partial, external-body, delivery-status) stay opaque leaves.
ENCAPSULATING = frozenset({"rfc822", "global"})


class Node:
    """A part being parsed."""

    __slots__ = (
        "body_end",
        "children",
        "content_id",
        "content_subtype",
        "content_type",
        "default_type",
        "depth",
        "description",
        "disposition",
        "disposition_params",
        "encoding",
        "envelope",
        "header_end",
        "header_start",
        "is_root",
        "kind",
        "language",
        "lf_body_start",
        "lines",
        "location",
        "md5",
        "message",
        "opaque",
        "params",
        "parent_section",
        "section",
        "sha256",
    )

    def __init__(
        self,
        header_start: int,
        depth: int,
        section: tuple[int, ...],
        default_type: tuple[str, str],
        is_root: bool,
    ) -> None:
        self.header_start = header_start
        self.header_end = -1
        self.body_end = -1
        self.depth = depth
        #: For roots: the section of the enclosing message/rfc822 part (or ()).
        self.parent_section = section
        self.section = section
        self.default_type = default_type
        self.is_root = is_root
        self.kind = LEAF
        self.opaque = False
        self.content_type, self.content_subtype = default_type
        self.params: list[tuple[str, str]] = []
        self.content_id: str | None = None
        self.description: str | None = None
        self.encoding = "7bit"
        self.md5: str | None = None
        self.disposition: str | None = None
        self.disposition_params: list[tuple[str, str]] = []
        self.language: list[str] = []
        self.location: str | None = None
        self.children: list[Node] = []
        self.message: Node | None = None
        self.envelope: Envelope | None = None
        self.lf_body_start = 0
        self.lines = 0
        self.sha256: str | None = None

    def apply_fields(self, fields: list[tuple[str, bytes]]) -> None:
        """Set the content attributes from the raw header fields of this part."""
        first: dict[str, bytes] = {}
        for name, value in fields:
            first.setdefault(name, value)
        content_type = first.get("content-type")
        parsed = parse_content_type(content_type)
        if parsed is not None:
            self.content_type, self.content_subtype, self.params = parsed
        else:
            if content_type is not None:
                # RFC 2045 §5.2: an invalid Content-Type means the plain text default
                # (not the multipart/digest default, which is for absent headers).
                self.content_type, self.content_subtype = "text", "plain"
            if (self.content_type, self.content_subtype) == ("text", "plain"):
                self.params = [("charset", "us-ascii")]
        self.encoding = parse_token(first.get("content-transfer-encoding")) or "7bit"
        self.content_id = _raw_text(first.get("content-id"))
        self.description = _raw_text(first.get("content-description"))
        self.md5 = _raw_text(first.get("content-md5"))
        self.location = _raw_text(first.get("content-location"))
        disposition = parse_disposition(first.get("content-disposition"))
        if disposition is not None:
            self.disposition, self.disposition_params = disposition
        self.language = parse_language(first.get("content-language"))
        if self.is_root:
            self.envelope = build_envelope(fields)

    def param(self, name: str) -> str | None:
        """A Content-Type parameter value, or None."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    def child_default_type(self) -> tuple[str, str]:
        """RFC 2046 §5.1.5: parts of multipart/digest default to message/rfc822."""
        if self.content_subtype == "digest":
            return ("message", "rfc822")
        return ("text", "plain")

    def freeze(self) -> Part:
        """The frozen `Part` tree below (and including) this node."""
        message = self.message.freeze() if self.message is not None else None
        return Part(
            section=self.section,
            header_start=self.header_start,
            header_end=self.header_end,
            body_end=self.body_end,
            content_type=self.content_type,
            content_subtype=self.content_subtype,
            params=self.params,
            content_id=self.content_id,
            description=self.description,
            encoding=self.encoding,
            size=self.body_end - self.header_end,
            lines=self.lines,
            md5=self.md5,
            disposition=self.disposition,
            disposition_params=self.disposition_params,
            language=self.language,
            location=self.location,
            children=[child.freeze() for child in self.children],
            message=message,
            envelope=self.message.envelope if self.message is not None else None,
            sha256=self.sha256,
            is_message_root=self.is_root,
            opaque=self.opaque,
        )


def _raw_text(value: bytes | None) -> str | None:
    if value is None:
        return None
    return text(unfold(value)).strip()


__all__ = ["ENCAPSULATING", "LEAF", "MESSAGE", "MULTIPART", "Node", "split_field"]
