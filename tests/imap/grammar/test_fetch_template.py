"""The fast FETCH serializer (FetchTemplate) and pre-encoded values give the bytes
of the general serializer, and refuse what it refuses."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import duck.imap.grammar as g
from duck.imap.grammar.encode import LiteralBody
from duck.imap.grammar.resp_fetch import FetchRows, FetchTemplate, preencoded, render

from . import strategies as gs

relaxed = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PRE = (g.FetchAttr.ENVELOPE, g.FetchAttr.BODY, g.FetchAttr.BODYSTRUCTURE)


@relaxed
@given(gs.fetch_data(), st.booleans(), st.booleans())
def test_template_row_is_the_general_serialization(
        data: g.FetchData, utf8: bool, pre: bool) -> None:
    keys = tuple(k for k, _ in data.items)
    values = [preencoded(k, render(k, v, utf8=utf8)) if pre and k in PRE else v
              for k, v in data.items]
    if len(set(keys)) != len(keys):
        return
    template = FetchTemplate(keys, utf8=utf8)
    expected = g.serialize(data, utf8=utf8)
    assert template.row(data.seq, values) + b"\r\n" == expected
    # The FetchData of pre-encoded values serializes the same too.
    assert g.serialize(g.FetchData(data.seq, tuple(zip(keys, values, strict=True))),
                       utf8=utf8) == expected


@relaxed
@given(gs.envelopes, st.booleans())
def test_preencoded_envelope_parses_back(env: g.Envelope, utf8: bool) -> None:
    data = render(g.FetchAttr.ENVELOPE, env, utf8=utf8)
    value = preencoded(g.FetchAttr.ENVELOPE, data)
    line = g.serialize(g.FetchData(1, ((g.FetchAttr.ENVELOPE, value),)), utf8=utf8)
    assert line.startswith(b"* 1 FETCH (ENVELOPE ")


def test_preencoded_refuses_what_render_did_not_make() -> None:
    env = render(g.FetchAttr.ENVELOPE, g.Envelope(subject=b"a (b"))
    assert preencoded(g.FetchAttr.ENVELOPE, env).data == (
        b'(NIL "a (b" NIL NIL NIL NIL NIL NIL NIL NIL)')
    damaged = env[:-2] + b"x)"
    for bad in (b"", b"(NIL)", env[7:], env[:-1], damaged, env + b" x", env[:7]):
        with pytest.raises(ValueError):
            preencoded(g.FetchAttr.ENVELOPE, bad)
    with pytest.raises(ValueError):
        preencoded(g.FetchAttr.UID, b"(1)")
    value = preencoded(g.FetchAttr.ENVELOPE, env)
    with pytest.raises(ValueError):  # an envelope is no BODYSTRUCTURE
        g.FetchData(1, ((g.FetchAttr.BODYSTRUCTURE, value),))
    with pytest.raises(ValueError):
        FetchTemplate((g.FetchAttr.BODY,)).row(1, [value])


def test_template_validates_values() -> None:
    t = FetchTemplate((g.FetchAttr.UID, g.FetchAttr.FLAGS, g.FetchAttr.INTERNALDATE))
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert t.row(3, [7, ("\\seen", "$x"), when]) == (
        b'* 3 FETCH (UID 7 FLAGS (\\Seen $x) INTERNALDATE " 2-Jan-2024 03:04:05 +0000")')
    for values in ([-1, (), when], [True, (), when], [1, ("a b",), when],
                   [1, (), dt.datetime(2024, 1, 1)], [1, ()]):
        with pytest.raises(ValueError):
            t.row(1, values)
    with pytest.raises(ValueError):
        t.row(0, [1, (), when])
    block = FetchTemplate.block([t.row(1, [1, (), when]), t.row(2, [2, (), when])])
    assert g.serialize(block).count(b"\r\n") == 2  # type: ignore[arg-type]


@relaxed
@given(st.lists(gs.fetch_data(), min_size=1, max_size=6), st.booleans(),
       st.sets(st.integers(0, 5)))
def test_rows_are_the_general_serialization_in_order(
        many: list[g.FetchData], utf8: bool, streamed: set[int]) -> None:
    """FetchRows gives each message's response as FetchData would, in the order
    added, whatever keys each has; a streamed literal's response stays FetchData."""
    rows = FetchRows(utf8=utf8)
    expected: list[bytes | LiteralBody] = []
    for i, data in enumerate(many):
        items = list(data.items)
        if i in streamed:
            key = g.BodySection(peek=False)
            items = [*items, (key.response_key(), LiteralBody(3, source=lambda: iter(())))]
        if len({k for k, _ in items}) != len(items):
            continue
        rows.add(data.seq, items)
        expected += list(g.serialize_chunks(g.FetchData(data.seq, tuple(items)), utf8=utf8))
    got: list[bytes | LiteralBody] = []
    for response in rows.take():
        got += list(g.serialize_chunks(response, utf8=utf8))  # type: ignore[arg-type]
    assert _joined(got) == _joined(expected)
    assert rows.take() == []


def _joined(chunks: list[bytes | LiteralBody]) -> list[bytes | int]:
    """The chunks with runs of bytes joined and each streamed literal as its size."""
    out: list[bytes | int] = []
    for chunk in chunks:
        if isinstance(chunk, LiteralBody):
            out.append(chunk.size)
        elif out and isinstance(out[-1], bytes):
            out[-1] += chunk
        else:
            out.append(chunk)
    return out
