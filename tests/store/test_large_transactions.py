"""COPY and EXPUNGE shrink their transactions when the engine says one is too large."""

from __future__ import annotations

from typing import Any

import pymongo.errors
import pytest

from duck.store import Store, User
from duck.store.mail.messages import TRANSACTION_TOO_LARGE, Messages

pytestmark = pytest.mark.store


def _too_large() -> pymongo.errors.OperationFailure:
    return pymongo.errors.OperationFailure(
        "Transaction is too large and will not fit in the storage engine cache",
        code=TRANSACTION_TOO_LARGE,
    )


async def _fill(store: Store, user: User, count: int) -> str:
    for i in range(count):
        await store.messages.append(user.id, "INBOX", f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode())
    return (await store.mailboxes.get(user.id, "INBOX")).id


async def test_copy_splits(store: Store, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = await _fill(store, user, 7)
    real = Messages._copy_batch
    sizes: list[int] = []

    def limited(self: Messages, src: Any, uids: list[int], *args: Any) -> Any:
        sizes.append(len(uids))
        if len(uids) > 2:  # the engine's cache holds at most two of these
            raise _too_large()
        return real(self, src, uids, *args)

    monkeypatch.setattr(Messages, "_copy_batch", limited)
    uids = [m.uid for m in await store.messages.view(inbox)]
    result = await store.messages.copy(inbox, uids, user.id, "Archive")
    assert [src for src, _ in result.uids] == uids
    archive = await store.mailboxes.get(user.id, "Archive")
    assert archive.message_count == 7 and archive.uid_next == 8
    assert sizes[0] == 7 and max(sizes[1:]) <= 7 and min(sizes) >= 1
    # Nothing was left reserved by the refused attempts.
    used, _ = await store.quota(user.id)
    inbox_box = await store.mailboxes.get(user.id, "INBOX")
    assert used == inbox_box.size + archive.size


async def test_expunge_shrinks(store: Store, user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = await _fill(store, user, 5)
    uids = [m.uid for m in await store.messages.view(inbox)]
    await store.messages.store_flags(inbox, uids, "add", ["\\Deleted"])
    real = Messages._expunge_batch
    limits: list[int] = []

    def limited(self: Messages, mailbox: Any, query: Any, limit: int, *args: Any,
                **kw: Any) -> Any:
        limits.append(limit)
        if limit > 2:
            raise _too_large()
        return real(self, mailbox, query, limit, *args, **kw)

    monkeypatch.setattr(Messages, "_expunge_batch", limited)
    assert sorted(await store.messages.expunge(inbox)) == uids
    assert (await store.mailboxes.get(user.id, "INBOX")).message_count == 0
    assert limits[-1] <= 2
