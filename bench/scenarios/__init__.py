"""Benchmark scenarios: each module has ``async def run(bench) -> dict``."""

from __future__ import annotations

from ..harness import Scenario
from . import concurrency, delivery, fetch, load, memory, pop3, search, store

#: Scenario name -> coroutine function, in the order a full run takes them.
SCENARIOS: dict[str, Scenario] = {
    "fetch": fetch.run,
    "search": search.run,
    "delivery": delivery.run,
    "concurrency": concurrency.run,
    "load": load.run,
    "store": store.run,
    "memory": memory.run,
    "pop3": pop3.run,
}
