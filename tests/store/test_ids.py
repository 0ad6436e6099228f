"""The store's own ObjectId maker (engine/ids.py)."""

from __future__ import annotations

import itertools
import os
import time

from bson import ObjectId

from duck.store.engine.ids import new_id


def test_new_ids_are_objectids_of_now_and_all_distinct() -> None:
    before = int(time.time())
    ids = [new_id() for _ in range(50_000)]
    after = int(time.time())
    assert all(type(i) is ObjectId for i in ids)
    assert len(set(ids)) == len(ids)
    assert all(before <= i.generation_time.timestamp() <= after for i in ids)
    # One process's ids share their random bytes and count up by one.
    assert len({i.binary[4:9] for i in ids}) == 1
    counts = [int.from_bytes(i.binary[9:], "big") for i in ids]
    assert all((b - a) % (1 << 24) == 1 for a, b in itertools.pairwise(counts))


def test_a_forked_child_makes_ids_of_its_own() -> None:
    read, write = os.pipe()
    mine = new_id()
    pid = os.fork()
    if pid == 0:  # (the child: its id to the parent, then out without cleanup)
        os.write(write, new_id().binary)
        os._exit(0)
    os.close(write)
    theirs = os.read(read, 12)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(theirs) == 12
    assert theirs[4:9] != mine.binary[4:9]
