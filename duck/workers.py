"""``duck serve --workers N``: N server processes on one database and shared ports.

The parent binds the listening sockets, starts the embedded database (unless a URI
is configured) and generates the self-signed certificate, once, then runs N worker
processes, each a full duck (duck/server.py: IMAP, IMAPS, LMTP, the HTTP API, the
notifier, its own store client) on the same URI and data directory. On the
embedded server the parent starts, the workers tell each other the journal entries
they commit, through the parent (``Hub``), and a file they all map says what each
committed (store/push/siblings.py), so the server keeps no oplog; on a configured
URI each reads the journal's change stream, as processes on different hosts do.

Ports: on Linux each worker gets listening sockets of its own, one SO_REUSEPORT
group per port, and the kernel spreads new connections over the group. The parent
closes its copies once a worker has started, so a worker that dies takes its
sockets with it (connections waiting in its backlog are reset; new ones go to the
other workers) and its successor gets fresh sockets in the same group. Elsewhere
all workers accept from one shared socket per port, which the parent keeps open.

Parent to worker: the worker's settings as one JSON line on its stdin, which then
stays open; end of file asks the worker to stop gracefully, so a parent that dies
(even by SIGKILL) takes its workers with it. Worker to parent: ``ready`` on its
stdout once it listens. Both log to the inherited stderr.

Per-process limits (IMAP connections per address and per user, the login
throttle, SSE streams per user, webhook concurrency) apply per worker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections import deque
from typing import IO, Any

import attrs
import trio

from .config import Config, ConfigError
from .ctl.locate import ServerState, keep_state
from .net import bind_tcp
from .server import Server, open_database, stop_on_signals
from .store import EmbeddedDatabase, Store
from .store.push.siblings import Hub, Link, Marks
from .tls import ensure_self_signed

log = logging.getLogger(__name__)

#: One listening group per port with the kernel balancing; elsewhere one shared socket.
REUSE_PORT = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
#: Seconds before the first restart of a worker; doubled per restart up to MAX_BACKOFF.
RESTART_BACKOFF = 1.0
MAX_BACKOFF = 30.0
#: A worker that ran this long is healthy again: the back-off starts over.
STABLE_AFTER = 60.0
#: More restarts than this of one worker within RESTART_WINDOW seconds stops duck.
RESTART_LIMIT = 5
RESTART_WINDOW = 600.0
#: Seconds beyond shutdown_grace a stopping worker gets before SIGKILL.
STOP_MARGIN = 10.0
#: The worker's line on its stdout once it serves.
READY = b"ready\n"


@attrs.frozen
class WorkerSpec:
    """What a worker process is told on its stdin."""

    index: int
    config: Config
    #: Inherited listening sockets: descriptors by port.
    listen_fds: dict[int, list[int]]
    #: The journal feed's socket and the marks' file, with the marks' rows (the
    #: workers), where the parent runs the embedded server (store/push/siblings.py).
    feed_fd: int | None = None
    marks_fd: int | None = None
    marks_rows: int = 0

    def to_json(self) -> bytes:
        """One line of JSON."""
        config = attrs.asdict(self.config)
        return json.dumps(
            {"worker": self.index, "config": config,
             "listen_fds": {str(port): fds for port, fds in self.listen_fds.items()},
             "feed_fd": self.feed_fd, "marks_fd": self.marks_fd,
             "marks_rows": self.marks_rows},
            default=str,
        ).encode() + b"\n"

    def siblings(self) -> Link | None:
        """The worker's end of the journal feed, with the marks; None without."""
        if self.feed_fd is None:
            return None
        marks = (Marks(self.marks_fd, self.marks_rows, self.index - 1)
                 if self.marks_fd is not None else None)
        return Link(self.feed_fd, marks)

    @classmethod
    def read(cls, stream: IO[bytes]) -> WorkerSpec | None:
        """The spec from a worker's stdin; None if the parent closed it first (it is
        stopping). Raises ConfigError for anything else that is not a spec."""
        line = stream.readline()
        if not line.endswith(b"\n"):
            return None
        try:
            data = json.loads(line)
            return cls(
                index=int(data["worker"]),
                config=Config(**data["config"]).validate(),
                listen_fds={int(port): [int(fd) for fd in fds]
                            for port, fds in data["listen_fds"].items()},
                feed_fd=_optional_int(data.get("feed_fd")),
                marks_fd=_optional_int(data.get("marks_fd")),
                marks_rows=int(data.get("marks_rows") or 0),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"bad worker specification: {exc}") from exc


@attrs.define
class _Slot:
    """One worker position: its current process and its restart history."""

    index: int
    process: trio.Process | None = None
    ever_ready: bool = False
    #: Restarts so far, and when the recent ones were (for RESTART_LIMIT).
    restarted: int = 0
    restarts: deque[float] = attrs.Factory(deque)


@attrs.define
class WorkerPool:
    """The parent of ``duck serve --workers N`` (``config.workers``)."""

    config: Config
    shutdown: trio.Event = attrs.Factory(trio.Event)
    #: Set once every worker has reported ready (the first time).
    ready: trio.Event = attrs.Factory(trio.Event)
    #: The bound ports, by service (port 0 resolved).
    ports: dict[str, int] = attrs.Factory(dict)
    embedded: EmbeddedDatabase | None = None
    mongo_uri: str | None = None
    #: 0 after a requested stop; 1 when a worker could not be kept running.
    exit_code: int = 0
    reuse_port: bool = REUSE_PORT
    #: How a worker is started (its settings follow on its stdin).
    worker_command: list[str] = attrs.Factory(
        lambda: [sys.executable, "-m", "duck.cli", "serve", "--worker"]
    )
    #: The workers tell each other their journal entries (store/push/siblings.py)
    #: where the parent runs the embedded server, which then keeps no oplog; off
    #: (``DUCK_SIBLING_FEED=0``, to compare), they read its change stream.
    sibling_feed: bool = attrs.Factory(lambda: os.environ.get("DUCK_SIBLING_FEED", "1") != "0")
    _hub: Hub | None = None
    _marks_fd: int | None = None
    _slots: list[_Slot] = attrs.Factory(list)
    #: Sockets bound but not yet handed to a worker, by slot (SO_REUSEPORT groups),
    #: or the shared sockets every worker gets (under key -1) without SO_REUSEPORT.
    _sockets: dict[int, dict[str, list[socket.socket]]] = attrs.Factory(dict)
    _worker_config: Config | None = None

    def request_shutdown(self) -> None:
        """Stop the workers gracefully, then the embedded database (idempotent)."""
        self.shutdown.set()

    def statistics(self) -> dict[str, Any]:
        """The workers' pids (None while one is down) and restart counts."""
        return {
            "workers": [
                {"index": s.index, "pid": s.process.pid if s.process else None,
                 "restarts": s.restarted}
                for s in self._slots
            ],
            "ports": dict(self.ports),
        }

    async def run(self) -> None:
        """Bind, start the database and the workers; return once all have stopped."""
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self._slots = [_Slot(i) for i in range(1, config.workers + 1)]
        try:
            self._bind_all()
            async with trio.open_nursery() as root:
                # The database outlives the workers: it is stopped last.
                self.mongo_uri, self.embedded = await open_database(
                    config, root, oplog=not self.sibling_feed)
                if self.embedded is not None and self.sibling_feed:
                    self._hub = Hub()
                    self._marks_fd = Marks.create(len(self._slots))
                # The admin commands find the database here (duck/ctl/locate.py).
                await root.start(keep_state, config.data_dir, ServerState(
                    os.getpid(), self.mongo_uri, config.database))
                if not self.shutdown.is_set():
                    await self._supervise()
                root.cancel_scope.cancel()
        finally:
            self._close_sockets()
            if self._marks_fd is not None:
                os.close(self._marks_fd)
                self._marks_fd = None
        log.info("duck stopped")

    def _services(self) -> list[tuple[str, str, int]]:
        config = self.config
        services = [("imap", config.host, config.imap_port)]
        if config.imaps_port:
            services.append(("imaps", config.host, config.imaps_port))
        if config.pop3_port:
            services.append(("pop3", config.host, config.pop3_port))
        if config.pop3s_port:
            services.append(("pop3s", config.host, config.pop3s_port))
        if config.managesieve_port:
            services.append(("managesieve", config.host, config.managesieve_port))
        if config.managesieves_port:
            services.append(("managesieves", config.host, config.managesieves_port))
        services += [("lmtp", config.lmtp_host, config.lmtp_port),
                     ("api", config.api_host, config.api_port)]
        if config.socketmap_port:
            services.append(("socketmap", config.socketmap_host, config.socketmap_port))
        return services

    def _bind_slot(self, *, first: bool) -> dict[str, list[socket.socket]]:
        """Listening sockets for one worker; the first binding probes each port (a
        port in use fails here, before anything starts) and resolves port 0."""
        bound: dict[str, list[socket.socket]] = {}
        try:
            for name, host, port in self._services():
                port = self.ports.get(name, port)
                try:
                    sockets = bind_tcp(host, port, reuse_port=self.reuse_port, probe=first)
                except OSError as exc:
                    raise OSError(exc.errno, f"{name} on {host}:{port}: {exc.strerror}") from exc
                bound[name] = sockets
                self.ports[name] = sockets[0].getsockname()[1]
        except BaseException:
            _close(bound)
            raise
        return bound

    def _bind_all(self) -> None:
        if not self.reuse_port:
            self._sockets[-1] = self._bind_slot(first=True)
            return
        for number, slot in enumerate(self._slots):
            self._sockets[slot.index] = self._bind_slot(first=number == 0)

    def _close_sockets(self) -> None:
        for bound in self._sockets.values():
            _close(bound)
        self._sockets.clear()

    async def _supervise(self) -> None:
        config = self.config
        assert self.mongo_uri is not None
        cert, key = config.tls_cert, config.tls_key
        if cert is None or key is None:
            # Once, here: workers generating it at the same moment would race.
            cert, key = ensure_self_signed(config.data_dir, config.hostname)
        # Indexes and start-up migrations once, here, rather than by N workers at the
        # same moment; the workers' own opening finds them done (and one of them
        # builds the digests marked pending, in the background).
        store = await Store.open(self.mongo_uri, config.database, digest_in_background=True)
        await store.aclose()
        self._worker_config = attrs.evolve(
            config, mongo_uri=self.mongo_uri, tls_cert=cert, tls_key=key, workers=1,
            imap_port=self.ports["imap"], imaps_port=self.ports.get("imaps", 0),
            lmtp_port=self.ports["lmtp"], api_port=self.ports["api"],
            pop3_port=self.ports.get("pop3", 0), pop3s_port=self.ports.get("pop3s", 0),
            socketmap_port=self.ports.get("socketmap", 0),
        )
        async with trio.open_nursery() as outer:
            outer.start_soon(self._stop_when_asked)
            async with trio.open_nursery() as slots:
                for slot in self._slots:
                    slots.start_soon(self._keep_running, slot)
            outer.cancel_scope.cancel()

    async def _stop_when_asked(self) -> None:
        await self.shutdown.wait()
        log.info("stopping %d worker(s) (grace %.0f s)", len(self._slots),
                 self.config.shutdown_grace)
        # Without SO_REUSEPORT the shared sockets are the parent's too: closed now,
        # so that nothing new queues on them while the workers drain.
        _close(self._sockets.pop(-1, {}))
        for slot in self._slots:
            if slot.process is not None and slot.process.stdin is not None:
                await _close_quietly(slot.process.stdin)
        await trio.sleep(self.config.shutdown_grace + STOP_MARGIN)
        for slot in self._slots:
            if slot.process is not None and slot.process.returncode is None:
                log.warning("worker %d (pid %d) did not stop; killing it",
                            slot.index, slot.process.pid)
                slot.process.kill()

    async def _keep_running(self, slot: _Slot) -> None:
        """Run the slot's worker; restart it when it exits on its own (see the
        module docstring for the policy)."""
        backoff = RESTART_BACKOFF
        while not self.shutdown.is_set():
            started = trio.current_time()
            reason = await self._run_worker(slot)
            if self.shutdown.is_set():
                return
            if not slot.ever_ready:
                # Never came up: a setting or the environment, which a restart won't fix.
                log.error("worker %d could not start (%s); stopping duck", slot.index, reason)
                self._fail()
                return
            now = trio.current_time()
            if now - started >= STABLE_AFTER:
                backoff = RESTART_BACKOFF
            slot.restarts.append(now)
            while slot.restarts and slot.restarts[0] < now - RESTART_WINDOW:
                slot.restarts.popleft()
            if len(slot.restarts) > RESTART_LIMIT:
                log.error("worker %d exited %d times within %.0f s (last: %s); stopping duck",
                          slot.index, len(slot.restarts), RESTART_WINDOW, reason)
                self._fail()
                return
            log.warning("worker %d: %s; restarting it in %g s", slot.index, reason, backoff)
            with trio.move_on_after(backoff):
                await self.shutdown.wait()
            slot.restarted += 1
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _fail(self) -> None:
        self.exit_code = 1
        self.request_shutdown()

    async def _run_worker(self, slot: _Slot) -> str:
        """Start the slot's worker and wait for it to exit; say how it ended."""
        assert self._worker_config is not None
        shared = -1 in self._sockets
        sockets = self._sockets.get(-1) or self._sockets.pop(slot.index, None)
        if sockets is None:
            try:
                sockets = self._bind_slot(first=False)
            except OSError as exc:
                return f"could not bind its sockets: {exc}"
        feed: socket.socket | None = None
        feed_fd: int | None = None
        try:
            fds = {self.ports[name]: [s.fileno() for s in socks] for name, socks in sockets.items()}
            passed = [fd for group in fds.values() for fd in group]
            if self._hub is not None:
                feed, feed_fd = Hub.pair()
                passed.append(feed_fd)
                if self._marks_fd is not None:
                    passed.append(self._marks_fd)
            spec = WorkerSpec(slot.index, self._worker_config, fds, feed_fd=feed_fd,
                              marks_fd=self._marks_fd, marks_rows=len(self._slots))
            process = await trio.lowlevel.open_process(
                self.worker_command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                pass_fds=passed,
            )
        except OSError as exc:
            if feed is not None:
                feed.close()
            return f"could not be started: {exc}"
        finally:
            if not shared:
                _close(sockets)  # the worker has its own copies (or there is no worker)
            if feed_fd is not None:
                os.close(feed_fd)
        slot.process = process
        log.info("worker %d started (pid %d)", slot.index, process.pid)
        assert process.stdin is not None and process.stdout is not None
        try:
            if self.shutdown.is_set():
                await _close_quietly(process.stdin)
            else:
                try:
                    await process.stdin.send_all(spec.to_json())
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # it died already, or we are stopping: the wait tells
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._wait_ready, slot, process.stdout)
                if feed is not None:
                    assert self._hub is not None
                    nursery.start_soon(self._hub.serve, slot.index, feed)
                    feed = None  # (the hub closes it)
                await process.wait()
                # What it wrote before it exited still counts; its end of file is due.
                nursery.cancel_scope.deadline = trio.current_time() + 1.0
        finally:
            if feed is not None:
                feed.close()
            if process.returncode is None:
                process.kill()  # cancelled: never leave a worker behind
            with trio.CancelScope(shield=True):
                await process.wait()
                await _close_quietly(process.stdin)
                await _close_quietly(process.stdout)
            slot.process = None
        return f"pid {process.pid} {_describe(process.returncode)}"

    async def _wait_ready(self, slot: _Slot, stdout: trio.abc.ReceiveStream) -> None:
        buffer = b""
        while READY not in buffer:
            chunk = await stdout.receive_some(4096)
            if not chunk:
                return
            buffer = (buffer + chunk)[-4096:]
        if slot.ever_ready:
            log.info("worker %d is back", slot.index)
        slot.ever_ready = True
        if not self.ready.is_set() and all(s.ever_ready for s in self._slots):
            self.ready.set()
            ports = ", ".join(f"{k}={v}" for k, v in self.ports.items())
            log.info("duck ready: %s, workers=%d", ports, len(self._slots))
        while await stdout.receive_some(4096):
            pass  # drained to the end, so that a stray write never blocks the worker


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _close(bound: dict[str, list[socket.socket]]) -> None:
    for sockets in bound.values():
        for sock in sockets:
            sock.close()


async def _close_quietly(stream: trio.abc.AsyncResource | None) -> None:
    if stream is not None:
        await trio.aclose_forcefully(stream)


def _describe(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


async def run_worker(spec: WorkerSpec) -> None:
    """The worker side: one Server on the inherited sockets until a signal or the
    parent's end of file on stdin."""
    server = Server(spec.config, listen_fds=spec.listen_fds, worker=spec.index,
                    siblings=spec.siblings())
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            await nursery.start(stop_on_signals, server.request_shutdown, scope.cancel)
            nursery.start_soon(_watch_parent, server)
            async with trio.open_nursery() as serving:
                await serving.start(server.run)
                with contextlib.suppress(BrokenPipeError):  # the parent is gone
                    os.write(sys.stdout.fileno(), READY)
        nursery.cancel_scope.cancel()


async def _watch_parent(server: Server) -> None:
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    async with stream:
        while await stream.receive_some(4096):
            pass
    if not server.shutdown.is_set():
        log.info("the parent asked to stop (or is gone): shutting down")
        server.request_shutdown()
