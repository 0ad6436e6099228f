"""Properties of the streaming indexer over generated MIME trees."""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import hashlib

from hypothesis import given
from hypothesis import strategies as st

from duck.mime import (
    IndexedMessage,
    IndexerLimits,
    LargeBodyBytes,
    LargeBodyEnd,
    LargeBodyStart,
    MessageIndexer,
    SectionSpec,
    SkeletonBytes,
    parse_message,
    section_bytes,
)
from tests.mime.strategies import GeneratedMessage, chunkings, mime_messages, split


def index_chunks(
    chunks: list[bytes], limits: IndexerLimits | None = None
) -> tuple[list[object], IndexedMessage]:
    indexer = MessageIndexer(limits)
    events: list[object] = []
    for chunk in chunks:
        events.extend(indexer.feed(chunk))
    tail, message = indexer.close()
    events.extend(tail)
    return events, message


def reassemble(events: list[object]) -> bytes:
    return b"".join(
        event.data for event in events if isinstance(event, SkeletonBytes | LargeBodyBytes)
    )


def python_entities(data: bytes) -> list[email.message.Message]:
    parsed = email.message_from_bytes(data, policy=email.policy.compat32)
    return list(parsed.walk())


def python_params(entity: email.message.Message) -> list[tuple[str, str]]:
    params = entity.get_params() or []
    out = []
    for name, value in params[1:]:
        out.append((name, email.utils.collapse_rfc2231_value(value)))
    return out


@given(mime_messages())
def test_parts_match_generator_and_email_package(generated: GeneratedMessage) -> None:
    message = parse_message(generated.data)
    ours = message.root.walk()
    theirs = python_entities(generated.data)
    assert len(ours) == len(generated.parts) == len(theirs)
    for part, expected, entity in zip(ours, generated.parts, theirs, strict=True):
        assert part.section == expected.section
        assert part.mime_type == expected.mime_type == entity.get_content_type()
        assert part.params == list(expected.params)
        if expected.mime_type.startswith("multipart/"):
            assert ("boundary", entity.get_boundary()) in part.params
        else:
            # Python moves RFC 2231 parameters to the end; order carries no meaning.
            assert sorted(part.params) == sorted(python_params(entity))
        if expected.body is not None:
            body = section_bytes(generated.data, message, SectionSpec(part.section))
            assert body == expected.body
            # compat32's get_payload() decodes 8-bit text; the raw payload is kept here.
            payload = entity._payload  # type: ignore[attr-defined]
            assert body == payload.encode("ascii", "surrogateescape")
            assert part.size == len(body)
            assert part.lines == body.count(b"\n") + (1 if body and body[-1:] != b"\n" else 0)
            if expected.text is not None and ("charset", "utf-8") in expected.params:
                assert expected.text in message.text
    assert message.size == len(generated.data)


@given(mime_messages(), st.data(), st.sampled_from([0, 1, 50, 300, 64 * 1024]))
def test_streaming_invariants_under_any_chunking(
    generated: GeneratedMessage, data: st.DataObject, threshold: int
) -> None:
    limits = IndexerLimits(large_body_threshold=threshold)
    cuts = data.draw(chunkings(len(generated.data)))
    events, message = index_chunks(split(generated.data, cuts), limits)
    assert reassemble(events) == generated.data
    _whole_events, whole = index_chunks([generated.data], limits)
    assert message == whole
    # Large-body events bracket exactly the leaf bodies above the threshold.
    large = []
    current: tuple[tuple[int, ...], int] | None = None
    collected = b""
    offset = 0
    for event in events:
        if isinstance(event, LargeBodyStart):
            assert current is None
            assert event.offset == offset
            current, collected = (event.section, event.offset), b""
        elif isinstance(event, LargeBodyBytes):
            assert current is not None
            collected += event.data
            offset += len(event.data)
        elif isinstance(event, LargeBodyEnd):
            assert current is not None and event.section == current[0]
            assert event.size == len(collected)
            assert event.sha256 == hashlib.sha256(collected).hexdigest()
            assert generated.data[current[1] : current[1] + event.size] == collected
            large.append((event.section, current[1], event.size, event.sha256))
            current = None
        else:
            assert isinstance(event, SkeletonBytes) and current is None
            offset += len(event.data)
    assert current is None
    leaves_over = [
        (part.section, part.body_start, part.size)
        for part in message.root.walk()
        if not part.children and part.message is None and part.size > threshold
    ]
    assert [(s, o, n) for s, o, n, _ in large] == leaves_over
    assert [(b.section, b.offset, b.size, b.sha256) for b in message.large_bodies] == large


@given(st.binary(max_size=400), st.data())
def test_any_bytes_index_and_reassemble(data: bytes, draw: st.DataObject) -> None:
    cuts = draw.draw(chunkings(len(data)))
    limits = IndexerLimits(large_body_threshold=draw.draw(st.sampled_from([0, 8, 1000])))
    events, message = index_chunks(split(data, cuts), limits)
    assert reassemble(events) == data
    assert message.size == len(data)
    for part in message.root.walk():
        assert 0 <= part.header_start <= part.header_end <= part.body_end <= len(data)


_MIME_ALPHABET = st.sampled_from(
    [
        b"--b",
        b"--b--",
        b"\r\n",
        b"\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"\r\n\r\n",
        b"x",
        b"-",
        b":",
        b" ",
        b"\x00",
        b'Content-Type: multipart/digest; boundary="b"\n',
        b"=?utf-8?b?w6k=?=",
    ]
)


@given(st.lists(_MIME_ALPHABET, max_size=60).map(b"".join), st.data())
def test_mime_shaped_noise_indexes_consistently(data: bytes, draw: st.DataObject) -> None:
    cuts = draw.draw(chunkings(len(data)))
    limits = IndexerLimits(large_body_threshold=4)
    events, message = index_chunks(split(data, cuts), limits)
    assert reassemble(events) == data
    _, whole = index_chunks([data], limits)
    assert message == whole
    for part in message.root.walk():
        assert 0 <= part.header_start <= part.header_end <= part.body_end <= len(data)
