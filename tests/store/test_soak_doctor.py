"""The soak's doctor check (bench/soak/verify.py): what a killed DELETE leaves for
the repair pass is pending, not a violation, and is gone once the pass has run."""

from __future__ import annotations

import random

from store_samples import simple_message

from bench.soak import verify
from bench.soak.context import Soak
from duck.store import Store, User
from duck.store.engine import schema
from duck.store.engine.ids import parse_id
from duck.store.mail.mailboxes import record_purge


async def test_a_delete_killed_before_its_purge_is_pending_then_finished(
        store: Store, user: User) -> None:
    await store.mailboxes.create(user.id, "Gone")
    await store.messages.append(user.id, "Gone", simple_message("a"))
    box = parse_id((await store.mailboxes.get(user.id, "Gone")).id)
    db = store.database

    def killed_delete() -> None:
        # What a DELETE's transaction leaves when its process dies before the purge.
        db.collection(schema.MAILBOXES).delete_one({"_id": box})
        record_purge(db, box, parse_id(user.id), "Gone")

    await db.run(killed_delete)
    soak = Soak(cluster=None, rng=random.Random(0))  # type: ignore[arg-type]
    # (Its messages, and its digest when it has one.)
    assert await verify.check_doctor(soak, store, "checkpoint", final=False) >= 1
    assert soak.violations.total == 0
    assert await verify.check_doctor(soak, store, "final", final=True) >= 1
    assert soak.violations.total == 0
    left = await db.run(db.collection(schema.MESSAGES).count_documents, {"mailbox": box})
    assert left == 0
    # Messages of a deleted mailbox with no purge noted are a violation still.
    await store.mailboxes.create(user.id, "Lost")
    await store.messages.append(user.id, "Lost", simple_message("b"))
    lost = parse_id((await store.mailboxes.get(user.id, "Lost")).id)
    await db.run(db.collection(schema.MAILBOXES).delete_one, {"_id": lost})
    await verify.check_doctor(soak, store, "final", final=True)
    assert soak.violations.total >= 1
