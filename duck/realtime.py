"""The serving thread's place in the CPU scheduler: the lowest real-time priority.

One thread runs every session of a ``duck serve`` process (trio's event loop:
IMAP, LMTP, POP3, ManageSieve, HTTP), so while it waits for a core, every session
waits. Under imaptest's load on two cores it was runnable but not running ~10% of
the time (its ``/proc`` schedstat), queued behind the threads its own requests had
just woken (the database engine's, the parse worker's, local clients'), while the
machine as a whole left ~0.45 of its two cores idle. At ``SCHED_FIFO`` priority 1,
the lowest real-time priority, it runs as soon as what it waited for arrives: any
ordinary thread yields it the core. Measured (docs/architecture.md): +13% commands
per second over five interleaved pairs of fresh servers, duck's CPU per command
lower too.

What keeps that from harming the rest of the machine:

- only the calling thread changes, with ``SCHED_RESET_ON_FORK``: the threads and
  processes it starts later (worker threads, the embedded database, the parse
  workers) are ordinary ones;
- it is done only where a CPU is left over for everything else: more CPUs usable
  by the process than serving loops (``duck serve --workers N`` has N), counting
  its control group's CPU quota (a container's ``--cpus``), which does not bound
  real-time threads as it bounds ordinary ones;
- the loop blocks whenever it has nothing to run (it waits in ``epoll``), and the
  kernel's real-time throttling (``kernel.sched_rt_runtime_us``, 95% of each
  second by default) leaves ordinary tasks a share of the CPU even if it never did;
- it needs ``CAP_SYS_NICE`` or an ``RLIMIT_RTPRIO`` of at least 1 (systemd:
  ``LimitRTPRIO=1``); without either the thread stays as it was, and the log says
  why. ``loop_realtime = false`` turns it off.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

#: The lowest SCHED_FIFO priority: above every ordinary thread, below any other
#: real-time one (the kernel's own, audio, clocks).
PRIORITY = 1


def usable_cpus() -> int:
    """CPUs this process may run on: those of its affinity, fewer where its control
    group's quota allows less (whole CPUs only)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return cpus if quota is None else min(cpus, math.floor(quota))


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup"),
                     membership: str | None = None) -> float | None:
    """The CPU quota of this process's control group, in CPUs (``cpu.max`` of
    cgroup v2, ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us`` of v1); None where
    there is none or it cannot be read. ``membership``: ``/proc/self/cgroup``'s
    text (read when not given)."""
    try:
        if membership is None:
            membership = Path("/proc/self/cgroup").read_text()
        for line in membership.splitlines():
            _, controllers, path = line.split(":", 2)
            relative = path.lstrip("/")
            if controllers == "" and (root / "cgroup.controllers").exists():
                quota, period = (root / relative / "cpu.max").read_text().split()
                return None if quota == "max" else int(quota) / int(period)
            if "cpu" in controllers.split(","):
                for name in (controllers, "cpu", "cpu,cpuacct"):
                    directory = root / name / relative
                    if (directory / "cpu.cfs_quota_us").exists():
                        quota_us = int((directory / "cpu.cfs_quota_us").read_text())
                        period_us = int((directory / "cpu.cfs_period_us").read_text())
                        return None if quota_us < 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None


def raise_loop_priority(loops: int = 1) -> str | None:
    """Put the calling thread at ``SCHED_FIFO`` priority 1, threads and processes
    it starts afterwards staying ordinary. ``loops``: serving loops of the
    deployment on this machine (each raised so). Returns None when done, else why
    it was not (the thread then unchanged)."""
    fifo = getattr(os, "SCHED_FIFO", None)
    reset = getattr(os, "SCHED_RESET_ON_FORK", None)
    if fifo is None or reset is None:
        return "this system has no real-time scheduling classes"
    cpus = usable_cpus()
    if cpus <= loops:
        return f"{cpus} CPU(s) for {loops} serving loop(s): none would be left for the rest"
    try:
        # (0: the calling thread, on Linux; not the whole process.)
        os.sched_setscheduler(0, fifo | reset, os.sched_param(PRIORITY))
    except PermissionError:
        return "not permitted (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of 1)"
    except OSError as exc:
        return f"refused: {exc}"
    return None


@contextlib.contextmanager
def raised(loops: int = 1) -> Iterator[str | None]:
    """``raise_loop_priority`` for the block (what it returned), the calling
    thread's policy put back as it was afterwards: a ``duck serve`` run inside
    another program (a test) leaves its thread ordinary when it returns."""
    before = os.sched_getscheduler(0), os.sched_getparam(0)
    why_not = raise_loop_priority(loops)
    try:
        yield why_not
    finally:
        if why_not is None:
            os.sched_setscheduler(0, *before)
