"""The issue's "bad input" list: never raise, stay bounded, keep offsets exact."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import pytest

from duck.mime import (
    IndexedMessage,
    IndexerLimits,
    LargeBodyBytes,
    MessageIndexer,
    SectionSpec,
    SkeletonBytes,
    section_bytes,
)


def stream(chunks: Iterator[bytes], limits: IndexerLimits | None = None) -> IndexedMessage:
    """Index a chunk stream, checking reassembly incrementally (no whole copy kept)."""
    indexer = MessageIndexer(limits)
    fed = hashlib.sha256()
    out = hashlib.sha256()
    for chunk in chunks:
        fed.update(chunk)
        for event in indexer.feed(chunk):
            if isinstance(event, SkeletonBytes | LargeBodyBytes):
                out.update(event.data)
    events, message = indexer.close()
    for event in events:
        if isinstance(event, SkeletonBytes | LargeBodyBytes):
            out.update(event.data)
    assert out.digest() == fed.digest()
    return message


def check_offsets(message: IndexedMessage) -> None:
    for part in message.root.walk():
        assert 0 <= part.header_start <= part.header_end <= part.body_end <= message.size
        assert part.size == part.body_end - part.body_start


def index_both_ways(data: bytes, limits: IndexerLimits | None = None) -> IndexedMessage:
    whole = stream(iter([data]), limits)
    bytewise = stream((data[i : i + 7] for i in range(0, len(data), 7)), limits)
    assert whole == bytewise
    check_offsets(whole)
    return whole


def test_empty_input() -> None:
    message = index_both_ways(b"")
    assert message.size == 0
    assert message.root.section == (1,)
    assert message.root.mime_type == "text/plain"
    assert message.headers == [] and message.subject == "" and message.date is None


def test_header_only_no_separator() -> None:
    data = b"Subject: no body\r\nFrom: a@b.c"
    message = index_both_ways(data)
    assert message.subject == "no body"
    assert message.root.header_end == len(data) and message.root.size == 0


def test_body_without_blank_line_starts_at_first_non_header_line() -> None:
    data = b"Subject: x\r\nthis is not a header\r\nmore\r\n"
    message = index_both_ways(data)
    assert data[message.root.body_start :] == b"this is not a header\r\nmore\r\n"


def test_nul_bytes_everywhere() -> None:
    data = (
        b"Subject: a\x00b\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
        b"--z\r\nContent-Type: text/plain\r\n\r\n\x00\x00body\x00\r\n--z--\r\n"
    )
    message = index_both_ways(data)
    assert message.subject == "a\x00b"
    assert section_bytes(data, message, SectionSpec((1,))) == b"\x00\x00body\x00"


def test_bare_lf_offsets_exact() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n\n"
        b"one\ntwo\n--q\n\nthree\n--q--\n"
    )
    message = index_both_ways(data)
    assert section_bytes(data, message, SectionSpec((1,))) == b"one\ntwo"
    assert section_bytes(data, message, SectionSpec((2,))) == b"three"
    assert message.root.children[0].lines == 2


def test_mixed_line_ends() -> None:
    data = b"Content-Type: multipart/mixed; boundary=q\r\n\n--q\n\r\nbody\r\n--q--"
    message = index_both_ways(data)
    assert section_bytes(data, message, SectionSpec((1,))) == b"body"


def test_invalid_and_hostile_charsets() -> None:
    parts = []
    for charset in ["x-nonexistent", "zlib", "base64", "rot13", "idna", "unicode_escape", ""]:
        parts.append(
            f"--b\r\nContent-Type: text/plain; charset={charset}\r\n\r\ncaf\xe9 \\x41\r\n".encode(
                "latin-1"
            )
        )
    data = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"".join(parts) + b"--b--\r\n"
    message = index_both_ways(data)
    assert message.part_count == 8
    assert message.text.count("caf\ufffd \\x41") == 7


def test_subject_in_hostile_charset() -> None:
    data = b"Subject: =?zlib?b?eJzLSM3JyQcABiwCFQ==?= =?x-bogus?q?ok?=\r\n\r\n"
    message = index_both_ways(data)
    assert "ok" in message.subject
    assert "hello" not in message.subject  # zlib must not be applied


def test_eight_bit_headers() -> None:
    data = "Subject: Grüße aus Köln\r\nFrom: Jörg <jörg@exämple.de>\r\n\r\nbody\r\n".encode()
    latin = b"Subject: caf\xe9\r\n\r\n"
    message = index_both_ways(data)
    assert message.subject == "Grüße aus Köln"
    assert message.envelope.subject == "Grüße aus Köln".encode()
    assert message.envelope.from_[0].host == "exämple.de".encode()
    assert index_both_ways(latin).subject == "caf\ufffd"


def test_one_megabyte_header_line() -> None:
    big = b"X-Big: " + b"a" * (1 << 20) + b"\r\n"
    data = b"Subject: before\r\n" + big + b"Subject2: after\r\nContent-Type: text/html\r\n\r\nhi"
    limits = IndexerLimits(max_header_bytes=64 * 1024)
    message = stream(iter([data[i : i + 65536] for i in range(0, len(data), 65536)]), limits)
    check_offsets(message)
    assert message.truncated
    assert message.subject == "before"
    assert message.root.mime_type == "text/html"  # fields after the big one still parsed
    assert data[message.root.body_start :] == b"hi"
    assert [name for name, _ in message.headers] == ["subject", "subject2", "content-type"]


def test_one_megabyte_header_line_fed_bytewise_has_bounded_buffer() -> None:
    data = b"X-Big: " + b"b" * (1 << 20) + b"\r\n\r\nbody"
    indexer = MessageIndexer()
    peak = 0
    for i in range(0, len(data), 1000):
        indexer.feed(data[i : i + 1000])
        peak = max(peak, indexer.statistics().buffered)
    _, message = indexer.close()
    assert peak < 16 * 1024
    assert message.root.body_start == len(data) - 4


def test_ten_thousand_nested_multiparts() -> None:
    depth = 10_000
    head = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    )
    data = (
        b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
        + head
        + b"--b%d\r\n\r\nleaf\r\n" % depth
        + b"".join(b"--b%d--\r\n" % i for i in range(depth, -1, -1))
    )
    start = time.perf_counter()
    message = index_both_ways(data, IndexerLimits(max_depth=50))
    assert time.perf_counter() - start < 20
    assert message.truncated
    deepest = max(message.root.walk(), key=lambda part: len(part.section))
    assert len(deepest.section) == 50
    assert deepest.opaque and deepest.content_type == "multipart"
    # The opaque part's body runs to the delimiter of its parent, byte-exact.
    body = section_bytes(data, message, SectionSpec(deepest.section))
    assert body.startswith(b"--b50\r\n") and body.endswith(b"--b50--")


def test_ten_thousand_nested_multiparts_with_default_limits() -> None:
    depth = 10_000
    data = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    )
    message = index_both_ways(data)
    assert message.truncated
    assert max(len(part.section) for part in message.root.walk()) == IndexerLimits().max_depth


def test_ten_thousand_sibling_parts_capped() -> None:
    count = 10_000
    data = (
        b"Content-Type: multipart/mixed; boundary=s\r\n\r\n"
        + b"".join(b"--s\r\n\r\npart %d\r\n" % i for i in range(count))
        + b"--s--\r\n"
    )
    message = index_both_ways(data, IndexerLimits(max_parts=1000))
    assert message.truncated
    assert message.part_count == 1000
    assert len(message.root.children) == 999
    assert section_bytes(data, message, SectionSpec((999,))) == b"part 998"
    assert section_bytes(data, message, SectionSpec((1000,))) == b""


def test_nested_rfc822_depth_cap() -> None:
    data = b"Subject: leaf\r\n\r\nbody"
    for i in range(300):
        data = b"Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n" % i + data
    message = index_both_ways(data, IndexerLimits(max_depth=100))
    assert message.truncated
    assert max(len(p.section) for p in message.root.walk()) == 101


def test_boundary_in_header_ends_the_header() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/plain\r\n--x\r\nContent-Type: text/html\r\n\r\n<b>hi</b>\r\n"
        b"--x--\r\n"
    )
    message = index_both_ways(data)
    first, second = message.root.children
    assert first.size == 0 and first.mime_type == "text/plain"
    assert second.mime_type == "text/html"
    assert section_bytes(data, message, SectionSpec((2,))) == b"<b>hi</b>"


def test_boundary_lookalikes_are_body() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=abc\r\n\r\n--abc\r\n\r\n"
        b"--abcd\r\n--ab\r\n -- abc\r\n--abc-- trailing\r\n--abc \t\r\n\r\nsecond\r\n--abc--"
    )
    message = index_both_ways(data)
    assert len(message.root.children) == 2
    assert section_bytes(data, message, SectionSpec((1,))) == (
        b"--abcd\r\n--ab\r\n -- abc\r\n--abc-- trailing"
    )
    assert section_bytes(data, message, SectionSpec((2,))) == b"second"


def test_overlong_delimiter_padding_is_body() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\n\r\nx\r\n--p"
        + b" " * 5000
        + b"\r\ny\r\n--p--"
    )
    message = index_both_ways(data)
    assert len(message.root.children) == 1
    assert section_bytes(data, message, SectionSpec((1,))).endswith(b"\r\ny")


def test_multipart_without_boundary_is_opaque_leaf() -> None:
    data = b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nbody\r\n--x--\r\n"
    message = index_both_ways(data)
    assert message.root.opaque and message.root.children == []
    assert message.root.section == (1,)


def test_encoded_rfc822_is_opaque() -> None:
    data = (
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"U3ViamVjdDogeA0KDQp5\r\n"
    )
    message = index_both_ways(data)
    assert message.root.opaque and message.root.message is None


def test_truncated_in_the_middle_of_a_delimiter() -> None:
    data = b"Content-Type: multipart/mixed; boundary=long\r\n\r\n--long\r\n\r\nbody\r\n--lo"
    message = index_both_ways(data)
    assert section_bytes(data, message, SectionSpec((1,))) == b"body\r\n--lo"


def test_text_budget_caps_extracted_text() -> None:
    data = b"Content-Type: text/plain\r\n\r\n" + b"word " * 100_000
    message = index_both_ways(data, IndexerLimits(max_text_bytes=1000))
    assert len(message.text) == 1000
    assert message.truncated


@pytest.mark.parametrize("chunk", [1, 3, 4096, 65536])
def test_large_body_streams_with_bounded_buffer(chunk: int) -> None:
    threshold = 64 * 1024
    body_size = 4 * 1024 * 1024 if chunk >= 4096 else 300_000
    head = (
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n"
    )

    def chunks() -> Iterator[bytes]:
        yield head
        block = bytes(range(256)) * (chunk // 256 + 1)
        sent = 0
        while sent < body_size:
            piece = block[: min(chunk, body_size - sent)]
            sent += len(piece)
            yield piece
        yield b"\r\n--B--\r\n"

    indexer = MessageIndexer(IndexerLimits(large_body_threshold=threshold))
    peak = 0
    large = 0
    for piece in chunks():
        for event in indexer.feed(piece):
            if isinstance(event, LargeBodyBytes):
                large += len(event.data)
        peak = max(peak, indexer.statistics().buffered)
    _, message = indexer.close()
    assert peak <= threshold + chunk + 1024
    assert large == body_size
    (body,) = message.large_bodies
    assert body.section == (1,) and body.size == body_size and body.offset == len(head)
