"""BINARY of a multipart or an encapsulated message (duck/mime/binary.py): every
leaf decoded in place, the structure and every other octet kept (RFC 3516 §4.2,
RFC 2045 §6.4)."""

from __future__ import annotations

import pytest
from hypothesis import given

from duck.mime import parse_message, transfer
from duck.mime.binary import binary_body, binary_entity
from duck.mime.model import Part
from tests.mime.strategies import GeneratedMessage, mime_messages


def _leaves(root: Part) -> list[Part]:
    return [p for p in root.walk() if not p.is_multipart and p.message is None]


@given(mime_messages())
def test_every_leaf_is_decoded_where_it_was(generated: GeneratedMessage) -> None:
    data = generated.data
    before = parse_message(data)
    out = binary_entity(data, before.root)
    after = parse_message(out)
    old, new = _leaves(before.root), _leaves(after.root)
    assert [p.section for p in new] == [p.section for p in old]
    for was, now in zip(old, new, strict=True):
        body = transfer.decode_body(data[was.body_start:was.body_end], was.encoding)
        assert out[now.body_start:now.body_end] == body
        encoded = was.encoding.lower() not in transfer.IDENTITY
        assert now.encoding.lower() == ("binary" if encoded else was.encoding.lower())
        assert now.mime_type == was.mime_type
    # Nothing but the leaves changed: with no encoded leaf, the message is itself.
    if all(p.encoding.lower() in transfer.IDENTITY for p in old):
        assert out == data


@given(mime_messages())
def test_binary_of_a_part_is_its_slice_of_the_whole(generated: GeneratedMessage) -> None:
    """BINARY[n] of any part is the body of that part within BINARY[] (the same
    decoding, whether asked of the whole or of the part)."""
    data = generated.data
    root = parse_message(data).root
    whole = binary_entity(data, root)
    after = parse_message(whole).root
    by_section = {p.section: p for p in after.walk()}
    for part in root.walk():
        if part is root or part.section not in by_section:
            continue
        mine = by_section[part.section]
        if mine.mime_type != part.mime_type:
            continue  # (a message root shares its section with the rfc822 part)
        piece = data[part.body_start:part.body_end]
        assert binary_body(piece, part, part.body_start) == \
            whole[mine.body_start:mine.body_end]


def test_header_of_a_decoded_leaf_says_binary_once() -> None:
    message = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
               b"Content-Transfer-Encoding: base64\r\nContent-Type: text/plain\r\n"
               b"content-transfer-encoding:\r\n  quoted-printable\r\n\r\naGk=\r\n--b--\r\n")
    root = parse_message(message).root
    assert binary_entity(message, root) == (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nhi\r\n"
        b"--b--\r\n")


def test_an_unknown_encoding_inside_is_an_error() -> None:
    message = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
               b"Content-Transfer-Encoding: x-gzip\r\n\r\nzz\r\n--b--\r\n")
    root = parse_message(message).root
    with pytest.raises(transfer.UnknownEncoding):
        binary_entity(message, root)
