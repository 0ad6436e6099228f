"""The run: start the cluster, create the users, start readers and load, inject
faults, stop at checkpoints to verify, verify once more at the end."""

from __future__ import annotations

import math
import random
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from duck.store import Store

from . import verify
from .api_worker import ApiWorker
from .cluster import Cluster
from .context import PASSWORD, Soak, User
from .imap_worker import ImapWorker
from .lmtp_worker import lmtp_worker
from .model import summary
from .watchers import IdleWatch, SseWatch

#: How long the load may take to park at a checkpoint (an operation's timeout is 45 s).
PARK_TIMEOUT = 150.0


@attrs.define
class Options:
    """What ``python -m bench.soak`` was asked."""

    minutes: float
    seed: int
    fault_interval: float
    checkpoint_interval: float
    min_faults: int
    users: int = 2
    imap_clients: int = 2
    lmtp_clients: int = 2
    op_timeout: float = 45.0

    @classmethod
    def defaults(cls, minutes: float, seed: int | None = None,
                 fault_interval: float | None = None,
                 checkpoint_interval: float | None = None,
                 min_faults: int | None = None) -> Options:
        """Options with the intervals derived from the duration where not given:
        a fault every ~10-20 s (at least 3 in a minute, 20 in 30 minutes)."""
        seconds = minutes * 60
        return cls(
            minutes=minutes,
            seed=random.randrange(1 << 32) if seed is None else seed,
            fault_interval=fault_interval or min(20.0, max(5.0, seconds / 6)),
            checkpoint_interval=checkpoint_interval or max(30.0, seconds / 10),
            min_faults=min_faults if min_faults is not None
            else max(3, math.ceil(minutes * 2 / 3)),
        )


def _log(text: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", flush=True)


async def _make_users(soak: Soak, count: int) -> None:
    duck = await soak.duck()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{duck.ports['api']}",
                                 timeout=60) as client:
        for i in range(count):
            address = f"soak{i}@example.com"
            r = await client.post("/users", json={"username": address, "password": PASSWORD})
            r.raise_for_status()
            uid = r.json()["id"]
            boxes = (await client.get(f"/users/{uid}/mailboxes")).json()["results"]
            inbox = next(b["id"] for b in boxes if b["path"] == "INBOX")
            soak.users.append(User(uid, address, inbox))


@attrs.define
class _Run:
    soak: Soak
    opts: Options
    store: Store
    nursery: trio.Nursery
    sse: list[SseWatch]
    idle: list[IdleWatch]
    api: list[ApiWorker]
    baselines: list[set[tuple[str, int]]]
    load: int
    fault_lock: trio.Lock = attrs.Factory(trio.Lock)
    #: Per process: (its start, database restarts, notifier events, journal entries)
    #: at the last checkpoint.
    seen: dict[str, tuple[int, int, float, int]] = attrs.Factory(dict)

    async def check_notifier(self, where: str) -> None:
        """Between two checkpoints in which neither the process nor the database was
        restarted, each process's notifier saw one change per journal insert (the
        change stream that wakes IDLE sessions and SSE streams of other processes)."""
        soak = self.soak
        total = await self.store.database.run(lambda: verify.journal_total(self.store))
        for duck in soak.cluster.ducks:
            events = await verify.notifier_seen(duck.ports["api"])
            if events is None:
                continue
            now = (duck.starts, soak.cluster.db.restarts, events, total)
            before = self.seen.get(duck.name)
            self.seen[duck.name] = now
            if before is None or before[:2] != now[:2]:
                continue
            written, told = now[3] - before[3], now[2] - before[2]
            if written != told:
                soak.violations.add(
                    "notifier saw every journal insert",
                    f"{where}: {duck.name} saw {told:.0f} changes, {written} were journaled "
                    f"since the last checkpoint")

    async def faults(self) -> None:
        """SIGKILL a ``duck serve`` or the database at random moments, restart it."""
        soak, rng = self.soak, self.soak.rng
        cluster = soak.cluster
        while not soak.stopping:
            await trio.sleep(rng.uniform(0.5, 1.5) * self.opts.fault_interval)
            async with self.fault_lock:
                if soak.stopping or not soak.gate.open.is_set():
                    continue
                target = rng.choice([*cluster.ducks, None])
                name = "database" if target is None else target.name
                _log(f"fault: SIGKILL {name}")
                soak.stats.faults[f"SIGKILL {name}"] += 1
                if target is None:
                    await cluster.kill_db()
                else:
                    await cluster.kill_duck(self.nursery, target)
                _log(f"fault: {name} is back")

    async def checkpoint(self, where: str, *, final: bool = False) -> None:
        """Park the load, wait for every process, run every check."""
        soak = self.soak
        async with self.fault_lock:
            soak.gate.open = trio.Event()
            with trio.move_on_after(PARK_TIMEOUT) as waiting:
                while not final and soak.gate.parked < self.load:
                    await trio.sleep(0.1)
            if waiting.cancelled_caught:
                _log(f"{where}: only {soak.gate.parked}/{self.load} load tasks parked")
            await soak.cluster.wait_all_up()
            await trio.sleep(2)  # what the last operations set off settles
            before = soak.violations.total
            async with trio.open_nursery() as checks:
                for watch, base in zip(self.sse, self.baselines, strict=True):
                    checks.start_soon(verify.check_sse, soak, self.store, watch, base, where)
                for idle in self.idle:
                    checks.start_soon(verify.check_idle, soak, idle, where)
            await self.check_notifier(where)
            for user, api in zip(soak.users, self.api, strict=True):
                await verify.check_messages(soak, self.store, user, api, where)
            pending = await verify.check_doctor(soak, self.store, where, final)
            soak.stats.checkpoints += 1
            _log(f"{where}: {soak.violations.total - before} new violations, "
                 f"{pending} bodies pending the sweep; "
                 f"{sum(soak.stats.ops.values())} operations, "
                 f"{sum(soak.stats.faults.values())} faults so far")
            soak.gate.open.set()


async def run(opts: Options, root: Path) -> dict[str, Any]:
    """One soak run in ``root`` (a scratch directory); returns the summary."""
    rng = random.Random(opts.seed)
    database = f"soak_{uuid.uuid4().hex[:8]}"
    env: dict[str, str] = {}
    cluster = Cluster.create(root, database, env)
    soak = Soak(cluster, rng, timeout=opts.op_timeout)
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        _log(f"seed {opts.seed}; starting the database and two duck serve processes")
        await cluster.start(nursery)
        store = await Store.open(cluster.uri, database, prepare=False)
        soak.cluster_store = store
        await _make_users(soak, opts.users)
        sse = [SseWatch(soak, u) for u in soak.users]
        idle = [IdleWatch(soak, u) for u in soak.users]
        api = [ApiWorker(soak, u) for u in soak.users]
        async with trio.open_nursery() as watchers:
            for watch in sse:
                watchers.start_soon(watch.run)
            for watch2 in idle:
                watchers.start_soon(watch2.run)
            with trio.fail_after(60):
                for watch in sse:
                    await watch.started.wait()
            baselines = [await store.database.run(lambda u=u: verify.journal_keys(store, u))
                         for u in soak.users]
            imap = [ImapWorker(soak, u, i) for i, u in
                    enumerate(u for u in soak.users for _ in range(opts.imap_clients))]
            load = len(imap) + opts.lmtp_clients + len(api)
            state = _Run(soak, opts, store, nursery, sse, idle, api, baselines, load)
            soak.gate.open.set()
            _log(f"load: {len(imap)} IMAP clients, {opts.lmtp_clients} LMTP, {len(api)} API, "
                 f"{len(sse)} SSE readers, {len(idle)} IDLE sessions; a fault every "
                 f"~{opts.fault_interval:.0f} s; {opts.minutes} min")
            async with trio.open_nursery() as loading:
                for worker in imap:
                    loading.start_soon(worker.run)
                for _ in range(opts.lmtp_clients):
                    loading.start_soon(lmtp_worker, soak)
                for worker2 in api:
                    loading.start_soon(worker2.run)
                loading.start_soon(state.faults)
                deadline = started + opts.minutes * 60
                # Past the deadline only to reach the fault minimum, within a bound.
                limit = deadline + max(60.0, opts.minutes * 30)
                next_check = time.monotonic() + opts.checkpoint_interval
                n = 0
                while True:
                    now = time.monotonic()
                    faults = sum(soak.stats.faults.values())
                    if now >= limit or (now >= deadline and faults >= opts.min_faults):
                        break
                    if now >= next_check and now + 10 < deadline:
                        n += 1
                        await state.checkpoint(f"checkpoint {n}")
                        next_check = time.monotonic() + opts.checkpoint_interval
                    await trio.sleep(0.5)
                soak.stopping = True
                soak.gate.open.set()
                async with state.fault_lock:
                    pass  # a fault under way finishes first
                _log("load stopped; waiting for the last operations")
            await state.checkpoint("final", final=True)
            watchers.cancel_scope.cancel()
        await store.aclose()
        await cluster.stop()
        nursery.cancel_scope.cancel()  # (no checkpoint since the kill: no restart)
    return summary(soak.stats, soak.violations, {
        "seed": opts.seed, "minutes": opts.minutes,
        "seconds": round(time.monotonic() - started, 1),
        "fault_interval_s": opts.fault_interval, "min_faults": opts.min_faults,
        "restarts": {"database": cluster.db.restarts,
                     **{d.name: d.starts - 1 for d in cluster.ducks}},
        "sse_events": {u.address: w.events for u, w in zip(soak.users, sse, strict=True)},
        "idle_updates": {u.address: w.updates for u, w in zip(soak.users, idle, strict=True)},
    })
