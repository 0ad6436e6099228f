"""BODY and BODYSTRUCTURE (RFC 3501 §7.4.2) as a typed tree built from `Part`s.

The IMAP layer turns a `BodyStructure` into grammar values; BODY uses the same
tree without the extension data.
"""

from __future__ import annotations

import attrs

from duck.mime.model import Envelope, IndexedMessage, Part


@attrs.frozen
class BodyStructure:
    """One body of a BODYSTRUCTURE; multipart when `children` is non-empty."""

    type: str
    subtype: str
    #: body-fld-param for single parts; the extension parameters for multiparts.
    params: list[tuple[str, str]] = attrs.field(factory=list)
    id: str | None = None
    description: str | None = None
    encoding: str = "7bit"
    size: int = 0
    #: body-fld-lines: text/* and message/rfc822 only.
    lines: int | None = None
    #: message/rfc822 only.
    envelope: Envelope | None = None
    body: BodyStructure | None = None
    children: list[BodyStructure] = attrs.field(factory=list)
    # Extension data.
    md5: str | None = None
    disposition: str | None = None
    disposition_params: list[tuple[str, str]] = attrs.field(factory=list)
    language: list[str] = attrs.field(factory=list)
    location: str | None = None

    @property
    def is_multipart(self) -> bool:
        """True for a body-type-mpart."""
        return self.type == "multipart"

    @property
    def is_message(self) -> bool:
        """True for a body-type-msg (MESSAGE/RFC822 with envelope and body)."""
        return self.body is not None


def _empty_text() -> BodyStructure:
    return BodyStructure(
        "text", "plain", params=[("charset", "us-ascii")], encoding="7bit", size=0, lines=0
    )


def body_structure(message: IndexedMessage | Part) -> BodyStructure:
    """The BODYSTRUCTURE of a message (or of the message rooted at a Part)."""
    part = message.root if isinstance(message, IndexedMessage) else message
    return _structure(part)


def _structure(part: Part) -> BodyStructure:
    if part.content_type == "multipart":
        children = [_structure(child) for child in part.children]
        if not children:
            # RFC 3501 body-type-mpart needs at least one body; a multipart whose
            # boundary never occurs (or that was not parsed) gets an empty text part,
            # as Dovecot does.
            children = [_empty_text()]
        return BodyStructure(
            "multipart",
            part.content_subtype,
            params=part.params,
            children=children,
            disposition=part.disposition,
            disposition_params=part.disposition_params,
            language=part.language,
            location=part.location,
        )
    envelope: Envelope | None = None
    body: BodyStructure | None = None
    lines: int | None = None
    if part.content_type == "message" and part.content_subtype == "rfc822":
        lines = part.lines
        if part.message is not None:
            body, envelope = _structure(part.message), part.envelope or Envelope()
        else:
            # Not parsed (encoded, or a cap): keep the body-type-msg shape with an
            # empty envelope so clients' parsers stay in step.
            body, envelope = _empty_text(), Envelope()
    elif part.content_type == "text":
        lines = part.lines
    return BodyStructure(
        part.content_type,
        part.content_subtype,
        params=part.params,
        id=part.content_id,
        description=part.description,
        encoding=part.encoding,
        size=part.size,
        lines=lines,
        envelope=envelope,
        body=body,
        md5=part.md5,
        disposition=part.disposition,
        disposition_params=part.disposition_params,
        language=part.language,
        location=part.location,
    )
