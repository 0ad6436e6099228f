"""APPEND memory: the RSS of ``duck serve`` while many clients APPEND large messages
at once. APPEND streams its literal into the store, so the growth should not
depend on the message size; the literal budget (``literal_memory``) only bounds
literals still kept whole (binary ones, CATENATE's TEXT parts).

    python -m bench.append_memory --clients 40 --size-mb 20 --budgets 268435456
    python -m bench.append_memory --clients 200 --size-mb 50 --budgets 536870912

Each run starts a fresh ``duck serve`` subprocess (embedded database in a temporary
data directory), creates one user, and has every client log in, then APPEND one
message of the given size (a synchronizing literal), all at once; VmRSS of the
duck process (and of the embedded database it started) is sampled every 50 ms.
The clients are raw sockets in threads that all send the same message buffer (an
imaplib client copies its message, which at 200 x 50 MiB is 10 GiB in the bench
itself). Prints the peak RSS growth per budget and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
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


def _children_rss(pid: int) -> int:
    """VmRSS of the direct children of ``pid`` (the embedded database), bytes."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                total += vm_rss(int(child))
            except (OSError, RuntimeError):
                pass
    return total


class Appender:
    """One IMAP client on a blocking socket: logs in, then APPENDs one message."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=1800)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # greeting
        self._command(b"l", b'LOGIN "%s" "%s"' % (USER.encode(), PASSWORD.encode()))

    def _until_tagged(self, tag: bytes) -> bytes:
        last = b""
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError(f"connection closed after {last[:200]!r}")
            if line.startswith(tag + b" "):
                return line
            last = line

    def _command(self, tag: bytes, text: bytes) -> bytes:
        self.sock.sendall(tag + b" " + text + b"\r\n")
        line = self._until_tagged(tag)
        if not line.startswith(tag + b" OK"):
            raise RuntimeError(line.decode(errors="replace"))
        return line

    def append(self, message: bytes) -> str:
        """APPEND ``message`` to INBOX with a synchronizing literal; the status."""
        self.sock.sendall(b"a APPEND INBOX {%d}\r\n" % len(message))
        line = self.file.readline()
        if not line.startswith(b"+"):
            return line.decode(errors="replace").strip()
        view = memoryview(message)
        for at in range(0, len(message), 1 << 20):
            self.sock.sendall(view[at:at + (1 << 20)])
        self.sock.sendall(b"\r\n")
        return self._until_tagged(b"a").decode(errors="replace").split()[1]

    def close(self) -> None:
        """LOGOUT and close."""
        try:
            self._command(b"z", b"LOGOUT")
        except (OSError, RuntimeError, EOFError):
            pass
        self.sock.close()


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
    # The server's log goes to a file (a pipe nobody reads would block it when full).
    log = (data.parent / f"{data.name}.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_health(api, 180)
        req = urllib.request.Request(
            f"http://127.0.0.1:{api}/users", method="POST",
            # (A quota that all the messages fit in: the default 1 GiB does not.)
            data=json.dumps({"username": USER, "password": PASSWORD,
                             "quota": 2 * clients * size}).encode(),
            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()
        message = _message(size)
        sessions = [Appender(imap) for _ in range(clients)]
        base = vm_rss(proc.pid)
        peak = base
        db_base = _children_rss(proc.pid)
        db_peak = db_base
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, db_peak
            while not done.is_set():
                peak = max(peak, vm_rss(proc.pid))
                db_peak = max(db_peak, _children_rss(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        errors: list[str] = []

        def append(c: Appender) -> None:
            try:
                typ = c.append(message)
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
            c.close()
        return {"clients": clients, "size": size, "literal_memory": budget,
                "rss_base": base, "rss_peak": peak, "rss_growth": peak - base,
                "db_rss_base": db_base, "db_rss_peak": db_peak,
                "seconds": round(seconds, 1), "errors": errors[:5],
                "failed": len(errors)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        text = Path(log.name).read_bytes()
        if text.strip():
            print(f"server log (last lines of {len(text)} octets):", flush=True)
            print(text[-3000:].decode(errors="replace"), flush=True)
        Path(log.name).unlink()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    """Run each budget and print the peak RSS growth."""
    p = argparse.ArgumentParser(prog="python -m bench.append_memory", description=__doc__)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--size-mb", type=float, default=20.0)
    p.add_argument("--budgets", default=f"{512 * 2**20}",
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
              f"{r['rss_growth'] / 2**20:.0f} MiB (peak {r['rss_peak'] / 2**20:.0f} MiB; "
              f"database peak {r['db_rss_peak'] / 2**20:.0f} MiB), "
              f"{r['failed']} failed", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
