"""``python -m bench``: the whole benchmark in one command (see bench/README.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import trio

from duck.store import metrics

from . import harness, report
from .scenarios import SCENARIOS

DEFAULT_OUT = Path(__file__).parent / "results" / "bench.json"
#: 100k does not fit the 15-minute budget on the embedded database today (a
#: substring SEARCH scans ~1-2k messages/s): run it with --sizes 1000,10000,100000.
DEFAULT_SIZES = "1000,10000"
QUICK_SIZES = "50,200"


def parse_args(argv: list[str] | None = None) -> harness.Settings:
    """Settings from the command line."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, every scenario, seconds not minutes (CI)")
    p.add_argument("--sizes", help=f"mailbox sizes (default {DEFAULT_SIZES}; "
                                    f"quick {QUICK_SIZES})")
    p.add_argument("--mongo-uri", help="use this MongoDB instead of an embedded server")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--seed-messages", type=int,
                   help="distinct generated messages (default 2000; quick 40)")
    p.add_argument("--connections", help="idle connection counts for the memory scenario "
                                         "(default 1000,10000; quick 20,100)")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="keep the embedded database and the loaded corpus in DIR and "
                        "reuse them on the next run with the same DIR (no reload)")
    p.add_argument("--search-keys", metavar="PREFIXES",
                   help="search scenario: only the lines whose names start with one of "
                        "these (comma-separated, e.g. sort,thread)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenarios: {', '.join(unknown)}")
    quick = args.quick
    sizes = [int(x) for x in (args.sizes or (QUICK_SIZES if quick else DEFAULT_SIZES)).split(",")]
    conns = args.connections or ("20,100" if quick else "1000,10000")
    return harness.Settings(
        sizes=sizes,
        quick=quick,
        mongo_uri=args.mongo_uri,
        out=args.out,
        scenarios=names,
        seed_messages=args.seed_messages or (40 if quick else 2000),
        max_large=256 * 1024 if quick else 4 * 1024 * 1024,
        rep_budget=1.0 if quick else 5.0,
        reps=3 if quick else 11,
        concurrency_clients=4 if quick else 16,
        concurrency_seconds=1.0 if quick else 10.0,
        memory_connections=[int(x) for x in conns.split(",")],
        deliveries=10 if quick else 300,
        keep=args.keep,
        search_keys=[k.strip() for k in args.search_keys.split(",") if k.strip()]
        if args.search_keys else None,
    )


async def _main(settings: harness.Settings) -> dict[str, object]:
    started = time.perf_counter()
    results = await harness.run_all(settings, SCENARIOS)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the JSON (and the PNG); 0 unless the harness broke."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = parse_args(argv)
    metrics.reset()
    results = trio.run(_main, settings)
    results["round_trips_per_command"] = _overall(results)
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    settings.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    print(report.table(results))
    png = report.plot(results, settings.out.with_suffix(".png"))
    print(f"\nresults: {settings.out}" + (f", plot: {png}" if png else " (no matplotlib: no plot)"))
    return 0


def _overall(results: dict[str, object]) -> dict[str, dict[str, object]]:
    """Round trips per IMAP command summed over every scenario's counts."""
    total: dict[str, dict[str, int]] = {}

    def add(rt: object) -> None:
        if not isinstance(rt, dict):
            return
        for label, s in rt.items():
            if label == metrics.OTHER or not isinstance(s, dict) or "commands" not in s:
                continue
            t = total.setdefault(label, {"commands": 0, "round_trips": 0, "max_round_trips": 0})
            t["commands"] += s["commands"]
            t["round_trips"] += s["round_trips"]
            t["max_round_trips"] = max(t["max_round_trips"], s["max_round_trips"] or 0)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "round_trips":
                    add(value)
                else:
                    walk(value)

    walk(results.get("scenarios"))
    return {label: t | {"avg_round_trips": round(t["round_trips"] / t["commands"], 2)
                        if t["commands"] else None}
            for label, t in sorted(total.items())}


if __name__ == "__main__":
    sys.exit(main())
