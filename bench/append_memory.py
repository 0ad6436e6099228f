"""APPEND memory: the RSS of ``duck serve`` while many clients APPEND large messages
at once, with the literal budget (``literal_memory``) and, for comparison, with a
budget so large that it never makes anyone wait.

    python -m bench.append_memory --clients 50 --size-mb 20
    python -m bench.append_memory --clients 200 --size-mb 50 --budgets 536870912

Each run starts a fresh ``duck serve`` subprocess (embedded database in a temporary
data directory), creates one user, and has every client log in, then APPEND one
message of the given size (a synchronizing literal, as imaplib sends it), all at
once; VmRSS of the duck process is sampled every 50 ms. Prints the peak RSS growth
per budget and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.scenarios.memory import vm_rss

USER, PASSWORD = "big@example.com", "big-appender"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_health(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("duck serve did not become healthy")


def _message(size: int) -> bytes:
    head = b"From: a@example.com\r\nSubject: big\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    return head + line * ((size - len(head)) // len(line))


def run_once(clients: int, size: int, budget: int) -> dict[str, Any]:
    """One server, ``clients`` concurrent APPENDs of ``size`` octets; peak RSS."""
    data = Path(tempfile.mkdtemp(prefix="duck-appendmem-"))
    imap, api = _free_port(), _free_port()
    env = dict(os.environ, DUCK_LITERAL_MEMORY=str(budget),
               DUCK_MAX_MESSAGE_SIZE=str(max(size * 2, 64 * 1024 * 1024)),
               DUCK_IMAP_MAX_CONNECTIONS_PER_USER=str(clients + 1),
               DUCK_IMAP_MAX_CONNECTIONS_PER_IP=str(clients + 1))
    cmd = [sys.executable, "-m", "duck.cli", "serve", "--data-dir", str(data),
           "--imap-port", str(imap), "--imaps-port", "0", "--lmtp-port", "0",
           "--api-port", str(api), "--pop3-port", "0", "--pop3s-port", "0",
           "--managesieve-port", "0", "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_health(api, 180)
        req = urllib.request.Request(
            f"http://127.0.0.1:{api}/users", method="POST",
            data=json.dumps({"username": USER, "password": PASSWORD}).encode(),
            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()
        message = _message(size)
        sessions = []
        for _ in range(clients):
            c = imaplib.IMAP4("127.0.0.1", imap, timeout=600)
            c.login(USER, PASSWORD)
            sessions.append(c)
        base = vm_rss(proc.pid)
        peak = base
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, vm_rss(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        errors: list[str] = []

        def append(c: imaplib.IMAP4) -> None:
            try:
                typ, _ = c.append("INBOX", None, None, message)
                if typ != "OK":
                    errors.append(typ)
            except Exception as exc:  # reported, not raised: the figures still count
                errors.append(repr(exc))

        started = time.monotonic()
        threads = [threading.Thread(target=append, args=(c,)) for c in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        for c in sessions:
            c.logout()
        return {"clients": clients, "size": size, "literal_memory": budget,
                "rss_base": base, "rss_peak": peak, "rss_growth": peak - base,
                "seconds": round(seconds, 1), "errors": errors[:5],
                "failed": len(errors)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    """Run each budget and print the peak RSS growth."""
    p = argparse.ArgumentParser(prog="python -m bench.append_memory", description=__doc__)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--size-mb", type=float, default=20.0)
    p.add_argument("--budgets", default=f"{512 * 2**20},{64 * 2**30}",
                   help="literal_memory values to run, bytes, comma-separated")
    p.add_argument("--out", type=Path, default=Path("bench/results/append_memory.json"))
    args = p.parse_args()
    size = int(args.size_mb * 1024 * 1024)
    results = []
    for budget in (int(b) for b in args.budgets.split(",")):
        r = run_once(args.clients, size, budget)
        results.append(r)
        print(f"literal_memory {budget / 2**20:>8.0f} MiB: {args.clients} x "
              f"{size / 2**20:.0f} MiB APPENDs in {r['seconds']} s, RSS growth "
              f"{r['rss_growth'] / 2**20:.0f} MiB (peak {r['rss_peak'] / 2**20:.0f} MiB), "
              f"{r['failed']} failed", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
