"""Hypothesis strategies for MIME messages, shared by the mime and store tests.

`mime_messages()` draws a random MIME tree (nested multipart, message/rfc822 and
leaf parts; random boundaries, transfer encodings, parameters including RFC 2231
forms, 8-bit bodies, CRLF or bare-LF line ends) and renders it to bytes, together
with what every part is expected to be: its IMAP section, type, parameters and, for
leaves, the exact body bytes that BODY[section] must return.

Generated bodies never contain ``_`` and every boundary starts with ``_``, so no
body line can be mistaken for a delimiter; that keeps Python's email package and
duck on the same RFC 2046 reading of every generated message.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from urllib.parse import quote

import attrs
from hypothesis import strategies as st

#: Body bytes: anything but CR, LF (line ends are rendered separately) and "_".
_BODY_BYTES = [b for b in range(256) if b not in (10, 13, 0x5F)]
_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.+"
_QUOTED_CHARS = _TOKEN_CHARS + " ,;:=/()?"


@attrs.frozen
class ExpectedPart:
    """What one entity of a generated message must be indexed as."""

    section: tuple[int, ...]
    mime_type: str
    params: tuple[tuple[str, str], ...]
    #: Body bytes of a leaf (what BODY[section] returns); None for containers.
    body: bytes | None
    #: Decoded content of a text leaf in UTF-8 (what full-text search should see).
    text: str | None = None


@attrs.frozen
class GeneratedMessage:
    """A rendered message and the pre-order list of its expected entities."""

    data: bytes
    parts: tuple[ExpectedPart, ...]
    eol: bytes


# -- tree description ---------------------------------------------------------------


@attrs.frozen
class _Leaf:
    mime_type: str
    params: tuple[tuple[str, str, str], ...]  # (name, value, style)
    encoding: str
    raw: bytes  # content before transfer encoding
    disposition: tuple[str, str] | None  # (type, filename)
    body_ends_with_eol: bool


@attrs.frozen
class _Multipart:
    subtype: str
    boundary_seed: str
    children: tuple[object, ...]
    preamble: bytes
    epilogue: bytes


@attrs.frozen
class _Rfc822:
    subject: bytes
    inner: object


def _param_value(style: str) -> st.SearchStrategy[str]:
    if style in ("token", "cont"):
        return st.text(_TOKEN_CHARS, min_size=1, max_size=12)
    if style == "quoted":
        return st.text(_QUOTED_CHARS, min_size=0, max_size=20)
    # RFC 2231 styles carry non-ASCII text.
    return st.text(
        st.characters(codec="utf-8", exclude_characters="\x00\r\n_"), min_size=1, max_size=12
    )


@st.composite
def _params(draw: st.DrawFn) -> tuple[tuple[str, str, str], ...]:
    names = draw(
        st.lists(
            st.sampled_from(["name", "format", "xopt", "delsp", "title", "level"]),
            unique=True,
            max_size=3,
        )
    )
    out = []
    for name in names:
        style = draw(st.sampled_from(["token", "quoted", "rfc2231", "rfc2231-cont", "cont"]))
        value = draw(_param_value(style))
        if style == "cont" and len(value) < 2:
            style = "quoted"
        out.append((name, value, style))
    return tuple(out)


_TEXT_TYPES = ["text/plain", "text/html", "text/csv"]
_OTHER_TYPES = ["application/octet-stream", "image/png", "application/pdf", "audio/basic"]


@st.composite
def _leaf(draw: st.DrawFn) -> _Leaf:
    is_text = draw(st.booleans())
    mime_type = draw(st.sampled_from(_TEXT_TYPES if is_text else _OTHER_TYPES))
    params = draw(_params())
    if is_text:
        params = (("charset", draw(st.sampled_from(["utf-8", "us-ascii", "iso-8859-1"])), "token"),)
        params += tuple(p for p in draw(_params()) if p[0] != "charset")
    encoding = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable"]))
    if is_text:
        lines = draw(
            st.lists(
                st.text(st.characters(codec="utf-8", exclude_characters="\r\n_"), max_size=40),
                max_size=6,
            )
        )
        raw = "\n".join(lines).encode("utf-8")
    else:
        raw = draw(st.binary(max_size=300).map(lambda b: b.replace(b"_", b"x")))
    if encoding == "7bit":
        raw = bytes(b & 0x7F for b in raw)
    disposition = None
    if draw(st.booleans()):
        disposition = (
            draw(st.sampled_from(["attachment", "inline"])),
            draw(st.text(_TOKEN_CHARS, min_size=1, max_size=10)),
        )
    return _Leaf(
        mime_type, params, encoding, raw, disposition, body_ends_with_eol=draw(st.booleans())
    )


def _trees(max_leaves: int) -> st.SearchStrategy[object]:
    def extend(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        multipart = st.builds(
            _Multipart,
            subtype=st.sampled_from(["mixed", "alternative", "related", "signed"]),
            boundary_seed=st.text("abcdefghijklmnopqrstuvwxyz0123456789=.'+", max_size=40),
            children=st.lists(children, min_size=1, max_size=4).map(tuple),
            preamble=st.sampled_from([b"", b"This is a multi-part message in MIME format."]),
            epilogue=st.sampled_from([b"", b"epilogue text", b"\r\n"]),
        )
        rfc822 = st.builds(
            _Rfc822,
            subject=st.sampled_from([b"fwd", b"Re: =?utf-8?q?caf=C3=A9?=", "8bit \u00e9".encode()]),
            inner=children,
        )
        return st.one_of(multipart, multipart, rfc822)

    return st.recursive(_leaf(), extend, max_leaves=max_leaves)


# -- rendering ----------------------------------------------------------------------


def _render_param(name: str, value: str, style: str, eol: bytes) -> bytes:
    fold = b";" + eol + b"\t"
    if style == "token":
        return fold + f"{name}={value}".encode()
    if style == "quoted":
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return b"; " + f'{name}="{escaped}"'.encode()
    if style == "cont":
        half = len(value) // 2
        first, second = value[:half], value[half:]
        return b"; " + f'{name}*0="{first}"'.encode() + fold + f'{name}*1="{second}"'.encode()
    encoded = quote(value.encode("utf-8"), safe="")
    if style == "rfc2231":
        return b"; " + f"{name}*=utf-8''{encoded}".encode()
    atoms = re.findall(r"%[0-9A-F]{2}|.", encoded)  # never split a %XX escape
    cut = max(1, len(atoms) // 2)
    return (
        b"; "
        + f"{name}*0*=utf-8''{''.join(atoms[:cut])}".encode()
        + fold
        + f"{name}*1*={''.join(atoms[cut:])}".encode()
    )


def _encode_body(raw: bytes, encoding: str, eol: bytes) -> bytes:
    if encoding == "base64":
        encoded = base64.encodebytes(raw).rstrip(b"\n")
        return encoded.replace(b"\n", eol)
    if encoding == "quoted-printable":
        encoded = binascii.b2a_qp(raw.replace(b"\r", b""))
        return encoded.replace(b"\n", eol)
    return raw.replace(b"\r", b"").replace(b"\n", eol)


class _Renderer:
    def __init__(self, eol: bytes) -> None:
        self.eol = eol
        self.parts: list[ExpectedPart] = []
        # Per message, so that rendering is a pure function of the drawn tree.
        self.counter = itertools.count()

    def entity(self, node: object, section: tuple[int, ...], root: bool) -> bytes:
        """Header fields (without the blank line) and body of one entity."""
        eol = self.eol
        if isinstance(node, _Leaf):
            own = (*section, 1) if root else section
            header = b"Content-Type: " + node.mime_type.encode()
            for name, value, style in node.params:
                header += _render_param(name, value, style, eol)
            header += eol + b"Content-Transfer-Encoding: " + node.encoding.encode() + eol
            if node.disposition is not None:
                kind, filename = node.disposition
                header += f'Content-Disposition: {kind}; filename="{filename}"'.encode() + eol
            body = _encode_body(node.raw, node.encoding, eol)
            if node.body_ends_with_eol:
                body += eol
            text = None
            if node.mime_type == "text/plain" and node.encoding in ("7bit", "8bit"):
                text = body.decode("utf-8", errors="replace")
            self.parts.append(
                ExpectedPart(
                    own,
                    node.mime_type,
                    tuple((name, value) for name, value, _ in node.params),
                    body,
                    text,
                )
            )
            return header + eol + body
        if isinstance(node, _Multipart):
            boundary = f"_{node.boundary_seed}{next(self.counter)}"
            self.parts.append(
                ExpectedPart(section, f"multipart/{node.subtype}", (("boundary", boundary),), None)
            )
            header = (
                f"Content-Type: multipart/{node.subtype};".encode()
                + eol
                + f' boundary="{boundary}"'.encode()
                + eol
            )
            body = b""
            if node.preamble:
                body += node.preamble + eol
            for index, child in enumerate(node.children, start=1):
                body += b"--" + boundary.encode() + eol
                body += self.entity(child, (*section, index), root=False) + eol
            body += b"--" + boundary.encode() + b"--"
            if node.epilogue:
                body += eol + node.epilogue
            return header + eol + body
        assert isinstance(node, _Rfc822)
        own = (*section, 1) if root else section
        self.parts.append(ExpectedPart(own, "message/rfc822", (), None))
        header = b"Content-Type: message/rfc822" + eol
        inner = self.message(node.inner, own, node.subject)
        return header + eol + inner

    def message(self, root: object, section: tuple[int, ...], subject: bytes) -> bytes:
        eol = self.eol
        header = (
            b"From: Alice <alice@example.org>"
            + eol
            + b'To: bob@example.com, "Carol, C." <carol@example.net>'
            + eol
            + b"Subject: "
            + subject
            + eol
            + b"Date: Mon, 7 Feb 1994 21:52:25 -0800"
            + eol
            + b"MIME-Version: 1.0"
            + eol
        )
        return header + self.entity(root, section, root=True)


@st.composite
def mime_messages(draw: st.DrawFn, max_leaves: int = 8) -> GeneratedMessage:
    """A random MIME message and the expected index of each of its entities."""
    tree = draw(_trees(max_leaves))
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    subject = draw(st.sampled_from([b"hello", b"=?iso-8859-1?q?R=E9sum=E9?=", "Grüße".encode()]))
    renderer = _Renderer(eol)
    data = renderer.message(tree, (), subject)
    return GeneratedMessage(data, tuple(renderer.parts), eol)


@st.composite
def chunkings(draw: st.DrawFn, size: int) -> list[int]:
    """Cut points splitting `size` bytes into random chunks."""
    if size == 0:
        return []
    cuts = draw(st.lists(st.integers(0, size), max_size=12))
    return sorted(set(cuts))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets."""
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
