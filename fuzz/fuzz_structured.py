"""atheris target over the Hypothesis strategies of tests/imap/grammar/strategies.py:
generated commands and responses must survive serialize → parse unchanged, and
any mutation of their bytes must parse or raise ImapProtocolError only.

    python fuzz/fuzz_structured.py CORPUS_DIR -max_total_time=600
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["duck"]):
    import duck.imap.grammar as g

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.imap.grammar import strategies as gs


@settings(database=None, suppress_health_check=list(HealthCheck), deadline=None)
@given(gs.commands, gs.responses, st.binary(max_size=8), st.integers(0, 10_000), st.booleans())
def round_trip(cmd: g.Command, resp: g.Response, noise: bytes, where: int, utf8: bool) -> None:
    """decode(encode(v)) == v for both directions, and totality on a mutation."""
    wire = g.serialize_command(cmd, literal_plus=True, utf8=utf8)
    assert g.parse_command(wire[:-2], utf8=utf8) == cmd
    rwire = g.serialize(resp, utf8=utf8)
    assert g.parse_response(rwire, utf8=utf8, sasl=isinstance(resp, g.SaslChallenge)) == resp
    for data in (wire, rwire):
        pos = where % len(data)
        mutated = data[:pos] + noise + data[pos + len(noise) :]
        try:
            g.parse_command(mutated[:-2])
        except g.ImapProtocolError:
            pass
        try:
            g.parse_response(mutated)
        except g.ImapProtocolError:
            pass


def main() -> None:
    """Run atheris over the Hypothesis-driven target."""
    atheris.Setup(sys.argv, round_trip.hypothesis.fuzz_one_input)  # type: ignore[attr-defined]
    atheris.Fuzz()


if __name__ == "__main__":
    main()
