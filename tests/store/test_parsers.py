"""APPENDed messages are indexed by a worker process (mail/parsers.py) and stored
exactly as when indexed in place; a worker that fails costs nothing but the time:
the caller indexes the message itself, and the next one gets a new worker."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import trio
from bson import ObjectId
from store_samples import multipart_message, simple_message

from duck.imap import ordering, render
from duck.mime import IndexerLimits
from duck.store import Store, User
from duck.store.engine import schema
from duck.store.index import contents
from duck.store.mail import parsers

pytestmark = pytest.mark.store

FIELDS = ["content", "size", "envelope", "structure", "headers"]


@pytest.fixture(autouse=True)
def one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsers, "WORKERS", 1)


async def stored(store: Store, user: User, data: bytes) -> tuple[Any, bytes]:
    """The record and the bytes of ``data`` APPENDed to INBOX."""
    done = await store.messages.append(user.id, "INBOX", data)
    (record,) = await store.messages.fetch(done.mailbox_id, [done.uid], FIELDS)
    return record, await store.messages.read(record)


def comparable(record: Any) -> tuple[Any, ...]:
    return record.size, record.envelope, record.structure, record.headers


async def test_a_worker_indexes_what_is_stored_as_in_place(
        store: Store, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = parsers.parsers()
    for data in (simple_message(), multipart_message(b"\x00\x01binary" * 5000)):
        before = pool.statistics()
        by_worker, read = await stored(store, user, data)
        assert read == data
        assert pool.statistics()["indexed"] == before["indexed"] + 1
        monkeypatch.setattr(parsers, "WORKERS", 0)
        in_place, read = await stored(store, user, data)
        monkeypatch.setattr(parsers, "WORKERS", 1)
        assert read == data and pool.statistics() == {**before, "indexed": before["indexed"] + 1}
        assert comparable(by_worker) == comparable(in_place)


async def test_a_dead_worker_costs_a_message_indexed_in_place(store: Store,
                                                             user: User) -> None:
    pool = parsers.parsers()
    await stored(store, user, simple_message(subject="first"))
    (worker,) = pool._idle
    worker.process.kill()
    worker.process.wait()
    data = simple_message(subject="second")
    record, read = await stored(store, user, data)
    assert read == data and record.envelope.subject == b"second"
    assert pool.statistics() == {"indexed": 1, "failures": 1}
    # The next message gets a new worker.
    await stored(store, user, simple_message(subject="third"))
    assert pool.statistics() == {"indexed": 2, "failures": 1}
    (again,) = pool._idle
    assert again is not worker and again.process.poll() is None
    pool.close()
    assert again.process.poll() is not None and pool._idle == []


class _Steps(trio.abc.Instrument):
    """Counts the steps of one task: each is a return from a schedule point."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def test_a_warm_worker_is_waited_for_only_for_its_reply() -> None:
    # Under load each schedule point waits for a pass of every other ready task:
    # a request is one send and the reply's reads, without a schedule point where
    # nothing is waited for (the free slot, a send that went through, a read of
    # bytes already there).
    pool = parsers.parsers()
    data = multipart_message(b"\x00\x01binary" * 5000)
    limits = IndexerLimits()
    assert await pool.index(data, limits) is not None  # (starts the worker)
    counter = _Steps(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(counter)
    try:
        for _ in range(5):
            assert await pool.index(data, limits) is not None
    finally:
        trio.lowlevel.remove_instrument(counter)
    # (A reply of ~100 KB may come in two reads. With trio's socket methods and
    # semaphore a request took four passes: twenty here.)
    assert counter.steps <= 5 * 2
    assert pool.statistics() == {"indexed": 6, "failures": 0}


async def test_no_worker_when_turned_off_or_for_a_large_message(
        store: Store, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = parsers.parsers()
    monkeypatch.setattr(parsers, "MAX_SIZE", 1000)
    data = multipart_message(b"x" * 2000)
    _, read = await stored(store, user, data)
    monkeypatch.setattr(parsers, "WORKERS", 0)
    _, read_small = await stored(store, user, simple_message())
    assert read == data and read_small == simple_message()
    assert pool.statistics() == {"indexed": 0, "failures": 0} and pool._idle == []


async def test_a_worker_makes_the_portable_renderings_as_the_caller_would(
        store: Store, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    render.register(store)
    ordering.register(store)
    # (Importable by the worker from the repository's root, its working directory.)
    store.messages.register_renderer("pid", lambda message: str(os.getpid()).encode(),
                                     "tests.store.pid_rendering:render")
    messages = store.database.collection(schema.MESSAGES)

    async def renderings(data: bytes) -> dict[str, bytes]:
        done = await store.messages.append(user.id, "INBOX", data)
        # (As stored: the renderings are kept in the message's contents.)
        doc = await store.database.run(lambda: contents.load(store.database, [
            messages.find_one({"mailbox": ObjectId(done.mailbox_id), "uid": done.uid})])[0])
        return {name: bytes(value) for name, value in doc["render"].items()}

    # (An 8-bit subject: the UTF-8 renderings differ from the plain ones.)
    data = multipart_message(b"QUJD" * 100, text="caf\u00e9\r\n", subject="\u00e9t\u00e9")
    by_worker = await renderings(data)
    monkeypatch.setattr(parsers, "WORKERS", 0)
    in_place = await renderings(data)
    assert in_place.pop("pid") == str(os.getpid()).encode() != by_worker.pop("pid")
    assert by_worker == in_place
    assert {"imap_env1", "imap_env1u", "imap_bs1", "imap_body1", ordering.ORDER} <= set(by_worker)


def test_the_imap_modules_a_worker_imports_leave_the_store_out() -> None:
    # (A worker imports them for their portable renderings: with the store, pymongo
    # and trio each worker would start ~0.4 s slower and hold ~40 MB more.)
    script = ("import sys, duck.mime.worker, duck.imap.render, duck.imap.ordering; "
              "print(sorted(m for m in ('duck.store', 'pymongo', 'trio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
