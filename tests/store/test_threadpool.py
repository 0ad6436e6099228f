"""The store's worker-thread pool: results, errors, context, its bound, and no
cancellation while a call runs."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest
import trio

from duck.store.engine.threadpool import ThreadPool

# (Threads only: the Python engine's pass has nothing to run again here.)
pytestmark = [pytest.mark.store, pytest.mark.no_database]

SCOPE: contextvars.ContextVar[str] = contextvars.ContextVar("scope", default="none")


async def test_results_errors_and_the_callers_context_reach_the_caller() -> None:
    pool = ThreadPool(4)

    def where() -> tuple[str, bool]:
        return SCOPE.get(), threading.current_thread() is threading.main_thread()

    async def one(name: str) -> tuple[str, bool]:
        SCOPE.set(name)
        return await pool.run(where)

    results: dict[str, tuple[str, bool]] = {}

    async def record(name: str) -> None:
        results[name] = await one(name)

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(record, f"task{i}")
    # Each call saw its own task's context, and none ran on the trio thread.
    assert results == {f"task{i}": (f"task{i}", False) for i in range(20)}

    def fails() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        await pool.run(fails)
    assert await pool.run(sum, [1, 2, 3]) == 6


async def test_no_more_calls_at_once_than_its_size() -> None:
    pool = ThreadPool(3)
    lock = threading.Lock()
    running = 0
    most = 0

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(30):
            nursery.start_soon(pool.run, call)
    assert most == 3
    assert pool.statistics()["threads"] == 3

    # Made larger, it uses more threads; every call still completes.
    pool.size = 6
    async with trio.open_nursery() as nursery:
        for _ in range(30):
            nursery.start_soon(pool.run, call)
    assert 3 < most <= 6


async def test_a_cancelled_caller_still_gets_its_result() -> None:
    pool = ThreadPool(2)
    finished = threading.Event()
    got: list[str] = []

    def slow() -> str:
        time.sleep(0.2)
        finished.set()
        return "done"

    async def caller() -> None:
        got.append(await pool.run(slow))

    with trio.move_on_after(0.05):
        await caller()
    # The deadline passed during the call, which was not abandoned: the call's
    # end was waited for and its result delivered.
    assert finished.is_set()
    assert got == ["done"]


def test_calls_from_two_trio_runs_at_once_reach_their_own_run() -> None:
    pool = ThreadPool(2)
    out: dict[str, list[int]] = {}

    def run(name: str) -> None:
        async def main() -> None:
            out[name] = [await pool.run(lambda i=i: i * 2) for i in range(200)]
        trio.run(main)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert out == {"a": [i * 2 for i in range(200)], "b": [i * 2 for i in range(200)]}
