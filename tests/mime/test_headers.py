"""Header decoding: RFC 2047 words, RFC 2045/2231 parameters, addresses, envelope."""

from __future__ import annotations

import datetime
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duck.mime import Address, parse_message
from duck.mime.addresses import _Tokens, parse_address_list
from duck.mime.envelope import build_envelope, message_ids, parse_date
from duck.mime.headers import (
    decode_header,
    parse_content_type,
    parse_disposition,
    parse_language,
    split_field,
    unfold,
)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b"=?iso-8859-1?q?caf=E9?=", "café"),
        (b"=?UTF-8?B?w6l0w6k=?=", "été"),
        (b"=?utf-8?b?w6l0w6k?=", "été"),  # missing padding
        (b"=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"),
        (b"=?windows-1252?Q?=80_price?=", "€ price"),
        (b"=?koi8-r?B?8NLJ18XU?=", "Привет"),
        (b"=?gb2312?B?1tDOxA==?=", "中文"),
        (b"=?utf-8*fr?q?ol=C3=A1?=", "olá"),  # RFC 2231 §5 language suffix
        # Whitespace between adjacent encoded words disappears (RFC 2047 §6.2).
        (b"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        (b"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"),
        (b"x =?utf-8?q?a?= y", "x a y"),
        # A multi-byte character split over two words still decodes.
        (b"=?utf-8?b?4g==?= =?utf-8?b?gqw=?=", "€"),
        (b"=?bogus-charset?q?ok?=", "ok"),
        (b"=?utf-8?q?broken", "=?utf-8?q?broken"),
        (b"plain \xc3\xa9 8-bit", "plain é 8-bit"),
        (
            b"Re: [list] =?UTF-8?Q?R=C3=A9union?= du =?ISO-8859-1?Q?lundi?=",
            "Re: [list] Réunion du lundi",
        ),
    ],
)
def test_rfc2047(raw: bytes, decoded: str) -> None:
    assert decode_header(raw) == decoded


@given(st.binary(max_size=200))
def test_decode_header_is_total(raw: bytes) -> None:
    assert isinstance(decode_header(raw), str)
    parse_content_type(raw)
    parse_disposition(raw)
    parse_address_list(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"text/plain", ("text", "plain", [])),
        (b' TEXT/HTML ; Charset="UTF-8"', ("text", "html", [("charset", "UTF-8")])),
        (
            b"text/plain; (comment) charset=us-ascii (more)",
            ("text", "plain", [("charset", "us-ascii")]),
        ),
        (b'application/x; name="a;b\\"c"', ("application", "x", [("name", 'a;b"c')])),
        (b"application/x; name*=iso-8859-1'en'%E9t%E9", ("application", "x", [("name", "été")])),
        (
            b'application/x; name*0="long "; name*1=file; name*2=".txt"',
            ("application", "x", [("name", "long file.txt")]),
        ),
        (
            b"application/x; name*1*=%A9; name*0*=utf-8''%C2",  # out of order
            ("application", "x", [("name", "©")]),
        ),
        (
            b"application/x; name=plain; name*=utf-8''%E2%82%AC",
            ("application", "x", [("name", "€")]),
        ),
        (b'multipart/mixed;\r\n\tboundary="=_x"', ("multipart", "mixed", [("boundary", "=_x")])),
        (b"text", None),
        (b"text/", None),
        (b"", None),
    ],
)
def test_content_type(raw: bytes, expected: object) -> None:
    assert parse_content_type(raw) == expected


def test_disposition_and_language() -> None:
    assert parse_disposition(b'Attachment; filename="a b.txt"; size=3') == (
        "attachment",
        [("filename", "a b.txt"), ("size", "3")],
    )
    assert parse_language(b"en, fr-CA (Canadian French)") == ["en", "fr-CA"]


_FOLDS = re.compile(rb"\r?\n(?=[ \t])")


@given(st.lists(st.sampled_from([b"a", b" ", b"\t", b"\r", b"\n", b"\r\n", b"x:y"]),
                max_size=20).map(b"".join))
def test_unfold_is_rfc5322_unfolding(raw: bytes) -> None:
    # (The fast path for one-line fields gives what the two substitutions give.)
    expected = re.sub(rb"[\r\n]+\Z", b"", _FOLDS.sub(b"", raw)).lstrip(b" \t")
    assert unfold(raw) == expected


def test_split_field() -> None:
    assert split_field(b"Subject: x\r\n") == ("subject", b" x\r\n")


A = Address


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a@b.c", [A(None, None, b"a", b"b.c")]),
        (b"Alice <alice@x.org>", [A(b"Alice", None, b"alice", b"x.org")]),
        (b'"Doe, John" <j@x>, k@y', [A(b"Doe, John", None, b"j", b"x"), A(None, None, b"k", b"y")]),
        (b'"quoted \\"q\\"" <q@x>', [A(b'quoted "q"', None, b"q", b"x")]),
        (
            b"john.q.public@example.com (John Q. Public)",
            [A(b"John Q. Public", None, b"john.q.public", b"example.com")],
        ),
        (b"John Q. Public <jqp@x>", [A(b"John Q. Public", None, b"jqp", b"x")]),
        (b"<@route1,@route2:user@host>", [A(None, b"@route1,@route2", b"user", b"host")]),
        (
            b"Team: a@x, B <b@y>;, c@z",
            [
                A(None, None, b"Team", None),
                A(None, None, b"a", b"x"),
                A(b"B", None, b"b", b"y"),
                A(None, None, None, None),
                A(None, None, b"c", b"z"),
            ],
        ),
        (
            b"undisclosed-recipients:;",
            [A(None, None, b"undisclosed-recipients", None), A(None, None, None, None)],
        ),
        (b"localonly", [A(None, None, b"localonly", b"")]),
        (b'"odd local"@x', [A(None, None, b'"odd local"', b"x")]),
        (b"=?utf-8?q?Ren=C3=A9?= <r@x>", [A(b"=?utf-8?q?Ren=C3=A9?=", None, b"r", b"x")]),
        (b"", []),
        (b",,,", []),
        (b"<>", []),
    ],
)
def test_address_lists(raw: bytes, expected: list[Address]) -> None:
    assert parse_address_list(raw) == expected


@given(st.lists(st.sampled_from([b"a", b"b.c", b" ", b"\t", b"\r\n ", b'"', b"\\", b"[",
                                 b"]", b"<", b">", b"@", b",", b";", b":", b".", b")",
                                 b"\xc3\xa9", b'"x y"']), max_size=25).map(b"".join))
def test_tokens_without_comments_scan_alike(value: bytes) -> None:
    # (A value without "(" is scanned by one finditer; the general scan, which
    # finds comments, must give the same tokens.)
    fast = _Tokens(value)
    slow = _Tokens(b"")
    slow._scan(value)
    assert fast.items == slow.items and not fast.comments


def test_envelope_defaults_sender_and_reply_to_to_from() -> None:
    fields = [
        ("from", b" Alice <a@x>\r\n"),
        ("sender", b" \r\n"),
        ("subject", b" =?utf-8?q?raw?=\r\n  folded\r\n"),
        ("message-id", b" <id@x>\r\n"),
    ]
    envelope = build_envelope(fields)
    assert envelope.sender == envelope.reply_to == envelope.from_
    assert envelope.subject == b"=?utf-8?q?raw?=  folded"
    assert envelope.message_id == b"<id@x>"
    assert envelope.to == [] and envelope.date is None and envelope.in_reply_to is None


def test_message_metadata() -> None:
    data = (
        b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <a@b>\r\n"
        b"In-Reply-To: <p@q>\r\nReferences: <r@s>\r\n <p@q> junk\r\n"
        b"Subject: =?utf-8?q?hi_there?=\r\n\r\n"
    )
    message = parse_message(data)
    assert message.date == datetime.datetime(
        1994, 2, 7, 21, 52, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=-8))
    )
    assert message.message_id == "<a@b>"
    assert message.in_reply_to == ["<p@q>"]
    assert message.references == ["<r@s>", "<p@q>"]
    assert message.subject == "hi there"
    assert message.header("subject") == ["hi there"]
    assert message_ids(None) == []


@pytest.mark.parametrize("raw", [b"", b"yesterday", b"Mon, 99 Foo 2025 99:99:99 +9999", b"\xff"])
def test_bad_dates_are_none(raw: bytes) -> None:
    assert parse_date(raw) is None


def test_date_without_zone_is_utc() -> None:
    parsed = parse_date(b"Tue, 1 Apr 2025 17:00:00 -0000")
    assert parsed == datetime.datetime(2025, 4, 1, 17, 0, tzinfo=datetime.UTC)
