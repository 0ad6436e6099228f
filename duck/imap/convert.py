"""The MIME model (duck.mime) as grammar values: ENVELOPE and BODY/BODYSTRUCTURE.

duck.mime keeps types and parameter names lowercased; IMAP clients expect the
conventional upper case (``"TEXT" "PLAIN" ("CHARSET" "utf-8")``), as most servers
send. Parameter values keep their case.
"""

from __future__ import annotations

import attrs

from duck.mime import body_structure
from duck.mime import model as mime
from duck.mime.bodystructure import BodyStructure as MimeBody

from .grammar import bodystructure as g


def address(a: mime.Address) -> g.Address:
    """One address (group markers pass through unchanged)."""
    return g.Address(a.name, a.adl, a.mailbox, a.host)


def envelope(env: mime.Envelope) -> g.Envelope:
    """RFC 3501 §7.4.2 ENVELOPE."""
    return g.Envelope(
        date=env.date,
        subject=env.subject,
        from_=tuple(address(a) for a in env.from_),
        # RFC 3501 §7.4.2: sender and reply-to default to from when absent.
        sender=tuple(address(a) for a in (env.sender or env.from_)),
        reply_to=tuple(address(a) for a in (env.reply_to or env.from_)),
        to=tuple(address(a) for a in env.to),
        cc=tuple(address(a) for a in env.cc),
        bcc=tuple(address(a) for a in env.bcc),
        in_reply_to=env.in_reply_to,
        message_id=env.message_id,
    )


def _params(params: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k.upper(), v) for k, v in params)


def _disposition(b: MimeBody) -> g.Disposition | None:
    if b.disposition is None:
        return None
    return g.Disposition(b.disposition.upper(), _params(b.disposition_params))


def _body(b: MimeBody, ext: bool = True) -> g.BodyStructure:
    language = tuple(b.language) or None
    if b.is_multipart:
        return g.MultiPart(
            tuple(_body(child, ext) for child in b.children),
            b.subtype.upper(),
            g.BodyExt(
                params=_params(b.params), disposition=_disposition(b), language=language,
                location=b.location,
            ) if ext else None,
        )
    kind = b.type.upper()
    is_message = b.body is not None and b.envelope is not None
    if kind == "MESSAGE" and b.subtype.upper() in ("RFC822", "GLOBAL") and not is_message:
        # The grammar (RFC 9051 §9 body-type-msg) needs envelope and body for these.
        b = attrs.evolve(b, envelope=mime.Envelope(), body=MimeBody(
            "text", "plain", params=[("charset", "us-ascii")], size=0, lines=0))
        is_message = True
    lines = b.lines
    if kind == "TEXT" and lines is None:
        lines = 0
    if kind != "TEXT" and not is_message:
        lines = None
    if is_message and lines is None:
        lines = 0
    return g.SinglePart(
        type=kind,
        subtype=b.subtype.upper(),
        params=_params(b.params),
        id=b.id,
        description=b.description,
        encoding=b.encoding.upper(),
        size=b.size,
        lines=lines,
        envelope=envelope(b.envelope) if is_message and b.envelope is not None else None,
        body=_body(b.body, ext) if is_message and b.body is not None else None,
        ext=g.BodyExt(
            md5=b.md5, disposition=_disposition(b), language=language, location=b.location,
        ) if ext else None,
    )


def body(root: mime.Part, *, extensible: bool = True) -> g.BodyStructure:
    """BODYSTRUCTURE of a message root; BODY without the extension data."""
    return _body(body_structure(root), extensible)


def structure(b: MimeBody) -> g.BodyStructure:
    """One body of the MIME model in BODYSTRUCTURE form (with extension data)."""
    return _body(b, True)
