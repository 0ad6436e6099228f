"""The fault-injection soak (bench/soak) for one minute: two ``duck serve``
processes on one embedded database under IMAP, LMTP, API, SSE and IDLE load,
with at least three SIGKILLs of a process or the database, and no invariant
violated (nothing acknowledged lost or repeated, counters, quota and references
as recounted, every SSE change once and in order, IDLE views as a fresh SELECT).

A real run of ~1.3 minutes on two cores: the soak counts its minute from the
start of the processes, then verifies.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_minute_soak_violates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        # Verified at the end only, and operations given up after 20 s: a write
        # behind a transaction a killed process left open waits up to a minute,
        # which a checkpoint (waiting for the load to park) would wait for too.
        [sys.executable, "-m", "bench.soak", "--minutes", "1", "--min-faults", "3",
         "--fault-interval", "9", "--checkpoint-interval", "600", "--op-timeout", "20",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    report = proc.stdout[-4000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["violations"] == {}, report
    assert proc.returncode == 0, report
    assert sum(result["faults"].values()) >= 3, result["faults"]
    ops = result["operations"]
    for kind in ("APPEND", "LMTP", "MOVE", "COPY", "EXPUNGE", "STORE", "IDLE", "SSE event",
                 "API flags"):
        assert ops.get(kind, 0) > 0, (kind, ops)
    assert result["checkpoints"] >= 1
