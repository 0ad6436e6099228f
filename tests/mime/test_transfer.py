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
