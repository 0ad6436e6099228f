"""Mixed load: N IMAP clients running a random mix, LMTP deliveries at the same time.

The clients run in a separate process (``python -m bench.load_client``, see its
docstring for the mix) so that the bench process's CPU time is duck's alone:

- duck's CPU is this process's ``getrusage(RUSAGE_SELF)`` user+system time (every
  thread: the trio loop, pymongo's worker threads, scrypt) over the window;
- the database's CPU is utime+stime of the embedded database process
  (``/proc/<pid>/stat``); with ``--mongo-uri`` the database may be remote, so it is
  reported as unavailable (set ``DUCK_BENCH_DB_PID`` to the pid of a local
  ``mongod`` to measure it anyway);
- the load generator reports its own CPU, and ``/proc/stat`` gives the machine's
  busy time, so the CPU of other programs on the machine is visible as ``other``.

Each CPU figure is divided by the *operations* completed in the window: IMAP
commands plus LMTP deliveries (the runs without LMTP give the cost of an IMAP
command alone). Database round trips per IMAP command type are read from
``duck.store.metrics`` (reset at the start of the window): LMTP deliveries are not
in a command scope, so their round trips are under ``-`` with the notifier's
background reads, reported per delivery as an upper bound.

Runs (each one window of ``seconds``, a fresh load-client process):

- ``mix``, ``mix_lmtp_1``, ``mix_lmtp_4``, ``mix_lmtp_16``: the IMAP mix with 0, 1,
  4 and 16 LMTP connections delivering at the same time;
- ``login_cycle``: connect, LOGIN, SELECT, 2-5 commands, LOGOUT, again.

Defaults: 10 clients, 20 s a run; ``--quick``: 3 clients, ``mix_lmtp_4`` for 2 s and
``login_cycle`` for 1 s (~6 s with the set-up). Environment overrides: ``DUCK_BENCH_LOAD_CLIENTS``,
``DUCK_BENCH_LOAD_SECONDS``, ``DUCK_BENCH_LOAD_LMTP`` (e.g. ``0,1,4,16``).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from duck.store import DeliveryTarget, User, metrics
from duck.store.errors import AlreadyExists, NotFound

from .. import load_client
from ..harness import Bench, round_trips

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[2]
LOAD_PASSWORD = "load-password"
TEMPLATE_MAILBOX = "load-template"
#: Seconds for the load client to start and open its connections.
READY_TIMEOUT = 90.0
#: Seconds after the window for the load client to stop (its own grace is 15 s).
STOP_MARGIN = load_client.GRACE + 15.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class Plan:
    """What the load scenario runs."""

    clients: int
    seconds: float
    login_seconds: float
    #: One mix run per entry: the number of LMTP connections delivering meanwhile.
    lmtp: tuple[int, ...]


def plan(quick: bool) -> Plan:
    """Defaults (quick or not), then the environment's overrides."""
    clients = int(os.environ.get("DUCK_BENCH_LOAD_CLIENTS", 3 if quick else 10))
    seconds = float(os.environ.get("DUCK_BENCH_LOAD_SECONDS", 2.0 if quick else 20.0))
    lmtp_env = os.environ.get("DUCK_BENCH_LOAD_LMTP")
    lmtp = (tuple(int(x) for x in lmtp_env.split(",") if x.strip()) if lmtp_env
            else (4,) if quick else (0, 1, 4, 16))
    return Plan(clients=clients, seconds=seconds,
                login_seconds=seconds / 2 if quick else seconds, lmtp=lmtp)


# -- CPU accounting --------------------------------------------------------------------


@attrs.frozen
class CpuSample:
    """CPU times (seconds) at one instant."""

    wall: float
    duck_user: float
    duck_system: float
    #: The database process's utime+stime, None when it cannot be read.
    database: float | None
    #: Busy time of the whole machine (all CPUs), None without /proc/stat.
    machine: float | None


def _proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Fields 14 and 15 of stat(5) (utime, stime); fields[0] is field 3.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _machine_busy() -> float | None:
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLK_TCK


def sample(db_pid: int | None) -> CpuSample:
    """This process's CPU (all threads), the database's and the machine's, now."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return CpuSample(
        wall=time.perf_counter(),
        duck_user=usage.ru_utime,
        duck_system=usage.ru_stime,
        database=_proc_cpu(db_pid) if db_pid is not None else None,
        machine=_machine_busy(),
    )


def database_pid(bench: Bench) -> tuple[int | None, str]:
    """The pid of the database process to measure, and where it came from."""
    env = os.environ.get("DUCK_BENCH_DB_PID")
    if env:
        return int(env), "DUCK_BENCH_DB_PID"
    embedded = bench.server.embedded
    if embedded is None:
        return None, "unavailable: external database (--mongo-uri)"
    pid = embedded.statistics().get("pid")
    if not isinstance(pid, int):
        return None, "unavailable: the embedded database is not running"
    return pid, f"embedded {embedded.engine} database"


def cpu_figures(before: CpuSample, after: CpuSample, operations: int,
                client_cpu: float | None) -> dict[str, Any]:
    """CPU seconds, utilisation (cores) and milliseconds per operation."""
    wall = after.wall - before.wall
    duck = (after.duck_user - before.duck_user) + (after.duck_system - before.duck_system)
    db = (after.database - before.database
          if after.database is not None and before.database is not None else None)

    def per_op(seconds: float | None) -> float | None:
        return round(seconds * 1000 / operations, 3) if seconds is not None and operations \
            else None

    out: dict[str, Any] = {
        "duck_s": round(duck, 3),
        "duck_user_s": round(after.duck_user - before.duck_user, 3),
        "duck_system_s": round(after.duck_system - before.duck_system, 3),
        "duck_cores": round(duck / wall, 2) if wall else None,
        "duck_ms_per_op": per_op(duck),
        "db_s": round(db, 3) if db is not None else None,
        "db_cores": round(db / wall, 2) if db is not None and wall else None,
        "db_ms_per_op": per_op(db),
        "client_s": client_cpu,
    }
    if after.machine is not None and before.machine is not None:
        busy = after.machine - before.machine
        ours = duck + (db or 0.0) + (client_cpu or 0.0)
        out["machine_busy_s"] = round(busy, 3)
        out["other_s"] = round(max(0.0, busy - ours), 3)
    return out


# -- users and mailboxes -------------------------------------------------------------


async def _template(bench: Bench) -> list[int]:
    """UIDs of small corpus messages in the bench user's template mailbox."""
    store, user = bench.store, bench.user
    try:
        box = await store.mailboxes.get(user.id, TEMPLATE_MAILBOX)
    except NotFound:
        await store.mailboxes.create(user.id, TEMPLATE_MAILBOX)
        box = await store.mailboxes.get(user.id, TEMPLATE_MAILBOX)
    if box.message_count < load_client.LOW:
        messages = load_client.small_messages(load_client.LOW, seed=5)
        for data in messages[box.message_count:]:
            ingest = store.messages.ingest()
            await ingest.write(data)
            ingested = await ingest.finish()
            target = DeliveryTarget(user.id, TEMPLATE_MAILBOX, ("\\Seen",), None)
            (result,) = await store.messages.deliver(ingested, [target])
            if isinstance(result, Exception):
                raise result
    box = await store.mailboxes.get(user.id, TEMPLATE_MAILBOX)
    return list(range(1, box.uid_next))


async def _user(bench: Bench, name: str, template: list[int]) -> None:
    store = bench.store
    try:
        user: User = await store.users.by_username(name)
    except NotFound:
        user = await store.users.create(name, LOAD_PASSWORD, quota=10**12)
    template_box = await store.mailboxes.get(bench.user.id, TEMPLATE_MAILBOX)
    for path in load_client.MAILBOXES:
        try:
            box = await store.mailboxes.get(user.id, path)
        except NotFound:
            try:
                await store.mailboxes.create(user.id, path)
            except AlreadyExists:
                pass
            box = await store.mailboxes.get(user.id, path)
        missing = load_client.LOW - box.message_count
        if missing > 0:
            await store.messages.copy(template_box.id, template[:missing], user.id, path)


async def prepare_users(bench: Bench, count: int) -> list[str]:
    """``count`` users ``load-N@example.com``, each with INBOX and Archive of LOW messages."""
    template = await _template(bench)
    names = [f"load-{i}@example.com" for i in range(count)]
    limiter = trio.CapacityLimiter(2)  # user creation hashes the password (scrypt)

    async def one(name: str) -> None:
        async with limiter:
            await _user(bench, name, template)

    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(one, name)
    return names


# -- one run -------------------------------------------------------------------------


class _Lines:
    """JSON lines from the load client's stdout."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buf = b""
        self.seen: list[str] = []

    async def event(self, name: str) -> dict[str, Any]:
        """Read lines until the event ``name``; raise if the stream ends first."""
        while True:
            end = self.buf.find(b"\n")
            if end < 0:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise RuntimeError(f"load client ended before {name!r}")
                self.buf += data
                continue
            line, self.buf = self.buf[:end], self.buf[end + 1:]
            try:
                obj = json.loads(line)
            except ValueError:
                self.seen.append(line.decode("utf-8", "replace")[:200])
                continue
            if isinstance(obj, dict) and obj.get("event") == name:
                return obj


async def run_load(bench: Bench, users: list[str], *, mode: str, clients: int,
                   seconds: float, lmtp: int, seed: int) -> dict[str, Any]:
    """One window of load from a fresh load-client process; its figures."""
    cmd = [sys.executable, "-m", "bench.load_client",
           "--imap-port", str(bench.imap_port), "--lmtp-port", str(bench.server.ports["lmtp"]),
           "--users", ",".join(users), "--password", LOAD_PASSWORD,
           "--clients", str(clients), "--seconds", str(seconds), "--mode", mode,
           "--lmtp-connections", str(lmtp), "--seed", str(seed)]
    db_pid, db_source = database_pid(bench)
    stderr_tail = bytearray()
    proc = await trio.lowlevel.open_process(cmd, cwd=str(ROOT), stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stderr = proc.stderr

        async def drain() -> None:
            async for chunk in stderr:
                stderr_tail.extend(chunk)
                del stderr_tail[:-4000]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            lines = _Lines(proc.stdout)
            try:
                with trio.fail_after(READY_TIMEOUT):
                    await lines.event("ready")
                metrics.reset()
                before = sample(db_pid)
                await proc.stdin.send_all(b"go\n")
                with trio.fail_after(seconds + STOP_MARGIN):
                    stopped = await lines.event("stopped")
                after = sample(db_pid)
                # The server task may finish the last command's scope just after the
                # client has its reply: let it, then read the counters.
                await trio.sleep(0.05)
                rt = round_trips()
                with trio.fail_after(30):
                    result = await lines.event("result")
                with trio.fail_after(30):
                    await proc.wait()
            except (trio.TooSlowError, RuntimeError) as exc:
                raise RuntimeError(f"load client ({mode}, lmtp {lmtp}): {exc}; stderr: "
                                   f"{stderr_tail.decode('utf-8', 'replace')[-1500:]}") from exc
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
    return summarize(result, stopped, before, after, rt, db_source)


def summarize(result: dict[str, Any], stopped: dict[str, Any], before: CpuSample,
              after: CpuSample, rt: dict[str, Any], db_source: str) -> dict[str, Any]:
    """The figures of one run from the client's result, the CPU samples and the counters."""
    window = after.wall - before.wall
    commands_by_type = result["commands"]
    completed = sum(r["count"] for r in commands_by_type.values())
    errors = sum(r["errors"] for r in commands_by_type.values())
    deliveries = result["deliveries"]
    delivered = deliveries["ok"]
    scoped = {k: v for k, v in rt.items() if k != metrics.OTHER}
    scoped_commands = sum(v["commands"] for v in scoped.values())
    scoped_rt = sum(v["round_trips"] for v in scoped.values())
    other_rt = rt.get(metrics.OTHER, {}).get("round_trips", 0)
    return {
        "mode": result["mode"],
        "clients": result["clients"],
        "users": result["users"],
        "lmtp_connections": result["lmtp_connections"],
        "window_s": round(window, 2),
        "commands": completed,
        "commands_per_s": round(completed / window, 1) if window else None,
        "errors": errors,
        "error_samples": result["error_samples"],
        "slowest": result.get("slow", []),
        "deliveries": delivered,
        "deliveries_per_s": round(delivered / window, 1) if window else None,
        "delivery_latency": {k: v for k, v in deliveries.items() if k.endswith("_ms")},
        "delivery_errors": deliveries["errors"],
        "delivery_error_samples": result["delivery_error_samples"],
        "connections": result["connections"],
        "commands_by_type": commands_by_type,
        "cpu": cpu_figures(before, after, completed + delivered, stopped.get("cpu_s"))
        | {"database_source": db_source, "operations": completed + delivered},
        "round_trips": rt,
        "round_trips_per_command": round(scoped_rt / scoped_commands, 2)
        if scoped_commands else None,
        "unscoped_round_trips": other_rt,
        "unscoped_round_trips_per_delivery": round(other_rt / delivered, 2)
        if delivered else None,
    }


# -- the scenario --------------------------------------------------------------------


async def run(bench: Bench) -> dict[str, Any]:
    """Every run of the plan; a run that fails is recorded (``error``, in the table too)
    and the others go on, so one broken run does not lose the others' figures."""
    p = plan(bench.settings.quick)
    users = await prepare_users(bench, p.clients)
    out: dict[str, Any] = {"clients": p.clients, "seconds_per_run": p.seconds,
                           "mailbox_bounds": [load_client.LOW, load_client.HIGH],
                           "mix_weights": load_client.MIX, "runs": {}}
    runs: list[tuple[str, str, float, int]] = [
        ("mix" if k == 0 else f"mix_lmtp_{k}", "mix", p.seconds, k) for k in p.lmtp]
    runs.append(("login_cycle", "login", p.login_seconds, 0))
    for i, (name, mode, seconds, lmtp) in enumerate(runs):
        try:
            out["runs"][name] = await run_load(bench, users, mode=mode, clients=p.clients,
                                               seconds=seconds, lmtp=lmtp, seed=i + 1)
        except Exception as exc:  # recorded; the other runs still go
            log.exception("load run %s failed", name)
            out["runs"][name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    out["round_trips"] = {}  # per run (the overall table sums the runs' counts)
    print(table(out), flush=True)
    return out


# -- the table -----------------------------------------------------------------------


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                               for i, c in enumerate(r)).rstrip())
        if n == 0:
            lines.append("-" * len(lines[0]))
    return lines


def table(out: dict[str, Any]) -> str:
    """The load scenario's figures: one row per run, then per command type."""
    runs = {k: v for k, v in out["runs"].items() if "error" not in v}
    lines = [f"load: {out['clients']} clients, {_f(out['seconds_per_run'])} s per run, "
             f"mailboxes kept at {out['mailbox_bounds'][0]}-{out['mailbox_bounds'][1]} "
             "messages; CPU ms per op (op = IMAP command or LMTP delivery)"]
    rows = [["run", "cmds/s", "errors", "deliv/s", "deliv p50/p99 ms", "duck ms/op",
             "db ms/op", "duck cores", "db cores", "other cores", "rt/cmd", "rt(-)/deliv"]]
    for name, r in runs.items():
        cpu = r["cpu"]
        w = r["window_s"] or 1.0
        dl = r["delivery_latency"]
        rows.append([
            name, _f(r["commands_per_s"]), f"{r['errors']}/{r['commands']}",
            _f(r["deliveries_per_s"]) if r["lmtp_connections"] else "-",
            f"{_f(dl.get('p50_ms'))}/{_f(dl.get('p99_ms'))}" if dl else "-",
            _f(cpu["duck_ms_per_op"], 2), _f(cpu["db_ms_per_op"], 2),
            _f(cpu["duck_cores"], 2), _f(cpu["db_cores"], 2),
            _f(cpu["other_s"] / w, 2) if "other_s" in cpu else "-",
            _f(r["round_trips_per_command"], 2), _f(r["unscoped_round_trips_per_delivery"], 2),
        ])
    lines += _grid(rows)
    for name, r in out["runs"].items():
        if "error" in r:
            lines.append(f"{name}: ERROR {r['error'][:300]}")
    if not runs:
        return "\n".join(lines)
    names = list(runs)
    kinds = sorted({k for r in runs.values() for k in r["commands_by_type"]})
    lines += ["", "latency per command type, p50/p99 ms (errors):"]
    rows = [["type", *names]]
    for kind in kinds:
        row = [kind]
        for name in names:
            c = runs[name]["commands_by_type"].get(kind)
            if c is None:
                row.append("-")
            else:
                cell = f"{_f(c.get('p50_ms'))}/{_f(c.get('p99_ms'))}"
                row.append(cell + (f" ({c['errors']})" if c["errors"] else ""))
        rows.append(row)
    lines += _grid(rows)
    labels = sorted({k for r in runs.values() for k in r["round_trips"] if k != metrics.OTHER})
    lines += ["", "database round trips per IMAP command (server label), average (max):"]
    rows = [["command", *names]]
    for label in labels:
        row = [label]
        for name in names:
            s = runs[name]["round_trips"].get(label)
            row.append(f"{_f(s['avg_round_trips'], 2)} ({s['max_round_trips']})"
                       if s and s["commands"] else "-")
        rows.append(row)
    rows.append(["all commands", *[_f(runs[n]["round_trips_per_command"], 2) for n in names]])
    lines += _grid(rows)
    return "\n".join(lines)
