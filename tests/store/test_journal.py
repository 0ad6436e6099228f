"""The journal: retention (TTL), the gap rule of changes_since, and the reads
answered from this process's own commits (``Journal.learn``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from bson import ObjectId

from duck.store import JournalEntry, Store, User
from duck.store.push import journal as journal_module
from duck.store.push.journal import DEFAULT_RETENTION, GAP_GRACE, Journal, contiguous

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


async def test_learned_commits_answer_readers_only_where_no_entry_can_be_missing(
        store: Store, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = store.journal
    inbox = await store.mailboxes.get(user.id, "INBOX")
    coll = store.database.collection("journal")

    async def appended() -> dict[str, Any]:
        done = await store.messages.append(user.id, "INBOX", b"Subject: x\r\n\r\nx\r\n")
        doc: dict[str, Any] = await store.database.run(
            coll.find_one, {"mailbox": ObjectId(inbox.id), "modseq": done.modseq})
        return doc

    async def after(first: dict[str, Any], last: dict[str, Any]) -> tuple[list[int], int]:
        """The modseqs of the entries after ``first`` up to ``last``, and the
        database reads that took."""
        reads = journal.statistics()["reads"]
        got = await journal.changes_since(inbox.id, first["modseq"], reaching=last["modseq"])
        return [e.modseq for e in got], journal.statistics()["reads"] - reads

    m1, m2, m3 = [await appended() for _ in range(3)]
    # A commit that comes after a later one's is left out: the read it would have
    # to join ends past it.
    journal.learn([m3])
    journal.learn([m2])
    reads = journal.statistics()["reads"]
    got = await journal.changes_since(inbox.id, m1["modseq"], reaching=m3["modseq"])
    assert [e.modseq for e in got] == [m2["modseq"], m3["modseq"]]
    assert journal.statistics()["reads"] == reads + 1  # (the tail began past m1)
    # The next commit follows that read: extended, and read back from memory.
    m4 = await appended()
    journal.learn([m4])
    got = await journal.changes_since(inbox.id, m2["modseq"], reaching=m4["modseq"])
    assert journal.statistics()["reads"] == reads + 1
    # (The same entries a read of the database gives.)
    assert got == [await _one(journal, inbox.id, m3), await _one(journal, inbox.id, m4)]
    # One past a gap starts afresh, so nothing claims the missing modseq.
    journal.learn([{**m4, "modseq": m4["modseq"] + 2}])
    got = await journal.changes_since(inbox.id, m3["modseq"], reaching=m4["modseq"] + 2)
    assert [e.modseq for e in got] == [m4["modseq"]]  # (read: the gap is fresh)
    # A long run keeps only its last TAIL_ENTRIES, and says where it starts.
    monkeypatch.setattr(journal_module, "TAIL_ENTRIES", 2)
    m5, m6, m7 = [await appended() for _ in range(3)]
    await journal.changes_since(inbox.id, m4["modseq"])  # (a read up to m7)
    m8 = await appended()
    journal.learn([m8])
    assert await after(m6, m8) == ([m7["modseq"], m8["modseq"]], 0)
    assert await after(m5, m8) == ([m6["modseq"], m7["modseq"], m8["modseq"]], 1)
    # Several entries of one commit (an EXPUNGE's) extend it at once, cut the same.
    m9, m10, m11 = [await appended() for _ in range(3)]
    journal.learn([m9, m10, m11])
    assert await after(m9, m11) == ([m10["modseq"], m11["modseq"]], 0)
    assert await after(m8, m11) == ([m9["modseq"], m10["modseq"], m11["modseq"]], 1)


async def _one(journal: Journal, mailbox_id: str, doc: dict[str, Any]) -> JournalEntry:
    """The entry of ``doc`` as a read of the database gives it."""
    (entry,) = [e for e in await journal.changes_since(mailbox_id, doc["modseq"] - 1)
                if e.modseq == doc["modseq"]]
    return entry
