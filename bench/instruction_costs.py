"""duck's instructions per IMAP command type, counted by valgrind (callgrind).

    python -m bench.instruction_costs --mbox KIT_DIR/sample.mbox
    PYTHONPATH=../other-checkout python -m bench.instruction_costs --mbox ...

This machine's speed drifts by ±15% within minutes, so a change of a few percent
of duck's CPU per command is lost in the noise of timed runs (bench/ab_imaptest.sh,
bench/command_costs.py). Instructions executed are not: this starts the embedded
database's server (``secantusd-rs``, not counted), runs ``duck serve`` against it
under ``valgrind --tool=callgrind`` with a fixed hash seed, drives it with one
imaplib client through phases of N commands each, and has callgrind dump its counts
after each phase (``callgrind_control -d``): duck's instructions per command, the
Python interpreter's and its C extensions' together. Two runs of one tree agree
within ~1% on FETCH and APPEND and within ~6% on the cheapest commands (NOOP, STORE
of one message), whose path depends on whether the client's next command has
arrived yet. C code valgrind cannot run as the CPU would (SHA-256 without the CPU's
SHA instructions) counts more than it costs.

A run takes ~2.5 minutes (the server runs ~50x slower under valgrind); two trees
can run at once on different ``--port-offset``s. Needs valgrind (Debian's package).
Prints the table and writes ``bench/results/instruction_costs.json``.
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.command_costs import _messages, stop

OUT = Path(__file__).parent / "results" / "instruction_costs.json"
USER, PASSWORD = "instructions@example.com", "instructions-password"
#: Messages kept in the mailbox (imaptest's ``msgs=30``).
KEPT = 30


def _wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _summary(path: Path) -> tuple[str, int]:
    """(the dump's trigger label, its instruction count) of one callgrind dump."""
    label, total = "", 0
    with path.open() as f:
        for line in f:
            if line.startswith("desc: Trigger:"):
                label = line.split("Trigger:", 1)[1].strip().removeprefix("dump ")
            elif line.startswith("summary:"):
                total = int(line.split()[1])
                break
    return label, total


def run(n: int, mbox: Path | None, port_offset: int, keep: bool = False) -> dict[str, float]:
    """Instructions per command of each phase; ``keep``: leave the callgrind dumps
    (one per phase, for ``callgrind_annotate``) and say where."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (Debian's valgrind package)")
    database = shutil.which("secantusd-rs") or str(Path(sys.executable).parent / "secantusd-rs")
    if not Path(database).exists():
        sys.exit("secantusd-rs not found (the SecantusDB package)")
    ports = {"db": 27990 + port_offset, "imap": 11160 + port_offset,
             "lmtp": 12440 + port_offset, "api": 18095 + port_offset}
    work = Path(tempfile.mkdtemp(prefix="duck-instructions-"))
    messages = _messages(mbox, KEPT + n)
    db = subprocess.Popen(
        [database, "--host", "127.0.0.1", "--port", str(ports["db"]), "--storage-path",
         str(work / "db"), "--sync-on-commit", "--log-level", "WARNING",
         "--cache-size", "256M", "--log-file-max", "100MB"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    uri = f"mongodb://127.0.0.1:{ports['db']}/?retryWrites=false&directConnection=true"
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.%p",
         "--dump-instr=no", sys.executable, "-m", "duck.cli", "serve",
         "--data-dir", str(work / "data"), "--mongo-uri", uri,
         "--imap-port", str(ports["imap"]), "--imaps-port", "0",
         "--lmtp-port", str(ports["lmtp"]), "--api-port", str(ports["api"]),
         "--pop3-port", "0", "--pop3s-port", "0", "--managesieve-port", "0",
         "--log-level", "WARNING"],
        # (cwd: not this tree, which ``-m`` would put first on the server's path,
        # before the PYTHONPATH that may name another checkout.)
        env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        api = f"http://127.0.0.1:{ports['api']}"
        _wait_http(f"{api}/health", 600)
        request = urllib.request.Request(
            f"{api}/users", data=json.dumps({"username": USER, "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=60).close()
        c = imaplib.IMAP4("127.0.0.1", ports["imap"])
        c.login(USER, PASSWORD)
        c.select("INBOX")
        for m in messages[:KEPT]:
            c.append("INBOX", None, None, m)
        c.fetch(f"1:{KEPT}", "(FLAGS ENVELOPE BODYSTRUCTURE)")

        def phase(label: str, command: Callable[[int], Any]) -> None:
            subprocess.run(["callgrind_control", "-d", "before " + label, str(server.pid)],
                           check=True, capture_output=True)
            for i in range(n):
                command(i)
            subprocess.run(["callgrind_control", "-d", label, str(server.pid)],
                           check=True, capture_output=True)

        def append(i: int) -> None:
            c.append("INBOX", None, None, messages[(KEPT + i) % len(messages)])

        def append_and_trim(i: int) -> None:
            append(i)
            c.store("1", "+FLAGS.SILENT", "\\Deleted")
            c.expunge()

        def trim(i: int) -> None:
            c.store("1", "+FLAGS.SILENT", "\\Deleted")
            c.expunge()

        phase("NOOP", lambda i: c.noop())
        phase("LIST+STATUS", lambda i: (c.list('""', "*"), c.status("INBOX", "(MESSAGES)")))
        phase("FETCH 1:30 UID FLAGS ENVELOPE INTERNALDATE HEADER.FIELDS", lambda i: c.fetch(
            f"1:{KEPT}", "(UID FLAGS ENVELOPE INTERNALDATE BODY.PEEK[HEADER.FIELDS (From)])"))
        phase("FETCH 1 BODY[]", lambda i: c.fetch(str(1 + i % KEPT), "(BODY.PEEK[])"))
        # (Every STORE changes its message: adds on a first pass over the mailbox,
        # takes away on the next. Alternating by command left most of them with
        # nothing to change, which costs no write.)
        phase("STORE FLAGS", lambda i: c.store(
            str(1 + i % KEPT), "-FLAGS" if i // KEPT % 2 else "+FLAGS", "(\\Seen $Label1)"))
        phase("APPEND+STORE+EXPUNGE", append_and_trim)
        # (The same work apart: the mailbox grows by n, then shrinks back.)
        phase("APPEND", append)
        phase("STORE \\Deleted+EXPUNGE", trim)
        c.logout()
    finally:
        stop(server, 120)
        stop(db, 30)
    results: dict[str, float] = {}
    for dump in sorted(work.glob("cg.*.*"), key=lambda p: int(p.name.rsplit(".", 1)[1])):
        label, total = _summary(dump)
        if label and not label.startswith("before "):
            results[label] = total / n
    if keep:
        print(f"callgrind dumps kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("-n", type=int, default=40, help="commands of each phase (default 40)")
    p.add_argument("--mbox", type=Path, help="take the messages from this mbox")
    p.add_argument("--port-offset", type=int, default=0,
                   help="added to every port (to run two trees at once)")
    p.add_argument("--out", type=Path, default=OUT, help="JSON results file")
    p.add_argument("--keep", action="store_true",
                   help="keep the callgrind dumps (one per phase) for callgrind_annotate")
    args = p.parse_args()
    results = run(args.n, args.mbox, args.port_offset, args.keep)
    for label, count in results.items():
        print(f"{label:58s} {count / 1e6:8.3f} M instructions per command")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": args.n, "per_command": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
