"""Worker processes that index whole messages off the event loop's thread.

Why: under imaptest's load duck's commands/s is its event loop's CPU per command
turned upside down (the thread stays ~85% busy round after round:
docs/architecture.md), and an APPEND is the costliest command, ~2 ms of that
thread, of which indexing a typical message (MIME structure, envelope, SEARCH
text) is ~0.4 ms. Indexed by a process of its own (duck/mime/worker.py) on a core
the loop leaves idle, it costs the loop the (un)pickling of the request and the
reply and two socket calls (measured: duck's CPU per imaptest command ~10% lower).

A message goes to a worker only from inside an inline store call (a task that can
wait without holding up the thread: engine/inline.py) and up to ``MAX_SIZE``
(larger ones are indexed in a worker thread already: ingest.py). Anything a worker
fails at (it died, it answered garbage or past ``MAX_REPLY``, it took longer than
``TIMEOUT``) is indexed by the caller itself, as every message was before: the
workers save CPU, nothing depends on them. At most ``WORKERS`` per ``trio.run``,
started on first use, one request at a time each, stopped when the run ends (and
by themselves when their socket closes: a dead duck leaves none behind).
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from typing import Any

import greenback
import trio

from duck.mime import IndexedMessage, IndexerLimits
from duck.mime.events import Event
from duck.mime.worker import frame

from ..engine import inline, promptly

#: Worker processes at most per ``trio.run`` (0: every message indexed in place).
WORKERS = int(os.environ.get("DUCK_PARSE_WORKERS", "1"))
#: Largest message sent to a worker.
MAX_SIZE = 256 * 1024
#: Largest reply read back (a message's events and index pickled: ~7x its size
#: measured on imaptest's); past it the worker is dropped and the caller indexes.
MAX_REPLY = 16 * MAX_SIZE
#: Seconds a worker may take (the indexer's caps bound its work: a worker this slow
#: is stuck or starved, and is dropped).
TIMEOUT = 10.0
_LENGTH = 4
#: Most bytes one read of a reply takes.
_RECEIVE = 1 << 20

#: What indexing a whole message gives: its events, the indexed message, and what
#: the worker made of it for each extra function named (None: the caller's to make).
Indexed = tuple[list[Event], IndexedMessage, dict[str, dict[str, bytes] | None]]


class _Worker:
    """One worker process and the parent's end of its socket."""

    def __init__(self) -> None:
        parent, child = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "duck.mime.worker", str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True)  # (a Ctrl-C in a terminal is duck's alone)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        # The socket is used directly, waiting only when it would block (as the
        # database's in engine/wire.py): trio's socket methods make each call a
        # schedule point, and under imaptest's load each one waited for a pass of
        # every other ready task (~2 ms), four of them a request besides the wait
        # for the reply (the slot, the send, each of two reads): measured, an
        # APPEND waited ~14 ms for a parse of ~1 ms, and ~8 ms so.
        parent.setblocking(False)
        self.sock = parent

    async def ask(self, payload: bytes) -> Any:
        """The worker's unpickled reply to ``payload`` (OSError when it failed)."""
        sock = self.sock
        data = memoryview(frame(payload))
        while data:
            try:
                data = data[sock.send(data):]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
        buffer = bytearray()
        size = None
        while size is None or len(buffer) < _LENGTH + size:
            try:
                chunk = sock.recv(_RECEIVE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
                continue
            if not chunk:
                raise OSError("the parse worker closed its socket")
            buffer += chunk
            if size is None and len(buffer) >= _LENGTH:
                size = int.from_bytes(buffer[:_LENGTH], "little")
                if size > MAX_REPLY:
                    raise OSError(f"a reply of {size} bytes from the parse worker")
        if len(buffer) != _LENGTH + size:
            raise OSError("the parse worker sent more than its reply")
        return pickle.loads(memoryview(buffer)[_LENGTH:])

    def close(self) -> None:
        """Stop the process (it would stop by itself at the socket's end too)."""
        if self.sock.fileno() >= 0:
            trio.lowlevel.notify_closing(self.sock)  # (always inside the run)
        self.sock.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Parsers:
    """The parse workers of one ``trio.run``."""

    def __init__(self, size: int) -> None:
        self._idle: list[_Worker] = []
        self._slots = trio.Semaphore(max(size, 1))
        #: Messages a worker indexed; failures (the caller indexed those).
        self.indexed = 0
        self.failures = 0

    def statistics(self) -> dict[str, int]:
        """Messages indexed by a worker, and failures (indexed by the caller)."""
        return {"indexed": self.indexed, "failures": self.failures}

    async def index(self, data: bytes, limits: IndexerLimits,
                    extras: tuple[str, ...] = ()) -> Indexed | None:
        """``data`` indexed by a worker, with the results of the ``extras`` functions
        (duck/mime/worker.py); None when none could (index it yourself)."""
        payload = pickle.dumps((data, limits, extras), protocol=pickle.HIGHEST_PROTOCOL)
        # (A free slot at once, no schedule point: engine/promptly.py.)
        await promptly.acquire(self._slots)
        try:
            worker = self._idle.pop() if self._idle else None
            reply: Any = None
            try:
                if worker is None:
                    worker = _Worker()
                with trio.move_on_after(TIMEOUT):
                    reply = await worker.ask(payload)
            except (OSError, ValueError, EOFError, pickle.UnpicklingError):
                reply = None
            except BaseException:
                if worker is not None:
                    worker.close()
                raise
            if worker is not None:
                if isinstance(reply, tuple) and reply:
                    self._idle.append(worker)
                else:  # (dead, stuck, or out of step with its socket)
                    worker.close()
        finally:
            self._slots.release()
        if not (isinstance(reply, tuple) and len(reply) == 4 and reply[0] is True
                and isinstance(reply[3], dict)):
            self.failures += 1
            return None
        self.indexed += 1
        return reply[1], reply[2], reply[3]

    def close(self) -> None:
        """Stop every idle worker (a busy one is stopped as its request ends)."""
        idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()

    async def _reap(self) -> None:
        # (A system task: cancelled when the run's main task ends.)
        try:
            await trio.sleep_forever()
        finally:
            self.close()


_PARSERS: trio.lowlevel.RunVar[Parsers] = trio.lowlevel.RunVar("duck_parsers")


def parsers() -> Parsers:
    """This run's parse workers."""
    try:
        return _PARSERS.get()
    except LookupError:
        made = Parsers(WORKERS)
        _PARSERS.set(made)
        trio.lowlevel.spawn_system_task(made._reap, name="duck parse workers")
        return made


def statistics() -> dict[str, int]:
    """This run's parse worker figures (zeros before its first use)."""
    try:
        return _PARSERS.get().statistics()
    except (LookupError, RuntimeError):  # (none yet; outside a run)
        return {"indexed": 0, "failures": 0}


def index_whole(data: bytes, limits: IndexerLimits,
                extras: tuple[str, ...] = ()) -> Indexed | None:
    """``data`` indexed by a worker process, with the results of ``extras``, from
    inside an inline store call (the task waits, the thread goes on); None where no
    worker is used or one failed."""
    if WORKERS <= 0 or len(data) > MAX_SIZE or inline.ACTIVE.get() is None:
        return None
    result: Indexed | None = greenback.await_(parsers().index(data, limits, extras))
    return result
