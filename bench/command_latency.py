"""Average latency per IMAP command type of a running duck, from its ``/metrics``.

    python -m bench.command_latency save http://127.0.0.1:18080 before.json
    ... load ...
    python -m bench.command_latency diff http://127.0.0.1:18080 before.json

``save`` keeps the sums and counts of ``duck_command_seconds`` (the latency
histogram every IMAP command is observed in: duck/observe.py); ``diff`` prints, per
command type, the commands run since and their average latency, and each type's
share of all the time commands took. bench/side_by_side.sh prints it for each
persistent round: under load a client waits mostly on the writes (APPEND, STORE,
EXPUNGE), which no CPU figure shows.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

_SERIES = re.compile(
    r'duck_command_seconds_(sum|count)\{command="([^"]+)",protocol="imap"\} (\S+)')


def snapshot(url: str) -> dict[str, dict[str, float]]:
    """Per command type, the ``sum`` and ``count`` of its latency histogram."""
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=10) as reply:
        text = reply.read().decode()
    out: dict[str, dict[str, float]] = {}
    for kind, command, value in _SERIES.findall(text):
        out.setdefault(command, {})[kind] = float(value)
    return out


def report(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> str:
    """The lines ``diff`` prints: commands, average latency and share, per type."""
    rows = []
    for command, now in after.items():
        then = before.get(command, {})
        n = now.get("count", 0.0) - then.get("count", 0.0)
        seconds = now.get("sum", 0.0) - then.get("sum", 0.0)
        if n > 0:
            rows.append((command, n, seconds))
    total = sum(s for _, _, s in rows) or 1.0
    lines = [f"  {c:<10} {n:7.0f} commands  avg {1000 * s / n:7.2f} ms  "
             f"{100 * s / total:5.1f}% of the time"
             for c, n, s in sorted(rows, key=lambda r: -r[2])]
    count = sum(n for _, n, _ in rows)
    if count:
        lines.append(f"  all        {count:7.0f} commands  avg {1000 * total / count:7.2f} ms")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``save URL FILE`` or ``diff URL FILE``."""
    if len(argv) != 3 or argv[0] not in ("save", "diff"):
        print(__doc__, file=sys.stderr)
        return 2
    verb, url, path = argv
    now = snapshot(url)
    if verb == "save":
        Path(path).write_text(json.dumps(now))
    else:
        print(report(json.loads(Path(path).read_text()), now))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
