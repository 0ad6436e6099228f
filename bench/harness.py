"""The benchmark harness: an in-process ``duck serve``, a loaded corpus, the scenarios.

The server runs in this process (``duck.server.Server``, as the test fixture
``duck_server`` does) so that the round-trip counters of ``duck.store.engine.metrics``
can be read directly; the memory scenario alone starts ``duck serve`` as a
subprocess, to read its RSS without the client's sockets in it.

Loading is the store's own bulk path, not IMAP: a *seed* mailbox gets the
distinct generated messages (ingest + deliver, several at a time), and each
mailbox of the benchmark's sizes is filled by COPYing the seed repeatedly (COPY
writes 200 messages per transaction). Copies keep flags and dates, so every
size has the same mix and the same selectivity of each criterion.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from duck.config import Config
from duck.server import Server
from duck.store import DeliveryTarget, Store, User, metrics
from duck.store.errors import NotFound

from . import corpus
from .imap_client import ImapClient
from .stats import percentile

log = logging.getLogger("bench")

USER = "bench@example.com"
PASSWORD = "bench-password"
SEED_MAILBOX = "seed"
#: Messages ingested at once while loading the seed (deliveries to one user are
#: serialized by the store, ingest is not).
LOAD_CONCURRENCY = 8


@attrs.define
class Settings:
    """What the command line chose."""

    sizes: list[int]
    quick: bool
    mongo_uri: str | None
    out: Path
    scenarios: list[str]
    seed_messages: int
    max_large: int
    #: Wall-time budget of the repetitions of one timed command (seconds).
    rep_budget: float
    reps: int
    concurrency_clients: int
    concurrency_seconds: float
    memory_connections: list[int]
    deliveries: int
    #: Keep the database and corpus here for the next run (``--keep``).
    keep: Path | None = None
    #: Only the SEARCH/SORT/THREAD lines whose names start with one of these.
    search_keys: list[str] | None = None


@attrs.define
class SeedInfo:
    """What the harness knows about the seed corpus (in UID order)."""

    uids: list[int]
    sizes: list[int]
    kinds: list[str]


@attrs.define
class Bench:
    """Everything a scenario needs."""

    settings: Settings
    server: Server
    store: Store
    user: User
    seed: SeedInfo
    #: size -> mailbox path
    mailboxes: dict[int, str] = attrs.Factory(dict)
    load: dict[str, Any] = attrs.Factory(dict)

    @property
    def imap_port(self) -> int:
        """Port of the plain IMAP listener."""
        return self.server.ports["imap"]

    @property
    def mongo_uri(self) -> str:
        """URI of the database the server uses."""
        assert self.server.mongo_uri is not None
        return self.server.mongo_uri

    async def client(self, select: str | None = None, *, readonly: bool = False) -> ImapClient:
        """A connected, logged-in client, with ``select`` selected (or examined)."""
        client = await ImapClient.connect("127.0.0.1", self.imap_port)
        await client.login(USER, PASSWORD)
        if select is not None:
            await client.command(f'{"EXAMINE" if readonly else "SELECT"} "{select}"',
                                 keep=False)
        return client


# -- statistics helpers -------------------------------------------------------------




def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """Median, p95, min and count of durations, in milliseconds."""
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 2),
        "p95_ms": round(percentile(seconds, 95) * 1000, 2),
        "min_ms": round(min(seconds) * 1000, 2),
        "runs": len(seconds),
    }


async def repeat(fn: Callable[[], Awaitable[float]], reps: int, budget: float) -> list[float]:
    """Run ``fn`` (which returns its own duration) up to ``reps`` times within ``budget``
    seconds (at least once), so a slow path at 100k cannot eat the whole run."""
    durations: list[float] = []
    deadline = time.monotonic() + budget
    while len(durations) < reps:
        durations.append(await fn())
        if time.monotonic() > deadline:
            break
    return durations


def merge_round_trips(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Add the counts of ``part`` (from ``round_trips()``) into ``total``; returns it."""
    for label, s in part.items():
        t = total.setdefault(label, {"commands": 0, "round_trips": 0, "max_round_trips": 0})
        t["commands"] += s["commands"]
        t["round_trips"] += s["round_trips"]
        t["max_round_trips"] = max(t["max_round_trips"], s["max_round_trips"] or 0)
        t["avg_round_trips"] = (round(t["round_trips"] / t["commands"], 2)
                                if t["commands"] else None)
    return total


def round_trips(label_prefixes: Sequence[str] = ()) -> dict[str, Any]:
    """Average round trips per IMAP command since the last ``metrics.reset()``."""
    out = {}
    for label, s in metrics.statistics().items():
        if label_prefixes and not label.startswith(tuple(label_prefixes)):
            continue
        out[label] = {k: s[k] for k in ("commands", "round_trips", "avg_round_trips",
                                        "max_round_trips")}
    return out


# -- server and corpus ---------------------------------------------------------------


def server_config(settings: Settings, data_dir: Path) -> Config:
    """A Config for the in-process server: free ports, no connection caps in the way."""
    return Config(
        data_dir=data_dir,
        imap_port=0,
        imaps_port=0,
        lmtp_port=0, pop3_port=0, pop3s_port=0, managesieve_port=0,
        api_port=0,
        mongo_uri=settings.mongo_uri,
        database="bench_kept" if settings.keep else f"bench_{int(time.time())}",
        shutdown_grace=1.0,
        log_level="WARNING",
        imap_max_connections_per_ip=100_000,
        imap_max_connections_per_user=100_000,
    )


async def load_seed(
    store: Store, user: User, settings: Settings
) -> tuple[SeedInfo, dict[str, Any]]:
    """Deliver the distinct corpus into the seed mailbox; returns its info and timing."""
    await store.mailboxes.create(user.id, SEED_MAILBOX)
    messages = list(corpus.generate(settings.seed_messages, max_large=settings.max_large))
    started = time.perf_counter()
    limiter = trio.CapacityLimiter(LOAD_CONCURRENCY)
    uids: dict[int, int] = {}

    async def one(i: int, msg: corpus.Message) -> None:
        async with limiter:
            ingest = store.messages.ingest()
            for off in range(0, len(msg.data), 1 << 20):
                await ingest.write(msg.data[off:off + (1 << 20)])
            ingested = await ingest.finish()
            target = DeliveryTarget(user.id, SEED_MAILBOX, msg.flags, msg.internal_date)
            (result,) = await store.messages.deliver(ingested, [target])
            if isinstance(result, Exception):
                raise result
            uids[i] = result.uid

    async with trio.open_nursery() as nursery:
        for i, msg in enumerate(messages):
            nursery.start_soon(one, i, msg)
    seconds = time.perf_counter() - started
    # UIDs follow completion order; keep the generation order's metadata by UID.
    order = sorted(range(len(messages)), key=lambda i: uids[i])
    info = SeedInfo(
        uids=[uids[i] for i in order],
        sizes=[len(messages[i].data) for i in order],
        kinds=[messages[i].kind for i in order],
    )
    total = sum(info.sizes)
    stats = {
        "messages": len(messages),
        "bytes": total,
        "seconds": round(seconds, 2),
        "messages_per_s": round(len(messages) / seconds, 1),
        "mb_per_s": round(total / seconds / 1e6, 2),
    }
    return info, stats


async def fill_mailbox(store: Store, user: User, seed: SeedInfo, size: int) -> dict[str, Any]:
    """Create ``size-N`` and COPY the seed into it until it holds ``size`` messages."""
    path = f"size-{size}"
    await store.mailboxes.create(user.id, path)
    seed_box = await store.mailboxes.get(user.id, SEED_MAILBOX)
    started = time.perf_counter()
    left = size
    while left > 0:
        chunk = seed.uids[:left]
        await store.messages.copy(seed_box.id, chunk, user.id, path)
        left -= len(chunk)
    seconds = time.perf_counter() - started
    return {"messages": size, "seconds": round(seconds, 2),
            "messages_per_s": round(size / seconds, 1) if seconds else None}


async def prepare(settings: Settings, server: Server) -> Bench:
    """Create the user and load the corpus into mailboxes of every size."""
    assert server.store is not None
    store = server.store
    kept = settings.keep / "seed.json" if settings.keep else None
    if kept is not None and kept.exists():
        user = await store.users.by_username(USER)
        saved = json.loads(kept.read_text())
        seed = SeedInfo(**saved["seed"])
        seed_stats = saved["stats"]
        print("seed: kept from an earlier run", flush=True)
    else:
        user = await store.users.create(USER, PASSWORD, quota=10**14)
        seed, seed_stats = await load_seed(store, user, settings)
        print(f"seed: {seed_stats['messages']} messages, {seed_stats['bytes'] / 1e6:.1f} MB "
              f"in {seed_stats['seconds']} s ({seed_stats['messages_per_s']} msg/s)",
              flush=True)
        if kept is not None:
            kept.write_text(json.dumps({"seed": attrs.asdict(seed), "stats": seed_stats}))
    bench = Bench(settings=settings, server=server, store=store, user=user, seed=seed)
    bench.load["seed"] = seed_stats
    for size in sorted(settings.sizes):
        if kept is not None:
            try:
                box = await store.mailboxes.get(user.id, f"size-{size}")
            except NotFound:
                pass
            else:
                if box.message_count == size:
                    bench.mailboxes[size] = box.path
                    continue
                await store.mailboxes.delete(user.id, box.path)
        stats = await fill_mailbox(store, user, seed, size)
        bench.mailboxes[size] = f"size-{size}"
        bench.load[f"size-{size}"] = stats
        print(f"mailbox size-{size}: filled in {stats['seconds']} s", flush=True)
    # The mailboxes that grew past digest.DIGEST_FROM messages had their digests
    # started by the load; the server builds them in the background: measure after.
    while store.database.digest_pending:
        await trio.sleep(0.2)
    return bench


Scenario = Callable[[Bench], Awaitable[dict[str, Any]]]


async def run_all(settings: Settings, scenarios: dict[str, Scenario]) -> dict[str, Any]:
    """Start the server, load, run each scenario (an error is recorded, not raised)."""
    results: dict[str, Any] = {"settings": attrs.asdict(settings, value_serializer=_plain),
                               "scenarios": {}, "errors": {}}
    with tempfile.TemporaryDirectory(prefix="duck-bench-") as tmp:
        config = server_config(settings, (settings.keep or Path(tmp)) / "data")
        server = Server(config)
        async with trio.open_nursery() as nursery:
            started = time.perf_counter()
            await nursery.start(server.run)
            results["server_start_s"] = round(time.perf_counter() - started, 2)
            try:
                bench = await prepare(settings, server)
                results["load"] = bench.load
                for name in settings.scenarios:
                    print(f"-- {name}", flush=True)
                    metrics.reset()
                    t0 = time.perf_counter()
                    try:
                        out = await scenarios[name](bench)
                    except Exception as exc:  # a server bug must not end the run
                        log.exception("scenario %s failed", name)
                        out = {"error": f"{type(exc).__name__}: {exc}"}
                        results["errors"][name] = out["error"]
                    out["seconds"] = round(time.perf_counter() - t0, 2)
                    out.setdefault("round_trips", round_trips())
                    results["scenarios"][name] = out
            finally:
                assert server.store is not None
                with trio.CancelScope(shield=True):
                    try:
                        if not settings.keep:  # kept: the next run starts from it
                            await server.store.database.run_threaded(
                                server.store.database.client.drop_database, config.database)
                    except Exception:
                        log.exception("dropping the benchmark database failed")
                server.request_shutdown()
    return results


def _plain(inst: Any, field: Any, value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value
