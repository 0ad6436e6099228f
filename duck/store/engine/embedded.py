"""The embedded MongoDB-wire server: a supervised child process.

With no MongoDB URI configured duck runs SecantusDB's server (``secantusd-rs``, or
``secantusd-py`` with ``engine="python"``) as a separate process on a loopback port,
its files under the data directory. duck never imports it (it is GPL-2.0-only); it
only speaks the wire protocol to it.

Facts designed around (docs/architecture.md): always ``--sync-on-commit`` (without it the Rust
server lost acknowledged writes on kill -9); a restart can take 3-12 s after a
crash; an early SIGTERM is sometimes ignored, so it is repeated before SIGKILL.

The Rust server preallocates its write-ahead log file in full (not sparse), 2 GiB
by default, and reads it through at every start: measured here, a restart took
~20 s with the 2 GiB file and ~2.5-3 s with a 100 MB one (WiredTiger's and
MongoDB's own default size). So duck passes ``--log-file-max`` (``log_file_max``,
100MB by default); a data directory made with the larger file switches to the
smaller one at its next start, which is the last slow one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Literal

import attrs
import trio

log = logging.getLogger(__name__)

Engine = Literal["rust", "python"]

_BINARIES: dict[str, str] = {"rust": "secantusd-rs", "python": "secantusd-py"}
_LISTENING = re.compile(rb"listening on ([0-9.]+):(\d+)")

#: How long the server may take to answer after a (re)start; ~12 s was measured
#: after a crash, so leave generous room.
START_TIMEOUT = 60.0
#: SIGTERM is repeated this often before SIGKILL.
STOP_GRACE = 10.0


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be found or started."""


def find_binary(engine: Engine) -> str:
    """Return the path of the server executable for ``engine``."""
    name = _BINARIES[engine]
    # Prefer the one installed beside this interpreter (the same virtualenv).
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise EmbeddedDatabaseError(f"{name} not found; install SecantusDB==0.6.0b17")
    return found


@attrs.define
class EmbeddedDatabase:
    """Supervises one embedded database server process.

    ``await nursery.start(db.run)`` returns the connection URI once the server
    answers; the task restarts the server if it dies and stops it (politely, then
    with SIGKILL) when cancelled.
    """

    data_dir: Path
    engine: Engine = "rust"
    cache_size: str = "256M"
    #: Size of the Rust server's preallocated log file (see the module docstring).
    log_file_max: str = "100MB"
    host: str = "127.0.0.1"
    port: int = 0
    restarts: int = 0
    #: Fsync the log at every commit. Always on for duck; the test suite's shared
    #: server, which is never killed, turns it off (the fsync was ~40% of an APPEND).
    sync_on_commit: bool = True
    #: Whether the server keeps an oplog, which change streams read. Off where the
    #: processes it serves are its only writers (duck serve: its notifier is fed by
    #: its own store, push/notify.py "sole"; with workers, by theirs, through their
    #: parent, push/siblings.py): every write then
    #: costs the server one row less, and the rows it would prune once the oplog is
    #: full (100,000 entries, reached after ~40 s of imaptest; measured with the
    #: rows, its CPU per command rose from ~0.4 to ~0.5-0.6 ms from then on, without
    #: them it stayed). The Rust engine only (its SECANTUS_DISABLE_OPLOG).
    oplog: bool = True
    _process: trio.Process | None = attrs.field(default=None, init=False)

    @property
    def uri(self) -> str:
        """The pymongo URI of the running server (settings docs/architecture.md requires)."""
        return (
            f"mongodb://{self.host}:{self.port}/"
            "?retryWrites=false&directConnection=true&serverSelectionTimeoutMS=5000"
        )

    def command(self) -> list[str]:
        """The command line that starts the server."""
        # Absolute, so that a later run finds a left-behind server by its command line.
        storage = (self.data_dir / "db").resolve()
        cmd = [
            find_binary(self.engine),
            "--host", self.host,
            "--port", str(self.port),
            "--storage-path", str(storage),
            *(["--sync-on-commit"] if self.sync_on_commit else []),
            # The Python engine announces its port at INFO level; the Rust one always.
            "--log-level", "WARNING" if self.engine == "rust" else "INFO",
        ]
        if self.engine == "rust":
            cmd += ["--cache-size", self.cache_size, "--log-file-max", self.log_file_max]
        return cmd

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the server, report its URI, and keep it running until cancelled."""
        (self.data_dir / "db").mkdir(parents=True, exist_ok=True)
        await reap_stale(self.data_dir)
        started = False
        backoff = 0.5
        while True:
            try:
                await self._run_once(task_status if not started else None)
                started = True
            except EmbeddedDatabaseError:
                if not started:
                    raise
            # The process died while we were not stopping it: restart it on the same
            # port so that existing clients reconnect without a new URI.
            self.restarts += 1
            log.warning("embedded database exited; restarting (restart %d)", self.restarts)
            await trio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _run_once(self, task_status: trio.TaskStatus[str] | None) -> None:
        cmd = self.command()
        log.info("starting the embedded database (%s) on %s; this takes a few seconds, "
                 "~20 s after a crash or on a data directory made by an older duck",
                 self.engine, self.data_dir)
        log.debug("starting embedded database: %s", " ".join(cmd))
        env = None if self.oplog else {**os.environ, "SECANTUS_DISABLE_OPLOG": "1"}
        process = await trio.lowlevel.open_process(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal must not hit it first
        )
        self._process = process
        try:
            assert process.stdout is not None
            async with trio.open_nursery() as nursery:
                with trio.fail_after(START_TIMEOUT):
                    port = await _read_port(process.stdout)
                if port is None:
                    await process.wait()
                    raise EmbeddedDatabaseError(
                        f"embedded database exited with {process.returncode} before listening"
                    )
                self.port = port
                (self.data_dir / "db.pid").write_text(f"{process.pid}\n")
                # The port, for whoever needs it beside the URI (the admin commands
                # use the server's own state file, duck/ctl/locate.py).
                (self.data_dir / "db.port").write_text(f"{port}\n")
                nursery.start_soon(_drain, process.stdout)
                await _wait_answering(self.host, self.port)
                if task_status is not None:
                    log.info("embedded database (%s) on %s:%d", self.engine, self.host, port)
                    task_status.started(self.uri)
                await process.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await stop_process(process)
            self._process = None
            (self.data_dir / "db.port").unlink(missing_ok=True)
            (self.data_dir / "db.pid").unlink(missing_ok=True)

    def statistics(self) -> dict[str, object]:
        """Supervision figures."""
        return {"engine": self.engine, "port": self.port, "restarts": self.restarts,
                "pid": self._process.pid if self._process else None}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # The command name (field 2) may contain spaces; it ends at the last ")".
    return int(stat.rsplit(")", 1)[1].split()[1])


async def reap_stale(data_dir: Path) -> None:
    """Stop a database server left behind on this data directory by a duck that died
    without stopping it (SIGKILL, a crash); refuse if a live duck still owns it."""
    pid_file = data_dir / "db.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    storage = str((data_dir / "db").resolve()).encode()
    if storage not in _cmdline(pid):
        pid_file.unlink(missing_ok=True)
        return
    owner = _parent(pid)
    if owner > 1 and b"duck" in _cmdline(owner):
        raise EmbeddedDatabaseError(
            f"the data directory {data_dir} is in use by another duck (pid {owner})"
        )
    log.warning("stopping a database server left behind by a previous run (pid %d)", pid)
    deadline = trio.current_time() + STOP_GRACE
    while _cmdline(pid) and trio.current_time() < deadline:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            break
        await trio.sleep(0.5)
    if _cmdline(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        await trio.sleep(0.5)
    pid_file.unlink(missing_ok=True)


async def _read_port(stream: trio.abc.ReceiveStream) -> int | None:
    buffer = b""
    while True:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return None
        buffer += chunk
        match = _LISTENING.search(buffer)
        if match:
            return int(match.group(2))
        buffer = buffer[-4096:]


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    # The server's log goes to ours at debug level; draining keeps the pipe from
    # filling up and blocking the server.
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        for line in chunk.decode("utf-8", "replace").splitlines():
            log.debug("db: %s", line)


async def _wait_answering(host: str, port: int) -> None:
    with trio.fail_after(START_TIMEOUT):
        while True:
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError:
                await trio.sleep(0.1)
                continue
            await stream.aclose()
            return


async def stop_process(process: trio.Process, grace: float = STOP_GRACE) -> None:
    """Stop a child: SIGTERM, repeated (an early one is sometimes ignored), then SIGKILL."""
    if process.returncode is not None:
        return
    deadline = trio.current_time() + grace
    interval = 0.5
    while process.returncode is None and trio.current_time() < deadline:
        try:
            process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            break
        with trio.move_on_after(interval):
            await process.wait()
        interval = min(interval * 2, 2.0)
    if process.returncode is None:
        log.warning("embedded database ignored SIGTERM for %.0f s; killing it", grace)
        process.kill()
        await process.wait()




class BlockingEmbeddedDatabase:
    """The embedded server for synchronous callers (the test suite, benchmarks).

    ``with BlockingEmbeddedDatabase(path) as uri:`` starts one server and stops it
    on exit with the same SIGTERM-then-SIGKILL discipline.
    """

    def __init__(self, data_dir: Path, engine: Engine = "rust", cache_size: str = "256M",
                 log_file_max: str = "100MB", *, sync_on_commit: bool = True) -> None:
        self.spec = EmbeddedDatabase(data_dir=data_dir, engine=engine, cache_size=cache_size,
                                     log_file_max=log_file_max, sync_on_commit=sync_on_commit)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        (self.spec.data_dir / "db").mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.spec.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self.process.stdout
        found = threading.Event()

        def pump() -> None:
            # Keeps draining after the port is known, so the server never blocks
            # on a full pipe; only lines before that are kept.
            for line in stdout:
                if not found.is_set():
                    lines.put(line)
            lines.put(b"")

        threading.Thread(target=pump, daemon=True).start()
        buffer = b""
        try:
            while True:
                line = lines.get(timeout=START_TIMEOUT)
                if not line:
                    raise EmbeddedDatabaseError("embedded database exited before listening")
                buffer = (buffer + line)[-4096:]
                match = _LISTENING.search(buffer)
                if match:
                    self.spec.port = int(match.group(2))
                    found.set()
                    break
        except (queue.Empty, EmbeddedDatabaseError) as exc:
            self.__exit__()
            raise EmbeddedDatabaseError(f"embedded database did not start: {exc!r}") from exc
        return self.spec.uri

    def __exit__(self, *exc_info: object) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        deadline = time.monotonic() + STOP_GRACE
        while process.poll() is None and time.monotonic() < deadline:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        if process.poll() is None:
            process.kill()
            process.wait()
