"""CPU and database round trips of each IMAP command type, one client at a time.

    python -m bench.command_costs                      # 300 of each
    python -m bench.command_costs -n 1000 --mbox sample.mbox --workers 2

Starts ``duck serve`` (its own process, on the embedded database, in a temporary
data directory, on the ports below) and one user, then over one imaplib connection
runs each command N times in a row and reports, per command: duck's CPU (the serving
process and its workers), the database's CPU (the embedded server's process), the
round trips (duck's ``/metrics``) and the wall time, each per command. Messages are
taken from an mbox when given (imaptest's ``sample.mbox``: ../shared/imaptest/),
else generated. The mailbox is kept small, as imaptest keeps it (30 messages):
every APPEND is followed by the removal of one message (three APPENDs in a row, on
the line that measures them, by three). The last line copies two messages into
another mailbox (which grows, past the size where it keeps a digest).

Figures are per command of a single client: no queueing, so they add up to what a
busy server pays (the imaptest runs of bench/side_by_side.sh agree within their
noise), and a change's effect on one command type shows without the noise of a
mixed load. CPU is read from /proc in clock ticks (10 ms): N of a few hundred keeps
the rounding below a few percent. Writes ``bench/results/command_costs.json``.
"""

from __future__ import annotations

import argparse
import imaplib
import json
import mailbox
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "results" / "command_costs.json"
USER, PASSWORD = "costs@example.com", "costs-password"
PORTS = {"imap": 11153, "lmtp": 12434, "api": 18090}
#: Messages kept in the mailbox (imaptest's ``msgs=30``).
KEPT = 30


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


class Costs:
    """CPU of duck's processes and of the database's, and duck's round trips."""

    def __init__(self, duck: int, database: int, api: str) -> None:
        self.duck = [duck] + [p for p in _children(duck) if p != database]
        self.database = database
        self.api = api
        self.hz = os.sysconf("SC_CLK_TCK")

    def sample(self) -> tuple[float, float, float, float]:
        metrics = urllib.request.urlopen(f"{self.api}/metrics").read().decode()
        trips = sum(float(v) for v in re.findall(
            r"^duck_store_round_trips_total\{[^}]*\} ([0-9.e+]+)$", metrics, re.M))
        return (sum(_ticks(p) for p in self.duck) / self.hz, _ticks(self.database) / self.hz,
                trips, time.perf_counter())


def _messages(path: Path | None, count: int) -> list[bytes]:
    if path is None:
        return [(f"From: a{i}@example.com\r\nTo: b@example.com\r\nSubject: message {i}\r\n"
                 f"Message-ID: <{i}@costs>\r\n\r\n" + f"line {i} of the body\r\n" * 40
                 ).encode() for i in range(count)]
    out = []
    for msg in mailbox.mbox(str(path)):
        out.append(msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        if len(out) >= count:
            break
    return out


def _start(data: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    duck = shutil.which("duck") or str(Path(sys.executable).parent / "duck")
    proc = subprocess.Popen(
        [duck, "serve", "--data-dir", str(data), "--imap-port", str(PORTS["imap"]),
         "--imaps-port", "0", "--lmtp-port", str(PORTS["lmtp"]), "--api-port",
         str(PORTS["api"]), "--pop3-port", "0", "--pop3s-port", "0",
         "--managesieve-port", "0", "--log-level", "WARNING", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{PORTS['api']}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{api}/health")
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise SystemExit("duck serve did not answer /health")
    request = urllib.request.Request(
        f"{api}/users", json.dumps({"username": USER, "password": PASSWORD}).encode(),
        {"Content-Type": "application/json"})
    urllib.request.urlopen(request)
    database = int((data / "db.pid").read_text().split()[0])
    return proc, database


def run(n: int, mbox: Path | None, extra: list[str]) -> dict[str, dict[str, float]]:
    """Every command type's costs, per command."""
    messages = _messages(mbox, 200)
    data = Path(tempfile.mkdtemp(prefix="duck-costs-"))
    proc, database = _start(data, extra)
    try:
        costs = Costs(proc.pid, database, f"http://127.0.0.1:{PORTS['api']}")
        c = imaplib.IMAP4("127.0.0.1", PORTS["imap"])
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.login(USER, PASSWORD)
        for i in range(KEPT):
            c.append("INBOX", None, None, messages[i % len(messages)])
        c.select("INBOX")
        results: dict[str, dict[str, float]] = {}

        def measure(name: str, command: Callable[[int], Any]) -> None:
            before = costs.sample()
            for i in range(n):
                command(i)
            after = costs.sample()
            duck_s, db_s, trips, wall = (b - a for a, b in zip(before, after, strict=True))
            results[name] = {"duck_ms": 1000 * duck_s / n, "database_ms": 1000 * db_s / n,
                             "round_trips": trips / n, "wall_ms": 1000 * wall / n}
            r = results[name]
            print(f"{name:28s} duck {r['duck_ms']:5.2f} ms  database {r['database_ms']:5.2f}"
                  f" ms  round trips {r['round_trips']:4.2f}  wall {r['wall_ms']:5.2f} ms",
                  flush=True)

        def append_and_trim(i: int) -> None:
            c.append("INBOX", None, None, messages[(KEPT + i) % len(messages)])
            c.store("1", "+FLAGS.SILENT", "\\Deleted")
            c.expunge()

        measure("NOOP", lambda i: c.noop())
        measure("LIST", lambda i: c.list('""', "*"))
        measure("STATUS", lambda i: c.status("INBOX", "(MESSAGES UNSEEN)"))
        measure("FETCH 1:30 FLAGS", lambda i: c.fetch("1:30", "(UID FLAGS)"))
        measure("FETCH 1:30 ENVELOPE BODY", lambda i: c.fetch("1:30", "(ENVELOPE BODY)"))
        measure("FETCH 1:30 HEADER.FIELDS", lambda i: c.fetch(
            "1:30", "(BODY.PEEK[HEADER.FIELDS (From Subject)])"))
        measure("FETCH 1 BODY[]", lambda i: c.fetch(str(1 + i % KEPT), "(BODY.PEEK[])"))
        # (Every STORE changes its message: one set of flags on a pass over the
        # mailbox, the other on the next.)
        measure("STORE FLAGS", lambda i: c.store(
            str(1 + i % KEPT), "FLAGS", "($Label1 $Label2)" if i // KEPT % 2 else "(\\Seen)"))
        measure("EXPUNGE (nothing)", lambda i: c.expunge())
        measure("APPEND+STORE+EXPUNGE", append_and_trim)

        def appends_and_trim(i: int) -> None:
            # (imaplib sends a literal and the CRLF after it in two writes: a
            # server that delays its ACK makes each APPEND after the first wait
            # ~40 ms for its CRLF; duck/net.py ``quickack``.)
            for k in range(3):
                c.append("INBOX", None, None, messages[(KEPT + 3 * i + k) % len(messages)])
            c.store("1:3", "+FLAGS.SILENT", "\\Deleted")
            c.expunge()

        measure("3 APPENDs+STORE+EXPUNGE", appends_and_trim)
        c.create("Copies")
        measure("COPY 2 to another mailbox", lambda i: c.copy(
            f"{1 + i % (KEPT - 1)}:{2 + i % (KEPT - 1)}", "Copies"))
        c.logout()
        return results
    finally:
        stop(proc, 30)
        shutil.rmtree(data, ignore_errors=True)


def stop(proc: subprocess.Popen[bytes], seconds: float) -> None:
    """End a server this bench started: SIGTERM, then SIGKILL after ``seconds``."""
    proc.terminate()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("-n", type=int, default=300, help="commands of each type (default 300)")
    p.add_argument("--mbox", type=Path, help="take the messages from this mbox")
    p.add_argument("--workers", type=int, default=1, help="duck serve --workers")
    p.add_argument("--out", type=Path, default=OUT, help="JSON results file")
    args = p.parse_args()
    results = run(args.n, args.mbox, ["--workers", str(args.workers)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": args.n, "workers": args.workers,
                                    "per_command": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
