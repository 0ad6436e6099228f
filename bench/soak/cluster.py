"""The system under test: one embedded database and two ``duck serve`` processes on
it, each of which the soak can SIGKILL and restart.

The database is supervised by duck's own ``EmbeddedDatabase`` (it restarts the
server on the same port when it dies, as ``duck serve`` does), so killing it
tests that path too. A killed ``duck serve`` is restarted here on new free ports;
clients look the ports up again when they reconnect.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import attrs
import trio

from duck.store.engine.embedded import EmbeddedDatabase

_READY = re.compile(rb"duck ready: (.*)")
#: How long a ``duck serve`` may take to say it is ready (two contended cores, a
#: database that may itself be restarting).
START_TIMEOUT = 120.0


class ClusterError(RuntimeError):
    """A process of the cluster could not be (re)started."""


@attrs.define
class Duck:
    """One ``duck serve`` process slot: its current process and ports."""

    name: str
    data_dir: Path
    process: trio.Process | None = None
    ports: dict[str, int] = attrs.Factory(dict)
    up: trio.Event = attrs.Factory(trio.Event)
    starts: int = 0
    log: list[bytes] = attrs.Factory(list)


@attrs.define
class Cluster:
    """The embedded database and the ``duck serve`` processes."""

    root: Path
    database: str
    db: EmbeddedDatabase
    ducks: list[Duck]
    uri: str = ""
    env: dict[str, str] = attrs.Factory(dict)

    @classmethod
    def create(cls, root: Path, database: str, env: dict[str, str]) -> Cluster:
        """A cluster whose files live under ``root`` (nothing runs yet)."""
        db = EmbeddedDatabase(root / "db")
        ducks = [Duck(name, root / name) for name in ("duck-a", "duck-b")]
        return cls(root, database, db, ducks, env=env)

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the database, then both ``duck serve`` processes."""
        self.uri = await nursery.start(self.db.run)
        async with trio.open_nursery() as starting:
            for duck in self.ducks:
                starting.start_soon(self._start_duck, nursery, duck)

    async def _start_duck(self, nursery: trio.Nursery, duck: Duck) -> None:
        duck.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "duck.cli", "serve", "--data-dir", str(duck.data_dir),
               "--mongo-uri", self.uri, "--database", self.database,
               "--imap-port", "0", "--imaps-port", "0", "--lmtp-port", "0",
               "--api-port", "0", "--pop3-port", "0", "--pop3s-port", "0",
               "--managesieve-port", "0"]
        environ = {**os.environ, "PYTHONUNBUFFERED": "1", "DUCK_LOG_LEVEL": "INFO",
                   **self.env}
        proc = await trio.lowlevel.open_process(cmd, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=-1,
                                                env=environ)
        duck.process = proc
        duck.ports = {}
        duck.starts += 1
        ready = trio.Event()
        nursery.start_soon(_drain, proc, duck, ready)
        with trio.move_on_after(START_TIMEOUT):
            await ready.wait()
        if not ready.is_set():
            raise ClusterError(f"{duck.name} did not start:\n"
                               + b"\n".join(duck.log[-40:]).decode(errors="replace"))
        duck.up.set()

    def live(self) -> list[Duck]:
        """The ``duck serve`` processes that are up now."""
        return [d for d in self.ducks if d.up.is_set()]

    async def kill_duck(self, nursery: trio.Nursery, duck: Duck) -> None:
        """SIGKILL one ``duck serve`` and start it again (returns once it is up)."""
        proc = duck.process
        duck.up = trio.Event()
        if proc is not None:
            proc.kill()
            await proc.wait()
        await self._start_duck(nursery, duck)

    async def kill_db(self) -> None:
        """SIGKILL the database server; its supervisor restarts it on the same port.
        Returns once it answers again."""
        pid = self.db.statistics()["pid"]
        restarts = self.db.restarts
        if isinstance(pid, int):
            os.kill(pid, signal.SIGKILL)
        with trio.fail_after(START_TIMEOUT):
            while self.db.restarts == restarts or self.db.statistics()["pid"] in (None, pid):
                await trio.sleep(0.1)
            await self.wait_db()

    async def wait_db(self) -> None:
        """Wait until the database answers a ping."""
        from pymongo import MongoClient  # the harness reads the database directly

        def ping() -> bool:
            client: MongoClient = MongoClient(self.uri, serverSelectionTimeoutMS=2000)
            try:
                client.admin.command("ping")
                return True
            except Exception:
                return False
            finally:
                client.close()

        while not await trio.to_thread.run_sync(ping):
            await trio.sleep(0.2)

    async def wait_all_up(self) -> None:
        """Wait until the database and every ``duck serve`` are up."""
        await self.wait_db()
        for duck in self.ducks:
            await duck.up.wait()

    async def stop(self) -> None:
        """SIGKILL every process: the run is over and verified, its files are scratch
        (a polite stop costs seconds: the database ignores an early SIGTERM for 10 s).
        The caller cancels the database's supervisor right after, in the same tick,
        so that it does not restart it."""
        for duck in self.ducks:
            proc = duck.process
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
        pid = self.db.statistics()["pid"]
        if isinstance(pid, int):
            os.kill(pid, signal.SIGKILL)


async def _drain(proc: trio.Process, duck: Duck, ready: trio.Event) -> None:
    """Read a process's log: its ports from the ready line, a bounded tail kept."""
    assert proc.stderr is not None
    buffer = b""
    async for chunk in proc.stderr:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            duck.log.append(line)
            del duck.log[:-200]
            match = _READY.search(line)
            if match and duck.process is proc:
                for item in match.group(1).split(b", "):
                    name, _, value = item.partition(b"=")
                    duck.ports[name.decode()] = int(value)
                ready.set()
