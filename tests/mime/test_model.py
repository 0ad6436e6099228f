"""The MIME model is plain data: cattrs round-trips it (the store keeps it in BSON)."""

from __future__ import annotations

import datetime
from pathlib import Path

import cattrs

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
