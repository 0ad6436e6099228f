"""RFC 8970 §2 previews: the first text part, decoded, markup and runs of
whitespace removed, at most 256 characters."""

from __future__ import annotations

import base64

from duck.mime import MessageIndexer
from duck.mime.preview import PREVIEW_CHARS, make_preview, preview_part


def preview(data: bytes) -> str | None:
    indexer = MessageIndexer()
    indexer.feed(data)
    _, message = indexer.close()
    part = preview_part(message.root)
    if part is None:
        return None
    return make_preview(part, data[part.body_start : part.body_end])


def test_plain_text_quoted_printable() -> None:
    msg = (b"Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"  Caf=E9   au\r\n\r\n\tlait=\r\n s'il vous pla=EEt  \r\n")
    assert preview(msg) == "Café au lait s'il vous plaît"


def test_first_text_part_not_attachments_nor_attached_messages() -> None:
    b64 = base64.encodebytes("Grüße aus Köln, <b>nicht</b> fett".encode()).replace(b"\n", b"\r\n")
    msg = (b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
           b"--a\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\n"
           b"an attached file\r\n"
           b"--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner text\r\n"
           b"--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/html; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 +
           b"--b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n--b--\r\n--a--\r\n")
    # The HTML alternative comes first; its markup (not its text) is removed.
    assert preview(msg) == "Grüße aus Köln, nicht fett"


def test_html_markup_scripts_and_entities() -> None:
    msg = (b"Content-Type: text/html\r\n\r\n<html><head><style>p {color: red}</style>"
           b"<script>alert(1)</script></head><body><p>Fish &amp;\r\n chips</p></body></html>")
    assert preview(msg) == "Fish & chips"


def test_length_cap_and_no_text() -> None:
    long = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "ü".encode() * 1000
    text = preview(long)
    assert text == "ü" * PREVIEW_CHARS
    assert preview(b"Content-Type: image/png\r\n\r\n\x89PNG") is None
    assert preview(b"Subject: empty\r\n\r\n") == ""
