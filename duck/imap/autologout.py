"""The autologout timer of a server's sessions: one task, not a timer per command.

Why: every wait for a client's next command used to run inside a trio CancelScope
with its deadline, and entering and leaving one is ~30 Python calls, before every
command (bench/instruction_costs.py: a ``FETCH 1 BODY[]`` 0.715 M instructions
with it, 0.659 M without). A session waiting for input now only notes when its wait
must end (``wait_until``, a float); this task looks at the sessions now and then
and interrupts the waits that are over (``interrupt_wait``, which shutdown uses
too). A wait ends late by at most ``period`` (RFC 3501 §5.4 asks for at least 30
minutes before an autologout; the timer's period is then 5 s).
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import trio

from .limits import ServerLimits

log = logging.getLogger(__name__)

#: The timer's longest and shortest period (it is a tenth of the shortest limit).
MAX_PERIOD = 5.0
MIN_PERIOD = 0.05


class Waiting(Protocol):
    """A session as the timer sees it."""

    #: ``time.monotonic()`` at which the current wait for input ends; None when
    #: the session is not waiting.
    wait_until: float | None

    def interrupt_wait(self, reason: str) -> None:
        """End the current wait for input (the session says why, then ends)."""


def period(limits: ServerLimits) -> float:
    """How often the timer looks, for the limits in force."""
    shortest = min(limits.autologout, limits.preauth_timeout)
    return min(MAX_PERIOD, max(MIN_PERIOD, shortest / 10))


class AutologoutTimer:
    """The sessions of one server and the task that ends their overdue waits."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.sessions: set[Waiting] = set()
        self._running = False

    def add(self, session: Waiting) -> None:
        """Watch ``session`` (until ``discard``); the first one starts the task."""
        self.sessions.add(session)
        if not self._running:
            self._running = True
            # (A system task: it lives as long as the run, whichever listener's
            # session started it, and holds nothing but this set.)
            trio.lowlevel.spawn_system_task(self._run, name="duck imap autologout")

    def discard(self, session: Waiting) -> None:
        """Stop watching ``session``."""
        self.sessions.discard(session)

    def expire(self, now: float) -> int:
        """Interrupt the waits over at ``now``; how many."""
        over = [s for s in self.sessions if s.wait_until is not None and s.wait_until <= now]
        for session in over:
            try:
                session.interrupt_wait("autologout")
            except Exception:  # (a system task must not raise: it would end the run)
                log.exception("autologout: a session's wait could not be ended")
        return len(over)

    async def _run(self) -> None:
        try:
            while True:
                await trio.sleep(period(self.limits))
                self.expire(time.monotonic())
        finally:
            self._running = False
