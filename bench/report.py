"""The benchmark's outputs: a table on stdout, and a PNG plot when matplotlib exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(scenario, measure, mailbox size, value) rows of the main figures."""
    rows: list[tuple[str, str, str, str]] = []
    sc = results.get("scenarios", {})
    for size, row in sc.get("fetch", {}).get("sizes", {}).items():
        for key, unit in (("first_sync", "messages_per_s"), ("headers_1000", "messages_per_s"),
                          ("bodystructure_1000", "messages_per_s"), ("body_random", "mb_per_s")):
            if key in row:
                rt = _fetch_rt(row, key)
                rows.append(("fetch", f"{key} ({unit.replace('_per_s', '/s')}) [rt/cmd]", size,
                             f"{_fmt(row[key].get(unit))}  med {_fmt(row[key]['median_ms'])} ms"
                             f"  [{_fmt(rt)}]"))
    partial = sc.get("fetch", {}).get("partial")
    if partial and "median_ms" in partial:
        rows.append(("fetch", "partial 64 KB of largest part", "seed",
                     f"med {_fmt(partial['median_ms'])} ms (whole "
                     f"{_fmt(partial.get('whole_mb_per_s'))} MB/s)"))
    for size, row in sc.get("search", {}).get("sizes", {}).items():
        for name, r in row.items():
            if "error" in r:
                rows.append(("search", name, size, "ERROR " + r["error"][:60]))
            else:
                rows.append(("search", f"{name} [rt/cmd]", size,
                             f"med {_fmt(r['median_ms'])} ms  p95 {_fmt(r['p95_ms'])} ms"
                             f"  hits {r['hits']}  [{_fmt(r.get('round_trips'))}]"))
    dl = sc.get("delivery", {})
    for key, r in dl.items():
        if isinstance(r, dict) and "messages_per_s" in r:
            rows.append(("delivery", key, "-",
                         f"{_fmt(r['messages_per_s'])} msg/s  med {_fmt(r['median_ms'])} ms"))
    for key, r in sc.get("store", {}).items():
        if isinstance(r, dict) and "ms" in r:
            rows.append(("store", f"STORE 1:* {key} [rt]", str(sc["store"]["messages"]),
                         f"{_fmt(r['ms'])} ms  {_fmt(r['messages_per_s'])} msg/s"
                         f"  [{_fmt(r['round_trips'])}]"))
    for key, r in sc.get("concurrency", {}).items():
        if isinstance(r, dict) and "commands_per_s" in r:
            rows.append(("concurrency", key, str(sc["concurrency"]["mailbox_messages"]),
                         f"{_fmt(r['commands_per_s'])} commands/s"))
    for key, r in sc.get("memory", {}).items():
        if isinstance(r, dict) and "kb_per_connection" in r:
            rows.append(("memory", key, "-",
                         f"{_fmt(r['kb_per_connection'])} KB/connection "
                         f"(RSS {_fmt(r['rss_mb'])} MB)"))
    for size, row in sc.get("pop3", {}).get("sizes", {}).items():
        for key in ("login", "list", "uidl", "imap_uid_fetch_sizes"):
            if key in row:
                rows.append(("pop3", key, size, f"med {_fmt(row[key]['median_ms'])} ms"))
        for key in ("retr", "imap_fetch_body", "imap_fetch_body_range"):
            if key in row:
                rows.append(("pop3", f"{key} (MB/s)", size, _fmt(row[key]["mb_per_s"])))
    for name, err in results.get("errors", {}).items():
        rows.append((name, "ERROR", "-", err[:100]))
    return rows


def _fetch_rt(row: dict[str, Any], key: str) -> Any:
    label = "UID FETCH" if key == "first_sync" else "FETCH"
    return row.get("round_trips", {}).get(label, {}).get("avg_round_trips")


def table(results: dict[str, Any]) -> str:
    """A plain-text table of the main figures (``[rt]`` = database round trips)."""
    rows = [("scenario", "measure", "size", "value"), *_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(r[j].ljust(widths[j]) for j in range(3)) + "  " + r[3])
        if i == 0:
            lines.append("-" * (sum(widths) + 6 + 40))
    rt = results.get("round_trips_per_command")
    if rt:
        lines.append("")
        lines.append("database round trips per IMAP command (average over the whole run):")
        for label, s in sorted(rt.items()):
            lines.append(f"  {label:<16} {_fmt(s['avg_round_trips']):>8} avg "
                         f"{s['max_round_trips']:>6} max  ({s['commands']} commands)")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> Path | None:
    """Median SEARCH/FETCH latency against mailbox size (log-log); None without matplotlib."""
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    sc = results.get("scenarios", {})
    series: dict[str, list[tuple[int, float]]] = {}
    for size, row in sc.get("search", {}).get("sizes", {}).items():
        for name, r in row.items():
            if "median_ms" in r:
                series.setdefault(f"SEARCH {name}", []).append((int(size), r["median_ms"]))
    for size, row in sc.get("fetch", {}).get("sizes", {}).items():
        for key in ("first_sync", "headers_1000", "bodystructure_1000"):
            if key in row:
                series.setdefault(f"FETCH {key}", []).append((int(size), row[key]["median_ms"]))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(13, 7))
    cmap = plt.get_cmap("tab20")
    colors = [cmap(i / 19) for i in range(20)]
    markers = "os^vD<>ph*"
    for i, (name, points) in enumerate(sorted(series.items())):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], label=name,
                color=colors[i % len(colors)], marker=markers[i % len(markers)],
                linestyle="--" if name.startswith("FETCH") else "-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("messages in the mailbox")
    ax.set_ylabel("median latency (ms)")
    ax.set_title("duck: latency against mailbox size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
