"""The serving loop's thread at the lowest real-time priority (duck/realtime.py):
that thread alone, where allowed and a CPU is left over; ``duck serve`` does it
unless ``loop_realtime`` is off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from duck import realtime
from tests.test_server import _free_port, _serving

#: Raises the calling thread, then reports its policy, a thread's and a child
#: process's started afterwards (as JSON).
_PROBE = """
import json, os, subprocess, sys, threading
from duck import realtime
why_not = realtime.raise_loop_priority(int(sys.argv[1]))
seen = {}
t = threading.Thread(target=lambda: seen.update(thread=os.sched_getscheduler(0)))
t.start(); t.join()
child = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                       capture_output=True, text=True, check=True)
print(json.dumps({"why_not": why_not, "loop": os.sched_getscheduler(0),
                  "priority": os.sched_getparam(0).sched_priority,
                  "thread": seen["thread"], "child": int(child.stdout)}))
"""


def _probe(loops: int) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(loops)], capture_output=True,
                          text=True, check=True, timeout=60)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _may_raise() -> bool:
    """Whether this process may take a real-time priority (root, CAP_SYS_NICE or
    an RLIMIT_RTPRIO): asked of a child, so that this one stays as it is."""
    code = ("import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_only_the_calling_thread_is_raised() -> None:
    result = _probe(1)
    if realtime.usable_cpus() < 2:
        assert result["why_not"] and "CPU" in str(result["why_not"])
        assert result["loop"] == os.SCHED_OTHER
    elif not _may_raise():
        assert "not permitted" in str(result["why_not"])
        assert result["loop"] == os.SCHED_OTHER
    else:
        assert result["why_not"] is None
        assert (int(str(result["loop"])) & ~os.SCHED_RESET_ON_FORK) == os.SCHED_FIFO
        assert result["priority"] == realtime.PRIORITY
    # Threads and processes started afterwards are ordinary ones.
    assert result["thread"] == os.SCHED_OTHER
    assert result["child"] == os.SCHED_OTHER


def test_no_cpu_left_over_means_no_change() -> None:
    result = _probe(realtime.usable_cpus())
    assert "CPU" in str(result["why_not"])
    assert result["loop"] == os.SCHED_OTHER


def _main_thread_policy(pid: int) -> int:
    return os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["default", "off"])
def test_duck_serve_raises_its_loop_unless_told_not_to(tmp_path: Path, setting: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if setting == "off":
        monkeypatch.setenv("DUCK_LOOP_REALTIME", "false")
    expected = os.SCHED_FIFO if (setting == "default" and realtime.usable_cpus() > 1
                                 and _may_raise()) else os.SCHED_OTHER
    with _serving(tmp_path / "data", api=_free_port()) as process:
        deadline = time.monotonic() + 10
        while _main_thread_policy(process.pid) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _main_thread_policy(process.pid) == expected
        # The embedded database it started is an ordinary process.
        children = [pid for task in Path(f"/proc/{process.pid}/task").iterdir()
                    for pid in (task / "children").read_text().split()]
        assert children
        for child in children:
            assert os.sched_getscheduler(int(child)) == os.SCHED_OTHER
        # (Stopped as a signal would: killed, it would leave its database running.)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def test_a_control_groups_cpu_quota_counts(tmp_path: Path) -> None:
    """A container's CPU quota bounds ordinary threads, not real-time ones: it is
    counted among the CPUs usable (cgroup v2's cpu.max, v1's CFS quota)."""
    v2 = tmp_path / "v2"
    (v2 / "box").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu memory\n")
    (v2 / "box" / "cpu.max").write_text("150000 100000\n")
    assert realtime.cgroup_cpu_quota(v2, "0::/box\n") == 1.5
    (v2 / "box" / "cpu.max").write_text("max 100000\n")
    assert realtime.cgroup_cpu_quota(v2, "0::/box\n") is None

    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "docker" / "c1").mkdir(parents=True)
    (v1 / "cpu,cpuacct" / "docker" / "c1" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu,cpuacct" / "docker" / "c1" / "cpu.cfs_period_us").write_text("100000\n")
    membership = "4:memory:/docker/c1\n2:cpu,cpuacct:/docker/c1\n0::/\n"
    assert realtime.cgroup_cpu_quota(v1, membership) == 2.0
    (v1 / "cpu,cpuacct" / "docker" / "c1" / "cpu.cfs_quota_us").write_text("-1\n")
    assert realtime.cgroup_cpu_quota(v1, membership) is None
    # Nothing readable: no quota.
    assert realtime.cgroup_cpu_quota(tmp_path / "none", "0::/gone\n") is None


def test_a_quota_of_one_cpu_leaves_none_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(realtime, "cgroup_cpu_quota", lambda: 1.5)
    assert realtime.usable_cpus() == 1
    with realtime.raised(1) as why_not:
        assert why_not is not None and "CPU" in why_not
        assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_the_thread_is_put_back_after_serving() -> None:
    """``duck serve`` run inside another program (as tests/test_config.py does)
    leaves that program's thread ordinary when it returns."""
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    with realtime.raised(1) as why_not:
        if why_not is None:
            assert (os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK) == os.SCHED_FIFO
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert os.sched_getparam(0).sched_priority == 0
