"""``python -m bench.soak --minutes N``: see bench/soak/__init__.py."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path

import trio

from .run import Options, run

ROOT = Path(__file__).resolve().parent.parent


def _print(result: dict) -> None:
    print(f"\nsoak: {result['minutes']} min (seed {result['seed']}), "
          f"{result['seconds']} s, {result['checkpoints']} checkpoints")
    for title, key in (("operations (acknowledged)", "operations"),
                       ("operations (outcome unknown)", "operations_unknown_outcome"),
                       ("faults", "faults"), ("violations", "violations")):
        items = result[key]
        print(f"{title}: {sum(items.values())}")
        for name, count in items.items():
            print(f"  {count:8d}  {name}")
            for detail in result["violation_details"].get(name, []) if key == "violations" else []:
                print(f"            - {detail}")


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so the processes are stopped.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the soak; exit status 1 when any invariant was violated."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="load duration")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed)")
    parser.add_argument("--fault-interval", type=float, default=None,
                        help="mean seconds between faults (default: from --minutes, <= 20)")
    parser.add_argument("--checkpoint-interval", type=float, default=None,
                        help="seconds between checkpoints (default: max(30, duration/10))")
    parser.add_argument("--min-faults", type=int, default=None,
                        help="go on past --minutes until this many faults (default: "
                             "max(3, 2/3 per minute))")
    parser.add_argument("--op-timeout", type=float, default=45.0,
                        help="seconds before an operation's outcome counts as unknown")
    parser.add_argument("--imap-clients", type=int, default=2, help="IMAP clients per user")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "soak.json")
    args = parser.parse_args(argv)
    opts = Options.defaults(args.minutes, args.seed, args.fault_interval,
                            args.checkpoint_interval, args.min_faults)
    opts.imap_clients = args.imap_clients
    opts.op_timeout = args.op_timeout
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="duck-soak-") as tmp:
        result = trio.run(run, opts, Path(tmp))
    _print(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    return 1 if result["violations_total"] else 0


if __name__ == "__main__":
    sys.exit(main())
