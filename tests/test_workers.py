"""``duck serve --workers N``: N processes on one database and one set of ports.

The end-to-end test runs the real command on the embedded database, with real
sockets on loopback: IDLE sessions on both workers all see one LMTP delivery
within 100 ms, a killed worker is restarted, and SIGTERM on the parent stops
everything (BYE to IMAP clients, the database last) and leaves no process behind.
Which worker serves a connection is read from /proc: the server end of the
connection is a socket inode, held open by exactly one worker.
"""

from __future__ import annotations

import errno
import os
import random
import re
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from duck import workers
from duck.cli import build_parser
from duck.config import Config, ConfigError, load_config
from duck.net import bind_tcp
from duck.workers import WorkerPool
from tests.api.multiproc import LineClient, lmtp_deliver, processes, processes_using

ADDRESS = "walt@example.com"
PASSWORD = "walt-secret"
_READY = re.compile(rb"duck ready: (.*), workers=(\d+)")
_BACK = re.compile(rb"worker (\d+) is back")
_LINUX = sys.platform == "linux"
#: The embedded engine, as the rest of the suite chooses it (tests/conftest.py).
ENGINE = os.environ.get("DUCK_TEST_ENGINE", "rust")


def test_workers_setting() -> None:
    assert load_config(environ={}).workers == 1
    assert load_config(environ={"DUCK_WORKERS": "3"}).workers == 3
    args = build_parser().parse_args(["serve", "--workers", "4"])
    assert load_config(None, {"workers": args.workers}, environ={}).workers == 4
    for bad in ("0", "-1", "100000"):
        with pytest.raises(ConfigError, match="workers"):
            load_config(environ={"DUCK_WORKERS": bad})


@pytest.mark.skipif(not _LINUX, reason="SO_REUSEPORT balancing is Linux's")
def test_bind_tcp_reuse_port_group() -> None:
    first = bind_tcp("127.0.0.1", 0, reuse_port=True)
    port = first[0].getsockname()[1]
    second = bind_tcp("127.0.0.1", port, reuse_port=True, probe=False)
    try:
        # Another binding that probes first refuses a port the group holds.
        with pytest.raises(OSError) as caught:
            bind_tcp("127.0.0.1", port, reuse_port=True)
        assert caught.value.errno == errno.EADDRINUSE
        # The kernel spreads connections over both sockets of the group.
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
        counts = []
        for sock in (first[0], second[0]):
            sock.setblocking(False)
            accepted = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                accepted += 1
            counts.append(accepted)
        assert sum(counts) == 40 and min(counts) > 0, counts
        for client in clients:
            client.close()
    finally:
        for sock in first + second:
            sock.close()


# -- helpers for the real command -------------------------------------------------


@attrs.define
class Duck:
    """A ``duck serve --workers N`` subprocess and what its log said."""

    process: trio.Process
    data_dir: Path
    ports: dict[str, int] = attrs.Factory(dict)
    log: list[bytes] = attrs.Factory(list)
    changed: trio.Event = attrs.Factory(trio.Event)

    async def wait_log(self, pattern: re.Pattern[bytes], count: int = 1) -> re.Match[bytes]:
        """The ``count``-th log line matching ``pattern`` (waits for it)."""
        while True:
            found = [m for m in map(pattern.search, self.log) if m]
            if len(found) >= count:
                return found[count - 1]
            assert self.process.returncode is None, self.tail()
            await self.changed.wait()
            self.changed = trio.Event()

    def tail(self) -> str:
        return b"\n".join(self.log[-60:]).decode(errors="replace")

    def workers(self) -> list[int]:
        """Pids of the live worker processes (children started with --worker)."""
        return sorted(pid for pid, ppid, state, cmdline in processes()
                      if ppid == self.process.pid and b"--worker" in cmdline and state != "Z")


async def _drain(duck: Duck) -> None:
    assert duck.process.stderr is not None
    buffer = b""
    async for chunk in duck.process.stderr:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        duck.log.extend(lines)
        duck.changed.set()
    duck.changed.set()


def _free_port() -> int:
    """A free port below the ephemeral range, which other tests' port-0 listeners and
    outgoing connections draw from, so that it stays free until duck binds it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(max(1024, low - 20000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


@asynccontextmanager
async def duck_workers(data_dir: Path, workers: int) -> AsyncIterator[Duck]:
    """``duck serve --workers N`` on the embedded database and free ports; killed
    (with whatever it left) if the test did not stop it."""
    cmd = [sys.executable, "-m", "duck.cli", "serve", "--workers", str(workers),
           "--data-dir", str(data_dir), "--embedded-engine", ENGINE,
           "--imap-port", "0", "--imaps-port", str(_free_port()), "--lmtp-port", "0",
           "--pop3-port", "0", "--pop3s-port", "0", "--managesieve-port", "0", "--api-port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DUCK_SHUTDOWN_GRACE": "3"}
    env.pop("DUCK_WORKERS", None)
    process = await trio.lowlevel.open_process(cmd, stderr=-1, env=env)
    duck = Duck(process, data_dir)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, duck)
            with trio.fail_after(60):
                ready = await duck.wait_log(_READY)
            assert int(ready.group(2)) == workers
            for item in ready.group(1).split(b", "):
                name, _, value = item.partition(b"=")
                duck.ports[name.decode()] = int(value)
            yield duck
    except BaseException:
        print(duck.tail())  # shown with the failure
        raise
    finally:
        with trio.CancelScope(shield=True):
            left = duck.workers() if process.returncode is None else []
            if process.returncode is None:
                process.kill()
                await process.wait()
            for pid in left + processes_using(data_dir / "db"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _server_inode(server_port: int, client_port: int) -> int:
    """The inode of the server end of the loopback connection from ``client_port``."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote and fields[3] == "01":
            return int(fields[9])
    raise AssertionError(f"no established connection {remote} -> {local}")


def _owner(inode: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the socket ``inode`` open."""
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None


async def _session(duck: Duck, *, idle: bool) -> tuple[LineClient, int]:
    """An IMAP session (logged in, INBOX selected, IDLE if asked) and its worker's pid."""
    client = await LineClient.connect(duck.ports["imap"])
    assert (await client.line()).startswith(b"* OK")
    # The greeting came, so a worker has accepted the connection and holds it.
    client_port = client.stream.socket.getsockname()[1]
    inode = _server_inode(duck.ports["imap"], client_port)
    pid = _owner(inode, duck.workers())
    assert pid is not None, "no worker holds the connection"
    if idle:
        await client.command("a1", f"LOGIN {ADDRESS} {PASSWORD}")
        await client.command("a2", "SELECT INBOX")
        await client.send(b"a3 IDLE\r\n")
        assert (await client.line()).startswith(b"+")
    return client, pid


# -- the real command -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not _LINUX, reason="reads /proc")
async def test_two_workers_serve_one_port_and_stop_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with duck_workers(data_dir, 2) as duck:
        first_pids = duck.workers()
        assert len(first_pids) == 2, duck.tail()
        # The certificate was generated once, by the parent, before the workers.
        assert sum(b"generated a self-signed TLS certificate" in line
                   for line in duck.log) == 1
        with trio.fail_after(10):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{duck.ports['api']}",
                                         timeout=5) as api:
                r = await api.post("/users", json={"username": ADDRESS, "password": PASSWORD})
                assert r.status_code == 200, r.text
                # Every worker's /health reports that worker's components.
                for _ in range(6):
                    health = await api.get("/health")
                    assert health.status_code == 200
                    assert health.json()["components"] == {
                        "database": True, "imap": True, "imaps": True, "lmtp": True,
                        "api": True}

        # 1. IDLE sessions until both workers hold some (SO_REUSEPORT hashes each
        #    connection; 40 on one worker out of two would be a broken balance).
        sessions: list[tuple[LineClient, int]] = []
        with trio.fail_after(30):
            while len(sessions) < 4 or len({pid for _, pid in sessions}) < 2:
                assert len(sessions) < 40, f"all sessions on {sessions[0][1]}"
                sessions.append(await _session(duck, idle=True))
        assert {pid for _, pid in sessions} == set(first_pids)

        # 2. One delivery (on one worker) reaches every IDLE session on both.
        seen: dict[int, float] = {}

        async def wait_exists(number: int, client: LineClient) -> None:
            await client.until(b"* 1 EXISTS")
            seen[number] = trio.current_time()

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for number, (client, _) in enumerate(sessions):
                    nursery.start_soon(wait_exists, number, client)
                delivered = await lmtp_deliver(
                    duck.ports["lmtp"], ADDRESS,
                    b"From: a@example.org\r\nSubject: to all workers\r\n\r\nhello\r\n")
        late = {n: round(t - delivered, 3) for n, t in seen.items() if t - delivered > 0.1}
        assert late == {}, f"EXISTS later than 100 ms after the 250: {late}"

        # 3. A worker that dies is logged and restarted on the same ports.
        victim = sessions[0][1]
        os.kill(victim, signal.SIGKILL)
        with trio.fail_after(30):
            back = await duck.wait_log(_BACK)
            assert any(f"worker {back.group(1).decode()}: pid {victim} was killed by SIGKILL; "
                       "restarting it in 1 s".encode() in line for line in duck.log), duck.tail()
            pids = duck.workers()
            assert len(pids) == 2 and victim not in pids
            (new,) = set(pids) - set(first_pids)
            for _ in range(40):
                client, pid = await _session(duck, idle=False)
                await client.stream.aclose()
                if pid == new:
                    break
            else:
                raise AssertionError(f"the restarted worker {back.group(0)!r} gets no connection")
        survivors = [(c, pid) for c, pid in sessions if pid != victim]
        assert survivors

        # 4. IMAPS works on the shared port (one certificate for all workers).
        with trio.fail_after(10):
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            tls = await trio.open_ssl_over_tcp_stream("127.0.0.1", duck.ports["imaps"],
                                                      ssl_context=context)
            assert (await tls.receive_some(4096)).startswith(b"* OK")
            await tls.aclose()

        # 5. SIGTERM on the parent: BYE to the IDLE sessions, the workers stop, then
        #    the database; nothing is left running.
        assert processes_using(data_dir / "db"), "no embedded database process"
        duck.process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            for client, _ in survivors:
                bye = await client.until(b"* BYE")
                assert bye[-1].startswith(b"* BYE")
            assert await duck.process.wait() == 0, duck.tail()
        for pid in [*first_pids, new]:
            assert not _alive(pid), f"worker {pid} left behind"
        with trio.fail_after(5):
            while processes_using(data_dir / "db"):
                await trio.sleep(0.1)
        stopped = [i for i, line in enumerate(duck.log) if b"duck stopped" in line]
        database = [i for i, line in enumerate(duck.log) if b"duck.workers: duck stopped" in line]
        assert len(stopped) == 3 and database == [max(stopped)], duck.tail()


@pytest.mark.slow
@pytest.mark.skipif(not _LINUX, reason="reads /proc")
async def test_what_one_worker_commits_the_other_knows_at_once(tmp_path: Path) -> None:
    """The workers tell each other their journal entries (store/push/siblings.py):
    a change acknowledged by one worker is there for the very next command on the
    other (EXPUNGE finds the \\Deleted just set, NOOP reports the flag), also for a
    worker restarted since, and the database they share keeps no oplog."""
    data_dir = tmp_path / "data"
    async with duck_workers(data_dir, 2) as duck:
        (database,) = processes_using(data_dir / "db")
        assert b"SECANTUS_DISABLE_OPLOG=1" in Path(f"/proc/{database}/environ").read_bytes()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{duck.ports['api']}",
                                     timeout=5) as api:
            r = await api.post("/users", json={"username": ADDRESS, "password": PASSWORD})
            assert r.status_code == 200, r.text

        async def one_on_each() -> dict[int, LineClient]:
            on: dict[int, LineClient] = {}
            with trio.fail_after(30):
                while len(on) < 2:
                    client, pid = await _session(duck, idle=False)
                    if pid in on:
                        await client.stream.aclose()
                        continue
                    await client.command("l", f"LOGIN {ADDRESS} {PASSWORD}")
                    await client.command("s", "SELECT INBOX")
                    on[pid] = client
            return on

        with trio.fail_after(20):
            for n in range(3):
                await lmtp_deliver(duck.ports["lmtp"], ADDRESS,
                                   f"Subject: {n}\r\n\r\nbody {n}\r\n".encode())
        on = await one_on_each()
        (_, a), (other, b) = on.items()
        with trio.fail_after(10):
            for round_ in range(5):
                await a.command("t1", "STORE 1 +FLAGS.SILENT (\\Deleted)")
                lines = await b.command("t2", "EXPUNGE")
                assert b"* 1 EXPUNGE" in lines, (round_, lines)
                await b.command("t3", "NOOP")
                await a.command("t4", "NOOP")
                await a.command("t5", "STORE 1 +FLAGS.SILENT (\\Flagged)")
                lines = await b.command("t6", "NOOP")
                assert any(line.startswith(b"* 1 FETCH") and b"\\Flagged" in line
                           for line in lines), (round_, lines)
                await a.command("t7", "NOOP")
                await lmtp_deliver(duck.ports["lmtp"], ADDRESS, b"Subject: more\r\n\r\nx\r\n")
                for client in (a, b):
                    await client.command("t8", "NOOP")

        # Each worker counts what it sent and received (a scrape reaches one).
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{duck.ports['api']}",
                                     timeout=5) as api:
            families = {s.name + str(sorted(s.labels.items())): s.value
                        for f in text_string_to_metric_families((await api.get("/metrics")).text)
                        for s in f.samples if s.name.startswith("duck_notifier_sibling")}
        assert families["duck_notifier_sibling_entries_total[('direction', 'sent')]"] > 0
        assert families["duck_notifier_sibling_entries_total[('direction', 'received')]"] > 0
        assert families["duck_notifier_sibling_lost_total[]"] == 0

        # A worker killed and restarted is told the other's changes as well.
        os.kill(other, signal.SIGKILL)
        with trio.fail_after(30):
            await duck.wait_log(_BACK)
        for client in (a, b):
            await client.stream.aclose()
        on = await one_on_each()
        assert other not in on
        with trio.fail_after(10):
            (_, a), (_, b) = on.items()
            for first, second in ((a, b), (b, a)):
                await first.command("t1", "STORE 1 +FLAGS.SILENT (\\Deleted)")
                lines = await second.command("t2", "EXPUNGE")
                assert b"* 1 EXPUNGE" in lines, lines
                await first.command("t3", "NOOP")
        duck.process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await duck.process.wait() == 0, duck.tail()


@pytest.mark.slow
@pytest.mark.skipif(not _LINUX, reason="reads /proc")
async def test_without_reuse_port_the_workers_share_the_parents_sockets(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    # Where SO_REUSEPORT does not balance, every worker accepts from one socket per
    # port that the parent keeps; it is closed when the parent stops.
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0,
                    pop3_port=0, pop3s_port=0, managesieve_port=0, api_port=0, mongo_uri=mongo_uri,
                    database=db_name, workers=2,
                    shutdown_grace=1.0)
    pool = WorkerPool(config, reuse_port=False)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.run)
            await pool.ready.wait()
            pids = [w["pid"] for w in pool.statistics()["workers"]]
            port = pool.ports["imap"]
            served = set()
            for _ in range(8):
                client = await LineClient.connect(port)
                assert (await client.line()).startswith(b"* OK")
                inode = _server_inode(port, client.stream.socket.getsockname()[1])
                served.add(_owner(inode, pids))
                await client.stream.aclose()
            assert served and served <= set(pids)
            pool.request_shutdown()
    assert pool.exit_code == 0
    assert not any(_alive(pid) for pid in pids)
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)


async def test_a_worker_that_keeps_dying_stops_duck(
    mongo_uri: str, db_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(workers, "RESTART_BACKOFF", 0.01)
    config = Config(data_dir=tmp_path / "data", imap_port=0, imaps_port=0, lmtp_port=0,
                    pop3_port=0, pop3s_port=0, managesieve_port=0, api_port=0, mongo_uri=mongo_uri,
                    database=db_name, workers=2)
    # A stand-in worker: takes its settings, says it is ready, and dies.
    pool = WorkerPool(config, worker_command=["/bin/sh", "-c", "read spec; echo ready; exit 3"])
    with trio.fail_after(30):
        await pool.run()
    assert pool.exit_code == 1
    assert "exited with status 3; restarting it in 0.01 s" in caplog.text
    assert f"exited {workers.RESTART_LIMIT + 1} times within" in caplog.text
    assert not any(_alive(w["pid"]) for w in pool.statistics()["workers"] if w["pid"])
