"""Message previews (RFC 8970 §2): a short plain-text summary of a message, made
from its first text part.

The part is the first ``text/plain`` or ``text/html`` leaf of the message that is
not an attachment, in MIME order, not looking inside attached messages (what a
reader would see first). Only the first ``READ_MAX`` octets of its body are
needed: they are transfer-decoded and charset-decoded incrementally
(textextract.py), HTML markup is removed, whitespace runs become one space, and
the result is cut at ``PREVIEW_CHARS`` characters.
"""

from __future__ import annotations

from duck.mime.model import Part
from duck.mime.textextract import TextBudget, TextExtractor

#: RFC 8970 §2: a preview is at most 256 characters.
PREVIEW_CHARS = 256
#: Encoded body octets read to make a preview: enough for 256 characters after
#: base64, quoted-printable, 4-octet UTF-8 and a fair amount of HTML markup.
READ_MAX = 64 * 1024


def preview_part(root: Part) -> Part | None:
    """The part a preview of the message ``root`` is made from, or None."""
    stack = [root]
    while stack:
        part = stack.pop()
        if part.is_multipart:
            stack.extend(reversed(part.children))
            continue
        if part.content_type != "text" or part.content_subtype not in ("plain", "html"):
            continue
        if (part.disposition or "").lower() == "attachment":
            continue
        return part
    return None


def make_preview(part: Part, body: bytes) -> str:
    """RFC 8970 §2's preview text of ``part`` from (the start of) its encoded body:
    decoded, HTML stripped, whitespace collapsed, at most PREVIEW_CHARS characters."""
    budget = TextBudget(PREVIEW_CHARS * 64)
    extractor = TextExtractor(part.encoding.lower(), part.charset,
                              part.content_subtype == "html", budget)
    extractor.feed(body[:READ_MAX])
    text = " ".join(extractor.close().split())
    return text[:PREVIEW_CHARS].rstrip()
