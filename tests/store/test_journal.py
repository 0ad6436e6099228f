"""The journal: retention (TTL) and the gap rule of changes_since."""

from __future__ import annotations

import datetime as dt

import pytest

from duck.store import JournalEntry, Store
from duck.store.push.journal import DEFAULT_RETENTION, GAP_GRACE, contiguous

pytestmark = pytest.mark.store


async def _ttl(store: Store) -> int | None:
    coll = store.database.collection("journal")
    indexes = await store.database.run(lambda: list(coll.list_indexes()))
    return next(i.get("expireAfterSeconds") for i in indexes if i["name"] == "ttl")


async def test_retention_default_and_change(store: Store) -> None:
    assert await _ttl(store) == DEFAULT_RETENTION == 7 * 24 * 3600
    await store.journal.set_retention(3600)
    assert await _ttl(store) == 3600
    with pytest.raises(ValueError):
        await store.journal.set_retention(0)


def _entry(modseq: int, at: dt.datetime) -> JournalEntry:
    return JournalEntry("m", modseq, "flags", uid=1, at=at)


@pytest.mark.no_database
def test_contiguous_stops_at_a_fresh_gap_and_steps_over_an_old_one() -> None:
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    fresh = [_entry(5, now), _entry(6, now), _entry(8, now)]
    assert [e.modseq for e in contiguous(fresh, 4, now)] == [5, 6]
    old = now - GAP_GRACE - dt.timedelta(seconds=1)
    stale = [_entry(5, old), _entry(7, old), _entry(8, now)]
    assert [e.modseq for e in contiguous(stale, 4, now)] == [5, 7, 8]
    assert contiguous([_entry(9, now)], 4, now) == []
