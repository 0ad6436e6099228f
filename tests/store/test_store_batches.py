"""STORE over more messages than one transaction holds: batched, nothing lost."""

from __future__ import annotations

import pytest

from duck.store import Store, User
from duck.store.mail import flags as store_flags

pytestmark = pytest.mark.store


async def test_store_in_batches(store: Store, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_flags, "STORE_BATCH", 2)
    for i in range(7):
        await store.messages.append(user.id, "INBOX", f"Subject: {i}\r\n\r\nx\r\n".encode())
    inbox = await store.mailboxes.get(user.id, "INBOX")
    before = inbox.highest_modseq
    uids = [m.uid for m in await store.messages.view(inbox.id)]
    result = await store.messages.store_flags(inbox.id, uids, "add", ["\\Seen", "$Label"])
    assert sorted(c.uid for c in result.changed) == uids and result.modified == []
    modseqs = [c.modseq for c in result.changed]
    assert len(set(modseqs)) == 7 and min(modseqs) > before
    view = await store.messages.view(inbox.id)
    assert all({"\\Seen", "$Label"} <= set(m.flags) for m in view)
    inbox = await store.mailboxes.get(user.id, "INBOX")
    assert inbox.unseen_count == 0 and inbox.highest_modseq == max(modseqs)
    journal = await store.messages.changes_since(inbox.id, before)
    assert [e.modseq for e in journal] == sorted(modseqs)
    # UNCHANGEDSINCE across batches reports the ones changed meanwhile.
    await store.messages.store_flags(inbox.id, uids[:3], "add", ["\\Flagged"])
    result = await store.messages.store_flags(
        inbox.id, uids, "remove", ["$Label"], unchangedsince=max(modseqs)
    )
    assert result.modified == uids[:3]
    assert sorted(c.uid for c in result.changed) == uids[3:]
