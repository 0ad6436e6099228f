"""Transfer decoding for BINARY (duck/mime/transfer.py), RFC 2045 §6.7 and §6.8."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.mime.transfer import UnknownEncoding, decode_body, decode_quoted_printable

# imaptest's fetch-binary-mime-qp part: trailing whitespace, soft breaks ("=" and
# "= " with whitespace after it), escapes.
ENCODED = (b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\n"
           b"bar\r\nfoo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n")
DECODED = (b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\n"
           b"foo_bar\r\n")


def test_quoted_printable_follows_rfc2045() -> None:
    assert decode_quoted_printable(ENCODED) == DECODED
    assert len(DECODED) == 65  # what imaptest expects of BINARY.SIZE
    # Rule (4): a malformed escape is kept; a final line without a break stays so.
    assert decode_quoted_printable(b"a=zz=4\nb=41") == b"a=zz=4\nbA"
    assert decode_quoted_printable(b"x=\n") == b"x"


@given(st.binary(max_size=300))
def test_base64_and_qp_round_trip(data: bytes) -> None:
    assert decode_body(base64.encodebytes(data), "BASE64") == data
    # Every octet escaped: nothing for the decoder to strip.
    escaped = b"".join(b"=%02X" % b for b in data)
    assert decode_body(escaped, "quoted-printable") == data


def test_identity_and_unknown() -> None:
    assert decode_body(b"\x00 raw", "binary") == b"\x00 raw"
    with pytest.raises(UnknownEncoding):
        decode_body(b"", "x-uuencode")


def test_binary_parts_are_stored_base64() -> None:
    """RFC 3516 §4.3: a literal8 APPEND's parts with NUL octets are re-encoded as
    base64; decoding gives back the octets; everything else is unchanged."""
    from duck.mime.binary import encode_binary_parts

    octets = bytes(range(256)) * 3
    single = (b"From: a@example.org\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Transfer-Encoding: binary\r\n\r\n" + octets)
    out = encode_binary_parts(single)
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"\x00" not in out and b"Content-Transfer-Encoding: base64" in head
    assert b"binary" not in head and decode_body(body, "base64") == octets
    multi = (b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
             b"--x\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
             b"--x\r\nContent-Type: application/octet-stream\r\n\r\n" + octets +
             b"\r\n--x--\r\n")
    out = encode_binary_parts(multi)
    assert b"\x00" not in out and b"--x\r\nContent-Type: text/plain\r\n\r\nplain text\r\n" in out
    assert out.endswith(b"\r\n--x--\r\n")
    part = out.split(b"--x\r\n")[2]
    head, _, body = part.partition(b"\r\n\r\n")
    assert head.endswith(b"Content-Transfer-Encoding: base64")
    assert decode_body(body.removesuffix(b"\r\n--x--\r\n"), "base64") == octets
    assert encode_binary_parts(b"no nul here") == b"no nul here"
