"""``python -m bench --quick`` keeps working: it exits 0 and writes every scenario.

No timing is asserted (CI machines vary); this only keeps the harness alive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_runs_every_scenario(tmp_path: Path) -> None:
    from bench.scenarios import SCENARIOS

    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["scenarios"]) == set(SCENARIOS)
    for name, scenario in results["scenarios"].items():
        assert "seconds" in scenario, name
    assert "UID FETCH" in results["round_trips_per_command"]
    assert "UID SEARCH" in results["round_trips_per_command"]
    # The load scenario: every run produced figures (commands, CPU, round trips).
    load = results["scenarios"]["load"]
    for name, run in load["runs"].items():
        assert "error" not in run, (name, run.get("error"))
        assert run["commands"] > 0, name
        assert "duck_ms_per_op" in run["cpu"], name
        assert run["round_trips"], name
    assert any(run["deliveries"] > 0 for run in load["runs"].values())


def test_imaptest_suite_gives_urlauth2_its_messages() -> None:
    """bench.imaptest_suite adds ``messages: 2`` to urlauth2's header (the lines
    before the first empty one), never to its commands, and not twice."""
    from bench.imaptest_suite import urlauth2_with_messages

    stock = ("capabilities: urlauth\nconnections: 2\nuser 2: $user2\n\n"
             "1 ok fetch 1:2 (uid body[])\n* 1 fetch (uid $uid1 body[] $body1)\n")
    fixed = urlauth2_with_messages(stock)
    header, _, commands = fixed.partition("\n\n")
    assert header.splitlines() == ["capabilities: urlauth", "connections: 2",
                                   "user 2: $user2", "messages: 2"]
    assert commands == stock.partition("\n\n")[2]
    assert urlauth2_with_messages(fixed) == fixed
