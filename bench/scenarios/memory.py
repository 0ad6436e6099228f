"""Memory: server RSS per idle IMAP connection (``duck serve`` as a subprocess).

The server runs in its own process so that its RSS is not mixed with the
client's sockets; it uses the benchmark's database server (another database
name). Connections are opened and left idle before LOGIN (a logged-in session
costs more: that is measured on a few hundred connections, because each LOGIN
runs a deliberately slow scrypt). Both the bench and the server raise their
RLIMIT_NOFILE soft limit to the hard limit.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from ..harness import PASSWORD, USER, Bench
from ..imap_client import ImapClient

_READY = re.compile(r"duck ready: .*imap=(\d+)")
#: Connections opened at once while filling up.
OPENING = 64


def raise_nofile() -> int:
    """Raise this process's open-file soft limit to the hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def vm_rss(pid: int) -> int:
    """VmRSS of a process in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


# Run by the subprocess: raise the fd limit, then the ordinary ``duck serve``.
_CHILD = (
    "import resource, sys\n"
    "s, h = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))\n"
    "from duck.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


async def _start_server(bench: Bench, data_dir: Path, database: str,
                        nursery: trio.Nursery) -> tuple[trio.Process, int]:
    env = dict(os.environ)
    env.update({
        "DUCK_MONGO_URI": bench.mongo_uri,
        "DUCK_DATABASE": database,
        "DUCK_IMAPS_PORT": "0",
        "DUCK_LOG_LEVEL": "INFO",
        "DUCK_IMAP_MAX_CONNECTIONS_PER_IP": "1000000",
        "DUCK_IMAP_MAX_CONNECTIONS_PER_USER": "1000000",
    })
    cmd = [sys.executable, "-c", _CHILD, "serve", "--data-dir", str(data_dir),
           "--imap-port", "0", "--lmtp-port", "0", "--api-port", "0",
           "--pop3-port", "0", "--pop3s-port", "0", "--managesieve-port", "0"]
    send, recv = trio.open_memory_channel[int](1)

    async def watch(task_status: trio.TaskStatus[trio.Process]) -> None:
        proc = await trio.lowlevel.open_process(cmd, env=env, stderr=subprocess.PIPE,
                                                stdout=subprocess.DEVNULL)
        task_status.started(proc)
        assert proc.stderr is not None
        buf = b""
        sent = False
        # Keep draining its log so the pipe never blocks the server.
        async for chunk in proc.stderr:
            buf = (buf + chunk)[-8192:]
            if not sent and (m := _READY.search(buf.decode("utf-8", "replace"))):
                await send.send(int(m.group(1)))
                sent = True

    proc: trio.Process = await nursery.start(watch)
    with trio.fail_after(90):
        port = await recv.receive()
    return proc, port


async def _open(port: int, count: int, clients: list[ImapClient], login: bool) -> None:
    limiter = trio.CapacityLimiter(OPENING)

    async def one() -> None:
        async with limiter:
            client = await ImapClient.connect("127.0.0.1", port)
            if login:
                await client.login(USER, PASSWORD)
                await client.command('SELECT "seed"', keep=False)
            clients.append(client)

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)


@asynccontextmanager
async def _server(bench: Bench, database: str) -> AsyncIterator[tuple[trio.Process, int]]:
    """A fresh ``duck serve`` subprocess (its own data directory) for one measurement."""
    with tempfile.TemporaryDirectory(prefix="duck-bench-mem-") as tmp:
        async with trio.open_nursery() as nursery:
            proc, port = await _start_server(bench, Path(tmp), database, nursery)
            try:
                yield proc, port
            finally:
                proc.terminate()
                with trio.move_on_after(15):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                nursery.cancel_scope.cancel()


async def run(bench: Bench) -> dict[str, Any]:
    """RSS growth per idle connection at each configured connection count.

    Pre-login connections and logged-in connections with a mailbox selected are
    measured in two fresh server processes: memory freed by closed connections stays
    in the allocator, so a second measurement in the same process reads too low.
    """
    limit = raise_nofile()
    settle = 0.3 if bench.settings.quick else 1.0  # let allocations settle before reading
    out: dict[str, Any] = {"nofile_limit": limit}
    database = bench.server.config.database  # same data: the user exists there
    clients: list[ImapClient] = []
    async with _server(bench, database) as (proc, port):
        await trio.sleep(settle)
        base = vm_rss(proc.pid)
        out["baseline_rss_mb"] = round(base / 2**20, 1)
        for count in bench.settings.memory_connections:
            if count + 64 > limit:
                out[f"preauth_{count}"] = {"error": f"RLIMIT_NOFILE {limit} too low"}
                continue
            started = time.perf_counter()
            await _open(port, count - len(clients), clients, login=False)
            opened = time.perf_counter() - started
            await trio.sleep(settle)
            rss = vm_rss(proc.pid)
            out[f"preauth_{count}"] = {
                "connections": len(clients),
                "rss_mb": round(rss / 2**20, 1),
                "kb_per_connection": round((rss - base) / len(clients) / 1024, 1),
                "open_seconds": round(opened, 2),
            }
        for c in clients:
            await c.aclose()
        clients.clear()
    async with _server(bench, database) as (proc, port):
        await trio.sleep(settle)
        base = vm_rss(proc.pid)
        selected = 10 if bench.settings.quick else 200
        started = time.perf_counter()
        await _open(port, selected, clients, login=True)
        opened = time.perf_counter() - started
        await trio.sleep(settle)
        rss = vm_rss(proc.pid)
        out[f"selected_{selected}"] = {
            "connections": len(clients),
            "mailbox_messages": len(bench.seed.uids),
            "baseline_rss_mb": round(base / 2**20, 1),
            "rss_mb": round(rss / 2**20, 1),
            "kb_per_connection": round((rss - base) / len(clients) / 1024, 1),
            "open_seconds": round(opened, 2),
        }
        for c in clients:
            await c.aclose()
    out["round_trips"] = {}
    return out
