"""RFC 3501 §6.4.5 section specifiers resolved to byte ranges."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.mime import (
    HEADER,
    HEADER_FIELDS,
    HEADER_FIELDS_NOT,
    MIME,
    TEXT,
    SectionSpec,
    filter_header_fields,
    join_header_fields,
    parse_message,
    section_bytes,
    section_range,
    split_header_fields,
)

CORPUS = Path(__file__).parent / "corpus"
FORWARDED = (CORPUS / "forwarded_rfc822.eml").read_bytes()
FORWARDED_MSG = parse_message(FORWARDED)

SIMPLE = b"Subject: hi\r\nContent-Type: text/plain\r\n\r\nline 1\r\nline 2\r\n"
SIMPLE_MSG = parse_message(SIMPLE)


def fetch(data: bytes, part: tuple[int, ...] = (), text: str | None = None, **kw: object) -> bytes:
    message = parse_message(data)
    return section_bytes(data, message, SectionSpec(part, text, **kw))  # type: ignore[arg-type]


def test_whole_header_and_text_of_a_simple_message() -> None:
    assert fetch(SIMPLE) == SIMPLE
    assert fetch(SIMPLE, text=HEADER) == b"Subject: hi\r\nContent-Type: text/plain\r\n\r\n"
    assert fetch(SIMPLE, text=TEXT) == b"line 1\r\nline 2\r\n"


def test_part_one_of_a_non_multipart_message_is_its_body() -> None:
    assert fetch(SIMPLE, (1,)) == b"line 1\r\nline 2\r\n"
    # BODY[1.MIME] of a non-multipart message: the header holding its MIME fields.
    assert fetch(SIMPLE, (1,), MIME) == b"Subject: hi\r\nContent-Type: text/plain\r\n\r\n"
    assert fetch(SIMPLE, (2,)) == b""
    assert fetch(SIMPLE, (1, 1)) == b""
    assert fetch(SIMPLE, (1,), HEADER) == b""  # HEADER only applies to message/rfc822


def test_multipart_sections() -> None:
    text = section_bytes(FORWARDED, FORWARDED_MSG, SectionSpec((1,)))
    assert text == b"See the forwarded message below."
    mime = section_bytes(FORWARDED, FORWARDED_MSG, SectionSpec((1,), MIME))
    assert mime == b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    csv = section_bytes(FORWARDED, FORWARDED_MSG, SectionSpec((3,)))
    assert csv == b"a,b,c\r\n1,2,3"
    assert section_range(FORWARDED_MSG, SectionSpec((4,))) is None
    assert section_range(FORWARDED_MSG, SectionSpec((1, 1))) is None


def test_message_rfc822_sections() -> None:
    whole_inner = section_bytes(FORWARDED, FORWARDED_MSG, SectionSpec((2,)))
    assert whole_inner.startswith(b"From: Carol <carol@example.net>\r\n")
    assert whole_inner.endswith(b"--inner--\r\n")
    header = section_bytes(FORWARDED, FORWARDED_MSG, SectionSpec((2,), HEADER))
    assert header.startswith(b"From: Carol") and header.endswith(b'boundary="inner"\r\n\r\n')
    text = section_bytes(FORWARDED, FORWARDED_MSG, SectionSpec((2,), TEXT))
    assert whole_inner == header + text
    mime = section_bytes(FORWARDED, FORWARDED_MSG, SectionSpec((2,), MIME))
    assert mime == b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
    inner_text = section_bytes(FORWARDED, FORWARDED_MSG, SectionSpec((2, 1)))
    assert inner_text == "Numbers attached. \u2013 Carol".encode()
    pdf_mime = section_bytes(FORWARDED, FORWARDED_MSG, SectionSpec((2, 2), MIME))
    assert pdf_mime.startswith(b'Content-Type: application/pdf; name="q1.pdf"\r\n')
    assert section_range(FORWARDED_MSG, SectionSpec((2, 3))) is None
    assert section_range(FORWARDED_MSG, SectionSpec((2, 1), HEADER)) is None


def test_rfc822_with_non_multipart_inner_message() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--o--\r\n"
    )
    assert fetch(data, (1,)) == b"Subject: inner\r\n\r\ninner body"
    assert fetch(data, (1, 1)) == b"inner body"
    assert fetch(data, (1,), TEXT) == b"inner body"
    assert fetch(data, (1,), HEADER) == b"Subject: inner\r\n\r\n"
    assert fetch(data, (1, 1), MIME) == b"Subject: inner\r\n\r\n"
    assert fetch(data, (1, 2)) == b""


def test_top_level_message_rfc822() -> None:
    data = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody"
    assert fetch(data, (1,)) == b"Subject: in\r\n\r\nbody"
    assert fetch(data, (1, 1)) == b"body"
    assert fetch(data, (1,), HEADER) == b"Subject: in\r\n\r\n"


def test_header_fields_and_not() -> None:
    header = b"From: a@b.c\r\nSubject: folded\r\n  subject line\r\nTO: x@y.z\r\nX-Other: 1\r\n\r\n"
    only = filter_header_fields(header, ["subject", "to"], negate=False)
    assert only == b"Subject: folded\r\n  subject line\r\nTO: x@y.z\r\n\r\n"
    rest = filter_header_fields(header, ["Subject", "TO"], negate=True)
    assert rest == b"From: a@b.c\r\nX-Other: 1\r\n\r\n"
    assert filter_header_fields(header, ["absent"], negate=False) == b"\r\n"
    lf = filter_header_fields(b"A: 1\nB: 2\n\n", ["b"], negate=False)
    assert lf == b"B: 2\n\n"


def _filter_line_by_line(header: bytes, names: list[str], negate: bool) -> bytes:
    """An independent reading of the rule (RFC 3501 §6.4.5 HEADER.FIELDS): walk the
    lines, a field's continuation lines go with it, the blank line ends the block."""
    wanted = {n.lower().encode("latin-1") for n in names}
    out, keep, terminator = b"", False, b"\r\n"
    lines = header.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break
        if not last:
            line += b"\n"
        if line in (b"\r\n", b"\n"):
            terminator = line
            break
        if line[:1] in (b" ", b"\t"):
            out += line if keep else b""
            continue
        name = line.partition(b":")[0].strip().decode("latin-1").lower().encode("latin-1")
        keep = (name in wanted) != negate
        if keep:
            out += line + (b"\r\n" if last else b"")
    return out + terminator


_HEADER_LINES = st.lists(st.one_of(
    st.sampled_from([b"Subject: s", b"TO: x", b"from:a", b" folded", b"\tmore", b"X-\xe9: 1",
                     b"Bad line", b"", b"subject : spaced"]),
    st.binary(max_size=12)), max_size=8)


@given(lines=_HEADER_LINES, ending=st.sampled_from([b"\r\n", b"\n"]),
       tail=st.sampled_from([b"", b"\r\n", b"\n", b"\r\n\r\nbody"]),
       names=st.lists(st.sampled_from(["subject", "To", "FROM", "x-\xe9", "absent"]),
                      max_size=3),
       negate=st.booleans())
def test_split_then_join_is_the_line_by_line_filter(
        lines: list[bytes], ending: bytes, tail: bytes, names: list[str],
        negate: bool) -> None:
    """``filter_header_fields`` (a split kept for reuse, then a join per name list)
    gives the bytes of the line-by-line reading for any header block, folded,
    LF-only, unterminated or ending in the blank line."""
    header = ending.join(lines) + tail
    split = split_header_fields(header)
    want = _filter_line_by_line(header, names, negate)
    assert filter_header_fields(header, names, negate) == want
    assert join_header_fields(split, names, negate) == want
    # (The split does not depend on the names: the same one serves every list.)
    assert join_header_fields(split, names, not negate) == _filter_line_by_line(
        header, names, not negate)


def test_header_fields_through_section_bytes() -> None:
    got = section_bytes(
        FORWARDED, FORWARDED_MSG, SectionSpec((2,), HEADER_FIELDS, ("subject", "from"))
    )
    assert got == b"From: Carol <carol@example.net>\r\nSubject: Quarterly report\r\n\r\n"
    not_got = section_bytes(
        FORWARDED, FORWARDED_MSG, SectionSpec((), HEADER_FIELDS_NOT, ("return-path",))
    )
    assert not_got.startswith(b"From: Bob <bob@example.org>\r\n")
    assert b"Return-Path" not in not_got


def test_section_spec_validation() -> None:
    with pytest.raises(ValueError):
        SectionSpec((0,))
    with pytest.raises(ValueError):
        SectionSpec((), MIME)
    with pytest.raises(ValueError):
        SectionSpec((1,), "BOGUS")
