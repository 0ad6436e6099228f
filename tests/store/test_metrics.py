"""Round-trip counting: the listener sees the scope of the trio task that caused a call."""

from __future__ import annotations

import trio

from duck.store import Store, metrics


async def test_round_trips_are_attributed_to_the_scope(store: Store) -> None:
    user = await store.users.create("metrics@example.com", "pw")
    metrics.reset()
    with metrics.command_scope("LIST") as scope:
        await store.mailboxes.list(user.id)
        await store.mailboxes.list(user.id)
    stats = metrics.statistics()
    assert scope.round_trips == 2
    assert stats["LIST"]["commands"] == 1
    assert stats["LIST"]["round_trips"] == 2
    assert stats["LIST"]["avg_round_trips"] == 2
    assert stats["LIST"]["by_db_command"] == {"find": 2}


async def test_calls_outside_a_scope_count_as_other(store: Store) -> None:
    metrics.reset()
    await store.healthy()
    stats = metrics.statistics()
    assert stats[metrics.OTHER]["round_trips"] >= 1
    assert stats[metrics.OTHER]["commands"] == 0


async def test_concurrent_tasks_keep_their_own_scopes(store: Store) -> None:
    user = await store.users.create("metrics2@example.com", "pw")
    metrics.reset()
    scopes: dict[str, metrics.Scope] = {}

    async def one(label: str, calls: int) -> None:
        with metrics.command_scope(label) as scope:
            scopes[label] = scope
            for _ in range(calls):
                await store.mailboxes.list(user.id)
                await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "A", 3)
        nursery.start_soon(one, "B", 5)
    assert scopes["A"].round_trips == 3
    assert scopes["B"].round_trips == 5
    stats = metrics.statistics()
    assert stats["A"]["round_trips"] == 3 and stats["B"]["round_trips"] == 5


async def test_scopes_do_not_nest(store: Store) -> None:
    user = await store.users.create("metrics3@example.com", "pw")
    metrics.reset()
    with metrics.command_scope("OUTER") as outer, metrics.command_scope("INNER") as inner:
        await store.mailboxes.list(user.id)
    assert inner is outer
    stats = metrics.statistics()
    assert "INNER" not in stats
    assert stats["OUTER"] == {
        "commands": 1, "round_trips": 1, "avg_round_trips": 1.0, "max_round_trips": 1,
        "by_db_command": {"find": 1},
    }
