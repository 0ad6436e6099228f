"""The MIME model is plain data: cattrs round-trips it (the store keeps it in BSON)."""

from __future__ import annotations

import datetime
from pathlib import Path

import cattrs
from hypothesis import given
from hypothesis import strategies as st

from duck.mime import BodyStructure, IndexedMessage, IndexerLimits, body_structure, parse_message
from duck.mime.textextract import strip_html

CORPUS = Path(__file__).parent / "corpus"


def converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_unstructure_hook(datetime.datetime, lambda value: value.isoformat())
    conv.register_structure_hook(
        datetime.datetime, lambda value, _: datetime.datetime.fromisoformat(value)
    )
    return conv


def test_indexed_message_and_body_structure_round_trip_through_cattrs() -> None:
    conv = converter()
    for path in sorted(CORPUS.glob("*.eml")):
        message = parse_message(path.read_bytes(), IndexerLimits(large_body_threshold=100))
        plain = conv.unstructure(message)
        assert conv.structure(plain, IndexedMessage) == message
        structure = body_structure(message)
        assert conv.structure(conv.unstructure(structure), BodyStructure) == structure


def test_strip_html() -> None:
    markup = (
        "<html><head><style>p{x:1}</style><script type=x>var a='<b>';</script></head>"
        "<body><p>Hello&nbsp;<b>wor</b>ld</p><!-- hidden -->\n\n\n<p>2 &lt; 3</p></body></html>"
    )
    assert strip_html(markup) == "Hello\xa0 wor ld \n\n 2 < 3"
    assert strip_html("a <!-- never closed") == "a"
    assert strip_html("<script>never closed") == ""
    # A tag without a name is a tag (it raised IndexError, failing the delivery).
    assert strip_html("a < > b <> c <\n>d") == "a b c d"


@given(st.lists(st.sampled_from(["<", ">", " ", "\n", "\t", "<!--", "-->", "script", "style",
                                 "</", "/", "a", "&amp;", "&#", ";", "\xa0", "İ"]),
                max_size=30).map("".join))
def test_strip_html_is_total(markup: str) -> None:
    # (Every HTML part of every message goes through it: it must never raise.)
    text = strip_html(markup)
    assert "<" not in text or "&" in markup or "<" in markup
    assert text == text.strip()


def test_html_part_with_a_nameless_tag_is_indexed() -> None:
    raw = (b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n"
           b"<p>if a < > b then</p>\r\n")
    message = parse_message(raw)
    assert message.text == "if a b then"
