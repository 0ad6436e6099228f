"""The worker threads that run the store's blocking pymongo calls.

Every store call crosses from the trio thread to a worker thread and back, so the
crossing is paid per database round trip. ``trio.to_thread.run_sync`` (and its
lower half, ``start_thread_soon``) wakes an idle thread for each call and wakes the
trio loop for each result (a byte written to its wake-up socket, an epoll return):
on the machine bench/README.md measures on, ~150 us of CPU per call, as much as the
pymongo call itself.

This pool pays those wake-ups only when someone is asleep:

- calls wait in one queue that every worker takes from, so a worker that finishes
  a call takes the next one without sleeping or being woken;
- results wait in a per-run list, and the trio loop is woken once for all the
  results that came in before it got round to them (``_Run.drain``).

Under ten busy sessions that measured ~45 us of CPU per call instead of ~165 us
(a scratch loop of a 100 us call and 200 us of trio-side work per call); alone, a
call costs about what trio's costs.

What it keeps from ``trio.to_thread.run_sync``: the caller's contextvars
(metrics.py's command scope), at most ``size`` calls at a time (calls beyond wait
in the queue: the bound on threads, and so on database connections), and no
cancellation while a call runs (its result is always delivered).
"""

from __future__ import annotations

import collections
import contextvars
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")


class _Run:
    """One ``trio.run``'s side of the pool: the results not yet handed to their tasks."""

    __slots__ = ("lock", "results", "token", "woken")

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token
        self.results: collections.deque[tuple[trio.lowlevel.Task, outcome.Outcome[Any]]] = (
            collections.deque())
        self.lock = threading.Lock()
        #: A drain is scheduled on the trio loop and has not started yet.
        self.woken = False

    def deliver(self, task: trio.lowlevel.Task, result: outcome.Outcome[Any]) -> None:
        """From a worker thread: hand ``result`` to ``task``, waking the loop only
        when no drain is already on its way."""
        self.results.append((task, result))
        with self.lock:
            if self.woken:
                return
            self.woken = True
        self.token.run_sync_soon(self.drain)

    def drain(self) -> None:
        """On the trio thread: reschedule every task whose result came in."""
        # Cleared before the results are taken: a result appended after this sees
        # ``woken`` false and schedules a drain of its own.
        with self.lock:
            self.woken = False
        results = self.results
        while results:
            task, result = results.popleft()
            trio.lowlevel.reschedule(task, result)


_RUN: trio.lowlevel.RunVar[_Run] = trio.lowlevel.RunVar("duck_store_threadpool")


class ThreadPool:
    """At most ``size`` daemon threads running blocking calls for trio tasks."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._calls: queue.SimpleQueue[tuple[_Run, trio.lowlevel.Task, Callable[[], Any]]] = (
            queue.SimpleQueue())
        self._lock = threading.Lock()
        self._threads = 0
        #: Threads waiting for a call, and calls waiting for a thread: a thread is
        #: started when the second outnumber the first (a burst of calls meets
        #: threads that are not yet awake to take them).
        self._idle = 0
        self._queued = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, in the caller's context; not cancellable
        while it runs (a store call's result, a commit's, is never abandoned)."""
        try:
            run = _RUN.get()
        except LookupError:
            run = _Run(trio.lowlevel.current_trio_token())
            _RUN.set(run)
        context = contextvars.copy_context()
        with self._lock:
            self._calls.put((run, trio.lowlevel.current_task(),
                             functools.partial(context.run, fn, *args)))
            self._queued += 1
            start = self._queued > self._idle and self._threads < self.size
            if start:
                self._threads += 1
        if start:
            threading.Thread(target=self._work, name="duck-store", daemon=True).start()
        value: T = await trio.lowlevel.wait_task_rescheduled(
            lambda _: trio.lowlevel.Abort.FAILED)
        return value

    def _work(self) -> None:
        calls = self._calls
        lock = self._lock
        while True:
            with lock:
                if self._threads > self.size:  # (the pool was made smaller)
                    self._threads -= 1
                    return
                self._idle += 1
            run, task, call = calls.get()
            with lock:
                self._idle -= 1
                self._queued -= 1
            try:
                run.deliver(task, outcome.capture(call))
            except trio.RunFinishedError:
                # (Its trio.run was torn down around a call, as by KeyboardInterrupt:
                # nobody is left to give the result to. The thread stays the pool's.)
                pass

    def statistics(self) -> dict[str, int]:
        """Threads started and threads waiting for a call."""
        with self._lock:
            return {"threads": self._threads, "idle": self._idle}
